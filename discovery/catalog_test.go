package discovery_test

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/regclient/regclient/types/descriptor"
	"github.com/regclient/regclient/types/manifest"
	"github.com/regclient/regclient/types/mediatype"
	v1 "github.com/regclient/regclient/types/oci/v1"
	"github.com/regclient/regclient/types/ref"

	"github.com/refdoctor/refdoctor/config"
	"github.com/refdoctor/refdoctor/discovery"
	"github.com/refdoctor/refdoctor/finding"
	"github.com/refdoctor/refdoctor/lab/labtest"
	"github.com/refdoctor/refdoctor/registry"
)

// TestListRepositories reads docker-registry's catalog over several pages
// (150 repositories, pages of 100), and says why the catalog of
// docker-registry behind htpasswd cannot be read without a login.
func TestListRepositories(t *testing.T) {
	t.Parallel()
	d := labtest.StartDistributionT(t)
	cfg := config.Defaults()
	cfg.Registries = []config.Registry{{Host: d.Host, PlainHTTP: true}}
	c, err := registry.New(cfg, registry.WithoutDockerCreds())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	configBlob := []byte("{}")
	var want []string
	for i := range 150 {
		repo := fmt.Sprintf("team%03d/app", i)
		want = append(want, repo)
		r, err := ref.New(d.Host + "/" + repo + ":v1")
		if err != nil {
			t.Fatal(err)
		}
		cd := descriptor.Descriptor{MediaType: mediatype.OCI1ImageConfig, Digest: digest.FromBytes(configBlob), Size: int64(len(configBlob))}
		if _, err := c.BlobPut(ctx, r, cd, bytesReader(configBlob)); err != nil {
			t.Fatal(err)
		}
		m, err := manifest.New(manifest.WithOrig(v1.Manifest{Versioned: v1.ManifestSchemaVersion, MediaType: mediatype.OCI1Manifest, Config: cd, Layers: []descriptor.Descriptor{}}))
		if err != nil {
			t.Fatal(err)
		}
		if err := c.ManifestPut(ctx, r, m); err != nil {
			t.Fatal(err)
		}
	}
	cat, err := discovery.ListRepositories(ctx, d.Host, discovery.WithConfig(cfg), discovery.WithClientOpts(registry.WithoutDockerCreds()), discovery.WithTimeout(30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if !cat.Complete || !slices.Equal(cat.Repositories, want) || len(cat.Findings) != 0 {
		t.Fatalf("catalog: complete %v, %d repositories, findings %+v", cat.Complete, len(cat.Repositories), cat.Findings)
	}
	if cat.Requests < 2 {
		t.Errorf("%d requests: the catalog was not read page by page", cat.Requests)
	}

	locked, _ := labtest.StartDistributionWithLoginT(t)
	lcfg := config.Defaults()
	lcfg.Registries = []config.Registry{{Host: locked.Host, PlainHTTP: true}}
	cat, err = discovery.ListRepositories(ctx, locked.Host, discovery.WithConfig(lcfg), discovery.WithClientOpts(registry.WithoutDockerCreds()), discovery.WithTimeout(30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if cat.Complete || len(cat.Repositories) != 0 || len(cat.Findings) != 1 || cat.Findings[0].Code != finding.CatalogUnavailable {
		t.Fatalf("catalog without a login: %+v", cat)
	}
	if _, err := discovery.ListRepositories(ctx, "https://x"); err == nil {
		t.Error("a URL was taken for a host")
	}
}

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }
