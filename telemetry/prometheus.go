package telemetry

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
	"golang.org/x/sync/errgroup"

	"github.com/refdoctor/refdoctor/finding"
)

// The runbook's three queries, by the names the JSON contract gives them.
const (
	QueryCapabilities = "capabilities"
	QueryMethods      = "methods"
	QueryFailures     = "failures"
)

// DefaultWindow is the runbook's rate window.
const DefaultWindow = 5 * time.Minute

// ErrPrometheusSettings marks connection settings refdoctor cannot use: a
// bad URL, or a credentials file that cannot be read. It is the
// operator's input, not Prometheus, that is wrong.
var ErrPrometheusSettings = errors.New("prometheus settings")

// queryDef is one runbook query: the counter and the labels it sums by.
type queryDef struct {
	name   string
	metric string
	by     []string
}

var queryDefs = []queryDef{
	{QueryCapabilities, MetricCapabilitiesProbed, []string{labelRegistry, labelAPISupported}},
	{QueryMethods, MetricDiscoveryMethod, []string{labelRegistry, labelMethod}},
	{QueryFailures, MetricDiscoveryFailures, []string{labelRegistry}},
}

// promQL renders a runbook query: fn is rate or increase, selector is
// empty or a {registry=~"..."} matcher.
func (d queryDef) promQL(fn, selector, window string) string {
	return fmt.Sprintf("sum by (%s) (%s(%s%s[%s]))", strings.Join(d.by, ", "), fn, d.metric, selector, window)
}

// RunbookQueries returns the runbook's three PromQL queries, by name,
// with window in Prometheus' duration syntax ("5m"): the text an operator
// pastes into Prometheus.
func RunbookQueries(window string) map[string]string {
	out := make(map[string]string, len(queryDefs))
	for _, d := range queryDefs {
		out[d.name] = d.promQL("rate", "", window)
	}
	return out
}

// FormatWindow writes a window in Prometheus' duration syntax ("5m",
// "1h30m").
func FormatWindow(d time.Duration) string { return model.Duration(d).String() }

// ParseWindow reads a window in Prometheus' duration syntax ("90s", "5m",
// "1h", "1d"). It must be at least a second.
func ParseWindow(s string) (time.Duration, error) {
	d, err := model.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("window %q is not a Prometheus duration (use a form like 5m, 90s or 1h)", s)
	}
	if time.Duration(d) < time.Second {
		return 0, fmt.Errorf("window %q is too short: use at least 1s (a few scrape intervals is sensible)", s)
	}
	return time.Duration(d), nil
}

// PrometheusConfig is how to reach Prometheus. Credentials come from
// files; their contents never appear in output, logs or errors.
type PrometheusConfig struct {
	URL             string
	BearerTokenFile string
	Username        string
	PasswordFile    string
	// Timeout bounds each API request (default 30s).
	Timeout   time.Duration
	UserAgent string
}

// Prometheus asks one Prometheus server the runbook's questions.
type Prometheus struct {
	url     string
	api     promv1.API
	timeout time.Duration
}

// NewPrometheus reads the credentials files and prepares a client. It
// sends nothing yet; an unreachable server shows in Query's report.
func NewPrometheus(c PrometheusConfig) (*Prometheus, error) {
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%w: %q is not an http:// or https:// URL of a Prometheus server", ErrPrometheusSettings, redactedURL(c.URL))
	}
	if u.User != nil {
		return nil, fmt.Errorf("%w: %s carries a login: drop it from the URL and use a credentials file ([telemetry] prometheus_password_file or prometheus_bearer_token_file)", ErrPrometheusSettings, redactedURL(c.URL))
	}
	t := &authTransport{base: http.DefaultTransport.(*http.Transport).Clone(), host: u.Host, userAgent: c.UserAgent}
	switch {
	case c.BearerTokenFile != "" && (c.Username != "" || c.PasswordFile != ""):
		return nil, fmt.Errorf("%w: a bearer token file and a username/password file exclude each other", ErrPrometheusSettings)
	case c.BearerTokenFile != "":
		token, err := readSecretFile(c.BearerTokenFile, "bearer token")
		if err != nil {
			return nil, err
		}
		t.authorization = "Bearer " + token
	case c.Username != "" || c.PasswordFile != "":
		if c.Username == "" || c.PasswordFile == "" {
			return nil, fmt.Errorf("%w: basic auth needs both a username and a password file", ErrPrometheusSettings)
		}
		password, err := readSecretFile(c.PasswordFile, "password")
		if err != nil {
			return nil, err
		}
		req := http.Request{Header: http.Header{}}
		req.SetBasicAuth(c.Username, password)
		t.authorization = req.Header.Get("Authorization")
	}
	client, err := api.NewClient(api.Config{Address: c.URL, RoundTripper: t})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrPrometheusSettings, err)
	}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	return &Prometheus{url: strings.TrimRight(c.URL, "/"), api: promv1.NewAPI(client), timeout: timeout}, nil
}

// URL is the server's base URL.
func (p *Prometheus) URL() string { return p.url }

// readSecretFile reads a credential, trimming the newline editors and
// `echo` leave. The error names the file, never its content.
func readSecretFile(path, what string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("%w: read the Prometheus %s file: %v", ErrPrometheusSettings, what, err)
	}
	s := strings.TrimSpace(string(data))
	if s == "" {
		return "", fmt.Errorf("%w: the Prometheus %s file %s is empty", ErrPrometheusSettings, what, path)
	}
	if strings.ContainsAny(s, "\r\n") {
		return "", fmt.Errorf("%w: the Prometheus %s file %s holds more than one line", ErrPrometheusSettings, what, path)
	}
	return s, nil
}

// authTransport adds the login to requests for the configured host only,
// so a redirect to another host never carries it.
type authTransport struct {
	base          http.RoundTripper
	host          string
	authorization string
	userAgent     string
}

func (t *authTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if t.authorization == "" && t.userAgent == "" {
		return t.base.RoundTrip(req)
	}
	r := req.Clone(req.Context())
	if t.authorization != "" && r.URL.Host == t.host {
		r.Header.Set("Authorization", t.authorization)
	}
	if t.userAgent != "" {
		r.Header.Set("User-Agent", t.userAgent)
	}
	return t.base.RoundTrip(r)
}

// redactedURL drops user information from a URL for messages.
func redactedURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return RedactString(s)
	}
	if u.User != nil {
		u.User = url.User("REDACTED")
	}
	return u.String()
}

// QueryOptions says what to ask.
type QueryOptions struct {
	// Window replaces the runbook's 5m (default DefaultWindow).
	Window time.Duration
	// Registries limits the queries to these registry labels (host[:port]).
	Registries []string
	// ExpectsAPI tells whether the known-registry matrix expects host to
	// serve the referrers API; known is false when it has no row for it.
	ExpectsAPI func(host string) (expects, known bool)
	// HistoryPoints is how many steps of the window query_range returns
	// for the sparklines; 0 skips the range queries.
	HistoryPoints int
	// At is the evaluation time (default now).
	At time.Time
}

// QueryReport is the answer to the runbook's three queries. Its JSON is a
// contract (design.md): prometheus, window, queries, findings.
type QueryReport struct {
	Prometheus string  `json:"prometheus"`
	Window     string  `json:"window"`
	Queries    []Query `json:"queries"`
	// Registries sums the series up per registry label.
	Registries []RegistryRates   `json:"registries"`
	Findings   []finding.Finding `json:"findings"`
	// Incomplete is set when Prometheus could not be reached or answered
	// an error: then the series are missing, not empty.
	Incomplete bool      `json:"incomplete"`
	At         time.Time `json:"at"`
	// HistoryStart and HistoryStepSeconds place each history point.
	HistoryStart       time.Time `json:"history_start,omitzero"`
	HistoryStepSeconds float64   `json:"history_step_seconds,omitempty"`
	// Warnings are Prometheus' own warnings about the queries.
	Warnings []string `json:"warnings,omitempty"`
}

// Query is one runbook query and its series: the rate (per second) over
// the window, and the increase over the window from the same query with
// increase() in place of rate().
type Query struct {
	Name           string   `json:"name"`
	PromQL         string   `json:"promql"`
	IncreasePromQL string   `json:"increase_promql"`
	RangePromQL    string   `json:"range_promql,omitempty"`
	Series         []Series `json:"series"`
}

// Series is one label set's value.
type Series struct {
	Labels map[string]string `json:"labels"`
	// Value is the query's value: a rate per second.
	Value float64 `json:"value"`
	// Increase is the count over the window (extrapolated by Prometheus,
	// so it need not be whole); absent when Prometheus returned none.
	Increase *float64 `json:"increase,omitempty"`
	// History is the rate at each step of the last window (query_range).
	History []Point `json:"history,omitempty"`
}

// Point is one value of a series' history.
type Point struct {
	Time  time.Time `json:"time"`
	Value float64   `json:"value"`
}

// RegistryRates is one registry's line of the report.
type RegistryRates struct {
	Registry string `json:"registry"`
	// Probes counts capability probes over the window by api_supported
	// (true, false, unknown).
	Probes map[string]float64 `json:"probes"`
	// Discoveries counts discoveries over the window by method (api, tags).
	Discoveries map[string]float64 `json:"discoveries"`
	// DiscoveryRate is discoveries per second, all methods.
	DiscoveryRate float64 `json:"discovery_rate"`
	Failures      float64 `json:"failures"`
	// FailureRate is failed discoveries per second.
	FailureRate float64 `json:"failure_rate"`
	// ExpectsAPI is the known-registry matrix's expectation, if it has one.
	ExpectsAPI       *bool   `json:"expects_api,omitempty"`
	FailureHistory   []Point `json:"failure_history,omitempty"`
	DiscoveryHistory []Point `json:"discovery_history,omitempty"`
}

// Outcome sums the report up: incomplete when Prometheus could not answer,
// else from the findings.
func (r QueryReport) Outcome() finding.Outcome {
	if r.Incomplete {
		return finding.OutcomeIncomplete
	}
	return finding.OutcomeOf(r.Findings)
}

// HistorySlots is the number of history points a full series has.
func (r QueryReport) HistorySlots() int {
	if r.HistoryStepSeconds <= 0 {
		return 0
	}
	w, err := model.ParseDuration(r.Window)
	if err != nil {
		return 0
	}
	return int(math.Round(time.Duration(w).Seconds()/r.HistoryStepSeconds)) + 1
}

// Sparkline draws points as one line of block characters, one per
// history step, scaled to the largest value; a step without a value is a
// space. It returns "" when the report has no history.
func (r QueryReport) Sparkline(points []Point) string {
	slots := r.HistorySlots()
	if slots <= 0 {
		return ""
	}
	values := make([]float64, slots)
	have := make([]bool, slots)
	step := time.Duration(r.HistoryStepSeconds * float64(time.Second))
	for _, p := range points {
		i := int(math.Round(float64(p.Time.Sub(r.HistoryStart)) / float64(step)))
		if i >= 0 && i < slots {
			values[i], have[i] = p.Value, true
		}
	}
	return sparkline(values, have)
}

var sparkBlocks = []rune("▁▂▃▄▅▆▇█")

func sparkline(values []float64, have []bool) string {
	top := 0.0
	for i, v := range values {
		if have[i] && v > top {
			top = v
		}
	}
	var b strings.Builder
	for i, v := range values {
		switch {
		case !have[i]:
			b.WriteRune(' ')
		case top <= 0 || v <= 0:
			b.WriteRune(sparkBlocks[0])
		default:
			n := int(math.Ceil(v/top*float64(len(sparkBlocks)))) - 1
			b.WriteRune(sparkBlocks[max(0, min(n, len(sparkBlocks)-1))])
		}
	}
	return b.String()
}

// Query runs the runbook's three queries as rates over the window, the
// same as increase() over the window, and, with HistoryPoints, as range
// queries for the sparklines. It always returns a report: when
// Prometheus cannot be reached or answers an error, the report is
// Incomplete with a finding that shows the reply.
func (p *Prometheus) Query(ctx context.Context, o QueryOptions) QueryReport {
	if o.Window <= 0 {
		o.Window = DefaultWindow
	}
	at := o.At
	if at.IsZero() {
		at = time.Now()
	}
	window := FormatWindow(o.Window)
	rep := QueryReport{Prometheus: p.url, Window: window, At: at.UTC(), Findings: []finding.Finding{}, Registries: []RegistryRates{}}
	var registries []string
	for _, r := range o.Registries {
		registries = append(registries, RegistryLabel(r))
	}
	selector := registrySelector(registries)
	var rng promv1.Range
	if o.HistoryPoints > 0 {
		step := max(time.Second, (o.Window / time.Duration(o.HistoryPoints)).Truncate(time.Second))
		rng = promv1.Range{Start: at.Add(-step * time.Duration(o.HistoryPoints)), End: at, Step: step}
		rep.HistoryStart = rng.Start.UTC()
		rep.HistoryStepSeconds = step.Seconds()
	}

	rep.Queries = make([]Query, len(queryDefs))
	type answers struct {
		rates, increases model.Vector
		history          model.Matrix
	}
	got := make([]answers, len(queryDefs))
	var mu sync.Mutex
	var warnings []string
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(3)
	for i, d := range queryDefs {
		q := &rep.Queries[i]
		q.Name = d.name
		q.PromQL = d.promQL("rate", selector, window)
		q.IncreasePromQL = d.promQL("increase", selector, window)
		a := &got[i]
		g.Go(func() (err error) {
			a.rates, err = p.instant(gctx, q.PromQL, at, &mu, &warnings)
			return err
		})
		g.Go(func() (err error) {
			a.increases, err = p.instant(gctx, q.IncreasePromQL, at, &mu, &warnings)
			return err
		})
		if o.HistoryPoints > 0 {
			q.RangePromQL = q.PromQL
			g.Go(func() (err error) {
				a.history, err = p.rangeQuery(gctx, q.RangePromQL, rng, &mu, &warnings)
				return err
			})
		}
	}
	if err := g.Wait(); err != nil {
		// Series stay nil: an incomplete read must not look like "no
		// series".
		rep.Incomplete = true
		rep.Findings = append(rep.Findings, p.errorFinding(err))
		return rep
	}
	for i, a := range got {
		rep.Queries[i].Series = mergeSeries(a.rates, a.increases, a.history)
	}
	sort.Strings(warnings)
	rep.Warnings = slices.Compact(warnings)
	rep.summarize(registries, o.ExpectsAPI)
	return rep
}

func (p *Prometheus) instant(ctx context.Context, q string, at time.Time, mu *sync.Mutex, warnings *[]string) (model.Vector, error) {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	v, w, _, err := p.api.Query(ctx, q, at)
	if err != nil {
		return nil, queryError{query: q, err: err}
	}
	addWarnings(mu, warnings, w)
	vec, ok := v.(model.Vector)
	if !ok {
		return nil, queryError{query: q, err: &promv1.Error{Type: promv1.ErrBadResponse, Msg: fmt.Sprintf("expected an instant vector, got %s", v.Type())}}
	}
	return vec, nil
}

func (p *Prometheus) rangeQuery(ctx context.Context, q string, r promv1.Range, mu *sync.Mutex, warnings *[]string) (model.Matrix, error) {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	v, w, _, err := p.api.QueryRange(ctx, q, r)
	if err != nil {
		return nil, queryError{query: q, err: err}
	}
	addWarnings(mu, warnings, w)
	m, ok := v.(model.Matrix)
	if !ok {
		return nil, queryError{query: q, err: &promv1.Error{Type: promv1.ErrBadResponse, Msg: fmt.Sprintf("expected a range vector, got %s", v.Type())}}
	}
	return m, nil
}

func addWarnings(mu *sync.Mutex, to *[]string, w promv1.Warnings) {
	if len(w) == 0 {
		return
	}
	mu.Lock()
	defer mu.Unlock()
	*to = append(*to, w...)
}

// queryError keeps the query that failed with the error.
type queryError struct {
	query string
	err   error
}

func (e queryError) Error() string { return e.err.Error() }
func (e queryError) Unwrap() error { return e.err }

// maxReplyEvidence bounds how much of an error reply a finding shows.
const maxReplyEvidence = 2000

// errorFinding tells an unreachable server from one that answered an
// error, and shows the reply of the latter.
func (p *Prometheus) errorFinding(err error) finding.Finding {
	var qe queryError
	query := ""
	if errors.As(err, &qe) {
		query = qe.query
	}
	var apiErr *promv1.Error
	if errors.As(err, &apiErr) {
		reply := string(apiErr.Type) + ": " + apiErr.Msg
		if d := strings.TrimSpace(apiErr.Detail); d != "" {
			reply += "\n" + d
		}
		if len(reply) > maxReplyEvidence {
			reply = reply[:maxReplyEvidence] + " [...]"
		}
		return finding.Finding{Severity: finding.SeverityError, Code: finding.PrometheusError,
			Summary:  fmt.Sprintf("Prometheus at %s answered an error: %s", p.url, firstLine(RedactString(apiErr.Msg))),
			Cause:    "Prometheus refused or could not run the query " + query + " (a login it does not accept answers 401 or 403; a proxy in front may answer too).",
			Remedy:   finding.PrometheusError.Remedy(),
			Evidence: RedactString(reply)}
	}
	cause := "Nothing answered at that address, or the connection failed before Prometheus replied."
	if errors.Is(err, context.DeadlineExceeded) {
		cause = fmt.Sprintf("Prometheus did not answer within %s.", p.timeout)
	}
	return finding.Finding{Severity: finding.SeverityError, Code: finding.PrometheusUnreachable,
		Summary: fmt.Sprintf("Prometheus at %s cannot be reached: %s", p.url, RedactString(err.Error())),
		Cause:   cause,
		Remedy:  finding.PrometheusUnreachable.Remedy()}
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// registrySelector matches the given registry labels exactly.
func registrySelector(registries []string) string {
	if len(registries) == 0 {
		return ""
	}
	quoted := make([]string, len(registries))
	for i, r := range registries {
		quoted[i] = regexp.QuoteMeta(r)
	}
	// PromQL regexes are anchored; the string is a Go-quoted literal,
	// which PromQL reads the same way.
	return "{" + labelRegistry + "=~" + strconv.Quote(strings.Join(quoted, "|")) + "}"
}

// mergeSeries joins a query's rates, increases and histories by label set.
func mergeSeries(rates, increases model.Vector, history model.Matrix) []Series {
	byKey := map[model.Fingerprint]*Series{}
	var order []model.Fingerprint
	get := func(m model.Metric) *Series {
		fp := m.Fingerprint()
		s, ok := byKey[fp]
		if !ok {
			labels := make(map[string]string, len(m))
			for k, v := range m {
				if k != model.MetricNameLabel {
					labels[string(k)] = string(v)
				}
			}
			s = &Series{Labels: labels}
			byKey[fp] = s
			order = append(order, fp)
		}
		return s
	}
	for _, smp := range rates {
		if finite(float64(smp.Value)) {
			get(smp.Metric).Value = float64(smp.Value)
		}
	}
	for _, smp := range increases {
		if v := float64(smp.Value); finite(v) {
			get(smp.Metric).Increase = &v
		}
	}
	for _, stream := range history {
		s := get(stream.Metric)
		for _, sp := range stream.Values {
			if v := float64(sp.Value); finite(v) {
				s.History = append(s.History, Point{Time: sp.Timestamp.Time().UTC(), Value: v})
			}
		}
	}
	out := make([]Series, 0, len(order))
	for _, fp := range order {
		out = append(out, *byKey[fp])
	}
	slices.SortFunc(out, func(a, b Series) int { return compareLabels(a.Labels, b.Labels) })
	return out
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// summarize builds the per-registry lines and the findings.
func (r *QueryReport) summarize(asked []string, expectsAPI func(string) (bool, bool)) {
	by := map[string]*RegistryRates{}
	get := func(name string) *RegistryRates {
		rr, ok := by[name]
		if !ok {
			rr = &RegistryRates{Registry: name, Probes: map[string]float64{}, Discoveries: map[string]float64{}}
			if expectsAPI != nil {
				if e, known := expectsAPI(name); known {
					rr.ExpectsAPI = &e
				}
			}
			by[name] = rr
		}
		return rr
	}
	tagsRate := map[string]float64{}
	unknownRate := map[string]float64{}
	total := 0
	for _, q := range r.Queries {
		for _, s := range q.Series {
			total++
			rr := get(s.Labels[labelRegistry])
			inc := 0.0
			if s.Increase != nil {
				inc = *s.Increase
			}
			switch q.Name {
			case QueryCapabilities:
				rr.Probes[s.Labels[labelAPISupported]] += inc
				if s.Labels[labelAPISupported] == labelValueUnknown {
					unknownRate[rr.Registry] += s.Value
				}
			case QueryMethods:
				rr.Discoveries[s.Labels[labelMethod]] += inc
				rr.DiscoveryRate += s.Value
				rr.DiscoveryHistory = addPoints(rr.DiscoveryHistory, s.History)
				if s.Labels[labelMethod] == "tags" {
					tagsRate[rr.Registry] += s.Value
				}
			case QueryFailures:
				rr.Failures += inc
				rr.FailureRate += s.Value
				rr.FailureHistory = addPoints(rr.FailureHistory, s.History)
			}
		}
	}
	for _, rr := range by {
		r.Registries = append(r.Registries, *rr)
	}
	slices.SortFunc(r.Registries, func(a, b RegistryRates) int { return cmp.Compare(a.Registry, b.Registry) })

	if total == 0 {
		scope := "any registry"
		if len(asked) > 0 {
			scope = strings.Join(asked, ", ")
		}
		r.Findings = append(r.Findings, finding.Finding{Severity: finding.SeverityWarn, Code: finding.NoExportSeries,
			Summary: fmt.Sprintf("Prometheus at %s holds no export_* series for %s in the last %s", r.Prometheus, scope, r.Window),
			Cause:   "Nothing that exports the counters is scraped, the scrapes are younger than two samples, or the registry label is spelt differently (host[:port], lower case).",
			Remedy:  finding.NoExportSeries.Remedy()})
		return
	}
	for _, a := range asked {
		if _, ok := by[a]; !ok {
			r.Findings = append(r.Findings, finding.Finding{Severity: finding.SeverityWarn, Code: finding.NoExportSeries,
				Summary: fmt.Sprintf("No export_* series for registry %s in the last %s", a, r.Window),
				Cause:   "Nothing probed or discovered against this registry within the window, or its label is spelt differently (host[:port], lower case).",
				Remedy:  finding.NoExportSeries.Remedy()})
		}
	}
	for _, rr := range r.Registries {
		if rr.FailureRate > 0 {
			r.Findings = append(r.Findings, finding.Finding{Severity: finding.SeverityWarn, Code: finding.DiscoveryFailuresCounted,
				Summary:  fmt.Sprintf("Referrer discoveries against %s are failing: %s in the last %s (%s/s)", rr.Registry, approxCount(rr.Failures), r.Window, FormatNumber(rr.FailureRate)),
				Cause:    "A failed discovery leaves an incomplete referrer list; throttling (429), refused logins and timeouts are the usual causes.",
				Remedy:   fmt.Sprintf("Run refdoctor probe %s/REPO and refdoctor discover on an affected image to see why.", rr.Registry),
				Evidence: fmt.Sprintf("%s = %s", r.query(QueryFailures).PromQL, FormatNumber(rr.FailureRate))})
		}
		if tagsRate[rr.Registry] > 0 && rr.ExpectsAPI != nil && *rr.ExpectsAPI {
			r.Findings = append(r.Findings, finding.Finding{Severity: finding.SeverityWarn, Code: finding.DiscoveryByTagsExpectedAPI,
				Summary:  fmt.Sprintf("Discoveries against %s use the fallback tags, but the known-registry matrix expects the referrers API", rr.Registry),
				Cause:    "The capability probe did not find the API: an older registry version, a proxy answering /referrers, or a probe that could not decide.",
				Remedy:   fmt.Sprintf("refdoctor probe --refresh %s/REPO to see what /referrers answers.", rr.Registry),
				Evidence: fmt.Sprintf("method=\"tags\" at %s/s", FormatNumber(tagsRate[rr.Registry]))})
		}
		if unknownRate[rr.Registry] > 0 {
			r.Findings = append(r.Findings, finding.Finding{Severity: finding.SeverityWarn, Code: finding.ProbesUndecided,
				Summary:  fmt.Sprintf("Capability probes of %s could not decide (api_supported=\"unknown\") in the last %s", rr.Registry, r.Window),
				Cause:    "Throttling, refused logins, TLS trouble or timeouts; these say nothing about support.",
				Remedy:   fmt.Sprintf("refdoctor probe %s/REPO shows the reply that stopped the probe.", rr.Registry),
				Evidence: fmt.Sprintf("%s probes, %s/s", approxCount(rr.Probes[labelValueUnknown]), FormatNumber(unknownRate[rr.Registry]))})
		}
	}
}

func (r *QueryReport) query(name string) Query {
	for _, q := range r.Queries {
		if q.Name == name {
			return q
		}
	}
	return Query{}
}

// addPoints sums two histories point by point (same timestamps).
func addPoints(acc, more []Point) []Point {
	if len(more) == 0 {
		return acc
	}
	sum := map[time.Time]float64{}
	for _, p := range acc {
		sum[p.Time] += p.Value
	}
	for _, p := range more {
		sum[p.Time] += p.Value
	}
	out := make([]Point, 0, len(sum))
	for t, v := range sum {
		out = append(out, Point{Time: t, Value: v})
	}
	slices.SortFunc(out, func(a, b Point) int { return a.Time.Compare(b.Time) })
	return out
}

// approxCount writes an increase() value as the whole count it stands for
// (Prometheus extrapolates to the window's edges, so 6.21 means 6), unless
// that would round a real increase down to nothing.
func approxCount(v float64) string {
	if n := math.Round(v); n != 0 {
		return FormatNumber(n)
	}
	return FormatNumber(v)
}

// FormatNumber writes a counter or rate compactly: whole numbers without
// decimals, others with up to three significant digits.
func FormatNumber(v float64) string {
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	return strconv.FormatFloat(v, 'g', 3, 64)
}
