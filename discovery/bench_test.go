package discovery_test

import (
	"context"
	"testing"
	"time"

	"github.com/refdoctor/refdoctor/discovery"
	"github.com/refdoctor/refdoctor/lab"
	"github.com/refdoctor/refdoctor/lab/labtest"
	"github.com/refdoctor/refdoctor/registry"
)

// BenchmarkDiscoverMany discovers the referrers of 200 images with 3
// referrers each, on a registry with the API and on one without it, and
// reports requests per subject (the minimum is 1 per API page, or 1 GET
// per fallback tag plus the repository's one shared tag list) and the wall
// time of the whole run.
func BenchmarkDiscoverMany(b *testing.B) {
	const images, perImage = 200, 3
	l := labtest.StartT(b,
		lab.Spec{Name: "api", Profile: lab.ProfileOCI11, NoSeed: true},
		lab.Spec{Name: "tags", Profile: lab.ProfileFallback404, NoSeed: true},
	)
	for _, name := range []string{"api", "tags"} {
		reg, _ := l.Get(name)
		c, err := registry.New(l.Config(), registry.WithoutDockerCreds())
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		digests, err := lab.SeedMany(ctx, c, reg.Host, "bench/app", images, perImage)
		cancel()
		if err != nil {
			b.Fatal(err)
		}
		refs := make([]string, len(digests))
		for i, d := range digests {
			refs[i] = reg.Host + "/bench/app@" + d
		}
		b.Run(name, func(b *testing.B) {
			var perSubject, shared float64
			for b.Loop() {
				rep, err := discovery.DiscoverMany(context.Background(), refs, labOpts(l, discovery.WithConcurrency(8))...)
				if err != nil {
					b.Fatal(err)
				}
				total := 0
				for _, r := range rep.Results {
					if r.Count() != perImage || r.Outcome != "ok" {
						b.Fatalf("%s: %d referrers, outcome %s, findings %v", r.Subject.Reference, r.Count(), r.Outcome, codes(r.Findings))
					}
					total += r.Requests
				}
				perSubject = float64(total) / float64(len(rep.Results))
				shared = float64(rep.SharedRequests)
			}
			b.ReportMetric(perSubject, "requests/subject")
			b.ReportMetric(shared, "shared-requests")
			b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/run")
		})
	}
}
