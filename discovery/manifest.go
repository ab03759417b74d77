package discovery

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/refdoctor/refdoctor/config"
	"github.com/refdoctor/refdoctor/registry"
)

// Manifest is one manifest as its registry serves it, read to be shown:
// a referrer's content (its subject, its annotations, its layers) or what
// a fallback tag holds (the referrers its index lists).
type Manifest struct {
	Reference    string            `json:"reference"`
	Digest       string            `json:"digest"`
	MediaType    string            `json:"media_type"`
	ArtifactType string            `json:"artifact_type,omitempty"`
	Size         int64             `json:"size"`
	Subject      string            `json:"subject,omitempty"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	// Entries are what the manifest points to: an index's manifests, an
	// image manifest's config and layers.
	Entries []ManifestEntry `json:"entries,omitempty"`
	// Raw is the manifest byte for byte.
	Raw []byte `json:"-"`
}

// ManifestEntry is one descriptor a manifest lists.
type ManifestEntry struct {
	Role         string            `json:"role"` // manifest, config or layer
	Digest       string            `json:"digest"`
	MediaType    string            `json:"media_type"`
	ArtifactType string            `json:"artifact_type,omitempty"`
	Size         int64             `json:"size"`
	Annotations  map[string]string `json:"annotations,omitempty"`
}

// FetchManifest reads one manifest (HOST/REPO:TAG or HOST/REPO@DIGEST)
// with the discovery options' configuration and client options.
func FetchManifest(ctx context.Context, reference string, opts ...Opt) (Manifest, error) {
	o := options{cfg: config.Defaults(), timeout: 2 * time.Minute}
	for _, opt := range opts {
		opt(&o)
	}
	r, err := ParseReference(reference)
	if err != nil {
		return Manifest{}, err
	}
	c, err := registry.New(o.cfg, append([]registry.Opt{registry.WithTimeout(o.timeout)}, o.clientOpts...)...)
	if err != nil {
		return Manifest{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	m, err := c.ManifestGet(ctx, r)
	if err != nil {
		return Manifest{}, fmt.Errorf("get manifest %s: %w", reference, err)
	}
	raw, err := m.RawBody()
	if err != nil {
		return Manifest{}, fmt.Errorf("read manifest %s: %w", reference, err)
	}
	d := m.GetDescriptor()
	out := Manifest{Reference: reference, Digest: d.Digest.String(), MediaType: d.MediaType, Size: d.Size, Raw: raw}
	var doc struct {
		ArtifactType string            `json:"artifactType"`
		Annotations  map[string]string `json:"annotations"`
		Subject      *struct {
			Digest string `json:"digest"`
		} `json:"subject"`
		Config    *descriptorJSON  `json:"config"`
		Layers    []descriptorJSON `json:"layers"`
		Manifests []descriptorJSON `json:"manifests"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return out, fmt.Errorf("manifest %s is not JSON: %w", reference, err)
	}
	out.ArtifactType, out.Annotations = doc.ArtifactType, doc.Annotations
	if doc.Subject != nil {
		out.Subject = doc.Subject.Digest
	}
	for _, e := range doc.Manifests {
		out.Entries = append(out.Entries, e.entry("manifest"))
	}
	if doc.Config != nil {
		out.Entries = append(out.Entries, doc.Config.entry("config"))
	}
	for _, e := range doc.Layers {
		out.Entries = append(out.Entries, e.entry("layer"))
	}
	return out, nil
}

type descriptorJSON struct {
	Digest       string            `json:"digest"`
	MediaType    string            `json:"mediaType"`
	ArtifactType string            `json:"artifactType"`
	Size         int64             `json:"size"`
	Annotations  map[string]string `json:"annotations"`
}

func (d descriptorJSON) entry(role string) ManifestEntry {
	return ManifestEntry{Role: role, Digest: d.Digest, MediaType: d.MediaType, ArtifactType: d.ArtifactType, Size: d.Size, Annotations: d.Annotations}
}
