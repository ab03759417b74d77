package bundle

import (
	"bytes"
	"cmp"
	"fmt"
	"io"
	"maps"
	"path"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/refdoctor/refdoctor/finding"
)

// FormatVersion is the bundle format this build writes and reads
// (manifest.yaml schemaVersion).
const FormatVersion = 1

// ManifestKind is the only kind a mirror bundle manifest may declare.
const ManifestKind = "MirrorBundle"

// Well-known member names.
const (
	ManifestPath = "manifest.yaml"
	LayoutPath   = "oci-layout"
	IndexPath    = "index.json"
	BlobsDir     = "blobs/sha256/"
	ReferrersDir = "referrers/"
)

// Read limits. They bound memory for the few members that are held whole;
// everything else is hashed as it streams.
const (
	// DefaultManifestLimit bounds manifest.yaml. A bundle of a hundred
	// thousand blobs lists in about 15 MiB.
	DefaultManifestLimit = 16 << 20
	// MaxReferrerSize bounds a referrer manifest: registries refuse
	// manifests over 4 MiB, so a bigger one cannot be genuine.
	MaxReferrerSize = 4 << 20
	// MaxIndexSize bounds index.json and the OCI manifests sniffed among
	// the blobs.
	MaxIndexSize = 4 << 20
)

// Discovery methods recorded per subject.
const (
	DiscoveryAPI  = "api"
	DiscoveryTags = "tags"
)

// Manifest is manifest.yaml: what the bundle holds and the checksum of
// every other member.
type Manifest struct {
	SchemaVersion int         `yaml:"schemaVersion" json:"schema_version"`
	Kind          string      `yaml:"kind" json:"kind"`
	CreatedAt     time.Time   `yaml:"createdAt" json:"created_at"`
	Tool          Tool        `yaml:"tool" json:"tool"`
	Images        []Image     `yaml:"images" json:"images"`
	Referrers     Referrers   `yaml:"referrers" json:"referrers"`
	Files         []FileEntry `yaml:"files" json:"files"`
}

// Tool names the program that wrote the bundle.
type Tool struct {
	Name    string `yaml:"name" json:"name"`
	Version string `yaml:"version" json:"version"`
}

// Image is one exported image, as index.json lists it.
type Image struct {
	Reference string `yaml:"reference" json:"reference"`
	Digest    string `yaml:"digest" json:"digest"`
	MediaType string `yaml:"mediaType" json:"media_type"`
}

// Referrers lists every referrer in the bundle, grouped by subject.
type Referrers struct {
	Total    int            `yaml:"total" json:"total"`
	Subjects []SubjectEntry `yaml:"subjects" json:"subjects"`
}

// SubjectEntry is one subject manifest and the referrers exported for it.
type SubjectEntry struct {
	Subject   string     `yaml:"subject" json:"subject"`
	Discovery string     `yaml:"discovery" json:"discovery"`
	Count     int        `yaml:"count" json:"count"`
	Artifacts []Artifact `yaml:"artifacts" json:"artifacts"`
}

// Artifact is one referrer manifest stored under referrers/.
type Artifact struct {
	Digest       string            `yaml:"digest" json:"digest"`
	ArtifactType string            `yaml:"artifactType" json:"artifact_type"`
	MediaType    string            `yaml:"mediaType" json:"media_type"`
	Category     finding.Category  `yaml:"category" json:"category"`
	Size         int64             `yaml:"size" json:"size"`
	Path         string            `yaml:"path" json:"path"`
	SHA256       string            `yaml:"sha256" json:"sha256"`
	Annotations  map[string]string `yaml:"annotations" json:"annotations"`
}

// FileEntry is one member other than manifest.yaml and the referrer files.
type FileEntry struct {
	Path   string `yaml:"path" json:"path"`
	Size   int64  `yaml:"size" json:"size"`
	SHA256 string `yaml:"sha256" json:"sha256"`
}

// MarshalYAML writes a file entry on one line, as the format documents, so that
// grepping manifest.yaml for a path shows its size and checksum with it.
func (f FileEntry) MarshalYAML() (any, error) {
	type plain FileEntry
	return flowNode(plain(f))
}

// MarshalYAML writes the tool on one line.
func (t Tool) MarshalYAML() (any, error) {
	type plain Tool
	return flowNode(plain(t))
}

func flowNode(v any) (*yaml.Node, error) {
	var n yaml.Node
	if err := n.Encode(v); err != nil {
		return nil, err
	}
	n.Style = yaml.FlowStyle
	return &n, nil
}

// BlobPath is where a blob with the given sha256 digest lives.
func BlobPath(digest string) string {
	return BlobsDir + strings.TrimPrefix(digest, "sha256:")
}

// ReferrerPath is where the referrer manifest with digest referrer, whose
// subject is subject, lives.
func ReferrerPath(subject, referrer string) string {
	return ReferrersDir + "sha256-" + strings.TrimPrefix(subject, "sha256:") +
		"/sha256-" + strings.TrimPrefix(referrer, "sha256:") + ".json"
}

// ParseManifest reads and checks manifest.yaml. It reads at most limit
// bytes (DefaultManifestLimit when limit <= 0) and refuses anything larger
// with ErrManifestTooLarge, so a hostile 1 GB manifest costs nothing. It
// never decodes the document whole: the block structure is read line by
// line and each entry is decoded on its own within MaxManifestEntryBytes
// and MaxManifestEntryNodes, so memory stays proportional to what the
// manifest lists, not to the YAML decoder's tree. Decoding is strict:
// unknown fields, duplicate keys, anchors, aliases and tags, a second YAML
// document, a wrong kind or version, and any digest, checksum, path or
// enum value that breaks the format's syntax are errors. Errors wrap
// ErrMalformedManifest (and ErrManifestTooLarge past a limit),
// ErrUnsupportedVersion or ErrNotBundle (wrong kind).
//
// ParseManifest checks each field on its own; whether counts, names and
// subjects agree with each other is Consistency's job, so that a validator
// can report each disagreement precisely instead of refusing the file.
func ParseManifest(r io.Reader, limit int64) (*Manifest, error) {
	return newManifestParser(r, limit, nil).parse()
}

// parseManifestFiles is ParseManifest for callers that keep a listing of
// their own: each files entry, syntax-checked, goes to onFile instead of
// Manifest.Files (which stays nil), and onFile detects paths listed
// twice.
func parseManifestFiles(r io.Reader, limit int64, onFile func(FileEntry) error) (*Manifest, error) {
	return newManifestParser(r, limit, onFile).parse()
}

// checkHead checks the fields every manifest must have.
func (m *Manifest) checkHead() error {
	switch {
	case m.Kind != ManifestKind:
		return fmt.Errorf("%w: manifest kind %q, want %q", ErrNotBundle, m.Kind, ManifestKind)
	case m.CreatedAt.IsZero():
		return fmt.Errorf("%w: createdAt is missing", ErrMalformedManifest)
	case m.Tool.Name == "":
		return fmt.Errorf("%w: tool.name is missing", ErrMalformedManifest)
	case m.Referrers.Total < 0:
		return fmt.Errorf("%w: referrers.total is negative", ErrMalformedManifest)
	}
	return nil
}

func (img Image) check(i int) error {
	switch {
	case img.Reference == "":
		return malformed("images[%d].reference is missing", i)
	case !validDigest(img.Digest):
		return malformed("images[%d].digest %q is not a sha256 digest", i, clip(img.Digest, 100))
	case img.MediaType == "":
		return malformed("images[%d].mediaType is missing", i)
	}
	return nil
}

func (s SubjectEntry) check() error {
	switch {
	case !validDigest(s.Subject):
		return malformed("subject %q is not a sha256 digest", clip(s.Subject, 100))
	case s.Discovery != DiscoveryAPI && s.Discovery != DiscoveryTags:
		return malformed("subject %s: discovery %q is not api or tags", s.Subject, clip(s.Discovery, 100))
	case s.Count < 0:
		return malformed("subject %s: count is negative", s.Subject)
	}
	return nil
}

func (a Artifact) check(j int) error {
	where := fmt.Sprintf("artifacts[%d]", j)
	switch {
	case !validDigest(a.Digest):
		return malformed("%s.digest %q is not a sha256 digest", where, clip(a.Digest, 100))
	case a.MediaType == "":
		return malformed("%s.mediaType is missing", where)
	case !a.Category.Valid():
		return malformed("%s.category %q is not sbom, signature, attestation, vex or other", where, clip(string(a.Category), 100))
	case a.Size < 0:
		return malformed("%s.size is negative", where)
	case !validHex(a.SHA256):
		return malformed("%s.sha256 %q is not 64 lowercase hex digits", where, clip(a.SHA256, 100))
	}
	if _, _, ok := SplitReferrerPath(a.Path); !ok {
		return malformed("%s.path %q is not referrers/sha256-<subject>/sha256-<digest>.json", where, clip(a.Path, 200))
	}
	return nil
}

func (f FileEntry) check() error {
	if reason := unsafePathReason(f.Path); reason != "" {
		return malformed("files path %q: %s", clip(f.Path, 200), reason)
	}
	switch {
	case f.Path == ManifestPath:
		return malformed("files lists %s, which cannot hold its own checksum", ManifestPath)
	case f.Path == SignatureMember:
		return malformed("files lists %s, the signature of %s, which is made from %s's bytes and so cannot be listed in it", SignatureMember, ManifestPath, ManifestPath)
	case strings.HasPrefix(f.Path, ReferrersDir):
		return malformed("files path %q: referrer files are listed under referrers.subjects", f.Path)
	case strings.HasPrefix(f.Path, "blobs/") && !validBlobPath(f.Path):
		return malformed("files path %q is not blobs/sha256/<64 hex digits>", f.Path)
	case f.Size < 0:
		return malformed("files entry %s: size is negative", f.Path)
	case !validHex(f.SHA256):
		return malformed("files entry %s: sha256 %q is not 64 lowercase hex digits", f.Path, clip(f.SHA256, 100))
	}
	return nil
}

// Consistency reports where the manifest disagrees with itself: a count
// that is not the number of artifacts listed, a total that is not their
// sum, an artifact whose path is not named after its digest or not filed
// under its subject, a digest that is not its sha256. Export calls it
// before writing; Validate reports its problems alongside the content
// checks.
func (m *Manifest) Consistency() []Problem {
	var out []Problem
	sum := 0
	for _, s := range m.Referrers.Subjects {
		folder := ReferrersDir + "sha256-" + strings.TrimPrefix(s.Subject, "sha256:") + "/"
		sum += len(s.Artifacts)
		if s.Count != len(s.Artifacts) {
			out = append(out, Problem{
				Code: finding.ReferrerCountMismatch, Path: folder,
				Expected: fmt.Sprint(s.Count), Actual: fmt.Sprint(len(s.Artifacts)),
				Message: fmt.Sprintf("subject %s declares %d referrers but lists %d", s.Subject, s.Count, len(s.Artifacts)),
			})
		}
		for _, a := range s.Artifacts {
			subj, name, _ := SplitReferrerPath(a.Path)
			if subj != s.Subject {
				out = append(out, Problem{
					Code: finding.SubjectMismatch, Path: a.Path, Expected: s.Subject, Actual: subj,
					Message: "referrer is filed under a different subject than the manifest entry that lists it",
				})
			}
			if name != a.Digest {
				out = append(out, Problem{
					Code: finding.ReferrerNameMismatch, Path: a.Path, Expected: a.Digest, Actual: name,
					Message: "referrer file is not named after the digest the manifest gives it",
				})
			} else if a.Digest != "sha256:"+a.SHA256 {
				out = append(out, Problem{
					Code: finding.ReferrerNameMismatch, Path: a.Path, Expected: a.Digest, Actual: "sha256:" + a.SHA256,
					Message: "manifest gives the referrer a digest that differs from its sha256",
				})
			}
		}
	}
	if m.Referrers.Total != sum {
		out = append(out, Problem{
			Code: finding.ReferrerCountMismatch, Path: ManifestPath,
			Expected: fmt.Sprint(m.Referrers.Total), Actual: fmt.Sprint(sum),
			Message: fmt.Sprintf("referrers.total is %d but %d referrers are listed", m.Referrers.Total, sum),
		})
	}
	return out
}

// Marshal renders the manifest as YAML, deterministically: subjects sorted
// by digest, artifacts by digest, files by path (images keep the order the
// operator asked for them in). The receiver is not modified. The output
// parses back with ParseManifest to an equal manifest.
func (m *Manifest) Marshal() ([]byte, error) {
	c := *m
	c.CreatedAt = m.CreatedAt.UTC()
	c.Images = slices.Clone(m.Images)
	c.Files = slices.Clone(m.Files)
	slices.SortFunc(c.Files, func(a, b FileEntry) int { return cmp.Compare(a.Path, b.Path) })
	c.Referrers.Subjects = make([]SubjectEntry, len(m.Referrers.Subjects))
	for i, s := range m.Referrers.Subjects {
		s.Artifacts = slices.Clone(s.Artifacts)
		for j := range s.Artifacts {
			s.Artifacts[j].Annotations = maps.Clone(s.Artifacts[j].Annotations)
		}
		slices.SortFunc(s.Artifacts, func(a, b Artifact) int {
			return cmp.Or(cmp.Compare(a.Digest, b.Digest), cmp.Compare(a.Path, b.Path))
		})
		c.Referrers.Subjects[i] = s
	}
	slices.SortFunc(c.Referrers.Subjects, func(a, b SubjectEntry) int { return cmp.Compare(a.Subject, b.Subject) })
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&c); err != nil {
		return nil, fmt.Errorf("encode %s: %w", ManifestPath, err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("encode %s: %w", ManifestPath, err)
	}
	return buf.Bytes(), nil
}

// MemberOrder is the order in which refdoctor writes a bundle's members:
// manifest.yaml first (so Inspect can stop after one member), then the
// layout files, blobs, and referrer files, each group sorted.
func (m *Manifest) MemberOrder() []string {
	rank := func(p string) int {
		switch {
		case p == ManifestPath:
			return 0
		case p == LayoutPath:
			return 1
		case p == IndexPath:
			return 2
		case strings.HasPrefix(p, BlobsDir):
			return 3
		case strings.HasPrefix(p, ReferrersDir):
			return 5
		}
		return 4
	}
	out := []string{ManifestPath}
	for _, f := range m.Files {
		out = append(out, f.Path)
	}
	for _, s := range m.Referrers.Subjects {
		for _, a := range s.Artifacts {
			out = append(out, a.Path)
		}
	}
	slices.SortFunc(out, func(a, b string) int { return cmp.Or(cmp.Compare(rank(a), rank(b)), cmp.Compare(a, b)) })
	return slices.Compact(out)
}

// ListedBytes is the sum of the sizes of every listed member.
func (m *Manifest) ListedBytes() int64 {
	var n int64
	for _, f := range m.Files {
		n += f.Size
	}
	for _, s := range m.Referrers.Subjects {
		for _, a := range s.Artifacts {
			n += a.Size
		}
	}
	return n
}

// listedCount is the number of listed members, manifest.yaml excluded.
func (m *Manifest) listedCount() int {
	n := len(m.Files)
	for _, s := range m.Referrers.Subjects {
		n += len(s.Artifacts)
	}
	return n
}

// validHex: exactly 64 lowercase hex digits, the only form sha256sum
// prints and the only form the layout uses in file names.
func validHex(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// validDigest: format v1 stores blobs under blobs/sha256 only, so only
// sha256 digests can be in a bundle.
func validDigest(s string) bool {
	hex, ok := strings.CutPrefix(s, "sha256:")
	return ok && validHex(hex)
}

func validBlobPath(p string) bool {
	hex, ok := strings.CutPrefix(p, BlobsDir)
	return ok && validHex(hex)
}

// SplitReferrerPath takes referrers/sha256-<s>/sha256-<r>.json apart into
// the two digests.
func SplitReferrerPath(p string) (subject, referrer string, ok bool) {
	rest, ok := strings.CutPrefix(p, ReferrersDir+"sha256-")
	if !ok {
		return "", "", false
	}
	s, r, ok := strings.Cut(rest, "/sha256-")
	if !ok {
		return "", "", false
	}
	r, ok = strings.CutSuffix(r, ".json")
	if !ok || !validHex(s) || !validHex(r) {
		return "", "", false
	}
	return "sha256:" + s, "sha256:" + r, true
}

// unsafePathReason says why a member name must not be trusted, or "" when
// it is a canonical relative path. Canonical form matters beyond safety:
// "a//b" and "a/b" would otherwise be two members that extract to one file.
func unsafePathReason(p string) string {
	switch {
	case p == "":
		return "empty path"
	case strings.ContainsRune(p, 0):
		return "path contains a NUL byte"
	case strings.HasPrefix(p, "/"):
		return "absolute path"
	case strings.Contains(p, `\`):
		return "path contains a backslash"
	case len(p) >= 2 && p[1] == ':':
		return "path starts with a drive letter"
	}
	for i := 0; i < len(p); i++ {
		if c := p[i]; c < 0x20 || c >= 0x7f {
			// Readers decode other bytes differently (UTF-8, Latin-1,
			// the locale), and a line break fools tar -t | grep.
			return "path holds a byte that is not printable ASCII"
		}
	}
	for rest := p; rest != ""; {
		el, tail, _ := strings.Cut(rest, "/")
		if el == ".." {
			return "path escapes the bundle with .."
		}
		rest = tail
	}
	if path.Clean(p) != p {
		return "path is not in canonical form"
	}
	return ""
}
