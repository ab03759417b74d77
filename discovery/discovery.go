// Package discovery finds the referrers of images: SBOMs, signatures,
// attestations and VEX documents attached through the OCI 1.1 referrers
// API, through the referrers tag schema (sha256-<hex> index tags), through
// cosign's legacy sha256-<hex>.sig/.att/.sbom tags, and inside image
// indexes (buildkit attestation manifests). Every referrer says how it was
// found, and a lookup that was throttled, refused or timed out is reported
// as such, never as "no referrers".
package discovery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/regclient/regclient/types/ref"
	"golang.org/x/sync/errgroup"

	"github.com/refdoctor/refdoctor/config"
	"github.com/refdoctor/refdoctor/finding"
	"github.com/refdoctor/refdoctor/probe"
	"github.com/refdoctor/refdoctor/registry"
	"github.com/refdoctor/refdoctor/telemetry"
)

// Method is how referrers are listed.
type Method string

const (
	MethodAuto Method = "auto"
	MethodAPI  Method = "api"
	MethodTags Method = "tags"
)

// Source says how one referrer was found.
type Source string

const (
	SourceAPI              Source = "api"
	SourceTagIndex         Source = "tag-index"
	SourceCosignTag        Source = "cosign-tag"
	SourceIndexAttestation Source = "index-attestation"
)

// ErrBadReference marks an image reference that cannot be parsed.
var ErrBadReference = errors.New("invalid image reference")

// ParseMethod reads --method.
func ParseMethod(s string) (Method, error) {
	switch Method(s) {
	case MethodAuto, MethodAPI, MethodTags:
		return Method(s), nil
	}
	return "", fmt.Errorf("method %q: use auto, api or tags", s)
}

// Subject is the image whose referrers were looked up.
type Subject struct {
	Reference string `json:"reference"`
	Digest    string `json:"digest"`
	MediaType string `json:"media_type"`
	// Tag is set when the reference named a tag that was resolved.
	Tag string `json:"tag,omitempty"`
}

// Referrer is one artifact attached to a subject.
type Referrer struct {
	Digest       string            `json:"digest"`
	MediaType    string            `json:"media_type"`
	ArtifactType string            `json:"artifact_type"`
	Size         int64             `json:"size"`
	Annotations  map[string]string `json:"annotations"`
	Source       Source            `json:"source"`
	Tag          string            `json:"tag,omitempty"`
	// Repository is HOST/REPO when the referrer was found in a referrers
	// repository (--referrers-repo, or referrers_repository in the
	// registry's config; cosign's COSIGN_REPOSITORY), not in the subject's
	// own repository; empty there.
	Repository string           `json:"repository,omitempty"`
	Category   finding.Category `json:"category"`
	// PredicateType is a cosign v3 attestation's in-toto predicate type
	// (from dev.sigstore.bundle.predicateType), empty for signatures and
	// for everything that is not a sigstore bundle.
	PredicateType string `json:"predicate_type,omitempty"`
	// Subject is the digest this referrer is attached to.
	Subject   string     `json:"subject"`
	Referrers []Referrer `json:"referrers"`
}

// PlatformResult holds the referrers of one platform manifest of an index.
type PlatformResult struct {
	Platform  string     `json:"platform"`
	Digest    string     `json:"digest"`
	Referrers []Referrer `json:"referrers"`
}

// Result is what discovery found for one subject.
type Result struct {
	Subject   Subject          `json:"subject"`
	Method    Method           `json:"method"`
	Referrers []Referrer       `json:"referrers"`
	Platforms []PlatformResult `json:"platforms,omitempty"`
	// Requests counts the HTTP requests sent for this subject's discovery
	// (not resolving the tag, not the repository's shared tag list).
	Requests int `json:"requests"`
	// ResolveRequests counts the requests that resolved the reference.
	ResolveRequests int `json:"resolve_requests"`
	// Partial is true when the list is not the whole answer: a lookup
	// failed, timed out, was throttled, or the walk stopped at a limit or
	// a loop. Outcome is then incomplete.
	Partial  bool              `json:"partial"`
	Error    string            `json:"error,omitempty"`
	Findings []finding.Finding `json:"findings"`
	// Outcome sums the result up: ok, warn, fail or incomplete.
	Outcome finding.Outcome `json:"outcome"`
}

// Count is the number of referrers found, all levels and platforms.
func (r Result) Count() int {
	n := countTree(r.Referrers)
	for _, p := range r.Platforms {
		n += countTree(p.Referrers)
	}
	return n
}

func countTree(rs []Referrer) int {
	n := len(rs)
	for _, r := range rs {
		n += countTree(r.Referrers)
	}
	return n
}

// Report is the result of discovering many subjects.
type Report struct {
	Results []Result `json:"results"`
	// SharedRequests counts requests shared by all subjects: capability
	// probes and one tag list per repository.
	SharedRequests int `json:"shared_requests"`
}

// EventKind names a discovery event.
type EventKind string

const (
	EventSubjectStarted  EventKind = "subject-started"
	EventReferrerFound   EventKind = "referrer-found"
	EventSubjectFinished EventKind = "subject-finished"
	EventExchange        EventKind = "exchange"
)

// Event reports progress to the CLI or the TUI.
type Event struct {
	Kind      EventKind          `json:"kind"`
	Reference string             `json:"reference"`
	Referrer  *Referrer          `json:"referrer,omitempty"`
	Result    *Result            `json:"result,omitempty"`
	Exchange  *registry.Exchange `json:"exchange,omitempty"`
}

type options struct {
	cfg           config.Config
	method        Method
	artifactTypes []string
	depth         int
	platforms     bool
	concurrency   int
	timeout       time.Duration
	log           *slog.Logger
	metrics       *telemetry.Metrics
	events        func(Event)
	probeOpts     []probe.Opt
	clientOpts    []registry.Opt
	maxReferrers  int
	minReferrers  int
	rateRetries   int
	allTags       bool
	// referrersRepo, when set, is looked at for every subject, in place of
	// the configured referrers_repository of its registry.
	referrersRepo *ref.Ref
}

// DefaultMaxReferrers bounds one subject's referrers API walk: far above
// what real images carry (tens), and enough for registries that page
// thousands.
const DefaultMaxReferrers = config.DefaultMaxReferrers

// defaults are the options every discovery entry point starts from: one
// timeout (registry.DefaultTimeout), the configuration's limits.
func defaults() options {
	o := options{cfg: config.Defaults(), method: MethodAuto, concurrency: 4, timeout: registry.DefaultTimeout,
		maxReferrers: DefaultMaxReferrers, rateRetries: 3}
	return o
}

// newClient is the one place discovery builds registry clients: the run's
// configuration, timeout and client options.
func (o *options) newClient(extra ...registry.Opt) (*registry.Client, error) {
	opts := append([]registry.Opt{registry.WithTimeout(o.timeout)}, o.clientOpts...)
	return registry.New(o.cfg, append(opts, extra...)...)
}

// Opt configures discovery.
type Opt func(*options)

// WithConfig supplies hosts, the capability cache and the discovery
// limits (timeout_seconds, max_concurrent_discoveries, max_referrers).
func WithConfig(c config.Config) Opt {
	return func(o *options) {
		o.cfg = c
		rd := c.Export.ReferrerDiscovery
		o.concurrency = rd.MaxConcurrentDiscoveries
		o.timeout = rd.Timeout()
		if rd.MaxReferrers > 0 {
			o.maxReferrers = rd.MaxReferrers
		}
	}
}

// WithMethod forces the API or the tag schema; auto follows the probe.
func WithMethod(m Method) Opt { return func(o *options) { o.method = m } }

// WithArtifactTypes keeps only referrers of these artifact types.
func WithArtifactTypes(types ...string) Opt {
	return func(o *options) { o.artifactTypes = append(o.artifactTypes, types...) }
}

// WithDepth also discovers referrers of referrers, n levels down.
func WithDepth(n int) Opt { return func(o *options) { o.depth = n } }

// WithPlatforms also discovers the referrers of every platform manifest of
// an index, since referrers attach to one digest.
func WithPlatforms(b bool) Opt { return func(o *options) { o.platforms = b } }

// WithConcurrency bounds how many subjects are discovered at once.
func WithConcurrency(n int) Opt { return func(o *options) { o.concurrency = n } }

// WithTimeout bounds each subject's discovery.
func WithTimeout(d time.Duration) Opt { return func(o *options) { o.timeout = d } }

// WithLogger receives debug lines for each discovery.
func WithLogger(l *slog.Logger) Opt { return func(o *options) { o.log = l } }

// WithMetrics counts methods and failures.
func WithMetrics(m *telemetry.Metrics) Opt { return func(o *options) { o.metrics = m } }

// WithEvents receives progress events.
func WithEvents(fn func(Event)) Opt { return func(o *options) { o.events = fn } }

// WithProbeOpts passes options to the capability probe that auto uses
// (for instance a capability cache).
func WithProbeOpts(opts ...probe.Opt) Opt {
	return func(o *options) { o.probeOpts = append(o.probeOpts, opts...) }
}

// WithClientOpts passes options to every registry client.
func WithClientOpts(opts ...registry.Opt) Opt {
	return func(o *options) { o.clientOpts = append(o.clientOpts, opts...) }
}

// WithMaxReferrers bounds the referrers API walk of one subject: once this
// many referrers are read, a further page is not asked for and the result
// is partial.
func WithMaxReferrers(n int) Opt {
	return func(o *options) {
		if n > 0 {
			o.maxReferrers = n
		}
	}
}

// WithAllTags lists every tag of the repository (once per run) to find
// cosign-style tags and the fallback index even when the referrers API
// answers; without it such a subject costs four HEADs (sha256-<hex> and
// its .sig, .att and .sbom), whatever the repository's tag count.
func WithAllTags(b bool) Opt { return func(o *options) { o.allTags = b } }

// WithMinReferrers makes a complete discovery that finds fewer than n
// referrers (all levels and platforms) fail, with a TooFewReferrers
// finding: an export gate for images that must carry an SBOM and a
// signature.
func WithMinReferrers(n int) Opt { return func(o *options) { o.minReferrers = n } }

// Discover finds the referrers of one image (by tag or digest).
func Discover(ctx context.Context, reference string, opts ...Opt) (Result, error) {
	rep, err := DiscoverMany(ctx, []string{reference}, opts...)
	if len(rep.Results) == 0 {
		return Result{}, err
	}
	return rep.Results[0], err
}

// DiscoverMany discovers many subjects at once, bounded by the configured
// concurrency, with one capability probe per registry and one tag list per
// repository shared by all subjects. The error is for references that do
// not parse and for a canceled context; registry trouble is in each Result.
func DiscoverMany(ctx context.Context, references []string, opts ...Opt) (Report, error) {
	o := defaults()
	for _, opt := range opts {
		opt(&o)
	}
	if o.log == nil {
		o.log = slog.New(slog.DiscardHandler)
	}
	if o.concurrency < 1 {
		o.concurrency = 1
	}
	refs := make([]ref.Ref, len(references))
	for i, s := range references {
		r, err := ParseReference(s)
		if err != nil {
			return Report{}, err
		}
		refs[i] = r
	}
	e, err := newEngine(ctx, &o)
	if err != nil {
		return Report{}, err
	}
	e.probeAllCapabilities(refs)
	results := make([]Result, len(refs))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(o.concurrency)
	for i, r := range refs {
		g.Go(func() (err error) {
			defer func() {
				if p := recover(); p != nil {
					err = fmt.Errorf("discovery of %s panicked: %v\n%s", references[i], p, debug.Stack())
				}
			}()
			results[i] = e.discoverOne(gctx, references[i], r)
			return nil
		})
	}
	werr := g.Wait()
	rep := Report{Results: results, SharedRequests: int(e.shared.Load())}
	if werr != nil {
		return rep, werr
	}
	return rep, ctx.Err()
}

// ParseReference reads HOST/REPO:TAG or HOST/REPO@DIGEST. A registry host
// is required: refdoctor never guesses Docker Hub for a bare name.
func ParseReference(s string) (ref.Ref, error) {
	r, err := ref.New(s)
	if err != nil {
		return ref.Ref{}, fmt.Errorf("%w %q: %v (write HOST/REPO:TAG or HOST/REPO@sha256:DIGEST)", ErrBadReference, s, err)
	}
	first, _, slash := strings.Cut(s, "/")
	if !slash || (!strings.ContainsAny(first, ".:") && first != "localhost") {
		return ref.Ref{}, fmt.Errorf("%w %q: no registry host (write HOST/REPO:TAG, e.g. docker.io/library/alpine:3)", ErrBadReference, s)
	}
	if r.Digest != "" && !strings.Contains(s, "@") {
		return ref.Ref{}, fmt.Errorf("%w %q", ErrBadReference, s)
	}
	if r.Tag == "" && r.Digest == "" {
		return ref.Ref{}, fmt.Errorf("%w %q: name a tag or a digest", ErrBadReference, s)
	}
	return r, nil
}

// engine is one DiscoverMany run: its clients and what subjects share.
type engine struct {
	o      *options
	client *registry.Client
	runCtx context.Context
	shared atomic.Int64
	// cache is the capability cache the configuration names; discovery
	// drops a verdict there when the registry turns out to have changed.
	cache *probe.Cache

	mu           sync.Mutex
	capabilities map[string]*onceValue[probe.Result]
	tagLists     map[string]*onceValue[*tagListing]
	apiClients   map[string]*registry.Client
	// throttled remembers registries that stopped answering until past
	// the run's time, so later subjects do not wait on them again.
	throttled map[string]*registry.ThrottledError
}

type onceValue[T any] struct {
	once sync.Once
	v    T
}

func newEngine(ctx context.Context, o *options) (*engine, error) {
	c, err := o.newClient()
	if err != nil {
		return nil, err
	}
	e := &engine{o: o, client: c, runCtx: ctx, cache: probe.OpenCache(o.cfg),
		capabilities: map[string]*onceValue[probe.Result]{},
		tagLists:     map[string]*onceValue[*tagListing]{},
		apiClients:   map[string]*registry.Client{},
		throttled:    map[string]*registry.ThrottledError{},
	}
	if o.events != nil {
		c.Recorder.OnRecord(func(ex registry.Exchange) { o.events(Event{Kind: EventExchange, Exchange: &ex}) })
	}
	return e, nil
}

func (e *engine) emit(ev Event) {
	if e.o.events != nil {
		e.o.events(ev)
	}
}

// counted returns a context whose requests add to n.
func counted(ctx context.Context, n *atomic.Int64) context.Context {
	return registry.WithWatcher(ctx, func(registry.Exchange) { n.Add(1) })
}

// bounded is ctx for one listing: the timeout, a stop at the first 429
// whose wait does not fit in it, and a count of the requests it sends.
// end releases it.
func (o *options) bounded(ctx context.Context) (context.Context, *atomic.Int64, func()) {
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	ctx, stop := registry.StopWhenThrottled(ctx)
	requests := new(atomic.Int64)
	return counted(ctx, requests), requests, func() { stop(); cancel() }
}

func (e *engine) discoverOne(ctx context.Context, input string, r ref.Ref) Result {
	e.emit(Event{Kind: EventSubjectStarted, Reference: input})
	ctx, cancel := context.WithTimeout(ctx, e.o.timeout)
	defer cancel()
	// A 429 whose wait does not fit in the time left ends the subject at
	// once; regclient would otherwise sleep until the deadline.
	ctx, stop := registry.StopWhenThrottled(ctx)
	defer stop()
	var budgetMu sync.Mutex
	var budget registry.Budget
	ctx = registry.WithWatcher(ctx, func(ex registry.Exchange) {
		// A 429 is reported as a throttle; the budget warning reads the
		// replies that got through.
		if b, ok := registry.BudgetOf(ex, ex.Start); ok && b.Remaining != "" && !b.Throttled {
			budgetMu.Lock()
			budget = b
			budgetMu.Unlock()
		}
	})
	res := Result{Subject: Subject{Reference: input}, Referrers: []Referrer{}, Findings: []finding.Finding{}}
	s := &subjectRun{e: e, res: &res, repo: r.SetDigest("").SetTag(""), visited: map[string]bool{}}
	host := r.Registry
	if te := e.throttledHost(host); te != nil {
		s.fail("registry "+host, failure{incomplete: true, throttle: true, finding: probe.ThrottledFinding(te)})
	} else {
		s.run(ctx, r)
	}
	var te *registry.ThrottledError
	if errors.As(context.Cause(ctx), &te) {
		e.noteThrottled(host, te)
	}
	budgetMu.Lock()
	if budget.Low() && te == nil {
		s.finding(probe.LowBudgetFinding(host, budget.Remaining, budget.Limit, budget.Until))
	}
	budgetMu.Unlock()
	res.Requests = int(s.requests.Load())
	res.ResolveRequests = int(s.resolveRequests.Load())
	res.Outcome = outcome(res)
	if n := e.o.minReferrers; n > 0 && res.Outcome != finding.OutcomeIncomplete && res.Count() < n {
		res.Findings = append(res.Findings, finding.Finding{Severity: finding.SeverityError, Code: finding.TooFewReferrers,
			Summary:  fmt.Sprintf("Found %d referrers, fewer than the %d required (--min-referrers)", res.Count(), n),
			Cause:    "The image carries fewer SBOMs, signatures and attestations than the export requires.",
			Remedy:   finding.TooFewReferrers.Remedy(),
			Evidence: fmt.Sprintf("%d found, %d required", res.Count(), n)})
		res.Outcome = finding.OutcomeFailed
	}
	if res.Method != "" {
		e.o.metrics.DiscoveryMethod(host, string(res.Method))
	}
	if res.Error != "" || res.Partial {
		e.o.metrics.DiscoveryFailure(host)
	}
	e.o.log.Debug(fmt.Sprintf("Discovered %d referrers for %s (%s) using %s, requests=%d, outcome=%s", res.Count(), input, res.Subject.Digest, res.Method, res.Requests, res.Outcome))
	e.emit(Event{Kind: EventSubjectFinished, Reference: input, Result: &res})
	return res
}

// throttledHost is the throttle a registry answered earlier in this run,
// while it lasts.
func (e *engine) throttledHost(host string) *registry.ThrottledError {
	e.mu.Lock()
	defer e.mu.Unlock()
	te := e.throttled[host]
	if te == nil || (!te.Budget.Until.IsZero() && time.Now().After(te.Budget.Until)) {
		return nil
	}
	return te
}

func (e *engine) noteThrottled(host string, te *registry.ThrottledError) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.throttled[host] = te
}

func outcome(r Result) finding.Outcome {
	if r.Partial {
		return finding.OutcomeIncomplete
	}
	switch finding.Worst(r.Findings) {
	case finding.SeverityError:
		return finding.OutcomeFailed
	case finding.SeverityWarn:
		return finding.OutcomeWarn
	}
	if r.Error != "" {
		return finding.OutcomeFailed
	}
	return finding.OutcomeOK
}

func sortReferrers(rs []Referrer) {
	order := map[Source]int{SourceAPI: 0, SourceTagIndex: 0, SourceCosignTag: 1, SourceIndexAttestation: 2}
	sort.SliceStable(rs, func(i, j int) bool {
		if order[rs[i].Source] != order[rs[j].Source] {
			return order[rs[i].Source] < order[rs[j].Source]
		}
		if rs[i].Category != rs[j].Category {
			return rs[i].Category < rs[j].Category
		}
		return rs[i].Digest < rs[j].Digest
	})
}
