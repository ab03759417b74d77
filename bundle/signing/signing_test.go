package signing_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/refdoctor/refdoctor/bundle"
	"github.com/refdoctor/refdoctor/bundle/signing"
	"github.com/refdoctor/refdoctor/finding"
)

// testManifest is a real manifest.yaml as the writer renders it.
func testManifest(t *testing.T) []byte {
	t.Helper()
	m := bundle.Manifest{
		SchemaVersion: bundle.FormatVersion,
		Kind:          bundle.ManifestKind,
		CreatedAt:     time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC),
		Tool:          bundle.Tool{Name: "refdoctor", Version: "test"},
		Files:         []bundle.FileEntry{{Path: bundle.LayoutPath, Size: 30, SHA256: strings.Repeat("ab", 32)}},
	}
	data, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// pkcs8Key makes a key with Go's own crypto and writes it as an
// unencrypted PKCS#8 PEM, the way `openssl genpkey` does, with its public
// half as a PEM like cosign.pub.
func pkcs8Key(t *testing.T, kind string) (privPEM, pubPEM []byte) {
	t.Helper()
	var priv crypto.Signer
	var err error
	switch kind {
	case "p256":
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "p384":
		priv, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case "ed25519":
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	case "rsa":
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	default:
		t.Fatalf("unknown key kind %q", kind)
	}
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
}

func mustSigningKey(t *testing.T, privPEM []byte) *signing.SigningKey {
	t.Helper()
	k, err := signing.ParseSigningKey(privPEM, nil)
	if err != nil {
		t.Fatalf("parse signing key: %v", err)
	}
	return k
}

func mustPublicKey(t *testing.T, pubPEM []byte) signing.PublicKey {
	t.Helper()
	k, err := signing.ParsePublicKey(pubPEM)
	if err != nil {
		t.Fatalf("parse public key: %v", err)
	}
	return k
}

// derFingerprint is the fingerprint computed independently of the
// package: sha256 over the DER of the PEM block, as
// `openssl pkey -pubin -outform DER | sha256sum` prints it.
func derFingerprint(t *testing.T, pubPEM []byte) string {
	t.Helper()
	b, _ := pem.Decode(pubPEM)
	if b == nil {
		t.Fatal("no PEM block")
	}
	sum := sha256.Sum256(b.Bytes)
	return hex.EncodeToString(sum[:])
}

func TestSignManifestRoundTrip(t *testing.T) {
	t.Parallel()
	for _, kind := range []string{"p256", "ed25519"} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			manifest := testManifest(t)
			privPEM, pubPEM := pkcs8Key(t, kind)
			key := mustSigningKey(t, privPEM)
			pub := mustPublicKey(t, pubPEM)
			if got, want := pub.Fingerprint(), derFingerprint(t, pubPEM); got != want {
				t.Fatalf("fingerprint %s, sha256 of the DER is %s", got, want)
			}
			if key.Public().Fingerprint() != pub.Fingerprint() {
				t.Fatalf("the signing key's public half has fingerprint %s, the public key file %s", key.Public().Fingerprint(), pub.Fingerprint())
			}

			sig, err := signing.SignManifest(manifest, key)
			if err != nil {
				t.Fatalf("sign: %v", err)
			}
			// The member is a Sigstore bundle v0.3: message signature over
			// the manifest's sha256, the key's hint, no log entries.
			var doc struct {
				MediaType            string `json:"mediaType"`
				VerificationMaterial struct {
					PublicKey   struct{ Hint string } `json:"publicKey"`
					TlogEntries []json.RawMessage     `json:"tlogEntries"`
				} `json:"verificationMaterial"`
				MessageSignature struct {
					MessageDigest struct {
						Algorithm string `json:"algorithm"`
						Digest    []byte `json:"digest"`
					} `json:"messageDigest"`
				} `json:"messageSignature"`
			}
			if err := json.Unmarshal(sig, &doc); err != nil {
				t.Fatalf("signature is not JSON: %v\n%s", err, sig)
			}
			sum := sha256.Sum256(manifest)
			switch {
			case doc.MediaType != bundle.SigstoreBundleMediaType:
				t.Errorf("mediaType %q", doc.MediaType)
			case doc.MessageSignature.MessageDigest.Algorithm != "SHA2_256" || hex.EncodeToString(doc.MessageSignature.MessageDigest.Digest) != hex.EncodeToString(sum[:]):
				t.Errorf("message digest %s %x, want SHA2_256 %x", doc.MessageSignature.MessageDigest.Algorithm, doc.MessageSignature.MessageDigest.Digest, sum)
			case len(doc.VerificationMaterial.TlogEntries) != 0:
				t.Errorf("signature carries %d log entries, want none", len(doc.VerificationMaterial.TlogEntries))
			}
			raw, _ := hex.DecodeString(pub.Fingerprint())
			if want := base64.StdEncoding.EncodeToString(raw); doc.VerificationMaterial.PublicKey.Hint != want {
				t.Errorf("hint %q, want %q", doc.VerificationMaterial.PublicKey.Hint, want)
			}

			res, err := signing.VerifyManifest(manifest, sig, []signing.PublicKey{pub})
			if err != nil || !res.OK() {
				t.Fatalf("verify own signature: %+v, %v", res, err)
			}
			if res.KeyFingerprint != pub.Fingerprint() {
				t.Errorf("verified by %s, want %s", res.KeyFingerprint, pub.Fingerprint())
			}
			info, err := signing.InspectSignature(sig)
			if err != nil {
				t.Fatal(err)
			}
			if info.KeyFingerprint != pub.Fingerprint() || info.Content != "message-signature" || info.SignedSHA256 != hex.EncodeToString(sum[:]) {
				t.Errorf("inspect: %+v", info)
			}
			if !info.Claims(manifest) || info.Claims(append(manifest, '\n')) {
				t.Errorf("the signature should claim its manifest and no other: %+v", info)
			}
		})
	}
}

func TestVerifyManifestFailures(t *testing.T) {
	t.Parallel()
	manifest := testManifest(t)
	changed := []byte(strings.Replace(string(manifest), "version: test", "version: evil", 1))
	if string(changed) == string(manifest) {
		t.Fatal("the test manifest did not change")
	}
	for _, kind := range []string{"p256", "ed25519"} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			privPEM, pubPEM := pkcs8Key(t, kind)
			_, otherPEM := pkcs8Key(t, kind)
			key := mustSigningKey(t, privPEM)
			pub, other := mustPublicKey(t, pubPEM), mustPublicKey(t, otherPEM)
			sig, err := signing.SignManifest(manifest, key)
			if err != nil {
				t.Fatal(err)
			}
			// A signature whose hint names no key: only the signature
			// itself can tell whether a given key made it.
			var loose map[string]any
			if err := json.Unmarshal(sig, &loose); err != nil {
				t.Fatal(err)
			}
			loose["verificationMaterial"] = map[string]any{"publicKey": map[string]any{"hint": ""}}
			noHint, _ := json.Marshal(loose)

			cases := []struct {
				name     string
				manifest []byte
				sig      []byte
				keys     []signing.PublicKey
				want     finding.Code
				wantKey  string
				mention  string
			}{
				{"changed after signing", changed, sig, []signing.PublicKey{pub}, finding.SignatureInvalid, pub.Fingerprint(), "changed after it was signed"},
				{"changed after signing, other keys first", changed, sig, []signing.PublicKey{other, pub}, finding.SignatureInvalid, pub.Fingerprint(), ""},
				{"another key", manifest, sig, []signing.PublicKey{other}, finding.UnknownKey, key.Public().Fingerprint(), key.Public().Fingerprint()},
				{"unsigned", manifest, nil, []signing.PublicKey{pub}, finding.SignatureMissing, "", bundle.SignatureMember},
				{"not a sigstore bundle", manifest, []byte(`{"payload":"x"}`), []signing.PublicKey{pub}, finding.SignatureInvalid, "", "cannot be read"},
				{"not JSON", manifest, []byte("-----BEGIN PGP SIGNATURE-----"), []signing.PublicKey{pub}, finding.SignatureInvalid, "", "cannot be read"},
				{"too large", manifest, append(append([]byte(nil), sig...), make([]byte, bundle.MaxSignatureSize)...), []signing.PublicKey{pub}, finding.SignatureInvalid, "", "larger than"},
				{"no hint, another key", manifest, noHint, []signing.PublicKey{other}, finding.UnknownKey, "", ""},
			}
			if kind == "p256" {
				// ECDSA signs the digest, so a changed manifest is told
				// apart from another signer even without a hint.
				cases = append(cases, struct {
					name     string
					manifest []byte
					sig      []byte
					keys     []signing.PublicKey
					want     finding.Code
					wantKey  string
					mention  string
				}{"no hint, changed after signing", changed, noHint, []signing.PublicKey{pub}, finding.SignatureInvalid, pub.Fingerprint(), "changed after it was signed"})
			}
			for _, c := range cases {
				res, err := signing.VerifyManifest(c.manifest, c.sig, c.keys)
				if err != nil {
					t.Fatalf("%s: %v", c.name, err)
				}
				if res.OK() || res.Code != c.want {
					t.Errorf("%s: code %q (%s), want %q", c.name, res.Code, res.Message, c.want)
				}
				if res.KeyFingerprint != c.wantKey {
					t.Errorf("%s: key %q, want %q", c.name, res.KeyFingerprint, c.wantKey)
				}
				if !strings.Contains(res.Message, c.mention) {
					t.Errorf("%s: message %q does not say %q", c.name, res.Message, c.mention)
				}
				if !res.Code.Known() {
					t.Errorf("%s: code %q is not in the finding catalog", c.name, res.Code)
				}
			}
		})
	}
}

func TestVerifyManifestPicksTheSigningKey(t *testing.T) {
	t.Parallel()
	manifest := testManifest(t)
	var keys []signing.PublicKey
	var signers []*signing.SigningKey
	for _, kind := range []string{"p256", "ed25519", "p256"} {
		privPEM, pubPEM := pkcs8Key(t, kind)
		signers = append(signers, mustSigningKey(t, privPEM))
		keys = append(keys, mustPublicKey(t, pubPEM))
	}
	for i, s := range signers {
		sig, err := signing.SignManifest(manifest, s)
		if err != nil {
			t.Fatal(err)
		}
		res, err := signing.VerifyManifest(manifest, sig, keys)
		if err != nil || !res.OK() {
			t.Fatalf("signer %d: %+v %v", i, res, err)
		}
		if res.KeyFingerprint != keys[i].Fingerprint() {
			t.Errorf("signer %d verified as %s, want %s", i, res.KeyFingerprint, keys[i].Fingerprint())
		}
	}
	if _, err := signing.VerifyManifest(manifest, nil, nil); !errors.Is(err, signing.ErrNoVerifyKeys) {
		t.Errorf("no keys: %v, want ErrNoVerifyKeys", err)
	}
}

func TestParseSigningKeyRefusals(t *testing.T) {
	t.Parallel()
	p384, _ := pkcs8Key(t, "p384")
	rsaKey, _ := pkcs8Key(t, "rsa")
	_, pub := pkcs8Key(t, "p256")
	cases := []struct {
		name    string
		pem     []byte
		mention string
	}{
		{"P-384", p384, "ecdsa-p384"},
		{"RSA", rsaKey, "rsa-2048"},
		{"a public key", pub, "PRIVATE KEY"},
		{"not PEM", []byte("hello"), "PEM"},
	}
	for _, c := range cases {
		_, err := signing.ParseSigningKey(c.pem, nil)
		if !errors.Is(err, signing.ErrBadKey) {
			t.Errorf("%s: %v, want ErrBadKey", c.name, err)
			continue
		}
		if !strings.Contains(err.Error(), c.mention) {
			t.Errorf("%s: error %q does not mention %q", c.name, err, c.mention)
		}
	}
	// Verification accepts the wider set cosign verifies with.
	_, p384pub := pkcs8Key(t, "p384")
	if k, err := signing.ParsePublicKey(p384pub); err != nil || k.Algorithm() != "ecdsa-p384" {
		t.Errorf("P-384 public key: %v %v", k, err)
	}
	if _, err := signing.ParsePublicKey(p384); !errors.Is(err, signing.ErrBadKey) {
		t.Errorf("a private key as public key: %v, want ErrBadKey", err)
	}
	weak, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	weakDER, _ := x509.MarshalPKIXPublicKey(&weak.PublicKey)
	if _, err := signing.ParsePublicKey(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: weakDER})); !errors.Is(err, signing.ErrBadKey) {
		t.Errorf("an RSA-1024 public key: %v, want ErrBadKey", err)
	}
}

func TestSigningKeyNeverPrintsItsSecret(t *testing.T) {
	t.Parallel()
	privPEM, _ := pkcs8Key(t, "ed25519")
	k := mustSigningKey(t, privPEM)
	block, _ := pem.Decode(privPEM)
	parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	seed := parsed.(ed25519.PrivateKey).Seed()
	var logged strings.Builder
	slog.New(slog.NewTextHandler(&logged, nil)).Info("signing", "key", k)
	for _, out := range []string{fmt.Sprint(k), fmt.Sprintf("%v %+v %#v %s", k, k, k, k), logged.String()} {
		for _, enc := range []string{hex.EncodeToString(seed), base64.StdEncoding.EncodeToString(seed), fmt.Sprint(seed), fmt.Sprint([]byte(parsed.(ed25519.PrivateKey)))} {
			if strings.Contains(out, enc) {
				t.Fatalf("printing a signing key shows its private key: %s", out)
			}
		}
		if !strings.Contains(out, k.Public().Fingerprint()) {
			t.Errorf("printing a signing key should name its fingerprint: %s", out)
		}
	}
}

func TestEnvPassword(t *testing.T) {
	// t.Setenv: not parallel.
	t.Setenv(signing.EnvKeyPassword, "")
	os.Unsetenv(signing.EnvKeyPassword)
	t.Setenv(signing.EnvCosignPassword, "")
	os.Unsetenv(signing.EnvCosignPassword)
	if _, err := signing.EnvPassword(); !errors.Is(err, signing.ErrKeyPasswordMissing) {
		t.Fatalf("no password set: %v", err)
	}
	t.Setenv(signing.EnvCosignPassword, "from-cosign")
	if p, err := signing.EnvPassword(); err != nil || string(p) != "from-cosign" {
		t.Fatalf("COSIGN_PASSWORD: %q %v", p, err)
	}
	t.Setenv(signing.EnvKeyPassword, "")
	if p, err := signing.EnvPassword(); err != nil || string(p) != "" {
		t.Fatalf("an empty REFDOCTOR_KEY_PASSWORD is a password and comes first: %q %v", p, err)
	}
}

func TestLoadKeyFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	privPEM, pubPEM := pkcs8Key(t, "p256")
	priv, pub := filepath.Join(dir, "key.pem"), filepath.Join(dir, "key.pub")
	if err := os.WriteFile(priv, privPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pub, pubPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	sk, err := signing.LoadSigningKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	pk, err := signing.LoadPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	if pk.Source != pub || sk.Public().Source != priv || pk.Fingerprint() != sk.Public().Fingerprint() {
		t.Errorf("loaded keys: %+v / %v", pk, sk)
	}
	res, err := signing.VerifyManifest([]byte("x"), []byte("{}"), []signing.PublicKey{pk})
	if err != nil || res.Code != finding.SignatureInvalid {
		t.Errorf("%+v %v", res, err)
	}
	if _, err := signing.LoadPublicKey(filepath.Join(dir, "missing.pub")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing key file: %v", err)
	}
	big := filepath.Join(dir, "big.pem")
	if err := os.WriteFile(big, make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := signing.LoadSigningKey(big); !errors.Is(err, signing.ErrBadKey) {
		t.Errorf("a 1 MiB key file: %v, want ErrBadKey", err)
	}
}
