//go:build linux

package ui

import (
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
