//go:build linux

package discovery_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/regclient/regclient/types/descriptor"
	"github.com/regclient/regclient/types/manifest"
	"github.com/regclient/regclient/types/mediatype"
	v1 "github.com/regclient/regclient/types/oci/v1"
	"github.com/regclient/regclient/types/ref"

	"github.com/refdoctor/refdoctor/config"
	"github.com/refdoctor/refdoctor/discovery"
	"github.com/refdoctor/refdoctor/finding"
	"github.com/refdoctor/refdoctor/lab"
	"github.com/refdoctor/refdoctor/lab/labtest"
	"github.com/refdoctor/refdoctor/registry"
)

// fallbackIndex reads the sha256-<hex> index of subject in repo.
func fallbackIndex(t *testing.T, c *registry.Client, repo ref.Ref, subject string) []descriptor.Descriptor {
	t.Helper()
	m, err := c.ManifestGet(t.Context(), repo.SetTag("sha256-"+strings.TrimPrefix(subject, "sha256:")))
	if err != nil {
		t.Fatalf("fallback index of %s: %v", subject, err)
	}
	list, err := m.(manifest.Indexer).GetManifestList()
	if err != nil {
		t.Fatal(err)
	}
	return list
}

// putFallbackIndex writes descs as subject's sha256-<hex> index, as a
// client that attaches without the API does.
func putFallbackIndex(t *testing.T, c *registry.Client, repo ref.Ref, subject string, descs []descriptor.Descriptor) {
	t.Helper()
	idx, err := manifest.New(manifest.WithOrig(v1.Index{Versioned: v1.IndexSchemaVersion, MediaType: mediatype.OCI1ManifestList, Manifests: descs}))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.ManifestPut(t.Context(), repo.SetTag("sha256-"+strings.TrimPrefix(subject, "sha256:")), idx); err != nil {
		t.Fatalf("put fallback index of %s: %v", subject, err)
	}
}

// countCodes counts findings by code.
func countCodes(fs []finding.Finding) map[finding.Code]int {
	n := map[finding.Code]int{}
	for _, f := range fs {
		n[f.Code]++
	}
	return n
}

// TestFallbackIndexHealth builds broken fallback indexes with regclient in
// docker-registry (no referrers API) and in olareg (with the API), and
// expects one finding per problem from `tags`, naming the index, and the
// cheap ones from discover too: a duplicate entry, an entry without
// artifactType, an entry whose manifest is gone, an entry that names
// another subject, a tag that holds the subject itself, and, where the API
// lists more, an entry the index lacks.
func TestFallbackIndexHealth(t *testing.T) {
	t.Parallel()
	d := labtest.StartDistributionT(t)
	l := labtest.StartT(t, lab.Spec{Name: "oci11", Profile: lab.ProfileOCI11}, lab.Spec{Name: "gitlab", Profile: lab.ProfileGitLab})
	cfg := l.Config()
	cfg.SetHost(config.Registry{Host: d.Host, PlainHTTP: true})
	c, err := registry.New(cfg, registry.WithoutDockerCreds())
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	seed, err := lab.SeedInto(ctx, c, d.Host)
	if err != nil {
		t.Fatalf("seed docker-registry: %v\n%s", err, d.RecentOutput())
	}
	app, _ := ref.New(d.Host + "/" + seed.Repository)
	amd64, arm64 := seed.Platforms["linux/amd64"], seed.Platforms["linux/arm64"]

	// The index's own fallback index lists its first referrer twice.
	onIndex := fallbackIndex(t, c, app, seed.Index)
	putFallbackIndex(t, c, app, seed.Index, append(slices.Clone(onIndex), onIndex[0]))
	// The amd64 manifest's index lists its referrer as cosign does on
	// GHCR: with the empty config type.
	onAMD := fallbackIndex(t, c, app, amd64)
	amdReferrer := onAMD[0]
	onAMD[0].ArtifactType = finding.MediaTypeEmpty
	putFallbackIndex(t, c, app, amd64, onAMD)
	// The arm64 manifest's index lists a referrer deleted since and the
	// amd64 manifest's referrer, which names amd64. (docker-registry
	// refuses an index of manifests it does not have: the entry is
	// deleted after the index is written.)
	goneDigest, err := lab.AttachWith(ctx, c, d.Host, seed.Repository, arm64, lab.ArtifactTypeSPDX, []byte("deleted later"))
	if err != nil {
		t.Fatal(err)
	}
	gone := fallbackIndex(t, c, app, arm64)[0]
	putFallbackIndex(t, c, app, arm64, []descriptor.Descriptor{gone, amdReferrer})
	if err := c.ManifestDelete(ctx, app.SetDigest(goneDigest)); err != nil {
		t.Fatal(err)
	}
	// demo/single: the subject itself pushed under its fallback tag, as
	// GitLab serves it.
	single, _ := ref.New(d.Host + "/" + lab.SeedSingleRepository)
	sm, err := c.ManifestGet(ctx, single.SetDigest(seed.Single))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.ManifestPut(ctx, single.SetTag("sha256-"+strings.TrimPrefix(seed.Single, "sha256:")), sm); err != nil {
		t.Fatal(err)
	}

	opts := append(labOpts(l), discovery.WithConfig(cfg))
	t.Run("tags on docker-registry", func(t *testing.T) {
		res, err := discovery.ListTags(ctx, d.Host+"/"+seed.Repository, opts...)
		if err != nil {
			t.Fatal(err)
		}
		want := map[finding.Code]string{
			finding.FallbackIndexDuplicate:      seed.Index,
			finding.FallbackIndexNoArtifactType: amd64,
			finding.FallbackIndexEntryMissing:   arm64,
			finding.FallbackIndexWrongSubject:   arm64,
		}
		n := countCodes(res.Findings)
		for code, subject := range want {
			if n[code] != 1 {
				t.Errorf("%s: %d findings, want 1: %v", code, n[code], res.Findings)
				continue
			}
			for _, f := range res.Findings {
				if f.Code == code && !strings.Contains(f.Summary, "sha256-"+strings.TrimPrefix(subject, "sha256:")) {
					t.Errorf("%s names another index: %s", code, f.Summary)
				}
				if f.Code == code && f.Remedy == "" {
					t.Errorf("%s has no fix", code)
				}
			}
		}
		if n[finding.FallbackIndexMissingEntry] != 0 || res.Partial {
			t.Errorf("without the API nothing is known to be missing: %v (partial %v)", res.Findings, res.Partial)
		}
		for _, s := range res.Subjects {
			for _, tg := range s.Tags {
				if tg.Kind != discovery.TagKindIndex {
					continue
				}
				if tg.Health == nil || !tg.Health.Checked {
					t.Errorf("%s: health %+v", tg.Tag, tg.Health)
					continue
				}
				wantProblems := map[string]int{seed.Index: 1, amd64: 1, arm64: 2}[s.Subject]
				if len(tg.Health.Problems) != wantProblems {
					t.Errorf("%s: problems %v, want %d", tg.Tag, tg.Health.Problems, wantProblems)
				}
			}
		}
		res, err = discovery.ListTags(ctx, d.Host+"/"+lab.SeedSingleRepository, opts...)
		if err != nil {
			t.Fatal(err)
		}
		if n := countCodes(res.Findings); n[finding.FallbackTagNotIndex] != 1 || len(res.Findings) != 1 {
			t.Errorf("a tag that holds the subject itself: %v", res.Findings)
		} else if !strings.Contains(res.Findings[0].Evidence, "the subject itself") {
			t.Errorf("evidence %q", res.Findings[0].Evidence)
		}
	})

	t.Run("discover says what it read", func(t *testing.T) {
		res, err := discovery.Discover(ctx, seed.IndexRef(d.Host), append(opts, discovery.WithMethod(discovery.MethodTags))...)
		if err != nil {
			t.Fatal(err)
		}
		n := countCodes(res.Findings)
		if n[finding.FallbackIndexDuplicate] != 1 {
			t.Errorf("duplicate not told: %v", res.Findings)
		}
		if got := digestsBySource(res.Referrers)[discovery.SourceTagIndex]; len(got) != len(seed.ReferrersOf(seed.Index)) {
			t.Errorf("the duplicate entry is listed twice: %v", got)
		}
		res, err = discovery.Discover(ctx, app.SetDigest(amd64).CommonName(), append(opts, discovery.WithMethod(discovery.MethodTags))...)
		if err != nil {
			t.Fatal(err)
		}
		if n := countCodes(res.Findings); n[finding.FallbackIndexNoArtifactType] != 1 || n[finding.ArtifactTypeMislabelled] != 0 {
			t.Errorf("empty type in the index: %v", res.Findings)
		}
		if len(res.Referrers) != 1 || res.Referrers[0].ArtifactType == finding.MediaTypeEmpty {
			t.Errorf("the referrer's type is not read from its manifest: %+v", res.Referrers)
		}
	})

	t.Run("an index that lacks what the API lists", func(t *testing.T) {
		oci, _ := l.Get("oci11")
		repo, _ := ref.New(oci.Host + "/" + l.Seed.Repository)
		var listed []descriptor.Descriptor
		for _, r := range l.Seed.ReferrersOf(l.Seed.Index)[:2] {
			listed = append(listed, descriptor.Descriptor{MediaType: r.MediaType, ArtifactType: r.ArtifactType, Digest: digest.Digest(r.Digest), Size: r.Size})
		}
		putFallbackIndex(t, c, repo, l.Seed.Index, listed)
		res, err := discovery.ListTags(ctx, oci.Host+"/"+l.Seed.Repository, opts...)
		if err != nil {
			t.Fatal(err)
		}
		third := discovery.ShortDigest(l.Seed.ReferrersOf(l.Seed.Index)[2].Digest)
		n := countCodes(res.Findings)
		if n[finding.FallbackIndexMissingEntry] != 1 || len(res.Findings) != 1 {
			t.Fatalf("findings %v", res.Findings)
		}
		if !strings.Contains(res.Findings[0].Evidence, third) {
			t.Errorf("the missing entry is not named (%s): %s", third, res.Findings[0].Evidence)
		}
	})

	t.Run("GitLab's tag quirk", func(t *testing.T) {
		gl, _ := l.Get("gitlab")
		res, err := discovery.ListTags(ctx, gl.Host+"/"+l.Seed.Repository, opts...)
		if err != nil {
			t.Fatal(err)
		}
		// Every sha256-<hex> index tag resolves to its subject: the index's
		// and the amd64 manifest's.
		if n := countCodes(res.Findings); n[finding.FallbackTagNotIndex] != 2 {
			t.Errorf("findings %v", res.Findings)
		}
	})
}
