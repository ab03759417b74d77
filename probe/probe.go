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
	"net/url"
	"runtime/debug"
	"strconv"
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
	Kind string `json:"kind"`
	// KindSource says where Kind came from: "config" (the [[registry]]
	// entry's expected), "host" (recognised from the host name), or
	// empty when the kind is unknown.
	KindSource string `json:"kind_source,omitempty"`
	Reachable  bool   `json:"reachable"`
	V2Status   int    `json:"v2_status"`
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
	// Cached is true when the verdict came from the capability cache;
	// CachedAt is when it was probed and CachedBy the command that did.
	Cached   bool      `json:"cached"`
	CachedAt time.Time `json:"cached_at,omitzero"`
	CachedBy string    `json:"cached_by,omitempty"`
	ProbedAt time.Time `json:"probed_at"`
}

// RateLimit holds the registry's rate-limit headers (Docker Hub's
// RateLimit-*, X-RateLimit-*, Retry-After).
type RateLimit struct {
	Limit      string `json:"limit,omitempty"`
	Remaining  string `json:"remaining,omitempty"`
	Source     string `json:"source,omitempty"`
	RetryAfter string `json:"retry_after,omitempty"`
	Throttled  bool   `json:"throttled"`
	// RetryAt is when the registry says it answers again (from
	// Retry-After or RateLimit-Reset), absent when it said nothing.
	RetryAt time.Time `json:"retry_at,omitzero"`
	// Low is true when the budget left is a tenth of the limit or less.
	Low bool `json:"low,omitempty"`
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
	// KnownBehaviour is the kind's dated quirk the replies matched.
	KnownBehaviour *Quirk `json:"known_behaviour,omitempty"`
}

// Report is the result of one Run.
type Report struct {
	Registries []Result `json:"registries"`
}

// Outcome: incomplete when the verdict could not be reached (network,
// auth, throttling, not a registry), failed when an error finding stands,
// warn when a warning does.
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
	cacheSet    bool
	refresh     bool
	matrix      Matrix
	clientOpts  []registry.Opt
	purpose     string
	session     *Session
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

// WithCache answers from c within its TTL and stores conclusive verdicts
// there, instead of the cache the configuration names (OpenCache); nil
// keeps no cache.
func WithCache(c *Cache) Opt { return func(o *options) { o.cache, o.cacheSet = c, true } }

// WithRefresh probes even when the cache holds a fresh answer (the fresh
// verdict is stored as usual).
func WithRefresh(b bool) Opt { return func(o *options) { o.refresh = b } }

// WithMatrix replaces the embedded known-registry matrix.
func WithMatrix(m Matrix) Opt { return func(o *options) { o.matrix = m } }

// WithPurpose ends the "Probing N registries ..." log line with what the
// probes are for ("before export"); the default says nothing more.
func WithPurpose(p string) Opt { return func(o *options) { o.purpose = p } }

// WithSession shares verdicts between the Runs of one command: a target
// already probed (or being probed) in the session is answered from it,
// without another request, log line or announcement. WithRefresh
// bypasses it.
func WithSession(s *Session) Opt { return func(o *options) { o.session = s } }

// WithClientOpts passes options to every registry client a probe builds.
func WithClientOpts(opts ...registry.Opt) Opt {
	return func(o *options) { o.clientOpts = append(o.clientOpts, opts...) }
}

// Run probes every target, at most the configured number at once, and
// returns results in the order of targets. Verdicts come from the
// capability cache the configuration names (see OpenCache) while they are
// fresh, unless WithRefresh or WithCache says otherwise. The error is only
// for the tool itself failing (a canceled context); registry trouble is in
// each Result.
func Run(ctx context.Context, targets []Target, opts ...Opt) (Report, error) {
	o := options{cfg: config.Defaults(), concurrency: 4, timeout: registry.DefaultTimeout, matrix: DefaultMatrix()}
	for _, opt := range opts {
		opt(&o)
	}
	if o.log == nil {
		o.log = slog.New(slog.DiscardHandler)
	}
	if !o.cacheSet {
		o.cache = OpenCache(o.cfg)
	}
	if o.concurrency < 1 {
		o.concurrency = 1
	}
	// A target the session already holds is answered from it; the rest
	// are announced once, with their number, and each gets its verdict
	// line.
	claims := make([]*sessionEntry, len(targets))
	owned := make([]bool, len(targets))
	fresh := 0
	for i, t := range targets {
		claims[i], owned[i] = o.session.claim(CacheKey(o.cfg, t), o.refresh)
		if owned[i] {
			fresh++
		}
	}
	if fresh > 0 {
		msg := fmt.Sprintf("Probing %d registries for OCI referrer capabilities", fresh)
		if o.purpose != "" {
			msg += " " + o.purpose
		}
		o.log.Info(msg)
	}
	results := make([]Result, len(targets))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(o.concurrency)
	for i, t := range targets {
		e := claims[i]
		if !owned[i] {
			continue
		}
		g.Go(func() (err error) {
			defer func() {
				if p := recover(); p != nil {
					err = fmt.Errorf("probe %s panicked: %v\n%s", t, p, debug.Stack())
					if e != nil {
						e.fill(Result{Registry: t.Host, Target: t.String(), Repository: t.Repository, Kind: "unknown", ReferrersAPI: Unknown, Error: fmt.Sprint(p)})
					}
				}
			}()
			results[i] = probeOne(gctx, t, &o)
			if e != nil {
				e.fill(results[i])
			}
			return nil
		})
	}
	werr := g.Wait()
	for i, t := range targets {
		if owned[i] {
			continue
		}
		r, ok := claims[i].wait(ctx)
		if !ok {
			r = Result{Registry: t.Host, Target: t.String(), Repository: t.Repository, Kind: "unknown", FallbackTags: "not-checked", ReferrersAPI: Unknown, Error: ctx.Err().Error()}
		}
		r.Target = t.String()
		results[i] = r
		o.emit(Event{Kind: EventStarted, Target: t.String()})
		o.emit(Event{Kind: EventFinished, Target: t.String(), Result: &results[i]})
	}
	if werr != nil {
		return Report{Registries: results}, werr
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
	key := CacheKey(o.cfg, t)
	if o.cache != nil && !o.refresh {
		if e, ok := o.cache.Get(key); ok {
			r := e.result(t)
			o.expect(&r)
			finishExpectation(&r, o.matrix)
			o.logVerdict(r)
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
	o.logVerdict(r)

	apiLabel := map[Verdict]string{Supported: "true", Unsupported: "false"}[r.ReferrersAPI]
	if apiLabel == "" {
		apiLabel = "unknown"
	}
	o.metrics.CapabilityProbed(t.Host, apiLabel)
	if o.cache != nil && ctx.Err() == nil && Cacheable(r) {
		if err := o.cache.Put(key, r, o.cfg.Cache.Origin); err != nil {
			o.log.Debug("capability cache not written", "registry", t.Host, "err", err)
		}
	}
	o.emit(Event{Kind: EventFinished, Target: t.String(), Result: &r})
	return r
}

// logVerdict writes the line the runbook greps for, for fresh and cached
// verdicts alike.
func (o *options) logVerdict(r Result) {
	version := r.DistributionAPIVersion
	if r.OCIDistributionAPIVersion != "" {
		version = r.OCIDistributionAPIVersion
	}
	if version == "" {
		version = "none"
	}
	cached := ""
	if r.Cached {
		cached = fmt.Sprintf(", cached=true, age=%s", cacheAge(time.Since(r.CachedAt)))
	}
	switch r.ReferrersAPI {
	case Supported:
		o.log.Info(fmt.Sprintf("Registry %s: OCI 1.1 (referrers API supported, version=%s, probe_ms=%d%s)", r.Registry, version, r.ProbeMS, cached))
	case Unsupported:
		o.log.Warn(fmt.Sprintf("Registry %s: OCI 1.0 (using fallback tag discovery, version=%s, probe_ms=%d%s)", r.Registry, version, r.ProbeMS, cached))
	default:
		o.log.Warn(fmt.Sprintf("Failed to probe capabilities for registry %s: %s (referrers API unknown, version=%s, probe_ms=%d)", r.Registry, r.ReferrersReason, version, r.ProbeMS))
	}
}

// expect fills the kind and the matrix expectation: the kind the
// config's [[registry]] entry names (the operator's word wins), else the
// row the host name matches.
func (o *options) expect(r *Result) {
	kind, source, ok := o.matrix.KindOf(o.cfg, r.Registry)
	if !ok {
		return
	}
	r.Kind, r.KindSource = kind.Key, source
	r.Expected = &Expectation{Kind: kind.Key, Name: kind.Name, ReferrersAPI: kind.ReferrersAPI, Since: kind.Since, LastSeen: kind.LastSeen, Notes: kind.Notes}
}

// prober carries one probe's state.
type prober struct {
	o   *options
	t   Target
	r   *Result
	rec []*registry.Recorder
	// authFailed is set when /v2/ still refuses after the login attempt:
	// nothing the registry says after that can be judged.
	authFailed bool
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
	// A 429 whose wait does not fit in the probe's time ends the probe at
	// once, instead of regclient sleeping until the deadline.
	ctx, stop := registry.StopWhenThrottled(ctx)
	defer stop()
	defer p.noteThrottled(ctx)
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
	if throttled(ctx) {
		return
	}
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
	if p.authFailed && cls.Verdict != Supported {
		// Without a working login the registry's other answers say nothing
		// certain about discovery: the verdict is the missing login.
		p.r.ReferrersAPI = Unknown
		p.r.ReferrersReason = finding.AuthFailed
		if cls.Finding.Code != "" {
			cls.Finding.Severity = finding.SeverityInfo
			cls.Finding.Summary = "Without a login: " + cls.Finding.Summary
		}
	}
	if cls.Finding.Code != "" {
		p.r.Findings = append(p.r.Findings, cls.Finding)
	}
	if p.r.ReferrersAPI == Unsupported && p.r.FallbackTags != "ok" && p.r.FallbackTags != "not-found" {
		p.r.Findings = append(p.r.Findings, finding.Finding{Severity: finding.SeverityError, Code: finding.NoDiscoveryPath,
			Summary: "Neither the referrers API nor the tag list works: referrers cannot be discovered",
			Cause:   fmt.Sprintf("The referrers API is unavailable and listing tags gave %q.", p.r.FallbackTags),
			Remedy:  "Grant pull (and list) permission on the repository, or use a registry with the referrers API."})
	}
}

// throttled reports whether ctx ended because the registry throttled.
func throttled(ctx context.Context) bool {
	var te *registry.ThrottledError
	return errors.As(context.Cause(ctx), &te)
}

// noteThrottled turns a throttle stop into the verdict: unknown, with when
// the registry answers again and the budget left.
func (p *prober) noteThrottled(ctx context.Context) {
	var te *registry.ThrottledError
	if !errors.As(context.Cause(ctx), &te) {
		return
	}
	f := ThrottledFinding(te)
	p.r.ReferrersAPI = Unknown
	for i := range p.r.Findings {
		if p.r.Findings[i].Code == finding.ReferrersRateLimited {
			// The referrers request itself was throttled: say when it
			// answers again in that finding.
			f.Code = finding.ReferrersRateLimited
			p.r.Findings[i] = f
			return
		}
	}
	p.r.ReferrersReason = finding.RateLimited
	p.r.Findings = append(p.r.Findings, f)
}

// ThrottledFinding says that a registry stopped answering until a time
// past the operation's deadline, with that time and the budget left.
func ThrottledFinding(te *registry.ThrottledError) finding.Finding {
	b := te.Budget
	until := "a time it did not say"
	if !b.Until.IsZero() {
		until = b.Until.UTC().Format(time.RFC3339) + " (in " + cacheAge(time.Until(b.Until)) + ")"
	}
	budget := "The registry sent no budget headers."
	if b.Remaining != "" || b.Limit != "" {
		budget = fmt.Sprintf("Budget left: %s of %s requests.", budgetNumber(b.Remaining), budgetNumber(b.Limit))
	}
	return finding.Finding{Severity: finding.SeverityError, Code: finding.RateLimited,
		Summary:  fmt.Sprintf("%s is rate limiting and answers again at %s: stopped instead of waiting (unknown, not \"no referrers\")", te.Host, until),
		Cause:    "The registry answered 429 with a wait longer than the time left for this operation. " + budget,
		Remedy:   fmt.Sprintf("Run again after %s, log in for a higher limit, or lower max_concurrent_discoveries.", until),
		Evidence: fmt.Sprintf("HTTP 429, Retry-After %q, ratelimit-remaining %q", b.RetryAfter, b.Remaining)}
}

// budgetNumber shows a rate-limit header's count without its window
// parameter ("100;w=21600" is 100).
func budgetNumber(h string) string {
	n, _, _ := strings.Cut(h, ";")
	return orUnknown(strings.TrimSpace(n))
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// finalReply is the last reply to a request for a path that answered
// with something other than a redirect: a redirected request's answer
// is the one at the end of its chain.
func finalReply(exs []registry.Exchange, match func(path string) bool) (registry.Exchange, bool) {
	var last registry.Exchange
	found := false
	for _, ex := range exs {
		if match(ex.Requested()) && !ex.IsRedirect() {
			last, found = ex, true
		}
	}
	return last, found
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
		if !isV2Root(ex.Requested()) {
			continue
		}
		p.noteHeaders(ex)
		if ex.Err != nil {
			if throttled(ctx) {
				return false
			}
			code, summary, cause, remedy := ClassifyTransportError(p.t.Host, ex.Err)
			p.r.Error = summary + ": " + ex.Error
			p.r.ReferrersReason = code
			p.r.Findings = append(p.r.Findings, finding.Finding{Severity: finding.SeverityError, Code: code, Summary: summary, Cause: cause, Remedy: remedy, Evidence: ex.Error})
			return false
		}
		if ex.IsRedirect() {
			continue
		}
		p.r.Reachable = true
		p.r.V2Status = ex.Status
		if ex.Status == http.StatusUnauthorized {
			p.r.Auth = authScheme(ex.Headers["WWW-Authenticate"])
		}
		if ex.Status == http.StatusBadRequest && strings.Contains(string(ex.Body), "HTTP request to an HTTPS server") {
			p.r.Findings = append(p.r.Findings, finding.Finding{Severity: finding.SeverityError, Code: finding.PlainHTTPToTLSServer,
				Summary: "Plain HTTP was sent to an HTTPS registry", Cause: "The host is configured for plain HTTP but serves TLS.",
				Remedy: "Drop --plain-http " + p.t.Host + " (or plain_http in the config)."})
		}
	}
	if p.r.Auth == "" {
		p.r.Auth = "anonymous"
	}
	for _, ex := range exs {
		if ex.RequestedPath == "" && !isV2Root(ex.Path) && !strings.HasPrefix(ex.Path, "/v2/") && ex.Status >= 400 {
			// a token endpoint refused the login
			p.r.AuthError = fmt.Sprintf("token endpoint %s answered %d", ex.Path, ex.Status)
		}
	}
	if !p.r.Reachable {
		if throttled(ctx) {
			return false
		}
		if pingErr != nil {
			p.r.Error = pingErr.Error()
		}
		return false
	}
	if last, ok := finalReply(exs, isV2Root); ok {
		if f, not := NotARegistry(p.t.Host, last); not {
			p.r.ReferrersReason = finding.NotARegistry
			p.r.Error = f.Summary
			p.r.Findings = append(p.r.Findings, f)
			return false
		}
	}
	// The last /v2/ reply is the one after any login attempt.
	if p.r.V2Status == http.StatusUnauthorized || p.r.V2Status == http.StatusForbidden {
		p.authFailed = true
		if p.r.AuthError == "" {
			p.r.AuthError = "no login for this host, or the login was refused"
		}
		p.r.Findings = append(p.r.Findings, finding.Finding{Severity: finding.SeverityError, Code: finding.AuthFailed,
			Summary: fmt.Sprintf("Authentication to %s failed (%s auth): %s; referrer discovery cannot be judged without a login", p.t.Host, p.r.Auth, p.r.AuthError),
			Cause:   "The registry requires a login, and refdoctor had none for this host or it was refused (logins come from docker config.json and credential helpers).",
			Remedy:  "docker login " + p.t.Host + " (or configure a credential helper), then probe again."})
	}
	return true
}

// NotARegistry recognises a /v2/ reply that no registry sends: a 404 (a
// plain web server), or an HTML page (a web site, a proxy's or a sign-in
// page). A registry answers /v2/ with 200 and JSON, or 401 with a
// challenge.
func NotARegistry(host string, v2 registry.Exchange) (finding.Finding, bool) {
	html := strings.Contains(baseMediaType(v2.ContentType), "html") || looksLikeHTML(v2.Body)
	if v2.Status != http.StatusNotFound && !(v2.Status == http.StatusOK && html) {
		return finding.Finding{}, false
	}
	what := fmt.Sprintf("HTTP %d %s", v2.Status, v2.ContentType)
	if v2.RequestedPath != "" {
		what += " from " + v2.URL + " (redirected)"
	}
	if len(v2.Body) > 0 {
		what += ", body: " + snippet(v2.Body)
	}
	return finding.Finding{Severity: finding.SeverityError, Code: finding.NotARegistry,
		Summary:  fmt.Sprintf("%s does not answer /v2/ like a registry (%d %s): referrers support unknown", host, v2.Status, strings.TrimSpace(baseMediaType(v2.ContentType))),
		Cause:    "Every OCI registry answers GET /v2/ with 200 and JSON, or 401 with a login challenge. A 404 or an HTML page comes from a web server, a proxy or a sign-in page in between, so nothing it says about /referrers means anything.",
		Remedy:   fmt.Sprintf("Check the host, port and path (%s); look for a proxy or login page in between with `curl -si %s/v2/`.", host, schemeHint(host)),
		Evidence: what}, true
}

func looksLikeHTML(b []byte) bool {
	s := strings.ToLower(strings.TrimSpace(string(b[:min(len(b), 512)])))
	return strings.HasPrefix(s, "<!doctype html") || strings.HasPrefix(s, "<html")
}

// schemeHint is the URL prefix for a curl hint: the operator knows
// whether the host is plain HTTP; refdoctor shows https unless told.
func schemeHint(host string) string { return "https://" + host }

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
	b, ok := registry.BudgetOf(ex, ex.Start)
	if !ok {
		return
	}
	if p.r.RateLimit == nil {
		p.r.RateLimit = &RateLimit{}
	}
	rl := p.r.RateLimit
	if b.Limit != "" {
		rl.Limit = b.Limit
	}
	if b.Remaining != "" {
		rl.Remaining = b.Remaining
		rl.Low = b.Low()
	}
	if b.Source != "" {
		rl.Source = b.Source
	}
	if b.Throttled {
		rl.Throttled = true
		rl.RetryAfter = b.RetryAfter
	}
	if !b.Until.IsZero() {
		rl.RetryAt = b.Until.UTC()
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
	exs := c.Recorder.Exchanges()[before:]
	for _, ex := range exs {
		p.noteHeaders(ex)
	}
	if err != nil {
		status := 0
		if last, ok := finalReply(exs, func(path string) bool { return strings.HasSuffix(path, "/tags/list") }); ok {
			status = last.Status
			if !last.Complete() {
				status = 0
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

// isReferrersPath matches /v2/<name>/referrers/<digest>.
func isReferrersPath(path string) bool { return strings.Contains(path, "/referrers/") }

// referrers asks for the referrers of digest with a fresh client (regclient
// remembers a repository's API support per client) and classifies the
// final reply of the referrers request: after authentication and at the
// end of any redirect chain.
func (p *prober) referrers(ctx context.Context, digest string) Classification {
	p.r.ReferrersDigest = digest
	// The probe needs only the referrers request's final reply. Once it is
	// recorded, stop regclient from going on to its own tag fallback, which
	// after a 429 would wait out the registry's Retry-After.
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	c, err := p.clientWatching(func(ex registry.Exchange) {
		if isReferrersPath(ex.Requested()) && ex.Status != http.StatusUnauthorized && !ex.IsRedirect() {
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
	exs := c.Recorder.Exchanges()
	var chain []registry.Exchange
	for _, ex := range exs {
		p.noteHeaders(ex)
		if isReferrersPath(ex.Requested()) {
			chain = append(chain, ex)
		}
	}
	if len(chain) == 0 {
		e := listErr
		if e == nil {
			e = errors.New("no referrers request was sent")
		}
		if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
			e = err
		}
		return ClassifyReferrersReply(ReferrersReply{Host: p.t.Host, Err: e})
	}
	last := chain[len(chain)-1]
	p.r.ReferrersStatus = last.Status
	p.r.ReferrersContentType = last.ContentType
	reply := ReferrersReply{Host: p.t.Host, Repository: p.r.Repository, Status: last.Status, ContentType: last.ContentType, Body: last.Body, Err: last.Err,
		BodyErr: last.BodyErr, TooLarge: last.TooLarge, Size: last.Size,
		ZeroDigest: digest == ZeroDigest, RepositoryExists: p.r.FallbackTags == "ok"}
	if last.IsRedirect() {
		reply.Err = UnfollowedRedirect(redirectHops(chain), last)
	}
	if hops := redirectHops(chain); len(hops) > 0 {
		p.r.Findings = append(p.r.Findings, RedirectFinding(hops, last))
	}
	return ClassifyReferrersReply(reply)
}

// redirectHops are the redirects of the last redirect chain in chain.
func redirectHops(chain []registry.Exchange) []registry.Exchange {
	var hops []registry.Exchange
	for _, ex := range chain {
		if ex.RequestedPath == "" {
			hops = hops[:0]
		}
		if ex.IsRedirect() {
			hops = append(hops, ex)
		}
	}
	return hops
}

// UnfollowedRedirect is why a redirect chain ended on a redirect: the
// client's limit of 10, or a redirect regclient refuses to follow (from
// https to http, or from a public host to a local one).
func UnfollowedRedirect(hops []registry.Exchange, last registry.Exchange) error {
	if len(hops) >= registry.MaxRedirects {
		return fmt.Errorf("%w (the last to %s)", registry.ErrTooManyRedirects, last.Headers["Location"])
	}
	return fmt.Errorf("redirect to %s was not followed: clients refuse to go from https to http or from a public host to a local one", last.Headers["Location"])
}

// RedirectFinding shows the redirect chain that led to the final reply.
func RedirectFinding(hops []registry.Exchange, final registry.Exchange) finding.Finding {
	var parts []string
	for _, h := range hops {
		parts = append(parts, fmt.Sprintf("%s -> %d", h.URL, h.Status))
	}
	if !final.IsRedirect() {
		parts = append(parts, fmt.Sprintf("%s -> %d", final.URL, final.Status))
	}
	return finding.Finding{Severity: finding.SeverityInfo, Code: finding.ReferrersRedirected,
		Summary:  fmt.Sprintf("The referrers request was redirected %d time(s); the verdict comes from the final reply", len(hops)),
		Cause:    "Registries behind proxies or CDNs redirect API requests; clients follow up to 10 redirects, and the Authorization header never goes to another host.",
		Evidence: strings.Join(parts, "; ")}
}

// finish attaches the exchanges, compares observation with the matrix and
// warns when the rate-limit budget runs low.
func (p *prober) finish() {
	p.r.Exchanges = p.exchanges()
	if p.r.Findings == nil {
		p.r.Findings = []finding.Finding{}
	}
	if rl := p.r.RateLimit; rl != nil && rl.Low && !rl.Throttled {
		p.r.Findings = append(p.r.Findings, LowBudgetFinding(p.t.Host, rl.Remaining, rl.Limit, rl.RetryAt))
	}
	finishExpectation(p.r, p.o.matrix)
}

// LowBudgetFinding warns that few requests are left before the registry
// starts refusing with 429.
func LowBudgetFinding(host, remaining, limit string, reset time.Time) finding.Finding {
	when := ""
	if !reset.IsZero() {
		when = " The window resets at " + reset.UTC().Format(time.RFC3339) + "."
	}
	return finding.Finding{Severity: finding.SeverityWarn, Code: finding.RateLimitLow,
		Summary:  fmt.Sprintf("Rate-limit budget on %s is low: %s of %s requests left", host, budgetNumber(remaining), budgetNumber(limit)),
		Cause:    "The registry counts requests per window; once the budget is spent every pull and discovery answers 429 until the window resets." + when,
		Remedy:   "Log in for a higher limit, discover fewer images at once, or wait for the window to reset.",
		Evidence: fmt.Sprintf("RateLimit-Remaining %q, RateLimit-Limit %q", remaining, limit)}
}

// finishExpectation compares the verdict with the matrix row, and the
// replies with the kind's dated quirks: a reply that matches one is
// known behaviour (KnownBehaviour), which stands in for a mismatch or a
// version note.
func finishExpectation(r *Result, m Matrix) {
	e := r.Expected
	if e == nil {
		return
	}
	var known *Quirk
	if kind, ok := m.Get(e.Kind); ok {
		obs := observe(r)
		if q, ok := kind.KnownBehaviour(obs); ok {
			known = &q
			e.KnownBehaviour = known
			r.Findings = append(r.Findings, knownBehaviourFinding(kind, q, obs, r.ReferrersAPI))
		}
	}
	if r.ReferrersAPI == Unknown {
		return
	}
	var matches bool
	switch e.ReferrersAPI {
	case "supported":
		matches = r.ReferrersAPI == Supported
	case "unsupported":
		matches = r.ReferrersAPI == Unsupported
	default:
		matches = true
	}
	e.Matches = &matches
	if known != nil {
		return
	}
	if matches {
		if e.ReferrersAPI == "varies" && r.ReferrersAPI == Unsupported && e.Since != "" {
			r.Findings = append(r.Findings, finding.Finding{Severity: finding.SeverityInfo, Code: finding.VersionDependent,
				Summary: fmt.Sprintf("%s serves the referrers API from %s; this one does not", e.Name, e.Since),
				Cause:   e.Notes, Remedy: fmt.Sprintf("Upgrade %s to %s or later for the API; until then discovery uses fallback tags.", e.Name, e.Since)})
		}
		return
	}
	since := ""
	if e.Since != "" {
		since = " since " + e.Since
	}
	r.Findings = append(r.Findings, finding.Finding{Severity: finding.SeverityWarn, Code: finding.ExpectationMismatch,
		Summary: fmt.Sprintf("Matrix expects %s to be %s%s (last seen %s); observed %s", e.Name, e.ReferrersAPI, since, e.LastSeen, r.ReferrersAPI),
		Cause:   strings.TrimSpace("The registry's version or configuration differs from the matrix row. " + e.Notes),
		Remedy:  "Trust the observation; check the registry version, and correct the matrix row if the vendor changed behaviour."})
}

// knownBehaviourFinding says that what the probe saw is a dated quirk of
// the registry's kind.
func knownBehaviourFinding(k Kind, q Quirk, obs Observation, verdict Verdict) finding.Finding {
	cause := "Seen in public trackers and release notes: " + q.Source + "."
	row := k.ReferrersAPI
	if k.Since != "" {
		row += " since " + k.Since
	}
	if (k.ReferrersAPI == "supported" && verdict == Unsupported) || (k.ReferrersAPI == "unsupported" && verdict == Supported) {
		cause += fmt.Sprintf(" The matrix row says %s (last seen %s): this registry still behaves as the dated fact says, so this is no surprise to correct in the matrix.", row, k.LastSeen)
	}
	remedy := q.Advice
	if remedy == "" {
		remedy = finding.KnownBehaviour.Remedy()
	}
	return finding.Finding{Severity: finding.SeverityInfo, Code: finding.KnownBehaviour,
		Summary:  fmt.Sprintf("This matches the known behaviour of %s %s: %s", k.Name, q.Seen(), q.Fact),
		Cause:    cause,
		Remedy:   remedy,
		Evidence: obs.Evidence}
}

// observe sums up the referrers replies a probe saw, for the quirks: from
// the recorded exchanges, or from the verdict's fields when the verdict
// came from the cache.
func observe(r *Result) Observation {
	o := Observation{Reason: r.ReferrersReason}
	var seen []string
	for _, ex := range r.Exchanges {
		if !isReferrersPath(ex.Requested()) || ex.Err != nil {
			continue
		}
		if ex.IsRedirect() {
			o.Redirects = append(o.Redirects, ex.Status)
			seen = append(seen, fmt.Sprintf("%d to %s", ex.Status, hostOf(ex.Headers["Location"], ex.URL)))
			continue
		}
		if ex.Status == http.StatusUnauthorized && ex.RequestedPath == "" && len(o.Statuses) == 0 && ex.Headers["WWW-Authenticate"] != "" {
			continue // the login's own challenge
		}
		o.Statuses = append(o.Statuses, ex.Status)
		seen = append(seen, fmt.Sprintf("%d %s", ex.Status, baseMediaType(ex.ContentType)))
		if ex.Status == http.StatusUnauthorized && ex.Headers["WWW-Authenticate"] == "" {
			o.Unchallenged = true
		}
		if n, err := strconv.Atoi(strings.TrimSpace(ex.Headers["Retry-After"])); err == nil && n > o.RetryAfter {
			o.RetryAfter = n
		}
	}
	if len(o.Statuses) == 0 && r.ReferrersStatus != 0 {
		o.Statuses = []int{r.ReferrersStatus}
		seen = append(seen, fmt.Sprintf("%d %s (cached verdict)", r.ReferrersStatus, baseMediaType(r.ReferrersContentType)))
	}
	o.Evidence = "referrers replies: " + strings.Join(seen, ", then ")
	if len(seen) == 0 {
		o.Evidence = "verdict reason " + string(r.ReferrersReason)
	}
	return o
}

// hostOf names the host a redirect leads to (Location may be relative).
func hostOf(location, from string) string {
	if u, err := url.Parse(location); err == nil && u.Host != "" {
		return u.Host
	}
	if u, err := url.Parse(from); err == nil {
		return u.Host
	}
	return location
}
