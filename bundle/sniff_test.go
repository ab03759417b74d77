package bundle_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/refdoctor/refdoctor/bundle"
)

// TestSniff: a form checks a bundle path before validating it: real
// bundles of both compressions pass; a missing file, a folder, a text
// file and an uncompressed tar are refused, each saying why.
func TestSniff(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, comp := range []bundle.Compression{bundle.CompressionGzip, bundle.CompressionZstd} {
		p := write("b."+string(comp), randomBundle(t, comp, 1))
		got, err := bundle.Sniff(p)
		if err != nil || got != comp {
			t.Errorf("Sniff(%s bundle) = %q, %v; want %q", comp, got, err, comp)
		}
		if rep, err := bundle.ValidateFile(t.Context(), p); err != nil || !rep.OK {
			t.Errorf("the sniffed %s bundle does not validate: %v %+v", comp, err, rep.Errors)
		}
	}
	tarHead := make([]byte, 512)
	copy(tarHead[257:], "ustar")
	for name, c := range map[string]struct {
		path string
		want string
	}{
		"missing": {filepath.Join(dir, "nope.tgz"), "no such file"},
		"folder":  {dir, "is a folder"},
		"text":    {write("notes.txt", []byte("package main\n")), "neither gzip nor zstd"},
		"tar":     {write("plain.tar", tarHead), "uncompressed tar"},
	} {
		_, err := bundle.Sniff(c.path)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: Sniff error %v, want one saying %q", name, err, c.want)
		}
		if name != "missing" && !errors.Is(err, bundle.ErrNotBundle) {
			t.Errorf("%s: %v is not ErrNotBundle", name, err)
		}
	}
}
