package bundle_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/regclient/regclient/types/descriptor"
	"github.com/regclient/regclient/types/mediatype"
	v1 "github.com/regclient/regclient/types/oci/v1"
	"github.com/regclient/regclient/types/platform"

	"github.com/refdoctor/refdoctor/bundle"
	"github.com/refdoctor/refdoctor/finding"
)

// fixture is a small but real bundle, built in memory: a two-platform OCI
// image index with configs and layers, three referrers (SBOM and signature
// on the index, an attestation on the amd64 manifest) whose digests are
// right, and the manifest.yaml that lists them. Tests change one thing and
// write it out.
type fixture struct {
	manifest *bundle.Manifest
	files    map[string][]byte // every member but manifest.yaml
	// order of members after manifest.yaml; manifestAt moves manifest.yaml
	// (0 = first, -1 = last).
	order       []string
	manifestAt  int
	compression bundle.Compression
	// stored writes the members that are not JSON stored, each in a
	// gzip member of its own, as export writes compressed layers.
	stored bool

	index, amd64, arm64 string // digests
	referrers           []fixtureReferrer
}

type fixtureReferrer struct {
	subject, digest, path string
}

var fixtureCreated = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

const fixtureReference = "registry.example.com/team/app:1.2"

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func dig(b []byte) string { return "sha256:" + sha(b) }

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func desc(mt string, b []byte) descriptor.Descriptor {
	return descriptor.Descriptor{MediaType: mt, Digest: digest.Digest(dig(b)), Size: int64(len(b))}
}

// referrerSpec describes one referrer to attach; subjectOverride, when set,
// writes a different subject.digest into the referrer than the folder it
// is filed under (the "referrers on the wrong digest" export bug).
type referrerSpec struct {
	artifactType    string
	payloadType     string
	payload         []byte
	annotations     map[string]string
	subjectOverride string
}

type fixtureOpt func(*fixtureConfig)

type fixtureConfig struct {
	wrongSubject bool
	layerSize    int
}

func withWrongSubject() fixtureOpt { return func(c *fixtureConfig) { c.wrongSubject = true } }

func newFixture(t testing.TB, opts ...fixtureOpt) *fixture {
	t.Helper()
	cfg := fixtureConfig{layerSize: 3000}
	for _, o := range opts {
		o(&cfg)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	f := &fixture{files: map[string][]byte{}, compression: bundle.CompressionGzip}
	blob := func(b []byte) { f.files[bundle.BlobPath(dig(b))] = b }

	platformManifest := func(arch string) []byte {
		layer := make([]byte, cfg.layerSize)
		for i := range layer {
			layer[i] = byte(rng.Uint32())
		}
		blob(layer)
		conf := mustJSON(t, map[string]any{
			"architecture": arch, "os": "linux",
			"rootfs": map[string]any{"type": "layers", "diff_ids": []string{dig(layer)}},
		})
		blob(conf)
		m := mustJSON(t, v1.Manifest{
			Versioned: v1.ManifestSchemaVersion,
			MediaType: mediatype.OCI1Manifest,
			Config:    desc(mediatype.OCI1ImageConfig, conf),
			Layers:    []descriptor.Descriptor{desc(mediatype.OCI1LayerGzip, layer)},
		})
		blob(m)
		return m
	}
	amd := platformManifest("amd64")
	arm := platformManifest("arm64")
	amdDesc := desc(mediatype.OCI1Manifest, amd)
	amdDesc.Platform = &platform.Platform{OS: "linux", Architecture: "amd64"}
	armDesc := desc(mediatype.OCI1Manifest, arm)
	armDesc.Platform = &platform.Platform{OS: "linux", Architecture: "arm64"}
	idx := mustJSON(t, v1.Index{
		Versioned: v1.IndexSchemaVersion,
		MediaType: mediatype.OCI1ManifestList,
		Manifests: []descriptor.Descriptor{amdDesc, armDesc},
	})
	blob(idx)
	f.index, f.amd64, f.arm64 = dig(idx), dig(amd), dig(arm)

	blob(descriptor.EmptyData)
	f.files[bundle.LayoutPath] = []byte(`{"imageLayoutVersion":"1.0.0"}`)
	top := desc(mediatype.OCI1ManifestList, idx)
	top.Annotations = map[string]string{"org.opencontainers.image.ref.name": fixtureReference}
	f.files[bundle.IndexPath] = mustJSON(t, v1.Index{
		Versioned: v1.IndexSchemaVersion,
		MediaType: mediatype.OCI1ManifestList,
		Manifests: []descriptor.Descriptor{top},
	})

	subjects := map[string][]referrerSpec{
		f.index: {
			{artifactType: "application/vnd.cyclonedx+json", payloadType: "application/vnd.cyclonedx+json",
				payload:     []byte(`{"bomFormat":"CycloneDX","specVersion":"1.5","components":[]}`),
				annotations: map[string]string{"org.opencontainers.image.created": "2026-11-27T11:00:00Z"}},
			{artifactType: "application/vnd.cncf.notary.signature", payloadType: "application/jose+json",
				payload: []byte(`{"payload":"eyJ0YXJnZXRBcnRpZmFjdCI6e319","signatures":[]}`)},
		},
		f.amd64: {
			{artifactType: "application/vnd.in-toto+json", payloadType: "application/vnd.dsse.envelope.v1+json",
				payload: []byte(`{"payloadType":"application/vnd.in-toto+json","payload":"e30=","signatures":[]}`)},
		},
	}
	if cfg.wrongSubject {
		subjects[f.amd64][0].subjectOverride = f.arm64
	}
	m := &bundle.Manifest{
		SchemaVersion: bundle.FormatVersion,
		Kind:          bundle.ManifestKind,
		CreatedAt:     fixtureCreated,
		Tool:          bundle.Tool{Name: "refdoctor", Version: "v0.1.0"},
		Images:        []bundle.Image{{Reference: fixtureReference, Digest: f.index, MediaType: mediatype.OCI1ManifestList}},
	}
	subjectBytes := map[string][]byte{f.index: idx, f.amd64: amd}
	for _, subj := range []string{f.index, f.amd64} {
		entry := bundle.SubjectEntry{Subject: subj, Discovery: bundle.DiscoveryAPI}
		for _, spec := range subjects[subj] {
			blob(spec.payload)
			sd := desc(mediatype.OCI1Manifest, subjectBytes[subj])
			if spec.subjectOverride != "" {
				sd.Digest = digest.Digest(spec.subjectOverride)
			}
			rm := mustJSON(t, v1.Manifest{
				Versioned:    v1.ManifestSchemaVersion,
				MediaType:    mediatype.OCI1Manifest,
				ArtifactType: spec.artifactType,
				Config:       desc(mediatype.OCI1Empty, descriptor.EmptyData),
				Layers:       []descriptor.Descriptor{desc(spec.payloadType, spec.payload)},
				Subject:      &sd,
				Annotations:  spec.annotations,
			})
			// Referrer manifests are blobs too, so the layout is complete.
			blob(rm)
			p := bundle.ReferrerPath(subj, dig(rm))
			f.files[p] = slices.Clone(rm)
			f.referrers = append(f.referrers, fixtureReferrer{subject: subj, digest: dig(rm), path: p})
			entry.Artifacts = append(entry.Artifacts, bundle.Artifact{
				Digest: dig(rm), ArtifactType: spec.artifactType, MediaType: mediatype.OCI1Manifest,
				Category: finding.Categorize(spec.artifactType, spec.annotations), Size: int64(len(rm)), Path: p, SHA256: sha(rm),
				Annotations: spec.annotations,
			})
		}
		entry.Count = len(entry.Artifacts)
		m.Referrers.Subjects = append(m.Referrers.Subjects, entry)
		m.Referrers.Total += entry.Count
	}
	f.manifest = m
	f.relist()
	return f
}

// relist recomputes files: from the current members (referrer files stay
// in their subject entries), as export would.
func (f *fixture) relist() {
	f.manifest.Files = nil
	for p, b := range f.files {
		if strings.HasPrefix(p, bundle.ReferrersDir) {
			continue
		}
		f.manifest.Files = append(f.manifest.Files, bundle.FileEntry{Path: p, Size: int64(len(b)), SHA256: sha(b)})
	}
	slices.SortFunc(f.manifest.Files, func(a, b bundle.FileEntry) int { return strings.Compare(a.Path, b.Path) })
	f.order = f.manifest.MemberOrder()[1:]
}

func (f *fixture) manifestYAML(t testing.TB) []byte {
	t.Helper()
	b, err := f.manifest.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// write renders the bundle with manifest.yaml where manifestAt says.
func (f *fixture) write(t testing.TB) []byte {
	t.Helper()
	return f.writeWith(t, f.manifestYAML(t))
}

func (f *fixture) writeWith(t testing.TB, manifestYAML []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := bundle.NewWriter(&buf, f.compression)
	order := slices.Clone(f.order)
	at := f.manifestAt
	if at < 0 || at > len(order) {
		at = len(order)
	}
	order = slices.Insert(order, at, bundle.ManifestPath)
	for _, p := range order {
		data := f.files[p]
		if p == bundle.ManifestPath {
			data = manifestYAML
		}
		if data == nil && p != bundle.ManifestPath {
			continue // removed by the test
		}
		if f.stored {
			level := bundle.LevelDefault
			if p != bundle.ManifestPath && !json.Valid(data) {
				level = bundle.LevelStored
			}
			if err := w.SetMemberLevel(level); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.AddFile(p, data); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// firstLayer is the path of a layer blob (not JSON).
func (f *fixture) firstLayer() string {
	for _, p := range f.order {
		if strings.HasPrefix(p, bundle.BlobsDir) && !json.Valid(f.files[p]) {
			return p
		}
	}
	panic("fixture has no layer")
}

// writeSigned writes the fixture with sig as the signature member, right
// after manifest.yaml.
func (f *fixture) writeSigned(t testing.TB, sig []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := bundle.NewWriter(&buf, f.compression)
	if err := w.AddFile(bundle.ManifestPath, f.manifestYAML(t)); err != nil {
		t.Fatal(err)
	}
	if err := w.AddFile(bundle.SignatureMember, sig); err != nil {
		t.Fatal(err)
	}
	for _, p := range f.order {
		if data := f.files[p]; data != nil {
			if err := w.AddFile(p, data); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
