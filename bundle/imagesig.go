package bundle

import (
	"encoding/json"
	"slices"
	"strings"

	"github.com/refdoctor/refdoctor/finding"
)

// Image signatures that travel in a bundle. cosign stores them two ways:
//
//   - legacy: a manifest tagged sha256-<image hex>.sig whose layers are
//     simple-signing payloads (media type
//     application/vnd.dev.cosign.simplesigning.v1+json), each naming the
//     image digest it signs in critical.image.docker-manifest-digest, with
//     the signature in the layer annotation dev.cosignproject.cosign/signature;
//   - cosign v3: a referrer of the image, artifact type
//     application/vnd.dev.sigstore.bundle.v0.3+json with annotation
//     dev.sigstore.bundle.predicateType https://sigstore.dev/cosign/sign/v1,
//     whose one layer is a Sigstore bundle holding a DSSE envelope: an
//     in-toto statement whose subject is the image digest.
//
// This file holds the formats and the verdicts; package bundle/signing
// verifies them against the operator's public keys, offline.
const (
	MediaTypeCosignSimpleSigning = "application/vnd.dev.cosign.simplesigning.v1+json"
	AnnotationCosignSignature    = "dev.cosignproject.cosign/signature"
	AnnotationCosignCertificate  = "dev.sigstore.cosign/certificate"
	// CosignSignatureTagSuffix ends the tag of a legacy signature manifest:
	// sha256-<image hex>.sig.
	CosignSignatureTagSuffix = ".sig"
	// MaxImageSignatureBlob bounds one signature payload or Sigstore bundle
	// read from the bundle; cosign's are under 10 KiB.
	MaxImageSignatureBlob = 1 << 20
	// MaxImageSignatureLayers bounds the signatures read from one legacy
	// manifest (cosign adds a layer per signing).
	MaxImageSignatureLayers = 256
)

// ImageSignatureFormat is how a signature is stored.
type ImageSignatureFormat string

// Image signature formats.
const (
	// FormatCosignLegacy: a sha256-<hex>.sig manifest of simple-signing
	// payloads.
	FormatCosignLegacy ImageSignatureFormat = "cosign-simplesigning"
	// FormatSigstoreBundle: a cosign v3 referrer holding a Sigstore bundle.
	FormatSigstoreBundle ImageSignatureFormat = "sigstore-bundle"
)

// ImageSigStatus is the verdict on an image, or on one of its signatures.
type ImageSigStatus string

// Verdicts, from best to worst as the summary of an image ranks them.
const (
	// ImageSigValid: a given key verified a signature made for this image.
	ImageSigValid ImageSigStatus = "valid"
	// ImageSigInvalid: a signature is for another image, or names a given
	// key but does not verify, or cannot be read.
	ImageSigInvalid ImageSigStatus = "invalid"
	// ImageSigUnknownKey: signed, but by none of the given keys (or
	// keyless, with a certificate refdoctor does not check offline).
	ImageSigUnknownKey ImageSigStatus = "unknown-key"
	// ImageSigUnsigned: no signature travels with the image.
	ImageSigUnsigned ImageSigStatus = "unsigned"
)

// Code is the finding code of a verdict: "" for valid.
func (s ImageSigStatus) Code() finding.Code {
	switch s {
	case ImageSigInvalid:
		return finding.ImageSignatureInvalid
	case ImageSigUnknownKey:
		return finding.ImageSignatureUnknownKey
	case ImageSigUnsigned:
		return finding.ImageUnsigned
	}
	return ""
}

// BlobReader returns the content of the blob with the given digest
// ("sha256:<hex>") from the bundle. It is only called for blobs a
// signature manifest references with a size of at most
// MaxImageSignatureBlob. An error wrapping fs.ErrNotExist means the bundle
// does not hold the blob (the signature is then invalid); any other error
// means it could not be read, and verification stops with that error.
type BlobReader func(digest string) ([]byte, error)

// SignatureManifest is one signature manifest found in the bundle: a
// legacy .sig manifest or a cosign v3 referrer.
type SignatureManifest struct {
	// Manifest is the manifest's exact bytes.
	Manifest []byte
	// Digest is the manifest's digest, for messages; computed from
	// Manifest when empty.
	Digest string
}

// ImageSignatureCheck is the verdict on one signature.
type ImageSignatureCheck struct {
	Format ImageSignatureFormat `json:"format"`
	// Manifest is the digest of the signature manifest; Layer that of the
	// payload or Sigstore bundle blob checked.
	Manifest string         `json:"manifest"`
	Layer    string         `json:"layer,omitempty"`
	Status   ImageSigStatus `json:"status"`
	Code     finding.Code   `json:"code,omitempty"`
	// KeyFingerprint is the key that verified (valid), or the given key
	// that made or is named by an invalid signature, or the fingerprint an
	// unknown key's hint names.
	KeyFingerprint string `json:"key_fingerprint,omitempty"`
	// Claimed lists the image digests the signature says it is for.
	Claimed []string `json:"claimed,omitempty"`
	Message string   `json:"message"`
}

// ImageSignatureReport is the verdict on one image: the best of its
// signatures (valid over invalid over unknown key), or unsigned when none
// travels with it. An image with a valid signature and an invalid one is
// valid, as `cosign verify --key` passes it; the invalid one stays listed
// in Signatures.
type ImageSignatureReport struct {
	// Subject is the image manifest digest.
	Subject string `json:"subject"`
	// Reference is the image's source reference when it is one of the
	// bundle's images; "" for another manifest in the bundle that carries
	// signatures (a platform manifest signed on its own).
	Reference string         `json:"reference,omitempty"`
	Status    ImageSigStatus `json:"status"`
	// Code is "" for valid, else ImageSignatureInvalid,
	// ImageSignatureUnknownKey or ImageUnsigned.
	Code finding.Code `json:"code,omitempty"`
	// KeyFingerprint is the key that verified the image (valid only).
	KeyFingerprint string                `json:"key_fingerprint,omitempty"`
	Signatures     []ImageSignatureCheck `json:"signatures"`
	Message        string                `json:"message"`
}

// Summarize sets the image's verdict from its Signatures: the best of
// them, or unsigned when there is none.
func (rep *ImageSignatureReport) Summarize() {
	rank := map[ImageSigStatus]int{ImageSigValid: 0, ImageSigInvalid: 1, ImageSigUnknownKey: 2}
	rep.Status = ImageSigUnsigned
	rep.KeyFingerprint = ""
	best := -1
	for _, c := range rep.Signatures {
		if r := rank[c.Status]; best < 0 || r < best {
			best = r
			rep.Status = c.Status
			rep.KeyFingerprint = ""
			if c.Status == ImageSigValid {
				rep.KeyFingerprint = c.KeyFingerprint
			}
			rep.Message = c.Message
		}
	}
	rep.Code = rep.Status.Code()
	if rep.Status == ImageSigUnsigned {
		rep.Message = "no signature travels with this image"
	}
}

// SigManifest is the part of an OCI image manifest a signature check
// reads.
type SigManifest struct {
	SchemaVersion int               `json:"schemaVersion"`
	MediaType     string            `json:"mediaType"`
	ArtifactType  string            `json:"artifactType"`
	Config        *SigDescriptor    `json:"config"`
	Layers        []SigDescriptor   `json:"layers"`
	Subject       *SigDescriptor    `json:"subject"`
	Annotations   map[string]string `json:"annotations"`
}

// SigDescriptor is a descriptor in a SigManifest.
type SigDescriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations"`
}

// ParseSigManifest reads a signature manifest: false when it is larger
// than a referrer may be, not JSON, or not a schema 2 manifest.
func ParseSigManifest(manifest []byte) (SigManifest, bool) {
	var m SigManifest
	if len(manifest) > MaxReferrerSize || json.Unmarshal(manifest, &m) != nil || m.SchemaVersion != 2 {
		return SigManifest{}, false
	}
	return m, true
}

// ImageSignatureKind tells whether manifest is an image signature refdoctor
// verifies, and which format: a manifest of simple-signing layers, or a
// Sigstore bundle referrer whose predicate type is cosign's signature (or
// not given). Anything else, attestations in Sigstore bundles included,
// is "".
func ImageSignatureKind(manifest []byte) ImageSignatureFormat {
	m, ok := ParseSigManifest(manifest)
	if !ok {
		return ""
	}
	return m.Kind()
}

// Kind is ImageSignatureKind of a parsed manifest.
func (m SigManifest) Kind() ImageSignatureFormat {
	artifactType := m.ArtifactType
	if artifactType == "" && m.Config != nil {
		artifactType = m.Config.MediaType
	}
	if artifactType == SigstoreBundleMediaType {
		if p, ok := m.Annotations[finding.AnnotationSigstorePredicateType]; ok && p != finding.PredicateCosignSign {
			return ""
		}
		return FormatSigstoreBundle
	}
	if len(m.Layers) > 0 && slices.ContainsFunc(m.Layers, func(l SigDescriptor) bool { return l.MediaType == MediaTypeCosignSimpleSigning }) {
		return FormatCosignLegacy
	}
	return ""
}

// SubjectOfCosignTag returns the image digest a legacy cosign signature
// tag (sha256-<hex>.sig) is for.
func SubjectOfCosignTag(tag string) (string, bool) {
	h, ok := strings.CutPrefix(tag, "sha256-")
	if !ok {
		return "", false
	}
	h, ok = strings.CutSuffix(h, CosignSignatureTagSuffix)
	if !ok || !validHex(h) {
		return "", false
	}
	return "sha256:" + h, true
}

// SetImageSignatures records the verdicts of an image signature check
// (package bundle/signing) in the report, and adds one
// ImageSignatureInvalid problem per image whose signatures are all
// invalid: an image with a valid signature passes, as `cosign verify
// --key` passes it. Images signed by another key or not at all are
// reported in the verdicts only: often someone else signs them, and the
// operator decides.
func (r *Report) SetImageSignatures(reps []ImageSignatureReport) {
	if reps == nil {
		reps = []ImageSignatureReport{}
	}
	r.ImageSignatures = reps
	for _, rep := range reps {
		if rep.Status != ImageSigInvalid {
			continue
		}
		name := rep.Reference
		if name == "" {
			name = rep.Subject
		}
		var claims []string
		for _, c := range rep.Signatures {
			claims = append(claims, c.Claimed...)
		}
		slices.Sort(claims)
		r.Errors = append(r.Errors, Problem{Code: finding.ImageSignatureInvalid, Path: clip(name, maxFieldBytes), Expected: rep.Subject,
			Actual: clip(strings.Join(slices.Compact(claims), ", "), maxFieldBytes), Message: clip(rep.Message, maxMessageBytes), Count: 1})
		r.OK = false
	}
}
