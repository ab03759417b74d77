package bundle_test

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/refdoctor/refdoctor/bundle"
)

func TestWriterDeterministicHeaders(t *testing.T) {
	t.Parallel()
	a, b := newFixture(t).write(t), newFixture(t).write(t)
	if !bytes.Equal(a, b) {
		t.Fatal("same content, different bytes")
	}
	zr, err := gzip.NewReader(bytes.NewReader(a))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if hdr.Typeflag != tar.TypeReg || hdr.Mode != 0o644 || hdr.Uid != 0 || hdr.Gid != 0 || hdr.Uname != "" ||
			hdr.Gname != "" || !hdr.ModTime.Equal(bundle.DefaultModTime) || len(hdr.PAXRecords) != 0 {
			t.Errorf("header %+v", hdr)
		}
	}
}

func TestWriterRefusesWhatValidateRejects(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"/abs", "../x", "a/../b", "a//b", "", `a\b`} {
		w := bundle.NewWriter(io.Discard, bundle.CompressionGzip)
		if err := w.AddFile(name, []byte("x")); err == nil {
			t.Errorf("wrote %q", name)
		}
	}
	w := bundle.NewWriter(io.Discard, bundle.CompressionGzip)
	if err := w.AddFile("a", nil); err != nil {
		t.Fatal(err)
	}
	if err := w.AddFile("a", nil); err == nil {
		t.Error("wrote a twice")
	}
	w = bundle.NewWriter(io.Discard, bundle.CompressionGzip)
	if err := w.AddFileFrom("short", 10, strings.NewReader("abc")); err == nil || !strings.Contains(err.Error(), "3 of 10") {
		t.Errorf("short source: %v", err)
	}
	if err := w.Close(); err == nil {
		t.Error("Close after a failed member succeeded")
	}
	w = bundle.NewWriter(io.Discard, "lz4")
	if err := w.AddFile("a", nil); err == nil {
		t.Error("unknown compression accepted")
	}
}

func TestWriterLongNamesAndOptions(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	created := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	w := bundle.NewWriter(&buf, bundle.CompressionZstd, bundle.WithModTime(created), bundle.WithLevel(3))
	long := strings.Repeat("d/", 150) + "f"
	if err := w.AddFileFrom(long, 5, strings.NewReader("hello, and more")); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	zr, err := zstd.NewReader(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	tr := tar.NewReader(zr)
	hdr, err := tr.Next()
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(tr)
	if err != nil || hdr.Name != long || !hdr.ModTime.Equal(created) || string(body) != "hello" {
		t.Errorf("member %q (mtime %s) holds %q, err %v; want the long name, %s and exactly the 5 bytes asked for", hdr.Name, hdr.ModTime, body, err, created)
	}
	rep, _ := validate(t, buf.Bytes())
	// Not a bundle (no manifest, no layout), but readable: the long name
	// went through PAX and came back whole.
	if rep.Compression != bundle.CompressionZstd || rep.FilesChecked != 1 {
		t.Errorf("report %+v", rep)
	}
}

// TestWriterMemberLevels: members written stored (SetMemberLevel) start
// gzip members of their own; the stream inflates, with Go's reader as with
// refdoctor's validator, to exactly the tar stream written at one level;
// the stored member is not compressed; the bytes are the same each time;
// zstd ignores the levels.
func TestWriterMemberLevels(t *testing.T) {
	t.Parallel()
	text := []byte(strings.Repeat("refdoctor compresses text well. ", 4096))
	// write adds members of text, each at the level levels gives it
	// (nil: no level set).
	write := func(comp bundle.Compression, levels ...int) []byte {
		var buf bytes.Buffer
		w := bundle.NewWriter(&buf, comp)
		for i := range max(len(levels), 3) {
			if levels != nil {
				if err := w.SetMemberLevel(levels[i]); err != nil {
					t.Fatal(err)
				}
			}
			if err := w.AddFile(fmt.Sprint("m", i), text); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	def, stored := bundle.LevelDefault, bundle.LevelStored
	inflate := func(b []byte) []byte {
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		out, err := io.ReadAll(zr)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	one, mixed := write(bundle.CompressionGzip), write(bundle.CompressionGzip, def, stored, def)
	if !bytes.Equal(mixed, write(bundle.CompressionGzip, def, stored, def)) {
		t.Error("same members and levels, different bytes")
	}
	if !bytes.Equal(inflate(mixed), inflate(one)) {
		t.Error("the tar stream depends on the levels")
	}
	if members := gzipMembers(t, mixed); members != 3 {
		t.Errorf("%d gzip members, want one per change of level (3)", members)
	}
	// Stored members each get a gzip member of their own, so that a
	// reader can start at any of them (Report.VerifiedOffset).
	if members := gzipMembers(t, write(bundle.CompressionGzip, def, stored, stored, stored, def)); members != 5 {
		t.Errorf("a compressed member, three stored ones, a compressed one: %d gzip members, want 5", members)
	}
	if len(mixed) < len(one)+len(text) {
		t.Errorf("the stored member was compressed: %d bytes, one level %d, member %d", len(mixed), len(one), len(text))
	}
	zone, zmixed := write(bundle.CompressionZstd), write(bundle.CompressionZstd, def, stored, def)
	if !bytes.Equal(zone, zmixed) {
		t.Error("zstd output depends on the gzip levels")
	}
	if err := bundle.NewWriter(io.Discard, bundle.CompressionGzip).SetMemberLevel(42); err == nil {
		t.Error("level 42 accepted")
	}
}

// gzipMembers counts the members of a gzip stream.
func gzipMembers(t *testing.T, b []byte) int {
	t.Helper()
	br := bytes.NewReader(b)
	zr, err := gzip.NewReader(br)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for {
		zr.Multistream(false)
		if _, err := io.Copy(io.Discard, zr); err != nil {
			t.Fatal(err)
		}
		n++
		if err := zr.Reset(br); err == io.EOF {
			return n
		} else if err != nil {
			t.Fatal(err)
		}
	}
}
