package signing_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/refdoctor/refdoctor/bundle"
	"github.com/refdoctor/refdoctor/bundle/signing"
	"github.com/refdoctor/refdoctor/finding"
	"github.com/refdoctor/refdoctor/lab/labtest"
)

// envCosignUnavailable is set by .ci/run, with the reason, when cosign
// could not be built: the cosign cross-checks then skip with that reason
// (which .ci/run has already printed) instead of failing.
const envCosignUnavailable = "REFDOCTOR_COSIGN_UNAVAILABLE"

// Offline signing with cosign v3: a signing config with no services (no
// Fulcio, no Rekor, no timestamp authority) and an empty trusted root, so
// that cosign neither uploads anything nor fetches its TUF root.
const (
	emptySigningConfig = `{"mediaType":"application/vnd.dev.sigstore.signingconfig.v0.2+json"}`
	emptyTrustedRoot   = `{"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1"}`
	cosignTestPassword = "refdoctor-test-password"
)

// cosignRunner runs the real cosign binary (tools/cosign/go.mod) in a
// folder of its own: HOME and DOCKER_CONFIG there, no password or cosign
// setting from the machine.
type cosignRunner struct {
	path string
	dir  string
	env  []string
}

func newCosign(t *testing.T) *cosignRunner {
	t.Helper()
	if why := os.Getenv(envCosignUnavailable); why != "" {
		t.Skipf("cosign cross-check skipped: cosign could not be built (%s)", why)
	}
	path, err := labtest.ReferenceTool("cosign")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("cosign missing in CI, and .ci/run did not say why: %v", err)
		}
		t.Skipf("cosign cross-check skipped: cosign not available: %v", err)
	}
	dir := t.TempDir()
	for name, content := range map[string]string{"signing-config.json": emptySigningConfig, "trusted-root.json": emptyTrustedRoot} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "COSIGN_") || strings.HasPrefix(name, "SIGSTORE_") || strings.HasPrefix(name, "TUF_") ||
			name == signing.EnvKeyPassword || name == "HOME" || name == "DOCKER_CONFIG" {
			continue
		}
		env = append(env, kv)
	}
	env = append(env, "HOME="+dir, "DOCKER_CONFIG="+dir, "TUF_ROOT="+filepath.Join(dir, "tuf"),
		"COSIGN_PASSWORD="+cosignTestPassword, "NO_COLOR=1")
	return &cosignRunner{path: path, dir: dir, env: env}
}

// run runs cosign and returns its output; err is its exit status.
func (c *cosignRunner) run(args ...string) (stdout, stderr string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.path, args...)
	cmd.Dir = c.dir
	cmd.Env = c.env
	cmd.Stdin = nil
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	return out.String(), errb.String(), err
}

func (c *cosignRunner) must(t *testing.T, args ...string) string {
	t.Helper()
	out, errs, err := c.run(args...)
	if err != nil {
		t.Fatalf("cosign %s: %v\n%s%s", strings.Join(args, " "), err, out, errs)
	}
	return out
}

// file is a path in the runner's folder.
func (c *cosignRunner) file(name string) string { return filepath.Join(c.dir, name) }

func (c *cosignRunner) write(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := c.file(name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func (c *cosignRunner) read(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(c.file(name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// generateKeyPair runs `cosign generate-key-pair` and returns the paths of
// PREFIX.key (encrypted with cosignTestPassword) and PREFIX.pub.
func (c *cosignRunner) generateKeyPair(t *testing.T, prefix string) (key, pub string) {
	t.Helper()
	c.must(t, "generate-key-pair", "--output-key-prefix", prefix)
	key, pub = c.file(prefix+".key"), c.file(prefix+".pub")
	if !bytes.Contains(c.read(t, prefix+".key"), []byte("ENCRYPTED SIGSTORE PRIVATE KEY")) {
		t.Fatalf("cosign wrote an unexpected key file:\n%s", c.read(t, prefix+".key"))
	}
	return key, pub
}

// signBlob signs file with `cosign sign-blob --bundle`, offline.
func (c *cosignRunner) signBlob(t *testing.T, key, file, out string) []byte {
	t.Helper()
	c.must(t, "sign-blob", "--key", key, "--bundle", c.file(out),
		"--signing-config", c.file("signing-config.json"), "--trusted-root", c.file("trusted-root.json"), file)
	return c.read(t, out)
}

// verifyBlob runs `cosign verify-blob --insecure-ignore-tlog=true`; err
// is nil when cosign accepts the signature.
func (c *cosignRunner) verifyBlob(pub, sig, file string) (string, error) {
	out, errs, err := c.run("verify-blob", "--key", pub, "--bundle", sig, "--insecure-ignore-tlog=true", file)
	return out + errs, err
}

// TestCosignVerifiesRefdoctorSignatures: a manifest signed by refdoctor,
// with a cosign key file or a PKCS#8 key, passes `cosign verify-blob`, and
// the same signature fails for a manifest changed after signing.
func TestCosignVerifiesRefdoctorSignatures(t *testing.T) {
	// Not parallel: LoadSigningKey reads the password from the environment.
	c := newCosign(t)
	cosignKey, cosignPub := c.generateKeyPair(t, "export")

	// Ed25519 in a cosign key file: cosign import-key-pair encrypts a
	// PKCS#8 key the way generate-key-pair does.
	edPriv, _ := pkcs8Key(t, "ed25519")
	c.write(t, "ed25519.pem", edPriv)
	c.must(t, "import-key-pair", "--key", c.file("ed25519.pem"), "--output-key-prefix", "imported")

	p256Priv, p256Pub := pkcs8Key(t, "p256")
	ed2Priv, ed2Pub := pkcs8Key(t, "ed25519")
	keys := []struct {
		name     string
		priv     string // key file refdoctor signs with
		pub      string // public key cosign verifies with
		password string // in REFDOCTOR_KEY_PASSWORD or COSIGN_PASSWORD
		env      string
	}{
		{"cosign generate-key-pair, REFDOCTOR_KEY_PASSWORD", cosignKey, cosignPub, cosignTestPassword, signing.EnvKeyPassword},
		{"cosign generate-key-pair, COSIGN_PASSWORD", cosignKey, cosignPub, cosignTestPassword, signing.EnvCosignPassword},
		{"cosign import-key-pair ed25519", c.file("imported.key"), c.file("imported.pub"), cosignTestPassword, signing.EnvKeyPassword},
		{"PKCS#8 P-256", c.write(t, "p256.pem", p256Priv), c.write(t, "p256.pub", p256Pub), "", ""},
		{"PKCS#8 Ed25519", c.write(t, "ed2.pem", ed2Priv), c.write(t, "ed2.pub", ed2Pub), "", ""},
	}
	manifest := testManifest(t)
	manifestFile := c.write(t, "manifest.yaml", manifest)
	changedFile := c.write(t, "changed.yaml", append(append([]byte(nil), manifest...), "# changed after signing\n"...))
	for i, k := range keys {
		t.Run(k.name, func(t *testing.T) {
			t.Setenv(signing.EnvKeyPassword, "")
			os.Unsetenv(signing.EnvKeyPassword)
			t.Setenv(signing.EnvCosignPassword, "")
			os.Unsetenv(signing.EnvCosignPassword)
			if k.env != "" {
				t.Setenv(k.env, k.password)
			}
			key, err := signing.LoadSigningKey(k.priv)
			if err != nil {
				t.Fatalf("load %s: %v", k.priv, err)
			}
			pub, err := signing.LoadPublicKey(k.pub)
			if err != nil {
				t.Fatal(err)
			}
			if key.Public().Fingerprint() != pub.Fingerprint() {
				t.Fatalf("refdoctor reads %s as fingerprint %s, its public key as %s", k.priv, key.Public().Fingerprint(), pub.Fingerprint())
			}
			sig, err := signing.SignManifest(manifest, key)
			if err != nil {
				t.Fatalf("sign: %v", err)
			}
			sigFile := c.write(t, filepath.Base(bundle.SignatureSidecarPath("bundle"+string(rune('a'+i))+".tgz")), sig)
			if out, err := c.verifyBlob(k.pub, sigFile, manifestFile); err != nil || !strings.Contains(out, "Verified OK") {
				t.Fatalf("cosign verify-blob refuses refdoctor's signature: %v\n%s\n%s", err, out, sig)
			}
			if out, err := c.verifyBlob(k.pub, sigFile, changedFile); err == nil {
				t.Fatalf("cosign verify-blob accepts refdoctor's signature for a changed manifest:\n%s", out)
			}
			if out, err := c.verifyBlob(cosignPub, sigFile, manifestFile); k.pub != cosignPub && err == nil {
				t.Fatalf("cosign verify-blob accepts refdoctor's signature with another key:\n%s", out)
			}
		})
	}

	t.Run("encrypted key without a password", func(t *testing.T) {
		t.Setenv(signing.EnvKeyPassword, "")
		os.Unsetenv(signing.EnvKeyPassword)
		t.Setenv(signing.EnvCosignPassword, "")
		os.Unsetenv(signing.EnvCosignPassword)
		_, err := signing.LoadSigningKey(cosignKey)
		if err == nil || !strings.Contains(err.Error(), signing.EnvKeyPassword) || !strings.Contains(err.Error(), cosignKey) {
			t.Fatalf("an encrypted key with no password set: %v; want an error naming the key and %s", err, signing.EnvKeyPassword)
		}
	})
	t.Run("encrypted key, wrong password", func(t *testing.T) {
		t.Setenv(signing.EnvKeyPassword, "not-the-password")
		_, err := signing.LoadSigningKey(cosignKey)
		if err == nil || !strings.Contains(err.Error(), "wrong password") || strings.Contains(err.Error(), "not-the-password") {
			t.Fatalf("wrong password: %v; want an error that says so without echoing it", err)
		}
	})
}

// TestRefdoctorVerifiesCosignSignatures: `cosign sign-blob --bundle` of
// manifest.yaml is accepted by refdoctor with the operator's cosign.pub;
// a manifest changed after signing, another key, and no signature are
// each refused with their own code.
func TestRefdoctorVerifiesCosignSignatures(t *testing.T) {
	t.Parallel()
	c := newCosign(t)
	key, pubFile := c.generateKeyPair(t, "pipeline")
	_, otherFile := c.generateKeyPair(t, "stranger")
	manifest := testManifest(t)
	sig := c.signBlob(t, key, c.write(t, "manifest.yaml", manifest), "manifest.yaml.sigstore.json")

	pub, err := signing.LoadPublicKey(pubFile)
	if err != nil {
		t.Fatal(err)
	}
	other, err := signing.LoadPublicKey(otherFile)
	if err != nil {
		t.Fatal(err)
	}
	res, err := signing.VerifyManifest(manifest, sig, []signing.PublicKey{other, pub})
	if err != nil || !res.OK() {
		t.Fatalf("refdoctor refuses cosign's signature: %+v %v\n%s", res, err, sig)
	}
	if res.KeyFingerprint != pub.Fingerprint() || !strings.Contains(res.Message, pubFile) {
		t.Errorf("verified by %s (%s), want %s", res.KeyFingerprint, res.Message, pub.Fingerprint())
	}
	info, err := signing.InspectSignature(sig)
	if err != nil {
		t.Fatal(err)
	}
	if info.KeyFingerprint != pub.Fingerprint() {
		t.Errorf("cosign's key hint names %q, the key's fingerprint is %s", info.KeyFingerprint, pub.Fingerprint())
	}

	changed := append(append([]byte(nil), manifest...), "# changed after signing\n"...)
	for _, tc := range []struct {
		name     string
		manifest []byte
		sig      []byte
		keys     []signing.PublicKey
		want     finding.Code
	}{
		{"changed after signing", changed, sig, []signing.PublicKey{pub}, finding.SignatureInvalid},
		{"another key", manifest, sig, []signing.PublicKey{other}, finding.UnknownKey},
		{"no signature", manifest, nil, []signing.PublicKey{pub}, finding.SignatureMissing},
	} {
		res, err := signing.VerifyManifest(tc.manifest, tc.sig, tc.keys)
		if err != nil || res.Code != tc.want {
			t.Errorf("%s: %q (%s) %v, want %s", tc.name, res.Code, res.Message, err, tc.want)
		}
	}
	// cosign agrees on the changed manifest.
	if out, err := c.verifyBlob(pubFile, c.file("manifest.yaml.sigstore.json"), c.write(t, "changed.yaml", changed)); err == nil {
		t.Fatalf("cosign verify-blob accepts its own signature for a changed manifest:\n%s", out)
	}

	// A pipeline that signs its manifests as DSSE attestations (`cosign
	// attest-blob`): an in-toto statement whose subject is manifest.yaml.
	c.write(t, "predicate.json", []byte(`{"exporter":"pipeline"}`))
	c.must(t, "attest-blob", "--key", key, "--predicate", c.file("predicate.json"), "--type", "https://refdoctor.example/mirror-manifest/v1",
		"--bundle", c.file("attestation.json"), "--signing-config", c.file("signing-config.json"), "--trusted-root", c.file("trusted-root.json"),
		c.file("manifest.yaml"))
	att := c.read(t, "attestation.json")
	if info, err := signing.InspectSignature(att); err != nil || info.Content != "dsse" || !info.Claims(manifest) || info.Claims(changed) {
		t.Fatalf("cosign attest-blob wrote %+v %v", info, err)
	}
	if res, err := signing.VerifyManifest(manifest, att, []signing.PublicKey{pub}); err != nil || !res.OK() || res.KeyFingerprint != pub.Fingerprint() {
		t.Errorf("DSSE attestation of manifest.yaml: %+v %v", res, err)
	}
	if res, err := signing.VerifyManifest(changed, att, []signing.PublicKey{pub}); err != nil || res.Code != finding.SignatureInvalid || res.KeyFingerprint != pub.Fingerprint() {
		t.Errorf("DSSE attestation, manifest changed after signing: %+v %v", res, err)
	}
	if res, err := signing.VerifyManifest(manifest, att, []signing.PublicKey{other}); err != nil || res.Code != finding.UnknownKey {
		t.Errorf("DSSE attestation, another key: %+v %v", res, err)
	}
}
