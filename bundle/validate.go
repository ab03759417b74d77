package bundle

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/refdoctor/refdoctor/finding"
)

// Default bounds for Validate.
const (
	// DefaultMaxMemberSize bounds one member. Layers beyond 8 GiB exist
	// but are rare enough that an operator can raise the bound knowingly.
	DefaultMaxMemberSize int64 = 8 << 30
	// DefaultExpansionRatio and DefaultExpansionFloor bound expansion
	// while manifest.yaml has not been read: bundles hold
	// already-compressed layers and expand barely at all, while gzip of
	// zeros expands about 1000:1 and zstd far more.
	DefaultExpansionRatio int64 = 200
	DefaultExpansionFloor int64 = 256 << 20
	// Tar spends at most a header block and a padding block per member,
	// plus PAX or GNU long-name records; memberOverhead is generous.
	memberOverhead = 3 << 10
	// listedSlack (plus a sixteenth of the listed total) is how far past
	// the listed sizes decompression may go before it counts as a bomb:
	// room for directory entries, record padding and a small unlisted
	// member to be reported as UnlistedFile.
	listedSlack = 16 << 20
	// progressStep is how often, in decompressed bytes, a progress event
	// is sent.
	progressStep = 8 << 20
)

// EventKind names a validation event.
type EventKind string

// Events, in the order they come.
const (
	EventStarted  EventKind = "started"
	EventMember   EventKind = "member"
	EventProgress EventKind = "progress"
	EventProblem  EventKind = "problem"
	EventFinished EventKind = "finished"
)

// Event reports progress. BytesRead counts compressed bytes consumed from
// the input, so against TotalBytes (when known) it drives a progress bar;
// BytesChecked counts member bytes hashed.
type Event struct {
	Kind         EventKind `json:"kind"`
	Path         string    `json:"path,omitempty"`
	BytesRead    int64     `json:"bytes_read"`
	TotalBytes   int64     `json:"total_bytes,omitempty"`
	BytesChecked int64     `json:"bytes_checked"`
	Problem      *Problem  `json:"problem,omitempty"`
	Report       *Report   `json:"report,omitempty"`
}

// Report is the outcome of Validate; its JSON is the contract of
// `refdoctor bundle validate -o json`: scripts read these field names.
type Report struct {
	OK               bool      `json:"ok"`
	FilesChecked     int       `json:"files_checked"`
	BytesChecked     int64     `json:"bytes_checked"`
	ReferrersChecked int       `json:"referrers_checked"`
	Errors           []Problem `json:"errors"`

	FormatVersion  int         `json:"format_version,omitempty"`
	Compression    Compression `json:"compression,omitempty"`
	CheckReferrers bool        `json:"check_referrers"`
	// Complete is false when reading stopped early (bomb, truncation,
	// oversized member): members after that point were not checked.
	Complete bool `json:"complete"`
	// ManifestFirst tells whether manifest.yaml was the first member, as
	// refdoctor writes it; Inspect is slow on bundles where it is not.
	ManifestFirst bool           `json:"manifest_first"`
	Subjects      []SubjectCheck `json:"subjects"`
	ArchiveBytes  int64          `json:"archive_bytes"`
	DurationMS    int64          `json:"duration_ms"`
}

// SubjectCheck is one subject's referrers: how many manifest.yaml declares
// and how many were found present and intact.
type SubjectCheck struct {
	Subject   string `json:"subject"`
	Discovery string `json:"discovery"`
	Expected  int    `json:"expected"`
	Found     int    `json:"found"`
}

// Opt configures Validate and ValidateFile.
type Opt func(*options)

// ValidateOpt is the option type of Validate.
type ValidateOpt = Opt

type options struct {
	checkReferrers bool
	events         func(Event)
	totalBytes     int64
	maxMember      int64
	maxArchive     int64
	manifestLimit  int64
	ratio, floor   int64
	documents      func(path string, data []byte)
}

// WithCheckReferrers also parses every referrer manifest: its subject must
// be its folder's subject, the blobs it references must be present, and
// its media type and artifact type must be the ones manifest.yaml lists.
func WithCheckReferrers(b bool) Opt { return func(o *options) { o.checkReferrers = b } }

// WithEvents receives progress events on the validating goroutine; fn
// must not block for long.
func WithEvents(fn func(Event)) Opt { return func(o *options) { o.events = fn } }

// WithDocuments passes each OCI manifest or index the validator reads
// (index.json and the manifests among the blobs, at most 4 MiB each) to
// fn, so that a caller learns the bundle's manifests in the same pass.
// data is fn's to keep. Whether the document's checksum matched its
// listing is in the report, not known to fn.
func WithDocuments(fn func(path string, data []byte)) Opt {
	return func(o *options) { o.documents = fn }
}

// WithTotalBytes gives the compressed size of the input, for progress.
// ValidateFile sets it from the file.
func WithTotalBytes(n int64) Opt { return func(o *options) { o.totalBytes = n } }

// WithMaxMemberSize bounds each member (DefaultMaxMemberSize otherwise).
func WithMaxMemberSize(n int64) Opt { return func(o *options) { o.maxMember = n } }

// WithMaxArchiveSize stops reading, as a decompression bomb, once the
// decompressed stream passes n bytes; 0 means no fixed bound (the listed
// sizes and the expansion ratio still bound it).
func WithMaxArchiveSize(n int64) Opt { return func(o *options) { o.maxArchive = n } }

// WithExpansionLimit sets the bomb bound that applies until manifest.yaml
// has been read (after that, the listed sizes bound the stream): more than
// floor decompressed bytes at more than ratio:1 is a bomb. The defaults
// are DefaultExpansionRatio and DefaultExpansionFloor; ratio 0 turns the
// check off, for bundles repacked with manifest.yaml late and huge runs of
// zeros early.
func WithExpansionLimit(ratio, floor int64) Opt {
	return func(o *options) { o.ratio, o.floor = ratio, floor }
}

// WithManifestLimit bounds manifest.yaml (DefaultManifestLimit otherwise).
func WithManifestLimit(n int64) Opt { return func(o *options) { o.manifestLimit = n } }

// ValidateFile validates the bundle at path; see Validate.
func ValidateFile(ctx context.Context, path string, opts ...Opt) (Report, error) {
	f, err := os.Open(path)
	if err != nil {
		return emptyReport(), fmt.Errorf("open bundle: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return emptyReport(), fmt.Errorf("open bundle: %w", err)
	}
	if !fi.Mode().IsRegular() && fi.Mode()&os.ModeNamedPipe == 0 {
		return emptyReport(), fmt.Errorf("open bundle %s: %w: not a regular file", path, ErrNotBundle)
	}
	if fi.Mode().IsRegular() {
		opts = append([]Opt{WithTotalBytes(fi.Size())}, opts...)
	}
	return Validate(ctx, f, opts...)
}

// Validate reads a bundle once, as a stream, and checks it whole: every
// member listed in manifest.yaml, every listed member present, every size
// and sha256 equal, referrer counts and names consistent, every blob a
// manifest, index or referrer in the bundle references present, and the
// archive free of unsafe paths, links, devices, duplicates, oversized
// members and decompression bombs. With WithCheckReferrers it also parses
// each referrer manifest. Every problem is reported, not only the first.
//
// Memory stays constant whatever the bundle's size: member data is hashed
// as it streams through (decompression on one goroutine, hashing on
// another), and only manifest.yaml, index.json and referrer and manifest
// JSON of at most 4 MiB are ever held; nothing is written anywhere.
// manifest.yaml is usually the first member, but may come anywhere: the
// per-member results (path, size, sha256) are kept and reconciled at the
// end.
//
// Outcome, as the CLI maps it to exit codes:
//   - Report.OK and a nil error: the bundle is whole (exit 0).
//   - !Report.OK and a nil error: the bundle was read but is wrong:
//     tampered, damaged or hostile (exit 1). Truncation, a corrupt stream,
//     a decompression bomb, an oversized member or an oversized
//     manifest.yaml stop reading early; the report then has Complete
//     false and says where it stopped. Unsafe paths, links, devices and
//     duplicates are reported and skipped, and reading goes on.
//   - A non-nil error (exit 2): the input is not a bundle at all or
//     cannot be read: not gzip or zstd (ErrNotBundle), a tar with no
//     bundle members or a manifest of another kind (ErrNotBundle), a
//     newer format (ErrUnsupportedVersion), a failing reader, a canceled
//     ctx. The report returned alongside still holds what was learned,
//     with a NotABundle or UnsupportedVersion problem where that applies.
func Validate(ctx context.Context, r io.Reader, opts ...Opt) (Report, error) {
	o := options{maxMember: DefaultMaxMemberSize, manifestLimit: DefaultManifestLimit,
		ratio: DefaultExpansionRatio, floor: DefaultExpansionFloor}
	for _, opt := range opts {
		opt(&o)
	}
	if o.maxMember <= 0 {
		o.maxMember = DefaultMaxMemberSize
	}
	if o.manifestLimit <= 0 {
		o.manifestLimit = DefaultManifestLimit
	}
	v := &validator{
		ctx:     ctx,
		o:       o,
		start:   time.Now(),
		members: make(map[string][]*memberResult),
		docs:    make(map[string]*referrerDoc),
		rep:     emptyReport(),
	}
	v.rep.CheckReferrers = o.checkReferrers
	err := v.run(r)
	v.rep.OK = err == nil && v.rep.Complete && len(v.rep.Errors) == 0
	v.rep.ArchiveBytes = v.src.n.Load()
	v.rep.DurationMS = time.Since(v.start).Milliseconds()
	rep := v.rep
	v.emit(Event{Kind: EventFinished, Report: &rep})
	return v.rep, err
}

func emptyReport() Report {
	return Report{Errors: []Problem{}, Subjects: []SubjectCheck{}}
}

// memberResult is what the stream pass keeps of one regular member: small,
// so that a bundle of any size can be reconciled at the end.
type memberResult struct {
	path    string
	size    int64
	sum     string
	hashed  bool // data read to the end and hashed
	checked bool // compared with the listing
	bad     bool // unlisted or not equal to its listing
}

type listing struct {
	size     int64
	sha256   string
	artifact *Artifact
	subject  string
}

// blobRef is a blob some document in the bundle needs.
type blobRef struct {
	from   string
	digest string
	size   int64
}

// derived is a problem found by reading a member's content; it only
// stands if that content is the bundle's (see trusted).
type derived struct {
	from string
	p    Problem
}

type referrerDoc struct {
	doc OCIDocument
}

type validator struct {
	ctx   context.Context
	o     options
	start time.Time
	rep   Report
	src   *countingReader
	meter *meter

	manifest      *Manifest
	manifestSeen  bool
	manifestSize  int64
	listed        map[string]listing
	budget        int64 // decompressed bytes allowed once the listing is known
	members       map[string][]*memberResult
	results       []*memberResult
	layoutMembers int // members that look like a bundle or OCI layout
	entries       int // tar entries of any type

	refs     []blobRef
	derived  []derived
	docs     map[string]*referrerDoc
	index    *OCIDocument
	indexSrc string

	stopped      bool
	lastProgress int64
	hashBuf      []byte
	hasher       hash.Hash
}

func (v *validator) emit(e Event) {
	if v.o.events == nil {
		return
	}
	if v.src != nil {
		e.BytesRead = v.src.n.Load()
	}
	e.TotalBytes = v.o.totalBytes
	e.BytesChecked = v.rep.BytesChecked
	v.o.events(e)
}

func (v *validator) problem(p Problem) {
	v.rep.Errors = append(v.rep.Errors, p)
	v.emit(Event{Kind: EventProblem, Path: p.Path, Problem: &p})
}

// stop records the problem that ended reading early.
func (v *validator) stop(p Problem) {
	v.stopped = true
	if v.manifest != nil {
		unreached := 0
		for path := range v.listed {
			if _, ok := v.members[path]; !ok {
				unreached++
			}
		}
		if unreached > 0 {
			p.Message += fmt.Sprintf("; reading stopped here, %d listed members were not reached", unreached)
		}
	} else {
		p.Message += "; reading stopped here"
	}
	v.problem(p)
}

func (v *validator) run(r io.Reader) (err error) {
	v.src = &countingReader{r: r}
	br := bufio.NewReaderSize(v.src, inputBuffer)
	comp, err := detectCompression(br)
	if err != nil {
		if errors.Is(err, ErrNotBundle) {
			v.problem(Problem{Code: finding.NotABundle, Message: err.Error()})
		}
		return err
	}
	v.rep.Compression = comp
	v.emit(Event{Kind: EventStarted})
	dec, release, err := openDecompressor(br, comp)
	if err != nil {
		if fatal := v.readFailure(err, ""); fatal != nil {
			return fatal
		}
		return nil
	}
	p := startPump(v.ctx, dec, release)
	defer p.stop()
	v.meter = &meter{r: p, check: v.checkBudget}
	tr := tar.NewReader(v.meter)
	v.hashBuf = make([]byte, copyBuffer)
	v.hasher = sha256.New()
	if err := v.scan(tr); err != nil {
		return err
	}
	p.stop()
	return v.finish()
}

// checkBudget is the bomb detector, called with the running count of
// decompressed bytes.
func (v *validator) checkBudget(n int64) error {
	if v.o.maxArchive > 0 && n > v.o.maxArchive {
		return budgetBomb(v.o.maxArchive, "past the configured maximum archive size")
	}
	if v.budget > 0 && n > v.budget {
		return budgetBomb(v.budget, "far beyond the sizes manifest.yaml lists")
	}
	// A listing, once known, is the better bound: a bundle may hold a
	// layer of zeros, listed and legitimate, that expands 1000:1.
	if c := v.src.n.Load(); v.manifest == nil && v.o.ratio > 0 && n > v.o.floor && n/v.o.ratio > c {
		return ratioBomb(v.o.ratio, n, c, "expanding beyond the ratio allowed before manifest.yaml was read")
	}
	return nil
}

func (v *validator) scan(tr *tar.Reader) error {
	lastPath := ""
	for {
		if err := v.ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			return v.drain(lastPath)
		}
		if err != nil && !(errors.Is(err, tar.ErrInsecurePath) && hdr != nil) {
			return v.readFailure(err, lastPath)
		}
		v.entries++
		lastPath = hdr.Name
		if done, err := v.member(tr, hdr); err != nil || done {
			return err
		}
	}
}

// member handles one tar entry; done ends the scan.
func (v *validator) member(tr *tar.Reader, hdr *tar.Header) (done bool, err error) {
	raw := hdr.Name
	name := strings.TrimPrefix(raw, "./")
	if hdr.Typeflag == tar.TypeDir {
		name = strings.TrimSuffix(name, "/")
		if name == "" || name == "." {
			return false, nil
		}
	}
	v.emit(Event{Kind: EventMember, Path: name})
	if reason := unsafePathReason(name); reason != "" {
		v.problem(Problem{Code: finding.UnsafePath, Path: raw, Message: reason + "; the member was not read"})
		return false, nil
	}
	if isLayoutName(name) {
		v.layoutMembers++
	}
	switch hdr.Typeflag {
	case tar.TypeDir:
		return false, nil
	case tar.TypeReg:
		if isSparse(hdr) {
			v.problem(Problem{Code: finding.UnsupportedMember, Path: name, Actual: "sparse file",
				Message: "sparse members expand inside the tar reader, out of reach of the bomb check; bundles never hold them"})
			return false, nil
		}
	case tar.TypeSymlink, tar.TypeLink:
		kind := "symbolic"
		if hdr.Typeflag == tar.TypeLink {
			kind = "hard"
		}
		v.problem(Problem{Code: finding.LinkMember, Path: name, Actual: hdr.Linkname,
			Message: fmt.Sprintf("%s link to %q; bundles hold regular files only", kind, hdr.Linkname)})
		return false, nil
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		kind := map[byte]string{tar.TypeChar: "character device", tar.TypeBlock: "block device", tar.TypeFifo: "FIFO"}[hdr.Typeflag]
		v.problem(Problem{Code: finding.DeviceMember, Path: name, Actual: kind,
			Message: kind + "; bundles hold regular files only"})
		return false, nil
	case tar.TypeXGlobalHeader:
		// git archive and some tar tools write one; it carries no file.
		return false, nil
	default:
		v.problem(Problem{Code: finding.UnsupportedMember, Path: name, Actual: fmt.Sprintf("type %q", hdr.Typeflag),
			Message: "tar entry type not allowed in a bundle (regular files only)"})
		return false, nil
	}

	if name == ManifestPath {
		if v.manifestSeen {
			v.problem(Problem{Code: finding.DuplicateMember, Path: name, Message: "manifest.yaml appears more than once; the first one is used"})
			return false, nil
		}
		v.manifestSeen = true
		v.rep.ManifestFirst = v.entries == 1 || v.onlyDirsBefore()
		return v.readManifest(tr, hdr)
	}

	if prev := v.members[name]; len(prev) > 0 {
		v.problem(Problem{Code: finding.DuplicateMember, Path: name, Actual: fmt.Sprint(len(prev) + 1),
			Message: "the same name appears more than once; extraction would silently keep only one"})
	}
	if hdr.Size > v.o.maxMember {
		v.stop(Problem{Code: finding.MemberTooLarge, Path: name,
			Expected: fmt.Sprintf("at most %d", v.o.maxMember), Actual: fmt.Sprint(hdr.Size),
			Message: fmt.Sprintf("member is %d bytes, over the %d-byte bound", hdr.Size, v.o.maxMember)})
		return true, nil
	}

	holdLimit, holdMode := v.holdFor(name)
	if _, _, ok := SplitReferrerPath(name); ok && holdMode == holdNone && hdr.Size > MaxReferrerSize {
		v.problem(Problem{Code: finding.MemberTooLarge, Path: name,
			Expected: fmt.Sprintf("at most %d", MaxReferrerSize), Actual: fmt.Sprint(hdr.Size),
			Message: "too large to be a genuine " + describeHeld(name)})
	}
	if holdMode == holdAlways && hdr.Size > holdLimit {
		v.problem(Problem{Code: finding.MemberTooLarge, Path: name,
			Expected: fmt.Sprintf("at most %d", holdLimit), Actual: fmt.Sprint(hdr.Size),
			Message: fmt.Sprintf("too large to be a genuine %s; checksummed but not parsed", describeHeld(name))})
		holdMode = holdNone
	}
	if holdMode == holdSniff && hdr.Size > holdLimit {
		holdMode = holdNone
	}
	res := &memberResult{path: name, size: hdr.Size}
	held, err := v.hashMember(tr, res, holdMode)
	v.members[name] = append(v.members[name], res)
	v.results = append(v.results, res)
	if err != nil {
		return true, v.readFailure(err, name)
	}
	v.rep.FilesChecked++
	if held != nil {
		v.parseHeld(name, held)
	}
	if v.manifest != nil {
		v.checkMember(res)
	}
	return false, nil
}

func (v *validator) onlyDirsBefore() bool {
	return len(v.results) == 0 && v.rep.FilesChecked == 0 && !slices.ContainsFunc(v.rep.Errors, func(p Problem) bool {
		return p.Code == finding.LinkMember || p.Code == finding.DeviceMember || p.Code == finding.UnsupportedMember || p.Code == finding.UnsafePath
	})
}

func isSparse(hdr *tar.Header) bool {
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return true
		}
	}
	return false
}

func isLayoutName(name string) bool {
	return name == ManifestPath || name == LayoutPath || name == IndexPath ||
		strings.HasPrefix(name, BlobsDir) || strings.HasPrefix(name, ReferrersDir)
}

type holdMode int

const (
	holdNone holdMode = iota
	holdAlways
	holdSniff // hold only if the first bytes look like a JSON object
)

func (v *validator) holdFor(name string) (int64, holdMode) {
	switch {
	case name == IndexPath || name == LayoutPath:
		return MaxIndexSize, holdAlways
	case strings.HasPrefix(name, ReferrersDir):
		if _, _, ok := SplitReferrerPath(name); ok && v.o.checkReferrers {
			return MaxReferrerSize, holdAlways
		}
	case strings.HasPrefix(name, BlobsDir):
		return MaxIndexSize, holdSniff
	}
	return 0, holdNone
}

func describeHeld(name string) string {
	switch {
	case name == IndexPath:
		return "OCI index"
	case name == LayoutPath:
		return "oci-layout file"
	case strings.HasPrefix(name, ReferrersDir):
		return "referrer manifest (registries refuse manifests over 4 MiB)"
	}
	return "manifest"
}

// hashMember streams one member's data through sha256, holding a copy
// only when mode asks and the member is small. Sniffing decides on the
// first non-blank byte, wherever the chunk boundaries fall, and allocates
// nothing for the (common) blob that is not JSON.
func (v *validator) hashMember(tr *tar.Reader, res *memberResult, mode holdMode) ([]byte, error) {
	h := v.hasher
	h.Reset()
	var held []byte
	holding, sniffing := mode == holdAlways, mode == holdSniff
	if holding {
		held = make([]byte, 0, res.size)
	}
	for {
		if err := v.ctx.Err(); err != nil {
			return nil, err
		}
		n, err := tr.Read(v.hashBuf)
		if n > 0 {
			chunk := v.hashBuf[:n]
			h.Write(chunk)
			v.rep.BytesChecked += int64(n)
			if sniffing {
				switch c, ok := firstNonBlank(chunk); {
				case !ok: // all blank so far: undecided, keep it
					held = append(held, chunk...)
				case c == '{':
					sniffing, holding = false, true
					held = append(append(make([]byte, 0, res.size), held...), chunk...)
				default:
					sniffing, held = false, nil
				}
			} else if holding {
				held = append(held, chunk...)
			}
			if v.meter.n-v.lastProgress >= progressStep {
				v.lastProgress = v.meter.n
				v.emit(Event{Kind: EventProgress, Path: res.path})
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	res.sum = hex.EncodeToString(h.Sum(nil))
	res.hashed = true
	if !holding {
		return nil, nil
	}
	if held == nil {
		held = []byte{}
	}
	return held, nil
}

func (v *validator) readManifest(tr *tar.Reader, hdr *tar.Header) (bool, error) {
	if hdr.Size > v.o.manifestLimit {
		v.stop(Problem{Code: finding.MemberTooLarge, Path: ManifestPath,
			Expected: fmt.Sprintf("at most %d", v.o.manifestLimit), Actual: fmt.Sprint(hdr.Size),
			Message: fmt.Sprintf("manifest.yaml is %d bytes, over the %d-byte limit; it was not read", hdr.Size, v.o.manifestLimit)})
		return true, nil
	}
	v.manifestSize = hdr.Size
	data, err := io.ReadAll(tr)
	if err != nil {
		return true, v.readFailure(err, ManifestPath)
	}
	m, err := parseManifestBytes(data)
	if err != nil {
		switch {
		case errors.Is(err, ErrUnsupportedVersion):
			v.stop(Problem{Code: finding.UnsupportedVersion, Path: ManifestPath,
				Expected: fmt.Sprint(FormatVersion), Message: err.Error()})
			return true, err
		case errors.Is(err, ErrNotBundle):
			v.stop(Problem{Code: finding.NotABundle, Path: ManifestPath, Expected: ManifestKind, Message: err.Error()})
			return true, err
		}
		v.problem(Problem{Code: finding.MalformedManifest, Path: ManifestPath, Message: err.Error() +
			"; members are checked for safety but their checksums cannot be verified"})
		return false, nil
	}
	v.setManifest(m)
	return false, nil
}

func (v *validator) setManifest(m *Manifest) {
	v.manifest = m
	v.rep.FormatVersion = m.SchemaVersion
	v.listed = make(map[string]listing, m.listedCount())
	for _, f := range m.Files {
		v.listed[f.Path] = listing{size: f.Size, sha256: f.SHA256}
	}
	for i := range m.Referrers.Subjects {
		s := &m.Referrers.Subjects[i]
		for j := range s.Artifacts {
			a := &s.Artifacts[j]
			v.listed[a.Path] = listing{size: a.Size, sha256: a.SHA256, artifact: a, subject: s.Subject}
		}
	}
	listed := m.ListedBytes()
	v.budget = listed + v.manifestSize + int64(m.listedCount()+v.entries+16)*memberOverhead +
		max(listedSlack, listed/16)
	if v.budget < 0 { // sizes near MaxInt64 overflowed: no listed bound then
		v.budget = 0
	}
	for _, p := range m.Consistency() {
		v.problem(p)
	}
	// Members that streamed past before the manifest are checked now; a
	// listing that was blown past already is a bomb, and the next read
	// reports it.
	for _, res := range v.results {
		v.checkMember(res)
	}
}

// checkMember compares one member with its listing.
func (v *validator) checkMember(res *memberResult) {
	if res.checked || !res.hashed {
		return
	}
	res.checked = true
	l, ok := v.listed[res.path]
	if !ok {
		res.bad = true
		v.problem(Problem{Code: finding.UnlistedFile, Path: res.path, Actual: fmt.Sprint(res.size),
			Message: "member is not listed in manifest.yaml"})
		return
	}
	if l.artifact != nil {
		v.rep.ReferrersChecked++
	}
	if res.size != l.size {
		res.bad = true
		v.problem(Problem{Code: finding.SizeMismatch, Path: res.path, Expected: fmt.Sprint(l.size), Actual: fmt.Sprint(res.size),
			Message: fmt.Sprintf("member is %d bytes, manifest.yaml lists %d", res.size, l.size)})
		return
	}
	if res.sum != l.sha256 {
		res.bad = true
		code, what := finding.FileChecksumMismatch, "file"
		if l.artifact != nil {
			code, what = finding.ReferrerChecksumMismatch, "referrer"
		}
		v.problem(Problem{Code: code, Path: res.path, Expected: l.sha256, Actual: res.sum,
			Message: what + " content differs from the sha256 manifest.yaml lists; it was modified after export or damaged in transfer"})
		return
	}
	if hexName, ok := strings.CutPrefix(res.path, BlobsDir); ok && hexName != res.sum {
		res.bad = true
		v.problem(Problem{Code: finding.FileChecksumMismatch, Path: res.path, Expected: hexName, Actual: res.sum,
			Message: "blob content does not match the digest in its name"})
	}
}

// parseHeld reads the few members whose content the checks need.
func (v *validator) parseHeld(name string, data []byte) {
	switch {
	case name == LayoutPath:
		var l struct {
			ImageLayoutVersion string `json:"imageLayoutVersion"`
		}
		if err := json.Unmarshal(data, &l); err != nil || l.ImageLayoutVersion == "" {
			v.derive(name, Problem{Code: finding.MalformedLayout, Path: name, Expected: `{"imageLayoutVersion":"1.0.0"}`,
				Message: "oci-layout is not a valid OCI layout file"})
		}
	case name == IndexPath:
		d, ok := ParseOCIDocument(data)
		if !ok || d.Manifests == nil {
			v.derive(name, Problem{Code: finding.MalformedLayout, Path: name, Message: "index.json is not an OCI image index"})
			return
		}
		if v.index == nil {
			v.index, v.indexSrc = &d, name
		}
		v.addRefs(name, d)
		v.document(name, data)
	case strings.HasPrefix(name, ReferrersDir):
		subject, _, _ := SplitReferrerPath(name)
		d, ok := ParseOCIDocument(data)
		if !ok {
			v.derive(name, Problem{Code: finding.MalformedReferrer, Path: name,
				Message: "referrer is not an OCI image manifest or index"})
			return
		}
		v.docs[name] = &referrerDoc{doc: d}
		switch {
		case d.Subject == nil:
			v.derive(name, Problem{Code: finding.SubjectMismatch, Path: name, Expected: subject,
				Message: "referrer manifest has no subject"})
		case d.Subject.Digest != subject:
			v.derive(name, Problem{Code: finding.SubjectMismatch, Path: name, Expected: subject, Actual: d.Subject.Digest,
				Message: "referrer's subject.digest is not the subject it is filed under"})
		default:
			v.refs = append(v.refs, blobRef{from: name, digest: d.Subject.Digest, size: d.Subject.Size})
		}
		v.addRefs(name, d)
	case strings.HasPrefix(name, BlobsDir):
		if d, ok := ParseOCIDocument(data); ok {
			v.addRefs(name, d)
			v.document(name, data)
		}
	}
}

func (v *validator) document(name string, data []byte) {
	if v.o.documents != nil {
		v.o.documents(name, bytes.Clone(data))
	}
}

func (v *validator) addRefs(from string, d OCIDocument) {
	for _, desc := range d.References() {
		if !validDigest(desc.Digest) {
			v.derive(from, Problem{Code: finding.MissingBlob, Path: from, Actual: desc.Digest,
				Message: "references a blob by a digest a v1 bundle cannot hold (sha256 only)"})
			continue
		}
		v.refs = append(v.refs, blobRef{from: from, digest: desc.Digest, size: desc.Size})
	}
}

func (v *validator) derive(from string, p Problem) {
	v.derived = append(v.derived, derived{from: from, p: p})
}

// trusted: problems found inside a member's content only stand when the
// content is the bundle's own. A member already reported as modified or
// unlisted would otherwise bury its one real problem under noise.
func (v *validator) trusted(path string) bool {
	if v.manifest == nil {
		return true
	}
	rs := v.members[path]
	if len(rs) == 0 {
		return path == ManifestPath
	}
	for _, r := range rs {
		if r.bad {
			return false
		}
	}
	return true
}

// drain reads what follows the tar end-of-archive blocks to the end of the
// compressed stream: the gzip and zstd checksums are only verified there,
// and data hidden after the end marker is reported.
func (v *validator) drain(lastPath string) error {
	reported := false
	for {
		n, err := v.meter.Read(v.hashBuf)
		if n > 0 && !reported && slices.ContainsFunc(v.hashBuf[:n], func(b byte) bool { return b != 0 }) {
			reported = true
			v.problem(Problem{Code: finding.TrailingData, Message: "non-zero data after the tar end-of-archive marker; tar tools ignore it"})
		}
		if err == io.EOF {
			v.rep.Complete = true
			return nil
		}
		if errors.Is(err, gzip.ErrHeader) || errors.Is(err, zstd.ErrMagicMismatch) {
			// The compressed stream ended cleanly and something that is
			// not another stream follows: every member was read.
			v.problem(Problem{Code: finding.TrailingData, Message: "data after the end of the compressed stream; tar tools ignore it"})
			v.rep.Complete = true
			return nil
		}
		if err != nil {
			return v.readFailure(err, lastPath)
		}
	}
}

// readFailure turns a failed read into a report problem (the bundle is
// damaged or hostile) or an error (the tool cannot read, or the input is
// not a bundle at all). A nil return means "stopped, reported".
func (v *validator) readFailure(err error, path string) error {
	var se *sourceError
	switch {
	case v.ctx.Err() != nil:
		return v.ctx.Err()
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	case errors.As(err, &se):
		return se
	}
	if b, ok := isBomb(err); ok {
		v.stop(Problem{Code: finding.DecompressionBomb, Path: path, Expected: b.expected, Actual: b.actual,
			Message: "decompression went " + b.why})
		return nil
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		v.stop(Problem{Code: finding.TruncatedArchive, Path: path,
			Message: "the archive ends early" + describeWhere(path) + ": it was cut short in transfer or while being written"})
		return nil
	}
	if v.entries == 0 && (errors.Is(err, tar.ErrHeader) || errors.Is(err, tar.ErrFieldTooLong)) {
		v.problem(Problem{Code: finding.NotABundle, Message: fmt.Sprintf("the %s stream does not hold a tar archive: %v", v.rep.Compression, err)})
		return fmt.Errorf("%w: the %s stream does not hold a tar archive: %v", ErrNotBundle, v.rep.Compression, err)
	}
	msg := err.Error()
	switch {
	case errors.Is(err, gzip.ErrChecksum), errors.Is(err, zstd.ErrCRCMismatch):
		msg = "the compressed stream's checksum does not match its content: the archive is damaged"
	case errors.Is(err, gzip.ErrHeader), errors.Is(err, zstd.ErrMagicMismatch):
		msg = "the compressed stream is damaged: a stream header is not where one must be"
	case errors.Is(err, zstd.ErrWindowSizeExceeded), errors.Is(err, zstd.ErrDecoderSizeExceeded):
		msg = fmt.Sprintf("zstd frame needs more than %d bytes of window; refused to bound memory", zstdMaxWindow)
	}
	v.stop(Problem{Code: finding.CorruptArchive, Path: path, Message: msg})
	return nil
}

func describeWhere(path string) string {
	if path == "" {
		return ""
	}
	return ", in or just after " + path
}

// finish reconciles the listing with what the stream held.
func (v *validator) finish() error {
	if v.stopped {
		return nil
	}
	if v.manifest == nil {
		if !v.manifestSeen {
			if v.layoutMembers == 0 {
				msg := "the archive holds no manifest.yaml, oci-layout, index.json or blobs"
				if v.entries == 0 {
					msg = "the archive is empty"
				}
				v.problem(Problem{Code: finding.NotABundle, Message: msg})
				return fmt.Errorf("%w: %s", ErrNotBundle, msg)
			}
			v.problem(Problem{Code: finding.MissingManifest, Path: ManifestPath,
				Message: "the bundle has no manifest.yaml, so no checksum can be verified; re-export it"})
		}
		v.finishDerived()
		return nil
	}
	m := v.manifest
	for _, f := range m.Files {
		v.checkPresent(f.Path, f.Size, "")
	}
	for _, s := range m.Referrers.Subjects {
		found := 0
		for _, a := range s.Artifacts {
			if v.checkPresent(a.Path, a.Size, "referrer ") && v.trusted(a.Path) {
				found++
			}
		}
		v.rep.Subjects = append(v.rep.Subjects, SubjectCheck{Subject: s.Subject, Discovery: s.Discovery, Expected: s.Count, Found: found})
	}
	for _, p := range []string{LayoutPath, IndexPath} {
		if _, listed := v.listed[p]; !listed && len(v.members[p]) == 0 {
			v.problem(Problem{Code: finding.MalformedLayout, Path: p, Message: p + " is missing, so the bundle is not an OCI image layout"})
		}
	}
	for _, img := range m.Images {
		v.refs = append(v.refs, blobRef{from: ManifestPath, digest: img.Digest})
		if v.index != nil && v.trusted(v.indexSrc) && !slices.ContainsFunc(v.index.Manifests, func(d OCIDescriptor) bool { return d.Digest == img.Digest }) {
			v.problem(Problem{Code: finding.IndexMismatch, Path: IndexPath, Expected: img.Digest,
				Message: fmt.Sprintf("image %s is in manifest.yaml but not in index.json", img.Reference)})
		}
	}
	if v.o.checkReferrers {
		v.checkReferrerMetadata()
	}
	v.finishDerived()
	return nil
}

// checkPresent reports a listed member absent from the archive.
func (v *validator) checkPresent(path string, size int64, what string) bool {
	if len(v.members[path]) > 0 {
		return true
	}
	v.problem(Problem{Code: finding.MissingFile, Path: path, Expected: fmt.Sprint(size),
		Message: "listed " + what + "member is not in the archive"})
	return false
}

func (v *validator) checkReferrerMetadata() {
	for _, s := range v.manifest.Referrers.Subjects {
		for _, a := range s.Artifacts {
			rd := v.docs[a.Path]
			if rd == nil || !v.trusted(a.Path) {
				continue
			}
			if mt := rd.doc.MediaType; mt != "" && mt != a.MediaType {
				v.problem(Problem{Code: finding.ReferrerMetadataMismatch, Path: a.Path, Expected: a.MediaType, Actual: mt,
					Message: "manifest.yaml lists a different mediaType than the referrer has"})
			}
			if at := rd.doc.effectiveArtifactType(); at != a.ArtifactType {
				v.problem(Problem{Code: finding.ReferrerMetadataMismatch, Path: a.Path, Expected: a.ArtifactType, Actual: at,
					Message: "manifest.yaml lists a different artifactType than the referrer has"})
			}
		}
	}
}

// finishDerived reports content-derived problems and missing blobs, once
// per missing digest.
func (v *validator) finishDerived() {
	for _, d := range v.derived {
		if v.trusted(d.from) {
			v.problem(d.p)
		}
	}
	missing := make(map[string]bool)
	for _, ref := range v.refs {
		if !v.trusted(ref.from) {
			continue
		}
		path := BlobPath(ref.digest)
		rs := v.members[path]
		if len(rs) == 0 {
			if _, listed := v.listed[path]; listed || missing[path] {
				continue // MissingFile already says it
			}
			missing[path] = true
			v.problem(Problem{Code: finding.MissingBlob, Path: path, Expected: ref.digest,
				Message: "blob referenced by " + ref.from + " is not in the bundle"})
			continue
		}
		if ref.size > 0 && rs[0].size != ref.size && !rs[0].bad {
			v.problem(Problem{Code: finding.SizeMismatch, Path: path, Expected: fmt.Sprint(ref.size), Actual: fmt.Sprint(rs[0].size),
				Message: "the descriptor in " + ref.from + " gives this blob a different size"})
		}
	}
}
