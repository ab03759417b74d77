package lab

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/refdoctor/refdoctor/mirror"
)

// Bundles are the lab's mirror bundles: one whole, one with a referrer
// altered after export, for the bundle screen and the runbook's
// "Referrer checksum mismatch" step.
type Bundles struct {
	Good     string `json:"good"`
	Tampered string `json:"tampered"`
}

// bundleCreated fixes the lab bundles' createdAt so they are the same on
// every start.
var bundleCreated = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// WriteBundles exports the seeded image from the named registry into
// l.Dir as good.tgz and writes tampered.tgz beside it.
func (l *Lab) WriteBundles(ctx context.Context, from string) (Bundles, error) {
	reg, ok := l.Get(from)
	if !ok {
		return Bundles{}, fmt.Errorf("lab has no registry %q", from)
	}
	b := Bundles{Good: filepath.Join(l.Dir, "good.tgz"), Tampered: filepath.Join(l.Dir, "tampered.tgz")}
	if _, err := mirror.Export(ctx, mirror.Env{Config: l.Config(), Client: l.ClientOpts()}, b.Good, []string{l.Seed.Ref(reg.Host)},
		mirror.ExportWithCreatedAt(bundleCreated), mirror.ExportWithToolVersion("lab")); err != nil {
		return Bundles{}, fmt.Errorf("lab bundle: %w", err)
	}
	if err := TamperReferrer(b.Good, b.Tampered); err != nil {
		return Bundles{}, err
	}
	return b, nil
}

// TamperReferrer copies the gzip bundle src to dst with one byte of its
// first referrer file changed, as if the artifact had been modified after
// export: manifest.yaml still lists the original checksum.
func TamperReferrer(src, dst string) error {
	return rewriteBundle(src, dst, func(name string, data []byte) []byte {
		if !strings.HasPrefix(name, "referrers/") {
			return data
		}
		out := bytes.Clone(data)
		// Flip the case of the first letter inside a string value, so the
		// file stays valid JSON and only its checksum gives it away.
		for i := len(out) / 2; i < len(out); i++ {
			if c := out[i]; c >= 'a' && c <= 'z' {
				out[i] = c - 'a' + 'A'
				return out
			}
		}
		out[len(out)-1] ^= 1
		return out
	})
}

// rewriteBundle copies a gzip tar member by member through edit; the first
// member edit changes is the only one changed.
func rewriteBundle(src, dst string, edit func(name string, data []byte) []byte) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	zr, err := gzip.NewReader(in)
	if err != nil {
		return err
	}
	tr := tar.NewReader(zr)
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	changed := false
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			return err
		}
		if !changed {
			if edited := edit(hdr.Name, data); !bytes.Equal(edited, data) {
				data, changed = edited, true
			}
		}
		hdr.Size = int64(len(data))
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if _, err := tw.Write(data); err != nil {
			return err
		}
	}
	if !changed {
		return fmt.Errorf("%s: nothing to tamper with", src)
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return os.WriteFile(dst, buf.Bytes(), 0o644)
}
