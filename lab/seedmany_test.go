package lab

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/regclient/regclient/types/ref"
	"github.com/regclient/regclient/types/referrer"

	"github.com/refdoctor/refdoctor/registry"
)

// TestSeedMany pushes a small fleet into an API-on and an API-off
// registry and finds the same digests, tags and referrers on both.
func TestSeedMany(t *testing.T) {
	t.Parallel()
	l, err := Start(t.Context(), WithSpecs(
		Spec{Name: "api", Profile: ProfileOCI11, NoSeed: true},
		Spec{Name: "fallback", Profile: ProfileFallback404, NoSeed: true},
	))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	c := clientFor(t, l, false)
	const images, perImage = 12, 4
	wantTypes := []string{ArtifactTypeCycloneDX, ArtifactTypeNotary, ArtifactTypeInToto, ArtifactTypeCycloneDX}

	var first []string
	for _, name := range []string{"api", "fallback"} {
		r := mustGet(t, l, name)
		digests, err := SeedMany(t.Context(), c, r.Host, "bench/app", images, perImage)
		if err != nil {
			t.Fatalf("%s: SeedMany: %v", name, err)
		}
		if len(digests) != images || len(uniq(digests)) != images {
			t.Fatalf("%s: %d digests, %d distinct", name, len(digests), len(uniq(digests)))
		}
		if first == nil {
			first = digests
		} else if !slices.Equal(first, digests) {
			t.Errorf("%s: digests differ from the first registry's", name)
		}
		app, _ := ref.New(r.Host + "/bench/app")
		tl, err := c.TagList(t.Context(), app)
		if err != nil {
			t.Fatal(err)
		}
		tags, _ := tl.GetTags()
		for i, d := range digests {
			tag := fmt.Sprintf("img-%04d", i)
			if !slices.Contains(tags, tag) {
				t.Errorf("%s: tag %s missing", name, tag)
			}
			fb, _ := referrer.FallbackTag(app.SetDigest(d))
			if slices.Contains(tags, fb.Tag) == r.Profile.ReferrersAPI() {
				t.Errorf("%s: fallback tag %s present: %v", name, fb.Tag, !r.Profile.ReferrersAPI())
			}
		}
		m, err := c.ManifestHead(t.Context(), app.SetTag("img-0005"))
		if err != nil || m.GetDescriptor().Digest.String() != digests[5] {
			t.Errorf("%s: img-0005 is not digest 5: %v", name, err)
		}
		rl, err := c.ReferrerList(t.Context(), app.SetDigest(digests[5]))
		if err != nil {
			t.Fatalf("%s: referrers: %v", name, err)
		}
		var types []string
		for _, d := range rl.Descriptors {
			types = append(types, d.ArtifactType)
		}
		slices.Sort(types)
		want := slices.Clone(wantTypes)
		slices.Sort(want)
		if !slices.Equal(types, want) {
			t.Errorf("%s: referrer types %v, want %v", name, types, want)
		}
	}
	if d, err := SeedMany(t.Context(), c, mustGet(t, l, "api").Host, "bench/none", 0, 3); err != nil || len(d) != 0 {
		t.Errorf("zero images: %v %v", d, err)
	}
	if _, err := SeedMany(t.Context(), c, mustGet(t, l, "api").Host, "bench/app", -1, 3); err == nil {
		t.Error("negative count accepted")
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := SeedMany(ctx, c, mustGet(t, l, "api").Host, "bench/cancel", 5, 1); err == nil {
		t.Error("SeedMany ignored a cancelled context")
	}
}

// TestSeedManyScale is the benchmark's fleet, 200 images with 3
// referrers each, on olareg in memory: it must take seconds, not minutes.
func TestSeedManyScale(t *testing.T) {
	if testing.Short() {
		t.Skip("pushes 800 manifests")
	}
	t.Parallel()
	l, err := Start(t.Context(), WithSpecs(Spec{Name: "api", Profile: ProfileOCI11, NoSeed: true}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	r := mustGet(t, l, "api")
	start := time.Now()
	digests, err := SeedMany(t.Context(), newFastClient(t, l), r.Host, "bench/app", 200, 3)
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	t.Logf("SeedMany 200x3: %s, %d requests", took, l.Requests("api"))
	if len(uniq(digests)) != 200 {
		t.Errorf("%d distinct digests", len(uniq(digests)))
	}
	// A handful of blobs, then one PUT per manifest (regclient adds a
	// HEAD and an upload POST/PUT per blob).
	if n := l.Requests("api"); n > 200*4+40 {
		t.Errorf("SeedMany sent %d requests, want about one per manifest", n)
	}
	if took > 30*time.Second {
		t.Errorf("SeedMany 200x3 took %s", took)
	}
}

// BenchmarkSeedMany measures pushing the 200x3 fleet.
func BenchmarkSeedMany(b *testing.B) {
	l, err := Start(b.Context(), WithSpecs(Spec{Name: "api", Profile: ProfileOCI11, NoSeed: true}))
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	r, _ := l.Get("api")
	c, err := registry.New(l.Config(), registry.WithoutDockerCreds())
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; b.Loop(); i++ {
		if _, err := SeedMany(b.Context(), c, r.Host, fmt.Sprintf("bench/app%d", i), 200, 3); err != nil {
			b.Fatal(err)
		}
	}
}

func newFastClient(t *testing.T, l *Lab) *registry.Client {
	t.Helper()
	c, err := registry.New(l.Config(), registry.WithoutDockerCreds())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func uniq(s []string) map[string]bool {
	m := map[string]bool{}
	for _, v := range s {
		m[v] = true
	}
	return m
}
