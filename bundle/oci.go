package bundle

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
)

// The media types the validator tells apart, spelled out here (the values
// of the image and distribution specs) so that this offline package links
// nothing of a registry client.
const (
	mediaTypeOCIManifest        = "application/vnd.oci.image.manifest.v1+json"
	mediaTypeOCIIndex           = "application/vnd.oci.image.index.v1+json"
	mediaTypeDockerManifest     = "application/vnd.docker.distribution.manifest.v2+json"
	mediaTypeDockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
	mediaTypeDockerForeignLayer = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
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
	case mediaTypeOCIManifest, mediaTypeOCIIndex,
		mediaTypeDockerManifest, mediaTypeDockerManifestList:
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
	d.EachReference(func(desc OCIDescriptor) { out = append(out, desc) })
	return out
}

// EachReference calls fn with each descriptor References lists, without
// building the list: an index may hold tens of thousands.
func (d OCIDocument) EachReference(fn func(OCIDescriptor)) {
	add := func(desc OCIDescriptor) {
		if inBundle(desc) {
			fn(desc)
		}
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
}

// inBundle: descriptors with URLs and non-distributable layers are, by
// the image spec, fetched from elsewhere.
func inBundle(desc OCIDescriptor) bool {
	return len(desc.URLs) == 0 && !strings.Contains(desc.MediaType, "nondistributable") &&
		desc.MediaType != mediaTypeDockerForeignLayer
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

// scanOCIDocument is ParseOCIDocument for documents from the archive,
// without holding their descriptor lists: an index of 4 MiB lists tens of
// thousands of descriptors, and a bundle may hold many. One streaming pass
// decodes the document, passing each reference (as EachReference filters
// them) to each as it is decoded, once schemaVersion and mediaType have
// said the document is a manifest or index (refdoctor's and registries'
// documents put them first). When they come later, a first pass decides
// and a second one passes the references. The returned document has no
// Layers or Manifests; hasManifests says whether it lists manifests.
func scanOCIDocument(data []byte, each func(OCIDescriptor)) (d OCIDocument, hasManifests, ok bool) {
	d, hasManifests, ok, early := scanOCI(data, each, true)
	if ok && !early && each != nil {
		scanOCI(data, each, false)
	}
	return d, hasManifests, ok
}

// scanOCI is one pass; early reports whether the references were passed
// on during it. With eager false, they always are.
func scanOCI(data []byte, each func(OCIDescriptor), eager bool) (d OCIDocument, hasManifests, ok, early bool) {
	if c, found := firstNonBlank(data); !found || c != '{' {
		return d, false, false, false
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return d, false, false, false
	}
	decided := !eager // in the second pass the document is known
	emit := func(desc OCIDescriptor) {
		if each != nil && decided && inBundle(desc) {
			each(desc)
		}
	}
	hasLayers := false
	early = true
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return d, false, false, false
		}
		key, _ := t.(string)
		if eager && !decided && d.SchemaVersion == 2 && isManifestMediaType(d.MediaType) {
			decided = true
		}
		switch {
		case strings.EqualFold(key, "schemaVersion"):
			err = dec.Decode(&d.SchemaVersion)
		case strings.EqualFold(key, "mediaType"):
			err = dec.Decode(&d.MediaType)
		case strings.EqualFold(key, "artifactType"):
			err = dec.Decode(&d.ArtifactType)
		case strings.EqualFold(key, "config"):
			var c *OCIDescriptor
			if err = dec.Decode(&c); err == nil && c != nil {
				d.Config = c
				if !decided {
					early = false
				}
				emit(*c)
			}
		case strings.EqualFold(key, "subject"):
			err = dec.Decode(&d.Subject)
		case strings.EqualFold(key, "layers"), strings.EqualFold(key, "manifests"):
			var present bool
			if present, err = decodeDescriptors(dec, func(desc OCIDescriptor) {
				if !decided {
					early = false
				}
				emit(desc)
			}); present {
				if strings.EqualFold(key, "layers") {
					hasLayers = true
				} else {
					hasManifests = true
				}
			}
		default:
			var skip ignored
			err = dec.Decode(&skip)
		}
		if err != nil {
			return d, false, false, false
		}
	}
	if t, err := dec.Token(); err != nil || t != json.Delim('}') {
		return d, false, false, false
	}
	if _, err := dec.Token(); err != io.EOF {
		return d, false, false, false // something after the document
	}
	if d.SchemaVersion != 2 {
		return d, hasManifests, false, false
	}
	switch {
	case isManifestMediaType(d.MediaType):
	case d.MediaType == "" && (hasManifests || (d.Config != nil && hasLayers)):
	default:
		return d, hasManifests, false, false
	}
	return d, hasManifests, true, early
}

// decodeDescriptors decodes a JSON array of descriptors (or null) one at
// a time.
func decodeDescriptors(dec *json.Decoder, each func(OCIDescriptor)) (present bool, err error) {
	t, err := dec.Token()
	if err != nil {
		return false, err
	}
	if t == nil {
		return false, nil
	}
	if t != json.Delim('[') {
		return false, errNotArray
	}
	for dec.More() {
		var desc OCIDescriptor
		if err := dec.Decode(&desc); err != nil {
			return false, err
		}
		each(desc)
	}
	if t, err := dec.Token(); err != nil || t != json.Delim(']') {
		return false, errNotArray
	}
	return true, nil
}

var errNotArray = errors.New("not an array of descriptors")

// ignored decodes any JSON value into nothing.
type ignored struct{}

func (*ignored) UnmarshalJSON([]byte) error { return nil }
