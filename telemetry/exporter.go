package telemetry

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"html"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Gauge names of the exporter, a contract like the counters' names.
const (
	MetricAPISupported      = "refdoctor_registry_referrers_api_supported"
	MetricProbeSuccess      = "refdoctor_registry_probe_success"
	MetricProbeDuration     = "refdoctor_registry_probe_duration_seconds"
	MetricRateLimitLeft     = "refdoctor_registry_ratelimit_remaining"
	MetricRateLimitLimit    = "refdoctor_registry_ratelimit_limit"
	MetricProbeCached       = "refdoctor_registry_probe_cached"
	MetricLastRoundTime     = "refdoctor_exporter_last_round_timestamp_seconds"
	MetricLastRoundDuration = "refdoctor_exporter_last_round_duration_seconds"
)

// TargetHealth is what one probe of one target learned, reduced to the
// exporter's gauges.
type TargetHealth struct {
	Target   string
	Registry string
	// APISupported is the referrers API verdict; nil while unknown (the
	// probe was throttled, refused or timed out), so that the gauge is
	// absent rather than a false 0.
	APISupported *bool
	// Success: the probe reached a verdict and no error finding stands.
	Success bool
	// Duration is how long the probe that gave the verdict took (for a
	// cached verdict, the probe that stored it).
	Duration time.Duration
	// RateLimitRemaining is the registry's own count of requests left,
	// when it reports one.
	RateLimitRemaining *float64
	// RateLimitLimit is the size of the registry's rate-limit window, when
	// it reports one (RateLimit-Limit).
	RateLimitLimit *float64
	// Cached: the verdict came from the capability cache, no request sent.
	Cached bool
}

// ErrBadTarget marks a /probe target that cannot be probed; it answers
// 400 with the reason.
var ErrBadTarget = errors.New("bad target")

// ExporterConfig injects what the exporter needs from the engine above it.
type ExporterConfig struct {
	// Metrics are the export_* counters; Round and Probe count into them.
	Metrics *Metrics
	// Round probes every target once (and runs any discoveries the
	// operator asked for), counting into Metrics, and returns one health
	// per target. It must return when ctx ends.
	Round func(ctx context.Context) []TargetHealth
	// Probe probes one target afresh for /probe. Its error, for a target
	// that cannot be parsed, should wrap ErrBadTarget.
	Probe func(ctx context.Context, target string) (TargetHealth, error)
	// Interval between the starts of two rounds (default 5m). Rounds never
	// overlap: a round longer than the interval delays the next.
	Interval time.Duration
	// ProbeConcurrency bounds /probe requests served at once (default 4);
	// more wait for a slot until their scrape times out.
	ProbeConcurrency int
	Log              *slog.Logger
	// OnRound, if set, is called after each round is published.
	OnRound func(round int, health []TargetHealth)
}

// Exporter serves the export_* counters and per-registry gauges in the
// style of Prometheus' multi-target exporters: /metrics answers at once
// from the last finished round, /probe?target= probes one target afresh.
type Exporter struct {
	cfg      ExporterConfig
	gatherer prometheus.Gatherers
	health   *healthCollector
	slots    chan struct{}

	mu     sync.Mutex
	rounds int
	ready  bool
}

// NewExporter checks cfg and registers the collectors.
func NewExporter(cfg ExporterConfig) (*Exporter, error) {
	if cfg.Metrics == nil || cfg.Round == nil || cfg.Probe == nil {
		return nil, errors.New("exporter: Metrics, Round and Probe are required")
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultWindow
	}
	if cfg.ProbeConcurrency < 1 {
		cfg.ProbeConcurrency = 4
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	e := &Exporter{cfg: cfg, health: newHealthCollector(true), slots: make(chan struct{}, cfg.ProbeConcurrency)}
	own := prometheus.NewRegistry()
	if err := own.Register(e.health); err != nil {
		return nil, fmt.Errorf("exporter: %w", err)
	}
	if err := own.Register(collectors.NewGoCollector()); err != nil {
		return nil, fmt.Errorf("exporter: %w", err)
	}
	if err := own.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})); err != nil {
		return nil, fmt.Errorf("exporter: %w", err)
	}
	e.gatherer = prometheus.Gatherers{cfg.Metrics.Registry(), own}
	return e, nil
}

// Ready reports whether the first round has finished.
func (e *Exporter) Ready() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.ready
}

// Handler serves /metrics, /probe, /-/healthy, /-/ready and an index page.
func (e *Exporter) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(e.gatherer, promhttp.HandlerOpts{ErrorLog: slogPrinter{e.cfg.Log}}))
	mux.HandleFunc("/probe", e.serveProbe)
	mux.HandleFunc("/-/healthy", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "refdoctor serve is healthy.")
	})
	mux.HandleFunc("/-/ready", func(w http.ResponseWriter, r *http.Request) {
		if !e.Ready() {
			http.Error(w, "refdoctor serve is not ready: the first probe round has not finished.", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "refdoctor serve is ready.")
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<html><head><title>refdoctor exporter</title></head><body>
<h1>refdoctor exporter</h1>
<p>Probes every %s. <a href="/metrics">/metrics</a> (last round), <a href="/probe?target=">/probe?target=HOST/REPO</a> (a fresh probe of one target), <a href="/-/healthy">/-/healthy</a>, <a href="/-/ready">/-/ready</a>.</p>
</body></html>
`, html.EscapeString(FormatWindow(e.cfg.Interval)))
	})
	return mux
}

// Run probes every Interval until ctx ends. The first round starts at
// once; /-/ready answers 200 once it has finished.
func (e *Exporter) Run(ctx context.Context) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		start := time.Now()
		e.round(ctx)
		timer.Reset(max(0, e.cfg.Interval-time.Since(start)))
	}
}

func (e *Exporter) round(ctx context.Context) {
	start := time.Now()
	health, err := e.safeRound(ctx)
	if err != nil {
		e.cfg.Log.Error("probe round failed; /metrics keeps the last round", "err", err)
		return
	}
	if ctx.Err() != nil {
		// A round cut short by shutdown is not published: its probes were
		// canceled, not failed.
		return
	}
	took := time.Since(start)
	e.health.publish(health, time.Now(), took)
	e.mu.Lock()
	e.rounds++
	n := e.rounds
	e.ready = true
	e.mu.Unlock()
	e.cfg.Log.Info(fmt.Sprintf("Probe round %d: %d targets in %s", n, len(health), took.Round(time.Millisecond)))
	if e.cfg.OnRound != nil {
		e.cfg.OnRound(n, health)
	}
}

func (e *Exporter) safeRound(ctx context.Context) (health []TargetHealth, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("probe round panicked: %v\n%s", p, debug.Stack())
		}
	}()
	return e.cfg.Round(ctx), nil
}

// scrapeTimeoutMargin is left of Prometheus' scrape timeout for writing
// the answer.
const scrapeTimeoutMargin = 500 * time.Millisecond

// serveProbe probes one target afresh and answers with that target's
// gauges only.
func (e *Exporter) serveProbe(w http.ResponseWriter, r *http.Request) {
	target := r.URL.Query().Get("target")
	if target == "" {
		http.Error(w, "the target parameter is missing: /probe?target=HOST/REPO", http.StatusBadRequest)
		return
	}
	ctx := r.Context()
	// Prometheus says how long it waits; a probe that outlives the scrape
	// is wasted work.
	if v := r.Header.Get("X-Prometheus-Scrape-Timeout-Seconds"); v != "" {
		if secs, err := strconv.ParseFloat(v, 64); err == nil && secs > 0 {
			d := time.Duration(secs * float64(time.Second))
			if d > 2*scrapeTimeoutMargin {
				d -= scrapeTimeoutMargin
			}
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, d)
			defer cancel()
		}
	}
	select {
	case e.slots <- struct{}{}:
		defer func() { <-e.slots }()
	case <-ctx.Done():
		http.Error(w, "too many probes at once: no slot before the scrape timed out", http.StatusServiceUnavailable)
		return
	}
	h, err := e.safeProbe(ctx, target)
	if err != nil {
		status := http.StatusInternalServerError
		if errors.Is(err, ErrBadTarget) {
			status = http.StatusBadRequest
		}
		http.Error(w, err.Error(), status)
		return
	}
	reg := prometheus.NewRegistry()
	hc := newHealthCollector(false)
	hc.publish([]TargetHealth{h}, time.Time{}, 0)
	reg.MustRegister(hc)
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: slogPrinter{e.cfg.Log}}).ServeHTTP(w, r)
}

func (e *Exporter) safeProbe(ctx context.Context, target string) (h TargetHealth, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("probe of %s panicked: %v", target, p)
			e.cfg.Log.Error("probe panicked", "target", target, "panic", p, "stack", string(debug.Stack()))
		}
	}()
	return e.cfg.Probe(ctx, target)
}

// Serve listens on ln, runs rounds, and shuts down cleanly when ctx ends:
// the listener closes, requests in flight get a few seconds to finish,
// and the round in progress is canceled.
func (e *Exporter) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{Handler: e.Handler(), ReadHeaderTimeout: 10 * time.Second}
	roundCtx, cancelRounds := context.WithCancel(ctx)
	defer cancelRounds()
	roundsDone := make(chan struct{})
	go func() {
		defer close(roundsDone)
		e.Run(roundCtx)
	}()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	var err error
	select {
	case err = <-served:
		// The listener failed: stop probing too.
	case <-ctx.Done():
		shutCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err = srv.Shutdown(shutCtx)
		if err != nil {
			_ = srv.Close()
		}
		<-served
	}
	cancelRounds()
	<-roundsDone
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// slogPrinter lets promhttp log through slog.
type slogPrinter struct{ log *slog.Logger }

func (p slogPrinter) Println(v ...any) { p.log.Error(fmt.Sprint(v...)) }

// healthCollector exposes the last published round as gauges. A scrape
// sees one whole round, never a mix of two, because publish swaps the
// snapshot under the lock and Collect reads one snapshot.
type healthCollector struct {
	withRound bool

	apiSupported, success, duration, rateLimit, rateLimitLimit, cached *prometheus.Desc
	lastRound, lastRoundDuration                                       *prometheus.Desc

	mu        sync.RWMutex
	snapshot  []TargetHealth
	roundAt   time.Time
	roundTook time.Duration
}

func newHealthCollector(withRound bool) *healthCollector {
	reg := []string{labelRegistry}
	return &healthCollector{
		withRound: withRound,
		apiSupported: prometheus.NewDesc(MetricAPISupported,
			"1 when the registry serves the OCI 1.1 referrers API, 0 when it does not (discovery falls back to tags); absent while the last probe could not decide.", reg, nil),
		success: prometheus.NewDesc(MetricProbeSuccess,
			"1 when the last probe reached a verdict and found nothing that blocks discovery, else 0.", reg, nil),
		duration: prometheus.NewDesc(MetricProbeDuration,
			"How long the probe that gave the current verdict took (for a cached verdict, the probe that stored it).", reg, nil),
		rateLimit: prometheus.NewDesc(MetricRateLimitLeft,
			"Requests left in the registry's rate-limit window, as the registry reports it (RateLimit-Remaining); absent when it reports none.", reg, nil),
		rateLimitLimit: prometheus.NewDesc(MetricRateLimitLimit,
			"Requests allowed per rate-limit window, as the registry reports it (RateLimit-Limit); absent when it reports none.", reg, nil),
		cached: prometheus.NewDesc(MetricProbeCached,
			"1 when the current verdict came from the capability cache (no request sent this round).", reg, nil),
		lastRound: prometheus.NewDesc(MetricLastRoundTime,
			"When the last probe round finished (Unix seconds).", nil, nil),
		lastRoundDuration: prometheus.NewDesc(MetricLastRoundDuration,
			"How long the last probe round took.", nil, nil),
	}
}

func (c *healthCollector) publish(health []TargetHealth, at time.Time, took time.Duration) {
	merged := MergeByRegistry(health)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.snapshot, c.roundAt, c.roundTook = merged, at, took
}

func (c *healthCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.apiSupported
	ch <- c.success
	ch <- c.duration
	ch <- c.rateLimit
	ch <- c.rateLimitLimit
	ch <- c.cached
	if c.withRound {
		ch <- c.lastRound
		ch <- c.lastRoundDuration
	}
}

func (c *healthCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.RLock()
	snapshot, at, took := c.snapshot, c.roundAt, c.roundTook
	c.mu.RUnlock()
	for _, h := range snapshot {
		if h.APISupported != nil {
			ch <- prometheus.MustNewConstMetric(c.apiSupported, prometheus.GaugeValue, boolValue(*h.APISupported), h.Registry)
		}
		ch <- prometheus.MustNewConstMetric(c.success, prometheus.GaugeValue, boolValue(h.Success), h.Registry)
		ch <- prometheus.MustNewConstMetric(c.duration, prometheus.GaugeValue, h.Duration.Seconds(), h.Registry)
		if h.RateLimitRemaining != nil {
			ch <- prometheus.MustNewConstMetric(c.rateLimit, prometheus.GaugeValue, *h.RateLimitRemaining, h.Registry)
		}
		if h.RateLimitLimit != nil {
			ch <- prometheus.MustNewConstMetric(c.rateLimitLimit, prometheus.GaugeValue, *h.RateLimitLimit, h.Registry)
		}
		ch <- prometheus.MustNewConstMetric(c.cached, prometheus.GaugeValue, boolValue(h.Cached), h.Registry)
	}
	if c.withRound && !at.IsZero() {
		ch <- prometheus.MustNewConstMetric(c.lastRound, prometheus.GaugeValue, float64(at.UnixNano())/1e9)
		ch <- prometheus.MustNewConstMetric(c.lastRoundDuration, prometheus.GaugeValue, took.Seconds())
	}
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// MergeByRegistry folds the health of several targets on one registry
// into the one line the gauges carry (their label is the registry): the
// first target in order with a verdict decides api_supported, success
// needs every target to succeed, the duration is the longest, the rate
// limit left the lowest reported (the window size the first reported), and
// cached needs every verdict cached.
// Registry labels pass through RegistryLabel.
func MergeByRegistry(health []TargetHealth) []TargetHealth {
	var out []TargetHealth
	index := map[string]int{}
	for _, h := range health {
		h.Registry = RegistryLabel(h.Registry)
		i, ok := index[h.Registry]
		if !ok {
			index[h.Registry] = len(out)
			out = append(out, h)
			continue
		}
		m := &out[i]
		if m.APISupported == nil {
			m.APISupported = h.APISupported
		}
		m.Success = m.Success && h.Success
		m.Duration = max(m.Duration, h.Duration)
		if h.RateLimitRemaining != nil && (m.RateLimitRemaining == nil || *h.RateLimitRemaining < *m.RateLimitRemaining) {
			m.RateLimitRemaining = h.RateLimitRemaining
		}
		if m.RateLimitLimit == nil {
			m.RateLimitLimit = h.RateLimitLimit
		}
		m.Cached = m.Cached && h.Cached
		m.Target = ""
	}
	slices.SortFunc(out, func(a, b TargetHealth) int { return cmp.Compare(a.Registry, b.Registry) })
	return out
}
