package runbook

import (
	"context"
	"fmt"
	"strings"

	"github.com/refdoctor/refdoctor/bundle"
	"github.com/refdoctor/refdoctor/bundle/signing"
	"github.com/refdoctor/refdoctor/finding"
)

// remedies says what an operator does about each bundle problem.
var remedies = map[finding.Code]string{
	finding.ReferrerChecksumMismatch: "The referrer changed after export or in transit: re-export the bundle (refdoctor bundle diff shows what the source holds now).",
	finding.FileChecksumMismatch:     "The file was corrupted in transit: copy the bundle again and compare sha256sum with the .sha256 sidecar.",
	finding.SizeMismatch:             "The file was truncated or padded in transit: copy the bundle again.",
	finding.MissingFile:              "The bundle lost a member: re-export it, or copy it again.",
	finding.UnlistedFile:             "Something was added to the bundle after export: do not import it; re-export.",
	finding.ReferrerCountMismatch:    "manifest.yaml was edited or the export was interrupted: re-export the bundle.",
	finding.SubjectMismatch:          "A referrer sits under the wrong subject: re-export the bundle.",
	finding.DecompressionBomb:        "The archive expands far beyond its listed size: treat it as hostile and do not import it.",
	finding.UnsafePath:               "The archive tries to write outside its folder: treat it as hostile and do not import it.",
	finding.TruncatedArchive:         "The file is incomplete: copy it again and check it against the .sha256 sidecar.",
}

// ValidateBundle is the engine's bundle check: one streaming pass of
// bundle.ValidateFile, its problems turned into findings. It verifies no
// signature; ValidateBundleWithKeys does.
func ValidateBundle(ctx context.Context, path string, checkReferrers bool, progress func(float64)) (any, bool, []finding.Finding, error) {
	return validateBundle(ctx, path, checkReferrers, progress, nil)
}

// ValidateBundleWithKeys is the bundle check with the operator's public
// keys ([bundle] verify_keys): the bundle's signature must verify with one
// of them, and every cosign image signature in the bundle is checked
// against them too (bundle validate --verify-key --check-signatures).
// Without keys it is ValidateBundle. The engine uses it with the
// configuration's keys.
func ValidateBundleWithKeys(keys []string) BundleValidator {
	if len(keys) == 0 {
		return ValidateBundle
	}
	return func(ctx context.Context, path string, checkReferrers bool, progress func(float64)) (any, bool, []finding.Finding, error) {
		v, err := signing.LoadVerifier(keys...)
		if err != nil {
			return nil, false, nil, fmt.Errorf("[bundle] verify_keys: %w", err)
		}
		return validateBundle(ctx, path, checkReferrers, progress, v)
	}
}

func validateBundle(ctx context.Context, path string, checkReferrers bool, progress func(float64), v *signing.Verifier) (any, bool, []finding.Finding, error) {
	opts := []bundle.Opt{bundle.WithCheckReferrers(checkReferrers), bundle.WithEvents(func(e bundle.Event) {
		if progress != nil && e.TotalBytes > 0 {
			progress(float64(e.BytesRead) / float64(e.TotalBytes))
		}
	})}
	checkImages := v != nil
	rep, err := signing.ValidateFile(ctx, path, v, checkImages, opts...)
	if err != nil && checkImages && rep.Manifest() != nil {
		return &rep, false, nil, err
	}
	var findings []finding.Finding
	for _, p := range rep.Errors {
		f := finding.Finding{Severity: finding.SeverityError, Code: p.Code, Summary: p.String(), Remedy: remedies[p.Code]}
		if f.Remedy == "" {
			f.Remedy = p.Code.Remedy()
		}
		if f.Remedy == "" {
			f.Remedy = "Re-export the bundle and validate again before it crosses the gap."
		}
		if p.Expected != "" || p.Actual != "" {
			f.Evidence = fmt.Sprintf("expected %s, actual %s", p.Expected, p.Actual)
		}
		findings = append(findings, f)
	}
	// Images signed by another key, or not at all, are worth a look but
	// not a failure: someone else often signs them.
	for _, img := range rep.ImageSignatures {
		if img.Status != bundle.ImageSigUnknownKey && img.Status != bundle.ImageSigUnsigned {
			continue
		}
		name := img.Reference
		if name == "" {
			name = img.Subject
		}
		findings = append(findings, finding.Finding{Severity: finding.SeverityWarn, Code: img.Code, Summary: name + ": " + img.Message,
			Remedy: img.Code.Remedy(), Evidence: img.Subject})
	}
	return &rep, rep.OK, findings, err
}

// signatureNote says, after a bundle check's summary, what was found about
// signatures: the bundle's own, and the images' when they were checked.
func signatureNote(report any) string {
	rep, ok := report.(*bundle.Report)
	if !ok || rep == nil {
		return ""
	}
	var note string
	switch s := rep.Signature; s.Status {
	case bundle.SignatureVerified:
		note = " Signed by key " + s.KeyFingerprint + ", verified."
	case bundle.SignatureSigned:
		note = " Signed, not verified: set [bundle] verify_keys to verify it."
	case bundle.SignatureFailed:
		note = fmt.Sprintf(" Signature: %s.", s.Code)
	case bundle.SignatureUnsigned:
		note = " Unsigned."
	}
	if len(rep.ImageSignatures) > 0 {
		n := map[bundle.ImageSigStatus]int{}
		for _, img := range rep.ImageSignatures {
			n[img.Status]++
		}
		var parts []string
		for _, st := range []bundle.ImageSigStatus{bundle.ImageSigValid, bundle.ImageSigInvalid, bundle.ImageSigUnknownKey, bundle.ImageSigUnsigned} {
			if n[st] > 0 {
				parts = append(parts, fmt.Sprintf("%d %s", n[st], st))
			}
		}
		note += " Image signatures: " + strings.Join(parts, ", ") + "."
	}
	return note
}
