package discovery_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"strings"
	"testing"

	"github.com/refdoctor/refdoctor/discovery"
	"github.com/refdoctor/refdoctor/lab"
	"github.com/refdoctor/refdoctor/lab/labtest"
)

// TestFetchManifest reads a seeded referrer and a fallback tag from real
// registries: the referrer names the index as its subject and carries its
// artifact type, the fallback tag's index lists the subject's referrers,
// and the bytes are the ones whose sha256 is the digest.
func TestFetchManifest(t *testing.T) {
	t.Parallel()
	l := labtest.StartT(t, lab.Spec{Name: "oci11", Profile: lab.ProfileOCI11}, lab.Spec{Name: "ghcr", Profile: lab.ProfileFallback404})
	oci, _ := l.Get("oci11")
	ghcr, _ := l.Get("ghcr")
	opts := []discovery.Opt{discovery.WithConfig(l.Config()), discovery.WithClientOpts(l.ClientOpts()...)}
	ref := l.Seed.ReferrersOf(l.Seed.Index)[0]
	m, err := discovery.FetchManifest(context.Background(), oci.Host+"/"+l.Seed.Repository+"@"+ref.Digest, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if m.Digest != ref.Digest || m.Subject != l.Seed.Index || m.ArtifactType != ref.ArtifactType || m.Size != int64(len(m.Raw)) {
		t.Errorf("referrer manifest %+v, want digest %s subject %s type %s", m, ref.Digest, l.Seed.Index, ref.ArtifactType)
	}
	if got := fmt.Sprintf("sha256:%x", sha256.Sum256(m.Raw)); got != m.Digest {
		t.Errorf("raw bytes hash to %s, digest %s", got, m.Digest)
	}
	roles := map[string]int{}
	for _, e := range m.Entries {
		roles[e.Role]++
	}
	if roles["config"] != 1 || roles["layer"] == 0 {
		t.Errorf("entries %+v", m.Entries)
	}

	tag := ghcr.Host + "/" + l.Seed.Repository + ":" + strings.Replace(l.Seed.Index, ":", "-", 1)
	idx, err := discovery.FetchManifest(context.Background(), tag, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if idx.MediaType != "application/vnd.oci.image.index.v1+json" || len(idx.Entries) != len(l.Seed.ReferrersOf(l.Seed.Index)) {
		t.Errorf("fallback index %+v, want %d referrers", idx, len(l.Seed.ReferrersOf(l.Seed.Index)))
	}
	if _, err := discovery.FetchManifest(context.Background(), oci.Host+"/"+l.Seed.Repository+":no-such-tag", opts...); err == nil {
		t.Error("a missing tag gave no error")
	}
}
