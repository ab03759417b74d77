package lab

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/regclient/regclient"
	"github.com/regclient/regclient/types/descriptor"
	"github.com/regclient/regclient/types/manifest"
	"github.com/regclient/regclient/types/mediatype"
	v1 "github.com/regclient/regclient/types/oci/v1"
	"github.com/regclient/regclient/types/platform"
	"github.com/regclient/regclient/types/ref"

	"github.com/refdoctor/refdoctor/registry"
)

// What the seed puts where.
const (
	SeedRepository       = "demo/app"
	SeedSingleRepository = "demo/single"
	SeedTag              = "v1"
)

// Categories of seeded referrers, as the bundle manifest names them.
const (
	CategorySBOM        = "sbom"
	CategorySignature   = "signature"
	CategoryAttestation = "attestation"
)

// Artifact and layer media types the seed uses.
const (
	ArtifactTypeCycloneDX = "application/vnd.cyclonedx+json"
	ArtifactTypeSPDX      = "application/spdx+json"
	ArtifactTypeNotary    = "application/vnd.cncf.notary.signature"
	ArtifactTypeInToto    = "application/vnd.in-toto+json"

	mediaTypeJOSE         = "application/jose+json"
	mediaTypeSimpleSign   = "application/vnd.dev.cosign.simplesigning.v1+json"
	mediaTypeDSSE         = "application/vnd.dsse.envelope.v1+json"
	annotationCreated     = "org.opencontainers.image.created"
	annotationCosignSig   = "dev.cosignproject.cosign/signature"
	annotationNotaryThumb = "io.cncf.notary.x509chain.thumbprint#S256"
)

// seedCreated is the one timestamp in the seed: fixed, so that every
// registry seeded at any time holds the same digests.
var seedCreated = time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC)

// Seed is what SeedInto pushed. Content is deterministic, so every seeded
// registry holds the same digests.
type Seed struct {
	Repository string // "demo/app"
	Tag        string // "v1"
	// Index is the digest of the multi-platform OCI index tagged Tag.
	Index string
	// Platforms maps "linux/amd64" and "linux/arm64" to manifest digests.
	Platforms map[string]string
	// Referrers are the manifests with a subject: three on the index, one
	// on the linux/amd64 manifest ("referrers on the wrong digest").
	Referrers []SeededReferrer
	// CosignTags are the legacy cosign tags on the index digest:
	// sha256-<hex>.sig, .att and .sbom.
	CosignTags []string
	// Single is the digest of demo/single:v1, a single-platform image with
	// no referrers at all.
	Single string
}

// SeededReferrer is one referrer manifest the seed pushed.
type SeededReferrer struct {
	Digest, ArtifactType, Subject, Category, MediaType string
	Size                                               int64
}

// Ref is the seeded tag on host, e.g. "127.0.0.1:5000/demo/app:v1".
func (s Seed) Ref(host string) string { return host + "/" + s.Repository + ":" + s.Tag }

// IndexRef is the seeded index by digest on host.
func (s Seed) IndexRef(host string) string { return host + "/" + s.Repository + "@" + s.Index }

// ReferrersOf lists the seeded referrers whose subject is subject.
func (s Seed) ReferrersOf(subject string) []SeededReferrer {
	var out []SeededReferrer
	for _, r := range s.Referrers {
		if r.Subject == subject {
			out = append(out, r)
		}
	}
	return out
}

// SeedInto pushes the demo content into host with c: demo/app:v1 (an
// index of linux/amd64 and linux/arm64), three referrers of the index, one
// of the amd64 manifest, cosign tags on the index, and demo/single:v1.
// Referrers are pushed by digest, as an attaching tool would, so a
// registry without the referrers API ends up with regclient's fallback tag
// sha256-<hex> and one with the API does not. It works against any
// registry (the lab's and an out-of-process docker-registry alike).
func SeedInto(ctx context.Context, c *registry.Client, host string) (Seed, error) {
	app, err := ref.New(host + "/" + SeedRepository)
	if err != nil {
		return Seed{}, fmt.Errorf("seed ref: %w", err)
	}
	single, err := ref.New(host + "/" + SeedSingleRepository)
	if err != nil {
		return Seed{}, fmt.Errorf("seed ref: %w", err)
	}
	p := pusher{ctx: ctx, c: c}
	seed := Seed{Repository: SeedRepository, Tag: SeedTag, Platforms: map[string]string{}}

	// The multi-platform image.
	var children []descriptor.Descriptor
	for _, arch := range []string{"amd64", "arm64"} {
		d, err := p.image(app, "", arch, fmt.Sprintf("refdoctor demo app for linux/%s\n", arch))
		if err != nil {
			return Seed{}, err
		}
		plat := platform.Platform{OS: "linux", Architecture: arch}
		d.Platform = &plat
		children = append(children, d)
		seed.Platforms[plat.String()] = d.Digest.String()
	}
	index := v1.Index{
		Versioned:   v1.IndexSchemaVersion,
		MediaType:   mediatype.OCI1ManifestList,
		Manifests:   children,
		Annotations: map[string]string{annotationCreated: seedCreated.Format(time.RFC3339)},
	}
	indexDesc, err := p.manifest(app, SeedTag, index)
	if err != nil {
		return Seed{}, err
	}
	seed.Index = indexDesc.Digest.String()
	subject := descriptor.Descriptor{MediaType: indexDesc.MediaType, Digest: indexDesc.Digest, Size: indexDesc.Size}
	amd64 := descriptor.Descriptor{MediaType: children[0].MediaType, Digest: children[0].Digest, Size: children[0].Size}

	// Referrers: the index's three, then the one on the platform manifest.
	if _, err := p.blob(app, mediatype.OCI1Empty, descriptor.EmptyData); err != nil {
		return Seed{}, err
	}
	for _, a := range seedArtifacts(subject, amd64) {
		d, err := p.referrer(app, a)
		if err != nil {
			return Seed{}, err
		}
		seed.Referrers = append(seed.Referrers, SeededReferrer{
			Digest:       d.Digest.String(),
			ArtifactType: a.artifactType,
			Subject:      a.subject.Digest.String(),
			Category:     a.category,
			MediaType:    d.MediaType,
			Size:         d.Size,
		})
	}

	// Cosign's legacy tags: no subject, found only by tag name.
	tagBase := "sha256-" + subject.Digest.Encoded()
	for _, ct := range cosignArtifacts(subject) {
		tag := tagBase + "." + ct.suffix
		if err := p.cosign(app, tag, ct); err != nil {
			return Seed{}, err
		}
		seed.CosignTags = append(seed.CosignTags, tag)
	}

	// A plain single-platform image with nothing attached.
	sd, err := p.image(single, SeedTag, "amd64", "refdoctor demo single-platform image\n")
	if err != nil {
		return Seed{}, err
	}
	seed.Single = sd.Digest.String()
	return seed, nil
}

// pusher pushes blobs and manifests with one client.
type pusher struct {
	ctx context.Context
	c   *registry.Client
}

func (p *pusher) blob(r ref.Ref, mediaType string, data []byte) (descriptor.Descriptor, error) {
	d := descriptor.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(data), Size: int64(len(data))}
	if _, err := p.c.BlobPut(p.ctx, r, d, bytes.NewReader(data)); err != nil {
		return d, fmt.Errorf("push blob %s to %s: %w", d.Digest, r.CommonName(), err)
	}
	return d, nil
}

// manifest pushes orig to r by tag, or by digest when tag is empty.
func (p *pusher) manifest(r ref.Ref, tag string, orig any) (descriptor.Descriptor, error) {
	m, err := manifest.New(manifest.WithOrig(orig))
	if err != nil {
		return descriptor.Descriptor{}, fmt.Errorf("build manifest: %w", err)
	}
	d := m.GetDescriptor()
	if tag != "" {
		r = r.SetTag(tag)
	} else {
		r = r.SetDigest(d.Digest.String())
	}
	if err := p.c.ManifestPut(p.ctx, r, m); err != nil {
		return d, fmt.Errorf("push manifest %s: %w", r.CommonName(), err)
	}
	return descriptor.Descriptor{MediaType: d.MediaType, Digest: d.Digest, Size: d.Size}, nil
}

// image pushes a one-layer linux image for arch whose only file holds
// text, tagged tag (or untagged when tag is empty), and returns its
// manifest descriptor.
func (p *pusher) image(r ref.Ref, tag, arch, text string) (descriptor.Descriptor, error) {
	layerData, err := tarLayer("etc/refdoctor-demo", text)
	if err != nil {
		return descriptor.Descriptor{}, err
	}
	layer, err := p.blob(r, mediatype.OCI1Layer, layerData)
	if err != nil {
		return descriptor.Descriptor{}, err
	}
	created := seedCreated
	cfg := v1.Image{
		Created:  &created,
		Platform: platform.Platform{OS: "linux", Architecture: arch},
		Config: v1.ImageConfig{
			Env:    []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
			Cmd:    []string{"/bin/sh"},
			Labels: map[string]string{"org.opencontainers.image.title": "refdoctor demo"},
		},
		RootFS:  v1.RootFS{Type: "layers", DiffIDs: []digest.Digest{layer.Digest}},
		History: []v1.History{{Created: &created, CreatedBy: "COPY refdoctor-demo /etc/ # refdoctor lab"}},
	}
	cfgData, err := json.Marshal(cfg)
	if err != nil {
		return descriptor.Descriptor{}, fmt.Errorf("image config: %w", err)
	}
	cfgDesc, err := p.blob(r, mediatype.OCI1ImageConfig, cfgData)
	if err != nil {
		return descriptor.Descriptor{}, err
	}
	return p.manifest(r, tag, v1.Manifest{
		Versioned:   v1.ManifestSchemaVersion,
		MediaType:   mediatype.OCI1Manifest,
		Config:      cfgDesc,
		Layers:      []descriptor.Descriptor{layer},
		Annotations: map[string]string{annotationCreated: seedCreated.Format(time.RFC3339)},
	})
}

// artifact is one referrer to push.
type artifact struct {
	artifactType string
	category     string
	subject      descriptor.Descriptor
	layerType    string
	layer        []byte
	annotations  map[string]string
}

// referrer pushes a referrer manifest (empty config, one layer, subject)
// by digest, as oras attach or notation sign would.
func (p *pusher) referrer(r ref.Ref, a artifact) (descriptor.Descriptor, error) {
	layer, err := p.blob(r, a.layerType, a.layer)
	if err != nil {
		return descriptor.Descriptor{}, err
	}
	annotations := map[string]string{annotationCreated: seedCreated.Format(time.RFC3339)}
	for k, v := range a.annotations {
		annotations[k] = v
	}
	subject := a.subject
	return p.manifest(r, "", v1.Manifest{
		Versioned:    v1.ManifestSchemaVersion,
		MediaType:    mediatype.OCI1Manifest,
		ArtifactType: a.artifactType,
		Config:       descriptor.Descriptor{MediaType: mediatype.OCI1Empty, Digest: descriptor.EmptyDigest, Size: int64(len(descriptor.EmptyData))},
		Layers:       []descriptor.Descriptor{layer},
		Subject:      &subject,
		Annotations:  annotations,
	})
}

// seedArtifacts are the referrers of the seed, in push order.
func seedArtifacts(index, amd64 descriptor.Descriptor) []artifact {
	created := seedCreated.Format(time.RFC3339)
	cyclonedx := mustJSON(map[string]any{
		"bomFormat":    "CycloneDX",
		"specVersion":  "1.5",
		"serialNumber": "urn:uuid:7d1f5a44-0c4f-4b8e-9a55-6f3c2e1d0a01",
		"version":      1,
		"metadata": map[string]any{
			"timestamp": created,
			"tools":     map[string]any{"components": []any{map[string]any{"type": "application", "name": "refdoctor-lab"}}},
			"component": map[string]any{"type": "container", "name": SeedRepository, "version": SeedTag},
		},
		"components": []any{map[string]any{"type": "file", "name": "/etc/refdoctor-demo"}},
	})
	jwsPayload := base64.RawURLEncoding.EncodeToString(mustJSON(map[string]any{
		"targetArtifact": map[string]any{"mediaType": index.MediaType, "digest": index.Digest.String(), "size": index.Size},
	}))
	notary := mustJSON(map[string]any{
		"payload":   jwsPayload,
		"protected": base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"ES256","cty":"application/vnd.cncf.notary.payload.v1+json","io.cncf.notary.signingScheme":"notary.x509"}`)),
		"header":    map[string]any{"x5c": []string{}},
		"signature": base64.RawURLEncoding.EncodeToString([]byte("refdoctor lab signature: not a real signature")),
	})
	thumb := sha256.Sum256([]byte("refdoctor lab signing certificate"))
	return []artifact{
		{
			artifactType: ArtifactTypeCycloneDX, category: CategorySBOM, subject: index,
			layerType: ArtifactTypeCycloneDX, layer: cyclonedx,
			annotations: map[string]string{"org.opencontainers.image.description": "CycloneDX SBOM of demo/app:v1"},
		},
		{
			artifactType: ArtifactTypeNotary, category: CategorySignature, subject: index,
			layerType: mediaTypeJOSE, layer: notary,
			annotations: map[string]string{annotationNotaryThumb: `["` + hex.EncodeToString(thumb[:]) + `"]`},
		},
		{
			artifactType: ArtifactTypeInToto, category: CategoryAttestation, subject: index,
			layerType: ArtifactTypeInToto, layer: inTotoStatement(index.Digest, "https://slsa.dev/provenance/v1"),
			annotations: map[string]string{"in-toto.io/predicate-type": "https://slsa.dev/provenance/v1"},
		},
		{
			artifactType: ArtifactTypeSPDX, category: CategorySBOM, subject: amd64,
			layerType: ArtifactTypeSPDX, layer: spdxDocument("demo/app linux/amd64", amd64.Digest),
			annotations: map[string]string{"org.opencontainers.image.description": "SPDX SBOM of the linux/amd64 image only"},
		},
	}
}

// cosignArtifact is one legacy cosign tag's content.
type cosignArtifact struct {
	suffix      string // sig, att, sbom
	layerType   string
	layer       []byte
	annotations map[string]string
}

func cosignArtifacts(index descriptor.Descriptor) []cosignArtifact {
	simpleSigning := mustJSON(map[string]any{
		"critical": map[string]any{
			"identity": map[string]any{"docker-reference": SeedRepository},
			"image":    map[string]any{"docker-manifest-digest": index.Digest.String()},
			"type":     "cosign container image signature",
		},
		"optional": nil,
	})
	envelope := mustJSON(map[string]any{
		"payloadType": ArtifactTypeInToto,
		"payload":     base64.StdEncoding.EncodeToString(inTotoStatement(index.Digest, "https://slsa.dev/provenance/v0.2")),
		"signatures":  []any{map[string]any{"keyid": "", "sig": base64.StdEncoding.EncodeToString([]byte("refdoctor lab: not a real signature"))}},
	})
	return []cosignArtifact{
		{suffix: "sig", layerType: mediaTypeSimpleSign, layer: simpleSigning, annotations: map[string]string{
			annotationCosignSig: base64.StdEncoding.EncodeToString([]byte("refdoctor lab cosign signature: not a real signature")),
		}},
		{suffix: "att", layerType: mediaTypeDSSE, layer: envelope, annotations: map[string]string{
			"predicateType": "https://slsa.dev/provenance/v0.2",
		}},
		{suffix: "sbom", layerType: ArtifactTypeSPDX, layer: spdxDocument("demo/app", index.Digest)},
	}
}

// cosign pushes a cosign-style manifest: an image config naming the one
// layer, the layer carrying the payload, and no subject.
func (p *pusher) cosign(r ref.Ref, tag string, ct cosignArtifact) error {
	layer, err := p.blob(r, ct.layerType, ct.layer)
	if err != nil {
		return err
	}
	layer.Annotations = ct.annotations
	cfg := mustJSON(map[string]any{
		"architecture": "",
		"os":           "",
		"created":      "0001-01-01T00:00:00Z",
		"history":      []any{map[string]any{"created": "0001-01-01T00:00:00Z"}},
		"rootfs":       map[string]any{"type": "layers", "diff_ids": []string{layer.Digest.String()}},
		"config":       map[string]any{},
	})
	cfgDesc, err := p.blob(r, mediatype.OCI1ImageConfig, cfg)
	if err != nil {
		return err
	}
	_, err = p.manifest(r, tag, v1.Manifest{
		Versioned: v1.ManifestSchemaVersion,
		MediaType: mediatype.OCI1Manifest,
		Config:    cfgDesc,
		Layers:    []descriptor.Descriptor{layer},
	})
	return err
}

func inTotoStatement(subject digest.Digest, predicateType string) []byte {
	return mustJSON(map[string]any{
		"_type":         "https://in-toto.io/Statement/v1",
		"subject":       []any{map[string]any{"name": SeedRepository, "digest": map[string]string{"sha256": subject.Encoded()}}},
		"predicateType": predicateType,
		"predicate": map[string]any{
			"buildDefinition": map[string]any{"buildType": "https://example.com/refdoctor-lab/build/v1", "externalParameters": map[string]any{}},
			"runDetails":      map[string]any{"builder": map[string]any{"id": "https://example.com/refdoctor-lab/builder"}},
		},
	})
}

func spdxDocument(name string, subject digest.Digest) []byte {
	return mustJSON(map[string]any{
		"spdxVersion":       "SPDX-2.3",
		"dataLicense":       "CC0-1.0",
		"SPDXID":            "SPDXRef-DOCUMENT",
		"name":              name,
		"documentNamespace": "https://example.com/refdoctor-lab/spdx/" + strings.ReplaceAll(name, " ", "-") + "/" + subject.Encoded()[:12],
		"creationInfo":      map[string]any{"created": seedCreated.Format(time.RFC3339), "creators": []string{"Tool: refdoctor-lab"}},
		"packages": []any{map[string]any{
			"SPDXID": "SPDXRef-Package-refdoctor-demo", "name": "refdoctor-demo", "versionInfo": SeedTag,
			"downloadLocation": "NOASSERTION",
		}},
	})
}

// tarLayer is an uncompressed tar with one file under a directory.
// Uncompressed, so that no compressor version can change a digest.
func tarLayer(name, content string) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dir := name[:strings.LastIndex(name, "/")+1]
	headers := []*tar.Header{
		{Name: dir, Typeflag: tar.TypeDir, Mode: 0o755, ModTime: seedCreated, Format: tar.FormatUSTAR},
		{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(content)), ModTime: seedCreated, Format: tar.FormatUSTAR},
	}
	for _, h := range headers {
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("layer tar: %w", err)
		}
	}
	if _, err := tw.Write([]byte(content)); err != nil {
		return nil, fmt.Errorf("layer tar: %w", err)
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("layer tar: %w", err)
	}
	return buf.Bytes(), nil
}

// mustJSON marshals values built in this file from maps, strings and
// numbers only, which cannot fail; maps marshal with sorted keys, so the
// bytes are deterministic.
func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("lab seed: %v", err))
	}
	return b
}

// Attach pushes one more referrer into a running lab registry: an
// artifact manifest of artifactType whose one layer holds data, with the
// manifest subject (a digest in repository) as its subject. It returns
// the new referrer's digest. Tests use it for referrers of referrers and
// for lists long enough to page. It goes through the registry's
// behaviour layer like any client, so it fails where a client would
// (auth-refuse, a spent rate budget, an untrusted certificate), and on a
// registry without the referrers API regclient updates the fallback tag.
func Attach(ctx context.Context, l *Lab, host, repository, subject, artifactType string, data []byte) (string, error) {
	c, done, err := l.attachClient(host)
	if err != nil {
		return "", fmt.Errorf("attach: %w", err)
	}
	defer done()
	return AttachWith(ctx, c, host, repository, subject, artifactType, data)
}

// AttachWith is Attach through a client of the caller's, for registries
// outside the lab (docker-registry as a process).
func AttachWith(ctx context.Context, c *registry.Client, host, repository, subject, artifactType string, data []byte) (string, error) {
	r, sd, err := attachSubject(ctx, c, host, repository, subject)
	if err != nil {
		return "", fmt.Errorf("attach: %w", err)
	}
	p := pusher{ctx: ctx, c: c}
	if _, err := p.blob(r, mediatype.OCI1Empty, descriptor.EmptyData); err != nil {
		return "", fmt.Errorf("attach: %w", err)
	}
	d, err := p.referrer(r, artifact{
		artifactType: artifactType,
		subject:      sd,
		layerType:    artifactType,
		layer:        data,
	})
	if err != nil {
		return "", fmt.Errorf("attach: %w", err)
	}
	return d.Digest.String(), nil
}

// AttachMany attaches n small distinct referrers of artifactType to the
// manifest subjectDigest in repo on a running lab registry, for
// pagination tests and benchmarks, and returns their digests in order.
// Referrer i has the shared empty config and one tiny layer of its own
// ("refdoctor lab referrer i of <subject>"), so repeating a call pushes
// the same manifests again. Like Attach it goes through the registry's
// behaviour layer, and on a registry without the referrers API regclient
// rewrites the fallback tag once per referrer (on a GitLab-like registry
// that rewrite meets the tag quirk, as it would on GitLab).
//
// The referrers go one at a time on purpose: olareg updates a subject's
// referrers list by read-modify-write without a lock, and concurrent
// pushes for one subject lose entries (as concurrent fallback-tag writers
// do anywhere).
func AttachMany(ctx context.Context, l *Lab, host, repo, subjectDigest, artifactType string, n int) ([]string, error) {
	if n < 0 {
		return nil, fmt.Errorf("attach many: negative count %d", n)
	}
	if n == 0 {
		return []string{}, nil
	}
	c, done, err := l.attachClient(host)
	if err != nil {
		return nil, fmt.Errorf("attach many: %w", err)
	}
	defer done()
	r, sd, err := attachSubject(ctx, c, host, repo, subjectDigest)
	if err != nil {
		return nil, fmt.Errorf("attach many: %w", err)
	}
	p := pusher{ctx: ctx, c: c}
	if _, err := p.blob(r, mediatype.OCI1Empty, descriptor.EmptyData); err != nil {
		return nil, fmt.Errorf("attach many: %w", err)
	}
	digests := make([]string, n)
	for i := range n {
		d, err := p.referrer(r, artifact{
			artifactType: artifactType,
			subject:      sd,
			layerType:    artifactType,
			layer:        fmt.Appendf(nil, "refdoctor lab referrer %d of %s\n", i, subjectDigest),
		})
		if err != nil {
			return nil, fmt.Errorf("attach many: referrer %d: %w", i, err)
		}
		digests[i] = d.Digest.String()
	}
	return digests, nil
}

// seedWorkers is how many images SeedMany pushes at once; regclient
// itself allows only a few requests per host at a time.
const seedWorkers = 4

// attachClient is a client for host in l as any outside client would
// build it: the lab config, the registry's login, no docker credentials.
// done releases its connections.
func (l *Lab) attachClient(host string) (*registry.Client, func(), error) {
	transport := http.DefaultTransport.(*http.Transport).Clone()
	opts := []registry.Opt{
		registry.WithoutDockerCreds(),
		registry.WithLogger(l.log),
		registry.WithRecorder(registry.NewRecorder(transport)),
	}
	for _, r := range l.Registries {
		if r.Host == host && r.Login != nil {
			opts = append(opts, registry.WithLogin(host, r.Login.User, r.Login.Password))
		}
	}
	c, err := registry.New(l.Config(), opts...)
	if err != nil {
		transport.CloseIdleConnections()
		return nil, nil, err
	}
	return c, transport.CloseIdleConnections, nil
}

// attachSubject resolves the subject of an attachment to its descriptor.
func attachSubject(ctx context.Context, c *registry.Client, host, repository, subject string) (ref.Ref, descriptor.Descriptor, error) {
	r, err := ref.New(host + "/" + repository)
	if err != nil {
		return ref.Ref{}, descriptor.Descriptor{}, err
	}
	m, err := c.ManifestHead(ctx, r.SetDigest(subject), regclient.WithManifestRequireDigest())
	if err != nil {
		return ref.Ref{}, descriptor.Descriptor{}, fmt.Errorf("subject %s: %w", subject, err)
	}
	sd := m.GetDescriptor()
	return r, descriptor.Descriptor{MediaType: sd.MediaType, Digest: sd.Digest, Size: sd.Size}, nil
}

// forEach runs fn for 0..n-1 on up to workers goroutines and returns the
// first error; after an error no new index starts.
func forEach(ctx context.Context, n, workers int, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(workers, n) {
		wg.Go(func() {
			for i := range next {
				if err := fn(ctx, i); err != nil {
					cancel(err)
				}
			}
		})
	}
feed:
	for i := range n {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return err
	}
	return nil
}

// What SeedMany pushes.
const (
	// SeedManyTagFormat names the images of SeedMany: img-0000, img-0001...
	SeedManyTagFormat = "img-%04d"
	annotationImage   = "dev.refdoctor.lab.image"
	annotationIndex   = "dev.refdoctor.lab.referrer"
)

// SeedMany pushes images small distinct single-platform images into repo
// on host, tagged img-0000, img-0001 and so on, each with
// referrersPerImage referrers whose artifact types rotate through SBOM
// (CycloneDX), signature (Notary) and attestation (in-toto), and returns
// the image digests in tag order. It is built for benchmarks of
// discovery at scale: every image shares one config and one layer and
// differs only by an annotation, the referrers share one layer per
// artifact type, so after a handful of blobs each image costs one
// manifest PUT plus one per referrer, and images are pushed in parallel.
// It goes through whatever host it is given with c; on a registry without
// the referrers API regclient writes each image's fallback tag. The
// content is deterministic.
func SeedMany(ctx context.Context, c *registry.Client, host, repo string, images, referrersPerImage int) ([]string, error) {
	if images < 0 || referrersPerImage < 0 {
		return nil, fmt.Errorf("seed many: negative count")
	}
	r, err := ref.New(host + "/" + repo)
	if err != nil {
		return nil, fmt.Errorf("seed many: %w", err)
	}
	if images == 0 {
		return []string{}, nil
	}
	p := pusher{ctx: ctx, c: c}
	// The shared blobs, once.
	layerData, err := tarLayer("etc/refdoctor-bench", "refdoctor lab benchmark image\n")
	if err != nil {
		return nil, fmt.Errorf("seed many: %w", err)
	}
	layer, err := p.blob(r, mediatype.OCI1Layer, layerData)
	if err != nil {
		return nil, fmt.Errorf("seed many: %w", err)
	}
	created := seedCreated
	cfgData, err := json.Marshal(v1.Image{
		Created:  &created,
		Platform: platform.Platform{OS: "linux", Architecture: "amd64"},
		Config:   v1.ImageConfig{Cmd: []string{"/bin/sh"}},
		RootFS:   v1.RootFS{Type: "layers", DiffIDs: []digest.Digest{layer.Digest}},
	})
	if err != nil {
		return nil, fmt.Errorf("seed many: image config: %w", err)
	}
	cfg, err := p.blob(r, mediatype.OCI1ImageConfig, cfgData)
	if err != nil {
		return nil, fmt.Errorf("seed many: %w", err)
	}
	if referrersPerImage > 0 {
		if _, err := p.blob(r, mediatype.OCI1Empty, descriptor.EmptyData); err != nil {
			return nil, fmt.Errorf("seed many: %w", err)
		}
	}
	kinds := seedManyKinds()
	layers := make([]descriptor.Descriptor, len(kinds))
	for k, kind := range kinds[:min(len(kinds), referrersPerImage)] {
		if layers[k], err = p.blob(r, kind.artifactType, kind.layer); err != nil {
			return nil, fmt.Errorf("seed many: %w", err)
		}
	}

	digests := make([]string, images)
	err = forEach(ctx, images, seedWorkers, func(ctx context.Context, i int) error {
		p := pusher{ctx: ctx, c: c}
		tag := fmt.Sprintf(SeedManyTagFormat, i)
		d, err := p.manifest(r, tag, v1.Manifest{
			Versioned: v1.ManifestSchemaVersion,
			MediaType: mediatype.OCI1Manifest,
			Config:    cfg,
			Layers:    []descriptor.Descriptor{layer},
			Annotations: map[string]string{
				annotationCreated: seedCreated.Format(time.RFC3339),
				annotationImage:   tag,
			},
		})
		if err != nil {
			return err
		}
		digests[i] = d.Digest.String()
		subject := descriptor.Descriptor{MediaType: d.MediaType, Digest: d.Digest, Size: d.Size}
		// One image's referrers in order: olareg's referrers list of a
		// subject, like a fallback tag, is read-modify-write.
		for j := range referrersPerImage {
			k := j % len(kinds)
			_, err := p.manifest(r, "", v1.Manifest{
				Versioned:    v1.ManifestSchemaVersion,
				MediaType:    mediatype.OCI1Manifest,
				ArtifactType: kinds[k].artifactType,
				Config:       descriptor.Descriptor{MediaType: mediatype.OCI1Empty, Digest: descriptor.EmptyDigest, Size: int64(len(descriptor.EmptyData))},
				Layers:       []descriptor.Descriptor{layers[k]},
				Subject:      &subject,
				Annotations: map[string]string{
					annotationCreated: seedCreated.Format(time.RFC3339),
					annotationIndex:   fmt.Sprint(j),
				},
			})
			if err != nil {
				return fmt.Errorf("%s: referrer %d: %w", tag, j, err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("seed many: %w", err)
	}
	return digests, nil
}

// seedManyKind is one artifact type in SeedMany's rotation.
type seedManyKind struct {
	artifactType string
	layer        []byte
}

func seedManyKinds() []seedManyKind {
	return []seedManyKind{
		{ArtifactTypeCycloneDX, mustJSON(map[string]any{"bomFormat": "CycloneDX", "specVersion": "1.5", "version": 1})},
		{ArtifactTypeNotary, mustJSON(map[string]any{"payload": "", "signature": "refdoctor lab: not a real signature"})},
		{ArtifactTypeInToto, mustJSON(map[string]any{"_type": "https://in-toto.io/Statement/v1", "predicateType": "https://slsa.dev/provenance/v1"})},
	}
}
