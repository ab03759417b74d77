package bundle_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/refdoctor/refdoctor/bundle"
	"github.com/refdoctor/refdoctor/finding"
)

func TestInspect(t *testing.T) {
	t.Parallel()
	for _, comp := range []bundle.Compression{bundle.CompressionGzip, bundle.CompressionZstd} {
		t.Run(string(comp), func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			f.compression = comp
			p := filepath.Join(t.TempDir(), "b")
			data := f.write(t)
			if err := os.WriteFile(p, data, 0o600); err != nil {
				t.Fatal(err)
			}
			s, err := bundle.Inspect(context.Background(), p)
			if err != nil {
				t.Fatal(err)
			}
			if s.Compression != comp || !s.ManifestFirst || s.Note != "" || s.FormatVersion != 1 ||
				s.Tool.Name != "refdoctor" || !s.CreatedAt.Equal(fixtureCreated) || s.ArchiveBytes != int64(len(data)) {
				t.Errorf("summary = %+v", s)
			}
			if s.FileCount != len(f.files)+1 || s.ReferrersTotal != 3 || len(s.Images) != 1 || len(s.Subjects) != 2 {
				t.Errorf("counts = %+v", s)
			}
			var listed int64
			for _, b := range f.files {
				listed += int64(len(b))
			}
			if s.ListedBytes != listed {
				t.Errorf("listed bytes = %d, want %d", s.ListedBytes, listed)
			}
			want := map[finding.Category]int{finding.CategorySBOM: 1, finding.CategorySignature: 1, finding.CategoryAttestation: 1}
			if len(s.Categories) != 3 {
				t.Errorf("categories = %+v", s.Categories)
			}
			for _, c := range s.Categories {
				if want[c.Category] != c.Count || c.Bytes <= 0 {
					t.Errorf("category %+v", c)
				}
			}
			for _, sub := range s.Subjects {
				if sub.Subject == f.index && (sub.Count != 2 || len(sub.Categories) != 2) {
					t.Errorf("index subject = %+v", sub)
				}
			}
		})
	}
}

// TestInspectStopsAfterManifest: a 1 GiB member after manifest.yaml is
// never read.
func TestInspectStopsAfterManifest(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	prefix := rawTar(t, []rawEntry{{name: bundle.ManifestPath, data: f.manifestYAML(t)}})
	data := gzipBomb(t, prefix[:len(prefix)-1024], "blobs/sha256/"+strings.Repeat("6", 64), 1024)
	src := &countingSource{r: bytes.NewReader(data)}
	s, err := bundle.InspectReader(context.Background(), src)
	if err != nil || !s.ManifestFirst {
		t.Fatalf("err %v, summary %+v", err, s)
	}
	if n := src.n.Load(); n > 512<<10 {
		t.Errorf("read %d of %d compressed bytes", n, len(data))
	}
}

func TestInspectScansWhenManifestIsLate(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.manifestAt = -1
	s, err := bundle.InspectReader(context.Background(), bytes.NewReader(f.write(t)))
	if err != nil {
		t.Fatal(err)
	}
	if s.ManifestFirst || !strings.Contains(s.Note, "scanned") || s.ReferrersTotal != 3 {
		t.Errorf("summary = %+v", s)
	}
}

func TestInspectErrors(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	var noManifest []rawEntry
	for _, p := range f.order {
		noManifest = append(noManifest, rawEntry{name: p, data: f.files[p]})
	}
	tcs := map[string]struct {
		data []byte
		want error
	}{
		"text":          {[]byte("hello"), bundle.ErrNotBundle},
		"empty tar":     {gz(t, rawTar(t, nil)), bundle.ErrNotBundle},
		"no manifest":   {rawTarGz(t, noManifest), bundle.ErrNoManifest},
		"bad manifest":  {rawTarGz(t, []rawEntry{{name: bundle.ManifestPath, data: []byte("kind: [")}}), bundle.ErrMalformedManifest},
		"huge manifest": {gzipBomb(t, nil, bundle.ManifestPath, 64), bundle.ErrManifestTooLarge},
	}
	for name, c := range tcs {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := bundle.InspectReader(context.Background(), bytes.NewReader(c.data))
			if !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
		})
	}
	if _, err := bundle.Inspect(context.Background(), t.TempDir()); !errors.Is(err, bundle.ErrNotBundle) {
		t.Errorf("directory: %v", err)
	}
}
