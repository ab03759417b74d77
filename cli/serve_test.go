//go:build linux

package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v3"

	"github.com/refdoctor/refdoctor/cli"
	"github.com/refdoctor/refdoctor/internal/prometheustest"
	"github.com/refdoctor/refdoctor/lab"
	"github.com/refdoctor/refdoctor/lab/labtest"
	"github.com/refdoctor/refdoctor/telemetry"
)

// watchedBuffer collects what serve writes to stderr while it runs and
// tells when its "listening on" line has arrived.
type watchedBuffer struct {
	mu        sync.Mutex
	buf       bytes.Buffer
	listening chan string
	found     bool
}

var listeningLine = regexp.MustCompile(`listening on http://(\S+) `)

func (w *watchedBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n, err := w.buf.Write(p)
	if !w.found {
		if m := listeningLine.FindStringSubmatch(w.buf.String()); m != nil {
			w.found = true
			w.listening <- m[1]
		}
	}
	return n, err
}

func (w *watchedBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// servedLab is a lab with refdoctor serve running on it in-process.
type servedLab struct {
	lab                         *lab.Lab
	cfgPath                     string
	addr                        string
	oci, ghcr, noAPI, hub       lab.Registry
	stderr                      *watchedBuffer
	stop                        func() (code int)
	targets, discoverReferences []string
}

// startServedLab starts a lab of four registries (OCI 1.1; GHCR-like 404;
// olareg with the API switched off, which the matrix expects to serve it;
// Docker Hub-like with its pull budget spent) and refdoctor serve on them,
// probing every two seconds and discovering the seeded image on each.
func startServedLab(t *testing.T) *servedLab {
	t.Helper()
	l := labtest.StartT(t,
		lab.Spec{Name: "oci11", Profile: lab.ProfileOCI11},
		lab.Spec{Name: "ghcr-like", Profile: lab.ProfileFallback404},
		lab.Spec{Name: "olareg-405", Profile: lab.ProfileNoAPI405},
		lab.Spec{Name: "hub", Profile: lab.ProfileRateLimit, RateBudget: 0},
	)
	s := &servedLab{lab: l, stderr: &watchedBuffer{listening: make(chan string, 1)}}
	s.oci, _ = l.Get("oci11")
	s.ghcr, _ = l.Get("ghcr-like")
	s.noAPI, _ = l.Get("olareg-405")
	s.hub, _ = l.Get("hub")
	dir := t.TempDir()
	cfg := fmt.Sprintf("[cache]\ndir = %q\n", filepath.Join(dir, "cache"))
	for _, r := range l.Registries {
		cfg += fmt.Sprintf("[[registry]]\nhost = %q\nplain_http = true\nexpected = %q\n", r.Host, r.Expected)
		s.targets = append(s.targets, r.Host+"/"+l.Seed.Repository)
		s.discoverReferences = append(s.discoverReferences, l.Seed.Ref(r.Host))
	}
	s.cfgPath = writeFile(t, dir, "config.toml", cfg)

	// The throttled registry's discovery would wait out its Retry-After of
	// hours; serve bounds every probe and discovery by the interval, so
	// each round ends within about two seconds with that discovery failed.
	args := []string{"--config", s.cfgPath, "--log-level", "info",
		"serve", "--listen", "127.0.0.1:0", "--interval", "2s"}
	for _, ref := range s.discoverReferences {
		args = append(args, "--discover", ref)
	}
	args = append(args, s.targets...)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		var out bytes.Buffer
		done <- cli.Run(ctx, args, strings.NewReader(""), &out, s.stderr)
	}()
	var once sync.Once
	code := -1
	s.stop = func() int {
		once.Do(func() {
			cancel()
			select {
			case code = <-done:
			case <-time.After(time.Minute):
				t.Errorf("serve did not stop within a minute of its context ending:\n%s", s.stderr.String())
			}
		})
		return code
	}
	t.Cleanup(func() { s.stop() })
	select {
	case s.addr = <-s.stderr.listening:
	case c := <-done:
		t.Fatalf("serve exited %d before listening:\n%s", c, s.stderr.String())
	case <-time.After(time.Minute):
		t.Fatalf("serve did not say where it listens:\n%s", s.stderr.String())
	}
	return s
}

// scrape reads one exporter page and parses it as Prometheus does.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	families, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: not the text exposition format: %v", url, err)
	}
	return families
}

// gauge is the value of name{registry}, and whether the series exists.
func gauge(families map[string]*dto.MetricFamily, name, registry string) (float64, bool) {
	mf := families[name]
	if mf == nil {
		return 0, false
	}
	for _, m := range mf.GetMetric() {
		for _, lp := range m.GetLabel() {
			if lp.GetName() == "registry" && lp.GetValue() == registry {
				return m.GetGauge().GetValue(), true
			}
		}
	}
	return 0, false
}

// prometheusConfig is deploy/prometheus/prometheus.yml pointed at this
// serve and lab, scraping every second: the example itself is what runs.
func prometheusConfig(t *testing.T, s *servedLab, probeTargets []string) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", "deploy", "prometheus"))
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, "prometheus.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := yaml.Unmarshal(data, &cfg); err != nil {
		t.Fatal(err)
	}
	cfg["global"] = map[string]any{"scrape_interval": "1s", "evaluation_interval": "1s"}
	cfg["rule_files"] = []any{filepath.Join(dir, "alerts.yml")}
	jobs := cfg["scrape_configs"].([]any)
	if len(jobs) != 2 {
		t.Fatalf("the example has %d scrape configs, want the two modes", len(jobs))
	}
	for _, j := range jobs {
		job := j.(map[string]any)
		switch job["job_name"] {
		case "refdoctor":
			job["static_configs"] = []any{map[string]any{"targets": []any{s.addr}}}
		case "refdoctor-probe":
			job["scrape_interval"], job["scrape_timeout"] = "2s", "2s"
			targets := make([]any, len(probeTargets))
			for i, p := range probeTargets {
				targets[i] = p
			}
			job["static_configs"] = []any{map[string]any{"targets": targets}}
			relabels := job["relabel_configs"].([]any)
			last := relabels[len(relabels)-1].(map[string]any)
			if last["target_label"] != "__address__" {
				t.Fatalf("the example's last relabelling should point __address__ at serve: %v", last)
			}
			last["replacement"] = s.addr
		default:
			t.Fatalf("unexpected job %v in the example", job["job_name"])
		}
	}
	out, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// vectorByRegistry maps registry label to value.
func vectorByRegistry(v model.Vector, label string) map[string]float64 {
	out := map[string]float64{}
	for _, s := range v {
		out[string(s.Metric[model.LabelName(label)])] = float64(s.Value)
	}
	return out
}

// TestServeScrapedByPrometheus is the whole loop on real parts: refdoctor
// serve probes and discovers on the lab, a real Prometheus scrapes it in
// both modes of deploy/prometheus/prometheus.yml with the example's alert
// rules loaded, and refdoctor metrics query reads the runbook's queries
// back from that Prometheus.
func TestServeScrapedByPrometheus(t *testing.T) {
	prometheustest.RequireBinary(t)
	s := startServedLab(t)
	base := "http://" + s.addr

	// /metrics answers before the first round is over, without gauges.
	scrape(t, base+"/metrics")
	resp, err := http.Get(base + "/-/healthy")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/-/healthy: %v %v", err, resp)
	}
	resp.Body.Close()

	// /probe: a fresh probe of one target, its registry's gauges only.
	for _, tc := range []struct {
		reg        lab.Registry
		api        float64
		apiPresent bool
		success    float64
	}{
		{s.oci, 1, true, 1},
		{s.ghcr, 0, true, 1},
		{s.noAPI, 0, true, 1},
		// Throttled: the verdict is unknown, so api_supported is absent,
		// never a false 0.
		{s.hub, 0, false, 0},
	} {
		fams := scrape(t, base+"/probe?target="+tc.reg.Host+"/"+s.lab.Seed.Repository)
		api, ok := gauge(fams, telemetry.MetricAPISupported, tc.reg.Host)
		if ok != tc.apiPresent || (ok && api != tc.api) {
			t.Errorf("/probe %s: api_supported = %v (present %v), want %v (present %v)", tc.reg.Name, api, ok, tc.api, tc.apiPresent)
		}
		if v, ok := gauge(fams, telemetry.MetricProbeSuccess, tc.reg.Host); !ok || v != tc.success {
			t.Errorf("/probe %s: probe_success = %v (present %v), want %v", tc.reg.Name, v, ok, tc.success)
		}
		if _, ok := gauge(fams, telemetry.MetricProbeDuration, tc.reg.Host); !ok {
			t.Errorf("/probe %s: no probe duration", tc.reg.Name)
		}
		for name := range fams {
			if strings.HasPrefix(name, "export_") || strings.HasPrefix(name, "go_") || strings.HasPrefix(name, "process_") {
				t.Errorf("/probe %s answers with %s: it must carry the target's gauges only", tc.reg.Name, name)
			}
		}
		for _, other := range s.lab.Registries {
			if other.Host == tc.reg.Host {
				continue
			}
			if _, ok := gauge(fams, telemetry.MetricProbeSuccess, other.Host); ok {
				t.Errorf("/probe %s also answers for %s", tc.reg.Name, other.Name)
			}
		}
		if tc.reg.Name == "hub" {
			if v, ok := gauge(fams, telemetry.MetricRateLimitLeft, tc.reg.Host); !ok || v != 0 {
				t.Errorf("/probe hub: ratelimit_remaining = %v (present %v), want 0", v, ok)
			}
		}
	}
	resp, err = http.Get(base + "/probe?target=https://" + s.oci.Host)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("/probe with a scheme in the target: %s, want 400", resp.Status)
	}

	probeTargets := []string{s.oci.Host + "/" + s.lab.Seed.Repository, s.ghcr.Host + "/" + s.lab.Seed.Repository, s.hub.Host + "/" + s.lab.Seed.Repository}
	prom := prometheustest.StartT(t, prometheusConfig(t, s, probeTargets))
	failures := telemetry.RunbookQueries("1m")[telemetry.QueryFailures]
	capabilities := telemetry.RunbookQueries("1m")[telemetry.QueryCapabilities]
	prom.WaitFor(t, 3*time.Minute, func(ctx context.Context) (bool, string) {
		v, err := prom.Vector(ctx, t, failures)
		if err != nil {
			return false, err.Error()
		}
		if vectorByRegistry(v, "registry")[s.hub.Host] <= 0 {
			return false, "a failure rate above zero for the throttled registry: " + v.String()
		}
		// A few scrapes: ten samples of the exporter in the window.
		v, err = prom.Vector(ctx, t, `count_over_time(up{job="refdoctor"}[1m])`)
		if err != nil {
			return false, err.Error()
		}
		if len(v) != 1 || v[0].Value < 10 {
			return false, "ten scrapes of refdoctor serve: " + v.String()
		}
		v, err = prom.Vector(ctx, t, capabilities)
		if err != nil {
			return false, err.Error()
		}
		seen := map[string]string{}
		for _, smp := range v {
			seen[string(smp.Metric["registry"])] += string(smp.Metric["api_supported"])
		}
		if !strings.Contains(seen[s.oci.Host], "true") || !strings.Contains(seen[s.ghcr.Host], "false") {
			return false, "capability series for the OCI 1.1 and the 404 registry: " + v.String()
		}
		v, err = prom.Vector(ctx, t, `refdoctor_registry_referrers_api_supported{job="refdoctor-probe"}`)
		if err != nil {
			return false, err.Error()
		}
		if len(vectorByRegistry(v, "instance")) < 2 {
			return false, "gauges scraped through /probe: " + v.String()
		}
		v, err = prom.Vector(ctx, t, `ALERTS{alertname="ReferrerDiscoveryFailing"}`)
		if err != nil {
			return false, err.Error()
		}
		if _, ok := vectorByRegistry(v, "registry")[s.hub.Host]; !ok {
			return false, "the alert rules evaluated on the failures: " + v.String()
		}
		return true, ""
	})

	// Prometheus stored /probe's gauges under the relabelled instance.
	ctx := t.Context()
	v, err := prom.Vector(ctx, t, `refdoctor_registry_referrers_api_supported{job="refdoctor-probe"}`)
	if err != nil {
		t.Fatal(err)
	}
	byInstance := vectorByRegistry(v, "instance")
	if byInstance[probeTargets[0]] != 1 || byInstance[probeTargets[1]] != 0 {
		t.Errorf("api_supported through /probe by instance = %v, want %s=1 %s=0", byInstance, probeTargets[0], probeTargets[1])
	}
	if _, ok := byInstance[probeTargets[2]]; ok {
		t.Errorf("api_supported stored for the throttled target %s: it must be absent while unknown", probeTargets[2])
	}
	v, err = prom.Vector(ctx, t, `refdoctor_registry_probe_success{job="refdoctor-probe"}`)
	if err != nil {
		t.Fatal(err)
	}
	if got := vectorByRegistry(v, "instance"); got[probeTargets[2]] != 0 || got[probeTargets[0]] != 1 {
		t.Errorf("probe_success through /probe = %v", got)
	}
	// The example's alert rules run on this data: the throttled registry's
	// failures and failing probe are pending (they fire after 15m).
	v, err = prom.Vector(ctx, t, `ALERTS{alertstate="pending"}`)
	if err != nil {
		t.Fatal(err)
	}
	pending := map[string]bool{}
	for _, smp := range v {
		pending[string(smp.Metric["alertname"])+" "+string(smp.Metric["registry"])] = true
	}
	for _, want := range []string{"ReferrerDiscoveryFailing " + s.hub.Host, "RegistryProbeFailing " + s.hub.Host} {
		if !pending[want] {
			t.Errorf("alert %s is not pending; pending: %v", want, pending)
		}
	}
	if pending["ReferrerDiscoveryFailing "+s.oci.Host] {
		t.Errorf("ReferrerDiscoveryFailing pending for the healthy registry")
	}

	// The exporter's own /metrics: the throttled registry has no
	// api_supported series at all, the others have 1 and 0.
	fams := scrape(t, base+"/metrics")
	if _, ok := gauge(fams, telemetry.MetricAPISupported, s.hub.Host); ok {
		t.Errorf("/metrics has api_supported for the throttled registry; it must be absent while unknown")
	}
	if v, ok := gauge(fams, telemetry.MetricAPISupported, s.oci.Host); !ok || v != 1 {
		t.Errorf("/metrics api_supported for oci11 = %v, %v", v, ok)
	}
	if v, ok := gauge(fams, telemetry.MetricAPISupported, s.ghcr.Host); !ok || v != 0 {
		t.Errorf("/metrics api_supported for ghcr-like = %v, %v", v, ok)
	}
	for _, name := range []string{"go_goroutines", "process_start_time_seconds", telemetry.MetricCapabilitiesProbed, telemetry.MetricDiscoveryMethod, telemetry.MetricDiscoveryFailures} {
		if fams[name] == nil {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	resp, err = http.Get(base + "/-/ready")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/-/ready after rounds: %v %v", err, resp)
	}
	resp.Body.Close()

	// metrics query: the runbook's queries through the real command.
	code, out, errOut := run(t, "--config", s.cfgPath, "-o", "json", "metrics", "query", "--prometheus", prom.URL, "--window", "1m")
	if code != 1 {
		t.Fatalf("metrics query: exit %d, want 1 (findings for the failing registries)\nstdout %s\nstderr %s", code, out, errOut)
	}
	var rep struct {
		Prometheus string `json:"prometheus"`
		Window     string `json:"window"`
		Queries    []struct {
			Name   string `json:"name"`
			PromQL string `json:"promql"`
			Series []struct {
				Labels map[string]string `json:"labels"`
				Value  float64           `json:"value"`
			} `json:"series"`
		} `json:"queries"`
		Findings []struct {
			Severity, Code, Summary string
		} `json:"findings"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("metrics query -o json is not one JSON document: %v\n%s", err, out)
	}
	if rep.Prometheus != prom.URL || rep.Window != "1m" || len(rep.Queries) != 3 {
		t.Fatalf("report head: %+v", rep)
	}
	want := telemetry.RunbookQueries("1m")
	apiSupported := map[string]map[string]bool{}
	failureRate := map[string]float64{}
	methods := map[string]map[string]bool{}
	for _, q := range rep.Queries {
		if q.PromQL != want[q.Name] {
			t.Errorf("query %s = %q, want the runbook's %q", q.Name, q.PromQL, want[q.Name])
		}
		for _, sr := range q.Series {
			reg := sr.Labels["registry"]
			switch q.Name {
			case telemetry.QueryCapabilities:
				if apiSupported[reg] == nil {
					apiSupported[reg] = map[string]bool{}
				}
				apiSupported[reg][sr.Labels["api_supported"]] = true
			case telemetry.QueryMethods:
				if methods[reg] == nil {
					methods[reg] = map[string]bool{}
				}
				methods[reg][sr.Labels["method"]] = true
			case telemetry.QueryFailures:
				failureRate[reg] = sr.Value
			}
		}
	}
	if !apiSupported[s.oci.Host]["true"] || apiSupported[s.oci.Host]["false"] {
		t.Errorf("oci11 api_supported labels %v, want true", apiSupported[s.oci.Host])
	}
	if !apiSupported[s.ghcr.Host]["false"] || apiSupported[s.ghcr.Host]["true"] {
		t.Errorf("ghcr-like api_supported labels %v, want false", apiSupported[s.ghcr.Host])
	}
	if !apiSupported[s.hub.Host]["unknown"] {
		t.Errorf("hub api_supported labels %v, want unknown", apiSupported[s.hub.Host])
	}
	if failureRate[s.hub.Host] <= 0 {
		t.Errorf("failure rate for the throttled registry = %v, want above zero", failureRate[s.hub.Host])
	}
	if failureRate[s.oci.Host] > 0 || failureRate[s.ghcr.Host] > 0 {
		t.Errorf("failure rates %v: the healthy registries must not fail", failureRate)
	}
	if !methods[s.oci.Host]["api"] || !methods[s.ghcr.Host]["tags"] || !methods[s.noAPI.Host]["tags"] {
		t.Errorf("discovery methods %v: want api for oci11, tags for ghcr-like and olareg-405", methods)
	}
	codes := map[string]bool{}
	for _, f := range rep.Findings {
		codes[f.Code+" "+registryIn(f.Summary, s)] = true
	}
	for _, w := range []string{"DiscoveryFailuresCounted hub", "DiscoveryByTagsExpectedAPI olareg-405", "ProbesUndecided hub"} {
		if !codes[w] {
			t.Errorf("finding %s missing; findings: %v", w, codes)
		}
	}
	for _, unwanted := range []string{"DiscoveryFailuresCounted oci11", "DiscoveryByTagsExpectedAPI ghcr-like", "DiscoveryFailuresCounted ghcr-like"} {
		if codes[unwanted] {
			t.Errorf("unexpected finding %s", unwanted)
		}
	}

	// The table, as an operator sees it (and as the report quotes it).
	code, table, _ := run(t, "--config", s.cfgPath, "metrics", "query", "--prometheus", prom.URL, "--window", "1m")
	t.Logf("refdoctor metrics query --prometheus %s --window 1m (exit %d), with oci11 %s, ghcr-like %s, olareg-405 %s, hub %s:\n%s",
		prom.URL, code, s.oci.Host, s.ghcr.Host, s.noAPI.Host, s.hub.Host, table)
	for _, w := range []string{"REGISTRY", s.hub.Host, "DiscoveryFailuresCounted", "QUERIES", want[telemetry.QueryFailures]} {
		if !strings.Contains(table, w) {
			t.Errorf("table lacks %q:\n%s", w, table)
		}
	}
	for _, line := range strings.Split(strings.TrimRight(table, "\n"), "\n") {
		if n := len([]rune(line)); n > 80 && !strings.HasPrefix(line, "  sum by") {
			t.Errorf("table line wider than 80 columns (%d): %q", n, line)
		}
	}

	// --registry narrows every query to that registry.
	code, out, errOut = run(t, "--config", s.cfgPath, "-o", "json", "metrics", "query", "--prometheus", prom.URL, "--window", "1m", "--registry", s.oci.Host)
	if code != 0 {
		t.Fatalf("metrics query --registry oci11: exit %d, want 0 (a healthy registry)\n%s\n%s", code, out, errOut)
	}
	if strings.Contains(out, s.hub.Host) || !strings.Contains(out, `registry=~\"127\\\\.0\\\\.0\\\\.1:`) {
		t.Errorf("--registry did not narrow the queries to oci11:\n%s", out)
	}

	// A stopped Prometheus: exit 3, and the message says so.
	prom.Stop()
	code, out, errOut = run(t, "--config", s.cfgPath, "-o", "json", "metrics", "query", "--prometheus", prom.URL, "--window", "1m")
	if code != 3 {
		t.Fatalf("metrics query against a stopped Prometheus: exit %d, want 3\n%s\n%s", code, out, errOut)
	}
	if !strings.Contains(errOut, "Prometheus at "+prom.URL+" cannot be reached") || !strings.Contains(errOut, "connection refused") {
		t.Errorf("stderr does not say Prometheus cannot be reached: %q", errOut)
	}
	var incomplete map[string]any
	if err := json.Unmarshal([]byte(out), &incomplete); err != nil || incomplete["incomplete"] != true {
		t.Errorf("JSON for the unreachable Prometheus: %v %s", err, out)
	}
	if strings.Contains(out, `"series": []`) {
		t.Errorf("an unreachable Prometheus must not read as empty series:\n%s", out)
	}

	// Shutdown: serve ends cleanly with exit 0 when its context ends (as on
	// SIGTERM or SIGINT).
	if code := s.stop(); code != 0 {
		t.Errorf("serve exited %d on shutdown:\n%s", code, s.stderr.String())
	}
	if !strings.Contains(s.stderr.String(), "refdoctor serve: stopped") {
		t.Errorf("serve did not report its stop:\n%s", s.stderr.String())
	}
}

// registryIn names the lab registry a finding's summary is about.
func registryIn(summary string, s *servedLab) string {
	for _, r := range s.lab.Registries {
		if strings.Contains(summary, r.Host) {
			return r.Name
		}
	}
	return "?"
}
