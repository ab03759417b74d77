package signing_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/regclient/regclient/types/descriptor"
	"github.com/regclient/regclient/types/errs"
	"github.com/regclient/regclient/types/ref"

	"github.com/refdoctor/refdoctor/bundle"
	"github.com/refdoctor/refdoctor/bundle/signing"
	"github.com/refdoctor/refdoctor/finding"
	"github.com/refdoctor/refdoctor/lab"
	"github.com/refdoctor/refdoctor/lab/labtest"
	"github.com/refdoctor/refdoctor/registry"
)

// signedImage is an image of the lab signed by real cosign, with its
// signature manifests and blobs fetched back with regclient: what an
// export puts in a bundle.
type signedImage struct {
	digest string
	legacy bundle.SignatureManifest // sha256-<hex>.sig
	v3     bundle.SignatureManifest // the sigstore bundle referrer
	blobs  map[string][]byte
}

func (s signedImage) read(d string) ([]byte, error) {
	b, ok := s.blobs[d]
	if !ok {
		return nil, fmt.Errorf("blob %s: %w", d, fs.ErrNotExist)
	}
	return b, nil
}

// TestImageSignaturesSignedByCosign signs a lab image with real cosign
// both ways cosign v3.1.3 can (a sigstore bundle referrer, the default,
// and a legacy .sig tag), fetches the signatures as an export does, and
// checks refdoctor's verdict against `cosign verify --key` on the source
// registry: valid for the signing key, unknown for another key, invalid
// when the signature is for another image.
func TestImageSignaturesSignedByCosign(t *testing.T) {
	t.Parallel()
	c := newCosign(t)
	l := labtest.StartT(t, lab.Spec{Name: "source", Profile: lab.ProfileOCI11})
	src, _ := l.Get("source")
	key, pubFile := c.generateKeyPair(t, "release")
	_, otherFile := c.generateKeyPair(t, "other")
	pub, err := signing.LoadPublicKey(pubFile)
	if err != nil {
		t.Fatal(err)
	}
	other, err := signing.LoadPublicKey(otherFile)
	if err != nil {
		t.Fatal(err)
	}

	image := src.Host + "/" + lab.SeedSingleRepository + "@" + l.Seed.Single
	registryFlags := []string{"--allow-http-registry", "--allow-insecure-registry"}
	// cosign v3's default: a sigstore bundle pushed as a referrer. Offline:
	// a signing config with no services.
	c.must(t, append([]string{"sign", "--key", key, "-y", "--signing-config", c.file("signing-config.json"),
		"--trusted-root", c.file("trusted-root.json"), image}, registryFlags...)...)
	// The legacy format: a simple-signing payload under sha256-<hex>.sig,
	// which v3.1.3 still writes with the new bundle format turned off.
	c.must(t, append([]string{"sign", "--key", key, "-y", "--new-bundle-format=false", "--use-signing-config=false",
		"--tlog-upload=false", image}, registryFlags...)...)

	ctx := context.Background()
	rc, err := registry.New(l.Config(), l.ClientOpts()...)
	if err != nil {
		t.Fatal(err)
	}
	fetch := func(repo, tagOrDigest string) (manifest []byte, blobs map[string][]byte) {
		t.Helper()
		r, err := ref.New(src.Host + "/" + repo)
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(tagOrDigest, "sha256:") {
			r = r.SetDigest(tagOrDigest)
		} else {
			r = r.SetTag(tagOrDigest)
		}
		m, err := rc.ManifestGet(ctx, r)
		if err != nil {
			t.Fatalf("get %s: %v", r.CommonName(), err)
		}
		raw, err := m.RawBody()
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Config descriptor.Descriptor   `json:"config"`
			Layers []descriptor.Descriptor `json:"layers"`
		}
		if err := json.Unmarshal(raw, &doc); err != nil {
			t.Fatal(err)
		}
		blobs = map[string][]byte{}
		for _, d := range append(doc.Layers, doc.Config) {
			br, err := rc.BlobGet(ctx, r, d)
			if errors.Is(err, errs.ErrNotFound) {
				continue
			}
			if err != nil {
				t.Fatalf("blob %s: %v", d.Digest, err)
			}
			data, err := io.ReadAll(io.LimitReader(br, bundle.MaxImageSignatureBlob+1))
			br.Close()
			if err != nil {
				t.Fatal(err)
			}
			blobs[d.Digest.String()] = data
		}
		return raw, blobs
	}
	sigTag := func(d string) string {
		return "sha256-" + strings.TrimPrefix(d, "sha256:") + bundle.CosignSignatureTagSuffix
	}

	img := signedImage{digest: l.Seed.Single, blobs: map[string][]byte{}}
	raw, blobs := fetch(lab.SeedSingleRepository, sigTag(l.Seed.Single))
	img.legacy = bundle.SignatureManifest{Manifest: raw}
	for k, v := range blobs {
		img.blobs[k] = v
	}
	subj, err := ref.New(image)
	if err != nil {
		t.Fatal(err)
	}
	rl, err := rc.ReferrerList(ctx, subj)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range rl.Descriptors {
		if d.ArtifactType != bundle.SigstoreBundleMediaType {
			continue
		}
		if img.v3.Manifest != nil {
			t.Fatalf("cosign pushed more than one sigstore bundle referrer: %v", rl.Descriptors)
		}
		raw, blobs := fetch(lab.SeedSingleRepository, d.Digest.String())
		img.v3 = bundle.SignatureManifest{Manifest: raw, Digest: d.Digest.String()}
		for k, v := range blobs {
			img.blobs[k] = v
		}
	}
	if img.v3.Manifest == nil {
		t.Fatalf("cosign sign pushed no sigstore bundle referrer; referrers: %v", rl.Descriptors)
	}
	if k := bundle.ImageSignatureKind(img.legacy.Manifest); k != bundle.FormatCosignLegacy {
		t.Fatalf("the .sig manifest is seen as %q:\n%s", k, img.legacy.Manifest)
	}
	if k := bundle.ImageSignatureKind(img.v3.Manifest); k != bundle.FormatSigstoreBundle {
		t.Fatalf("the referrer is seen as %q:\n%s", k, img.v3.Manifest)
	}

	// What cosign says on the source registry, per key and format.
	cosignVerify := func(pubFile, ref string, legacy bool) bool {
		args := append([]string{"verify", "--key", pubFile, "--insecure-ignore-tlog=true"}, registryFlags...)
		if legacy {
			args = append(args, "--new-bundle-format=false")
		}
		_, _, err := c.run(append(args, ref)...)
		return err == nil
	}

	for _, f := range []struct {
		name   string
		sig    bundle.SignatureManifest
		legacy bool
	}{{"legacy .sig", img.legacy, true}, {"v3 bundle referrer", img.v3, false}} {
		t.Run(f.name, func(t *testing.T) {
			one := func(subject string, keys ...signing.PublicKey) bundle.ImageSignatureCheck {
				t.Helper()
				checks, err := signing.VerifyImageSignature(subject, f.sig, img.read, keys)
				if err != nil {
					t.Fatal(err)
				}
				if len(checks) != 1 {
					t.Fatalf("%d checks for one cosign signature: %+v", len(checks), checks)
				}
				return checks[0]
			}
			if got := one(img.digest, other, pub); got.Status != bundle.ImageSigValid || got.KeyFingerprint != pub.Fingerprint() || got.Code != "" {
				t.Errorf("signing key: %+v", got)
			} else if !cosignVerify(pubFile, image, f.legacy) {
				t.Errorf("refdoctor says valid, cosign verify --key refuses")
			}
			if got := one(img.digest, other); got.Status != bundle.ImageSigUnknownKey || got.Code != finding.ImageSignatureUnknownKey {
				t.Errorf("another key: %+v", got)
			} else if cosignVerify(otherFile, image, f.legacy) {
				t.Errorf("refdoctor says unknown key, cosign verify --key accepts")
			}
			// The same signature presented as the signature of another
			// image (as if copied to its .sig tag or referrers).
			got := one(l.Seed.Index, pub)
			if got.Status != bundle.ImageSigInvalid || got.Code != finding.ImageSignatureInvalid || !slices.Equal(got.Claimed, []string{img.digest}) {
				t.Errorf("for another image: %+v", got)
			}
			if !strings.Contains(got.Message, img.digest) || !strings.Contains(got.Message, l.Seed.Index) {
				t.Errorf("the message should name both images: %s", got.Message)
			}
		})
	}

	t.Run("per image", func(t *testing.T) {
		rep, err := signing.VerifyImageSignatures(img.digest, []bundle.SignatureManifest{img.legacy, img.v3}, img.read, []signing.PublicKey{pub})
		if err != nil || rep.Status != bundle.ImageSigValid || rep.KeyFingerprint != pub.Fingerprint() || len(rep.Signatures) != 2 {
			t.Errorf("signed image, right key: %+v %v", rep, err)
		}
		rep, err = signing.VerifyImageSignatures(img.digest, []bundle.SignatureManifest{img.legacy, img.v3}, img.read, []signing.PublicKey{other})
		if err != nil || rep.Status != bundle.ImageSigUnknownKey || rep.Code != finding.ImageSignatureUnknownKey || rep.KeyFingerprint != "" {
			t.Errorf("signed image, other key: %+v %v", rep, err)
		}
		rep, err = signing.VerifyImageSignatures(l.Seed.Index, []bundle.SignatureManifest{img.legacy, img.v3}, img.read, []signing.PublicKey{pub})
		if err != nil || rep.Status != bundle.ImageSigInvalid || rep.Code != finding.ImageSignatureInvalid {
			t.Errorf("signatures of another image: %+v %v", rep, err)
		}
		rep, err = signing.VerifyImageSignatures(img.digest, nil, img.read, []signing.PublicKey{pub})
		if err != nil || rep.Status != bundle.ImageSigUnsigned || rep.Code != finding.ImageUnsigned || len(rep.Signatures) != 0 {
			t.Errorf("no signature: %+v %v", rep, err)
		}
	})

	t.Run("lab seed: fake .sig and non-signature referrers", func(t *testing.T) {
		// The seeded index carries a .sig whose signature is not real, and
		// referrers that are not cosign signatures (SBOM, notary, in-toto).
		raw, blobs := fetch(lab.SeedRepository, sigTag(l.Seed.Index))
		fake := signedImage{digest: l.Seed.Index, legacy: bundle.SignatureManifest{Manifest: raw}, blobs: blobs}
		sigs := []bundle.SignatureManifest{fake.legacy}
		idx, err := ref.New(src.Host + "/" + lab.SeedRepository + "@" + l.Seed.Index)
		if err != nil {
			t.Fatal(err)
		}
		rl, err := rc.ReferrerList(ctx, idx)
		if err != nil {
			t.Fatal(err)
		}
		if len(rl.Descriptors) == 0 {
			t.Fatal("the seeded index has no referrers")
		}
		for _, d := range rl.Descriptors {
			raw, _ := fetch(lab.SeedRepository, d.Digest.String())
			if k := bundle.ImageSignatureKind(raw); k != "" {
				t.Errorf("seeded referrer %s (%s) taken for a cosign signature (%s)", d.Digest, d.ArtifactType, k)
			}
			sigs = append(sigs, bundle.SignatureManifest{Manifest: raw})
		}
		rep, err := signing.VerifyImageSignatures(l.Seed.Index, sigs, fake.read, []signing.PublicKey{pub})
		if err != nil || rep.Status != bundle.ImageSigUnknownKey || len(rep.Signatures) != 1 {
			t.Errorf("seeded fake signature: %+v %v", rep, err)
		}
		if cosignVerify(pubFile, src.Host+"/"+lab.SeedRepository+"@"+l.Seed.Index, true) {
			t.Errorf("cosign verify --key accepts the seeded fake signature")
		}
	})

	t.Run("altered signatures", func(t *testing.T) {
		// The payload rewritten to claim the index, stored under its new
		// digest with the manifest updated: what an attacker copying a
		// signature to another image would do.
		legacy, blobs := alterLegacyPayload(t, img, l.Seed.Index)
		read := func(d string) ([]byte, error) {
			if b, ok := blobs[d]; ok {
				return b, nil
			}
			return img.read(d)
		}
		checks, err := signing.VerifyImageSignature(img.digest, legacy, read, []signing.PublicKey{pub})
		if err != nil || len(checks) != 1 || checks[0].Status != bundle.ImageSigInvalid {
			t.Errorf("altered payload, original image: %+v %v", checks, err)
		}
		checks, err = signing.VerifyImageSignature(l.Seed.Index, legacy, read, []signing.PublicKey{pub})
		if err != nil || len(checks) != 1 || checks[0].Status == bundle.ImageSigValid {
			t.Errorf("altered payload, claimed image: %+v %v", checks, err)
		}

		v3, blobs := alterBundleStatement(t, img, l.Seed.Index)
		read = func(d string) ([]byte, error) {
			if b, ok := blobs[d]; ok {
				return b, nil
			}
			return img.read(d)
		}
		checks, err = signing.VerifyImageSignature(l.Seed.Index, v3, read, []signing.PublicKey{pub})
		if err != nil || len(checks) != 1 || checks[0].Status != bundle.ImageSigInvalid || checks[0].KeyFingerprint != pub.Fingerprint() {
			t.Errorf("altered statement, claimed image: %+v %v", checks, err)
		}

		// A blob the bundle lacks, and one that is not what its digest says.
		missing := func(string) ([]byte, error) { return nil, fs.ErrNotExist }
		for _, s := range []bundle.SignatureManifest{img.legacy, img.v3} {
			checks, err := signing.VerifyImageSignature(img.digest, s, missing, []signing.PublicKey{pub})
			if err != nil || len(checks) != 1 || checks[0].Status != bundle.ImageSigInvalid || !strings.Contains(checks[0].Message, "not in the bundle") {
				t.Errorf("missing blob: %+v %v", checks, err)
			}
			wrong := func(string) ([]byte, error) { return []byte("{}"), nil }
			checks, err = signing.VerifyImageSignature(img.digest, s, wrong, []signing.PublicKey{pub})
			if err != nil || len(checks) != 1 || checks[0].Status != bundle.ImageSigInvalid {
				t.Errorf("wrong blob: %+v %v", checks, err)
			}
			broken := func(string) ([]byte, error) { return nil, errors.New("disk on fire") }
			if _, err := signing.VerifyImageSignature(img.digest, s, broken, []signing.PublicKey{pub}); err == nil || !strings.Contains(err.Error(), "disk on fire") {
				t.Errorf("a read error must stop verification, not become a verdict: %v", err)
			}
		}
	})
}

// alterLegacyPayload rewrites the simple-signing payload of img's .sig
// manifest to claim another image, keeping cosign's signature.
func alterLegacyPayload(t *testing.T, img signedImage, claim string) (bundle.SignatureManifest, map[string][]byte) {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(img.legacy.Manifest, &m); err != nil {
		t.Fatal(err)
	}
	layer := m["layers"].([]any)[0].(map[string]any)
	payload := img.blobs[layer["digest"].(string)]
	altered := bytes.Replace(payload, []byte(img.digest), []byte(claim), 1)
	if bytes.Equal(altered, payload) {
		t.Fatalf("the payload does not name %s:\n%s", img.digest, payload)
	}
	d := digest.FromBytes(altered).String()
	layer["digest"], layer["size"] = d, len(altered)
	raw, _ := json.Marshal(m)
	return bundle.SignatureManifest{Manifest: raw}, map[string][]byte{d: altered}
}

// alterBundleStatement rewrites the in-toto statement in img's sigstore
// bundle to name another image, keeping cosign's DSSE signature.
func alterBundleStatement(t *testing.T, img signedImage, claim string) (bundle.SignatureManifest, map[string][]byte) {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(img.v3.Manifest, &m); err != nil {
		t.Fatal(err)
	}
	layer := m["layers"].([]any)[0].(map[string]any)
	var sb map[string]any
	if err := json.Unmarshal(img.blobs[layer["digest"].(string)], &sb); err != nil {
		t.Fatal(err)
	}
	env := sb["dsseEnvelope"].(map[string]any)
	stmt, err := base64.StdEncoding.DecodeString(env["payload"].(string))
	if err != nil {
		t.Fatal(err)
	}
	oldHex, newHex := strings.TrimPrefix(img.digest, "sha256:"), strings.TrimPrefix(claim, "sha256:")
	altered := bytes.Replace(stmt, []byte(oldHex), []byte(newHex), 1)
	if bytes.Equal(altered, stmt) {
		t.Fatalf("the statement does not name %s:\n%s", img.digest, stmt)
	}
	env["payload"] = base64.StdEncoding.EncodeToString(altered)
	blob, _ := json.Marshal(sb)
	sum := sha256.Sum256(blob)
	d := "sha256:" + hex.EncodeToString(sum[:])
	layer["digest"], layer["size"] = d, len(blob)
	raw, _ := json.Marshal(m)
	return bundle.SignatureManifest{Manifest: raw}, map[string][]byte{d: blob}
}
