package bundle

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"

	"github.com/refdoctor/refdoctor/finding"
)

// Signed bundles. A signed bundle carries a Sigstore bundle (protobuf-specs
// bundle v0.3, JSON) holding a signature over the exact bytes of
// manifest.yaml, as the archive member right after manifest.yaml, so that a
// streaming reader knows whether to trust the listing before it reads any
// other member. The same file is written next to the archive as the
// sidecar OUT.sigstore.json, which `cosign verify-blob --key cosign.pub
// --bundle OUT.sigstore.json --insecure-ignore-tlog=true manifest.yaml`
// accepts.
//
// This package holds what the format says about signatures: the member's
// name and place (SignatureOrder), the verdicts (SignatureResult,
// SignatureReport) and the interfaces through which Validate, Export and
// AttachSignature reach the cryptography. Keys, signing and verification
// are package bundle/signing, which links sigstore-go; keeping them there
// keeps the validator free of the network code sigstore-go links.
const (
	// SignatureMember is the archive member holding the signature of
	// manifest.yaml. It must directly follow manifest.yaml, and a bundle
	// holds it at most once. manifest.yaml does not list it: it is made
	// from manifest.yaml's bytes, so manifest.yaml cannot hold its checksum.
	SignatureMember = ManifestPath + SignatureSidecarSuffix
	// SignatureSidecarSuffix is appended to the bundle's file name for the
	// signature written next to it: bundle.tgz gets bundle.tgz.sigstore.json.
	SignatureSidecarSuffix = ".sigstore.json"
	// SigstoreBundleMediaType is the media type of the signatures refdoctor
	// writes: Sigstore bundle format v0.3.
	SigstoreBundleMediaType = "application/vnd.dev.sigstore.bundle.v0.3+json"
	// MaxSignatureSize bounds a signature member or sidecar. A key-signed
	// bundle is under 1 KiB; one with certificates and log entries a few
	// KiB. A bigger file cannot be a signature and is not read.
	MaxSignatureSize = 256 << 10
)

// SignatureSidecarPath is where the signature of the bundle written to out
// goes: out + ".sigstore.json".
func SignatureSidecarPath(out string) string { return out + SignatureSidecarSuffix }

// SignatureInfo is what a signature says about itself, before any key is
// tried: enough for `bundle inspect` to show that a bundle is signed, and
// by which key. Everything in it is read unverified.
type SignatureInfo struct {
	// MediaType is the Sigstore bundle's media type.
	MediaType string `json:"media_type"`
	// Content is "message-signature" or "dsse".
	Content string `json:"content"`
	// KeyHint is the verification material's public key hint, "" when the
	// signature carries a certificate instead.
	KeyHint string `json:"key_hint,omitempty"`
	// KeyFingerprint is the fingerprint the hint names, when the hint has
	// the usual form (base64 of the key's SHA-256); "" otherwise.
	KeyFingerprint string `json:"key_fingerprint,omitempty"`
	// Certificate is true when the signature carries a certificate
	// (keyless signing) instead of a key hint.
	Certificate bool `json:"certificate,omitempty"`
	// SignedSHA256 is the hex SHA-256 the message signature claims to be
	// over; "" for DSSE.
	SignedSHA256 string `json:"signed_sha256,omitempty"`
	// StatementSHA256 lists the hex SHA-256 subjects of a DSSE envelope's
	// in-toto statement. Like SignedSHA256 it is read unverified.
	StatementSHA256 []string `json:"statement_sha256,omitempty"`
	// TlogEntries and Timestamps count what the bundle carries; refdoctor
	// verifies offline and does not check them.
	TlogEntries int `json:"tlog_entries"`
	Timestamps  int `json:"timestamps"`
}

// Claims reports whether the signature says it is for data: its message
// digest, or one of its statement's subjects, is data's SHA-256. It is no
// verification, but it tells a signature made for another manifest.yaml
// before a key is at hand, as when `bundle sign --signature` attaches one.
func (i SignatureInfo) Claims(data []byte) bool {
	sum := sha256.Sum256(data)
	return i.ClaimsSHA256(hex.EncodeToString(sum[:]))
}

// ClaimsSHA256 is Claims for data known by its hex SHA-256.
func (i SignatureInfo) ClaimsSHA256(h string) bool {
	return h != "" && (i.SignedSHA256 == h || slices.Contains(i.StatementSHA256, h))
}

// SignatureResult is the verdict on a bundle's signature. Code is empty
// when a given key verified the signature; otherwise it is
// finding.SignatureMissing, finding.SignatureInvalid or finding.UnknownKey.
type SignatureResult struct {
	Code finding.Code `json:"code,omitempty"`
	// KeyFingerprint is the fingerprint of the key that verified the
	// signature (Code empty), or, for SignatureInvalid, of the given key
	// the signature names or was made with, or for UnknownKey the
	// fingerprint the signature's hint names, if it names one.
	KeyFingerprint string `json:"key_fingerprint,omitempty"`
	// KeySource is where that key came from (its file), when it is one of
	// the given keys.
	KeySource string `json:"key_source,omitempty"`
	// ManifestSHA256 is the hex SHA-256 of the manifest.yaml bytes checked.
	ManifestSHA256 string `json:"manifest_sha256"`
	// Info is what the signature says about itself (zero when missing or
	// unreadable).
	Info SignatureInfo `json:"signature"`
	// Message says what was found, for people.
	Message string `json:"message"`
}

// OK reports whether one of the given keys verified the signature.
func (r SignatureResult) OK() bool { return r.Code == "" }

// ManifestVerifier checks the signature member against manifest.yaml for
// Validate (WithSignatureVerifier). Package bundle/signing implements it
// with sigstore-go and the operator's public keys; Validate itself links
// no cryptography beyond SHA-256.
type ManifestVerifier interface {
	// Describe reads a signature without verifying it, for the report of
	// a signed bundle; an error means sig is not a signature it can read.
	Describe(sig []byte) (SignatureInfo, error)
	// CanVerify reports whether there are keys to verify with; without,
	// Validate only describes the signature.
	CanVerify() bool
	// NeedsManifest reports whether VerifyManifestSignature needs
	// manifest.yaml's bytes, not only their SHA-256: a pure Ed25519
	// message signature covers the message itself. Validate then holds
	// manifest.yaml (at most its 16 MiB limit) until the signature is read.
	NeedsManifest() bool
	// VerifyManifestSignature checks sig, the signature member's bytes,
	// against manifest.yaml, given by its SHA-256 and, when NeedsManifest
	// says so, its bytes (nil otherwise). sig is never empty.
	VerifyManifestSignature(manifest []byte, manifestSHA256 [32]byte, sig []byte) SignatureResult
}

// ManifestSigner signs manifest.yaml for Export and AttachSignature.
// Package bundle/signing's SigningKey implements it.
type ManifestSigner interface {
	// SignManifest returns the signature member for the exact bytes of
	// manifest.yaml: a Sigstore bundle in JSON.
	SignManifest(manifestYAML []byte) ([]byte, error)
	// Fingerprint names the public half of the signing key.
	Fingerprint() string
}

// Signature states, as SignatureReport.Status reports them.
const (
	// SignatureUnsigned: the bundle holds no signature member, and none
	// was required.
	SignatureUnsigned = "unsigned"
	// SignatureSigned: the bundle holds a signature member in its place;
	// no key was given to verify it.
	SignatureSigned = "signed"
	// SignatureVerified: a given key verified the signature over
	// manifest.yaml's exact bytes.
	SignatureVerified = "verified"
	// SignatureFailed: verification or a requirement failed; Code says
	// which (SignatureMissing, SignatureInvalid, UnknownKey).
	SignatureFailed = "failed"
	// SignatureUnknown: reading stopped before the signature's place, so
	// whether the bundle is signed is not known.
	SignatureUnknown = "unknown"
)

// SignatureReport is what validation found about the bundle's signature:
// the `signature` object of `bundle validate -o json`.
type SignatureReport struct {
	// Status is unsigned, signed (not verified: no key given), verified,
	// failed (Code says why), or unknown (reading stopped before the
	// signature's place).
	Status string `json:"status"`
	// Signed tells whether the bundle holds a signature member.
	Signed bool `json:"signed"`
	// Checked tells whether keys were given to verify it with; Required
	// whether an unsigned bundle fails (--require-signature).
	Checked  bool `json:"checked"`
	Required bool `json:"required"`
	// Code is "" unless Status is failed: SignatureMissing,
	// SignatureInvalid (also for a misplaced signature member), UnknownKey,
	// or DuplicateMember for a second signature member.
	Code finding.Code `json:"code,omitempty"`
	// KeyFingerprint and KeySource name the key that verified the
	// signature, or the key a failed one names or was made with; without
	// keys, the fingerprint the signature's hint names.
	KeyFingerprint string `json:"key_fingerprint,omitempty"`
	KeySource      string `json:"key_source,omitempty"`
	// ManifestSHA256 is the hex SHA-256 of manifest.yaml as read.
	ManifestSHA256 string `json:"manifest_sha256,omitempty"`
	// Info is what the signature says about itself (nil when unsigned or
	// unreadable).
	Info    *SignatureInfo `json:"info,omitempty"`
	Message string         `json:"message,omitempty"`
}

// OK reports whether the signature passes what was asked of it: verified
// when keys were given, present when required, and not failed.
func (s SignatureReport) OK() bool {
	return s.Status != SignatureFailed && !((s.Checked || s.Required) && s.Status == SignatureUnknown)
}

// SignatureOrder checks, one member at a time as a streaming reader meets
// them, the place of SignatureMember in an archive: it must come right
// after manifest.yaml, and at most once. A signature anywhere else arrives
// after members a reader has already trusted, so the bundle is malformed
// even if the signature verifies.
type SignatureOrder struct {
	prev  string
	count int
}

// Member records the next regular member, by its name as the validator
// canonicalises it (leading "./" and directory entries dropped). It
// returns a problem, or code "" when the member keeps the rule:
// DuplicateMember for a second signature member, SignatureInvalid for one
// that does not follow manifest.yaml.
func (o *SignatureOrder) Member(name string) (finding.Code, string) {
	prev := o.prev
	o.prev = name
	if name != SignatureMember {
		return "", ""
	}
	o.count++
	switch {
	case o.count > 1:
		return finding.DuplicateMember, "a second " + SignatureMember + ": a bundle holds one signature"
	case prev != ManifestPath:
		after := "as the first member"
		if prev != "" {
			after = "after " + prev
		}
		return finding.SignatureInvalid, SignatureMember + " comes " + after + ": it must directly follow " + ManifestPath + ", so that it is checked before any other member is trusted"
	}
	return "", ""
}

// Signed reports whether a signature member was seen.
func (o *SignatureOrder) Signed() bool { return o.count > 0 }
