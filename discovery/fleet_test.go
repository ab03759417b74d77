package discovery_test

import (
	"context"
	"testing"
	"time"

	"github.com/refdoctor/refdoctor/discovery"
	"github.com/refdoctor/refdoctor/finding"
	"github.com/refdoctor/refdoctor/lab"
	"github.com/refdoctor/refdoctor/lab/labtest"
	"github.com/refdoctor/refdoctor/registry"
)

// TestAPIDiscoveryCostIgnoresTheTagCount: with the referrers API, a
// subject costs one referrers page and four tag HEADs (sha256-<hex> and
// its .sig, .att and .sbom), whether its repository holds 2 tags or 400:
// counted by discovery and at the registry. --all-tags lists the tags
// instead, once per repository for a whole run.
func TestAPIDiscoveryCostIgnoresTheTagCount(t *testing.T) {
	t.Parallel()
	l := labtest.StartT(t, lab.Spec{Name: "api", Profile: lab.ProfileOCI11, NoSeed: true})
	reg, _ := l.Get("api")
	c, err := registry.New(l.Config(), registry.WithoutDockerCreds())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	small, err := lab.SeedMany(ctx, c, reg.Host, "fleet/small", 2, 3)
	if err != nil {
		t.Fatal(err)
	}
	big, err := lab.SeedMany(ctx, c, reg.Host, "fleet/big", 400, 3)
	if err != nil {
		t.Fatal(err)
	}
	var perRepo []int64
	var shared []int
	for _, subject := range []string{reg.Host + "/fleet/small@" + small[1], reg.Host + "/fleet/big@" + big[399]} {
		before := l.Requests("api")
		res := discoverAt(t, l, subject)
		atRegistry := l.Requests("api") - before
		if res.Count() != 3 || res.Outcome != finding.OutcomeOK {
			t.Fatalf("%s: %d referrers, outcome %s, findings %v", subject, res.Count(), res.Outcome, codes(res.Findings))
		}
		if res.Requests != 1+4 {
			t.Errorf("%s: %d requests, want 1 page and 4 tag HEADs", subject, res.Requests)
		}
		perRepo = append(perRepo, atRegistry)
		shared = append(shared, res.SharedRequests)
	}
	// What the run shares is the capability probe alone: no tag list.
	if perRepo[0] != perRepo[1] || shared[0] != shared[1] {
		t.Errorf("the registry saw %d requests (%d shared) for a subject among 2 tags, %d (%d shared) among 400", perRepo[0], shared[0], perRepo[1], shared[1])
	}

	// Twenty subjects of the 400-tag repository in one run with
	// --all-tags: one tag list for all of them, no HEADs.
	refs := make([]string, 20)
	for i := range refs {
		refs[i] = reg.Host + "/fleet/big@" + big[i]
	}
	rep, err := discovery.DiscoverMany(ctx, refs, labOpts(l, discovery.WithAllTags(true))...)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rep.Results {
		if r.Requests != 1 || r.Count() != 3 {
			t.Errorf("--all-tags: %s: %d requests, %d referrers; want the page alone and 3", r.Subject.Reference, r.Requests, r.Count())
		}
	}
	if rep.SharedRequests != shared[0]+1 {
		t.Errorf("--all-tags: %d shared requests for 20 subjects, want the probe's %d and one tag list", rep.SharedRequests, shared[0])
	}
}

// discoverAt discovers one subject and returns its result with the run's
// shared requests.
func discoverAt(t *testing.T, l *lab.Lab, subject string) fleetResult {
	t.Helper()
	rep, err := discovery.DiscoverMany(context.Background(), []string{subject}, labOpts(l)...)
	if err != nil {
		t.Fatal(err)
	}
	return fleetResult{Result: rep.Results[0], SharedRequests: rep.SharedRequests}
}

type fleetResult struct {
	discovery.Result
	SharedRequests int
}
