// Package probe tells an operator the truth about a registry's OCI
// referrers support. It asks the registry, through regclient, for /v2/, a
// tag list and a referrers list, records every exchange, and classifies the
// reply that decided the verdict as the OCI distribution spec 1.1 says:
// only a 200 carrying an OCI image index means "supported". Results carry
// the known-registry matrix's expectation and findings with cause and
// remedy. Probes of many registries run concurrently, and conclusive
// verdicts are cached on disk.
package probe

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"github.com/regclient/regclient/scheme"
	"github.com/regclient/regclient/types/ref"
	"golang.org/x/sync/errgroup"

	"github.com/refdoctor/refdoctor/config"
	"github.com/refdoctor/refdoctor/finding"
	"github.com/refdoctor/refdoctor/registry"
	"github.com/refdoctor/refdoctor/telemetry"
)

// probeTagLimit bounds the tag list a probe reads.
const probeTagLimit = 100

// Result is everything one probe learned about one registry.
type Result struct {
	Registry   string `json:"registry"`
	Target     string `json:"target"`
	Repository string `json:"repository,omitempty"`
	// Kind is the matrix kind this host belongs to ("unknown" if none).
	Kind      string `json:"kind"`
	Reachable bool   `json:"reachable"`
	V2Status  int    `json:"v2_status"`
	// DistributionAPIVersion is Docker-Distribution-API-Version: recorded,
	// never used to decide anything.
	DistributionAPIVersion    string       `json:"distribution_api_version"`
	OCIDistributionAPIVersion string       `json:"oci_distribution_api_version,omitempty"`
	Auth                      string       `json:"auth"`
	AuthError                 string       `json:"auth_error,omitempty"`
	ReferrersAPI              Verdict      `json:"referrers_api"`
	ReferrersReason           finding.Code `json:"referrers_reason"`
	ReferrersStatus           int          `json:"referrers_status"`
	ReferrersContentType      string       `json:"referrers_content_type"`
	ReferrersIndexParsed      bool         `json:"referrers_index_parsed"`
	ReferrersDigest           string       `json:"referrers_digest,omitempty"`
	// FallbackTags says whether the tag list, the fallback path, works:
	// ok | not-found | denied | rate-limited | failed | not-checked.
	FallbackTags string              `json:"fallback_tags"`
	RateLimit    *RateLimit          `json:"rate_limit"`
	ProbeMS      int64               `json:"probe_ms"`
	Error        string              `json:"error"`
	Findings     []finding.Finding   `json:"findings"`
	Expected     *Expectation        `json:"expected"`
	Exchanges    []registry.Exchange `json:"exchanges,omitempty"`
	Cached       bool                `json:"cached"`
	ProbedAt     time.Time           `json:"probed_at"`
}

// RateLimit holds Docker Hub style rate-limit headers.
type RateLimit struct {
	Limit      string `json:"limit,omitempty"`
	Remaining  string `json:"remaining,omitempty"`
	Source     string `json:"source,omitempty"`
	RetryAfter string `json:"retry_after,omitempty"`
	Throttled  bool   `json:"throttled"`
}

// Expectation is the matrix row for the registry's kind.
type Expectation struct {
	Kind         string `json:"kind"`
	Name         string `json:"name"`
	ReferrersAPI string `json:"referrers_api"`
	Since        string `json:"since,omitempty"`
	LastSeen     string `json:"last_seen"`
	Notes        string `json:"notes,omitempty"`
	Matches      *bool  `json:"matches"`
}

// Report is the result of one Run.
type Report struct {
	Registries []Result `json:"registries"`
}

// Outcome: incomplete when the verdict could not be reached (network,
// auth, throttling), failed when an error finding stands, warn when a
// warning does.
func (r Result) Outcome() finding.Outcome {
	if r.ReferrersAPI == Unknown {
		if r.ReferrersReason == finding.RepositoryNotFound {
			return finding.OutcomeFailed
		}
		return finding.OutcomeIncomplete
	}
	return finding.OutcomeOf(r.Findings)
}

// EventKind names a probe event.
type EventKind string

const (
	EventStarted  EventKind = "started"
	EventExchange EventKind = "exchange"
	EventFinished EventKind = "finished"
)

// Event reports progress; the CLI prints it, the TUI animates it.
type Event struct {
	Kind     EventKind          `json:"kind"`
	Target   string             `json:"target"`
	Exchange *registry.Exchange `json:"exchange,omitempty"`
	Result   *Result            `json:"result,omitempty"`
}

type options struct {
	cfg         config.Config
	concurrency int
	timeout     time.Duration
	log         *slog.Logger
	metrics     *telemetry.Metrics
	events      func(Event)
	cache       *Cache
	refresh     bool
	matrix      Matrix
	clientOpts  []registry.Opt
}

// Opt configures Run.
type Opt func(*options)

// WithConfig supplies hosts (plain HTTP, CAs, expected kinds) and defaults.
func WithConfig(c config.Config) Opt { return func(o *options) { o.cfg = c } }

// WithConcurrency bounds how many registries are probed at once.
func WithConcurrency(n int) Opt { return func(o *options) { o.concurrency = n } }

// WithTimeout bounds each registry's probe.
func WithTimeout(d time.Duration) Opt { return func(o *options) { o.timeout = d } }

// WithLogger receives the probe log lines the runbook greps for.
func WithLogger(l *slog.Logger) Opt { return func(o *options) { o.log = l } }

// WithMetrics counts probes in export_registry_capabilities_probed_total.
func WithMetrics(m *telemetry.Metrics) Opt { return func(o *options) { o.metrics = m } }

// WithEvents receives progress events; fn must not block for long.
func WithEvents(fn func(Event)) Opt { return func(o *options) { o.events = fn } }

// WithCache answers from c within its TTL and stores conclusive verdicts.
func WithCache(c *Cache) Opt { return func(o *options) { o.cache = c } }

// WithRefresh probes even when the cache holds a fresh answer.
func WithRefresh(b bool) Opt { return func(o *options) { o.refresh = b } }

// WithMatrix replaces the embedded known-registry matrix.
func WithMatrix(m Matrix) Opt { return func(o *options) { o.matrix = m } }

// WithClientOpts passes options to every registry client a probe builds.
func WithClientOpts(opts ...registry.Opt) Opt {
	return func(o *options) { o.clientOpts = append(o.clientOpts, opts...) }
}

// Run probes every target, at most the configured number at once, and
// returns results in the order of targets. The error is only for the tool
// itself failing (a canceled context); registry trouble is in each Result.
func Run(ctx context.Context, targets []Target, opts ...Opt) (Report, error) {
	o := options{cfg: config.Defaults(), concurrency: 4, timeout: 30 * time.Second, matrix: DefaultMatrix()}
	for _, opt := range opts {
		opt(&o)
	}
	if o.log == nil {
		o.log = slog.New(slog.DiscardHandler)
	}
	if o.concurrency < 1 {
		o.concurrency = 1
	}
	o.log.Info(fmt.Sprintf("Probing %d registries for OCI referrer capabilities before export", len(targets)))
	results := make([]Result, len(targets))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(o.concurrency)
	for i, t := range targets {
		g.Go(func() (err error) {
			defer func() {
				if p := recover(); p != nil {
					err = fmt.Errorf("probe %s panicked: %v\n%s", t, p, debug.Stack())
				}
			}()
			results[i] = probeOne(gctx, t, &o)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return Report{Registries: results}, err
	}
	return Report{Registries: results}, ctx.Err()
}

func (o *options) emit(e Event) {
	if o.events != nil {
		o.events(e)
	}
}

func probeOne(ctx context.Context, t Target, o *options) Result {
	o.emit(Event{Kind: EventStarted, Target: t.String()})
	if o.cache != nil && !o.refresh {
		if r, ok := o.cache.Get(t.String()); ok {
			r.Cached = true
			o.emit(Event{Kind: EventFinished, Target: t.String(), Result: &r})
			return r
		}
	}
	start := time.Now()
	r := Result{Registry: t.Host, Target: t.String(), Repository: t.Repository, Kind: "unknown", FallbackTags: "not-checked", ReferrersAPI: Unknown, ProbedAt: start.UTC()}
	o.expect(&r)
	pctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	p := prober{o: o, t: t, r: &r}
	p.run(pctx)
	r.ProbeMS = time.Since(start).Milliseconds()
	p.finish()

	version := r.DistributionAPIVersion
	if r.OCIDistributionAPIVersion != "" {
		version = r.OCIDistributionAPIVersion
	}
	if version == "" {
		version = "none"
	}
	switch r.ReferrersAPI {
	case Supported:
		o.log.Info(fmt.Sprintf("Registry %s: OCI 1.1 (referrers API supported, version=%s, probe_ms=%d)", t.Host, version, r.ProbeMS))
	case Unsupported:
		o.log.Warn(fmt.Sprintf("Registry %s: OCI 1.0 (using fallback tag discovery, version=%s, probe_ms=%d)", t.Host, version, r.ProbeMS))
	default:
		o.log.Warn(fmt.Sprintf("Failed to probe capabilities for registry %s: %s (referrers API unknown, version=%s, probe_ms=%d)", t.Host, r.ReferrersReason, version, r.ProbeMS))
	}
	apiLabel := map[Verdict]string{Supported: "true", Unsupported: "false"}[r.ReferrersAPI]
	if apiLabel == "" {
		apiLabel = "unknown"
	}
	o.metrics.CapabilityProbed(t.Host, apiLabel)
	if o.cache != nil && r.ReferrersAPI != Unknown && ctx.Err() == nil {
		if err := o.cache.Put(t.String(), r); err != nil {
			o.log.Warn("capability cache not written", "err", err)
		}
	}
	o.emit(Event{Kind: EventFinished, Target: t.String(), Result: &r})
	return r
}

// expect fills the kind and the matrix expectation: the host's own row,
// else the kind named in the config.
func (o *options) expect(r *Result) {
	kind, ok := o.matrix.Match(r.Registry)
	if !ok {
		if h, found := o.cfg.Host(r.Registry); found && h.Expected != "" {
			kind, ok = o.matrix.Get(h.Expected)
		}
	}
	if !ok {
		return
	}
	r.Kind = kind.Key
	r.Expected = &Expectation{Kind: kind.Key, Name: kind.Name, ReferrersAPI: kind.ReferrersAPI, Since: kind.Since, LastSeen: kind.LastSeen, Notes: kind.Notes}
}

// prober carries one probe's state.
type prober struct {
	o   *options
	t   Target
	r   *Result
	rec []*registry.Recorder
}

func (p *prober) client() (*registry.Client, error) {
	return p.clientWatching(nil)
}

// clientWatching builds a fresh client whose exchanges are emitted as
// events and also passed to watch.
func (p *prober) clientWatching(watch func(registry.Exchange)) (*registry.Client, error) {
	rec := registry.NewTimedRecorder(p.o.timeout)
	rec.OnRecord(func(ex registry.Exchange) {
		p.o.emit(Event{Kind: EventExchange, Target: p.t.String(), Exchange: &ex})
		if watch != nil {
			watch(ex)
		}
	})
	opts := append([]registry.Opt{registry.WithTimeout(p.o.timeout), registry.WithRecorder(rec), registry.WithRetryLimit(1)}, p.o.clientOpts...)
	c, err := registry.New(p.o.cfg, opts...)
	if err != nil {
		return nil, err
	}
	p.rec = append(p.rec, rec)
	return c, nil
}

func (p *prober) exchanges() []registry.Exchange {
	var all []registry.Exchange
	for _, rec := range p.rec {
		all = append(all, rec.Exchanges()...)
	}
	return all
}

func (p *prober) run(ctx context.Context) {
	c, err := p.client()
	if err != nil {
		p.r.Error = err.Error()
		p.r.Findings = append(p.r.Findings, finding.Finding{Severity: finding.SeverityError, Code: finding.ClientSetup, Summary: "Could not set up the registry client", Cause: err.Error(), Remedy: "Fix the [[registry]] entry for this host."})
		return
	}
	if !p.ping(ctx, c) {
		return
	}
	repoKnown := p.t.Repository != ""
	if !repoKnown {
		p.r.Repository = p.pickRepository(ctx, c)
	}
	realDigest := p.tagList(ctx, c)
	digest := p.t.Digest
	if digest == "" {
		digest = ZeroDigest
	}
	cls := p.referrers(ctx, digest)
	if cls.RetryWithRealDigest && digest == ZeroDigest && realDigest != nil {
		if d := realDigest(); d != "" {
			p.r.Findings = append(p.r.Findings, finding.Finding{Severity: finding.SeverityInfo, Code: finding.ReprobedWithRealDigest,
				Summary: "Probed again with a digest from the repository", Cause: cls.Finding.Summary, Evidence: d})
			cls = p.referrers(ctx, d)
		}
	}
	p.r.ReferrersAPI = cls.Verdict
	p.r.ReferrersReason = cls.Reason
	p.r.ReferrersIndexParsed = cls.IndexParsed
	if cls.Finding.Code != "" {
		p.r.Findings = append(p.r.Findings, cls.Finding)
	}
	if cls.Verdict == Unsupported && p.r.FallbackTags != "ok" && p.r.FallbackTags != "not-found" {
		p.r.Findings = append(p.r.Findings, finding.Finding{Severity: finding.SeverityError, Code: finding.NoDiscoveryPath,
			Summary: "Neither the referrers API nor the tag list works: referrers cannot be discovered",
			Cause:   fmt.Sprintf("The referrers API is unavailable and listing tags gave %q.", p.r.FallbackTags),
			Remedy:  "Grant pull (and list) permission on the repository, or use a registry with the referrers API."})
	}
}

// ping checks /v2/ and learns reachability, auth mode and version headers.
func (p *prober) ping(ctx context.Context, c *registry.Client) bool {
	hostRef, err := ref.NewHost(p.t.Host)
	if err != nil {
		p.r.Error = err.Error()
		return false
	}
	_, pingErr := c.Ping(ctx, hostRef)
	exs := c.Recorder.Exchanges()
	for _, ex := range exs {
		if !isV2Root(ex.Path) {
			continue
		}
		if ex.Err != nil {
			code, summary, cause, remedy := ClassifyTransportError(ex.Err)
			p.r.Error = summary + ": " + ex.Error
			p.r.ReferrersReason = code
			p.r.Findings = append(p.r.Findings, finding.Finding{Severity: finding.SeverityError, Code: code, Summary: summary, Cause: cause, Remedy: remedy, Evidence: ex.Error})
			return false
		}
		p.r.Reachable = true
		p.r.V2Status = ex.Status
		p.noteHeaders(ex)
		if ex.Status == http.StatusUnauthorized {
			p.r.Auth = authScheme(ex.Headers["WWW-Authenticate"])
		}
		if ex.Status == http.StatusBadRequest && strings.Contains(string(ex.Body), "HTTP request to an HTTPS server") {
			p.r.Findings = append(p.r.Findings, finding.Finding{Severity: finding.SeverityError, Code: finding.PlainHTTPToTLSServer,
				Summary: "Plain HTTP was sent to an HTTPS registry", Cause: "The host is configured for plain HTTP but serves TLS.",
				Remedy: "Drop --plain-http for this host (or plain_http in the config)."})
		}
	}
	if p.r.Auth == "" {
		p.r.Auth = "anonymous"
	}
	for _, ex := range exs {
		if !isV2Root(ex.Path) && !strings.HasPrefix(ex.Path, "/v2/") && ex.Status >= 400 {
			// a token endpoint refused the login
			p.r.AuthError = fmt.Sprintf("token endpoint %s answered %d", ex.Path, ex.Status)
		}
	}
	if !p.r.Reachable {
		if pingErr != nil {
			p.r.Error = pingErr.Error()
		}
		return false
	}
	// The last /v2/ reply is the one after any login attempt.
	if p.r.V2Status == http.StatusUnauthorized || p.r.V2Status == http.StatusForbidden {
		if p.r.AuthError == "" {
			p.r.AuthError = "no login for this host, or the login was refused"
		}
		p.r.Findings = append(p.r.Findings, finding.Finding{Severity: finding.SeverityError, Code: finding.AuthFailed,
			Summary: fmt.Sprintf("Authentication to %s failed (%s auth): %s", p.t.Host, p.r.Auth, p.r.AuthError),
			Cause:   "The registry requires a login, and refdoctor had none for this host or it was refused (logins come from docker config.json and credential helpers).",
			Remedy:  "docker login " + p.t.Host + " (or configure a credential helper), then probe again."})
	}
	return true
}

func isV2Root(path string) bool { return path == "/v2/" || path == "/v2" }

func authScheme(h string) string {
	scheme, _, _ := strings.Cut(strings.TrimSpace(h), " ")
	switch strings.ToLower(scheme) {
	case "bearer":
		return "bearer"
	case "basic":
		return "basic"
	case "":
		return "unknown"
	}
	return strings.ToLower(scheme)
}

func (p *prober) noteHeaders(ex registry.Exchange) {
	if v := ex.Headers["Docker-Distribution-API-Version"]; v != "" {
		p.r.DistributionAPIVersion = v
	}
	if v := ex.Headers["OCI-Distribution-API-Version"]; v != "" {
		p.r.OCIDistributionAPIVersion = v
	}
	limit, remaining := ex.Headers["RateLimit-Limit"], ex.Headers["RateLimit-Remaining"]
	if limit == "" {
		limit, remaining = ex.Headers["X-RateLimit-Limit"], ex.Headers["X-RateLimit-Remaining"]
	}
	if limit != "" || remaining != "" || ex.Status == http.StatusTooManyRequests {
		if p.r.RateLimit == nil {
			p.r.RateLimit = &RateLimit{}
		}
		rl := p.r.RateLimit
		if limit != "" {
			rl.Limit = limit
		}
		if remaining != "" {
			rl.Remaining = remaining
		}
		if v := ex.Headers["Docker-RateLimit-Source"]; v != "" {
			rl.Source = v
		}
		if ex.Status == http.StatusTooManyRequests {
			rl.Throttled = true
			rl.RetryAfter = ex.Headers["Retry-After"]
		}
	}
}

// pickRepository finds a repository to probe when only a host was given:
// the first one the catalog lists, else a placeholder whose 404 is
// recognised as "repository unknown".
func (p *prober) pickRepository(ctx context.Context, c *registry.Client) string {
	// One page of one name: a catalog can list every repository of a
	// large registry, and the probe needs only one.
	list, err := c.RepoList(ctx, p.t.Host, scheme.WithRepoLimit(1))
	if err == nil {
		if repos, err := list.GetRepos(); err == nil && len(repos) > 0 {
			return repos[0]
		}
	}
	p.r.Findings = append(p.r.Findings, finding.Finding{Severity: finding.SeverityInfo, Code: finding.NoRepositoryGiven,
		Summary: "No repository given and the catalog lists none: probing a placeholder repository",
		Remedy:  "For a certain verdict give an existing repository: refdoctor probe HOST/REPO."})
	return "refdoctor-probe/placeholder"
}

// tagList checks the fallback path and returns a function that finds a
// real digest in the repository, for registries that treat the all-zeros
// placeholder specially.
func (p *prober) tagList(ctx context.Context, c *registry.Client) func() string {
	r, err := ref.New(p.t.Host + "/" + p.r.Repository)
	if err != nil {
		p.r.FallbackTags = "failed"
		return nil
	}
	before := c.Recorder.Len()
	// The first page is enough to know the fallback path works and to
	// find a real digest; a repository with thousands of tags is not read
	// whole for a probe.
	tl, err := c.TagList(ctx, r, scheme.WithTagLimit(probeTagLimit))
	for _, ex := range c.Recorder.Exchanges()[before:] {
		p.noteHeaders(ex)
	}
	if err != nil {
		exs := c.Recorder.Exchanges()[before:]
		status := 0
		for _, ex := range exs {
			if strings.HasSuffix(ex.Path, "/tags/list") {
				status = ex.Status
			}
		}
		switch status {
		case http.StatusNotFound:
			p.r.FallbackTags = "not-found"
			if p.t.Repository != "" {
				p.r.Findings = append(p.r.Findings, finding.Finding{Severity: finding.SeverityError, Code: finding.RepositoryNotFound,
					Summary: fmt.Sprintf("Repository %s not found on %s", p.t.Repository, p.t.Host),
					Cause:   "The tag list answered 404: the repository does not exist or is hidden from this login.",
					Remedy:  "Check the repository name (and that the login may see it), then probe again."})
			}
		case http.StatusUnauthorized, http.StatusForbidden:
			p.r.FallbackTags = "denied"
		case http.StatusTooManyRequests:
			p.r.FallbackTags = "rate-limited"
		default:
			p.r.FallbackTags = "failed"
		}
		return nil
	}
	p.r.FallbackTags = "ok"
	tags, _ := tl.GetTags()
	if len(tags) == 0 && p.t.Repository != "" {
		p.r.Findings = append(p.r.Findings, finding.Finding{Severity: finding.SeverityWarn, Code: finding.RepositoryEmpty,
			Summary: fmt.Sprintf("Repository %s on %s lists no tags", p.t.Repository, p.t.Host),
			Cause:   "Some registries answer an empty tag list for a repository that does not exist.",
			Remedy:  "Check the repository name; probe HOST/REPO@DIGEST with an image you know is there."})
	}
	return func() string {
		for _, tag := range tags {
			if strings.HasPrefix(tag, "sha256-") || strings.HasPrefix(tag, "sha512-") {
				continue
			}
			m, err := c.ManifestHead(ctx, r.SetTag(tag))
			if err == nil && m.GetDescriptor().Digest != "" {
				return m.GetDescriptor().Digest.String()
			}
		}
		return ""
	}
}

// referrers asks for the referrers of digest with a fresh client (regclient
// remembers a repository's API support per client) and classifies the
// final reply of the referrers endpoint.
func (p *prober) referrers(ctx context.Context, digest string) Classification {
	p.r.ReferrersDigest = digest
	// The probe needs only the referrers endpoint's final reply. Once it is
	// recorded, stop regclient from going on to its own tag fallback, which
	// after a 429 would wait out the registry's Retry-After.
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	c, err := p.clientWatching(func(ex registry.Exchange) {
		if strings.Contains(ex.Path, "/referrers/") && ex.Err == nil && ex.Status != http.StatusUnauthorized {
			stop()
		}
	})
	if err != nil {
		return Classification{Verdict: Unknown, Reason: finding.ClientSetup}
	}
	r, err := ref.New(p.t.Host + "/" + p.r.Repository + "@" + digest)
	if err != nil {
		return Classification{Verdict: Unknown, Reason: finding.BadReference, Finding: finding.Finding{Severity: finding.SeverityError, Code: finding.BadReference, Summary: err.Error()}}
	}
	_, listErr := c.ReferrerList(ctx, r)
	var last *registry.Exchange
	exs := c.Recorder.Exchanges()
	for i := range exs {
		p.noteHeaders(exs[i])
		if strings.Contains(exs[i].Path, "/referrers/") {
			last = &exs[i]
		}
	}
	if last == nil {
		e := listErr
		if e == nil {
			e = errors.New("no referrers request was sent")
		}
		if err := context.Cause(ctx); err != nil {
			e = err
		}
		return ClassifyReferrersReply(ReferrersReply{Err: e})
	}
	p.r.ReferrersStatus = last.Status
	p.r.ReferrersContentType = last.ContentType
	reply := ReferrersReply{Status: last.Status, ContentType: last.ContentType, Body: last.Body, Err: last.Err,
		ZeroDigest: digest == ZeroDigest, RepositoryExists: p.r.FallbackTags == "ok"}
	return ClassifyReferrersReply(reply)
}

// finish attaches the exchanges and compares observation with the matrix.
func (p *prober) finish() {
	p.r.Exchanges = p.exchanges()
	if p.r.Findings == nil {
		p.r.Findings = []finding.Finding{}
	}
	e := p.r.Expected
	if e == nil || p.r.ReferrersAPI == Unknown {
		return
	}
	var matches bool
	switch e.ReferrersAPI {
	case "supported":
		matches = p.r.ReferrersAPI == Supported
	case "unsupported":
		matches = p.r.ReferrersAPI == Unsupported
	default:
		matches = true
	}
	e.Matches = &matches
	if matches {
		if e.ReferrersAPI == "varies" && p.r.ReferrersAPI == Unsupported {
			p.r.Findings = append(p.r.Findings, finding.Finding{Severity: finding.SeverityInfo, Code: finding.VersionDependent,
				Summary: fmt.Sprintf("%s serves the referrers API from %s; this one does not", e.Name, e.Since),
				Cause:   e.Notes, Remedy: fmt.Sprintf("Upgrade %s to %s or later for the API; until then discovery uses fallback tags.", e.Name, e.Since)})
		}
		return
	}
	since := ""
	if e.Since != "" {
		since = " since " + e.Since
	}
	p.r.Findings = append(p.r.Findings, finding.Finding{Severity: finding.SeverityWarn, Code: finding.ExpectationMismatch,
		Summary: fmt.Sprintf("Matrix expects %s to be %s%s (last seen %s); observed %s", e.Name, e.ReferrersAPI, since, e.LastSeen, p.r.ReferrersAPI),
		Cause:   strings.TrimSpace("The registry's version or configuration differs from the matrix row. " + e.Notes),
		Remedy:  "Trust the observation; check the registry version, and correct the matrix row if the vendor changed behaviour."})
}
