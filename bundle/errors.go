package bundle

import "errors"

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

// Code names one kind of problem a validation found. Codes are part of the
// JSON contract of bundle validate: scripts match on them, so they never change
// meaning.
type Code string

// Problem codes. Every one of them is a finding about the bundle (exit 1);
// the few conditions that make the input unreadable as a bundle are also
// returned as errors (exit 2), see Validate.
const (
	// Content does not match the listing.
	CodeReferrerChecksumMismatch Code = "ReferrerChecksumMismatch"
	CodeFileChecksumMismatch     Code = "FileChecksumMismatch"
	CodeSizeMismatch             Code = "SizeMismatch"
	CodeMissingFile              Code = "MissingFile"
	CodeUnlistedFile             Code = "UnlistedFile"
	CodeMissingBlob              Code = "MissingBlob"

	// Referrer bookkeeping.
	CodeReferrerCountMismatch    Code = "ReferrerCountMismatch"
	CodeSubjectMismatch          Code = "SubjectMismatch"
	CodeReferrerNameMismatch     Code = "ReferrerNameMismatch"
	CodeReferrerMetadataMismatch Code = "ReferrerMetadataMismatch"
	CodeMalformedReferrer        Code = "MalformedReferrer"

	// Manifest and layout.
	CodeMissingManifest    Code = "MissingManifest"
	CodeMalformedManifest  Code = "MalformedManifest"
	CodeUnsupportedVersion Code = "UnsupportedVersion"
	CodeMalformedLayout    Code = "MalformedLayout"
	CodeIndexMismatch      Code = "IndexMismatch"
	CodeNotABundle         Code = "NotABundle"

	// Hostile or damaged archives.
	CodeUnsafePath        Code = "UnsafePath"
	CodeLinkMember        Code = "LinkMember"
	CodeDeviceMember      Code = "DeviceMember"
	CodeUnsupportedMember Code = "UnsupportedMember"
	CodeDuplicateMember   Code = "DuplicateMember"
	CodeMemberTooLarge    Code = "MemberTooLarge"
	CodeDecompressionBomb Code = "DecompressionBomb"
	CodeTruncatedArchive  Code = "TruncatedArchive"
	CodeCorruptArchive    Code = "CorruptArchive"
	CodeTrailingData      Code = "TrailingData"
)

// Problem is one thing wrong with a bundle. Expected and Actual hold the
// two sides of a comparison (digests, sizes, counts) as text so that the
// JSON stays one flat shape for every code.
type Problem struct {
	Code     Code   `json:"code"`
	Path     string `json:"path"`
	Expected string `json:"expected"`
	Actual   string `json:"actual"`
	Message  string `json:"message"`
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
