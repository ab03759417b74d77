package bundle_test

import (
	"bytes"
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/refdoctor/refdoctor/bundle"
	"github.com/refdoctor/refdoctor/finding"
)

// largeFixture is the fixture with its layers and three more blobs of
// 5 MiB, large enough to be hashed only (not held), all stored, each in
// a gzip member of its own: the blobs a second reader can hash.
func largeFixture(t *testing.T) (*fixture, []string) {
	t.Helper()
	f := newFixture(t, func(c *fixtureConfig) { c.layerSize = 5 << 20 })
	rng := rand.New(rand.NewPCG(3, 4))
	for range 3 {
		b := make([]byte, 5<<20+rng.IntN(4096))
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		f.files[bundle.BlobPath(dig(b))] = b
	}
	f.relist()
	f.stored = true
	var large []string
	for _, p := range f.order {
		if len(f.files[p]) > 4<<20 {
			large = append(large, p)
		}
	}
	return f, large
}

// reportShape is what a report says, with its problems in a fixed order.
type reportShape struct {
	OK, Complete     bool
	Files, Referrers int
	Bytes            int64
	Problems         []string
	Verified         []string
}

// shape is what r says, with whether each of paths is verified.
func shape(r bundle.Report, paths []string) reportShape {
	s := reportShape{OK: r.OK, Complete: r.Complete, Files: r.FilesChecked, Referrers: r.ReferrersChecked, Bytes: r.BytesChecked}
	for _, p := range paths {
		if r.Verified(p) {
			s.Verified = append(s.Verified, p)
		}
	}
	for _, p := range r.Errors {
		s.Problems = append(s.Problems, string(p.Code)+" "+p.Path+" "+p.Expected+" "+p.Actual)
	}
	slices.Sort(s.Problems)
	return s
}

// TestSecondReaderFindsWhatOnePassFinds: with a second reader hashing
// every other large blob from the file, validation says what a single
// pass says of a whole bundle, of one with any one large blob tampered
// with, and of one cut short inside any of them; and a file whose bytes
// change between the two reads is never reported whole.
func TestSecondReaderFindsWhatOnePassFinds(t *testing.T) {
	// Not parallel: it needs two Ps, which it may set.
	if runtime.GOMAXPROCS(0) < 2 {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2))
	}
	ctx := context.Background()
	f, large := largeFixture(t)
	if len(large) != 5 {
		t.Fatalf("%d large blobs in the fixture, want 5", len(large))
	}
	whole := f.write(t)
	dir := t.TempDir()
	check := func(name string, data []byte, wantOffloads int) bundle.Report {
		t.Helper()
		file := filepath.Join(dir, strings.NewReplacer(" ", "-", "/", "-", ":", "-").Replace(name)+".tgz")
		if err := os.WriteFile(file, data, 0o600); err != nil {
			t.Fatal(err)
		}
		one, err1 := bundle.ValidateFile(ctx, file, bundle.WithCheckReferrers(true), bundle.WithSecondReader(nil))
		var n int
		two, err2 := bundle.ValidateFile(ctx, file, bundle.WithCheckReferrers(true), bundle.WithOffloadMin(1), bundle.WithOffloadCount(&n))
		if (err1 == nil) != (err2 == nil) {
			t.Fatalf("%s: one pass: %v; with a second reader: %v", name, err1, err2)
		}
		paths := append([]string{bundle.ManifestPath}, f.order...)
		if a, b := shape(one, paths), shape(two, paths); !equalShapes(a, b) {
			t.Errorf("%s: one pass says\n  %+v\nwith a second reader\n  %+v", name, a, b)
		}
		if n != wantOffloads {
			t.Errorf("%s: the second reader hashed %d blobs, want %d", name, n, wantOffloads)
		}
		return two
	}

	if rep := check("whole", whole, 3); !rep.OK || rep.FilesChecked != len(f.order) {
		t.Fatalf("whole bundle: OK %v, %d files checked of %d: %+v", rep.OK, rep.FilesChecked, len(f.order), rep.Errors)
	}
	for i, p := range large {
		g, _ := largeFixture(t)
		g.files[p] = slices.Clone(g.files[p])
		g.files[p][len(g.files[p])/2] ^= 1
		rep := check("tampered "+p, g.write(t), 3)
		if rep.OK || !slices.ContainsFunc(rep.Errors, func(e bundle.Problem) bool { return e.Code == finding.FileChecksumMismatch && e.Path == p }) {
			t.Errorf("blob %d tampered with: %+v", i, rep.Errors)
		}
		// Stored, the blob's bytes are in the file as they are: cut the
		// file in the middle of them.
		at := bytes.Index(whole, f.files[p][1000:1100])
		if at < 0 {
			t.Fatalf("blob %s not found stored in the archive", p)
		}
		rep = check("cut inside "+p, whole[:at], i/2+1)
		if rep.OK || !slices.ContainsFunc(rep.Errors, func(e bundle.Problem) bool { return e.Code == finding.TruncatedArchive }) {
			t.Errorf("cut inside blob %d: %+v", i, rep.Errors)
		}
	}

	// An index.json too large to be genuine is flagged, whoever hashes it:
	// never verified, so import never trusts it.
	g, _ := largeFixture(t)
	g.files[bundle.IndexPath] = bytes.Repeat([]byte("not an index "), 17<<20/13)
	g.relist()
	rep := check("index.json of 17 MiB", g.write(t), 3) // index.json is the first of 6
	if rep.Verified(bundle.IndexPath) || !slices.ContainsFunc(rep.Errors, func(e bundle.Problem) bool {
		return e.Code == finding.MemberTooLarge && e.Path == bundle.IndexPath
	}) {
		t.Errorf("index.json of 17 MiB: verified %v, problems %+v", rep.Verified(bundle.IndexPath), rep.Errors)
	}

	// A file that changes between the reads: the stream says one thing,
	// the file the second reader reads another. Changed data is a
	// checksum mismatch; anything else where the member was, an error.
	at := bytes.Index(whole, f.files[large[0]][1000:1100])
	changed := slices.Clone(whole)
	changed[at] ^= 1
	for _, tc := range []struct {
		name    string
		second  []byte
		problem finding.Code
		err     string
	}{
		{"data changed", changed, finding.FileChecksumMismatch, ""},
		{"everything moved by a byte", append([]byte{0}, whole...), "", "changed while it was validated"},
	} {
		var n int
		rep, err := bundle.Validate(ctx, bytes.NewReader(whole), bundle.WithCheckReferrers(true), bundle.WithOffloadMin(1),
			bundle.WithOffloadCount(&n), bundle.WithSecondReader(bytes.NewReader(tc.second)))
		if n == 0 {
			t.Fatalf("%s: the second reader hashed nothing", tc.name)
		}
		if rep.OK {
			t.Errorf("%s: the bundle is reported whole", tc.name)
		}
		if tc.problem != "" && !slices.ContainsFunc(rep.Errors, func(e bundle.Problem) bool { return e.Code == tc.problem && e.Path == large[0] }) {
			t.Errorf("%s: no %s for %s: %+v", tc.name, tc.problem, large[0], rep.Errors)
		}
		if tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%s: error %v, want one saying %q", tc.name, err, tc.err)
		}
	}
}

func equalShapes(a, b reportShape) bool {
	return a.OK == b.OK && a.Complete == b.Complete && a.Files == b.Files && a.Referrers == b.Referrers &&
		a.Bytes == b.Bytes && slices.Equal(a.Problems, b.Problems) && slices.Equal(a.Verified, b.Verified)
}
