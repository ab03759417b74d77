//go:build linux

package runbook_test

import (
	"context"
	"strings"
	"testing"

	"github.com/refdoctor/refdoctor/finding"
	"github.com/refdoctor/refdoctor/internal/prometheustest"
	"github.com/refdoctor/refdoctor/runbook"
	"github.com/refdoctor/refdoctor/telemetry"
)

// TestMetricsStepAsksPrometheus: pointed at a real Prometheus, the
// telemetry step runs the runbook's queries there and reports each
// registry's rates with a history for the sparkline; a stopped Prometheus
// makes the step incomplete, never "no failures".
func TestMetricsStepAsksPrometheus(t *testing.T) {
	t.Parallel()
	prom := prometheustest.StartStoryT(t)
	p, err := telemetry.NewPrometheus(telemetry.PrometheusConfig{URL: prom.URL})
	if err != nil {
		t.Fatal(err)
	}
	e := runbook.NewEngine(mustLoad(t), runbook.Targets{}, runbook.WithPrometheus(p, 0))
	var progress []string
	res := e.Run(context.Background(), "check-metrics", func(ev runbook.Event) {
		if ev.Kind == runbook.EventProgress {
			progress = append(progress, ev.Message)
		}
	})
	if res.Status != runbook.StatusWarned || res.Incomplete || res.Prometheus == nil {
		t.Fatalf("result %s (incomplete %v): %q %+v", res.Status, res.Incomplete, res.Summary, res.Findings)
	}
	if len(progress) != 1 || !strings.Contains(progress[0], prom.URL) {
		t.Errorf("progress %q does not say which Prometheus is asked", progress)
	}
	rep := res.Prometheus
	if rep.Window != "5m" {
		t.Errorf("window %s, want the runbook's 5m", rep.Window)
	}
	byReg := map[string]telemetry.RegistryRates{}
	for _, r := range rep.Registries {
		byReg[r.Registry] = r
	}
	hub := byReg["docker.io"]
	if hub.FailureRate < 0.099 || hub.FailureRate > 0.101 || hub.Failures < 29.9 || hub.Failures > 30.1 {
		t.Errorf("docker.io failures %v at %v/s, want 30 at 0.1/s", hub.Failures, hub.FailureRate)
	}
	if got := rep.Sparkline(hub.FailureHistory); len([]rune(got)) != 13 || strings.Contains(got, " ") {
		t.Errorf("docker.io failure sparkline %q, want 13 filled steps", got)
	}
	if r := byReg["registry.example.com"]; r.FailureRate != 0 || r.Discoveries["api"] < 29.9 {
		t.Errorf("registry.example.com %+v", r)
	}
	for _, want := range []finding.Code{finding.DiscoveryFailuresCounted, finding.DiscoveryByTagsExpectedAPI, finding.ProbesUndecided} {
		found := false
		for _, f := range res.Findings {
			found = found || (f.Code == want && strings.Contains(f.Summary, "docker.io"))
		}
		if !found {
			t.Errorf("no %s finding for docker.io: %+v", want, res.Findings)
		}
	}
	for _, f := range res.Findings {
		if strings.Contains(f.Summary, "ghcr.io") {
			t.Errorf("ghcr.io is discovered through tags as the matrix expects, yet: %+v", f)
		}
	}
	if !strings.Contains(res.Summary, "Prometheus at "+prom.URL) || !strings.Contains(res.Summary, "failing against 1") {
		t.Errorf("summary %q", res.Summary)
	}

	prom.Stop()
	res = e.Run(context.Background(), "check-metrics", nil)
	if res.Status != runbook.StatusFailed || !res.Incomplete || !hasCode(res.Findings, finding.PrometheusUnreachable) {
		t.Fatalf("stopped Prometheus: %s (incomplete %v) %q %+v", res.Status, res.Incomplete, res.Summary, res.Findings)
	}
	if !strings.Contains(res.Summary, "cannot be reached") {
		t.Errorf("summary %q does not say Prometheus cannot be reached", res.Summary)
	}
}

// TestRunbookQueriesMatchMetricsQuery: the PromQL the telemetry step prints is
// exactly what metrics query and the engine run with the runbook's window.
func TestRunbookQueriesMatchMetricsQuery(t *testing.T) {
	t.Parallel()
	step, ok := mustLoad(t).Step("check-metrics")
	if !ok {
		t.Fatal("no check-metrics step")
	}
	cmds, err := step.Render(runbook.Targets{}.Complete())
	if err != nil {
		t.Fatal(err)
	}
	var rendered []string
	for _, c := range cmds {
		rendered = append(rendered, c.Text)
	}
	for name, q := range telemetry.RunbookQueries("5m") {
		found := false
		for _, r := range rendered {
			found = found || r == q
		}
		if !found {
			t.Errorf("the step does not print the %s query %q; it prints %q", name, q, rendered)
		}
	}
}
