//go:build linux

package lab

import (
	"slices"
	"testing"

	"github.com/regclient/regclient/types/manifest"
	"github.com/regclient/regclient/types/ref"
	"github.com/regclient/regclient/types/referrer"

	"github.com/refdoctor/refdoctor/config"
	"github.com/refdoctor/refdoctor/lab/external"
	"github.com/refdoctor/refdoctor/registry"
)

// TestSeedIntoDistribution seeds the out-of-process docker-registry
// (distribution v2.8, no referrers API) and expects the lab's digests and
// regclient's fallback tags, as on the lab's API-off registries.
func TestSeedIntoDistribution(t *testing.T) {
	t.Parallel()
	d := external.StartDistributionT(t)
	l := sharedLab(t)

	cfg := config.Defaults()
	cfg.SetHost(config.Registry{Host: d.Host, PlainHTTP: true})
	c, err := registry.New(cfg, registry.WithoutDockerCreds())
	if err != nil {
		t.Fatal(err)
	}
	seed, err := SeedInto(t.Context(), c, d.Host)
	if err != nil {
		t.Fatalf("SeedInto docker-registry: %v\n%s", err, d.RecentOutput())
	}
	if !equalSeeds(seed, l.Seed) {
		t.Fatalf("docker-registry seed differs from the lab's:\n%+v\n%+v", seed, l.Seed)
	}
	app, _ := ref.New(d.Host + "/" + seed.Repository)
	tl, err := c.TagList(t.Context(), app)
	if err != nil {
		t.Fatal(err)
	}
	tags, _ := tl.GetTags()
	fb, _ := referrer.FallbackTag(app.SetDigest(seed.Index))
	for _, want := range append([]string{seed.Tag, fb.Tag}, seed.CosignTags...) {
		if !slices.Contains(tags, want) {
			t.Errorf("docker-registry lacks tag %s (has %v)", want, tags)
		}
	}
	m, err := c.ManifestGet(t.Context(), fb)
	if err != nil {
		t.Fatalf("get fallback tag: %v", err)
	}
	raw, _ := m.RawBody()
	if manifest.GetMediaType(m) != "application/vnd.oci.image.index.v1+json" {
		t.Errorf("fallback tag holds %s", manifest.GetMediaType(m))
	}
	checkReferrers(t, parseIndex(t, raw), seed.ReferrersOf(seed.Index))
}
