package bundle

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"

	"github.com/sigstore/sigstore-go/pkg/verify"
	"github.com/sigstore/sigstore/pkg/signature/payload"

	"github.com/refdoctor/refdoctor/finding"
)

// Image signatures that travel in a bundle, verified offline against the
// operator's public keys. cosign stores them two ways:
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
// Both are checked against the image digest they are attached to, so that
// a signature copied from another image is invalid, not valid.
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
	Subject string         `json:"subject"`
	Status  ImageSigStatus `json:"status"`
	// Code is "" for valid, else ImageSignatureInvalid,
	// ImageSignatureUnknownKey or ImageUnsigned.
	Code finding.Code `json:"code,omitempty"`
	// KeyFingerprint is the key that verified the image (valid only).
	KeyFingerprint string                `json:"key_fingerprint,omitempty"`
	Signatures     []ImageSignatureCheck `json:"signatures"`
	Message        string                `json:"message"`
}

// sigManifest is the part of an OCI image manifest a signature check reads.
type sigManifest struct {
	SchemaVersion int               `json:"schemaVersion"`
	MediaType     string            `json:"mediaType"`
	ArtifactType  string            `json:"artifactType"`
	Config        *sigDescriptor    `json:"config"`
	Layers        []sigDescriptor   `json:"layers"`
	Subject       *sigDescriptor    `json:"subject"`
	Annotations   map[string]string `json:"annotations"`
}

type sigDescriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations"`
}

// ImageSignatureKind tells whether manifest is an image signature refdoctor
// verifies, and which format: a manifest of simple-signing layers, or a
// Sigstore bundle referrer whose predicate type is cosign's signature (or
// not given). Anything else, attestations in Sigstore bundles included,
// is "".
func ImageSignatureKind(manifest []byte) ImageSignatureFormat {
	var m sigManifest
	if len(manifest) > MaxReferrerSize || json.Unmarshal(manifest, &m) != nil || m.SchemaVersion != 2 {
		return ""
	}
	return m.kind()
}

func (m sigManifest) kind() ImageSignatureFormat {
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
	if len(m.Layers) > 0 && slices.ContainsFunc(m.Layers, func(l sigDescriptor) bool { return l.MediaType == MediaTypeCosignSimpleSigning }) {
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
	if !ok || !isHex64(h) {
		return "", false
	}
	return "sha256:" + h, true
}

func isHex64(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// VerifyImageSignatures checks every signature that travels with the image
// subject ("sha256:<hex>", the image manifest digest) against keys and
// returns the verdict on the image. sigs are the image's signature
// manifests: its legacy sha256-<hex>.sig manifest and its cosign v3
// referrers; manifests that are not image signatures
// (ImageSignatureKind "") are skipped, and none at all means unsigned.
// Blobs are read through read, bounded by MaxImageSignatureBlob.
//
// The error is non-nil when keys is empty (ErrNoVerifyKeys), subject is
// not a sha256 digest, or read fails for another reason than a missing
// blob: then the verdict would rest on an incomplete read and none is
// given.
func VerifyImageSignatures(subject string, sigs []SignatureManifest, read BlobReader, keys []PublicKey) (ImageSignatureReport, error) {
	if len(keys) == 0 {
		return ImageSignatureReport{}, ErrNoVerifyKeys
	}
	if h, ok := strings.CutPrefix(subject, "sha256:"); !ok || !isHex64(h) {
		return ImageSignatureReport{}, fmt.Errorf("verify image signatures: subject %q is not a sha256 digest", subject)
	}
	rep := ImageSignatureReport{Subject: subject, Signatures: []ImageSignatureCheck{}}
	for _, s := range sigs {
		checks, err := VerifyImageSignature(subject, s, read, keys)
		if err != nil {
			return ImageSignatureReport{}, err
		}
		rep.Signatures = append(rep.Signatures, checks...)
	}
	rep.summarize()
	return rep, nil
}

func (rep *ImageSignatureReport) summarize() {
	rank := map[ImageSigStatus]int{ImageSigValid: 0, ImageSigInvalid: 1, ImageSigUnknownKey: 2}
	rep.Status = ImageSigUnsigned
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

// VerifyImageSignature checks the signatures in one signature manifest
// against the image subject: one check per simple-signing layer of a
// legacy manifest, one for a Sigstore bundle referrer, none when the
// manifest is not an image signature. Errors are as for
// VerifyImageSignatures.
func VerifyImageSignature(subject string, sig SignatureManifest, read BlobReader, keys []PublicKey) ([]ImageSignatureCheck, error) {
	if len(keys) == 0 {
		return nil, ErrNoVerifyKeys
	}
	digest := sig.Digest
	if digest == "" {
		sum := sha256.Sum256(sig.Manifest)
		digest = "sha256:" + hex.EncodeToString(sum[:])
	}
	var m sigManifest
	if len(sig.Manifest) > MaxReferrerSize || json.Unmarshal(sig.Manifest, &m) != nil || m.SchemaVersion != 2 {
		return nil, nil
	}
	switch m.kind() {
	case FormatCosignLegacy:
		return verifyLegacySignatures(subject, digest, m, read, keys)
	case FormatSigstoreBundle:
		c, err := verifyBundleSignature(subject, digest, m, read, keys)
		if err != nil {
			return nil, err
		}
		return []ImageSignatureCheck{c}, nil
	}
	return nil, nil
}

// readSignatureBlob reads a blob the manifest references and checks it is
// what the descriptor says. missing is set (with a reason) when the bundle
// lacks the blob or holds something else under its name.
func readSignatureBlob(read BlobReader, d sigDescriptor) (data []byte, problem string, err error) {
	h, ok := strings.CutPrefix(d.Digest, "sha256:")
	if !ok || !isHex64(h) {
		return nil, fmt.Sprintf("the signature blob digest %q is not a sha256 digest", d.Digest), nil
	}
	if d.Size < 0 || d.Size > MaxImageSignatureBlob {
		return nil, fmt.Sprintf("the signature blob %s is %d bytes, more than the %d a signature can be", d.Digest, d.Size, MaxImageSignatureBlob), nil
	}
	data, err = read(d.Digest)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Sprintf("the signature blob %s is not in the bundle", d.Digest), nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("read signature blob %s: %w", d.Digest, err)
	}
	if int64(len(data)) != d.Size {
		return nil, fmt.Sprintf("the signature blob %s is %d bytes, its descriptor says %d", d.Digest, len(data), d.Size), nil
	}
	if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != h {
		return nil, fmt.Sprintf("the signature blob %s does not match its digest", d.Digest), nil
	}
	return data, "", nil
}

func verifyLegacySignatures(subject, manifestDigest string, m sigManifest, read BlobReader, keys []PublicKey) ([]ImageSignatureCheck, error) {
	var out []ImageSignatureCheck
	n := 0
	for _, l := range m.Layers {
		if l.MediaType != MediaTypeCosignSimpleSigning {
			continue
		}
		n++
		if n > MaxImageSignatureLayers {
			out = append(out, ImageSignatureCheck{
				Format: FormatCosignLegacy, Manifest: manifestDigest, Status: ImageSigInvalid, Code: finding.ImageSignatureInvalid,
				Message: fmt.Sprintf("the signature manifest holds more than %d signatures; the rest are not checked", MaxImageSignatureLayers),
			})
			break
		}
		c, err := verifyLegacyLayer(subject, l, read, keys)
		if err != nil {
			return nil, err
		}
		c.Manifest = manifestDigest
		out = append(out, c)
	}
	return out, nil
}

func verifyLegacyLayer(subject string, l sigDescriptor, read BlobReader, keys []PublicKey) (ImageSignatureCheck, error) {
	c := ImageSignatureCheck{Format: FormatCosignLegacy, Layer: l.Digest}
	invalid := func(msg string) (ImageSignatureCheck, error) {
		c.Status, c.Code, c.Message = ImageSigInvalid, finding.ImageSignatureInvalid, msg
		return c, nil
	}
	sigB64, ok := l.Annotations[AnnotationCosignSignature]
	if !ok || sigB64 == "" {
		return invalid("the simple-signing layer has no " + AnnotationCosignSignature + " annotation")
	}
	sig, err := base64.StdEncoding.DecodeString(sigB64)
	if err != nil {
		return invalid("the " + AnnotationCosignSignature + " annotation is not base64")
	}
	body, problem, err := readSignatureBlob(read, l)
	if err != nil || problem != "" {
		c.Status, c.Code, c.Message = ImageSigInvalid, finding.ImageSignatureInvalid, problem
		return c, err
	}
	var p payload.SimpleContainerImage
	if err := json.Unmarshal(body, &p); err != nil {
		return invalid("the simple-signing payload is not JSON: " + err.Error())
	}
	if p.Critical.Type != payload.CosignSignatureType {
		return invalid(fmt.Sprintf("the simple-signing payload's critical.type is %q, not %q", p.Critical.Type, payload.CosignSignatureType))
	}
	claimed := p.Critical.Image.DockerManifestDigest
	c.Claimed = []string{claimed}
	for _, k := range keys {
		if k.verifier.VerifySignature(bytes.NewReader(sig), bytes.NewReader(body)) != nil {
			continue
		}
		c.KeyFingerprint = k.fingerprint
		if claimed != subject {
			return invalid(fmt.Sprintf("signed by %s for image %s, not for this image %s", describeKey(k), claimed, subject))
		}
		c.Status, c.Message = ImageSigValid, "signed by "+describeKey(k)
		return c, nil
	}
	if claimed != subject {
		return invalid(fmt.Sprintf("the signature is for image %s, not for this image %s", claimed, subject))
	}
	c.Status, c.Code = ImageSigUnknownKey, finding.ImageSignatureUnknownKey
	if _, keyless := l.Annotations[AnnotationCosignCertificate]; keyless {
		c.Message = "signed with a certificate (keyless), not by a given key: refdoctor verifies offline against public keys only"
	} else {
		// A simple-signing layer does not name its key, so another signer
		// and an altered payload look the same.
		c.Message = "no given key verifies this signature: it was made by another key, or altered; tried " + describeKeys(keys)
	}
	return c, nil
}

func verifyBundleSignature(subject, manifestDigest string, m sigManifest, read BlobReader, keys []PublicKey) (ImageSignatureCheck, error) {
	c := ImageSignatureCheck{Format: FormatSigstoreBundle, Manifest: manifestDigest}
	invalid := func(msg string) (ImageSignatureCheck, error) {
		c.Status, c.Code, c.Message = ImageSigInvalid, finding.ImageSignatureInvalid, msg
		return c, nil
	}
	var layers []sigDescriptor
	for _, l := range m.Layers {
		if l.MediaType == SigstoreBundleMediaType {
			layers = append(layers, l)
		}
	}
	if len(layers) != 1 {
		return invalid(fmt.Sprintf("the signature referrer has %d Sigstore bundle layers, not one", len(layers)))
	}
	c.Layer = layers[0].Digest
	body, problem, err := readSignatureBlob(read, layers[0])
	if err != nil || problem != "" {
		c.Status, c.Code, c.Message = ImageSigInvalid, finding.ImageSignatureInvalid, problem
		return c, err
	}
	b, err := parseSigstoreBundle(body)
	if err != nil {
		return invalid("the signature cannot be read: " + err.Error())
	}
	info := describeSigstoreBundle(b)
	c.Claimed = claimedSubjects(info)
	digest, _ := hex.DecodeString(strings.TrimPrefix(subject, "sha256:"))
	claimsSubject := slices.Contains(c.Claimed, subject)
	if info.Certificate {
		if !claimsSubject {
			return invalid(fmt.Sprintf("the signature is for %s, not for this image %s", strings.Join(c.Claimed, ", "), subject))
		}
		c.Status, c.Code = ImageSigUnknownKey, finding.ImageSignatureUnknownKey
		c.Message = "signed with a certificate (keyless), not by a given key: refdoctor verifies offline against public keys only"
		return c, nil
	}
	for _, k := range keys {
		res, err := verifySigstoreBundleResult(b, k, verify.WithArtifactDigest("sha256", digest))
		if err != nil {
			continue
		}
		c.KeyFingerprint = k.fingerprint
		if st := res.Statement; st != nil && st.GetPredicateType() != finding.PredicateCosignSign {
			return invalid(fmt.Sprintf("signed by %s, but it is an attestation of type %q, not a cosign signature", describeKey(k), st.GetPredicateType()))
		}
		c.Status, c.Message = ImageSigValid, "signed by "+describeKey(k)
		return c, nil
	}
	for _, k := range keys {
		if signatureMadeBy(b, k) {
			c.KeyFingerprint = k.fingerprint
			return invalid(fmt.Sprintf("signed by %s for %s, not for this image %s", describeKey(k), orUnknown(strings.Join(c.Claimed, ", ")), subject))
		}
	}
	if !claimsSubject {
		return invalid(fmt.Sprintf("the signature is for %s, not for this image %s", orUnknown(strings.Join(c.Claimed, ", ")), subject))
	}
	for _, k := range keys {
		if info.KeyHint != "" && (info.KeyHint == k.hint() || info.KeyFingerprint == k.fingerprint) {
			c.KeyFingerprint = k.fingerprint
			return invalid(fmt.Sprintf("the signature names %s but does not verify with it: it was altered", describeKey(k)))
		}
	}
	c.Status, c.Code = ImageSigUnknownKey, finding.ImageSignatureUnknownKey
	c.KeyFingerprint = info.KeyFingerprint
	if info.KeyFingerprint != "" {
		c.Message = fmt.Sprintf("signed by another key (fingerprint %s), not by %s", info.KeyFingerprint, describeKeys(keys))
	} else {
		c.Message = "signed by another key, not by " + describeKeys(keys)
	}
	return c, nil
}

// claimedSubjects lists the image digests a signature says it is for: the
// subjects of a DSSE envelope's in-toto statement, or a message
// signature's digest. They are read unverified, to explain a failure.
func claimedSubjects(info SignatureInfo) []string {
	var out []string
	if info.SignedSHA256 != "" {
		out = append(out, "sha256:"+info.SignedSHA256)
	}
	for _, h := range info.StatementSHA256 {
		out = append(out, "sha256:"+h)
	}
	return out
}
