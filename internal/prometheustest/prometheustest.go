//go:build linux

// Package prometheustest runs Debian's prometheus server as a child
// process for tests: on 127.0.0.1, on a free port, with a temporary config
// and TSDB, stopped by its PID when the test ends. It is imported only by
// _test.go files; nothing in refdoctor's binary uses it.
package prometheustest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
	"golang.org/x/crypto/bcrypt"
)

// DefaultPath is where Debian's prometheus package installs the server.
const DefaultPath = "/usr/bin/prometheus"

// ErrMissing means the prometheus binary is not installed.
var ErrMissing = errors.New(`prometheus is not installed: install it with "apt-get install prometheus" (.ci/run does)`)

const (
	startTimeout = 30 * time.Second
	stopGrace    = 10 * time.Second
	// portTries bounds the retries when another process takes the free
	// port between picking it and prometheus binding it.
	portTries = 5
)

// Server is a running prometheus.
type Server struct {
	// URL is http://127.0.0.1:PORT.
	URL string
	// Dir holds prometheus.yml and the TSDB (Dir/data).
	Dir string
	PID int

	user, password string

	cmd    *exec.Cmd
	out    *syncBuffer
	exited chan struct{}
	once   sync.Once
}

// Binary returns the prometheus binary: the one in PATH, else Debian's.
func Binary() (string, error) {
	if p, err := exec.LookPath("prometheus"); err == nil {
		return p, nil
	}
	if fi, err := os.Stat(DefaultPath); err == nil && fi.Mode().IsRegular() {
		return DefaultPath, nil
	}
	return "", ErrMissing
}

// PromtoolBinary returns promtool, which the prometheus package brings.
func PromtoolBinary() (string, error) {
	if p, err := exec.LookPath("promtool"); err == nil {
		return p, nil
	}
	if fi, err := os.Stat("/usr/bin/promtool"); err == nil && fi.Mode().IsRegular() {
		return "/usr/bin/promtool", nil
	}
	return "", ErrMissing
}

// RequireBinary returns the prometheus binary, skipping the test when it is
// missing, except under CI, where a missing binary means .ci/run is broken.
func RequireBinary(tb testing.TB) string {
	tb.Helper()
	bin, err := Binary()
	if err != nil {
		if os.Getenv("CI") != "" {
			tb.Fatalf("%v", err)
		}
		tb.Skipf("skipping: %v", err)
	}
	return bin
}

// Opt adjusts how the server starts.
type Opt func(*options)

type options struct {
	user, password string
	backfill       string
}

// WithBackfill writes openMetrics (see Counters) into the server's TSDB
// with promtool before it starts, so queries see exactly those samples.
func WithBackfill(openMetrics string) Opt { return func(o *options) { o.backfill = openMetrics } }

// WithBasicAuth makes the server require HTTP basic auth for every
// request (--web.config.file with a bcrypt hash of password).
func WithBasicAuth(user, password string) Opt {
	return func(o *options) { o.user, o.password = user, password }
}

// StartT starts prometheus with config (the whole prometheus.yml) and
// stops it when the test ends.
func StartT(tb testing.TB, config string, opts ...Opt) *Server {
	tb.Helper()
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	bin := RequireBinary(tb)
	dir := tb.TempDir()
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(config), 0o600); err != nil {
		tb.Fatal(err)
	}
	if o.backfill != "" {
		backfill(tb, dir, o.backfill)
	}
	var extra []string
	if o.user != "" {
		hash, err := bcrypt.GenerateFromPassword([]byte(o.password), bcrypt.MinCost)
		if err != nil {
			tb.Fatal(err)
		}
		web := fmt.Sprintf("basic_auth_users:\n  %q: %q\n", o.user, hash)
		webPath := filepath.Join(dir, "web.yml")
		if err := os.WriteFile(webPath, []byte(web), 0o600); err != nil {
			tb.Fatal(err)
		}
		extra = append(extra, "--web.config.file="+webPath)
	}
	var lastErr error
	for try := 0; try < portTries; try++ {
		port, err := freePort()
		if err != nil {
			tb.Fatal(err)
		}
		s, err := start(bin, dir, cfgPath, port, extra, o)
		if err == nil {
			tb.Cleanup(s.Stop)
			return s
		}
		lastErr = err
		if !errors.Is(err, errPortTaken) {
			break
		}
	}
	tb.Fatalf("start prometheus: %v", lastErr)
	return nil
}

var errPortTaken = errors.New("port taken")

// freePort asks the kernel for a free port on 127.0.0.1. Prometheus
// cannot listen on :0 and say where it listens, so the port is picked
// here and may be taken before prometheus binds it: StartT retries then.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func start(bin, dir, cfgPath string, port int, extra []string, o options) (*Server, error) {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	s := &Server{URL: "http://" + addr, Dir: dir, out: &syncBuffer{}, exited: make(chan struct{}), user: o.user, password: o.password}
	args := append([]string{
		"--config.file=" + cfgPath,
		"--storage.tsdb.path=" + filepath.Join(dir, "data"),
		"--web.listen-address=" + addr,
		"--log.level=info",
	}, extra...)
	s.cmd = exec.Command(bin, args...)
	s.cmd.Dir = dir
	s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
	// If the test binary dies, the server must not outlive it.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	s.PID = s.cmd.Process.Pid
	go func() {
		_ = s.cmd.Wait()
		close(s.exited)
	}()
	deadline := time.Now().Add(startTimeout)
	client := &http.Client{Timeout: 2 * time.Second}
	for time.Now().Before(deadline) {
		select {
		case <-s.exited:
			out := s.out.String()
			if strings.Contains(out, "address already in use") {
				return nil, fmt.Errorf("%w: %s", errPortTaken, addr)
			}
			return nil, fmt.Errorf("prometheus exited before it was ready:\n%s", out)
		default:
		}
		req, err := http.NewRequest(http.MethodGet, s.URL+"/-/ready", nil)
		if err != nil {
			return nil, err
		}
		if s.user != "" {
			req.SetBasicAuth(s.user, s.password)
		}
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s, nil
			}
		}
		select {
		case <-s.exited:
		case <-time.After(100 * time.Millisecond):
		}
	}
	s.Stop()
	return nil, fmt.Errorf("prometheus on %s not ready within %s:\n%s", addr, startTimeout, s.out.String())
}

// Stop ends the server by its PID: SIGTERM, then SIGKILL after a grace
// period. It is safe to call more than once.
func (s *Server) Stop() {
	s.once.Do(func() {
		select {
		case <-s.exited:
			return
		default:
		}
		_ = syscall.Kill(s.PID, syscall.SIGTERM)
		select {
		case <-s.exited:
		case <-time.After(stopGrace):
			_ = syscall.Kill(s.PID, syscall.SIGKILL)
			<-s.exited
		}
	})
}

// Output is the server's log so far, for failure messages.
func (s *Server) Output() string { return s.out.String() }

// API is a client of the server's HTTP API.
func (s *Server) API(tb testing.TB) promv1.API {
	tb.Helper()
	c, err := api.NewClient(api.Config{Address: s.URL})
	if err != nil {
		tb.Fatal(err)
	}
	return promv1.NewAPI(c)
}

// Vector runs an instant query.
func (s *Server) Vector(ctx context.Context, tb testing.TB, query string) (model.Vector, error) {
	tb.Helper()
	v, _, _, err := s.API(tb).Query(ctx, query, time.Now())
	if err != nil {
		return nil, err
	}
	vec, ok := v.(model.Vector)
	if !ok {
		return nil, fmt.Errorf("%s: got %s, want a vector", query, v.Type())
	}
	return vec, nil
}

// WaitFor polls check until it reports done or the deadline passes; check
// says what it is still waiting for, which a timeout reports.
func (s *Server) WaitFor(tb testing.TB, deadline time.Duration, check func(ctx context.Context) (done bool, waitingFor string)) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	waiting := ""
	for {
		done, w := check(ctx)
		if done {
			return
		}
		waiting = w
		select {
		case <-ctx.Done():
			tb.Fatalf("prometheus: still waiting after %s for %s\nprometheus log:\n%s", deadline, waiting, s.Output())
		case <-s.exited:
			tb.Fatalf("prometheus exited while waiting for %s:\n%s", waiting, s.Output())
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// syncBuffer keeps the server's output; the process writes while tests
// read.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	// Keep the tail only: a long test must not grow it without bound.
	if b.buf.Len() > 1<<20 {
		tail := append([]byte(nil), b.buf.Bytes()[b.buf.Len()-(256<<10):]...)
		b.buf.Reset()
		b.buf.Write(tail)
	}
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// backfill turns OpenMetrics text into TSDB blocks under dir/data.
func backfill(tb testing.TB, dir, openMetrics string) {
	tb.Helper()
	promtool, err := PromtoolBinary()
	if err != nil {
		if os.Getenv("CI") != "" {
			tb.Fatalf("%v", err)
		}
		tb.Skipf("skipping: %v", err)
	}
	in := filepath.Join(dir, "backfill.om")
	if err := os.WriteFile(in, []byte(openMetrics), 0o600); err != nil {
		tb.Fatal(err)
	}
	out, err := exec.Command(promtool, "tsdb", "create-blocks-from", "openmetrics", in, filepath.Join(dir, "data")).CombinedOutput()
	if err != nil {
		tb.Fatalf("promtool tsdb create-blocks-from openmetrics: %v\n%s", err, out)
	}
}

// Counter is one counter series to backfill: it rises by Rate per second.
type Counter struct {
	// Family is the metric name without _total.
	Family string
	Labels map[string]string
	Rate   float64
}

// Counters renders counters as OpenMetrics text with a sample every step
// from start to end. A counter that rises at a steady rate gives exact
// answers to rate() and increase() at any time inside the range, so tests
// that query it do not depend on when they run.
func Counters(counters []Counter, start, end time.Time, step time.Duration) string {
	var b strings.Builder
	byFamily := map[string][]Counter{}
	var families []string
	for _, c := range counters {
		if _, ok := byFamily[c.Family]; !ok {
			families = append(families, c.Family)
		}
		byFamily[c.Family] = append(byFamily[c.Family], c)
	}
	for _, fam := range families {
		fmt.Fprintf(&b, "# TYPE %s counter\n", fam)
		for _, c := range byFamily[fam] {
			keys := make([]string, 0, len(c.Labels))
			for k := range c.Labels {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			pairs := make([]string, len(keys))
			for i, k := range keys {
				pairs[i] = fmt.Sprintf("%s=%q", k, c.Labels[k])
			}
			series := fam + "_total{" + strings.Join(pairs, ",") + "}"
			for t := start; t.Before(end); t = t.Add(step) {
				v := c.Rate * t.Sub(start).Seconds()
				fmt.Fprintf(&b, "%s %s %d\n", series, strconv.FormatFloat(v, 'f', -1, 64), t.Unix())
			}
		}
	}
	b.WriteString("# EOF\n")
	return b.String()
}

// ReferrerStory is a day of the export_* counters with something to find:
// registry.example.com serves the API and discovers through it;
// ghcr.io has no API and is discovered through the fallback tags, as the
// matrix expects; docker.io, which the matrix expects to serve the API,
// is throttled: its probes cannot decide, its discoveries use the tags
// and fail at 0.1 per second.
func ReferrerStory() []Counter {
	reg := func(labels ...string) map[string]string {
		m := map[string]string{"job": "refdoctor", "instance": "localhost:9911"}
		for i := 0; i+1 < len(labels); i += 2 {
			m[labels[i]] = labels[i+1]
		}
		return m
	}
	return []Counter{
		{"export_registry_capabilities_probed", reg("registry", "registry.example.com", "api_supported", "true"), 0.01},
		{"export_registry_capabilities_probed", reg("registry", "ghcr.io", "api_supported", "false"), 0.01},
		{"export_registry_capabilities_probed", reg("registry", "docker.io", "api_supported", "unknown"), 0.02},
		{"export_referrer_discovery_method", reg("registry", "registry.example.com", "method", "api"), 0.1},
		{"export_referrer_discovery_method", reg("registry", "ghcr.io", "method", "tags"), 0.05},
		{"export_referrer_discovery_method", reg("registry", "docker.io", "method", "tags"), 0.1},
		{"export_referrer_discovery_failures", reg("registry", "docker.io"), 0.1},
	}
}

// StartStoryT starts a Prometheus holding ReferrerStory from an hour ago
// to an hour ahead, sampled every 10s: any query in the next hour sees the
// same rates (0.1/s) and counts (30 in 5m).
func StartStoryT(tb testing.TB) *Server {
	tb.Helper()
	start := time.Now().Truncate(10 * time.Second).Add(-time.Hour)
	return StartT(tb, "global:\n  scrape_interval: 10s\nscrape_configs: []\n",
		WithBackfill(Counters(ReferrerStory(), start, start.Add(2*time.Hour), 10*time.Second)))
}
