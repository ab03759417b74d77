package telemetry_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/refdoctor/refdoctor/telemetry"
)

func ptr[T any](v T) *T { return &v }

func get(t *testing.T, url string, header ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

func parse(t *testing.T, body string) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("not the text format: %v\n%s", err, body)
	}
	return fams
}

func value(fams map[string]*dto.MetricFamily, name, registry string) (float64, bool) {
	for _, m := range fams[name].GetMetric() {
		for _, lp := range m.GetLabel() {
			if lp.GetName() == "registry" && lp.GetValue() == registry {
				return m.GetGauge().GetValue(), true
			}
		}
	}
	return 0, false
}

// blockingRounds hands the exporter one scripted round at a time: each
// round waits until the test releases it with that round's health.
type blockingRounds struct {
	started chan int
	release chan []telemetry.TargetHealth
	n       atomic.Int32
}

func newBlockingRounds() *blockingRounds {
	return &blockingRounds{started: make(chan int, 10), release: make(chan []telemetry.TargetHealth)}
}

func (b *blockingRounds) round(ctx context.Context) []telemetry.TargetHealth {
	b.started <- int(b.n.Add(1))
	select {
	case h := <-b.release:
		return h
	case <-ctx.Done():
		return nil
	}
}

// TestMetricsNeverWaitsForARound: /metrics answers from the last finished
// round while the next one hangs on a slow registry, /-/ready waits for the
// first round, and a verdict the probe could not reach leaves
// api_supported absent rather than 0.
func TestMetricsNeverWaitsForARound(t *testing.T) {
	t.Parallel()
	rounds := newBlockingRounds()
	published := make(chan int, 10)
	m := telemetry.NewMetrics()
	exp, err := telemetry.NewExporter(telemetry.ExporterConfig{
		Metrics:  m,
		Round:    rounds.round,
		Probe:    func(context.Context, string) (telemetry.TargetHealth, error) { return telemetry.TargetHealth{}, nil },
		Interval: time.Millisecond,
		OnRound:  func(n int, _ []telemetry.TargetHealth) { published <- n },
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(exp.Handler())
	defer srv.Close()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); exp.Run(ctx) }()
	defer func() { cancel(); <-done }()

	<-rounds.started // round 1 is in progress
	if code, body := get(t, srv.URL+"/-/ready"); code != http.StatusServiceUnavailable || !strings.Contains(body, "first probe round") {
		t.Errorf("/-/ready during the first round: %d %q", code, body)
	}
	m.CapabilityProbed("a.example", "true")
	code, body := get(t, srv.URL+"/metrics")
	fams := parse(t, body)
	if code != http.StatusOK || fams[telemetry.MetricCapabilitiesProbed] == nil || fams["go_goroutines"] == nil {
		t.Fatalf("/metrics during the first round: %d\n%s", code, body)
	}
	if fams[telemetry.MetricProbeSuccess] != nil {
		t.Errorf("gauges before any round finished:\n%s", body)
	}

	rounds.release <- []telemetry.TargetHealth{
		{Target: "a.example/app", Registry: "a.example", APISupported: ptr(true), Success: true, Duration: 40 * time.Millisecond},
		{Target: "hub.example/app", Registry: "hub.example", Success: false, Duration: 3 * time.Second, RateLimitRemaining: ptr(0.0), RateLimitLimit: ptr(100.0)},
	}
	if n := <-published; n != 1 {
		t.Fatalf("published round %d, want 1", n)
	}
	<-rounds.started // round 2 now hangs, like a registry that never answers
	if code, _ := get(t, srv.URL+"/-/ready"); code != http.StatusOK {
		t.Errorf("/-/ready after the first round: %d", code)
	}
	_, body = get(t, srv.URL+"/metrics")
	fams = parse(t, body)
	for _, tc := range []struct {
		name, registry string
		want           float64
		present        bool
	}{
		{telemetry.MetricAPISupported, "a.example", 1, true},
		{telemetry.MetricAPISupported, "hub.example", 0, false},
		{telemetry.MetricProbeSuccess, "a.example", 1, true},
		{telemetry.MetricProbeSuccess, "hub.example", 0, true},
		{telemetry.MetricProbeDuration, "hub.example", 3, true},
		{telemetry.MetricRateLimitLeft, "hub.example", 0, true},
		{telemetry.MetricRateLimitLimit, "hub.example", 100, true},
		{telemetry.MetricRateLimitLeft, "a.example", 0, false},
	} {
		got, ok := value(fams, tc.name, tc.registry)
		if ok != tc.present || got != tc.want {
			t.Errorf("%s{registry=%q} = %v (present %v), want %v (present %v)", tc.name, tc.registry, got, ok, tc.want, tc.present)
		}
	}
	if fams[telemetry.MetricLastRoundTime] == nil {
		t.Errorf("no %s", telemetry.MetricLastRoundTime)
	}
}

// TestProbeEndpoint: /probe answers with one target's gauges, refuses a
// missing or bad target with 400, bounds the probe by Prometheus' scrape
// timeout, and runs at most ProbeConcurrency probes at once.
func TestProbeEndpoint(t *testing.T) {
	t.Parallel()
	var inFlight, most atomic.Int32
	gate := make(chan struct{})
	entered := make(chan struct{}, 10)
	var deadlines sync.Map
	exp, err := telemetry.NewExporter(telemetry.ExporterConfig{
		Metrics: telemetry.NewMetrics(),
		Round:   func(context.Context) []telemetry.TargetHealth { return nil },
		Probe: func(ctx context.Context, target string) (telemetry.TargetHealth, error) {
			if strings.Contains(target, "://") {
				return telemetry.TargetHealth{}, fmt.Errorf("%w: drop the scheme", telemetry.ErrBadTarget)
			}
			if d, ok := ctx.Deadline(); ok {
				deadlines.Store(target, time.Until(d))
			}
			if strings.HasPrefix(target, "gated") {
				n := inFlight.Add(1)
				for {
					m := most.Load()
					if n <= m || most.CompareAndSwap(m, n) {
						break
					}
				}
				entered <- struct{}{}
				<-gate
				inFlight.Add(-1)
			}
			return telemetry.TargetHealth{Target: target, Registry: strings.SplitN(target, "/", 2)[0], APISupported: ptr(false), Success: true}, nil
		},
		ProbeConcurrency: 2,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(exp.Handler())
	defer srv.Close()

	code, body := get(t, srv.URL+"/probe?target=ghcr.io/org/app", "X-Prometheus-Scrape-Timeout-Seconds", "10")
	fams := parse(t, body)
	if v, ok := value(fams, telemetry.MetricAPISupported, "ghcr.io"); code != http.StatusOK || !ok || v != 0 {
		t.Errorf("/probe ghcr.io: %d api_supported %v %v\n%s", code, v, ok, body)
	}
	if fams[telemetry.MetricLastRoundTime] != nil || fams["go_goroutines"] != nil || fams[telemetry.MetricCapabilitiesProbed] != nil {
		t.Errorf("/probe answers with more than the target's gauges:\n%s", body)
	}
	if d, ok := deadlines.Load("ghcr.io/org/app"); !ok || d.(time.Duration) > 10*time.Second || d.(time.Duration) < 5*time.Second {
		t.Errorf("probe deadline %v (set %v), want a little under the 10s scrape timeout", d, ok)
	}
	if code, body := get(t, srv.URL+"/probe"); code != http.StatusBadRequest || !strings.Contains(body, "target parameter is missing") {
		t.Errorf("/probe without target: %d %q", code, body)
	}
	if code, body := get(t, srv.URL+"/probe?target=https://x.example"); code != http.StatusBadRequest || !strings.Contains(body, "drop the scheme") {
		t.Errorf("/probe with a bad target: %d %q", code, body)
	}

	const n = 5
	var wg sync.WaitGroup
	codes := make([]int, n)
	for i := range n {
		wg.Go(func() { codes[i], _ = get(t, fmt.Sprintf("%s/probe?target=gated%d.example/app", srv.URL, i)) })
	}
	<-entered
	<-entered // both slots taken; the other three wait for one
	for i := range n {
		gate <- struct{}{}
		if i < n-2 {
			<-entered
		}
	}
	wg.Wait()
	if most.Load() != 2 {
		t.Errorf("at most %d probes ran at once, want the limit of 2", most.Load())
	}
	for i, c := range codes {
		if c != http.StatusOK {
			t.Errorf("gated probe %d: %d", i, c)
		}
	}
}

// TestServeShutsDownCleanly: when the context ends, Serve stops listening,
// cancels the round in progress and returns nil.
func TestServeShutsDownCleanly(t *testing.T) {
	t.Parallel()
	rounds := newBlockingRounds()
	exp, err := telemetry.NewExporter(telemetry.ExporterConfig{
		Metrics: telemetry.NewMetrics(), Round: rounds.round,
		Probe: func(context.Context, string) (telemetry.TargetHealth, error) { return telemetry.TargetHealth{}, nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	served := make(chan error, 1)
	go func() { served <- exp.Serve(ctx, ln) }()
	<-rounds.started
	if code, _ := get(t, "http://"+ln.Addr().String()+"/-/healthy"); code != http.StatusOK {
		t.Errorf("/-/healthy: %d", code)
	}
	cancel()
	if err := <-served; err != nil {
		t.Errorf("Serve returned %v, want nil on shutdown", err)
	}
	if _, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		t.Errorf("still listening after shutdown")
	}
	if exp.Ready() {
		t.Errorf("a round canceled by shutdown was published")
	}
}

func TestMergeByRegistry(t *testing.T) {
	t.Parallel()
	got := telemetry.MergeByRegistry([]telemetry.TargetHealth{
		{Target: "Reg.example/a", Registry: "Reg.example", APISupported: nil, Success: true, Duration: time.Second, RateLimitRemaining: ptr(50.0)},
		{Target: "reg.example/b", Registry: "reg.example", APISupported: ptr(true), Success: false, Duration: 2 * time.Second, RateLimitRemaining: ptr(7.0), Cached: true},
		{Target: "other.example", Registry: "other.example", APISupported: ptr(false), Success: true, Cached: true},
	})
	if len(got) != 2 || got[0].Registry != "other.example" || got[1].Registry != "reg.example" {
		t.Fatalf("merged %+v", got)
	}
	r := got[1]
	if r.APISupported == nil || !*r.APISupported || r.Success || r.Duration != 2*time.Second || *r.RateLimitRemaining != 7 || r.Cached {
		t.Errorf("reg.example merged to %+v", r)
	}
	if !got[0].Cached || got[0].APISupported == nil || *got[0].APISupported {
		t.Errorf("other.example merged to %+v", got[0])
	}
}

func TestNewExporterNeedsItsParts(t *testing.T) {
	t.Parallel()
	if _, err := telemetry.NewExporter(telemetry.ExporterConfig{}); err == nil || !strings.Contains(err.Error(), "required") {
		t.Errorf("NewExporter without parts: %v", err)
	}
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}
