package bundle

import (
	"encoding/json"
	"strings"

	"github.com/regclient/regclient/types/mediatype"
)

// OCIDocument is the union of the OCI image manifest and image index
// fields the validator (and import, which pushes what validated) needs. It
// is deliberately small: blobs come from the far side of the gap, and only
// descriptors and the subject matter here.
type OCIDocument struct {
	SchemaVersion int             `json:"schemaVersion"`
	MediaType     string          `json:"mediaType"`
	ArtifactType  string          `json:"artifactType"`
	Config        *OCIDescriptor  `json:"config"`
	Layers        []OCIDescriptor `json:"layers"`
	Manifests     []OCIDescriptor `json:"manifests"`
	Subject       *OCIDescriptor  `json:"subject"`
}

// OCIDescriptor is the part of an OCI descriptor a bundle reader needs.
type OCIDescriptor struct {
	MediaType    string   `json:"mediaType"`
	Digest       string   `json:"digest"`
	Size         int64    `json:"size"`
	URLs         []string `json:"urls"`
	ArtifactType string   `json:"artifactType"`
}

// isManifestMediaType: the JSON documents that reference other blobs.
func isManifestMediaType(mt string) bool {
	switch mt {
	case mediatype.OCI1Manifest, mediatype.OCI1ManifestList,
		mediatype.Docker2Manifest, mediatype.Docker2ManifestList:
		return true
	}
	return false
}

// ParseOCIDocument reads data as an OCI manifest or index. ok is false for
// any other JSON (image configs, SBOM payloads), which the sniffing of
// blobs meets all the time and which is not an error.
func ParseOCIDocument(data []byte) (OCIDocument, bool) {
	var d OCIDocument
	if err := json.Unmarshal(data, &d); err != nil || d.SchemaVersion != 2 {
		return d, false
	}
	if isManifestMediaType(d.MediaType) {
		return d, true
	}
	// mediaType is optional in OCI manifests; the shape decides then.
	if d.MediaType == "" && (d.Manifests != nil || (d.Config != nil && d.Layers != nil)) {
		return d, true
	}
	return d, false
}

// References lists the blobs a document needs present in the bundle.
// Descriptors with URLs and non-distributable layers are, by the image
// spec, fetched from elsewhere, so their absence is not a problem.
func (d OCIDocument) References() []OCIDescriptor {
	var out []OCIDescriptor
	add := func(desc OCIDescriptor) {
		if len(desc.URLs) > 0 || strings.Contains(desc.MediaType, "nondistributable") ||
			desc.MediaType == mediatype.Docker2ForeignLayer {
			return
		}
		out = append(out, desc)
	}
	if d.Config != nil {
		add(*d.Config)
	}
	for _, l := range d.Layers {
		add(l)
	}
	for _, m := range d.Manifests {
		add(m)
	}
	return out
}

// effectiveArtifactType is what the referrers API reports as the artifact
// type: artifactType, else the config's media type (image spec 1.1).
func (d OCIDocument) effectiveArtifactType() string {
	if d.ArtifactType != "" {
		return d.ArtifactType
	}
	if d.Config != nil {
		return d.Config.MediaType
	}
	return ""
}

// firstNonBlank returns the first byte that is not JSON whitespace; ok is
// false when there is none yet.
func firstNonBlank(b []byte) (c byte, ok bool) {
	for _, c := range b {
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		}
		return c, true
	}
	return 0, false
}
