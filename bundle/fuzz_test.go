package bundle_test

import (
	"bytes"
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/refdoctor/refdoctor/bundle"
)

// Seeds live in testdata/fuzz/<Fuzz...>/, written by TestGenerateFixtures
// -update from these functions.

func fuzzSeedsManifest(t testing.TB) map[string][]byte {
	good := newFixture(t).manifestYAML(t)
	return map[string][]byte{
		"good":          good,
		"minimal":       []byte("schemaVersion: 1\nkind: MirrorBundle\ncreatedAt: 2026-11-27T12:00:00Z\ntool: {name: refdoctor, version: v0.1.0}\n"),
		"flow":          []byte(`{schemaVersion: 1, kind: MirrorBundle, createdAt: 2026-11-27T12:00:00Z, tool: {name: r}, files: [{path: oci-layout, size: 30, sha256: ` + sha([]byte("x")) + `}]}`),
		"unknown-field": append([]byte("extra: 1\n"), good...),
		"anchors":       []byte("a: &a [x, x, x]\nb: &b [*a, *a, *a]\nc: [*b, *b, *b]\n"),
		"two-docs":      append(append(good, []byte("---\n")...), good...),
		"bad-path":      []byte("schemaVersion: 1\nkind: MirrorBundle\ncreatedAt: 2026-11-27T12:00:00Z\ntool: {name: r}\nfiles: [{path: ../x, size: 1, sha256: " + sha(nil) + "}]\n"),
	}
}

func fuzzSeedsValidate(t testing.TB) map[string][]byte {
	f := newFixture(t, func(c *fixtureConfig) { c.layerSize = 64 })
	good := f.write(t)
	f.manifestAt = -1
	last := f.write(t)
	f.manifestAt = 0
	f.compression = bundle.CompressionZstd
	zst := f.write(t)
	seeds := map[string][]byte{
		"good-gzip":     good,
		"manifest-last": last,
		"good-zstd":     zst,
		"truncated":     good[:len(good)/2],
		"empty":         {},
		"text":          []byte("not a bundle"),
	}
	for _, h := range hostileFixtures() {
		switch h.file {
		case "symlink.tgz", "dotdot.tgz", "duplicate.tgz", "invalid-yaml.tgz":
			seeds[h.file] = h.build(t)
		}
	}
	return seeds
}

func FuzzParseManifest(f *testing.F) {
	for _, s := range fuzzSeedsManifest(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := bundle.ParseManifest(bytes.NewReader(data), 1<<20)
		if err != nil {
			if m != nil {
				t.Fatal("manifest returned with an error")
			}
			return
		}
		// Whatever parses must render and parse back to the same thing,
		// since export writes what Marshal renders.
		out, err := m.Marshal()
		if err != nil {
			t.Fatalf("marshal of a parsed manifest: %v", err)
		}
		m2, err := bundle.ParseManifest(bytes.NewReader(out), 0)
		if err != nil {
			t.Fatalf("reparse: %v\n%s", err, out)
		}
		out2, err := m2.Marshal()
		if err != nil || !bytes.Equal(out, out2) {
			t.Fatalf("marshal is not stable:\n%s\n---\n%s", out, out2)
		}
		_ = m.Consistency()
		_ = m.Summary()
	})
}

func FuzzValidate(f *testing.F) {
	for _, s := range fuzzSeedsValidate(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for _, check := range []bool{false, true} {
			rep, err := bundle.Validate(ctx, bytes.NewReader(data),
				bundle.WithCheckReferrers(check),
				bundle.WithMaxArchiveSize(16<<20))
			if errors.Is(err, context.DeadlineExceeded) {
				t.Fatal("validation of a small input took 10 s")
			}
			if rep.OK && (err != nil || len(rep.Errors) > 0 || !rep.Complete) {
				t.Fatalf("OK report with problems: err %v, %+v", err, rep)
			}
			if err == nil && !rep.OK && len(rep.Errors) == 0 {
				t.Fatalf("failed report without a problem: %+v", rep)
			}
			if rep.Errors == nil || rep.Subjects == nil {
				t.Fatal("nil slices in the report would render as JSON null")
			}
		}
	})
}

func TestManifestRoundTrip(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	out := f.manifestYAML(t)
	m, err := bundle.ParseManifest(bytes.NewReader(out), 0)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	out2, _ := m.Marshal()
	if !bytes.Equal(out, out2) {
		t.Fatalf("not stable:\n%s\n---\n%s", out, out2)
	}
	// Equal after sorting: Marshal sorts, the fixture does not.
	sorted, _ := bundle.ParseManifest(bytes.NewReader(out2), 0)
	if !reflect.DeepEqual(m, sorted) {
		t.Error("reparse differs")
	}
	if len(m.Consistency()) != 0 {
		t.Errorf("consistency: %+v", m.Consistency())
	}
}
