package runbook

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/refdoctor/refdoctor/config"
	"github.com/refdoctor/refdoctor/discovery"
	"github.com/refdoctor/refdoctor/finding"
	"github.com/refdoctor/refdoctor/internal/human"
	"github.com/refdoctor/refdoctor/mirror"
	"github.com/refdoctor/refdoctor/probe"
	"github.com/refdoctor/refdoctor/registry"
	"github.com/refdoctor/refdoctor/telemetry"
)

// Status is where a step stands.
type Status string

const (
	StatusPending Status = "pending"
	StatusRunning Status = "running"
	StatusPassed  Status = "passed"
	StatusWarned  Status = "warned"
	StatusFailed  Status = "failed"
	StatusSkipped Status = "skipped"
)

// Result is what running one step found. Exactly one payload field is set,
// matching the step's check kind.
type Result struct {
	Step    string `json:"step"`
	Status  Status `json:"status"`
	Summary string `json:"summary"`
	// Incomplete is set with StatusFailed when the check could not
	// complete (network, auth, timeout, rate limit, canceled) rather than
	// finding something wrong; the CLI exits 3 for it instead of 1.
	Incomplete bool                  `json:"incomplete"`
	Findings   []finding.Finding     `json:"findings"`
	Probe      *probe.Report         `json:"probe,omitempty"`
	Discovery  *discovery.Result     `json:"discovery,omitempty"`
	Tags       *discovery.TagListing `json:"tags,omitempty"`
	// Bundle is the bundle validator's report (a *bundle.Report).
	Bundle  any                `json:"bundle,omitempty"`
	Logs    *LogReport         `json:"logs,omitempty"`
	Metrics []telemetry.Sample `json:"metrics,omitempty"`
	// Prometheus is the telemetry step's answer from Prometheus, when
	// refdoctor is pointed at one.
	Prometheus *telemetry.QueryReport `json:"prometheus,omitempty"`
	Diag       *DiagResult            `json:"diag,omitempty"`
	// Compare is the compare step's answer: the image against its source.
	Compare *mirror.CompareResult `json:"compare,omitempty"`
	// Timing, Compat and Failures are the timing, compat and
	// probe-failures checks' tables (Probe holds the probe they read).
	Timing   *TimingReport  `json:"timing,omitempty"`
	Compat   []CompatLine   `json:"compat,omitempty"`
	Failures []ProbeFailure `json:"probe_failures,omitempty"`
	// Commands are the step's commands filled in with what the check
	// resolved (the image's digest, a referrer it found), so that no
	// placeholder is left that the check could fill.
	Commands []RenderedCommand `json:"commands,omitempty"`
	// SameAs names the step whose identical check RunAll reused.
	SameAs     string    `json:"same_as,omitempty"`
	StartedAt  time.Time `json:"started_at"`
	DurationMS int64     `json:"duration_ms"`
	Error      string    `json:"error,omitempty"`
}

// EventKind names an engine event.
type EventKind string

const (
	EventStarted  EventKind = "started"
	EventProgress EventKind = "progress"
	EventFinished EventKind = "finished"
)

// Event reports progress of one step. Fraction is 0..1 when known, else 0.
// Probe and Discovery carry the underlying engine's event, for screens that
// show exchanges as they happen; Result is set on finished.
type Event struct {
	Step      string           `json:"step"`
	Kind      EventKind        `json:"kind"`
	Message   string           `json:"message,omitempty"`
	Fraction  float64          `json:"fraction,omitempty"`
	Probe     *probe.Event     `json:"probe,omitempty"`
	Discovery *discovery.Event `json:"discovery,omitempty"`
	Result    *Result          `json:"result,omitempty"`
}

// BundleValidator validates the bundle at path (with its referrers when
// checkReferrers is set), reporting progress as a fraction. ok is false
// when the bundle is not whole; err is for the tool failing to check.
type BundleValidator func(ctx context.Context, path string, checkReferrers bool, progress func(fraction float64)) (report any, ok bool, findings []finding.Finding, err error)

type options struct {
	cfg           config.Config
	metrics       *telemetry.Metrics
	log           *slog.Logger
	clientOpts    []registry.Opt
	probeOpts     []probe.Opt
	discoveryOpts []discovery.Opt
	validator     BundleValidator
	diagOut       string
	toolVersion   string
	prometheus    *telemetry.Prometheus
	window        time.Duration
}

// Opt configures an Engine.
type Opt func(*options)

// WithConfig supplies hosts, timeouts and concurrency.
func WithConfig(c config.Config) Opt { return func(o *options) { o.cfg = c } }

// WithMetrics counts this session's probes and discoveries; the metrics
// check reads them back. Without it the engine keeps its own.
func WithMetrics(m *telemetry.Metrics) Opt { return func(o *options) { o.metrics = m } }

// WithLogger receives the probe and discovery log lines.
func WithLogger(l *slog.Logger) Opt { return func(o *options) { o.log = l } }

// WithClientOpts passes options to every registry client (logins, user
// agent, docker credentials).
func WithClientOpts(opts ...registry.Opt) Opt {
	return func(o *options) { o.clientOpts = append(o.clientOpts, opts...) }
}

// WithProbeOpts passes extra options to probe.Run.
func WithProbeOpts(opts ...probe.Opt) Opt {
	return func(o *options) { o.probeOpts = append(o.probeOpts, opts...) }
}

// WithDiscoveryOpts passes extra options to discovery.
func WithDiscoveryOpts(opts ...discovery.Opt) Opt {
	return func(o *options) { o.discoveryOpts = append(o.discoveryOpts, opts...) }
}

// WithBundleValidator replaces the bundle check (by default
// ValidateBundleWithKeys with the configuration's [bundle] verify_keys).
func WithBundleValidator(v BundleValidator) Opt { return func(o *options) { o.validator = v } }

// WithDiagOutput is where the diag check writes its support bundle
// (default: a time-stamped file in the temp folder).
func WithDiagOutput(path string) Opt { return func(o *options) { o.diagOut = path } }

// WithPrometheus points the telemetry step at Prometheus: it runs the
// runbook's three queries over window (0: the runbook's 5m) next to this
// session's own counters.
func WithPrometheus(p *telemetry.Prometheus, window time.Duration) Opt {
	return func(o *options) { o.prometheus, o.window = p, window }
}

// WithToolVersion is the refdoctor version written into support bundles.
func WithToolVersion(v string) Opt { return func(o *options) { o.toolVersion = v } }

// Engine runs the steps of a book against the operator's targets.
type Engine struct {
	book    *Book
	targets Targets
	o       options
}

// NewEngine returns an engine for book and targets.
func NewEngine(b *Book, t Targets, opts ...Opt) *Engine {
	o := options{cfg: config.Defaults(), toolVersion: "dev"}
	for _, opt := range opts {
		opt(&o)
	}
	if o.log == nil {
		o.log = slog.New(slog.DiscardHandler)
	}
	if o.metrics == nil {
		o.metrics = telemetry.NewMetrics()
	}
	if o.validator == nil {
		o.validator = ValidateBundleWithKeys(o.cfg.Bundle.VerifyKeys)
	}
	return &Engine{book: b, targets: t.Complete(), o: o}
}

// Book returns the engine's book.
func (e *Engine) Book() *Book { return e.book }

// Targets returns the completed targets the engine runs against.
func (e *Engine) Targets() Targets { return e.targets }

// run is the state of one step run: its result and its event sink.
type run struct {
	e    *Engine
	step Step
	res  *Result
	mu   sync.Mutex
	sink func(Event)
	// shared holds what one RunAll reuses across steps.
	shared *runShared
}

// runShared is what the steps of one RunAll share: the probe of the
// targets, which the probe, timing, compat and probe-failures steps all
// read.
type runShared struct {
	probe *probe.Report
}

// emit serialises events (probes run concurrently) and keeps a panicking
// listener from taking the engine down.
func (r *run) emit(ev Event) {
	if r.sink == nil {
		return
	}
	ev.Step = r.step.ID
	r.mu.Lock()
	defer r.mu.Unlock()
	defer func() { _ = recover() }()
	r.sink(ev)
}

func (r *run) skip(summary string) {
	r.res.Status = StatusSkipped
	r.res.Summary = summary
}

// incomplete marks a check that could not complete.
func (r *run) incomplete(summary string) {
	r.res.Status = StatusFailed
	r.res.Incomplete = true
	r.res.Summary = summary
}

// Run runs one step's check and returns its result. It never panics: a
// panic becomes a failed result with Error set. events (may be nil)
// receives started, progress and finished events, one at a time.
func (e *Engine) Run(ctx context.Context, stepID string, events func(Event)) Result {
	return e.run(ctx, stepID, events, nil)
}

func (e *Engine) run(ctx context.Context, stepID string, events func(Event), shared *runShared) Result {
	var step Step
	ok := false
	if e != nil && e.book != nil {
		step, ok = e.book.Step(stepID)
	}
	if !ok {
		step = Step{ID: stepID}
	}
	res := Result{Step: stepID, Status: StatusRunning, StartedAt: time.Now().UTC(), Findings: []finding.Finding{}}
	r := &run{e: e, step: step, res: &res, sink: events, shared: shared}
	r.emit(Event{Kind: EventStarted, Message: step.Title})
	func() {
		defer func() {
			if p := recover(); p != nil {
				if e != nil && e.o.log != nil {
					e.o.log.Error("runbook step panicked", "step", stepID, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
				}
				res.Status = StatusFailed
				res.Error = fmt.Sprintf("step %s panicked: %v", stepID, p)
				res.Summary = "refdoctor itself failed while running this step (a bug); the error says where."
			}
		}()
		if e == nil || e.book == nil {
			res.Status = StatusFailed
			res.Error = "runbook engine has no book"
			res.Summary = "refdoctor was started without its runbook (a bug)."
			return
		}
		if !ok {
			res.Status = StatusFailed
			res.Error = fmt.Sprintf("unknown step %q (steps: %s)", stepID, strings.Join(e.book.StepIDs(), ", "))
			res.Summary = "No such step in the runbook."
			return
		}
		e.check(ctx, r)
		e.fillCommands(ctx, r)
	}()
	if res.Status == StatusRunning {
		res.Status = statusFrom(res.Findings)
	}
	if res.Findings == nil {
		res.Findings = []finding.Finding{}
	}
	res.DurationMS = time.Since(res.StartedAt).Milliseconds()
	final := res
	r.emit(Event{Kind: EventFinished, Message: res.Summary, Fraction: 1, Result: &final})
	return res
}

// statusFrom is the status a set of findings earns on its own.
func statusFrom(fs []finding.Finding) Status {
	switch finding.Worst(fs) {
	case finding.SeverityError:
		return StatusFailed
	case finding.SeverityWarn:
		return StatusWarned
	}
	return StatusPassed
}

func statusFromOutcome(o finding.Outcome) Status {
	switch o {
	case finding.OutcomeFailed, finding.OutcomeIncomplete:
		return StatusFailed
	case finding.OutcomeWarn:
		return StatusWarned
	}
	return StatusPassed
}

func (e *Engine) check(ctx context.Context, r *run) {
	if err := ctx.Err(); err != nil {
		r.incomplete("Could not complete: the run was canceled before this step started.")
		r.res.Error = err.Error()
		return
	}
	switch r.step.Check.Kind {
	case CheckProbe:
		e.runProbe(ctx, r)
	case CheckTiming:
		e.runTiming(ctx, r)
	case CheckCompat:
		e.runCompat(ctx, r)
	case CheckProbeFailures:
		e.runProbeFailures(ctx, r)
	case CheckDiscover:
		e.runDiscover(ctx, r)
	case CheckTags:
		e.runTags(ctx, r)
	case CheckBundleValidate:
		e.runBundle(ctx, r)
	case CheckLogs:
		e.runLogs(r)
	case CheckMetrics:
		e.runMetrics(ctx, r)
	case CheckDiag:
		e.runDiag(ctx, r)
	case CheckCompare:
		e.runCompare(ctx, r)
	case CheckNone:
		r.res.Status = StatusPassed
		r.res.Summary = "Informational step: " + r.step.Summary
	default:
		r.res.Status = StatusFailed
		r.res.Error = fmt.Sprintf("step %s: unknown check kind %q", r.step.ID, r.step.Check.Kind)
		r.res.Summary = "The runbook names a check refdoctor does not have."
	}
}

// timeout is the per-registry limit from the config.
func (e *Engine) timeout() time.Duration {
	if d := e.o.cfg.Export.ReferrerDiscovery.Timeout(); d > 0 {
		return d
	}
	return 2 * time.Minute
}

func (e *Engine) probeOpts(r *run, total int) []probe.Opt {
	var mu sync.Mutex
	done := 0
	opts := []probe.Opt{
		probe.WithConfig(e.o.cfg),
		probe.WithTimeout(e.timeout()),
		probe.WithLogger(e.o.log),
		probe.WithMetrics(e.o.metrics),
		probe.WithClientOpts(e.o.clientOpts...),
	}
	if n := e.o.cfg.Export.ReferrerDiscovery.MaxConcurrentDiscoveries; n > 0 {
		opts = append(opts, probe.WithConcurrency(n))
	}
	if r != nil {
		opts = append(opts, probe.WithEvents(func(ev probe.Event) {
			msg := ""
			mu.Lock()
			switch ev.Kind {
			case probe.EventStarted:
				msg = "probing " + ev.Target
			case probe.EventFinished:
				done++
				msg = "probed " + ev.Target
			case probe.EventExchange:
				if ev.Exchange != nil {
					msg = fmt.Sprintf("%s %s -> %d", ev.Exchange.Method, ev.Exchange.Path, ev.Exchange.Status)
				}
			}
			frac := float64(done) / float64(max(total, 1))
			mu.Unlock()
			r.emit(Event{Kind: EventProgress, Message: msg, Fraction: frac, Probe: &ev})
		}))
	}
	return append(opts, e.o.probeOpts...)
}

func (e *Engine) discoveryOpts(r *run, platforms bool) []discovery.Opt {
	opts := []discovery.Opt{
		discovery.WithConfig(e.o.cfg),
		discovery.WithLogger(e.o.log),
		discovery.WithMetrics(e.o.metrics),
		discovery.WithClientOpts(e.o.clientOpts...),
		discovery.WithPlatforms(platforms),
		discovery.WithProbeOpts(e.o.probeOpts...),
	}
	if r != nil {
		opts = append(opts, discovery.WithEvents(func(ev discovery.Event) {
			msg := string(ev.Kind)
			switch {
			case ev.Referrer != nil:
				msg = "found " + string(ev.Referrer.Category) + " " + ev.Referrer.Digest
			case ev.Exchange != nil:
				msg = fmt.Sprintf("%s %s -> %d", ev.Exchange.Method, ev.Exchange.Path, ev.Exchange.Status)
			}
			r.emit(Event{Kind: EventProgress, Message: msg, Discovery: &ev})
		}))
	}
	return append(opts, e.o.discoveryOpts...)
}

func (e *Engine) runDiscover(ctx context.Context, r *run) {
	image := e.targets.Image
	if image == "" {
		r.skip("No image given: pass --image HOST/REPO:TAG (or @DIGEST), or set it in the start form.")
		return
	}
	res, err := discovery.Discover(ctx, image, e.discoveryOpts(r, r.step.Check.Platforms)...)
	if err != nil && res.Subject.Reference == "" {
		if errors.Is(err, discovery.ErrBadReference) {
			r.res.Status = StatusFailed
			r.res.Error = err.Error()
			r.res.Summary = "The image reference is not valid: " + err.Error()
			return
		}
		r.incomplete("Could not complete discovery: " + err.Error())
		r.res.Error = err.Error()
		return
	}
	r.res.Discovery = &res
	r.res.Findings = append(r.res.Findings, res.Findings...)
	count := res.Count()
	how := map[discovery.Method]string{discovery.MethodAPI: "the referrers API", discovery.MethodTags: "the fallback tag schema"}[res.Method]
	if how == "" {
		how = "no method"
	}
	summary := fmt.Sprintf("%s of %s (%s) through %s, %s.", human.Count(count, "referrer"), image, shortDigest(res.Subject.Digest), how, human.Count(res.Requests, "request"))
	if len(res.Platforms) > 0 {
		summary += fmt.Sprintf(" %s looked at.", human.Count(len(res.Platforms), "platform manifest"))
	}
	if res.Outcome == finding.OutcomeOK || res.Outcome == finding.OutcomeWarn {
		if res.Method == discovery.MethodTags {
			host := e.targets.imageHost()
			r.res.Findings = append(r.res.Findings, finding.Finding{Severity: finding.SeverityWarn, Code: finding.FallbackTagDiscovery,
				Summary: fmt.Sprintf("Referrers were read from the fallback tag schema: %s does not serve the referrers API", host),
				Cause:   "Discovery on this registry depends on every attaching tool maintaining sha256-<hex> index tags; a tool that does not, or two that write at once, lose referrers.",
				Remedy:  "Check the tags with the fallback tag step; prefer a registry version with the referrers API (see the compatibility table)."})
		}
		if count == 0 {
			r.res.Findings = append(r.res.Findings, finding.Finding{Severity: finding.SeverityWarn, Code: finding.NoReferrersFound,
				Summary: "Discovery completed and found no referrers",
				Cause:   "Nothing is attached to this digest, the referrers hang off another digest (platform manifest vs index, an older push of the tag), or a retention policy pruned them.",
				Remedy:  "Discover with platforms on, check the fallback tags, and check which subject a known referrer names."})
		}
	}
	switch res.Outcome {
	case finding.OutcomeIncomplete:
		r.incomplete("Could not complete discovery (the list is partial, not empty): " + summary)
		r.res.Error = res.Error
		return
	case finding.OutcomeFailed:
		r.res.Status = StatusFailed
		r.res.Error = res.Error
	default:
		r.res.Status = statusFrom(r.res.Findings)
	}
	r.res.Summary = summary
}

func shortDigest(d string) string {
	if d == "" {
		return "unresolved"
	}
	return discovery.ShortDigest(d)
}

func (e *Engine) runTags(ctx context.Context, r *run) {
	host, repo := e.targets.repository()
	if host == "" || repo == "" {
		r.skip("No repository given: pass --image HOST/REPO:TAG or --registry HOST/REPO, or set it in the start form.")
		return
	}
	r.emit(Event{Kind: EventProgress, Message: "listing tags of " + host + "/" + repo})
	res, err := discovery.ListTags(ctx, host+"/"+repo, e.discoveryOpts(nil, false)...)
	if err != nil {
		r.res.Status = StatusFailed
		r.res.Error = err.Error()
		r.res.Summary = "Could not list tags: " + err.Error()
		return
	}
	r.res.Tags = &res
	r.res.Findings = append(r.res.Findings, res.Findings...)
	index, cosign := 0, 0
	for _, s := range res.Subjects {
		for _, t := range s.Tags {
			if t.Kind == discovery.TagKindIndex {
				index++
			} else {
				cosign++
			}
		}
	}
	summary := fmt.Sprintf("%s: %s for %s (%d fallback index, %d cosign-style), %s.", res.Repository, human.Count(res.TagsTotal, "referrer tag"),
		human.Count(len(res.Subjects), "subject"), index, cosign, human.Count(res.Requests, "request"))
	switch {
	case res.Partial:
		r.incomplete("Could not complete the tag listing: " + orText(res.Error, summary))
		r.res.Error = res.Error
		return
	case res.Error != "":
		r.res.Status = StatusFailed
		r.res.Error = res.Error
		r.res.Summary = "The tag listing failed: " + res.Error
		return
	}
	if res.TagsTotal == 0 {
		r.res.Findings = append(r.res.Findings, finding.Finding{Severity: finding.SeverityWarn, Code: finding.NoReferrerTags,
			Summary: "The repository has no sha256-<hex> referrer tags",
			Cause:   "Normal on a registry that serves the referrers API; on one without it, nothing was attached through the fallback path.",
			Remedy:  "If the probe says the API is unsupported, re-attach the artifacts with a tool that writes the referrers tag schema."})
	}
	r.res.Status = statusFrom(r.res.Findings)
	r.res.Summary = summary
}

func (e *Engine) runBundle(ctx context.Context, r *run) {
	if e.targets.Bundle == "" {
		r.skip("No bundle given: pass --bundle FILE, or set it in the start form.")
		return
	}
	if e.o.validator == nil {
		r.skip("Bundle validation is not available in this build; run refdoctor bundle validate --file " + shellQuote(e.targets.Bundle) + " --check-referrers.")
		return
	}
	report, ok, findings, err := e.o.validator(ctx, e.targets.Bundle, r.step.Check.CheckReferrers, func(f float64) {
		r.emit(Event{Kind: EventProgress, Message: "validating " + e.targets.Bundle, Fraction: f})
	})
	r.res.Bundle = report
	r.res.Findings = append(r.res.Findings, findings...)
	switch {
	case err != nil && ctx.Err() != nil:
		r.incomplete("Could not complete bundle validation: " + err.Error())
		r.res.Error = err.Error()
	case err != nil:
		r.res.Status = StatusFailed
		r.res.Error = err.Error()
		r.res.Summary = "The bundle could not be validated: " + err.Error()
	case !ok:
		r.res.Status = StatusFailed
		r.res.Summary = fmt.Sprintf("The bundle %s is not whole: %s found.", e.targets.Bundle, human.Count(len(findings), "problem")) + signatureNote(report)
	default:
		r.res.Status = statusFrom(r.res.Findings)
		what := "every member checksum"
		if r.step.Check.CheckReferrers {
			what += ", referrer, subject and count"
		}
		r.res.Summary = fmt.Sprintf("The bundle %s is whole: %s agrees with manifest.yaml.", e.targets.Bundle, what) + signatureNote(report)
	}
}

func (e *Engine) runLogs(r *run) {
	path := e.targets.LogFile
	if path == "" {
		r.skip("No export log given: pass --export-log FILE, or set it in the start form.")
		return
	}
	f, err := os.Open(path)
	if err != nil {
		r.res.Status = StatusFailed
		r.res.Error = err.Error()
		r.res.Summary = "Could not read the export log: " + err.Error()
		return
	}
	defer f.Close()
	rep, err := ReadLog(f)
	if err != nil {
		r.res.Status = StatusFailed
		r.res.Error = err.Error()
		r.res.Summary = "Could not read the export log: " + err.Error()
		return
	}
	r.res.Logs = &rep
	r.res.Findings = append(r.res.Findings, rep.Findings...)
	counts := map[string]int{}
	for _, p := range rep.Probes {
		counts[p.API]++
	}
	r.res.Summary = fmt.Sprintf("%s: %s, %s (%d supported, %d fallback, %d failed), %s.",
		filepath.Base(path), human.Count(rep.Lines, "line"), human.Count(len(rep.Probes), "probe verdict"), counts[LogAPISupported], counts[LogAPIUnsupported], counts[LogAPIUnknown], human.Count(len(rep.Failures), "failure line"))
	r.res.Status = statusFrom(r.res.Findings)
	if len(rep.Failures) > 0 || rep.Unknown() > 0 {
		r.res.Status = StatusFailed
	}
}

// metricNames are the counters the metrics check reads.
var metricNames = []string{telemetry.MetricCapabilitiesProbed, telemetry.MetricDiscoveryMethod, telemetry.MetricDiscoveryFailures}

// historyPoints is the number of steps of the window the telemetry step's
// sparklines show.
const historyPoints = 12

func (e *Engine) runMetrics(ctx context.Context, r *run) {
	session := e.sessionMetrics(r)
	prom := e.o.prometheus
	if prom == nil {
		r.res.Findings = append(r.res.Findings, finding.Finding{Severity: finding.SeverityInfo, Code: finding.NoTelemetry,
			Summary: "Only this run's counters: refdoctor is not pointed at Prometheus, so the exporter's history is not read",
			Cause:   "Neither --prometheus nor [telemetry] prometheus_url is set.",
			Remedy:  "Give --prometheus URL (or set prometheus_url in the [telemetry] table of the config) to run the three queries below against Prometheus; refdoctor serve exports these counters for it to scrape."})
		r.res.Summary = "Only the counters of this run of refdoctor (not Prometheus' history): " + session
		r.res.Status = statusFrom(r.res.Findings)
		return
	}
	r.emit(Event{Kind: EventProgress, Message: "asking Prometheus at " + prom.URL()})
	rep := prom.Query(ctx, telemetry.QueryOptions{
		Window:        e.o.window,
		ExpectsAPI:    func(host string) (bool, bool) { return probe.DefaultMatrix().ExpectsAPI(e.o.cfg, host) },
		HistoryPoints: historyPoints,
	})
	r.res.Prometheus = &rep
	r.res.Findings = append(r.res.Findings, rep.Findings...)
	if rep.Incomplete {
		summary := "Prometheus could not answer"
		for _, f := range rep.Findings {
			if f.Severity == finding.SeverityError {
				summary = f.Summary
			}
		}
		r.incomplete("Could not read the exporter's history: " + summary + ". This run's counters: " + session)
		return
	}
	failing := 0
	for _, rr := range rep.Registries {
		if rr.FailureRate > 0 {
			failing++
		}
	}
	r.res.Summary = fmt.Sprintf("Prometheus at %s, last %s: %s, discoveries failing against %d. This run's counters: %s",
		rep.Prometheus, rep.Window, human.Count(len(rep.Registries), "registry"), failing, session)
	r.res.Status = statusFrom(r.res.Findings)
}

// sessionMetrics reads this session's counters into the result, adds
// their findings, and sums them up in a sentence.
func (e *Engine) sessionMetrics(r *run) string {
	samples := []telemetry.Sample{}
	for _, s := range e.o.metrics.Snapshot() {
		for _, n := range metricNames {
			if s.Name == n {
				samples = append(samples, s)
			}
		}
	}
	r.res.Metrics = samples
	if len(samples) == 0 {
		return "no samples yet (nothing was probed or discovered in this session; run the probe and discovery steps first)."
	}
	byAPI := map[string]float64{}
	byMethod := map[string]float64{}
	failures := map[string]float64{}
	unknown := map[string]float64{}
	var failedTotal float64
	for _, s := range samples {
		switch s.Name {
		case telemetry.MetricCapabilitiesProbed:
			byAPI[s.Labels["api_supported"]] += s.Value
			if s.Labels["api_supported"] == "unknown" {
				unknown[s.Labels["registry"]] += s.Value
			}
		case telemetry.MetricDiscoveryMethod:
			byMethod[s.Labels["method"]] += s.Value
		case telemetry.MetricDiscoveryFailures:
			failures[s.Labels["registry"]] += s.Value
			failedTotal += s.Value
		}
	}
	if len(unknown) > 0 {
		r.res.Findings = append(r.res.Findings, finding.Finding{Severity: finding.SeverityWarn, Code: finding.ProbesUndecided,
			Summary:  "Some capability probes of this session could not decide (api_supported=\"unknown\")",
			Cause:    "Throttling, refused logins, TLS trouble or timeouts; these say nothing about support.",
			Remedy:   "Run the probe failure step for these registries.",
			Evidence: formatCounts(unknown)})
	}
	if failedTotal > 0 {
		r.res.Findings = append(r.res.Findings, finding.Finding{Severity: finding.SeverityWarn, Code: finding.DiscoveryFailuresCounted,
			Summary:  fmt.Sprintf("%v referrer discoveries failed or were partial in this session", failedTotal),
			Cause:    "A failed discovery leaves an incomplete referrer list.",
			Remedy:   "Run the partial referrers step for these registries.",
			Evidence: formatCounts(failures)})
	}
	return fmt.Sprintf("capability probes: %v supported, %v unsupported, %v unknown; discoveries: %v by API, %v by tags; failures: %v.",
		byAPI["true"], byAPI["false"], byAPI["unknown"], byMethod["api"], byMethod["tags"], failedTotal)
}

func formatCounts(m map[string]float64) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s: %v", k, m[k])
	}
	return strings.Join(parts, ", ")
}

func (e *Engine) runDiag(ctx context.Context, r *run) {
	if r.shared != nil && e.o.diagOut == "" {
		// A full run does not leave a support bundle behind every time;
		// one is written when asked for.
		r.skip("Not collected in a full run: refdoctor runbook run escalate (or d on the TUI's Support screen) writes " + DiagFileName(time.Now()) + " in the working folder; --diag-out names another file.")
		return
	}
	out := e.o.diagOut
	if out == "" {
		out = DefaultDiagPath(time.Now())
	}
	r.emit(Event{Kind: EventProgress, Message: "collecting diagnostics into " + out})
	d, err := CollectDiag(ctx, out, DiagOptions{
		Targets:       e.targets,
		Config:        e.o.cfg,
		ToolVersion:   e.o.toolVersion,
		Metrics:       e.o.metrics,
		ClientOpts:    e.o.clientOpts,
		ProbeOpts:     e.o.probeOpts,
		DiscoveryOpts: e.o.discoveryOpts,
		Timeout:       e.timeout(),
	})
	if err != nil {
		r.res.Status = StatusFailed
		r.res.Error = err.Error()
		r.res.Summary = "Could not write the support bundle: " + err.Error()
		if ctx.Err() != nil {
			r.incomplete("Could not complete the support bundle: " + err.Error())
		}
		return
	}
	r.res.Diag = &d
	r.res.Status = StatusPassed
	r.res.Summary = fmt.Sprintf("Support bundle written to %s (%s, %s), credentials removed. Look through it, then attach it to the ticket.", d.Path, human.Count(len(d.Files), "file"), human.Count64(d.Bytes, "byte"))
}

// checkKey identifies checks that give the same answer within one RunAll.
func checkKey(c Check) string {
	return fmt.Sprintf("%s/%t/%t", c.Kind, c.Platforms, c.CheckReferrers)
}

// RunAll runs every step in book order and returns their results in that
// order. Within one call a check is run once and its result reused by the
// later steps with the same check (a second probe of a rate-limited
// registry would only spend its budget); the metrics check runs last, so
// it reports what this run counted, and its events come last.
func (e *Engine) RunAll(ctx context.Context, events func(Event)) []Result {
	if e == nil || e.book == nil {
		return nil
	}
	results := make([]Result, len(e.book.Steps))
	done := map[string]int{}
	shared := &runShared{}
	var metrics []int
	for i, s := range e.book.Steps {
		switch s.Check.Kind {
		case CheckMetrics:
			metrics = append(metrics, i)
			continue
		case CheckProbe, CheckTiming, CheckCompat, CheckProbeFailures, CheckDiscover, CheckTags, CheckBundleValidate, CheckLogs:
			if j, ok := done[checkKey(s.Check)]; ok && results[j].Status != StatusSkipped {
				res := results[j]
				res.Step = s.ID
				res.SameAs = e.book.Steps[j].ID
				res.StartedAt = time.Now().UTC()
				res.DurationMS = 0
				results[i] = res
				if events != nil {
					r := &run{step: s, sink: events}
					r.emit(Event{Kind: EventStarted, Message: s.Title})
					final := res
					r.emit(Event{Kind: EventFinished, Message: res.Summary, Fraction: 1, Result: &final})
				}
				continue
			}
			done[checkKey(s.Check)] = i
		}
		results[i] = e.run(ctx, s.ID, events, shared)
	}
	for _, i := range metrics {
		results[i] = e.run(ctx, e.book.Steps[i].ID, events, shared)
	}
	return results
}
