package discovery_test

import (
	"context"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/refdoctor/refdoctor/discovery"
	"github.com/refdoctor/refdoctor/finding"
	"github.com/refdoctor/refdoctor/lab"
	"github.com/refdoctor/refdoctor/lab/labtest"
	"github.com/refdoctor/refdoctor/registry"
	"github.com/regclient/regclient/types/ref"
)

// TestPagination: more referrers than one page are all found, one request
// per page; a Link loop is cut off and reported instead of spinning.
func TestPagination(t *testing.T) {
	t.Parallel()
	l := labtest.StartT(t,
		lab.Spec{Name: "paged", Profile: lab.ProfileOCI11, ReferrersPageLimit: 2000},
		lab.Spec{Name: "loop", Profile: lab.ProfileOCI11, LinkLoop: true},
	)
	paged, _ := l.Get("paged")
	extra, err := lab.AttachMany(context.Background(), l, paged.Host, lab.SeedSingleRepository, l.Seed.Single, "application/vnd.example.page+json", 30)
	if err != nil {
		t.Fatal(err)
	}
	ref := paged.Host + "/" + lab.SeedSingleRepository + "@" + l.Seed.Single
	res, err := discovery.Discover(context.Background(), ref, labOpts(l, discovery.WithMethod(discovery.MethodAPI))...)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range res.Referrers {
		got = append(got, r.Digest)
	}
	sort.Strings(got)
	sort.Strings(extra)
	if !slices.Equal(got, extra) {
		t.Fatalf("found %d referrers over pages, want the %d attached (findings %v)", len(got), len(extra), codes(res.Findings))
	}
	if res.Requests < 2 {
		t.Errorf("%d requests for 30 referrers with a small page limit: not paged", res.Requests)
	}
	t.Logf("30 referrers in %d requests", res.Requests)

	loop, _ := l.Get("loop")
	res, err = discovery.Discover(context.Background(), l.Seed.Ref(loop.Host), labOpts(l, discovery.WithMethod(discovery.MethodAPI), discovery.WithTimeout(20*time.Second))...)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(codes(res.Findings), "PaginationLoop") || res.Outcome != finding.OutcomeIncomplete || !res.Partial {
		t.Fatalf("Link loop: outcome %s partial %v findings %v", res.Outcome, res.Partial, codes(res.Findings))
	}
	// The page read before the loop is kept, not dropped.
	if got := digestsBySource(res.Referrers)[discovery.SourceAPI]; !slices.Equal(got, seededOn(l, l.Seed.Index)) {
		t.Errorf("Link loop: kept %v, want the %d referrers of the page read", got, len(seededOn(l, l.Seed.Index)))
	}
	// The loop is cut at the first page seen twice (two referrers
	// requests), not at the timeout; the cosign tags are read as usual.
	if res.Requests > 2+len(l.Seed.CosignTags) {
		t.Errorf("a Link loop cost %d requests before it was cut off", res.Requests)
	}
}

// TestFilterTheServerIgnores: refdoctor filters on each referrer's own
// type itself, so a registry that ignores the filter and one that honours
// it give the same answer.
func TestFilterTheServerIgnores(t *testing.T) {
	t.Parallel()
	l := labtest.StartT(t, lab.Spec{Name: "ignores", Profile: lab.ProfileOCI11, IgnoreArtifactTypeFilter: true}, lab.Spec{Name: "filters", Profile: lab.ProfileOCI11})
	for _, name := range []string{"ignores", "filters"} {
		res := discover(t, l, name, discovery.WithMethod(discovery.MethodAPI), discovery.WithArtifactTypes(lab.ArtifactTypeCycloneDX))
		if len(res.Referrers) != 1 || res.Referrers[0].ArtifactType != lab.ArtifactTypeCycloneDX {
			t.Errorf("%s: %d referrers after filtering: %+v", name, len(res.Referrers), res.Referrers)
		}
	}
}

// TestRateLimit: a 429 that clears within the timeout is waited out; one
// that does not is "unknown: rate limited", never "none".
func TestRateLimit(t *testing.T) {
	t.Parallel()
	l := labtest.StartT(t,
		lab.Spec{Name: "clears", Profile: lab.ProfileOCI11, Throttle429: 1},
		lab.Spec{Name: "stays", Profile: lab.ProfileRateLimit, RateBudget: 1},
	)
	res := discover(t, l, "clears", discovery.WithMethod(discovery.MethodAPI))
	if res.Outcome != finding.OutcomeOK || len(digestsBySource(res.Referrers)[discovery.SourceAPI]) != 3 || !slices.Contains(codes(res.Findings), "RateLimitWaited") {
		t.Fatalf("429 that clears: outcome %s, referrers %d, findings %v", res.Outcome, len(res.Referrers), codes(res.Findings))
	}
	res = discover(t, l, "stays", discovery.WithMethod(discovery.MethodAPI), discovery.WithTimeout(4*time.Second))
	if res.Outcome != finding.OutcomeIncomplete || !slices.Contains(codes(res.Findings), "RateLimited") || !res.Partial {
		t.Fatalf("429 that stays: outcome %s partial %v findings %v", res.Outcome, res.Partial, codes(res.Findings))
	}
}

// TestGitLabTagQuirk: a fallback tag that resolves to the subject itself is
// not read as a referrers index.
func TestGitLabTagQuirk(t *testing.T) {
	t.Parallel()
	l := labtest.StartT(t, lab.Spec{Name: "gitlab", Profile: lab.ProfileGitLab})
	res := discover(t, l, "gitlab", discovery.WithMethod(discovery.MethodTags))
	if !slices.Contains(codes(res.Findings), "FallbackTagNotIndex") {
		t.Fatalf("findings %v", codes(res.Findings))
	}
	for _, r := range res.Referrers {
		if r.Digest == l.Seed.Index {
			t.Fatal("the subject itself was reported as its own referrer")
		}
	}
}

// TestTagsListing groups fallback and cosign tags by subject and names
// orphans.
func TestTagsListing(t *testing.T) {
	t.Parallel()
	l := labtest.StartT(t, lab.Spec{Name: "ghcr", Profile: lab.ProfileFallback404})
	reg, _ := l.Get("ghcr")
	// An orphan: a cosign-style tag whose subject digest is not in the
	// repository (the image was deleted or re-pushed).
	orphan := "sha256:" + "ab" + l.Seed.Index[9:]
	c, err := registry.New(l.Config(), registry.WithoutDockerCreds())
	if err != nil {
		t.Fatal(err)
	}
	src, _ := ref.New(reg.Host + "/" + l.Seed.Repository + ":" + l.Seed.CosignTags[0])
	m, err := c.ManifestGet(context.Background(), src)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.ManifestPut(context.Background(), src.SetTag("sha256-"+orphan[7:]+".sig"), m); err != nil {
		t.Fatal(err)
	}
	res, err := discovery.ListTags(context.Background(), reg.Host+"/"+l.Seed.Repository, labOpts(l)...)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string][]string{}
	exists := map[string]bool{}
	for _, s := range res.Subjects {
		for _, tg := range s.Tags {
			kinds[s.Subject] = append(kinds[s.Subject], tg.Kind)
			if tg.Digest == "" {
				t.Errorf("tag %s has no digest", tg.Tag)
			}
		}
		if s.Exists != nil {
			exists[s.Subject] = *s.Exists
		}
	}
	sort.Strings(kinds[l.Seed.Index])
	if !slices.Equal(kinds[l.Seed.Index], []string{"att", "index", "sbom", "sig"}) {
		t.Errorf("index subject kinds %v", kinds[l.Seed.Index])
	}
	if !slices.Equal(kinds[l.Seed.Platforms["linux/amd64"]], []string{"index"}) {
		t.Errorf("platform subject kinds %v", kinds[l.Seed.Platforms["linux/amd64"]])
	}
	if !exists[l.Seed.Index] || exists[orphan] {
		t.Errorf("exists: index %v orphan %v", exists[l.Seed.Index], exists[orphan])
	}
	if !slices.Contains(codes(res.Findings), "OrphanTags") {
		t.Errorf("no orphan finding: %v", codes(res.Findings))
	}
}
