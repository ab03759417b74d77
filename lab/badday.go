package lab

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	olaregtypes "github.com/olareg/olareg/types"
	"github.com/opencontainers/go-digest"
	"github.com/regclient/regclient/types/descriptor"
	"github.com/regclient/regclient/types/mediatype"
	v1 "github.com/regclient/regclient/types/oci/v1"
	"github.com/regclient/regclient/types/platform"
)

// BadDayRepository holds, tagged SeedTag, the image whose referrers a
// bad-day profile is about (Registry.Subject): 600 referrers on
// link-pages, 12 on link-loop, 22,000 on huge-index. The image is the same
// on every registry that has one. The repository is loaded on its first
// use, so a lab whose tests or demo never ask for it does not pay for it.
const BadDayRepository = "demo/bad-day"

// How many referrers the bad-day subjects carry and how they page.
const (
	linkPagesReferrers = 600
	linkPagesPerPage   = 5
	linkLoopReferrers  = 12
	linkLoopPerPage    = 3
	// hugeIndexReal referrers are pushed for real; the layer appends
	// generated descriptors up to HugeIndexReferrers.
	hugeIndexReal = 3
	// HugeIndexReferrers is how many descriptors huge-index lists for its
	// subject.
	HugeIndexReferrers = 22000

	// annotationGenerated marks the descriptors huge-index makes up; its
	// value numbers them.
	annotationGenerated = "dev.refdoctor.lab.generated"
)

// badDay is a profile's own subject and its referrers, built in memory
// (deterministically, with no registry at hand) so that the subject's
// digest and olareg's page limit are known before olareg starts, and
// handed to olareg as an OCI layout (writeLayout).
type badDay struct {
	blobs     []blobContent
	subject   rawManifest
	referrers []rawManifest
	// pageLimit is the olareg Referrer.Limit that puts exactly perPage of
	// these referrers on each page, or 0 when they need not page.
	pageLimit int64
	perPage   int
}

type blobContent struct{ data []byte }

type rawManifest struct {
	mediaType string
	raw       []byte
	digest    string
}

func newRawManifest(mediaType string, v any) rawManifest {
	raw := mustJSON(v)
	return rawManifest{mediaType: mediaType, raw: raw, digest: digest.FromBytes(raw).String()}
}

// descriptor is the manifest's descriptor, as a subject names it.
func (m rawManifest) descriptor() descriptor.Descriptor {
	return descriptor.Descriptor{MediaType: m.mediaType, Digest: digest.Digest(m.digest), Size: int64(len(m.raw))}
}

// newBadDay builds the bad-day subject (a small linux/amd64 image) and n
// CycloneDX referrers of it. Referrer i differs from the others only by
// the zero-padded number in its annotation, so every referrer's
// descriptor has the same length and olareg's byte limit pages them
// evenly: perPage to a page when perPage is positive.
func newBadDay(n, perPage int) (*badDay, error) {
	layerData, err := tarLayer("etc/refdoctor-bad-day", "refdoctor lab: the subject of a bad day\n")
	if err != nil {
		return nil, err
	}
	created := seedCreated
	cfgData := mustJSON(v1.Image{
		Created:  &created,
		Platform: platform.Platform{OS: "linux", Architecture: "amd64"},
		Config:   v1.ImageConfig{Cmd: []string{"/bin/sh"}},
		RootFS:   v1.RootFS{Type: "layers", DiffIDs: []digest.Digest{digest.FromBytes(layerData)}},
	})
	sbom := mustJSON(map[string]any{"bomFormat": "CycloneDX", "specVersion": "1.5", "version": 1,
		"metadata": map[string]any{"component": map[string]any{"type": "container", "name": BadDayRepository, "version": SeedTag}}})
	b := &badDay{perPage: perPage, blobs: []blobContent{{layerData}, {cfgData}, {descriptor.EmptyData}, {sbom}}}
	b.subject = newRawManifest(mediatype.OCI1Manifest, v1.Manifest{
		Versioned:   v1.ManifestSchemaVersion,
		MediaType:   mediatype.OCI1Manifest,
		Config:      descriptor.Descriptor{MediaType: mediatype.OCI1ImageConfig, Digest: digest.FromBytes(cfgData), Size: int64(len(cfgData))},
		Layers:      []descriptor.Descriptor{{MediaType: mediatype.OCI1Layer, Digest: digest.FromBytes(layerData), Size: int64(len(layerData))}},
		Annotations: map[string]string{annotationCreated: seedCreated.Format(time.RFC3339)},
	})
	subject := b.subject.descriptor()
	empty := descriptor.Descriptor{MediaType: mediatype.OCI1Empty, Digest: descriptor.EmptyDigest, Size: int64(len(descriptor.EmptyData))}
	layer := descriptor.Descriptor{MediaType: ArtifactTypeCycloneDX, Digest: digest.FromBytes(sbom), Size: int64(len(sbom))}
	for i := range n {
		b.referrers = append(b.referrers, newRawManifest(mediatype.OCI1Manifest, v1.Manifest{
			Versioned:    v1.ManifestSchemaVersion,
			MediaType:    mediatype.OCI1Manifest,
			ArtifactType: ArtifactTypeCycloneDX,
			Config:       empty,
			Layers:       []descriptor.Descriptor{layer},
			Subject:      &subject,
			Annotations: map[string]string{
				annotationCreated: seedCreated.Format(time.RFC3339),
				annotationIndex:   fmt.Sprintf("%04d", i),
			},
		}))
	}
	if perPage > 0 {
		if b.pageLimit, err = olaregPageLimit(b.referrers, perPage); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// olaregPageLimit is the byte size of the referrers page olareg builds
// from the first perPage referrers: with it as Referrer.Limit, olareg's
// own splitting (referrerSplit in olareg v0.2.2: add descriptors while the
// page's JSON stays within the limit) puts exactly perPage equal-length
// descriptors on every page. It marshals olareg's own types, so the
// lengths are olareg's.
func olaregPageLimit(refs []rawManifest, perPage int) (int64, error) {
	if len(refs) <= perPage {
		return 0, fmt.Errorf("lab: %d referrers do not fill more than one page of %d", len(refs), perPage)
	}
	descs := make([]olaregtypes.Descriptor, perPage+1)
	for i := range descs {
		var m struct {
			ArtifactType string            `json:"artifactType"`
			Annotations  map[string]string `json:"annotations"`
		}
		if err := json.Unmarshal(refs[i].raw, &m); err != nil {
			return 0, err
		}
		// The descriptor olareg's manifest PUT records for a referrer.
		d := mustJSON(map[string]any{
			"mediaType": refs[i].mediaType, "digest": refs[i].digest, "size": len(refs[i].raw),
			"artifactType": m.ArtifactType, "annotations": m.Annotations,
		})
		if err := json.Unmarshal(d, &descs[i]); err != nil {
			return 0, err
		}
	}
	page := func(n int) int64 {
		return int64(len(mustJSON(olaregtypes.Index{SchemaVersion: 2, MediaType: olaregtypes.MediaTypeOCI1ManifestList, Manifests: descs[:n]})))
	}
	limit := page(perPage)
	if page(perPage+1) <= limit {
		return 0, fmt.Errorf("lab: referrer descriptors of zero length")
	}
	return limit, nil
}

// writeLayout writes the bad-day subject and its referrers as an OCI
// layout for repository BadDayRepository under root, the way a layout
// without a referrers API keeps them: the referrers in the fallback index
// tagged sha256-<hex> of the subject. An olareg whose store has root as
// its RootDir loads the layout when the repository is first used and, its
// referrers API being on, converts that fallback index into its referrers
// list in one pass (olareg v0.2.2, internal/store indexIngest): the tag
// becomes the list, and no tag is left. Pushing the referrers one by one
// instead costs olareg a rewrite of the whole list per push. The files
// are many small ones (600 for link-pages: 0.1 to 0.4 s on the disks
// measured), which is why the repository is loaded on first use.
func (b *badDay) writeLayout(root string) error {
	dir := filepath.Join(root, filepath.FromSlash(BadDayRepository))
	blobs := filepath.Join(dir, "blobs", "sha256")
	if err := os.MkdirAll(blobs, 0o750); err != nil {
		return err
	}
	write := func(data []byte) error {
		return os.WriteFile(filepath.Join(blobs, digest.FromBytes(data).Encoded()), data, 0o600)
	}
	for _, bl := range b.blobs {
		if err := write(bl.data); err != nil {
			return err
		}
	}
	fallback := v1.Index{Versioned: v1.IndexSchemaVersion, MediaType: mediatype.OCI1ManifestList, Manifests: []descriptor.Descriptor{}}
	for _, m := range append([]rawManifest{b.subject}, b.referrers...) {
		if err := write(m.raw); err != nil {
			return err
		}
	}
	for _, m := range b.referrers {
		var fields struct {
			ArtifactType string            `json:"artifactType"`
			Annotations  map[string]string `json:"annotations"`
		}
		if err := json.Unmarshal(m.raw, &fields); err != nil {
			return err
		}
		d := m.descriptor()
		d.ArtifactType, d.Annotations = fields.ArtifactType, fields.Annotations
		fallback.Manifests = append(fallback.Manifests, d)
	}
	fb := newRawManifest(mediatype.OCI1ManifestList, fallback)
	if err := write(fb.raw); err != nil {
		return err
	}
	tagged := func(m rawManifest, tag string) descriptor.Descriptor {
		d := m.descriptor()
		d.Annotations = map[string]string{"org.opencontainers.image.ref.name": tag}
		return d
	}
	index := v1.Index{Versioned: v1.IndexSchemaVersion, MediaType: mediatype.OCI1ManifestList, Manifests: []descriptor.Descriptor{
		tagged(b.subject, SeedTag),
		tagged(fb, strings.Replace(b.subject.digest, ":", "-", 1)),
	}}
	if err := os.WriteFile(filepath.Join(dir, "index.json"), mustJSON(index), 0o600); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o600)
}

// inProcess talks to olareg's handler directly, without a network or a
// client: the lab reads olareg's own replies this way and pushes the
// rewritten fallback indexes of ProfileMislabelledFallback, through
// olareg's own API handlers, so they land where a push would put them.
type inProcess struct {
	h    http.Handler
	repo string
}

func (p inProcess) do(ctx context.Context, method, path string, header http.Header, body []byte) *httptest.ResponseRecorder {
	req := httptest.NewRequestWithContext(ctx, method, path, bytes.NewReader(body))
	for k, v := range header {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	p.h.ServeHTTP(rec, req)
	return rec
}

func (p inProcess) manifest(ctx context.Context, reference string, m rawManifest) error {
	rec := p.do(ctx, http.MethodPut, "/v2/"+p.repo+"/manifests/"+reference,
		http.Header{"Content-Type": {m.mediaType}}, m.raw)
	if rec.Code != http.StatusCreated {
		return fmt.Errorf("push manifest %s: status %d: %s", reference, rec.Code, strings.TrimSpace(rec.Body.String()))
	}
	return nil
}

func (p inProcess) get(ctx context.Context, path, accept string) *httptest.ResponseRecorder {
	return p.do(ctx, http.MethodGet, path, http.Header{"Accept": {accept}}, nil)
}

// check asks olareg, in process, for the subject's first referrers page
// and checks that it lists what the layout promised: perPage referrers and
// a Link to the next page when they page, all of them otherwise.
func (b *badDay) check(ctx context.Context, h http.Handler) error {
	rec := inProcess{h: h, repo: BadDayRepository}.get(ctx, "/v2/"+BadDayRepository+"/referrers/"+b.subject.digest, mediatype.OCI1ManifestList)
	var page struct {
		Manifests []json.RawMessage `json:"manifests"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &page); err != nil || rec.Code != http.StatusOK {
		return fmt.Errorf("referrers of %s:%s: status %d: %v", BadDayRepository, SeedTag, rec.Code, err)
	}
	want, link := len(b.referrers), rec.Header().Get("Link")
	if b.perPage > 0 {
		want = b.perPage
	}
	if len(page.Manifests) != want || (b.perPage > 0) != (link != "") {
		return fmt.Errorf("olareg lists %d referrers of %s:%s on the first page (Link %q), want %d", len(page.Manifests), BadDayRepository, SeedTag, link, want)
	}
	return nil
}

// mislabelFallbackTags rewrites the fallback index of every seeded subject
// as cosign writes it on GHCR: each entry's artifactType becomes the empty
// config type. The index is pushed back under its tag, so the registry
// stores and serves it as written.
func mislabelFallbackTags(ctx context.Context, h http.Handler, seed Seed) error {
	p := inProcess{h: h, repo: seed.Repository}
	subjects := []string{seed.Index}
	for _, r := range seed.Referrers {
		if !slices.Contains(subjects, r.Subject) {
			subjects = append(subjects, r.Subject)
		}
	}
	for _, s := range subjects {
		tag := strings.Replace(s, ":", "-", 1)
		rec := p.get(ctx, "/v2/"+seed.Repository+"/manifests/"+tag, mediatype.OCI1ManifestList)
		if rec.Code != http.StatusOK {
			return fmt.Errorf("fallback tag %s: status %d", tag, rec.Code)
		}
		var idx v1.Index
		if err := json.Unmarshal(rec.Body.Bytes(), &idx); err != nil {
			return fmt.Errorf("fallback tag %s: %w", tag, err)
		}
		for i := range idx.Manifests {
			idx.Manifests[i].ArtifactType = mediatype.OCI1Empty
		}
		if err := p.manifest(ctx, tag, newRawManifest(mediatype.OCI1ManifestList, idx)); err != nil {
			return err
		}
	}
	return nil
}
