package bundle

import (
	"errors"
	"fmt"

	"github.com/refdoctor/refdoctor/finding"
)

// Sentinel errors. ErrNotBundle, ErrUnsupportedVersion,
// ErrMalformedManifest and ErrNoManifest mean the input could not be read
// as a bundle at all (CLI exit 2); ErrDamaged means the bundle was read
// and is damaged or hostile (exit 1), as do a Report's problems; any
// other error is the tool failing to read (exit 3).
var (
	// ErrNotBundle: the input is not a gzip or zstd compressed tar, or it is
	// a tar that holds no bundle at all (no manifest.yaml, oci-layout or
	// index.json), or its manifest.yaml has a kind other than MirrorBundle.
	ErrNotBundle = errors.New("not a refdoctor mirror bundle")
	// ErrUnsupportedVersion: manifest.yaml declares a schemaVersion this
	// build does not know; an older refdoctor must not guess at a newer
	// format.
	ErrUnsupportedVersion = errors.New("unsupported bundle format version")
	// ErrMalformedManifest: manifest.yaml is not valid YAML, has unknown
	// fields, or breaks the format's syntax rules.
	ErrMalformedManifest = errors.New("malformed bundle manifest")
	// ErrManifestTooLarge: manifest.yaml is bigger than the read limit.
	// It also matches ErrMalformedManifest.
	ErrManifestTooLarge = errors.New("bundle manifest too large")
	// ErrNoManifest: Inspect found no manifest.yaml.
	ErrNoManifest = errors.New("bundle has no manifest.yaml")
	// ErrDamaged: reading stopped on a damaged or hostile archive
	// (truncation, a corrupt stream, a decompression bomb, a limit) before
	// what was asked for was read. Like a failed validation, it is about
	// the bundle (CLI exit 1), not the tool.
	ErrDamaged = errors.New("the archive is damaged or hostile")
)

// Problem is one thing wrong with a bundle. Expected and Actual hold the
// two sides of a comparison (digests, sizes, counts) as text so that the
// JSON stays one flat shape for every code.
//
// One Problem stands for one cause: when the same cause recurs (the same
// code, path and message, say a blob holding 100,000 invalid digests),
// Count says how often and More names the first few other values or
// paths; past MaxProblemsPerCode distinct problems of a code, the rest are
// counted on one problem of that code. Text taken from the archive is
// clipped, so that a report stays small whatever the bundle holds.
type Problem struct {
	Code     finding.Code `json:"code"`
	Path     string       `json:"path"`
	Expected string       `json:"expected"`
	Actual   string       `json:"actual"`
	Message  string       `json:"message"`
	Count    int          `json:"count"`
	More     []string     `json:"more,omitempty"`
}

func (p Problem) String() string {
	s := string(p.Code)
	if p.Path != "" {
		s += " " + p.Path
	}
	if p.Message != "" {
		s += ": " + p.Message
	}
	if p.Count > 1 {
		s += fmt.Sprintf(" (%d times)", p.Count)
	}
	return s
}
