package bundle_test

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/refdoctor/refdoctor/bundle"
	"github.com/refdoctor/refdoctor/finding"
	"github.com/refdoctor/refdoctor/internal/craft"
)

func zstdFrame(t *testing.T, data []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	zw, err := zstd.NewWriter(&out, zstd.WithEncoderConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := zw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// skippable is a zstd skippable frame (magic 0x184D2A5?) holding data.
func skippable(data []byte) []byte {
	out := binary.LittleEndian.AppendUint32(nil, 0x184D2A53)
	out = binary.LittleEndian.AppendUint32(out, uint32(len(data)))
	return append(out, data...)
}

// gzipWith writes one gzip member whose header carries a file name and
// comment of the given lengths (RFC 1952 allows any length).
func gzipWith(t *testing.T, data []byte, name, comment int) []byte {
	t.Helper()
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	zw.Name = strings.Repeat("n", name)
	zw.Comment = strings.Repeat("c", comment)
	if _, err := zw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// gzipTest says what gzip -t (and tar) make of a file: nil when gzip
// accepts it without complaint.
func gzipTest(t *testing.T, data []byte) (string, bool) {
	t.Helper()
	if _, err := exec.LookPath("gzip"); err != nil {
		t.Skip("gzip not installed")
	}
	path := filepath.Join(t.TempDir(), "b.tgz")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("gzip", "-t", path).CombinedOutput()
	return strings.TrimSpace(string(out)), err == nil
}

// TestCompressedStreamEdges: what follows the archive, and gzip headers
// Go's readers refuse but gzip accepts. Each bundle is the crafted valid
// one; only its compression differs.
func TestCompressedStreamEdges(t *testing.T) {
	t.Parallel()
	tarball := craft.Valid().Tar()
	zeroMember := gzipWith(t, make([]byte, 4096), 0, 0)
	cases := []struct {
		name string
		data func() []byte
		want finding.Code // "" for a whole bundle
		// gzipOK: gzip -t accepts the file (checked, when gzip is there)
		gzipOK bool
	}{
		{"zstd skippable frame after the archive", func() []byte {
			return append(zstdFrame(t, tarball), skippable([]byte("hidden payload after the archive"))...)
		}, finding.TrailingData, false},
		{"zstd skippable frames as pzstd writes them", func() []byte {
			f := zstdFrame(t, tarball)
			return append(skippable(binary.LittleEndian.AppendUint32(nil, uint32(len(f)))), f...)
		}, "", false},
		{"1f 8b and garbage after the gzip member", func() []byte {
			return append(craft.Gzip(tarball), 0x1f, 0x8b, 'x', 'y')
		}, finding.TrailingData, false},
		{"a lone 1f 8b after the gzip member", func() []byte {
			return append(craft.Gzip(tarball), 0x1f, 0x8b)
		}, finding.TrailingData, false},
		{"a second gzip member of data after the archive", func() []byte {
			return append(craft.Gzip(tarball), craft.Gzip([]byte("appended"))...)
		}, finding.TrailingData, true},
		{"a second gzip member of zeros after the archive", func() []byte {
			return append(craft.Gzip(tarball), zeroMember...)
		}, "", true},
		{"the archive split over two gzip members", func() []byte {
			return append(craft.Gzip(tarball[:3000]), craft.Gzip(tarball[3000:])...)
		}, "", true},
		{"a 4 KiB gzip comment", func() []byte { return gzipWith(t, tarball, 0, 4096) }, "", true},
		{"a 100 KiB gzip file name", func() []byte { return gzipWith(t, tarball, 100<<10, 0) }, "", true},
		{"a 60 KiB gzip extra field", func() []byte {
			var out bytes.Buffer
			zw := gzip.NewWriter(&out)
			zw.Extra = bytes.Repeat([]byte{'e'}, 60<<10)
			zw.Write(tarball)
			zw.Close()
			return out.Bytes()
		}, "", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			data := c.data()
			writeCrafted(t, "edge.bin", data)
			if c.data != nil && bytes.HasPrefix(data, []byte{0x1f, 0x8b}) {
				msg, ok := gzipTest(t, data)
				if ok != c.gzipOK {
					t.Fatalf("gzip -t: accepted %v, want %v (%s)", ok, c.gzipOK, msg)
				}
				t.Logf("gzip -t: %v %s", ok, msg)
			}
			rep, err := validate(t, data, bundle.WithCheckReferrers(true))
			if err != nil {
				t.Fatal(err)
			}
			got := problemCodes(rep)
			switch {
			case c.want == "" && !rep.OK:
				t.Fatalf("want a whole bundle, got %v:\n%s", got, dump(rep))
			case c.want != "" && !slices.Equal(got, []finding.Code{c.want}):
				t.Fatalf("want exactly %s, got %v:\n%s", c.want, got, dump(rep))
			case !rep.Complete:
				t.Fatal("every member was read, yet the report says reading stopped early")
			}
		})
	}
}
