package mirror_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/regclient/regclient/types/descriptor"
	"github.com/regclient/regclient/types/manifest"
	"github.com/regclient/regclient/types/ref"

	"github.com/refdoctor/refdoctor/internal/craft"
	"github.com/refdoctor/refdoctor/lab"
	"github.com/refdoctor/refdoctor/lab/labtest"
	"github.com/refdoctor/refdoctor/mirror"
	"github.com/refdoctor/refdoctor/registry"
)

// TestExportRefusesAnAmbiguousManifest: a registry (olareg, which reads
// manifests with Go's decoder and stores the bytes as pushed) serves an
// image whose manifest names its layers twice, as "layers" and
// "Layers". A bundle holding it would fail validation on the far side
// (AmbiguousDocument) after being carried across; export says so at once,
// naming the image and the key, and writes nothing.
func TestExportRefusesAnAmbiguousManifest(t *testing.T) {
	t.Parallel()
	l := labtest.StartT(t, lab.Spec{Name: "source", Profile: lab.ProfileOCI11, NoSeed: true})
	src, _ := l.Get("source")
	c, err := registry.New(l.Config(), registry.WithoutDockerCreds())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	repo, err := ref.New(src.Host + "/odd/app")
	if err != nil {
		t.Fatal(err)
	}
	img, served := craft.LayersTwice()
	for _, b := range [][]byte{img.Config, img.Layer, served} {
		if _, err := c.BlobPut(ctx, repo, descriptor.Descriptor{Digest: digest.FromBytes(b), Size: int64(len(b))}, bytes.NewReader(b)); err != nil {
			t.Fatal(err)
		}
	}
	raw := img.Manifest
	m, err := manifest.New(manifest.WithRaw(raw), manifest.WithDesc(descriptor.Descriptor{
		MediaType: craft.MediaManifest, Digest: digest.FromBytes(raw), Size: int64(len(raw))}))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.ManifestPut(ctx, repo.SetTag("v1"), m); err != nil {
		t.Fatalf("the registry refuses the manifest: %v", err)
	}
	out := filepath.Join(t.TempDir(), "b.tgz")
	_, err = mirror.Export(ctx, env(l.Config(), l.ClientOpts()...), out, []string{repo.SetTag("v1").CommonName()})
	if !errors.Is(err, mirror.ErrAmbiguousManifest) {
		t.Fatalf("export of an ambiguous manifest: %v", err)
	}
	for _, want := range []string{"odd/app@" + craft.Digest(raw), `"Layers"`, "AmbiguousDocument", "publisher"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error lacks %q: %v", want, err)
		}
	}
	for _, p := range []string{out, out + ".sha256"} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s exists after a refused export", p)
		}
	}
}
