package bundle

import (
	"bytes"
	"cmp"
	"errors"
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
// with ErrManifestTooLarge, so a hostile 1 GB manifest costs 16 MiB, not
// 1 GB. Decoding is strict: unknown fields, duplicate keys, a second YAML
// document, a wrong kind or version, and any digest, checksum, path or
// enum value that breaks the format's syntax are errors. Errors wrap
// ErrMalformedManifest, ErrUnsupportedVersion or ErrNotBundle (wrong kind).
//
// ParseManifest checks each field on its own; whether counts, names and
// subjects agree with each other is Consistency's job, so that a validator
// can report each disagreement precisely instead of refusing the file.
func ParseManifest(r io.Reader, limit int64) (*Manifest, error) {
	if limit <= 0 {
		limit = DefaultManifestLimit
	}
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", ManifestPath, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes: %w (%w)", ManifestPath, limit, ErrManifestTooLarge, ErrMalformedManifest)
	}
	return parseManifestBytes(data)
}

func parseManifestBytes(data []byte) (m *Manifest, err error) {
	// The YAML decoder is third-party code fed hostile input; a panic in
	// it must become a malformed manifest, not a crashed validator.
	defer func() {
		if p := recover(); p != nil {
			m, err = nil, fmt.Errorf("%w: YAML decoder failed: %v", ErrMalformedManifest, p)
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var mf Manifest
	if err := dec.Decode(&mf); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w: %s is empty", ErrMalformedManifest, ManifestPath)
		}
		return nil, fmt.Errorf("%w: %v", ErrMalformedManifest, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: %s holds more than one YAML document", ErrMalformedManifest, ManifestPath)
	}
	if err := mf.checkSyntax(); err != nil {
		return nil, err
	}
	return &mf, nil
}

func (m *Manifest) checkSyntax() error {
	switch {
	case m.SchemaVersion == 0:
		return fmt.Errorf("%w: schemaVersion is missing", ErrMalformedManifest)
	case m.SchemaVersion != FormatVersion:
		return fmt.Errorf("%w: schemaVersion %d (this refdoctor reads %d)", ErrUnsupportedVersion, m.SchemaVersion, FormatVersion)
	case m.Kind != ManifestKind:
		return fmt.Errorf("%w: manifest kind %q, want %q", ErrNotBundle, m.Kind, ManifestKind)
	case m.CreatedAt.IsZero():
		return fmt.Errorf("%w: createdAt is missing", ErrMalformedManifest)
	case m.Tool.Name == "":
		return fmt.Errorf("%w: tool.name is missing", ErrMalformedManifest)
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrMalformedManifest, fmt.Sprintf(format, args...))
	}
	for i, img := range m.Images {
		if img.Reference == "" {
			return bad("images[%d].reference is missing", i)
		}
		if !validDigest(img.Digest) {
			return bad("images[%d].digest %q is not a sha256 digest", i, img.Digest)
		}
		if img.MediaType == "" {
			return bad("images[%d].mediaType is missing", i)
		}
	}
	if m.Referrers.Total < 0 {
		return bad("referrers.total is negative")
	}
	paths := make(map[string]bool)
	subjects := make(map[string]bool)
	for i, s := range m.Referrers.Subjects {
		if !validDigest(s.Subject) {
			return bad("referrers.subjects[%d].subject %q is not a sha256 digest", i, s.Subject)
		}
		if subjects[s.Subject] {
			return bad("subject %s is listed twice", s.Subject)
		}
		subjects[s.Subject] = true
		if s.Discovery != DiscoveryAPI && s.Discovery != DiscoveryTags {
			return bad("subject %s: discovery %q is not api or tags", s.Subject, s.Discovery)
		}
		if s.Count < 0 {
			return bad("subject %s: count is negative", s.Subject)
		}
		for j, a := range s.Artifacts {
			where := fmt.Sprintf("referrers.subjects[%d].artifacts[%d]", i, j)
			if !validDigest(a.Digest) {
				return bad("%s.digest %q is not a sha256 digest", where, a.Digest)
			}
			if a.MediaType == "" {
				return bad("%s.mediaType is missing", where)
			}
			if !a.Category.Valid() {
				return bad("%s.category %q is not sbom, signature, attestation, vex or other", where, a.Category)
			}
			if a.Size < 0 {
				return bad("%s.size is negative", where)
			}
			if !validHex(a.SHA256) {
				return bad("%s.sha256 %q is not 64 lowercase hex digits", where, a.SHA256)
			}
			if _, _, ok := SplitReferrerPath(a.Path); !ok {
				return bad("%s.path %q is not referrers/sha256-<subject>/sha256-<digest>.json", where, a.Path)
			}
			if paths[a.Path] {
				return bad("path %s is listed twice", a.Path)
			}
			paths[a.Path] = true
		}
	}
	for i, f := range m.Files {
		if reason := unsafePathReason(f.Path); reason != "" {
			return bad("files[%d].path %q: %s", i, f.Path, reason)
		}
		switch {
		case f.Path == ManifestPath:
			return bad("files lists %s, which cannot hold its own checksum", ManifestPath)
		case strings.HasPrefix(f.Path, ReferrersDir):
			return bad("files[%d].path %q: referrer files are listed under referrers.subjects", i, f.Path)
		case strings.HasPrefix(f.Path, "blobs/") && !validBlobPath(f.Path):
			return bad("files[%d].path %q is not blobs/sha256/<64 hex digits>", i, f.Path)
		}
		if f.Size < 0 {
			return bad("files[%d].size is negative", i)
		}
		if !validHex(f.SHA256) {
			return bad("files[%d].sha256 %q is not 64 lowercase hex digits", i, f.SHA256)
		}
		if paths[f.Path] {
			return bad("path %s is listed twice", f.Path)
		}
		paths[f.Path] = true
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
	for _, el := range strings.Split(p, "/") {
		if el == ".." {
			return "path escapes the bundle with .."
		}
	}
	if path.Clean(p) != p {
		return "path is not in canonical form"
	}
	return ""
}
