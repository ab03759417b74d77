//go:build linux

package ui

import (
	"strings"
	"testing"

	"github.com/refdoctor/refdoctor/internal/prometheustest"
	"github.com/refdoctor/refdoctor/telemetry"
)

// storyPrometheus is a real Prometheus holding prometheustest's
// ReferrerStory, whose rates are the same whenever the test runs.
func storyPrometheus(t *testing.T) *telemetry.Prometheus {
	t.Helper()
	prom := prometheustest.StartStoryT(t)
	p, err := telemetry.NewPrometheus(telemetry.PrometheusConfig{URL: prom.URL})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestWalkthroughTelemetryStepAsksPrometheus: in the walkthrough, the
// telemetry step run against a real Prometheus shows each registry's
// failure rate with its sparkline; without Prometheus it says it shows
// only this run's counters.
func TestWalkthroughTelemetryStepAsksPrometheus(t *testing.T) {
	l := sharedLab(t)
	prom := storyPrometheus(t)
	for _, tc := range []struct {
		name  string
		prom  *telemetry.Prometheus
		wants []string
	}{
		{"with Prometheus", prom, []string{"docker.io", "0.1", "█████", "FAIL/S", "DiscoveryFailuresCounted"}},
		{"without", nil, []string{"Only the counters of this run", "NoTelemetry"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, l, 120, 40, func(dir string, o *Options) { o.Prometheus = tc.prom })
			h.tm.Send(gotoStepMsg{step: "check-metrics"})
			h.waitFor("the telemetry step", contains("Check the telemetry metrics"))
			h.keys("r")
			v := h.waitFor("its result", func(v string) bool {
				return idle(v) && !strings.Contains(v, "not run yet") && strings.Contains(v, "CHECK")
			})
			for _, w := range tc.wants {
				if !strings.Contains(v, w) {
					t.Errorf("the step's view lacks %q:\n%s", w, v)
				}
			}
		})
	}
}
