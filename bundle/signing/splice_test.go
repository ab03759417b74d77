package signing_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/refdoctor/refdoctor/bundle"
	"github.com/refdoctor/refdoctor/bundle/signing"
)

// storedBundle is a bundle as export writes one whose layers are
// compressed already: the layers stored, each in a gzip member of its
// own, the rest deflated. write gives it unsigned (sig nil) or signed.
func storedBundle(t *testing.T) (write func(sig []byte) []byte, layers [][]byte) {
	t.Helper()
	sum := func(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }
	layout := []byte(`{"imageLayoutVersion":"1.0.0"}`)
	index := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}`)
	config := []byte(`{"architecture":"amd64","os":"linux"}`)
	rng := rand.New(rand.NewPCG(5, 6))
	data := map[string][]byte{bundle.LayoutPath: layout, bundle.IndexPath: index, bundle.BlobsDir + sum(config): config}
	stored := map[string]bool{}
	for range 3 {
		l := make([]byte, 300<<10+rng.IntN(1000))
		for i := range l {
			l[i] = byte(rng.Uint32())
		}
		layers = append(layers, l)
		data[bundle.BlobsDir+sum(l)] = l
		stored[bundle.BlobsDir+sum(l)] = true
	}
	m := bundle.Manifest{
		SchemaVersion: bundle.FormatVersion, Kind: bundle.ManifestKind,
		CreatedAt: time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC), Tool: bundle.Tool{Name: "refdoctor", Version: "v1"},
	}
	for p, b := range data {
		m.Files = append(m.Files, bundle.FileEntry{Path: p, Size: int64(len(b)), SHA256: sum(b)})
	}
	yml, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	data[bundle.ManifestPath] = yml
	return func(sig []byte) []byte { return writeOrdered(t, m, data, sig, stored) }, layers
}

// writeOrdered writes the members of m, data[path] each, in MemberOrder,
// with sig (when not nil) right after manifest.yaml: stored the paths
// stored says, the rest at the default level, as export writes them.
func writeOrdered(t *testing.T, m bundle.Manifest, data map[string][]byte, sig []byte, stored map[string]bool) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := bundle.NewWriter(&buf, bundle.CompressionGzip, bundle.WithModTime(m.CreatedAt))
	for _, p := range m.MemberOrder() {
		level := bundle.LevelDefault
		if stored[p] {
			level = bundle.LevelStored
		}
		if err := w.SetMemberLevel(level); err != nil {
			t.Fatal(err)
		}
		if err := w.AddFile(p, data[p]); err != nil {
			t.Fatal(err)
		}
		if p == bundle.ManifestPath && sig != nil {
			if err := w.AddFile(bundle.SignatureMember, sig); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestAttachSignatureKeepsStoredLayers: signing a bundle whose layers are
// stored in gzip members of their own rewrites only what comes before the
// first of them and copies the rest of the file as it is: the result is
// the very bundle the writer makes signed (what export --sign-key
// writes), its layers still stored. The copied part is still checked
// member by member: a layer changed while the bundle is signed, with its
// size and modification time kept, is caught and nothing is signed.
func TestAttachSignatureKeepsStoredLayers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	privPEM, pubPEM := pkcs8Key(t, "ed25519")
	key, pub := mustSigningKey(t, privPEM), mustPublicKey(t, pubPEM)
	write, layers := storedBundle(t)
	unsigned := write(nil)
	dir := t.TempDir()
	file := filepath.Join(dir, "b.tgz")
	if err := os.WriteFile(file, unsigned, 0o644); err != nil {
		t.Fatal(err)
	}
	rep, err := bundle.ValidateFile(ctx, file)
	if err != nil || !rep.OK {
		t.Fatalf("validate: %v %+v", err, rep.Errors)
	}
	first := int64(len(unsigned))
	for _, l := range layers {
		s := sha256.Sum256(l)
		off, ok := rep.VerifiedOffset(bundle.BlobsDir + hex.EncodeToString(s[:]))
		if !ok {
			t.Fatal("a stored layer has no seek point")
		}
		first = min(first, off)
	}
	var yml []byte
	if _, err := bundle.AttachSignature(ctx, file, func(m []byte) ([]byte, error) {
		yml = m
		return key.SignManifest(m)
	}, false); err != nil {
		t.Fatal(err)
	}
	sig, err := signing.SignManifest(yml, key)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(file)
	if !bytes.Equal(got, write(sig)) {
		t.Error("the signed bundle is not the one the writer makes signed")
	}
	if !bytes.HasSuffix(got, unsigned[first:]) {
		t.Error("the part from the first stored layer on was not copied as it was")
	}
	if rep, err := bundle.ValidateFile(ctx, file, bundle.WithSignatureVerifier(signing.NewVerifier(pub))); err != nil || !rep.OK || rep.Signature.Status != bundle.SignatureVerified {
		t.Fatalf("validate the signed bundle: %v %+v %v", err, rep.Signature, rep.Errors)
	}

	// A layer changed between validation and the copy: same size, same
	// modification time, one byte of its data different.
	changed := filepath.Join(dir, "changed.tgz")
	if err := os.WriteFile(changed, unsigned, 0o644); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(changed)
	at := bytes.Index(unsigned, layers[len(layers)-1][5000:5100])
	if at < int(first) {
		t.Fatalf("the last layer's data is not in the copied part (%d, first seek point %d)", at, first)
	}
	_, err = bundle.AttachSignature(ctx, changed, func(m []byte) ([]byte, error) {
		f, err := os.OpenFile(changed, os.O_WRONLY, 0)
		if err != nil {
			return nil, err
		}
		if _, err := f.WriteAt([]byte{unsigned[at] ^ 1}, int64(at)); err != nil {
			return nil, err
		}
		if err := f.Close(); err != nil {
			return nil, err
		}
		if err := os.Chtimes(changed, fi.ModTime(), fi.ModTime()); err != nil {
			return nil, err
		}
		return key.SignManifest(m)
	}, false)
	if !errors.Is(err, bundle.ErrDamaged) {
		t.Errorf("signing a bundle whose layer changed while it was signed: %v", err)
	}
	if now, _ := os.ReadFile(changed); len(now) != len(unsigned) || bytes.Equal(now, unsigned) {
		t.Error("the refused bundle is not the changed original")
	}
	if _, err := os.Stat(bundle.SignatureSidecarPath(changed)); !errors.Is(err, os.ErrNotExist) {
		t.Error("a refused signing wrote a signature sidecar")
	}
}
