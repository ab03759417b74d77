package probe_test

import (
	"context"
	"testing"
	"time"

	"github.com/refdoctor/refdoctor/lab"
	"github.com/refdoctor/refdoctor/lab/labtest"
	"github.com/refdoctor/refdoctor/probe"
)

// BenchmarkConcurrentProbes probes six registries that each take about a
// second to answer a probe, one at a time and all at once, and reports the
// wall time of each and their ratio (the ideal is 1/6).
func BenchmarkConcurrentProbes(b *testing.B) {
	var specs []lab.Spec
	for _, n := range []string{"s1", "s2", "s3", "s4", "s5", "s6"} {
		// A probe sends four requests (ping, tags, referrers, fallback).
		specs = append(specs, lab.Spec{Name: n, Profile: lab.ProfileSlow, Delay: 250 * time.Millisecond})
	}
	l := labtest.StartT(b, specs...)
	var targets []probe.Target
	for _, r := range l.Registries {
		targets = append(targets, probe.Target{Host: r.Host, Repository: l.Seed.Repository})
	}
	run := func(concurrency int) time.Duration {
		start := time.Now()
		rep, err := probe.Run(context.Background(), targets, append(labOpts(l), probe.WithConcurrency(concurrency))...)
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range rep.Registries {
			if r.ReferrersAPI != probe.Supported {
				b.Fatalf("%s: %s", r.Registry, r.ReferrersReason)
			}
		}
		return time.Since(start)
	}
	var serial, parallel time.Duration
	for b.Loop() {
		serial += run(1)
		parallel += run(6)
	}
	n := float64(b.N)
	b.ReportMetric(serial.Seconds()/n, "s/serial")
	b.ReportMetric(parallel.Seconds()/n, "s/concurrent")
	b.ReportMetric(parallel.Seconds()/serial.Seconds(), "concurrent/serial")
}
