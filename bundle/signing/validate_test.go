package signing_test

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/refdoctor/refdoctor/bundle"
	"github.com/refdoctor/refdoctor/bundle/signing"
	"github.com/refdoctor/refdoctor/finding"
)

// member is one archive member of a crafted bundle.
type member struct {
	name string
	data []byte
}

// smallBundle is a minimal whole bundle: manifest.yaml listing
// oci-layout, index.json (no images) and one blob.
func smallBundle(t *testing.T, version string) (manifest []byte, rest []member) {
	t.Helper()
	layout := []byte(`{"imageLayoutVersion":"1.0.0"}`)
	index := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}`)
	blob := []byte("a layer of " + version)
	sum := func(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }
	m := bundle.Manifest{
		SchemaVersion: bundle.FormatVersion, Kind: bundle.ManifestKind,
		CreatedAt: time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC), Tool: bundle.Tool{Name: "refdoctor", Version: version},
		Files: []bundle.FileEntry{
			{Path: bundle.LayoutPath, Size: int64(len(layout)), SHA256: sum(layout)},
			{Path: bundle.IndexPath, Size: int64(len(index)), SHA256: sum(index)},
			{Path: bundle.BlobsDir + sum(blob), Size: int64(len(blob)), SHA256: sum(blob)},
		},
	}
	yml, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return yml, []member{{bundle.LayoutPath, layout}, {bundle.IndexPath, index}, {bundle.BlobsDir + sum(blob), blob}}
}

// craft writes members, in the order given, as a gzip tar with Go's
// archive/tar: an archive built independently of refdoctor's writer.
func craft(t *testing.T, members ...member) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, m := range members {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: m.name, Size: int64(len(m.data)), Mode: 0o644, Format: tar.FormatUSTAR}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(m.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func validate(t *testing.T, archive []byte, opts ...bundle.Opt) bundle.Report {
	t.Helper()
	rep, err := bundle.Validate(context.Background(), bytes.NewReader(archive), append([]bundle.Opt{bundle.WithCheckReferrers(true)}, opts...)...)
	if err != nil {
		t.Fatalf("validate: %v", err)
	}
	return rep
}

func codes(rep bundle.Report) []finding.Code {
	var out []finding.Code
	for _, p := range rep.Errors {
		out = append(out, p.Code)
	}
	return out
}

// TestValidateChecksTheSignature walks the signature member through the
// validator with real keys: verified by the right key; described without
// one; refused for another key, a manifest changed after signing (all
// checksums recomputed), a missing signature when one is asked for; and
// malformed when it is misplaced or doubled, keys or not.
func TestValidateChecksTheSignature(t *testing.T) {
	t.Parallel()
	for _, kind := range []string{"p256", "ed25519"} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			privPEM, pubPEM := pkcs8Key(t, kind)
			_, otherPEM := pkcs8Key(t, kind)
			key := mustSigningKey(t, privPEM)
			pub, other := mustPublicKey(t, pubPEM), mustPublicKey(t, otherPEM)
			right, wrong, describe := signing.NewVerifier(pub), signing.NewVerifier(other), signing.NewVerifier()

			yml, rest := smallBundle(t, "v1")
			sig, err := signing.SignManifest(yml, key)
			if err != nil {
				t.Fatal(err)
			}
			signed := craft(t, append([]member{{bundle.ManifestPath, yml}, {bundle.SignatureMember, sig}}, rest...)...)
			unsigned := craft(t, append([]member{{bundle.ManifestPath, yml}}, rest...)...)

			// The right key: verified, every member trusted.
			rep := validate(t, signed, bundle.WithSignatureVerifier(right))
			if !rep.OK || rep.Signature.Status != bundle.SignatureVerified || rep.Signature.KeyFingerprint != pub.Fingerprint() || !rep.Signature.Signed {
				t.Fatalf("signed, right key: ok %v %+v %v", rep.OK, rep.Signature, rep.Errors)
			}
			if !rep.Verified(bundle.IndexPath) || !rep.Verified(bundle.ManifestPath) {
				t.Error("a verified bundle's members are not trusted")
			}
			if sum := sha256.Sum256(yml); rep.Signature.ManifestSHA256 != hex.EncodeToString(sum[:]) {
				t.Errorf("manifest sha256 %s", rep.Signature.ManifestSHA256)
			}
			if rep.FilesChecked != len(rest)+1 {
				t.Errorf("files checked %d, want the %d members after manifest.yaml, signature included", rep.FilesChecked, len(rest)+1)
			}

			// No key: signed, described, valid; the member is not unlisted.
			rep = validate(t, signed, bundle.WithSignatureVerifier(describe))
			if !rep.OK || rep.Signature.Status != bundle.SignatureSigned || rep.Signature.KeyFingerprint != pub.Fingerprint() || rep.Signature.Info == nil {
				t.Fatalf("signed, no key: ok %v %+v %v", rep.OK, rep.Signature, rep.Errors)
			}
			rep = validate(t, signed)
			if !rep.OK || rep.Signature.Status != bundle.SignatureSigned || slices.Contains(codes(rep), finding.UnlistedFile) {
				t.Fatalf("signed, no verifier: ok %v %+v %v", rep.OK, rep.Signature, rep.Errors)
			}

			// Another key.
			rep = validate(t, signed, bundle.WithSignatureVerifier(wrong))
			if rep.OK || rep.Signature.Code != finding.UnknownKey || !slices.Equal(codes(rep), []finding.Code{finding.UnknownKey}) {
				t.Fatalf("another key: %+v %v", rep.Signature, rep.Errors)
			}
			for _, m := range append([]member{{bundle.ManifestPath, nil}}, rest...) {
				if rep.Verified(m.name) {
					t.Errorf("%s is trusted though the signature is by an unknown key", m.name)
				}
			}
			// Several keys: any one suffices.
			if rep := validate(t, signed, bundle.WithSignatureVerifier(signing.NewVerifier(other, pub))); !rep.OK || rep.Signature.KeyFingerprint != pub.Fingerprint() {
				t.Errorf("two keys, the second signed: %+v %v", rep.Signature, rep.Errors)
			}

			// Unsigned.
			if rep := validate(t, unsigned, bundle.WithSignatureVerifier(describe)); !rep.OK || rep.Signature.Status != bundle.SignatureUnsigned || rep.Signature.Signed {
				t.Errorf("unsigned, nothing asked: %+v %v", rep.Signature, rep.Errors)
			}
			rep = validate(t, unsigned, bundle.WithSignatureVerifier(right))
			if rep.OK || rep.Signature.Code != finding.SignatureMissing || !slices.Equal(codes(rep), []finding.Code{finding.SignatureMissing}) || rep.Verified(bundle.IndexPath) {
				t.Errorf("unsigned, key given: %+v %v", rep.Signature, rep.Errors)
			}
			rep = validate(t, unsigned, bundle.WithSignatureVerifier(describe), bundle.WithRequireSignature(true))
			if rep.OK || rep.Signature.Code != finding.SignatureMissing || !strings.Contains(rep.Signature.Message, "--require-signature") {
				t.Errorf("unsigned, required: %+v %v", rep.Signature, rep.Errors)
			}
			if rep := validate(t, signed, bundle.WithRequireSignature(true)); !rep.OK || rep.Signature.Status != bundle.SignatureSigned {
				t.Errorf("signed, required, no key: %+v %v", rep.Signature, rep.Errors)
			}

			// manifest.yaml changed after signing, every checksum
			// recomputed: an added blob, listed with its right sha256.
			extra := []byte("a blob added after signing")
			es := sha256.Sum256(extra)
			m, err := bundle.ParseManifest(bytes.NewReader(yml), bundle.DefaultManifestLimit)
			if err != nil {
				t.Fatal(err)
			}
			m.Files = append(m.Files, bundle.FileEntry{Path: bundle.BlobsDir + hex.EncodeToString(es[:]), Size: int64(len(extra)), SHA256: hex.EncodeToString(es[:])})
			changed, err := m.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			tampered := craft(t, append([]member{{bundle.ManifestPath, changed}, {bundle.SignatureMember, sig}}, append(rest, member{m.Files[len(m.Files)-1].Path, extra})...)...)
			if rep := validate(t, tampered, bundle.WithSignatureVerifier(describe)); rep.OK || !slices.Equal(codes(rep), []finding.Code{finding.SignatureInvalid}) {
				// Without a key the signature's own claim already shows it
				// is for another manifest.yaml; the checksums all agree.
				t.Errorf("tampered, no key: %+v %v", rep.Signature, rep.Errors)
			}
			rep = validate(t, tampered, bundle.WithSignatureVerifier(right))
			if rep.OK || rep.Signature.Code != finding.SignatureInvalid || !slices.Equal(codes(rep), []finding.Code{finding.SignatureInvalid}) ||
				!strings.Contains(rep.Signature.Message, "changed after it was signed") || rep.Signature.KeyFingerprint != pub.Fingerprint() {
				t.Errorf("tampered, key given: %+v %v", rep.Signature, rep.Errors)
			}
			if p := rep.Errors[0]; p.Path != bundle.SignatureMember || p.Actual != sha256Hex(changed) || p.Expected != sha256Hex(yml) {
				t.Errorf("the problem should show the signed and the present sha256: %+v", p)
			}
			if rep.Verified(bundle.IndexPath) {
				t.Error("a member of a tampered bundle is trusted")
			}
			// The same bundle without a key, its signature member dropped:
			// whole, unsigned. Only a key tells.
			if rep := validate(t, craft(t, append([]member{{bundle.ManifestPath, changed}}, append(rest, member{m.Files[len(m.Files)-1].Path, extra})...)...)); !rep.OK {
				t.Errorf("the tampered bundle without its signature: %v", rep.Errors)
			}

			// Misplaced, doubled, listed: malformed, keys or not.
			for _, c := range []struct {
				name    string
				members []member
				want    []finding.Code
				status  finding.Code
			}{
				{"after oci-layout", append([]member{{bundle.ManifestPath, yml}, rest[0], {bundle.SignatureMember, sig}}, rest[1:]...), []finding.Code{finding.SignatureInvalid}, finding.SignatureInvalid},
				{"first", append([]member{{bundle.SignatureMember, sig}, {bundle.ManifestPath, yml}}, rest...), []finding.Code{finding.SignatureInvalid}, finding.SignatureInvalid},
				{"last", append(append([]member{{bundle.ManifestPath, yml}}, rest...), member{bundle.SignatureMember, sig}), []finding.Code{finding.SignatureInvalid}, finding.SignatureInvalid},
				{"twice", append([]member{{bundle.ManifestPath, yml}, {bundle.SignatureMember, sig}, {bundle.SignatureMember, sig}}, rest...), []finding.Code{finding.DuplicateMember}, finding.DuplicateMember},
				{"twice, apart", append(append([]member{{bundle.ManifestPath, yml}, {bundle.SignatureMember, sig}}, rest...), member{bundle.SignatureMember, sig}), []finding.Code{finding.DuplicateMember}, finding.DuplicateMember},
			} {
				for _, v := range []*signing.Verifier{right, describe} {
					rep := validate(t, craft(t, c.members...), bundle.WithSignatureVerifier(v))
					if rep.OK || !slices.Equal(codes(rep), c.want) || rep.Signature.Status != bundle.SignatureFailed || rep.Signature.Code != c.status {
						t.Errorf("%s (keys %v): %v, signature %+v", c.name, v.CanVerify(), rep.Errors, rep.Signature)
					}
					if rep.Verified(bundle.IndexPath) {
						t.Errorf("%s: a member is trusted", c.name)
					}
				}
			}
			// A repacked bundle keeps the signature right after manifest.yaml.
			repacked := craft(t, rest[0], member{bundle.ManifestPath, yml}, member{bundle.SignatureMember, sig}, rest[1], rest[2])
			if rep := validate(t, repacked, bundle.WithSignatureVerifier(right)); !rep.OK || rep.Signature.Status != bundle.SignatureVerified || rep.ManifestFirst {
				t.Errorf("repacked, signature after manifest.yaml: %+v %v", rep.Signature, rep.Errors)
			}
		})
	}
}

func sha256Hex(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

// TestSignatureIsCheckedBeforeOtherMembers: the verdict on the signature
// is reached as the member after manifest.yaml streams past, before the
// validator reads any other member, so a streaming consumer knows whether
// to trust the listing before it uses anything else.
func TestSignatureIsCheckedBeforeOtherMembers(t *testing.T) {
	t.Parallel()
	privPEM, _ := pkcs8Key(t, "p256")
	_, otherPEM := pkcs8Key(t, "p256")
	yml, rest := smallBundle(t, "v1")
	sig, err := signing.SignManifest(yml, mustSigningKey(t, privPEM))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name    string
		members []member
		want    finding.Code
	}{
		{"foreign key", append([]member{{bundle.ManifestPath, yml}, {bundle.SignatureMember, sig}}, rest...), finding.UnknownKey},
	} {
		var events []string
		rep, err := bundle.Validate(context.Background(), bytes.NewReader(craft(t, c.members...)),
			bundle.WithSignatureVerifier(signing.NewVerifier(mustPublicKey(t, otherPEM))),
			bundle.WithEvents(func(e bundle.Event) {
				switch e.Kind {
				case bundle.EventMember:
					events = append(events, "member "+e.Path)
				case bundle.EventProblem:
					events = append(events, "problem "+string(e.Problem.Code))
				}
			}))
		if err != nil || rep.OK {
			t.Fatalf("%s: %v %v", c.name, err, rep.Errors)
		}
		i := slices.Index(events, "problem "+string(c.want))
		j := slices.Index(events, "member "+rest[0].name)
		if i < 0 || j < 0 || i > j {
			t.Errorf("%s: the signature's verdict comes after the next member is read: %v", c.name, events)
		}
	}
}

// TestInspectShowsTheSignature: inspect says whether a bundle is signed,
// by which key, and whether the signature claims this manifest.yaml.
func TestInspectShowsTheSignature(t *testing.T) {
	t.Parallel()
	privPEM, pubPEM := pkcs8Key(t, "ed25519")
	pub := mustPublicKey(t, pubPEM)
	yml, rest := smallBundle(t, "v1")
	sig, err := signing.SignManifest(yml, mustSigningKey(t, privPEM))
	if err != nil {
		t.Fatal(err)
	}
	other, _ := smallBundle(t, "v2")
	dir := t.TempDir()
	write := func(name string, members ...member) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, craft(t, members...), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, c := range []struct {
		name    string
		file    string
		status  string
		claims  bool
		keyFP   string
		problem string
	}{
		{"signed", write("signed.tgz", append([]member{{bundle.ManifestPath, yml}, {bundle.SignatureMember, sig}}, rest...)...), bundle.SignatureSigned, true, pub.Fingerprint(), ""},
		{"unsigned", write("unsigned.tgz", append([]member{{bundle.ManifestPath, yml}}, rest...)...), bundle.SignatureUnsigned, false, "", ""},
		{"signature of another manifest", write("other.tgz", append([]member{{bundle.ManifestPath, other}, {bundle.SignatureMember, sig}}, rest...)...), bundle.SignatureSigned, false, pub.Fingerprint(), ""},
		{"not a signature", write("junk.tgz", append([]member{{bundle.ManifestPath, yml}, {bundle.SignatureMember, []byte("junk")}}, rest...)...), bundle.SignatureSigned, false, "", "not a Sigstore bundle"},
	} {
		s, err := bundle.Inspect(context.Background(), c.file, bundle.WithSignatureVerifier(signing.NewVerifier()))
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		got := s.Signature
		fp := ""
		if got.Info != nil {
			fp = got.Info.KeyFingerprint
		}
		if got.Status != c.status || got.ClaimsManifest != c.claims || fp != c.keyFP || !strings.Contains(got.Problem, c.problem) || got.ManifestSHA256 != sha256Hex(map[bool][]byte{true: other, false: yml}[c.name == "signature of another manifest"]) {
			t.Errorf("%s: %+v", c.name, got)
		}
	}
}

// TestAttachSignature signs an existing bundle in place: the rewritten
// bundle is the one export would have written signed (byte for byte, with
// an Ed25519 key), its sidecars are updated, and every refusal leaves the
// original untouched.
func TestAttachSignature(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	privPEM, pubPEM := pkcs8Key(t, "ed25519")
	key, pub := mustSigningKey(t, privPEM), mustPublicKey(t, pubPEM)
	yml, rest := smallBundle(t, "v1")
	m, err := bundle.ParseManifest(bytes.NewReader(yml), bundle.DefaultManifestLimit)
	if err != nil {
		t.Fatal(err)
	}
	// What refdoctor's writer makes, unsigned and signed, in MemberOrder.
	data := map[string][]byte{bundle.ManifestPath: yml}
	for _, r := range rest {
		data[r.name] = r.data
	}
	write := func(sig []byte) []byte { return writeOrdered(t, *m, data, sig, nil) }
	sig, err := signing.SignManifest(yml, key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "b.tgz")
	if err := os.WriteFile(file, write(nil), 0o640); err != nil {
		t.Fatal(err)
	}
	res, err := bundle.AttachSignature(ctx, file, key.SignManifest, false)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(file)
	if !bytes.Equal(got, write(sig)) {
		t.Error("the signed bundle is not byte-identical to the one the writer makes with the signature after manifest.yaml")
	}
	if side, _ := os.ReadFile(bundle.SignatureSidecarPath(file)); !bytes.Equal(side, sig) {
		t.Error("the .sigstore.json sidecar is not the signature")
	}
	if side, _ := os.ReadFile(file + ".sha256"); string(side) != sha256Hex(got)+"  b.tgz\n" || res.Checksum != sha256Hex(got) {
		t.Errorf(".sha256 sidecar %q, result %s, file %s", side, res.Checksum, sha256Hex(got))
	}
	if fi, _ := os.Stat(file); fi.Mode().Perm() != 0o640 {
		t.Errorf("mode %v, want the original 0640", fi.Mode().Perm())
	}
	rep, err := bundle.ValidateFile(ctx, file, bundle.WithSignatureVerifier(signing.NewVerifier(pub)))
	if err != nil || !rep.OK || rep.Signature.Status != bundle.SignatureVerified {
		t.Fatalf("validate the signed bundle: %v %+v %v", err, rep.Signature, rep.Errors)
	}

	unchanged := func(what string) {
		t.Helper()
		now, _ := os.ReadFile(file)
		if !bytes.Equal(now, got) {
			t.Errorf("%s changed the bundle", what)
		}
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if strings.Contains(e.Name(), ".partial-") {
				t.Errorf("%s left %s behind", what, e.Name())
			}
		}
	}
	if _, err := bundle.AttachSignature(ctx, file, key.SignManifest, false, bundle.WithSignatureVerifier(signing.NewVerifier())); !errors.Is(err, bundle.ErrAlreadySigned) || !strings.Contains(err.Error(), pub.Fingerprint()) {
		t.Errorf("signing a signed bundle: %v", err)
	}
	unchanged("refusing to sign twice")
	if _, err := bundle.AttachSignature(ctx, file, func([]byte) ([]byte, error) { return nil, errors.New("the HSM said no") }, true); err == nil || !strings.Contains(err.Error(), "HSM") {
		t.Errorf("a signer that fails: %v", err)
	}
	unchanged("a failing signer")
	if _, err := bundle.AttachSignature(ctx, file, func([]byte) ([]byte, error) { return []byte("junk"), nil }, true); err == nil {
		t.Error("a signature that is not a Sigstore bundle was attached")
	}
	unchanged("a junk signature")
	res, err = bundle.AttachSignature(ctx, file, key.SignManifest, true)
	if err != nil || !res.Replaced {
		t.Fatalf("replace: %+v %v", res, err)
	}
	if now, _ := os.ReadFile(file); !bytes.Equal(now, got) {
		t.Error("replacing an Ed25519 signature with itself changed the bundle")
	}

	// A damaged bundle is not signed.
	damaged := filepath.Join(dir, "damaged.tgz")
	bad := append([]member{{bundle.ManifestPath, yml}}, rest...)
	bad[1] = member{bad[1].name, []byte(`{"imageLayoutVersion":"9.9.9"}`)}
	if err := os.WriteFile(damaged, craft(t, bad...), 0o644); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(damaged)
	res, err = bundle.AttachSignature(ctx, damaged, key.SignManifest, false)
	if !errors.Is(err, bundle.ErrDamaged) || res.Validation == nil || res.Validation.OK {
		t.Errorf("signing a damaged bundle: %v", err)
	}
	if after, _ := os.ReadFile(damaged); !bytes.Equal(before, after) {
		t.Error("a refused signing changed the damaged bundle")
	}
	if _, err := os.Stat(bundle.SignatureSidecarPath(damaged)); !errors.Is(err, os.ErrNotExist) {
		t.Error("a refused signing wrote a signature sidecar")
	}

	// A misplaced signature is replaced with --force, and only then.
	misplaced := filepath.Join(dir, "misplaced.tgz")
	if err := os.WriteFile(misplaced, craft(t, append(append([]member{{bundle.ManifestPath, yml}}, rest...), member{bundle.SignatureMember, sig})...), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := bundle.AttachSignature(ctx, misplaced, key.SignManifest, false); !errors.Is(err, bundle.ErrDamaged) {
		t.Errorf("a bundle with a misplaced signature, no force: %v", err)
	}
	if _, err := bundle.AttachSignature(ctx, misplaced, key.SignManifest, true); err != nil {
		t.Errorf("a bundle with a misplaced signature, force: %v", err)
	}
	if rep, err := bundle.ValidateFile(ctx, misplaced, bundle.WithSignatureVerifier(signing.NewVerifier(pub))); err != nil || !rep.OK {
		t.Errorf("the re-signed bundle: %v %v", err, rep.Errors)
	}
	var names []string
	if err := bundle.EachMember(ctx, misplaced, func(name string, _ int64, _ io.Reader) error { names = append(names, name); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(names) != len(rest)+2 || names[0] != bundle.ManifestPath || names[1] != bundle.SignatureMember {
		t.Errorf("members after re-signing: %v", names)
	}
}
