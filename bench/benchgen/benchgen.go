// Package benchgen writes large, valid mirror bundles of incompressible
// layers for benchmarks: the worst case for validation, since every byte
// must be inflated and hashed and nothing compresses. Content is
// pseudo-random from a seed, so a bundle can be regenerated instead of
// stored, and the generator holds one layer chunk in memory, never a
// layer.
package benchgen

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"time"

	"github.com/refdoctor/refdoctor/bundle"
	"github.com/refdoctor/refdoctor/finding"
)

// Config sizes the bundle.
type Config struct {
	Layers      int
	LayerSize   int64
	Compression bundle.Compression
	// Level is the compression level; 1 (fastest) by default, which on
	// random data stores blocks as real compressed layers would be.
	Level int
	// Stored writes the layers stored, each in a gzip member of its own,
	// as refdoctor's export writes layers that are compressed already
	// (gzip only); the tar stream is the same.
	Stored bool
	Seed   uint64
}

// Stats describes what Write wrote.
type Stats struct {
	Members     int
	ListedBytes int64
}

// layerReader yields layer i's pseudo-random bytes.
func layerReader(seed uint64, i int, size int64) io.Reader {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], seed)
	binary.LittleEndian.PutUint64(key[8:], uint64(i))
	return io.LimitReader(rand.NewChaCha8(key), size)
}

type blob struct {
	path string
	size int64
	sum  string
	data []byte // nil for layers, which are regenerated when written
	i    int
}

func newBlob(data []byte) blob {
	s := sha256.Sum256(data)
	h := hex.EncodeToString(s[:])
	return blob{path: bundle.BlobsDir + h, size: int64(len(data)), sum: h, data: data}
}

// Write writes a bundle to w: one image whose manifest has c.Layers random
// layers, its config, an SBOM and a signature referrer, and manifest.yaml
// first. Layers are generated twice (once to hash for manifest.yaml, once
// to write), which costs CPU and saves holding them.
func Write(w io.Writer, c Config) (Stats, error) {
	if c.Compression == "" {
		c.Compression = bundle.CompressionGzip
	}
	if c.Level == 0 {
		c.Level = 1
	}
	var blobs []blob
	type desc struct {
		MediaType    string `json:"mediaType"`
		Digest       string `json:"digest"`
		Size         int64  `json:"size"`
		ArtifactType string `json:"artifactType,omitempty"`
	}
	var layers []desc
	buf := make([]byte, 1<<20)
	for i := range c.Layers {
		h := sha256.New()
		if _, err := io.CopyBuffer(h, layerReader(c.Seed, i, c.LayerSize), buf); err != nil {
			return Stats{}, err
		}
		sum := hex.EncodeToString(h.Sum(nil))
		blobs = append(blobs, blob{path: bundle.BlobsDir + sum, size: c.LayerSize, sum: sum, i: i})
		layers = append(layers, desc{MediaType: "application/vnd.oci.image.layer.v1.tar+gzip", Digest: "sha256:" + sum, Size: c.LayerSize})
	}
	mustJSON := func(v any) []byte {
		b, err := json.Marshal(v)
		if err != nil {
			panic(err)
		}
		return b
	}
	config := newBlob(mustJSON(map[string]any{"architecture": "amd64", "os": "linux", "rootfs": map[string]any{"type": "layers"}}))
	manifest := newBlob(mustJSON(map[string]any{
		"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
		"config": desc{MediaType: "application/vnd.oci.image.config.v1+json", Digest: "sha256:" + config.sum, Size: config.size},
		"layers": layers,
	}))
	empty := newBlob([]byte("{}"))
	blobs = append(blobs, config, manifest, empty)
	subject := desc{MediaType: "application/vnd.oci.image.manifest.v1+json", Digest: "sha256:" + manifest.sum, Size: manifest.size}

	m := &bundle.Manifest{
		SchemaVersion: bundle.FormatVersion, Kind: bundle.ManifestKind,
		CreatedAt: time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC),
		Tool:      bundle.Tool{Name: "refdoctor-benchgen", Version: "v0"},
		Images:    []bundle.Image{{Reference: "registry.example.com/bench/app:1", Digest: subject.Digest, MediaType: subject.MediaType}},
	}
	entry := bundle.SubjectEntry{Subject: subject.Digest, Discovery: bundle.DiscoveryAPI}
	referrerFiles := map[string][]byte{}
	for _, at := range []string{"application/vnd.cyclonedx+json", "application/vnd.cncf.notary.signature"} {
		payload := newBlob([]byte(fmt.Sprintf(`{"artifactType":%q,"seed":%d}`, at, c.Seed)))
		blobs = append(blobs, payload)
		rm := mustJSON(map[string]any{
			"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "artifactType": at,
			"config":  desc{MediaType: "application/vnd.oci.empty.v1+json", Digest: "sha256:" + empty.sum, Size: empty.size},
			"layers":  []desc{{MediaType: "application/json", Digest: "sha256:" + payload.sum, Size: payload.size}},
			"subject": subject,
		})
		rb := newBlob(rm)
		p := bundle.ReferrerPath(subject.Digest, "sha256:"+rb.sum)
		referrerFiles[p] = rm
		blobs = append(blobs, rb)
		entry.Artifacts = append(entry.Artifacts, bundle.Artifact{
			Digest: "sha256:" + rb.sum, ArtifactType: at, MediaType: "application/vnd.oci.image.manifest.v1+json",
			Category: finding.Categorize(at, nil), Size: rb.size, Path: p, SHA256: rb.sum,
		})
	}
	entry.Count = len(entry.Artifacts)
	m.Referrers = bundle.Referrers{Total: entry.Count, Subjects: []bundle.SubjectEntry{entry}}

	small := map[string][]byte{
		bundle.LayoutPath: []byte(`{"imageLayoutVersion":"1.0.0"}`),
		bundle.IndexPath: mustJSON(map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
			"manifests": []desc{subject}}),
	}
	for p, b := range small {
		s := sha256.Sum256(b)
		m.Files = append(m.Files, bundle.FileEntry{Path: p, Size: int64(len(b)), SHA256: hex.EncodeToString(s[:])})
	}
	byPath := map[string]blob{}
	for _, b := range blobs {
		if _, dup := byPath[b.path]; !dup {
			byPath[b.path] = b
			m.Files = append(m.Files, bundle.FileEntry{Path: b.path, Size: b.size, SHA256: b.sum})
		}
	}
	yml, err := m.Marshal()
	if err != nil {
		return Stats{}, err
	}
	bw := bundle.NewWriter(w, c.Compression, bundle.WithLevel(c.Level))
	order := m.MemberOrder()
	for _, p := range order {
		if c.Stored && c.Compression == bundle.CompressionGzip {
			level := c.Level
			if b, isBlob := byPath[p]; isBlob && b.data == nil {
				level = bundle.LevelStored
			}
			if err := bw.SetMemberLevel(level); err != nil {
				return Stats{}, err
			}
		}
		var err error
		switch b, isBlob := byPath[p]; {
		case p == bundle.ManifestPath:
			err = bw.AddFile(p, yml)
		case small[p] != nil:
			err = bw.AddFile(p, small[p])
		case referrerFiles[p] != nil:
			err = bw.AddFile(p, referrerFiles[p])
		case isBlob && b.data != nil:
			err = bw.AddFile(p, b.data)
		case isBlob:
			err = bw.AddFileFrom(p, b.size, layerReader(c.Seed, b.i, b.size))
		default:
			err = fmt.Errorf("benchgen: nothing to write for %s", p)
		}
		if err != nil {
			return Stats{}, err
		}
	}
	if err := bw.Close(); err != nil {
		return Stats{}, err
	}
	return Stats{Members: len(order), ListedBytes: m.ListedBytes()}, nil
}
