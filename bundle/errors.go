package bundle

import (
	"errors"

	"github.com/refdoctor/refdoctor/finding"
)

// Sentinel errors. An error return from this package means the input could
// not be read as a bundle at all (CLI exit 2); a bundle that was read but
// is wrong is described by a Report's problems instead (exit 1).
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
)

// Problem is one thing wrong with a bundle. Expected and Actual hold the
// two sides of a comparison (digests, sizes, counts) as text so that the
// JSON stays one flat shape for every code.
type Problem struct {
	Code     finding.Code `json:"code"`
	Path     string       `json:"path"`
	Expected string       `json:"expected"`
	Actual   string       `json:"actual"`
	Message  string       `json:"message"`
}

func (p Problem) String() string {
	s := string(p.Code)
	if p.Path != "" {
		s += " " + p.Path
	}
	if p.Message != "" {
		s += ": " + p.Message
	}
	return s
}
