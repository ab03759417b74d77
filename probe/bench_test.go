package probe_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/refdoctor/refdoctor/config"
	"github.com/refdoctor/refdoctor/probe"
	"github.com/refdoctor/refdoctor/registry"
)

// BenchmarkConcurrentProbes probes six repositories of one registry with
// a concurrency of six and reports what the registry saw: the most
// requests it served at once (six when the probes overlap as they
// should) and the requests one probe costs. The time per run is the
// benchmark's own ns/op.
func BenchmarkConcurrentProbes(b *testing.B) {
	const n = 6
	var maxInFlight, perProbe float64
	for b.Loop() {
		b.StopTimer()
		f, host := startInFlight(b, n)
		cfg := config.Defaults()
		cfg.Registries = []config.Registry{{Host: host, PlainHTTP: true}}
		var targets []probe.Target
		for i := range n {
			targets = append(targets, probe.Target{Host: host, Repository: fmt.Sprintf("app%d", i)})
		}
		b.StartTimer()
		rep, err := probe.Run(context.Background(), targets, probe.WithConfig(cfg), probe.WithConcurrency(n),
			probe.WithClientOpts(registry.WithoutDockerCreds()))
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range rep.Registries {
			if !r.Reachable {
				b.Fatalf("%s: unreachable", r.Target)
			}
		}
		maxInFlight = float64(f.max.Load())
		perProbe = float64(f.total.Load()) / n
	}
	b.ReportMetric(maxInFlight, "max-in-flight")
	b.ReportMetric(perProbe, "requests/probe")
}
