package bundle_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/refdoctor/refdoctor/bundle"
)

func TestParseManifestStrict(t *testing.T) {
	t.Parallel()
	h := strings.Repeat("a", 64)
	head := "schemaVersion: 1\nkind: MirrorBundle\ncreatedAt: 2026-11-27T12:00:00Z\ntool: {name: refdoctor, version: v0.1.0}\n"
	art := func(field, value string) string {
		fields := map[string]string{
			"digest": "sha256:" + h, "artifactType": "application/vnd.cyclonedx+json",
			"mediaType": "application/vnd.oci.image.manifest.v1+json", "category": "sbom", "size": "10",
			"path": "referrers/sha256-" + h + "/sha256-" + h + ".json", "sha256": h,
		}
		fields[field] = value
		var b strings.Builder
		b.WriteString("referrers:\n  total: 1\n  subjects:\n    - subject: sha256:" + h + "\n      discovery: api\n      count: 1\n      artifacts:\n        -")
		for _, k := range []string{"digest", "artifactType", "mediaType", "category", "size", "path", "sha256"} {
			b.WriteString(" " + k + ": " + fields[k] + "\n         ")
		}
		return b.String() + "\n"
	}
	file := func(path, size, sum string) string {
		return "files:\n  - {path: " + path + ", size: " + size + ", sha256: " + sum + "}\n"
	}
	tcs := []struct {
		name string
		doc  string
		want error
	}{
		{"minimal", head, nil},
		{"artifact", head + art("", ""), nil},
		{"file", head + file("blobs/sha256/"+h, "3", h), nil},
		{"empty", "", bundle.ErrMalformedManifest},
		{"not yaml", "kind: [", bundle.ErrMalformedManifest},
		{"unknown top field", head + "signedBy: mallory\n", bundle.ErrMalformedManifest},
		{"unknown nested field", strings.Replace(head, "version: v0.1.0", "version: v0.1.0, url: x", 1), bundle.ErrMalformedManifest},
		{"duplicate key", head + "kind: MirrorBundle\n", bundle.ErrMalformedManifest},
		{"two documents", head + "---\n" + head, bundle.ErrMalformedManifest},
		{"no schemaVersion", strings.Replace(head, "schemaVersion: 1\n", "", 1), bundle.ErrMalformedManifest},
		{"newer schemaVersion", strings.Replace(head, "schemaVersion: 1", "schemaVersion: 2", 1), bundle.ErrUnsupportedVersion},
		{"other kind", strings.Replace(head, "MirrorBundle", "SupportBundle", 1), bundle.ErrNotBundle},
		{"no createdAt", strings.Replace(head, "createdAt: 2026-11-27T12:00:00Z\n", "", 1), bundle.ErrMalformedManifest},
		{"no tool", strings.Replace(head, "tool: {name: refdoctor, version: v0.1.0}\n", "", 1), bundle.ErrMalformedManifest},
		{"image digest", head + "images: [{reference: r, digest: sha256:abc, mediaType: m}]\n", bundle.ErrMalformedManifest},
		{"image digest algorithm", head + "images: [{reference: r, digest: sha512:" + h + ", mediaType: m}]\n", bundle.ErrMalformedManifest},
		{"artifact digest", head + art("digest", "sha256:"+strings.ToUpper(h)), bundle.ErrMalformedManifest},
		{"artifact category", head + art("category", "malware"), bundle.ErrMalformedManifest},
		{"artifact size", head + art("size", "-1"), bundle.ErrMalformedManifest},
		{"artifact size not a number", head + art("size", "ten"), bundle.ErrMalformedManifest},
		{"artifact path outside referrers", head + art("path", "blobs/sha256/"+h), bundle.ErrMalformedManifest},
		{"artifact path traversal", head + art("path", "referrers/../../etc/passwd"), bundle.ErrMalformedManifest},
		{"artifact sha256", head + art("sha256", "xyz"), bundle.ErrMalformedManifest},
		{"discovery", head + strings.Replace(art("", ""), "discovery: api", "discovery: magic", 1), bundle.ErrMalformedManifest},
		{"file absolute", head + file("/etc/passwd", "1", h), bundle.ErrMalformedManifest},
		{"file dotdot", head + file("blobs/../../x", "1", h), bundle.ErrMalformedManifest},
		{"file not canonical", head + file("blobs//sha256/"+h, "1", h), bundle.ErrMalformedManifest},
		{"file is the manifest", head + file("manifest.yaml", "1", h), bundle.ErrMalformedManifest},
		{"file under referrers", head + file("referrers/x", "1", h), bundle.ErrMalformedManifest},
		{"blob name", head + file("blobs/sha256/abc", "1", h), bundle.ErrMalformedManifest},
		{"file listed twice", head + "files:\n  - {path: a, size: 1, sha256: " + h + "}\n  - {path: a, size: 1, sha256: " + h + "}\n", bundle.ErrMalformedManifest},
		{"subject listed twice", head + art("", "") + "    - {subject: sha256:" + h + ", discovery: api, count: 0}\n", bundle.ErrMalformedManifest},
	}
	for _, c := range tcs {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			m, err := bundle.ParseManifest(strings.NewReader(c.doc), 0)
			if c.want == nil {
				if err != nil {
					t.Fatalf("%v\n%s", err, c.doc)
				}
				return
			}
			if !errors.Is(err, c.want) || m != nil {
				t.Fatalf("err = %v, want %v\n%s", err, c.want, c.doc)
			}
		})
	}
}

func TestMarshalDeterministic(t *testing.T) {
	t.Parallel()
	a := newFixture(t).manifest
	b := newFixture(t).manifest
	// Reverse every list that Marshal sorts: the output must not change.
	for i, j := 0, len(b.Files)-1; i < j; i, j = i+1, j-1 {
		b.Files[i], b.Files[j] = b.Files[j], b.Files[i]
	}
	s := b.Referrers.Subjects
	s[0], s[1] = s[1], s[0]
	s[1].Artifacts[0], s[1].Artifacts[1] = s[1].Artifacts[1], s[1].Artifacts[0]
	before := s[1].Artifacts[0].Digest
	oa, err := a.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	ob, err := b.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(oa, ob) {
		t.Fatalf("order leaks into the output:\n%s\n---\n%s", oa, ob)
	}
	if s[1].Artifacts[0].Digest != before {
		t.Error("Marshal sorted the caller's manifest")
	}
	for _, want := range []string{"tool: {name: refdoctor, version: v0.1.0}", "  - {path: index.json, size: ", "annotations: {}", "createdAt: 2026-11-27T12:00:00Z"} {
		if !bytes.Contains(oa, []byte(want)) {
			t.Errorf("output lacks %q:\n%s", want, oa)
		}
	}
}

func TestConsistency(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	if p := f.manifest.Consistency(); len(p) != 0 {
		t.Fatalf("fixture inconsistent: %+v", p)
	}
	m := f.manifest
	m.Referrers.Subjects[0].Count = 5
	m.Referrers.Total = 9
	m.Referrers.Subjects[1].Artifacts[0].SHA256 = strings.Repeat("0", 64)
	var got []string
	for _, p := range m.Consistency() {
		got = append(got, string(p.Code)+" "+p.Path)
	}
	if len(got) != 3 {
		t.Fatalf("problems = %v", got)
	}
}

func TestPathsAndCategories(t *testing.T) {
	t.Parallel()
	h1, h2 := strings.Repeat("1", 64), strings.Repeat("2", 64)
	if got := bundle.BlobPath("sha256:" + h1); got != "blobs/sha256/"+h1 {
		t.Error(got)
	}
	if got := bundle.ReferrerPath("sha256:"+h1, "sha256:"+h2); got != "referrers/sha256-"+h1+"/sha256-"+h2+".json" {
		t.Error(got)
	}
	if order := newFixture(t).manifest.MemberOrder(); order[0] != "manifest.yaml" || order[1] != "oci-layout" || order[2] != "index.json" ||
		!strings.HasPrefix(order[len(order)-1], "referrers/") {
		t.Errorf("member order = %v", order)
	}
}
