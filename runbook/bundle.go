package runbook

import (
	"context"
	"fmt"

	"github.com/refdoctor/refdoctor/bundle"
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
// bundle.ValidateFile, its problems turned into findings.
func ValidateBundle(ctx context.Context, path string, checkReferrers bool, progress func(float64)) (any, bool, []finding.Finding, error) {
	rep, err := bundle.ValidateFile(ctx, path, bundle.WithCheckReferrers(checkReferrers), bundle.WithEvents(func(e bundle.Event) {
		if progress != nil && e.TotalBytes > 0 {
			progress(float64(e.BytesRead) / float64(e.TotalBytes))
		}
	}))
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
	return &rep, rep.OK, findings, err
}
