package signing

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

	"github.com/refdoctor/refdoctor/bundle"
	"github.com/refdoctor/refdoctor/finding"
)

// Image signatures that travel in a bundle (see bundle.ImageSignatureKind
// for the two formats cosign stores them in) are checked against the
// image digest they are attached to, so that a signature copied from
// another image is invalid, not valid.

// VerifyImageSignatures checks every signature that travels with the image
// subject ("sha256:<hex>", the image manifest digest) against keys and
// returns the verdict on the image. sigs are the image's signature
// manifests: its legacy sha256-<hex>.sig manifest and its cosign v3
// referrers; manifests that are not image signatures
// (ImageSignatureKind "") are skipped, and none at all means unsigned.
// Blobs are read through read, bounded by bundle.MaxImageSignatureBlob.
//
// The error is non-nil when keys is empty (ErrNoVerifyKeys), subject is
// not a sha256 digest, or read fails for another reason than a missing
// blob: then the verdict would rest on an incomplete read and none is
// given.
func VerifyImageSignatures(subject string, sigs []bundle.SignatureManifest, read bundle.BlobReader, keys []PublicKey) (bundle.ImageSignatureReport, error) {
	if len(keys) == 0 {
		return bundle.ImageSignatureReport{}, ErrNoVerifyKeys
	}
	if h, ok := strings.CutPrefix(subject, "sha256:"); !ok || !isHex64(h) {
		return bundle.ImageSignatureReport{}, fmt.Errorf("verify image signatures: subject %q is not a sha256 digest", subject)
	}
	rep := bundle.ImageSignatureReport{Subject: subject, Signatures: []bundle.ImageSignatureCheck{}}
	for _, s := range sigs {
		checks, err := VerifyImageSignature(subject, s, read, keys)
		if err != nil {
			return bundle.ImageSignatureReport{}, err
		}
		rep.Signatures = append(rep.Signatures, checks...)
	}
	rep.Summarize()
	return rep, nil
}

// VerifyImageSignature checks the signatures in one signature manifest
// against the image subject: one check per simple-signing layer of a
// legacy manifest, one for a Sigstore bundle referrer, none when the
// manifest is not an image signature. Errors are as for
// VerifyImageSignatures.
func VerifyImageSignature(subject string, sig bundle.SignatureManifest, read bundle.BlobReader, keys []PublicKey) ([]bundle.ImageSignatureCheck, error) {
	if len(keys) == 0 {
		return nil, ErrNoVerifyKeys
	}
	digest := sig.Digest
	if digest == "" {
		sum := sha256.Sum256(sig.Manifest)
		digest = "sha256:" + hex.EncodeToString(sum[:])
	}
	m, ok := bundle.ParseSigManifest(sig.Manifest)
	if !ok {
		return nil, nil
	}
	switch m.Kind() {
	case bundle.FormatCosignLegacy:
		return verifyLegacySignatures(subject, digest, m, read, keys)
	case bundle.FormatSigstoreBundle:
		c, err := verifyBundleSignature(subject, digest, m, read, keys)
		if err != nil {
			return nil, err
		}
		return []bundle.ImageSignatureCheck{c}, nil
	}
	return nil, nil
}

// readSignatureBlob reads a blob the manifest references and checks it is
// what the descriptor says. missing is set (with a reason) when the bundle
// lacks the blob or holds something else under its name.
func readSignatureBlob(read bundle.BlobReader, d bundle.SigDescriptor) (data []byte, problem string, err error) {
	h, ok := strings.CutPrefix(d.Digest, "sha256:")
	if !ok || !isHex64(h) {
		return nil, fmt.Sprintf("the signature blob digest %q is not a sha256 digest", d.Digest), nil
	}
	if d.Size < 0 || d.Size > bundle.MaxImageSignatureBlob {
		return nil, fmt.Sprintf("the signature blob %s is %d bytes, more than the %d a signature can be", d.Digest, d.Size, bundle.MaxImageSignatureBlob), nil
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

func verifyLegacySignatures(subject, manifestDigest string, m bundle.SigManifest, read bundle.BlobReader, keys []PublicKey) ([]bundle.ImageSignatureCheck, error) {
	var out []bundle.ImageSignatureCheck
	n := 0
	for _, l := range m.Layers {
		if l.MediaType != bundle.MediaTypeCosignSimpleSigning {
			continue
		}
		n++
		if n > bundle.MaxImageSignatureLayers {
			out = append(out, bundle.ImageSignatureCheck{
				Format: bundle.FormatCosignLegacy, Manifest: manifestDigest, Status: bundle.ImageSigInvalid, Code: finding.ImageSignatureInvalid,
				Message: fmt.Sprintf("the signature manifest holds more than %d signatures; the rest are not checked", bundle.MaxImageSignatureLayers),
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

func verifyLegacyLayer(subject string, l bundle.SigDescriptor, read bundle.BlobReader, keys []PublicKey) (bundle.ImageSignatureCheck, error) {
	c := bundle.ImageSignatureCheck{Format: bundle.FormatCosignLegacy, Layer: l.Digest}
	invalid := func(msg string) (bundle.ImageSignatureCheck, error) {
		c.Status, c.Code, c.Message = bundle.ImageSigInvalid, finding.ImageSignatureInvalid, msg
		return c, nil
	}
	sigB64, ok := l.Annotations[bundle.AnnotationCosignSignature]
	if !ok || sigB64 == "" {
		return invalid("the simple-signing layer has no " + bundle.AnnotationCosignSignature + " annotation")
	}
	sig, err := base64.StdEncoding.DecodeString(sigB64)
	if err != nil {
		return invalid("the " + bundle.AnnotationCosignSignature + " annotation is not base64")
	}
	body, problem, err := readSignatureBlob(read, l)
	if err != nil || problem != "" {
		c.Status, c.Code, c.Message = bundle.ImageSigInvalid, finding.ImageSignatureInvalid, problem
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
		c.Status, c.Message = bundle.ImageSigValid, "signed by "+describeKey(k)
		return c, nil
	}
	if claimed != subject {
		return invalid(fmt.Sprintf("the signature is for image %s, not for this image %s", claimed, subject))
	}
	c.Status, c.Code = bundle.ImageSigUnknownKey, finding.ImageSignatureUnknownKey
	if _, keyless := l.Annotations[bundle.AnnotationCosignCertificate]; keyless {
		c.Message = "signed with a certificate (keyless), not by a given key: refdoctor verifies offline against public keys only"
	} else {
		// A simple-signing layer does not name its key, so another signer
		// and an altered payload look the same.
		c.Message = "no given key verifies this signature: it was made by another key, or altered; tried " + describeKeys(keys)
	}
	return c, nil
}

func verifyBundleSignature(subject, manifestDigest string, m bundle.SigManifest, read bundle.BlobReader, keys []PublicKey) (bundle.ImageSignatureCheck, error) {
	c := bundle.ImageSignatureCheck{Format: bundle.FormatSigstoreBundle, Manifest: manifestDigest}
	invalid := func(msg string) (bundle.ImageSignatureCheck, error) {
		c.Status, c.Code, c.Message = bundle.ImageSigInvalid, finding.ImageSignatureInvalid, msg
		return c, nil
	}
	var layers []bundle.SigDescriptor
	for _, l := range m.Layers {
		if l.MediaType == bundle.SigstoreBundleMediaType {
			layers = append(layers, l)
		}
	}
	if len(layers) != 1 {
		return invalid(fmt.Sprintf("the signature referrer has %d Sigstore bundle layers, not one", len(layers)))
	}
	c.Layer = layers[0].Digest
	body, problem, err := readSignatureBlob(read, layers[0])
	if err != nil || problem != "" {
		c.Status, c.Code, c.Message = bundle.ImageSigInvalid, finding.ImageSignatureInvalid, problem
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
		c.Status, c.Code = bundle.ImageSigUnknownKey, finding.ImageSignatureUnknownKey
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
		c.Status, c.Message = bundle.ImageSigValid, "signed by "+describeKey(k)
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
	c.Status, c.Code = bundle.ImageSigUnknownKey, finding.ImageSignatureUnknownKey
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
func claimedSubjects(info bundle.SignatureInfo) []string {
	var out []string
	if info.SignedSHA256 != "" {
		out = append(out, "sha256:"+info.SignedSHA256)
	}
	for _, h := range info.StatementSHA256 {
		out = append(out, "sha256:"+h)
	}
	return out
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
