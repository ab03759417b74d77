package bundle

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"strings"

	"github.com/refdoctor/refdoctor/finding"
)

// sigState follows the signature member through one validation: where it
// must be (right after the first manifest.yaml), whether it is there, and
// the verdict, reached as soon as the member after manifest.yaml is read.
type sigState struct {
	order SignatureOrder
	// expect: the previous member was the first manifest.yaml, so this
	// member is the signature's place.
	expect bool
	// placed: the member being read now is the signature in its place.
	placed bool
	// decided: the member after manifest.yaml was read (or the archive
	// ended after it), so the bundle is known to be signed or not.
	decided bool
	// misplaced: a signature member was found somewhere else; duplicate:
	// a second one was found.
	misplaced, duplicate bool

	sum      hash.Hash
	held     *bytes.Buffer
	digest   [32]byte
	haveSum  bool
	manifest []byte
}

// manifestReader tees manifest.yaml's bytes through SHA-256 (and into a
// buffer, when the verifier needs the bytes themselves).
func (s *sigState) manifestReader(r io.Reader, size int64, v ManifestVerifier) io.Reader {
	s.sum = sha256.New()
	w := io.Writer(s.sum)
	if v != nil && v.CanVerify() && v.NeedsManifest() {
		s.held = bytes.NewBuffer(make([]byte, 0, size))
		w = io.MultiWriter(s.sum, s.held)
	}
	return io.TeeReader(r, w)
}

// manifestRead records that manifest.yaml was read to its end: the next
// member is the signature's place.
func (s *sigState) manifestRead() {
	s.sum.Sum(s.digest[:0])
	s.haveSum = true
	if s.held != nil {
		s.manifest = s.held.Bytes()
	}
	s.sum, s.held = nil, nil
	s.expect = true
}

// signatureOrder is called for every entry that is not a directory, in
// archive order, before anything else is done with it.
func (v *validator) signatureOrder(name string) {
	s := &v.sig
	expected := s.expect
	s.expect, s.placed = false, false
	code, msg := s.order.Member(name)
	if expected {
		s.decided = true
	}
	if name != SignatureMember {
		return
	}
	switch {
	case code == finding.DuplicateMember:
		// addName reports the second one as DuplicateMember.
		s.duplicate = true
	case expected:
		s.placed = true
	default:
		s.misplaced = true
		if code == "" {
			// Right after a manifest.yaml, but not the first one.
			msg = SignatureMember + " follows a second " + ManifestPath + ": it must directly follow the first, so that it is checked before any other member is trusted"
		}
		v.problem(Problem{Code: finding.SignatureInvalid, Path: SignatureMember, Message: msg + "; the bundle is malformed even if the signature verifies"})
	}
}

// readSignature reads a signature member. Only the one in its place is
// verified; any other is hashed, counted and reported by signatureOrder.
// It is never listed (manifest.yaml cannot hold its checksum), so it is
// never UnlistedFile.
func (v *validator) readSignature(tr *tar.Reader, hdr *tar.Header, ent *listEntry) (bool, error) {
	s := &v.sig
	placed := s.placed
	s.placed = false
	if ent != nil {
		// manifest.yaml's parser refuses a listing of this member, so
		// this is only reached without a listing entry; be safe.
		ent.state |= entryFlagged
	}
	if hdr.Size > v.o.maxMember {
		v.stop(Problem{Code: finding.MemberTooLarge, Path: SignatureMember,
			Expected: fmt.Sprintf("at most %d", v.o.maxMember), Actual: fmt.Sprint(hdr.Size),
			Message: fmt.Sprintf("member is %d bytes, over the %d-byte bound", hdr.Size, v.o.maxMember)})
		return true, nil
	}
	mode, limit := holdAlways, int64(MaxSignatureSize)
	if !placed || hdr.Size > limit {
		mode = holdNone
	}
	var sum [32]byte
	data, _, err := v.hashMember(tr, SignatureMember, hdr.Size, mode, &sum)
	if err != nil {
		return true, v.readFailure(err, SignatureMember)
	}
	v.rep.FilesChecked++
	if !placed {
		return false, nil
	}
	rep := &v.rep.Signature
	rep.Signed = true
	if s.haveSum {
		rep.ManifestSHA256 = hex.EncodeToString(s.digest[:])
	}
	fail := func(code finding.Code, msg string) {
		rep.Status, rep.Code, rep.Message = SignatureFailed, code, msg
		p := Problem{Code: code, Path: SignatureMember, Message: msg}
		if rep.Info != nil && rep.ManifestSHA256 != "" && !rep.Info.ClaimsSHA256(rep.ManifestSHA256) {
			// The two sides of "changed after signing".
			p.Expected, p.Actual = claimed(*rep.Info), rep.ManifestSHA256
		}
		v.problem(p)
	}
	if hdr.Size > limit {
		fail(finding.SignatureInvalid, fmt.Sprintf("%s is %d bytes, more than the %d a signature can be; it was not read", SignatureMember, hdr.Size, limit))
		return false, nil
	}
	info, readable := describeSignature(data, v.o.signatures)
	if readable != "" {
		fail(finding.SignatureInvalid, SignatureMember+" is not a Sigstore bundle: "+readable)
		return false, nil
	}
	rep.Info = info
	if info != nil {
		rep.KeyFingerprint = info.KeyFingerprint
	}
	rep.Status, rep.Message = SignatureSigned, "signed; no key was given to verify the signature (--verify-key)"
	if rep.KeyFingerprint != "" {
		rep.Message = "signed by the key with fingerprint " + rep.KeyFingerprint + " (not verified: no key was given, --verify-key)"
	}
	vf := v.o.signatures
	if vf == nil || !vf.CanVerify() {
		if info != nil && rep.ManifestSHA256 != "" && !info.ClaimsSHA256(rep.ManifestSHA256) {
			// Not a verification, but a signature that names another
			// manifest.yaml cannot be one of this one.
			fail(finding.SignatureInvalid, fmt.Sprintf("the signature is for another %s (it names sha256 %s, %s has sha256 %s): it changed after it was signed",
				ManifestPath, claimed(*info), ManifestPath, rep.ManifestSHA256))
		}
		return false, nil
	}
	if !s.haveSum {
		fail(finding.SignatureInvalid, ManifestPath+" was not read whole, so its signature cannot be checked")
		return false, nil
	}
	res := vf.VerifyManifestSignature(s.manifest, s.digest, data)
	s.manifest = nil
	rep.KeyFingerprint, rep.KeySource = res.KeyFingerprint, res.KeySource
	if res.Info.MediaType != "" {
		i := res.Info
		rep.Info = &i
	} else {
		rep.Info = nil
	}
	if !res.OK() {
		fail(res.Code, res.Message)
		return false, nil
	}
	rep.Status, rep.Message = SignatureVerified, res.Message
	return false, nil
}

func claimed(i SignatureInfo) string {
	if i.SignedSHA256 != "" {
		return i.SignedSHA256
	}
	if len(i.StatementSHA256) > 0 {
		return strings.Join(i.StatementSHA256, ", ")
	}
	return "(none)"
}

// describeSignature reads what a signature says about itself: through
// the verifier when one is wired, else only its shape (a JSON object whose
// mediaType is a Sigstore bundle's). problem is "" when it is readable.
func describeSignature(data []byte, v ManifestVerifier) (info *SignatureInfo, problem string) {
	var shape struct {
		MediaType string `json:"mediaType"`
	}
	if err := json.Unmarshal(data, &shape); err != nil {
		return nil, "not JSON (" + clip(err.Error(), 200) + ")"
	}
	if !strings.HasPrefix(shape.MediaType, "application/vnd.dev.sigstore.bundle") {
		return nil, fmt.Sprintf("mediaType %q is not a Sigstore bundle's", clip(shape.MediaType, 100))
	}
	if v == nil {
		return nil, ""
	}
	i, err := v.Describe(data)
	if err != nil {
		return nil, clip(err.Error(), 300)
	}
	return &i, ""
}

// finishSignature settles the signature's verdict once reading ended.
func (v *validator) finishSignature(runErr error) {
	s := &v.sig
	rep := &v.rep.Signature
	if s.expect {
		// The archive ended right after manifest.yaml.
		s.expect, s.decided = false, true
	}
	wanted := rep.Checked || rep.Required
	if (s.misplaced || s.duplicate) && rep.Status != SignatureFailed {
		rep.Signed = true
		rep.Status, rep.Code = SignatureFailed, finding.SignatureInvalid
		rep.Message = SignatureMember + " is not where a signature must be, directly after " + ManifestPath + ": the bundle is malformed"
		if s.duplicate {
			rep.Code = finding.DuplicateMember
			rep.Message = "the bundle holds " + SignatureMember + " more than once: it is malformed, whatever the first one says"
		}
	}
	if rep.Signed || rep.Status == SignatureFailed {
		return
	}
	if !s.decided {
		// Reading stopped (or failed) before the member after
		// manifest.yaml: whether the bundle is signed is not known.
		rep.Status = SignatureUnknown
		rep.Message = "reading stopped before the signature's place (the member after " + ManifestPath + "), so whether the bundle is signed is not known"
		if runErr == nil && v.manifest == nil && !v.manifestSeen && !v.stopped {
			rep.Status, rep.Message = SignatureUnsigned, "the bundle has no "+ManifestPath+", and so no signature"
		}
		return
	}
	rep.Status = SignatureUnsigned
	rep.Message = "the bundle is not signed: no " + SignatureMember + " directly after " + ManifestPath
	if wanted {
		why := "a key was given to verify it with (--verify-key)"
		if rep.Required && !rep.Checked {
			why = "a signature is required (--require-signature)"
		}
		rep.Status, rep.Code = SignatureFailed, finding.SignatureMissing
		rep.Message += ", and " + why
		v.problem(Problem{Code: finding.SignatureMissing, Path: SignatureMember, Message: rep.Message})
	}
}
