package signing

import (
	"crypto/ed25519"
	"errors"

	"github.com/refdoctor/refdoctor/bundle"
	"github.com/refdoctor/refdoctor/finding"
)

// Verifier checks signatures against a set of public keys: any one of
// them verifying is enough. It implements bundle.ManifestVerifier, so
// that Validate checks a bundle's signature as it streams past; with no
// keys it only describes signatures.
type Verifier struct {
	keys []PublicKey
}

// NewVerifier trusts keys; none makes a Verifier that only describes
// signatures.
func NewVerifier(keys ...PublicKey) *Verifier {
	return &Verifier{keys: append([]PublicKey(nil), keys...)}
}

// LoadVerifier reads the public key files at paths (PEM, as cosign.pub).
// Every file must be a usable key: an operator who names a key means it.
func LoadVerifier(paths ...string) (*Verifier, error) {
	keys, err := LoadPublicKeys(paths...)
	if err != nil {
		return nil, err
	}
	return NewVerifier(keys...), nil
}

// LoadPublicKeys reads public key files, failing on the first that is not
// a usable key.
func LoadPublicKeys(paths ...string) ([]PublicKey, error) {
	var keys []PublicKey
	var errs []error
	for _, p := range paths {
		k, err := LoadPublicKey(p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		keys = append(keys, k)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return keys, nil
}

// Keys are the trusted keys.
func (v *Verifier) Keys() []PublicKey { return append([]PublicKey(nil), v.keys...) }

// CanVerify reports whether there is a key to verify with.
func (v *Verifier) CanVerify() bool { return len(v.keys) > 0 }

// Describe reads a signature without verifying it.
func (v *Verifier) Describe(sig []byte) (bundle.SignatureInfo, error) { return InspectSignature(sig) }

// NeedsManifest is true when a key is Ed25519: a pure Ed25519 message
// signature covers manifest.yaml itself, not its digest.
func (v *Verifier) NeedsManifest() bool {
	for _, k := range v.keys {
		if _, ok := k.key.(ed25519.PublicKey); ok {
			return true
		}
	}
	return false
}

// VerifyManifestSignature checks sig against manifest.yaml, known by its
// SHA-256 and, when NeedsManifest, its bytes; see VerifyManifest.
func (v *Verifier) VerifyManifestSignature(manifest []byte, sum [32]byte, sig []byte) bundle.SignatureResult {
	if len(v.keys) == 0 {
		return bundle.SignatureResult{Code: finding.UnknownKey, Message: ErrNoVerifyKeys.Error()}
	}
	return verifyManifest(manifest, sum, sig, v.keys)
}

// VerifyImageSignatures checks the signatures of one image against the
// Verifier's keys; see the function VerifyImageSignatures.
func (v *Verifier) VerifyImageSignatures(subject string, sigs []bundle.SignatureManifest, read bundle.BlobReader) (bundle.ImageSignatureReport, error) {
	return VerifyImageSignatures(subject, sigs, read, v.keys)
}

// SignManifest signs manifest.yaml's exact bytes (bundle.ManifestSigner).
func (k *SigningKey) SignManifest(manifestYAML []byte) ([]byte, error) {
	return SignManifest(manifestYAML, k)
}

// Fingerprint is the public key's fingerprint (bundle.ManifestSigner).
func (k *SigningKey) Fingerprint() string { return k.pub.fingerprint }

var (
	_ bundle.ManifestVerifier = (*Verifier)(nil)
	_ bundle.ManifestSigner   = (*SigningKey)(nil)
)
