package cli_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/regclient/regclient/types/ref"

	"github.com/refdoctor/refdoctor/bundle"
	"github.com/refdoctor/refdoctor/bundle/signing"
	"github.com/refdoctor/refdoctor/finding"
	"github.com/refdoctor/refdoctor/lab"
	"github.com/refdoctor/refdoctor/lab/labtest"
	"github.com/refdoctor/refdoctor/registry"
)

// validateJSON is the part of `bundle validate -o json` these tests read.
type validateJSON struct {
	OK     bool `json:"ok"`
	Errors []struct {
		Code, Path, Expected, Actual, Message string
	} `json:"errors"`
	Signature struct {
		Status, Code, Message string
		Signed, Checked       bool
		KeyFingerprint        string `json:"key_fingerprint"`
		KeySource             string `json:"key_source"`
		ManifestSHA256        string `json:"manifest_sha256"`
	} `json:"signature"`
	ImageSignatures []struct {
		Subject, Reference, Status, Code, Message string
		KeyFingerprint                            string `json:"key_fingerprint"`
		Signatures                                []struct{ Format, Status string }
	} `json:"image_signatures"`
}

func validateOut(t *testing.T, args ...string) (int, validateJSON, string) {
	t.Helper()
	code, out, errOut := run(t, append([]string{"-o", "json", "bundle", "validate"}, args...)...)
	var v validateJSON
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("validate %v: exit %d, not JSON: %v\n%s%s", args, code, err, out, errOut)
	}
	return code, v, out
}

func errorCodes(v validateJSON) []string {
	var out []string
	for _, e := range v.Errors {
		out = append(out, e.Code)
	}
	return out
}

// TestSignedBundleEndToEnd: refdoctor exports a bundle signed with a cosign
// key from a lab registry; cosign verify-blob accepts its signature of the
// extracted manifest.yaml; validate verifies it with the public key (flag
// or [bundle] verify_keys), names another key UnknownKey, and inspect shows
// it. A bundle whose manifest.yaml was changed after signing, with every
// checksum recomputed, passes without a key but fails SignatureInvalid
// with one, and a strict import of it sends no request to the target; an
// unsigned bundle fails --require-signature; misplaced and doubled
// signatures are malformed.
func TestSignedBundleEndToEnd(t *testing.T) {
	// Not parallel: the cosign key's password comes from the environment.
	c := newCosign(t)
	key, pub := c.keyPair(t, "export")
	_, strangerPub := c.keyPair(t, "stranger")
	fp := fingerprintOf(t, pub)
	t.Setenv(signing.EnvKeyPassword, cosignTestPassword)

	l := labtest.StartT(t, lab.Spec{Name: "source", Profile: lab.ProfileOCI11}, lab.Spec{Name: "target", Profile: lab.ProfileOCI11, NoSeed: true})
	src, _ := l.Get("source")
	tgt, _ := l.Get("target")
	dir := t.TempDir()
	cfg := writeFile(t, dir, "c.toml", fmt.Sprintf("[cache]\ndir = %q\n[[registry]]\nhost = %q\nplain_http = true\n[[registry]]\nhost = %q\nplain_http = true\n", filepath.Join(dir, "cache"), src.Host, tgt.Host))
	signed := filepath.Join(dir, "app.tgz")

	code, out, errOut := run(t, "--config", cfg, "bundle", "export", "--file", signed, "--sign-key", key, "--created", "2026-11-27T12:00:00Z", l.Seed.Ref(src.Host))
	if code != 0 || !strings.Contains(out, "signed by key "+fp) {
		t.Fatalf("signed export: exit %d\n%s%s", code, out, errOut)
	}
	// The signature is the second member, for GNU tar as for Go's reader,
	// and the sidecar holds the same bytes.
	names := strings.Split(strings.TrimSpace(string(gnuTar(t, "-tzf", signed))), "\n")
	if len(names) < 3 || names[0] != bundle.ManifestPath || names[1] != bundle.SignatureMember {
		t.Fatalf("members: %v", names[:min(3, len(names))])
	}
	members := readMembers(t, signed)
	sidecar, err := os.ReadFile(signed + ".sigstore.json")
	if err != nil || !bytes.Equal(sidecar, members[1].data) {
		t.Fatalf("the sidecar %s is not the signature member: %v", signed+".sigstore.json", err)
	}
	if got := strings.Fields(string(must(os.ReadFile(signed + ".sha256"))))[0]; got != sha256File(t, signed) {
		t.Errorf(".sha256 sidecar %s, file %s", got, sha256File(t, signed))
	}
	// cosign accepts refdoctor's signature of the extracted manifest.yaml.
	manifestFile := filepath.Join(dir, "manifest.yaml")
	if err := os.WriteFile(manifestFile, gnuTar(t, "-xzOf", signed, bundle.ManifestPath), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := c.verifyBlob(pub, signed+".sigstore.json", manifestFile); err != nil || !strings.Contains(out, "Verified OK") {
		t.Fatalf("cosign verify-blob refuses refdoctor's signature: %v\n%s", err, out)
	}
	if out, err := c.verifyBlob(strangerPub, signed+".sigstore.json", manifestFile); err == nil {
		t.Fatalf("cosign verify-blob accepts the signature with another key:\n%s", out)
	}

	// validate: verified with the key, signed without, UnknownKey with another.
	code, v, raw := validateOut(t, "--file", signed, "--check-referrers", "--verify-key", pub)
	if code != 0 || !v.OK || v.Signature.Status != "verified" || v.Signature.KeyFingerprint != fp || v.Signature.KeySource != pub || !v.Signature.Checked {
		t.Fatalf("validate --verify-key: exit %d %s", code, raw)
	}
	for _, field := range []string{`"ok"`, `"files_checked"`, `"bytes_checked"`, `"referrers_checked"`, `"errors"`} {
		if !strings.Contains(raw, field) {
			t.Errorf("the JSON contract lost %s", field)
		}
	}
	code, v, raw = validateOut(t, "--file", signed)
	if code != 0 || v.Signature.Status != "signed" || v.Signature.KeyFingerprint != fp || v.Signature.Checked {
		t.Fatalf("validate without a key: exit %d %s", code, raw)
	}
	code, v, raw = validateOut(t, "--file", signed, "--verify-key", strangerPub)
	if code != 1 || v.OK || v.Signature.Code != string(finding.UnknownKey) || strings.Join(errorCodes(v), ",") != "UnknownKey" {
		t.Fatalf("validate with another key: exit %d %s", code, raw)
	}
	code, out, _ = run(t, "bundle", "validate", "--file", signed, "--verify-key", strangerPub, "--verify-key", pub)
	if code != 0 || !strings.Contains(out, "signature: verified: signed by key "+fp+" (export.pub)") {
		t.Fatalf("validate with two keys, table: exit %d\n%s", code, out)
	}
	// [bundle] verify_keys, and --verify-key over it.
	cfgKeys := writeFile(t, dir, "keys.toml", fmt.Sprintf("[bundle]\nverify_keys = [%q]\n", strangerPub))
	if code, v, raw = validateOut(t, "--config", cfgKeys, "--file", signed); code != 1 || v.Signature.Code != "UnknownKey" {
		t.Fatalf("validate with [bundle] verify_keys of another key: exit %d %s", code, raw)
	}
	if code, v, raw = validateOut(t, "--config", cfgKeys, "--file", signed, "--verify-key", pub); code != 0 || v.Signature.Status != "verified" {
		t.Fatalf("--verify-key over [bundle] verify_keys: exit %d %s", code, raw)
	}
	// inspect shows it, unverified.
	code, out, _ = run(t, "-o", "json", "bundle", "inspect", "--file", signed)
	var ins struct {
		Signature struct {
			Status         string
			ClaimsManifest bool `json:"claims_manifest"`
			ManifestSHA256 string
			Info           struct {
				KeyFingerprint string `json:"key_fingerprint"`
				SignedSHA256   string `json:"signed_sha256"`
			}
		}
	}
	msum := sha256.Sum256(members[0].data)
	if code != 0 || json.Unmarshal([]byte(out), &ins) != nil || ins.Signature.Status != "signed" || !ins.Signature.ClaimsManifest ||
		ins.Signature.Info.KeyFingerprint != fp || ins.Signature.Info.SignedSHA256 != hex.EncodeToString(msum[:]) {
		t.Fatalf("inspect -o json: exit %d %s", code, out)
	}
	if code, out, _ = run(t, "bundle", "inspect", "--file", signed); code != 0 || !strings.Contains(out, "signed by key "+fp) || !strings.Contains(out, "signs manifest.yaml sha256 "+hex.EncodeToString(msum[:])) {
		t.Fatalf("inspect table: exit %d\n%s", code, out)
	}

	// manifest.yaml changed after signing, every checksum recomputed: an
	// annotation added to index.json, its size and sha256 updated in
	// manifest.yaml; the signature kept.
	tampered := filepath.Join(dir, "tampered.tgz")
	edited := make([]tarMember, len(members))
	copy(edited, members)
	var oldIndex, newIndex []byte
	for i, m := range edited {
		if m.name == bundle.IndexPath {
			oldIndex = m.data
			newIndex = bytes.Replace(m.data, []byte(`"manifests":[`), []byte(`"annotations":{"org.example.added":"after signing"},"manifests":[`), 1)
			edited[i].data = newIndex
		}
	}
	oldSum, newSum := sha256.Sum256(oldIndex), sha256.Sum256(newIndex)
	yml := bytes.Replace(members[0].data,
		[]byte(fmt.Sprintf("{path: index.json, size: %d, sha256: %s}", len(oldIndex), hex.EncodeToString(oldSum[:]))),
		[]byte(fmt.Sprintf("{path: index.json, size: %d, sha256: %s}", len(newIndex), hex.EncodeToString(newSum[:]))), 1)
	if bytes.Equal(yml, members[0].data) || bytes.Equal(oldIndex, newIndex) {
		t.Fatalf("could not craft the tampered bundle:\n%s", members[0].data)
	}
	edited[0].data = yml
	writeMembers(t, tampered, edited)
	withoutSig := filepath.Join(dir, "tampered-unsigned.tgz")
	writeMembers(t, withoutSig, append([]tarMember{edited[0]}, edited[2:]...))
	if code, v, raw = validateOut(t, "--file", withoutSig, "--check-referrers"); code != 0 || !v.OK {
		t.Fatalf("the tampered bundle without its signature: every checksum agrees, yet: exit %d %s", code, raw)
	}
	code, v, raw = validateOut(t, "--file", tampered, "--check-referrers", "--verify-key", pub)
	if code != 1 || v.Signature.Code != "SignatureInvalid" || strings.Join(errorCodes(v), ",") != "SignatureInvalid" || !strings.Contains(v.Signature.Message, "changed after it was signed") {
		t.Fatalf("tampered bundle with the key: exit %d %s", code, raw)
	}
	before := l.Requests("target")
	for _, args := range [][]string{{"--strict-referrer-validation"}, nil, {"--dry-run"}} {
		code, out, errOut := run(t, append([]string{"--config", cfg, "bundle", "import", "--file", tampered, "--to", tgt.Host, "--verify-key", pub}, args...)...)
		if code != 1 || !strings.Contains(errOut, "nothing was pushed") || !strings.Contains(errOut, "SignatureInvalid") {
			t.Fatalf("import %v of the tampered bundle: exit %d\n%s%s", args, code, out, errOut)
		}
	}
	if after := l.Requests("target"); after != before {
		t.Fatalf("imports of a bundle whose signature fails sent %d requests to the target", after-before)
	}
	code, out, _ = run(t, "--config", cfg, "-o", "json", "bundle", "import", "--file", tampered, "--to", tgt.Host, "--verify-key", pub, "--strict-referrer-validation")
	var imp struct {
		Pushed     int
		Validation validateJSON
	}
	if code != 1 || json.Unmarshal([]byte(out), &imp) != nil || imp.Pushed != 0 || imp.Validation.Signature.Code != "SignatureInvalid" {
		t.Fatalf("import -o json of the tampered bundle: exit %d %s", code, out)
	}
	if after := l.Requests("target"); after != before {
		t.Fatalf("the JSON import sent %d requests", after-before)
	}
	// Without a key, a signed bundle imports like any other: its signature
	// member is not pushed and not unlisted.
	if code, out, errOut := run(t, "--config", cfg, "bundle", "import", "--file", signed, "--to", tgt.Host, "--dry-run", "--strict-referrer-validation"); code != 0 || !strings.Contains(out, "dry run") {
		t.Fatalf("dry-run import of the signed bundle without a key: exit %d\n%s%s", code, out, errOut)
	}
	before = l.Requests("target")
	// The real bundle imports with the key, and that reaches the target.
	if code, out, errOut := run(t, "--config", cfg, "bundle", "import", "--file", signed, "--to", tgt.Host, "--verify-key", pub, "--strict-referrer-validation"); code != 0 {
		t.Fatalf("import of the signed bundle: exit %d\n%s%s", code, out, errOut)
	}
	if l.Requests("target") == before {
		t.Fatal("the signed import sent nothing: the request counter proves nothing")
	}

	// Unsigned: valid, unless a signature is asked for.
	unsigned := filepath.Join(dir, "unsigned.tgz")
	if code, out, errOut := run(t, "--config", cfg, "bundle", "export", "--file", unsigned, l.Seed.Ref(src.Host)); code != 0 {
		t.Fatalf("unsigned export: exit %d\n%s%s", code, out, errOut)
	}
	if code, v, raw = validateOut(t, "--file", unsigned); code != 0 || v.Signature.Status != "unsigned" {
		t.Fatalf("unsigned: exit %d %s", code, raw)
	}
	for _, args := range [][]string{{"--require-signature"}, {"--verify-key", pub}} {
		if code, v, raw = validateOut(t, append([]string{"--file", unsigned}, args...)...); code != 1 || strings.Join(errorCodes(v), ",") != "SignatureMissing" {
			t.Fatalf("unsigned %v: exit %d %s", args, code, raw)
		}
	}
	before = l.Requests("target")
	if code, _, errOut := run(t, "--config", cfg, "bundle", "import", "--file", unsigned, "--to", tgt.Host, "--require-signature"); code != 1 || !strings.Contains(errOut, "SignatureMissing") {
		t.Fatalf("import --require-signature of an unsigned bundle: exit %d %s", code, errOut)
	}
	if l.Requests("target") != before {
		t.Fatal("import of an unsigned bundle with --require-signature sent requests")
	}

	// Misplaced and doubled signatures are malformed, keys or not.
	for _, c := range []struct {
		name    string
		members []tarMember
		want    string
	}{
		{"misplaced", append(append([]tarMember{members[0]}, members[2:]...), members[1]), "SignatureInvalid"},
		{"doubled", append([]tarMember{members[0], members[1], members[1]}, members[2:]...), "DuplicateMember"},
	} {
		f := filepath.Join(dir, c.name+".tgz")
		writeMembers(t, f, c.members)
		for _, keys := range [][]string{nil, {"--verify-key", pub}} {
			if code, v, raw = validateOut(t, append([]string{"--file", f}, keys...)...); code != 1 || strings.Join(errorCodes(v), ",") != c.want || v.Signature.Status != "failed" {
				t.Errorf("%s %v: exit %d %s", c.name, keys, code, raw)
			}
		}
		before = l.Requests("target")
		if code, _, errOut := run(t, "--config", cfg, "bundle", "import", "--file", f, "--to", tgt.Host); code != 1 || !strings.Contains(errOut, "nothing was pushed") {
			t.Errorf("import of the %s bundle: exit %d %s", c.name, code, errOut)
		}
		if l.Requests("target") != before {
			t.Errorf("import of the %s bundle sent requests", c.name)
		}
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// writeKey writes a fresh key pair made with Go's crypto as unencrypted
// PKCS#8 and PEM public key files.
func writeKey(t *testing.T, dir, name, kind string) (priv, pub string) {
	t.Helper()
	var k any
	var public any
	switch kind {
	case "ed25519":
		p, s, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		k, public = s, p
	default:
		s, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		k, public = s, &s.PublicKey
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(public)
	if err != nil {
		t.Fatal(err)
	}
	priv, pub = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+".pub")
	if err := os.WriteFile(priv, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pub, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), 0o644); err != nil {
		t.Fatal(err)
	}
	return priv, pub
}

// TestBundleSignAttachesCosignSignatures: a manifest.yaml signed by the
// operator's pipeline with `cosign sign-blob --key --bundle` is attached
// with bundle sign --signature and accepted by validate --verify-key; a
// signature of another manifest, an unusable file and a second signature
// are refused with the bundle untouched. bundle sign --key gives, with an
// Ed25519 key, the very bytes export --sign-key writes.
func TestBundleSignAttachesCosignSignatures(t *testing.T) {
	t.Parallel()
	c := newCosign(t)
	pipelineKey, pipelinePub := c.keyPair(t, "pipeline")
	_, strangerPub := c.keyPair(t, "stranger")
	l := labtest.StartT(t, lab.Spec{Name: "source", Profile: lab.ProfileOCI11})
	src, _ := l.Get("source")
	dir := t.TempDir()
	cfg := writeFile(t, dir, "c.toml", fmt.Sprintf("[cache]\ndir = %q\n[[registry]]\nhost = %q\nplain_http = true\n", filepath.Join(dir, "cache"), src.Host))
	export := func(name string, extra ...string) string {
		t.Helper()
		out := filepath.Join(dir, name)
		args := append([]string{"--config", cfg, "bundle", "export", "--file", out, "--created", "2026-11-27T12:00:00Z"}, extra...)
		if code, stdout, errOut := run(t, append(args, l.Seed.Ref(src.Host))...); code != 0 {
			t.Fatalf("export %s: exit %d\n%s%s", name, code, stdout, errOut)
		}
		return out
	}
	b := export("app.tgz")
	manifestFile := filepath.Join(dir, "manifest.yaml")
	if err := os.WriteFile(manifestFile, gnuTar(t, "-xzOf", b, bundle.ManifestPath), 0o644); err != nil {
		t.Fatal(err)
	}
	sig := c.file("sig.json")
	c.must(t, append(append([]string{"sign-blob", "--key", pipelineKey, "--bundle", sig}, c.offline()...), manifestFile)...)

	// Refusals first, each leaving the bundle as it was.
	original := sha256File(t, b)
	junk := writeFile(t, dir, "junk.json", `{"not":"a signature"}`)
	otherFile := writeFile(t, dir, "other.txt", "another manifest\n")
	otherSig := c.file("other.json")
	c.must(t, append(append([]string{"sign-blob", "--key", pipelineKey, "--bundle", otherSig}, c.offline()...), otherFile)...)
	for _, tc := range []struct {
		name string
		args []string
		code int
		says string
	}{
		{"a signature of another file", []string{"--signature", otherSig}, 1, "is not a signature of this bundle's manifest.yaml"},
		{"not a Sigstore bundle", []string{"--signature", junk}, 2, "not a Sigstore bundle"},
		{"no such signature file", []string{"--signature", filepath.Join(dir, "missing.json")}, 2, "no such file"},
		{"another key", []string{"--signature", sig, "--verify-key", strangerPub}, 1, "UnknownKey"},
		{"both --key and --signature", []string{"--signature", sig, "--key", pipelineKey}, 2, "one of --key"},
		{"neither", nil, 2, "one of --key"},
		{"a bad key file", []string{"--key", junk}, 2, "unusable key"},
	} {
		code, out, errOut := run(t, append([]string{"bundle", "sign", "--file", b}, tc.args...)...)
		if code != tc.code || !strings.Contains(errOut, tc.says) {
			t.Errorf("%s: exit %d, want %d saying %q\n%s%s", tc.name, code, tc.code, tc.says, out, errOut)
		}
		if sha256File(t, b) != original {
			t.Fatalf("%s changed the bundle", tc.name)
		}
	}
	if _, err := os.Stat(b + ".sigstore.json"); !os.IsNotExist(err) {
		t.Fatalf("a refused sign wrote the signature sidecar: %v", err)
	}

	code, out, errOut := run(t, "-o", "json", "bundle", "sign", "--file", b, "--signature", sig, "--verify-key", pipelinePub)
	var res struct {
		Path, Sidecar  string
		Checksum       string `json:"sha256"`
		SignedBy       string `json:"signed_by"`
		ManifestSHA256 string `json:"manifest_sha256"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &res) != nil || res.SignedBy != fingerprintOf(t, pipelinePub) || res.Checksum != sha256File(t, b) {
		t.Fatalf("bundle sign --signature: exit %d\n%s%s", code, out, errOut)
	}
	members := readMembers(t, b)
	if members[1].name != bundle.SignatureMember || !bytes.Equal(members[1].data, must(os.ReadFile(sig))) || !bytes.Equal(members[0].data, must(os.ReadFile(manifestFile))) {
		t.Fatalf("the attached signature is not cosign's bytes right after manifest.yaml: %s", members[1].name)
	}
	if got := strings.Fields(string(must(os.ReadFile(b + ".sha256"))))[0]; got != sha256File(t, b) {
		t.Errorf("the .sha256 sidecar was not updated: %s", got)
	}
	if code, v, raw := validateOut(t, "--file", b, "--check-referrers", "--verify-key", pipelinePub); code != 0 || v.Signature.Status != "verified" {
		t.Fatalf("validate the bundle with cosign's signature: exit %d %s", code, raw)
	}
	if out, err := c.verifyBlob(pipelinePub, b+".sigstore.json", manifestFile); err != nil {
		t.Fatalf("cosign verify-blob of the sidecar bundle sign wrote: %v\n%s", err, out)
	}
	signedSum := sha256File(t, b)
	if code, _, errOut := run(t, "bundle", "sign", "--file", b, "--signature", sig); code != 1 || !strings.Contains(errOut, "already signed") || !strings.Contains(errOut, "--force") {
		t.Errorf("signing a signed bundle: exit %d %s", code, errOut)
	}
	if sha256File(t, b) != signedSum {
		t.Fatal("refusing to sign twice changed the bundle")
	}

	// Ed25519 signatures are deterministic: bundle sign --key on an
	// unsigned export writes the very bytes export --sign-key does, and
	// two signed exports are identical. ECDSA signatures are not, so only
	// the members other than the signature repeat.
	dir2 := t.TempDir()
	edKey, edPub := writeKey(t, dir2, "ed", "ed25519")
	ecKey, _ := writeKey(t, dir2, "ec", "p256")
	signedExport := export("ed-export.tgz", "--sign-key", edKey)
	again := export("ed-again.tgz", "--sign-key", edKey)
	later := export("ed-later.tgz")
	if code, out, errOut := run(t, "bundle", "sign", "--file", later, "--key", edKey); code != 0 || !strings.Contains(out, "key "+fingerprintOf(t, edPub)) {
		t.Fatalf("bundle sign --key: exit %d\n%s%s", code, out, errOut)
	}
	if sha256File(t, signedExport) != sha256File(t, again) || sha256File(t, signedExport) != sha256File(t, later) {
		t.Error("Ed25519-signed bundles of the same inputs differ")
	}
	if !bytes.Equal(must(os.ReadFile(signedExport+".sigstore.json")), must(os.ReadFile(later+".sigstore.json"))) {
		t.Error("the signature sidecars differ")
	}
	ec1, ec2 := export("ec1.tgz", "--sign-key", ecKey), export("ec2.tgz", "--sign-key", ecKey)
	m1, m2 := readMembers(t, ec1), readMembers(t, ec2)
	if len(m1) != len(m2) || bytes.Equal(m1[1].data, m2[1].data) {
		t.Errorf("two ECDSA signatures are identical (%d/%d members): the signature should be randomized", len(m1), len(m2))
	}
	for i := range m1 {
		if i != 1 && (m1[i].name != m2[i].name || !bytes.Equal(m1[i].data, m2[i].data)) {
			t.Errorf("member %d (%s) differs between two ECDSA-signed exports", i, m1[i].name)
		}
	}
	// An unsigned export over a signed one removes its signature sidecar,
	// which no longer matches.
	export("ed-again.tgz")
	if _, err := os.Stat(again + ".sigstore.json"); !os.IsNotExist(err) {
		t.Errorf("an unsigned export left the earlier bundle's signature sidecar: %v", err)
	}
	// An export whose key cannot be used writes nothing.
	bad := filepath.Join(dir2, "bad.tgz")
	if code, _, errOut := run(t, "--config", cfg, "bundle", "export", "--file", bad, "--sign-key", junk, l.Seed.Ref(src.Host)); code != 2 || !strings.Contains(errOut, "unusable key") {
		t.Errorf("export with a bad key: exit %d %s", code, errOut)
	}
	if _, err := os.Stat(bad); !os.IsNotExist(err) {
		t.Error("an export with a bad key wrote a bundle")
	}
}

// TestCheckSignaturesMatchesCosign signs lab images with real cosign (a v3
// Sigstore bundle referrer and a legacy .sig, with the release key; one
// with another key; one left unsigned; one whose .sig is another image's),
// exports them, and checks that validate --check-signatures gives, per
// image, the verdict `cosign verify --key` gives against the source
// registry.
func TestCheckSignaturesMatchesCosign(t *testing.T) {
	t.Parallel()
	c := newCosign(t)
	releaseKey, releasePub := c.keyPair(t, "release")
	otherKey, otherPub := c.keyPair(t, "other")
	l := labtest.StartT(t, lab.Spec{Name: "source", Profile: lab.ProfileOCI11})
	src, _ := l.Get("source")
	ctx := context.Background()
	rc, err := registry.New(l.Config(), l.ClientOpts()...)
	if err != nil {
		t.Fatal(err)
	}
	many, err := lab.SeedMany(ctx, rc, src.Host, "demo/many", 4, 0)
	if err != nil {
		t.Fatal(err)
	}
	insecure := []string{"--allow-http-registry", "--allow-insecure-registry"}
	byDigest := func(repo, d string) string { return src.Host + "/" + repo + "@" + d }
	signV3 := func(key, image string) {
		c.must(t, append(append(append([]string{"sign", "--key", key, "-y"}, c.offline()...), image), insecure...)...)
	}
	signLegacy := func(key, image string) {
		c.must(t, append([]string{"sign", "--key", key, "-y", "--new-bundle-format=false", "--use-signing-config=false", "--tlog-upload=false", image}, insecure...)...)
	}
	single := byDigest(lab.SeedSingleRepository, l.Seed.Single)
	signV3(releaseKey, single)
	signLegacy(releaseKey, single)
	signV3(otherKey, byDigest("demo/many", many[0]))
	// many[1] stays unsigned.
	signLegacy(releaseKey, byDigest("demo/many", many[2]))
	// many[3] gets many[2]'s signature under its own .sig tag: a signature
	// copied to another image.
	sigTag := func(d string) string { return "sha256-" + strings.TrimPrefix(d, "sha256:") + ".sig" }
	from, _ := ref.New(src.Host + "/demo/many:" + sigTag(many[2]))
	to, _ := ref.New(src.Host + "/demo/many:" + sigTag(many[3]))
	m, err := rc.ManifestGet(ctx, from)
	if err != nil {
		t.Fatal(err)
	}
	if err := rc.ManifestPut(ctx, to, m); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	cfg := writeFile(t, dir, "c.toml", fmt.Sprintf("[cache]\ndir = %q\n[[registry]]\nhost = %q\nplain_http = true\n", filepath.Join(dir, "cache"), src.Host))
	b := filepath.Join(dir, "signed-images.tgz")
	refs := []string{src.Host + "/" + lab.SeedSingleRepository + ":v1", l.Seed.Ref(src.Host)}
	for i := range many {
		refs = append(refs, src.Host+"/demo/many:"+fmt.Sprintf(lab.SeedManyTagFormat, i))
	}
	if code, out, errOut := run(t, append([]string{"--config", cfg, "bundle", "export", "--file", b}, refs...)...); code != 0 {
		t.Fatalf("export: exit %d\n%s%s", code, out, errOut)
	}

	// The bundle is signed by the release key too, with a signature cosign
	// made, so that --verify-key release.pub passes for the bundle itself.
	manifestFile := filepath.Join(dir, "manifest.yaml")
	if err := os.WriteFile(manifestFile, gnuTar(t, "-xzOf", b, bundle.ManifestPath), 0o644); err != nil {
		t.Fatal(err)
	}
	c.must(t, append(append([]string{"sign-blob", "--key", releaseKey, "--bundle", c.file("bundle-sig.json")}, c.offline()...), manifestFile)...)
	if code, out, errOut := run(t, "bundle", "sign", "--file", b, "--signature", c.file("bundle-sig.json")); code != 0 {
		t.Fatalf("bundle sign: exit %d\n%s%s", code, out, errOut)
	}

	cosignVerifies := func(pub, image string) bool {
		for _, format := range [][]string{nil, {"--new-bundle-format=false"}} {
			args := append(append([]string{"verify", "--key", pub, "--insecure-ignore-tlog=true"}, insecure...), format...)
			if _, err := c.run(append(args, image)...); err == nil {
				return true
			}
		}
		return false
	}
	want := map[string]string{
		l.Seed.Single: "valid",
		many[0]:       "unknown-key",
		many[1]:       "unsigned",
		many[2]:       "valid",
		many[3]:       "invalid",
		l.Seed.Index:  "unknown-key", // the seed's .sig holds a signature no key made
	}
	repoOf := map[string]string{l.Seed.Single: lab.SeedSingleRepository, l.Seed.Index: l.Seed.Repository}
	for _, d := range many {
		repoOf[d] = "demo/many"
	}
	for _, keys := range []struct {
		pub  string
		flip map[string]string // verdicts that differ from want with this key
	}{
		{releasePub, nil},
		{otherPub, map[string]string{l.Seed.Single: "unknown-key", many[0]: "valid", many[2]: "unknown-key"}},
	} {
		code, v, raw := validateOut(t, "--file", b, "--check-signatures", "--verify-key", keys.pub)
		if len(v.ImageSignatures) != len(want) {
			t.Fatalf("--check-signatures with %s: %d images, want %d\n%s", keys.pub, len(v.ImageSignatures), len(want), raw)
		}
		anyInvalid := false
		for _, img := range v.ImageSignatures {
			exp, ok := keys.flip[img.Subject]
			if !ok {
				exp = want[img.Subject]
			}
			if img.Status != exp {
				t.Errorf("key %s, image %s (%s): %s (%s), want %s", filepath.Base(keys.pub), img.Reference, img.Subject, img.Status, img.Message, exp)
			}
			if img.Reference == "" {
				t.Errorf("image %s has no reference", img.Subject)
			}
			anyInvalid = anyInvalid || img.Status == "invalid"
			if got := cosignVerifies(keys.pub, byDigest(repoOf[img.Subject], img.Subject)); got != (img.Status == "valid") {
				t.Errorf("key %s, image %s: refdoctor says %s, cosign verify --key says verified=%v", filepath.Base(keys.pub), img.Subject, img.Status, got)
			}
			if img.Status == "valid" && img.KeyFingerprint != fingerprintOf(t, keys.pub) {
				t.Errorf("image %s valid by %s, want %s", img.Subject, img.KeyFingerprint, fingerprintOf(t, keys.pub))
			}
		}
		// The bundle's own signature is the release key's: verified with
		// it, UnknownKey with the other; the image verdicts stand apart.
		wantCodes := "ImageSignatureInvalid"
		if keys.pub == otherPub {
			wantCodes = "UnknownKey,ImageSignatureInvalid"
		}
		if !anyInvalid || code != 1 || strings.Join(errorCodes(v), ",") != wantCodes {
			t.Errorf("key %s: exit %d, errors %v, want exit 1 with %s", filepath.Base(keys.pub), code, errorCodes(v), wantCodes)
		}
		// The formats found agree with what was signed.
		for _, img := range v.ImageSignatures {
			if img.Subject == l.Seed.Single && keys.pub == releasePub {
				var formats []string
				for _, s := range img.Signatures {
					formats = append(formats, s.Format+"="+s.Status)
				}
				if got := strings.Join(formats, ","); !regexp.MustCompile(`cosign-simplesigning=valid`).MatchString(got) || !strings.Contains(got, "sigstore-bundle=valid") {
					t.Errorf("the single image's signatures: %s", got)
				}
			}
		}
	}
	// A v3 signature referrer damaged in the bundle is an invalid
	// signature of its image, never silently dropped; the image's legacy
	// signature still makes it valid, as cosign verify passes it.
	damaged := filepath.Join(dir, "damaged.tgz")
	members := readMembers(t, b)
	flipped := false
	for i, m := range members {
		if strings.HasPrefix(m.name, "referrers/sha256-"+strings.TrimPrefix(l.Seed.Single, "sha256:")+"/") {
			members[i].data = bytes.Replace(m.data, []byte("sigstore"), []byte("Sigstore"), 1)
			flipped = !bytes.Equal(members[i].data, m.data)
		}
	}
	if !flipped {
		t.Fatal("found no signature referrer of the single image to damage")
	}
	writeMembers(t, damaged, members)
	code, v, raw := validateOut(t, "--file", damaged, "--check-signatures", "--verify-key", releasePub)
	var singleImg *struct {
		Subject, Reference, Status, Code, Message string
		KeyFingerprint                            string `json:"key_fingerprint"`
		Signatures                                []struct{ Format, Status string }
	}
	for i := range v.ImageSignatures {
		if v.ImageSignatures[i].Subject == l.Seed.Single {
			singleImg = &v.ImageSignatures[i]
		}
	}
	if code != 1 || singleImg == nil || singleImg.Status != "valid" || !strings.Contains(raw, "did not pass validation") || !strings.Contains(strings.Join(errorCodes(v), ","), "ReferrerChecksumMismatch") {
		t.Fatalf("damaged signature referrer: exit %d %s", code, raw)
	}
	formats := map[string]string{}
	for _, s := range singleImg.Signatures {
		formats[s.Format] = s.Status
	}
	if formats["sigstore-bundle"] != "invalid" || formats["cosign-simplesigning"] != "valid" {
		t.Errorf("damaged signature referrer, per signature: %v", formats)
	}

	code, out, _ := run(t, "bundle", "validate", "--file", b, "--check-signatures", "--verify-key", releasePub)
	if code != 1 || !strings.Contains(out, "IMAGE SIGNATURES (6)") || !strings.Contains(out, "unknown-key") || !strings.Contains(out, "invalid") {
		t.Errorf("the table: exit %d\n%s", code, out)
	}
	if code, _, errOut := run(t, "bundle", "validate", "--file", b, "--check-signatures"); code != 2 || !strings.Contains(errOut, "--verify-key") {
		t.Errorf("--check-signatures without a key: exit %d %s", code, errOut)
	}
}
