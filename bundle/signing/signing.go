package signing

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	sgbundle "github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/verify"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/refdoctor/refdoctor/bundle"
	"github.com/refdoctor/refdoctor/finding"
)

// Environment variables holding the password of an encrypted cosign key,
// looked up in this order.
const (
	EnvKeyPassword    = "REFDOCTOR_KEY_PASSWORD"
	EnvCosignPassword = "COSIGN_PASSWORD"
)

// Signature errors. A bad signature is not an error but a bundle.SignatureResult;
// these are for keys that cannot be used and calls that cannot be answered.
var (
	// ErrKeyPasswordMissing: the signing key is encrypted and neither
	// REFDOCTOR_KEY_PASSWORD nor COSIGN_PASSWORD is set.
	ErrKeyPasswordMissing = errors.New("the signing key is encrypted and no password is set: set " + EnvKeyPassword + " (or " + EnvCosignPassword + ")")
	// ErrBadKey: the file is not a key refdoctor can use (not PEM, wrong
	// PEM type, wrong password, unsupported algorithm).
	ErrBadKey = errors.New("unusable key")
	// ErrNoVerifyKeys: verification was asked for without any public key.
	ErrNoVerifyKeys = errors.New("no public key to verify with: pass --verify-key PUB (a PEM public key such as cosign.pub)")
	// ErrNotSigstoreBundle: a signature file is not a Sigstore bundle
	// refdoctor can read.
	ErrNotSigstoreBundle = errors.New("not a Sigstore bundle")
)

// PublicKey is a public key that verifies signatures: a bundle's signing
// key on the export side, or an image signer's key.
type PublicKey struct {
	key         crypto.PublicKey
	verifier    signature.Verifier
	fingerprint string
	// Source says where the key came from (a file name), for messages.
	Source string
}

// Fingerprint identifies a public key: the SHA-256 of its DER-encoded
// SubjectPublicKeyInfo, as 64 lowercase hex digits. It is what
// `openssl pkey -pubin -in cosign.pub -outform DER | sha256sum` prints.
func (k PublicKey) Fingerprint() string { return k.fingerprint }

// Algorithm names the key type: "ecdsa-p256", "ecdsa-p384",
// "ecdsa-p521", "ed25519" or "rsa-N".
func (k PublicKey) Algorithm() string { return keyAlgorithm(k.key) }

// IsZero reports whether k holds no key.
func (k PublicKey) IsZero() bool { return k.key == nil }

// PEM returns the key as a PEM "PUBLIC KEY" block, as cosign.pub holds it.
func (k PublicKey) PEM() ([]byte, error) { return cryptoutils.MarshalPublicKeyToPEM(k.key) }

// String shows the key by algorithm and fingerprint.
func (k PublicKey) String() string {
	if k.IsZero() {
		return "no key"
	}
	return k.Algorithm() + " " + k.fingerprint
}

// hint is the key hint refdoctor writes into a signature: the standard
// base64 of the SHA-256 of the DER SubjectPublicKeyInfo, as sigstore-go
// and cosign write it. It decodes to the fingerprint.
func (k PublicKey) hint() string {
	raw, _ := hex.DecodeString(k.fingerprint)
	return base64.StdEncoding.EncodeToString(raw)
}

// ParsePublicKey reads a PEM public key ("PUBLIC KEY", as in cosign.pub):
// ECDSA, Ed25519 or RSA of 2048 bits or more.
func ParsePublicKey(pemBytes []byte) (PublicKey, error) {
	pub, err := cryptoutils.UnmarshalPEMToPublicKey(pemBytes)
	if err != nil {
		return PublicKey{}, fmt.Errorf("%w: not a PEM public key (%v); a public key file starts with -----BEGIN PUBLIC KEY-----, as cosign.pub does", ErrBadKey, err)
	}
	return newPublicKey(pub)
}

// LoadPublicKey reads a PEM public key file such as cosign.pub.
func LoadPublicKey(path string) (PublicKey, error) {
	data, err := readKeyFile(path)
	if err != nil {
		return PublicKey{}, err
	}
	k, err := ParsePublicKey(data)
	if err != nil {
		return PublicKey{}, fmt.Errorf("public key %s: %w", path, err)
	}
	k.Source = path
	return k, nil
}

func newPublicKey(pub crypto.PublicKey) (PublicKey, error) {
	der, err := cryptoutils.MarshalPublicKeyToDER(pub)
	if err != nil {
		return PublicKey{}, fmt.Errorf("%w: %v", ErrBadKey, err)
	}
	// The default verifier of each key type is what cosign verifies key
	// signatures with: ECDSA with the curve's hash, pure Ed25519, RSA
	// PKCS#1 v1.5 with SHA-256. It refuses key types and sizes Sigstore
	// does not support.
	v, err := signature.LoadDefaultVerifier(pub)
	if err != nil {
		return PublicKey{}, fmt.Errorf("%w: %v", ErrBadKey, err)
	}
	sum := sha256.Sum256(der)
	return PublicKey{key: pub, verifier: v, fingerprint: hex.EncodeToString(sum[:])}, nil
}

func keyAlgorithm(pub crypto.PublicKey) string {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return "ecdsa-p256"
		case elliptic.P384():
			return "ecdsa-p384"
		case elliptic.P521():
			return "ecdsa-p521"
		}
		return "ecdsa"
	case ed25519.PublicKey:
		return "ed25519"
	case *rsa.PublicKey:
		return fmt.Sprintf("rsa-%d", k.N.BitLen())
	}
	return fmt.Sprintf("%T", pub)
}

// PasswordFunc returns the password of an encrypted key. It is called only
// for encrypted keys.
type PasswordFunc func() ([]byte, error)

// EnvPassword reads the key password from REFDOCTOR_KEY_PASSWORD, else
// COSIGN_PASSWORD (an empty value is a password: cosign allows it), else
// fails with ErrKeyPasswordMissing.
func EnvPassword() ([]byte, error) {
	for _, name := range []string{EnvKeyPassword, EnvCosignPassword} {
		if v, ok := os.LookupEnv(name); ok {
			return []byte(v), nil
		}
	}
	return nil, ErrKeyPasswordMissing
}

// SigningKey signs manifests. It holds a private key: its String and
// LogValue show only the public half, so that printing or logging one
// leaks nothing.
type SigningKey struct {
	signer signature.SignerVerifier
	pub    PublicKey
}

// Public is the key that verifies this key's signatures.
func (k *SigningKey) Public() PublicKey { return k.pub }

// String shows the key by algorithm and public fingerprint.
func (k *SigningKey) String() string { return "signing key " + k.pub.String() }

// LogValue keeps the private key out of structured logs.
func (k *SigningKey) LogValue() slog.Value { return slog.StringValue(k.String()) }

// GoString keeps the private key out of %#v.
func (k *SigningKey) GoString() string { return k.String() }

// ParseSigningKey reads a private key: a cosign key file (`cosign
// generate-key-pair`: PEM "ENCRYPTED SIGSTORE PRIVATE KEY" or the older
// "ENCRYPTED COSIGN PRIVATE KEY", decrypted with password), or an
// unencrypted PKCS#8 PEM ("PRIVATE KEY"). The key must be ECDSA P-256 or
// Ed25519. password may be nil when the key is not encrypted.
func ParseSigningKey(pemBytes []byte, password PasswordFunc) (*SigningKey, error) {
	var passErr error
	asked := false
	pf := func(bool) ([]byte, error) {
		asked = true
		if password == nil {
			passErr = ErrKeyPasswordMissing
			return nil, passErr
		}
		p, err := password()
		passErr = err
		return p, err
	}
	priv, err := cryptoutils.UnmarshalPEMToPrivateKey(pemBytes, pf)
	switch {
	case passErr != nil:
		return nil, passErr
	case err != nil && asked:
		return nil, fmt.Errorf("%w: cannot decrypt the key: wrong password? (%v)", ErrBadKey, err)
	case err != nil:
		return nil, fmt.Errorf("%w: %v; use a cosign key file (cosign generate-key-pair) or an unencrypted PKCS#8 PEM (-----BEGIN PRIVATE KEY-----)", ErrBadKey, err)
	}
	signer, ok := priv.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%w: %T is not a signing key", ErrBadKey, priv)
	}
	switch k := signer.Public().(type) {
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return nil, fmt.Errorf("%w: refdoctor signs with ECDSA P-256 or Ed25519 keys, this one is %s", ErrBadKey, keyAlgorithm(k))
		}
	case ed25519.PublicKey:
	default:
		return nil, fmt.Errorf("%w: refdoctor signs with ECDSA P-256 or Ed25519 keys, this one is %s", ErrBadKey, keyAlgorithm(k))
	}
	// Default signer: ECDSA P-256 with SHA-256, pure Ed25519; the same
	// cosign uses for key signatures that go to no transparency log.
	sv, err := signature.LoadDefaultSignerVerifier(priv)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadKey, err)
	}
	pub, err := newPublicKey(signer.Public())
	if err != nil {
		return nil, err
	}
	return &SigningKey{signer: sv, pub: pub}, nil
}

// LoadSigningKey reads a key file for ParseSigningKey, with the password
// from the environment (EnvPassword).
func LoadSigningKey(path string) (*SigningKey, error) {
	data, err := readKeyFile(path)
	if err != nil {
		return nil, err
	}
	k, err := ParseSigningKey(data, EnvPassword)
	if err != nil {
		return nil, fmt.Errorf("signing key %s: %w", path, err)
	}
	k.pub.Source = path
	return k, nil
}

// maxKeyFile bounds a key file: a PEM key is well under 16 KiB.
const maxKeyFile = 64 << 10

func readKeyFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read key: %w", err)
	}
	defer f.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(io.LimitReader(f, maxKeyFile+1)); err != nil {
		return nil, fmt.Errorf("read key %s: %w", path, err)
	}
	if buf.Len() > maxKeyFile {
		return nil, fmt.Errorf("key %s: %w: larger than %d bytes, not a PEM key", path, ErrBadKey, maxKeyFile)
	}
	return buf.Bytes(), nil
}

// SignManifest signs the exact bytes of manifest.yaml with key and returns
// the signature as a Sigstore bundle v0.3 in JSON: a message signature
// whose digest is the SHA-256 of manifestYAML, the key's hint as
// verification material, and no transparency log entry or timestamp.
// The result is the content of bundle.SignatureMember and of the sidecar.
func SignManifest(manifestYAML []byte, key *SigningKey) ([]byte, error) {
	if key == nil {
		return nil, errors.New("sign manifest: no signing key")
	}
	sig, err := key.signer.SignMessage(bytes.NewReader(manifestYAML))
	if err != nil {
		return nil, fmt.Errorf("sign %s: %w", bundle.ManifestPath, err)
	}
	digest := sha256.Sum256(manifestYAML)
	pb := &protobundle.Bundle{
		MediaType: bundle.SigstoreBundleMediaType,
		VerificationMaterial: &protobundle.VerificationMaterial{
			Content: &protobundle.VerificationMaterial_PublicKey{
				PublicKey: &protocommon.PublicKeyIdentifier{Hint: key.pub.hint()},
			},
		},
		Content: &protobundle.Bundle_MessageSignature{
			MessageSignature: &protocommon.MessageSignature{
				MessageDigest: &protocommon.HashOutput{Algorithm: protocommon.HashAlgorithm_SHA2_256, Digest: digest[:]},
				Signature:     sig,
			},
		},
	}
	out, err := protojson.Marshal(pb)
	if err != nil {
		return nil, fmt.Errorf("encode signature: %w", err)
	}
	// protojson varies its whitespace on purpose; compacting makes the
	// member's bytes depend on the signature alone.
	var compact bytes.Buffer
	if err := json.Compact(&compact, out); err != nil {
		return nil, fmt.Errorf("encode signature: %w", err)
	}
	// Check what was written with the verifier that will read it, so that
	// a signature refdoctor writes is one refdoctor accepts.
	res, err := VerifyManifest(manifestYAML, compact.Bytes(), []PublicKey{key.pub})
	if err != nil {
		return nil, err
	}
	if !res.OK() {
		return nil, fmt.Errorf("sign %s: the new signature does not verify: %s", bundle.ManifestPath, res.Message)
	}
	return compact.Bytes(), nil
}

// InspectSignature reads a signature without verifying it. It fails with
// ErrNotSigstoreBundle when sig is not a Sigstore bundle.
func InspectSignature(sig []byte) (bundle.SignatureInfo, error) {
	b, err := parseSigstoreBundle(sig)
	if err != nil {
		return bundle.SignatureInfo{}, err
	}
	return describeSigstoreBundle(b), nil
}

func describeSigstoreBundle(b *sgbundle.Bundle) bundle.SignatureInfo {
	info := bundle.SignatureInfo{MediaType: b.GetMediaType()}
	switch c := b.GetContent().(type) {
	case *protobundle.Bundle_MessageSignature:
		info.Content = "message-signature"
		if d := c.MessageSignature.GetMessageDigest(); d.GetAlgorithm() == protocommon.HashAlgorithm_SHA2_256 {
			info.SignedSHA256 = hex.EncodeToString(d.GetDigest())
		}
	case *protobundle.Bundle_DsseEnvelope:
		info.Content = "dsse"
		info.StatementSHA256 = statementSubjects(c.DsseEnvelope.GetPayload())
	}
	vm := b.GetVerificationMaterial()
	if pk := vm.GetPublicKey(); pk != nil {
		info.KeyHint = pk.GetHint()
		info.KeyFingerprint = fingerprintFromHint(info.KeyHint)
	} else if vm.GetCertificate() != nil || vm.GetX509CertificateChain() != nil {
		info.Certificate = true
	}
	info.TlogEntries = len(vm.GetTlogEntries())
	info.Timestamps = len(vm.GetTimestampVerificationData().GetRfc3161Timestamps())
	return info
}

// statementSubjects lists the sha256 subjects of an in-toto statement.
func statementSubjects(payload []byte) []string {
	var st struct {
		Subject []struct {
			Digest map[string]string `json:"digest"`
		} `json:"subject"`
	}
	if json.Unmarshal(payload, &st) != nil {
		return nil
	}
	var out []string
	for _, s := range st.Subject {
		if d := s.Digest["sha256"]; d != "" {
			out = append(out, d)
		}
	}
	return out
}

// fingerprintFromHint turns a hint of the usual form (standard base64 of a
// SHA-256) into a fingerprint; other hints name no fingerprint.
func fingerprintFromHint(hint string) string {
	raw, err := base64.StdEncoding.DecodeString(hint)
	if err != nil || len(raw) != sha256.Size {
		return ""
	}
	return hex.EncodeToString(raw)
}

func parseSigstoreBundle(sig []byte) (*sgbundle.Bundle, error) {
	if len(sig) > bundle.MaxSignatureSize {
		return nil, fmt.Errorf("%w: %d bytes, larger than %d", ErrNotSigstoreBundle, len(sig), bundle.MaxSignatureSize)
	}
	var b sgbundle.Bundle
	if err := b.UnmarshalJSON(sig); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotSigstoreBundle, err)
	}
	if b.Content == nil {
		return nil, fmt.Errorf("%w: it holds no signature", ErrNotSigstoreBundle)
	}
	return &b, nil
}

// VerifyManifest checks that sig, a Sigstore bundle, is a valid signature
// of the exact bytes manifestYAML by one of keys. sig empty means the
// bundle is unsigned. The verification is sigstore-go's, with the keys as
// the only trusted material and no transparency log or timestamp required,
// as `cosign verify-blob --key --insecure-ignore-tlog=true` does. Message
// signatures and DSSE envelopes (an in-toto statement whose subject is
// manifest.yaml's SHA-256) are both accepted.
//
// The result tells the failures apart:
//   - SignatureMissing: sig is empty.
//   - SignatureInvalid: sig is not a Sigstore bundle; or a given key made
//     the signature but manifest.yaml changed since (the signature holds
//     for another SHA-256); or the signature names a given key by its hint
//     but does not verify.
//   - UnknownKey: no given key verifies the signature and it names none of
//     them; it carries a certificate instead of a key; or it was made by
//     another key.
//
// The error is non-nil only when keys is empty (ErrNoVerifyKeys).
func VerifyManifest(manifestYAML, sig []byte, keys []PublicKey) (bundle.SignatureResult, error) {
	if len(keys) == 0 {
		return bundle.SignatureResult{}, ErrNoVerifyKeys
	}
	return verifyManifest(manifestYAML, sha256.Sum256(manifestYAML), sig, keys), nil
}

// verifyManifest is VerifyManifest on manifest.yaml given by its SHA-256
// and, when a key needs them (pure Ed25519 message signatures), its bytes;
// manifestYAML nil means only the digest is known.
func verifyManifest(manifestYAML []byte, sum [32]byte, sig []byte, keys []PublicKey) bundle.SignatureResult {
	res := bundle.SignatureResult{ManifestSHA256: hex.EncodeToString(sum[:])}
	if len(bytes.TrimSpace(sig)) == 0 {
		res.Code = finding.SignatureMissing
		res.Message = "the bundle is not signed: it has no " + bundle.SignatureMember
		return res
	}
	b, err := parseSigstoreBundle(sig)
	if err != nil {
		res.Code = finding.SignatureInvalid
		res.Message = "the signature cannot be read: " + err.Error()
		return res
	}
	res.Info = describeSigstoreBundle(b)
	if res.Info.Certificate {
		res.Code = finding.UnknownKey
		res.Message = "the signature carries a certificate (keyless signing), not a key: refdoctor verifies offline against public keys only"
		return res
	}
	found := func(code finding.Code, k PublicKey) {
		res.Code, res.KeyFingerprint, res.KeySource = code, k.fingerprint, k.Source
	}
	for _, k := range keys {
		artifact := verify.WithArtifactDigest("sha256", sum[:])
		if manifestYAML != nil {
			artifact = verify.WithArtifact(bytes.NewReader(manifestYAML))
		}
		if err := verifySigstoreBundle(b, k, artifact); err == nil {
			found("", k)
			res.Message = "signed by " + describeKey(k)
			return res
		}
	}
	// No key verifies the signature over these bytes. Was it made by one
	// of them over other bytes (manifest.yaml changed after signing)?
	for _, k := range keys {
		if signatureMadeBy(b, k) {
			found(finding.SignatureInvalid, k)
			res.Message = fmt.Sprintf("%s changed after it was signed: %s made the signature, for sha256 %s, but %s has sha256 %s",
				bundle.ManifestPath, describeKey(k), orUnknown(res.Info.SignedSHA256), bundle.ManifestPath, res.ManifestSHA256)
			return res
		}
	}
	for _, k := range keys {
		if res.Info.KeyHint != "" && (res.Info.KeyHint == k.hint() || res.Info.KeyFingerprint == k.fingerprint) {
			found(finding.SignatureInvalid, k)
			if res.Info.SignedSHA256 != "" && res.Info.SignedSHA256 != res.ManifestSHA256 {
				res.Message = fmt.Sprintf("%s changed after it was signed: the signature names %s and is for sha256 %s, but %s has sha256 %s",
					bundle.ManifestPath, describeKey(k), res.Info.SignedSHA256, bundle.ManifestPath, res.ManifestSHA256)
			} else {
				res.Message = fmt.Sprintf("the signature names %s but does not verify with it: the signature or %s was altered", describeKey(k), bundle.ManifestPath)
			}
			return res
		}
	}
	res.Code = finding.UnknownKey
	res.KeyFingerprint = res.Info.KeyFingerprint
	switch {
	case res.Info.KeyFingerprint != "":
		res.Message = fmt.Sprintf("signed by another key (fingerprint %s), not by %s", res.Info.KeyFingerprint, describeKeys(keys))
	case res.Info.KeyHint != "":
		res.Message = fmt.Sprintf("signed by another key (hint %q), not by %s", res.Info.KeyHint, describeKeys(keys))
	default:
		res.Message = "no given key verifies the signature: it was made by another key (or altered); tried " + describeKeys(keys)
	}
	return res
}

// signatureMadeBy reports whether k made b's signature, whatever artifact
// it is for: a message signature checked against the digest it claims, a
// DSSE envelope checked on its own. A pure Ed25519 message signature
// covers the message itself, not a digest, so it cannot be checked
// without the original bytes: false.
func signatureMadeBy(b *sgbundle.Bundle, k PublicKey) bool {
	switch c := b.GetContent().(type) {
	case *protobundle.Bundle_MessageSignature:
		if _, ok := k.key.(ed25519.PublicKey); ok {
			return false
		}
		d := c.MessageSignature.GetMessageDigest()
		alg := hashAlgorithmName(d.GetAlgorithm())
		if alg == "" {
			return false
		}
		return verifySigstoreBundle(b, k, verify.WithArtifactDigest(alg, d.GetDigest())) == nil
	case *protobundle.Bundle_DsseEnvelope:
		return verifySigstoreBundle(b, k, verify.WithoutArtifactUnsafe()) == nil
	}
	return false
}

func hashAlgorithmName(a protocommon.HashAlgorithm) string {
	switch a {
	case protocommon.HashAlgorithm_SHA2_256:
		return "sha256"
	case protocommon.HashAlgorithm_SHA2_384:
		return "sha384"
	case protocommon.HashAlgorithm_SHA2_512:
		return "sha512"
	}
	return ""
}

// verifySigstoreBundle runs sigstore-go's verifier with k as the only
// trusted key, whatever hint the bundle gives (as cosign --key does), no
// transparency log and no timestamp.
func verifySigstoreBundle(b *sgbundle.Bundle, k PublicKey, artifact verify.ArtifactPolicyOption) error {
	_, err := verifySigstoreBundleResult(b, k, artifact)
	return err
}

func verifySigstoreBundleResult(b *sgbundle.Bundle, k PublicKey, artifact verify.ArtifactPolicyOption) (*verify.VerificationResult, error) {
	expiring := root.NewExpiringKey(k.verifier, time.Time{}, time.Time{})
	tm := root.NewTrustedPublicKeyMaterial(func(string) (root.TimeConstrainedVerifier, error) { return expiring, nil })
	v, err := verify.NewVerifier(tm, verify.WithNoObserverTimestamps(), verify.WithoutStatementPredicate())
	if err != nil {
		return nil, err
	}
	return v.Verify(b, verify.NewPolicy(artifact, verify.WithKey()))
}

func describeKey(k PublicKey) string {
	s := "key " + k.fingerprint
	if k.Source != "" {
		s += " (" + k.Source + ")"
	}
	return s
}

func describeKeys(keys []PublicKey) string {
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = describeKey(k)
	}
	return strings.Join(parts, ", ")
}

func orUnknown(s string) string {
	if s == "" {
		return "(not given)"
	}
	return s
}
