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
	"hash/maphash"
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
	// DefaultExpansionRatio and DefaultExpansionFloor bound expansion:
	// bundles hold already-compressed layers and expand barely at all,
	// while gzip of zeros expands about 1000:1 and zstd far more. The
	// ratio holds for the whole stream, whatever manifest.yaml lists: a
	// listing comes from the same untrusted archive.
	DefaultExpansionRatio int64 = 200
	DefaultExpansionFloor int64 = 256 << 20
	// DefaultMaxMembers bounds the entries of an archive (files,
	// directories, entries of any type): manifest.yaml's 16 MiB hold
	// about a hundred thousand members, and every entry costs the
	// validator a few dozen bytes.
	DefaultMaxMembers = 200_000
	// Tar spends at most a header block and a padding block per member,
	// plus PAX or GNU long-name records; memberOverhead is generous.
	memberOverhead = 3 << 10
	// listedSlack (plus a sixteenth of the listed bytes present) is how
	// far past the listed sizes of the members present decompression may
	// go before it counts as a bomb: room for directory entries, record
	// padding and a small unlisted member to be reported as UnlistedFile.
	listedSlack = 16 << 20
	// progressStep is how often, in decompressed bytes, a progress event
	// is sent.
	progressStep = 8 << 20
	// maxUnresolved bounds the blobs referenced after manifest.yaml that
	// are neither listed nor seen yet; past it, they are reported missing
	// at once.
	maxUnresolved = 10_000
	// maxEarlyDerived bounds the problems found in members read before
	// manifest.yaml, kept until the listing says whether they stand.
	maxEarlyDerived = 1000
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
	// oversized member, a limit): members after that point were not
	// checked.
	Complete bool `json:"complete"`
	// ManifestFirst tells whether manifest.yaml was the first member, as
	// refdoctor writes it; Inspect is slow on bundles where it is not.
	ManifestFirst bool           `json:"manifest_first"`
	Subjects      []SubjectCheck `json:"subjects"`
	ArchiveBytes  int64          `json:"archive_bytes"`
	DurationMS    int64          `json:"duration_ms"`
	// Signature is what was found about the bundle's signature
	// (section 10 of docs/bundle-format.md): unsigned, signed, verified
	// against a given key, or failed, with the code that says why.
	Signature SignatureReport `json:"signature"`
	// ImageSignatures are the verdicts on the cosign signatures of each
	// image, when they were checked (`bundle validate --check-signatures`,
	// package bundle/signing); absent otherwise.
	ImageSignatures []ImageSignatureReport `json:"image_signatures,omitempty"`

	manifest   *Manifest
	lst        *listing
	manifestOK bool
	// manifestSum is manifest.yaml's SHA-256 as validated (sigSumOK when
	// it was read whole).
	manifestSum [32]byte
	sigSumOK    bool
	// untrusted: a signature was asked for (keys given, or required) and
	// did not pass, so nothing in the bundle is trusted.
	untrusted bool
}

// SubjectCheck is one subject's referrers: how many manifest.yaml declares
// and how many were found present and intact.
type SubjectCheck struct {
	Subject   string `json:"subject"`
	Discovery string `json:"discovery"`
	Expected  int    `json:"expected"`
	Found     int    `json:"found"`
}

// Manifest is the manifest.yaml validation read, nil when there was none
// or it did not parse. Its Files are not kept (nil): validation checked
// them against the archive instead, and Verified answers for each.
func (r Report) Manifest() *Manifest { return r.manifest }

// Verified reports whether the member at path passed validation: present
// exactly once, read whole, equal to its listing in size and sha256 (a
// blob also to its name), and nothing found wrong in it or about it
// (subject, metadata, collisions, ambiguous headers). manifest.yaml is
// verified when it parsed and agreed with itself. This is what import
// trusts, and all it trusts. When a signature was asked for
// (WithSignatureVerifier with keys, or WithRequireSignature) and it did not
// pass, nothing is verified.
func (r Report) Verified(path string) bool {
	return !r.untrusted && r.Matches(path)
}

// Matches is Verified without the signature: the member passed every
// check of its own (listing, checksum, content), whatever the bundle's
// signature says. Checks that carry their own proof, such as an image
// signature verified against the operator's keys, use it; everything
// else uses Verified.
func (r Report) Matches(path string) bool {
	if r.manifest == nil || r.lst == nil {
		return false
	}
	if path == ManifestPath {
		return r.manifestOK
	}
	e, ok := r.lst.lookup(path)
	return ok && e.verified()
}

// VerifiedSize is the size of the member at path when it passed
// validation (Verified), so that a second read can be checked against it.
func (r Report) VerifiedSize(path string) (int64, bool) {
	if !r.Verified(path) {
		return 0, false
	}
	e, _ := r.lst.lookup(path)
	return e.size, true
}

// VerifiedOffset is where, in the compressed file validation read, a gzip
// member starts with the tar header of the member at path, when path
// passed validation (Verified) and one does: decompressing the file from
// there reads that member, and the rest of the archive after it, exactly
// as validation read them, without inflating what comes before. refdoctor
// writes each member it stores uncompressed (blobs that are compressed
// already) into a gzip member of its own, so import's readers can start
// at any large blob. Offsets count from the start of what Validate read;
// they are file offsets for ValidateFile.
func (r Report) VerifiedOffset(path string) (int64, bool) {
	if !r.Verified(path) || path == ManifestPath {
		return 0, false
	}
	e, _ := r.lst.lookup(path)
	return e.seek, e.seek > 0
}

// unreadableCodes mean the input holds no bundle manifest refdoctor can
// read: the CLI's "malformed input" (exit 2).
var unreadableCodes = []finding.Code{finding.NotABundle, finding.UnsupportedVersion, finding.MissingManifest, finding.MalformedManifest}

// Unreadable reports whether the input is not a readable bundle: not a
// bundle at all, a newer format, or no usable manifest.yaml (absent,
// malformed, past its limits). The CLI exits 2 for these, 1 for every
// other problem: one rule for validate, inspect and import.
func (r Report) Unreadable() bool {
	return slices.ContainsFunc(r.Errors, func(p Problem) bool {
		return slices.Contains(unreadableCodes, p.Code) ||
			(p.Path == ManifestPath && (p.Code == finding.MemberTooLarge || p.Code == finding.LimitExceeded))
	})
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
	maxMembers     int
	manifestLimit  int64
	ratio, floor   int64
	documents      func(path string, data []byte)
	signatures     ManifestVerifier
	requireSig     bool
	// file is the bundle when ValidateFile reads a regular file: a
	// second reader hashes some members from it (see offload.go), those
	// of offloadMin bytes or more; offloaded counts them (for tests).
	file       io.ReaderAt
	offloadMin int64
	offloaded  *int
}

// WithCheckReferrers also parses every referrer manifest: its subject must
// be its folder's subject, the blobs it references must be present, and
// its media type and artifact type must be the ones manifest.yaml lists.
func WithCheckReferrers(b bool) Opt { return func(o *options) { o.checkReferrers = b } }

// WithEvents receives progress events on the validating goroutine; fn
// must not block for long.
func WithEvents(fn func(Event)) Opt { return func(o *options) { o.events = fn } }

// WithDocuments passes each OCI manifest or index the validator reads
// (index.json, the manifests among the blobs, and the referrer files when
// WithCheckReferrers is on; at most 4 MiB each) to
// fn, so that a caller learns the bundle's manifests in the same pass.
// data is fn's to keep. A document is passed as it is read, before the
// archive is known to be whole: use it only if Report.Verified(path) says
// so once validation has finished.
func WithDocuments(fn func(path string, data []byte)) Opt {
	return func(o *options) { o.documents = fn }
}

// WithSignatureVerifier checks the bundle's signature with v (package
// bundle/signing's Verifier). With keys (v.CanVerify), the signature member
// right after manifest.yaml must verify over manifest.yaml's exact bytes
// with one of them, and a missing, invalid or foreign signature is a
// problem (SignatureMissing, SignatureInvalid, UnknownKey) that also makes
// Report.Verified false for every member: it is decided as soon as the
// member after manifest.yaml is read, before any other member is trusted.
// Without keys, v only describes the signature for the report.
func WithSignatureVerifier(v ManifestVerifier) Opt { return func(o *options) { o.signatures = v } }

// WithRequireSignature fails an unsigned bundle with SignatureMissing
// (--require-signature), keys or not.
func WithRequireSignature(b bool) Opt { return func(o *options) { o.requireSig = b } }

// WithTotalBytes gives the compressed size of the input, for progress.
// ValidateFile sets it from the file.
func WithTotalBytes(n int64) Opt { return func(o *options) { o.totalBytes = n } }

// WithMaxMemberSize bounds each member (DefaultMaxMemberSize otherwise).
func WithMaxMemberSize(n int64) Opt { return func(o *options) { o.maxMember = n } }

// WithMaxMembers bounds the archive's entries (DefaultMaxMembers
// otherwise); past it reading stops with LimitExceeded.
func WithMaxMembers(n int) Opt { return func(o *options) { o.maxMembers = n } }

// WithMaxArchiveSize stops reading, as a decompression bomb, once the
// decompressed stream passes n bytes; 0 means no fixed bound (the listed
// sizes and the expansion ratio still bound it).
func WithMaxArchiveSize(n int64) Opt { return func(o *options) { o.maxArchive = n } }

// WithExpansionLimit sets the expansion bound: more than floor
// decompressed bytes at more than ratio:1 is a bomb, before and after
// manifest.yaml is read. The defaults are DefaultExpansionRatio and
// DefaultExpansionFloor; ratio 0 turns the check off, for a known bundle
// whose listed layers are huge runs of zeros (the listed sizes of the
// members present still bound the stream).
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
		if offloading() {
			opts = append([]Opt{func(o *options) { o.file = f }}, opts...)
		}
	}
	return Validate(ctx, f, opts...)
}

// Validate reads a bundle once, as a stream, and checks it whole: every
// member listed in manifest.yaml, every listed member present, every size
// and sha256 equal, referrer counts and names consistent, every blob a
// manifest, index or referrer in the bundle references present, and the
// archive free of unsafe paths, links, devices, duplicates, names that
// collide (file and directory, or only in case), headers that tar readers
// read differently, oversized members and decompression bombs. With
// WithCheckReferrers it also parses each referrer manifest. Every problem
// is reported, each cause once (with a count).
//
// Memory stays bounded whatever the bundle holds: member data is hashed
// as it streams through (decompression on one goroutine, hashing on
// another; ValidateFile adds a second reader of the file for large
// members, see offload.go); manifest.yaml is decoded entry by entry; only
// index.json and referrer and manifest JSON of at most 4 MiB are held,
// one at a time; each member costs a few dozen bytes, up to
// DefaultMaxMembers. Nothing is written anywhere.
//
// Outcome, as the CLI maps it to exit codes:
//   - Report.OK and a nil error: the bundle is whole (exit 0).
//   - Report.Unreadable(): the input is not a readable bundle: not gzip or
//     zstd, no bundle members, no usable manifest.yaml, a newer format
//     (exit 2). The error is non-nil for the first kinds.
//   - otherwise !Report.OK: the bundle was read but is wrong: tampered,
//     damaged or hostile (exit 1). Truncation, a corrupt stream, a bomb,
//     an oversized member or a limit stop reading early; the report then
//     has Complete false and says where it stopped.
//   - A failing reader or a canceled ctx is a non-nil error (exit 3).
func Validate(ctx context.Context, r io.Reader, opts ...Opt) (Report, error) {
	o := options{maxMember: DefaultMaxMemberSize, manifestLimit: DefaultManifestLimit, maxMembers: DefaultMaxMembers,
		ratio: DefaultExpansionRatio, floor: DefaultExpansionFloor, offloadMin: defaultOffloadMin}
	for _, opt := range opts {
		opt(&o)
	}
	if o.maxMember <= 0 {
		o.maxMember = DefaultMaxMemberSize
	}
	if o.manifestLimit <= 0 {
		o.manifestLimit = DefaultManifestLimit
	}
	if o.maxMembers <= 0 {
		o.maxMembers = DefaultMaxMembers
	}
	seed := maphash.MakeSeed()
	v := &validator{
		ctx:        ctx,
		o:          o,
		file:       o.file,
		start:      time.Now(),
		probs:      newProblemSet(),
		seed:       seed,
		names:      newNameIndex(seed),
		unresolved: map[[32]byte]string{},
		earlyRefs:  map[[32]byte]earlyRef{},
		earlyDocs:  map[int32]docMeta{},
		earlySums:  map[int32][32]byte{},
		rep:        emptyReport(),
	}
	v.rep.CheckReferrers = o.checkReferrers
	v.rep.Signature = SignatureReport{Status: SignatureUnsigned, Required: o.requireSig,
		Checked: o.signatures != nil && o.signatures.CanVerify()}
	err := v.run(r)
	v.finishSignature(err)
	v.rep.Errors = v.probs.problems()
	v.rep.OK = err == nil && v.rep.Complete && len(v.rep.Errors) == 0
	v.rep.ArchiveBytes = v.src.n.Load()
	v.rep.DurationMS = time.Since(v.start).Milliseconds()
	if v.manifest != nil {
		v.rep.manifest, v.rep.lst = v.manifest, v.lst
		v.rep.manifestOK = v.manifestConsistent && v.manifestCount == 1 && !v.manifestFlagged
	}
	v.rep.manifestSum, v.rep.sigSumOK = v.sig.digest, v.sig.haveSum
	sr := v.rep.Signature
	v.rep.untrusted = sr.Status == SignatureFailed || ((sr.Checked || sr.Required) && sr.Status == SignatureUnknown)
	rep := v.rep
	v.emit(Event{Kind: EventFinished, Report: &rep})
	return v.rep, err
}

func sortedKeys[V any](m map[[32]byte]V) [][32]byte {
	keys := make([][32]byte, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b [32]byte) int { return bytes.Compare(a[:], b[:]) })
	return keys
}

func emptyReport() Report {
	return Report{Errors: []Problem{}, Subjects: []SubjectCheck{}}
}

// earlyMember is a member read before manifest.yaml: what it takes to
// check it against the listing once that arrives, compactly (a bundle
// repacked by hand may hold its manifest last, after a hundred thousand
// members). A blob is named by key; any other member by name, with its
// sha256 in key. A blob whose content is not its name keeps its sha256 in
// earlySums.
type earlyMember struct {
	name    string
	key     [32]byte
	size    int64
	hashed  bool
	flagged bool
}

func (v *validator) earlyName(i int32) string {
	em := &v.early[i]
	if em.name != "" {
		return em.name
	}
	return BlobsDir + hex.EncodeToString(em.key[:])
}

func (v *validator) earlySum(i int32) [32]byte {
	if s, ok := v.earlySums[i]; ok {
		return s
	}
	return v.early[i].key
}

// earlyRef is a blob a document read before manifest.yaml references.
type earlyRef struct {
	size int64
	from int32
}

// earlyDerived is a problem found in a member read before manifest.yaml;
// it stands if that member turns out to be the bundle's own.
type earlyDerived struct {
	from int32
	p    Problem
}

// docMeta is what --check-referrers compares with the listing.
type docMeta struct {
	mediaType, artifactType string
}

// source says where content came from, for deciding whether problems
// found in it stand: a listed member (once the listing is known), a member
// read before manifest.yaml, or a member nobody listed.
type source struct {
	path  string
	entry *listEntry
	early int32 // index in early, -1 when none
}

type validator struct {
	ctx   context.Context
	marks *memberMarks // gzip member starts, for Report.VerifiedOffset
	o     options
	start time.Time
	rep   Report
	probs *problemSet
	src   *countingReader
	meter *meter
	raw   *headerTracker
	seed  maphash.Seed
	names *nameIndex

	frames *zstdFrames

	manifest           *Manifest
	manifestSeen       bool
	manifestCount      int
	manifestBytes      int64
	manifestConsistent bool
	manifestFlagged    bool
	lst                *listing
	// contrib sums, per listed member present, the smaller of its header
	// size and its listed size: the decompression budget. Listed members
	// that are absent never raise it.
	contrib       int64
	presentListed int64

	entries       int // tar entries of any type
	layoutMembers int // members that look like a bundle or OCI layout
	regular       int // regular members

	early        []earlyMember
	earlySums    map[int32][32]byte
	earlyRefs    map[[32]byte]earlyRef
	earlyDerived []earlyDerived
	earlyDocs    map[int32]docMeta
	earlyDropped int

	unresolved   map[[32]byte]string // blob -> first referencing member
	sizeChecks   []sizeCheck
	refsDropped  int
	index        map[[32]byte]struct{}
	indexSrc     source
	indexSeen    bool
	tarEnd       int64
	stopped      bool
	lastProgress int64
	hashBuf      []byte
	hasher       hash.Hash

	// The second reader (offload.go).
	file          io.ReaderAt
	offloadable   int
	pending       *offload
	cancelOffload context.CancelFunc
	offloadBuf    []byte
	offloadIn     *bufio.Reader
	sig           sigState
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
	if v.probs.add(p) {
		q := v.probs.list[len(v.probs.list)-1]
		v.emit(Event{Kind: EventProblem, Path: q.Path, Problem: &q})
	}
}

// stop records the problem that ended reading early.
func (v *validator) stop(p Problem) {
	v.stopped = true
	if v.lst != nil {
		unreached := 0
		v.lst.each(func(_ int32, e *listEntry) {
			if e.seen == 0 {
				unreached++
			}
		})
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
	if comp == CompressionGzip {
		v.marks = &memberMarks{consumed: v.src.n.Load}
	}
	dec, err := openDecompressor(br, comp, v.marks)
	if err != nil {
		return v.readFailure(err, "")
	}
	v.frames = dec.frames
	p := startPump(v.ctx, dec.r, dec.release)
	defer p.stop()
	v.meter = &meter{r: p, check: v.checkBudget}
	v.raw = &headerTracker{}
	tr := tar.NewReader(io.TeeReader(v.meter, v.raw))
	v.hashBuf = make([]byte, copyBuffer)
	v.hasher = sha256.New()
	defer v.stopOffload()
	if err := v.scan(tr); err != nil {
		return err
	}
	if err := v.takeOffload(); err != nil {
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
	if v.lst != nil {
		if budget := v.budget(); n > budget {
			return budgetBomb(budget, "far beyond the listed sizes of the members present")
		}
	}
	if c := v.src.n.Load(); v.o.ratio > 0 && n > v.o.floor && n/v.o.ratio > c {
		return ratioBomb(v.o.ratio, n, c, "expanding beyond the allowed ratio")
	}
	return nil
}

// budget is how many decompressed bytes the stream may hold so far:
// manifest.yaml, the listed members present (each at most its listed
// size), their tar overhead, and slack.
func (v *validator) budget() int64 {
	b := satAdd(v.manifestBytes, v.contrib)
	b = satAdd(b, satMul(v.presentListed+16, memberOverhead))
	return satAdd(b, max(listedSlack, v.contrib/16))
}

func (v *validator) scan(tr *tar.Reader) error {
	lastPath := ""
	for {
		if err := v.ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		raw, notes, rawOK := v.raw.take()
		for _, n := range notes {
			v.problem(Problem{Code: finding.AmbiguousMember, Path: lastPath, Message: strings.Join(n.ambiguous, "; ")})
		}
		if err == io.EOF {
			v.tarEnd = v.meter.n
			return v.drain(lastPath)
		}
		if err != nil && !(errors.Is(err, tar.ErrInsecurePath) && hdr != nil) {
			return v.readFailure(err, lastPath)
		}
		v.entries++
		if v.entries > v.o.maxMembers {
			v.stop(Problem{Code: finding.LimitExceeded, Path: hdr.Name, Expected: fmt.Sprintf("at most %d entries", v.o.maxMembers),
				Message: fmt.Sprintf("the archive holds more than %d entries, past the format's limit", v.o.maxMembers)})
			return nil
		}
		lastPath = hdr.Name
		if done, err := v.member(tr, hdr, raw, rawOK); err != nil || done {
			return err
		}
	}
}

// member handles one tar entry; done ends the scan.
func (v *validator) member(tr *tar.Reader, hdr *tar.Header, raw rawEntry, rawOK bool) (done bool, err error) {
	name := strings.TrimPrefix(hdr.Name, "./")
	if hdr.Typeflag == tar.TypeDir {
		name = strings.TrimSuffix(name, "/")
	}
	v.emit(Event{Kind: EventMember, Path: name})
	ambiguous := false
	if rawOK {
		reasons := raw.ambiguous
		if raw.typeflag != tar.TypeXGlobalHeader && string(raw.name) != hdr.Name {
			reasons = append(slices.Clip(reasons), fmt.Sprintf("Go's tar reader names it %q, its raw headers %q", clip(hdr.Name, 100), clip(string(raw.name), 100)))
		}
		if len(reasons) > 0 {
			ambiguous = true
			v.problem(Problem{Code: finding.AmbiguousMember, Path: hdr.Name, Message: strings.Join(reasons, "; ") +
				"; a bundle is valid only if every common tar reader sees the same members"})
		}
	}
	if hdr.Typeflag == tar.TypeDir && (name == "" || name == ".") {
		return false, nil
	}
	if hdr.Typeflag != tar.TypeDir && hdr.Typeflag != tar.TypeXGlobalHeader {
		v.signatureOrder(name)
	}
	if reason := unsafePathReason(name); reason != "" {
		v.problem(Problem{Code: finding.UnsafePath, Path: hdr.Name, Message: reason + "; the member was not read"})
		return false, nil
	}
	if isLayoutName(name) {
		v.layoutMembers++
	}
	switch hdr.Typeflag {
	case tar.TypeDir:
		v.addName(name, kindDir, nil)
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
		v.problem(Problem{Code: finding.LinkMember, Path: name, Actual: clip(hdr.Linkname, 100),
			Message: fmt.Sprintf("%s link to %q; bundles hold regular files only", kind, clip(hdr.Linkname, 100))})
		return false, nil
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		kind := map[byte]string{tar.TypeChar: "character device", tar.TypeBlock: "block device", tar.TypeFifo: "FIFO"}[hdr.Typeflag]
		v.problem(Problem{Code: finding.DeviceMember, Path: name, Actual: kind,
			Message: kind + "; bundles hold regular files only"})
		return false, nil
	case tar.TypeXGlobalHeader:
		// git archive and some tar tools write one; it carries no file
		// (the header tracker reports one that renames members).
		return false, nil
	default:
		v.problem(Problem{Code: finding.UnsupportedMember, Path: name, Actual: fmt.Sprintf("type %q", hdr.Typeflag),
			Message: "tar entry type not allowed in a bundle (regular files only)"})
		return false, nil
	}

	v.regular++
	var ent *listEntry
	if v.lst != nil {
		ent, _ = v.lst.lookup(name)
		if ent != nil {
			if ent.seen < 255 {
				ent.seen++
			}
			if ent.seen == 1 {
				v.contrib = satAdd(v.contrib, min(hdr.Size, ent.size))
				v.presentListed++
			}
		}
	}
	if rawOK && v.marks != nil {
		if at, ok := v.marks.at(raw.start); ok && raw.plain && ent != nil && ent.seen == 1 {
			ent.seek = at
		}
	}
	clashed := v.addName(name, kindFile, ent)
	flagged := ambiguous || clashed
	if ent != nil && flagged {
		ent.state |= entryFlagged
	}

	if name == SignatureMember {
		return v.readSignature(tr, hdr, ent)
	}
	if name == ManifestPath {
		v.manifestCount++
		if v.manifestSeen {
			return false, nil // DuplicateMember is reported; the first one is used
		}
		v.manifestSeen = true
		v.manifestFlagged = flagged
		v.rep.ManifestFirst = v.regular == 1 && !slices.ContainsFunc(v.probs.list, func(p Problem) bool {
			return p.Code == finding.LinkMember || p.Code == finding.DeviceMember || p.Code == finding.UnsupportedMember || p.Code == finding.UnsafePath
		})
		return v.readManifest(tr, hdr)
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
		flagged = true
	}
	if holdMode == holdAlways && hdr.Size > holdLimit {
		v.problem(Problem{Code: finding.MemberTooLarge, Path: name,
			Expected: fmt.Sprintf("at most %d", holdLimit), Actual: fmt.Sprint(hdr.Size),
			Message: fmt.Sprintf("too large to be a genuine %s; checksummed but not parsed", describeHeld(name))})
		holdMode, flagged = holdNone, true
	}
	if holdMode == holdSniff && hdr.Size > holdLimit {
		holdMode = holdNone
	}
	if v.canOffload(ent, hdr.Size, holdMode) {
		if flagged {
			ent.state |= entryFlagged
		}
		if err := v.startOffload(tr, name, ent, hdr.Size); err != nil {
			return true, v.readFailure(err, name)
		}
		return false, nil
	}
	var sum [32]byte
	held, hashed, err := v.hashMember(tr, name, hdr.Size, holdMode, &sum)
	src := source{path: name, entry: ent, early: -1}
	switch {
	case v.lst != nil:
		if hashed {
			v.checkListed(name, ent, hdr.Size, sum)
		}
		if ent != nil && flagged {
			ent.state |= entryFlagged
		}
	default:
		em := earlyMember{size: hdr.Size, key: sum, hashed: hashed, flagged: flagged}
		src.early = int32(len(v.early))
		if k, ok := blobKey(name); ok {
			em.key = k
			if k != sum {
				v.earlySums[src.early] = sum
			}
		} else {
			em.name = name
		}
		v.early = append(v.early, em)
	}
	if err != nil {
		return true, v.readFailure(err, name)
	}
	v.rep.FilesChecked++
	if held != nil {
		v.parseHeld(name, held, src)
	}
	return false, nil
}

// addName records a name and its parent directories, and reports how it
// collides with earlier names; flagged says it did.
func (v *validator) addName(name string, kind nameKind, ent *listEntry) (flagged bool) {
	report := func(c clash, n string, k nameKind) {
		switch c {
		case clashNone:
			return
		case clashDuplicate:
			msg := "the same name appears more than once; extraction would silently keep only one"
			switch n {
			case ManifestPath:
				msg = "manifest.yaml appears more than once; the first one is used"
			case SignatureMember:
				msg = "a second " + SignatureMember + ": a bundle holds one signature, directly after manifest.yaml"
			}
			v.problem(Problem{Code: finding.DuplicateMember, Path: n, Message: msg})
		case clashFileDir:
			v.problem(Problem{Code: finding.MemberCollision, Path: n,
				Message: "the name is both a file and a directory in the archive; unpacking replaces one with the other"})
		case clashCase:
			msg := "another member's name differs from this one only in case; on case-insensitive file systems (macOS, Windows) unpacking one overwrites the other"
			if v.lst != nil {
				if e, p, ok := v.lst.lookupFold(n); ok && p != n {
					e.state |= entryFlagged
					msg = fmt.Sprintf("the name differs from the listed %s only in case; on case-insensitive file systems (macOS, Windows) unpacking one overwrites the other", p)
				}
			}
			v.problem(Problem{Code: finding.CaseCollision, Path: n, Message: msg})
		}
		if v.lst != nil {
			if e, ok := v.lst.lookup(n); ok {
				e.state |= entryFlagged
			}
		}
		if n == ManifestPath || (k == kindDir && n == ManifestPath) {
			v.manifestFlagged = true
		}
		flagged = true
	}
	parents(name, func(dir string) { report(v.names.add(dir, kindDir), dir, kindDir) })
	report(v.names.add(name, kind), name, kind)
	return flagged
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

// hashMember streams one member's data through sha256 into sum, holding
// a copy only when mode asks and the member is small. Sniffing decides on
// the first non-blank byte, wherever the chunk boundaries fall, and
// allocates nothing for the (common) blob that is not JSON.
func (v *validator) hashMember(tr *tar.Reader, name string, size int64, mode holdMode, sum *[32]byte) (held []byte, hashed bool, err error) {
	h := v.hasher
	h.Reset()
	holding, sniffing := mode == holdAlways, mode == holdSniff
	if holding {
		held = make([]byte, 0, size)
	}
	for {
		if err := v.ctx.Err(); err != nil {
			return nil, false, err
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
					held = append(append(make([]byte, 0, size), held...), chunk...)
				default:
					sniffing, held = false, nil
				}
			} else if holding {
				held = append(held, chunk...)
			}
			if v.meter.n-v.lastProgress >= progressStep {
				v.lastProgress = v.meter.n
				v.emit(Event{Kind: EventProgress, Path: name})
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, false, err
		}
	}
	h.Sum(sum[:0])
	if !holding {
		return nil, true, nil
	}
	if held == nil {
		held = []byte{}
	}
	return held, true, nil
}

func (v *validator) readManifest(tr *tar.Reader, hdr *tar.Header) (bool, error) {
	if hdr.Size > v.o.manifestLimit {
		v.stop(Problem{Code: finding.MemberTooLarge, Path: ManifestPath,
			Expected: fmt.Sprintf("at most %d", v.o.manifestLimit), Actual: fmt.Sprint(hdr.Size),
			Message: fmt.Sprintf("manifest.yaml is %d bytes, over the %d-byte limit; it was not read", hdr.Size, v.o.manifestLimit)})
		return true, nil
	}
	v.manifestBytes = hdr.Size
	// A files entry takes about 165 bytes of manifest.yaml, an artifact
	// about 540; seal trims what is not used.
	lst := newListing(v.seed, int(min(hdr.Size, v.o.manifestLimit)/192))
	// manifest.yaml's exact bytes are what a signature covers: hash them
	// as they are parsed, and hold them when the verifier needs them.
	mr := v.sig.manifestReader(tr, hdr.Size, v.o.signatures)
	m, err := parseManifestFiles(mr, v.o.manifestLimit, func(f FileEntry) error {
		lst.add(f.Path, f.Size, f.SHA256, nil)
		return nil
	})
	if err == nil || errors.Is(err, ErrMalformedManifest) || errors.Is(err, ErrUnsupportedVersion) || errors.Is(err, ErrNotBundle) {
		// The parser may stop before the end (a malformed line): the
		// rest still counts for the signature.
		if _, derr := io.Copy(io.Discard, mr); derr != nil && err == nil {
			err = derr
		}
		v.sig.manifestRead()
	}
	if err != nil {
		if !errors.Is(err, ErrMalformedManifest) && !errors.Is(err, ErrUnsupportedVersion) && !errors.Is(err, ErrNotBundle) {
			// The archive failed under the manifest, not the manifest.
			return true, v.readFailure(err, ManifestPath)
		}
		switch {
		case errors.Is(err, ErrUnsupportedVersion):
			v.stop(Problem{Code: finding.UnsupportedVersion, Path: ManifestPath,
				Expected: fmt.Sprint(FormatVersion), Message: err.Error()})
			return true, err
		case errors.Is(err, ErrNotBundle):
			v.stop(Problem{Code: finding.NotABundle, Path: ManifestPath, Expected: ManifestKind, Message: err.Error()})
			return true, err
		case errors.Is(err, ErrManifestTooLarge):
			v.problem(Problem{Code: finding.LimitExceeded, Path: ManifestPath, Message: err.Error() +
				"; members are checked for safety but their checksums cannot be verified"})
		default:
			v.problem(Problem{Code: finding.MalformedManifest, Path: ManifestPath, Message: err.Error() +
				"; members are checked for safety but their checksums cannot be verified"})
		}
		return false, nil
	}
	for i := range m.Referrers.Subjects {
		s := &m.Referrers.Subjects[i]
		for j := range s.Artifacts {
			a := &s.Artifacts[j]
			lst.add(a.Path, a.Size, a.SHA256, a)
		}
	}
	lst.seal()
	if len(lst.dups) > 0 {
		v.problem(Problem{Code: finding.MalformedManifest, Path: ManifestPath, Message: "path " + lst.dups[0] + " is listed twice" +
			"; members are checked for safety but their checksums cannot be verified"})
		return false, nil
	}
	v.setManifest(m, lst)
	return false, nil
}

func (v *validator) setManifest(m *Manifest, lst *listing) {
	v.manifest, v.lst = m, lst
	v.rep.FormatVersion = m.SchemaVersion
	v.manifestConsistent = true
	for _, p := range lst.clashes {
		v.manifestConsistent = false
		v.problem(Problem{Code: finding.CaseCollision, Path: p,
			Message: "manifest.yaml lists this path and another that differ only in case; on case-insensitive file systems (macOS, Windows) one overwrites the other"})
	}
	if e, p, ok := lst.lookupFold(ManifestPath); ok {
		e.state |= entryFlagged
		v.manifestConsistent = false
		v.problem(Problem{Code: finding.CaseCollision, Path: p, Message: "the listed path differs from manifest.yaml only in case; on case-insensitive file systems one overwrites the other"})
	}
	for _, p := range m.Consistency() {
		v.manifestConsistent = false
		v.problem(p)
	}
	// Members that streamed past before the manifest are checked now.
	for i := range v.early {
		em := &v.early[i]
		name := v.earlyName(int32(i))
		ent, _ := lst.lookup(name)
		if ent != nil {
			if ent.seen < 255 {
				ent.seen++
			}
			if ent.seen == 1 {
				v.contrib = satAdd(v.contrib, min(em.size, ent.size))
				v.presentListed++
			}
			if em.flagged {
				ent.state |= entryFlagged
			}
		}
		if f, p, ok := lst.lookupFold(name); ok && p != name {
			f.state |= entryFlagged
			v.problem(Problem{Code: finding.CaseCollision, Path: name,
				Message: fmt.Sprintf("the name differs from the listed %s only in case; on case-insensitive file systems (macOS, Windows) unpacking one overwrites the other", p)})
		}
		if em.hashed {
			v.checkListed(name, ent, em.size, v.earlySum(int32(i)))
		}
	}
	for i := range v.early {
		if md, ok := v.earlyDocs[int32(i)]; ok {
			s := v.earlySource(int32(i))
			v.checkReferrerMeta(s.path, s, md)
		}
	}
	for _, d := range v.earlyDerived {
		v.derive(v.earlySource(d.from), d.p)
	}
	for _, k := range sortedKeys(v.earlyRefs) {
		r := v.earlyRefs[k]
		v.addRef(v.earlySource(r.from), "sha256:"+hex.EncodeToString(k[:]), r.size)
	}
	if v.indexSeen && v.indexSrc.early >= 0 {
		v.indexSrc = v.earlySource(v.indexSrc.early)
	}
	v.early, v.earlySums, v.earlyDerived, v.earlyRefs, v.earlyDocs = nil, nil, nil, nil, nil
	if v.earlyDropped > 0 {
		v.problem(Problem{Code: finding.LimitExceeded, Actual: fmt.Sprint(v.earlyDropped),
			Message: fmt.Sprintf("%d more problems were found in members read before manifest.yaml and were not kept", v.earlyDropped)})
	}
}

// earlySource is the source of a member read before the manifest, now
// that the listing is known.
func (v *validator) earlySource(i int32) source {
	name := v.earlyName(i)
	s := source{path: name, early: -1}
	if v.lst != nil {
		s.entry, _ = v.lst.lookup(name)
	}
	return s
}

// checkListed compares one member with its listing.
func (v *validator) checkListed(name string, ent *listEntry, size int64, sum [32]byte) {
	if ent == nil {
		v.problem(Problem{Code: finding.UnlistedFile, Path: name, Actual: fmt.Sprint(size),
			Message: "member is not listed in manifest.yaml"})
		return
	}
	ent.state |= entryHashed
	if ent.art != nil {
		v.rep.ReferrersChecked++
	}
	if size != ent.size {
		ent.state |= entryFlagged
		v.problem(Problem{Code: finding.SizeMismatch, Path: name, Expected: fmt.Sprint(ent.size), Actual: fmt.Sprint(size),
			Message: fmt.Sprintf("member is %d bytes, manifest.yaml lists %d", size, ent.size)})
		return
	}
	if sum != ent.sum {
		ent.state |= entryFlagged
		code, what := finding.FileChecksumMismatch, "file"
		if ent.art != nil {
			code, what = finding.ReferrerChecksumMismatch, "referrer"
		}
		v.problem(Problem{Code: code, Path: name, Expected: hex.EncodeToString(ent.sum[:]), Actual: hex.EncodeToString(sum[:]),
			Message: what + " content differs from the sha256 manifest.yaml lists; it was modified after export or damaged in transfer"})
		return
	}
	if k, ok := blobKey(name); ok && k != sum {
		ent.state |= entryFlagged
		v.problem(Problem{Code: finding.FileChecksumMismatch, Path: name, Expected: hex.EncodeToString(k[:]), Actual: hex.EncodeToString(sum[:]),
			Message: "blob content does not match the digest in its name"})
		return
	}
	ent.state |= entryMatched
}

// standing says whether problems found in content from s stand: only
// when the content is the bundle's own, listed and equal to its listing.
// Without a listing, what the content says stands.
func (v *validator) standing(s source) bool {
	if v.manifest == nil {
		return true
	}
	return s.entry != nil && s.entry.seen == 1 && s.entry.state&(entryMatched|entryFlagged) == entryMatched
}

// derive reports a problem found inside content, if that content is the
// bundle's own; a member already reported as modified or unlisted would
// otherwise bury its one real problem under noise.
func (v *validator) derive(s source, p Problem) {
	if s.early >= 0 {
		if len(v.earlyDerived) >= maxEarlyDerived {
			v.earlyDropped++
			return
		}
		v.earlyDerived = append(v.earlyDerived, earlyDerived{from: s.early, p: p})
		return
	}
	if v.manifest != nil {
		if !v.standing(s) {
			return
		}
		s.entry.state |= entryFlawed
	}
	v.problem(p)
}

// parseHeld reads the few members whose content the checks need.
func (v *validator) parseHeld(name string, data []byte, s source) {
	switch {
	case name == LayoutPath:
		var l struct {
			ImageLayoutVersion string `json:"imageLayoutVersion"`
		}
		if err := json.Unmarshal(data, &l); err != nil || l.ImageLayoutVersion == "" {
			v.derive(s, Problem{Code: finding.MalformedLayout, Path: name, Expected: `{"imageLayoutVersion":"1.0.0"}`,
				Message: "oci-layout is not a valid OCI layout file"})
		}
	case name == IndexPath:
		_, hasManifests, ok := scanOCIDocument(data, nil)
		if !ok || !hasManifests {
			v.derive(s, Problem{Code: finding.MalformedLayout, Path: name, Message: "index.json is not an OCI image index"})
			return
		}
		v.checkReading(name, data, s, true)
		first := !v.indexSeen
		if first {
			v.indexSeen, v.indexSrc, v.index = true, s, map[[32]byte]struct{}{}
		}
		scanOCIDocument(data, func(m OCIDescriptor) {
			if k, ok := digestKey(m.Digest); ok && first {
				v.index[k] = struct{}{}
			}
			v.addRef(s, m.Digest, m.Size)
		})
		v.document(name, data)
	case strings.HasPrefix(name, ReferrersDir):
		subject, _, _ := SplitReferrerPath(name)
		d, _, ok := scanOCIDocument(data, nil)
		if !ok {
			v.derive(s, Problem{Code: finding.MalformedReferrer, Path: name,
				Message: "referrer is not an OCI image manifest or index"})
			return
		}
		v.checkReading(name, data, s, true)
		switch {
		case d.Subject == nil:
			v.derive(s, Problem{Code: finding.SubjectMismatch, Path: name, Expected: subject,
				Message: "referrer manifest has no subject"})
		case d.Subject.Digest != subject:
			v.derive(s, Problem{Code: finding.SubjectMismatch, Path: name, Expected: subject, Actual: d.Subject.Digest,
				Message: "referrer's subject.digest is not the subject it is filed under"})
		default:
			v.addRef(s, d.Subject.Digest, d.Subject.Size)
		}
		v.addRefs(s, data)
		v.document(name, data)
		if v.o.checkReferrers {
			md := docMeta{mediaType: clip(d.MediaType, maxFieldBytes), artifactType: clip(d.effectiveArtifactType(), maxFieldBytes)}
			if s.early >= 0 {
				v.earlyDocs[s.early] = md
			} else {
				v.checkReferrerMeta(name, s, md)
			}
		}
	case strings.HasPrefix(name, BlobsDir):
		_, _, ok := scanOCIDocument(data, nil)
		v.checkReading(name, data, s, ok)
		if ok {
			v.addRefs(s, data)
			v.document(name, data)
		}
	}
}

// checkReading reports a document that JSON readers could read
// differently (DocumentAmbiguity). The member is flawed then: import
// pushes nothing that depends on it.
func (v *validator) checkReading(name string, data []byte, s source, parsed bool) {
	if why := ambiguity(data, parsed); why != "" {
		v.derive(s, Problem{Code: finding.AmbiguousDocument, Path: name, Message: why})
	}
}

func (v *validator) checkReferrerMeta(name string, s source, md docMeta) {
	if s.entry == nil || s.entry.art == nil {
		return
	}
	a := s.entry.art
	if md.mediaType != "" && md.mediaType != a.MediaType {
		v.derive(s, Problem{Code: finding.ReferrerMetadataMismatch, Path: a.Path, Expected: a.MediaType, Actual: md.mediaType,
			Message: "manifest.yaml lists a different mediaType than the referrer has"})
	}
	if md.artifactType != a.ArtifactType {
		v.derive(s, Problem{Code: finding.ReferrerMetadataMismatch, Path: a.Path, Expected: a.ArtifactType, Actual: md.artifactType,
			Message: "manifest.yaml lists a different artifactType than the referrer has"})
	}
}

func (v *validator) document(name string, data []byte) {
	if v.o.documents != nil {
		v.o.documents(name, bytes.Clone(data))
	}
}

// addRefs checks the references of a document known to be a manifest.
func (v *validator) addRefs(s source, data []byte) {
	scanOCIDocument(data, func(desc OCIDescriptor) { v.addRef(s, desc.Digest, desc.Size) })
}

// addRef checks that a blob a document in the bundle references is there,
// at once when the listing is known, else once it is.
func (v *validator) addRef(s source, digest string, size int64) {
	k, ok := digestKey(digest)
	if !ok {
		v.derive(s, Problem{Code: finding.MissingBlob, Path: s.path, Actual: digest,
			Message: "references a blob by a digest a v1 bundle cannot hold (sha256 only)"})
		return
	}
	if s.early >= 0 {
		if _, ok := v.earlyRefs[k]; ok {
			return
		}
		if len(v.earlyRefs) >= v.o.maxMembers {
			v.refsDropped++
			return
		}
		v.earlyRefs[k] = earlyRef{size: size, from: s.early}
		return
	}
	if v.manifest != nil {
		if !v.standing(s) {
			return
		}
		if i, ok := v.lst.lookupBlob(k); ok {
			if e := &v.lst.entries[i]; size > 0 && e.size != size {
				// Reported at the end if the blob itself matches its
				// listing; if it does not, its own problem says enough.
				if len(v.sizeChecks) < maxUnresolved {
					v.sizeChecks = append(v.sizeChecks, sizeCheck{entry: i, from: s, size: size})
				} else {
					v.derive(s, v.descriptorSize(BlobPath(digest), s.path, size, e.size))
				}
			}
			return
		}
	}
	if v.names.hasBlob(digest[len("sha256:"):]) {
		return // present, unlisted: UnlistedFile says it
	}
	if _, ok := v.unresolved[k]; ok {
		return
	}
	if len(v.unresolved) >= maxUnresolved {
		v.missingBlob(BlobPath(digest), digest, s.path)
		return
	}
	v.unresolved[k] = s.path
}

// sizeCheck is a descriptor that gives a listed blob another size.
type sizeCheck struct {
	entry int32
	from  source
	size  int64
}

func (v *validator) descriptorSize(path, from string, size, listed int64) Problem {
	return Problem{Code: finding.SizeMismatch, Path: path, Expected: fmt.Sprint(size), Actual: fmt.Sprint(listed),
		Message: "the descriptor in " + from + " gives this blob another size than the bundle holds"}
}

func (v *validator) missingBlob(path, digest, from string) {
	v.problem(Problem{Code: finding.MissingBlob, Path: path, Expected: digest,
		Message: "blob referenced by " + from + " is not in the bundle"})
}

// drain reads what follows the tar end-of-archive blocks to the end of the
// compressed stream: the gzip and zstd checksums are only verified there,
// and data hidden after the end marker is reported. Bytes after the
// archive, whatever they are (another gzip member, something that is not
// one, garbage), are TrailingData: every member was read, as gzip -d and
// tar read them.
func (v *validator) drain(lastPath string) error {
	trailing := func(msg string) {
		v.problem(Problem{Code: finding.TrailingData, Message: msg})
	}
	reported := false
	for {
		n, err := v.meter.Read(v.hashBuf)
		if n > 0 && !reported && slices.ContainsFunc(v.hashBuf[:n], func(b byte) bool { return b != 0 }) {
			reported = true
			trailing("non-zero data after the tar end-of-archive marker; tar tools ignore it")
		}
		if err == io.EOF {
			v.rep.Complete = true
			return nil
		}
		var later *laterMemberError
		if errors.As(err, &later) && later.start >= v.tarEnd {
			trailing("bytes after the archive's last gzip member are not a valid gzip member (" + later.err.Error() +
				"); gzip -d warns \"trailing garbage ignored\" and tar ignores them")
			v.rep.Complete = true
			return nil
		}
		if errors.Is(err, gzip.ErrHeader) || errors.Is(err, zstd.ErrMagicMismatch) {
			trailing("data after the end of the compressed stream; tar tools ignore it")
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
	if v.frames != nil && v.frames.hidden > 0 {
		v.problem(Problem{Code: finding.TrailingData, Actual: fmt.Sprintf("%d bytes", v.frames.hiddenBytes),
			Message: fmt.Sprintf("%d zstd skippable frame(s) of %d bytes, the first at byte %d of the file, hold data every reader skips",
				v.frames.hidden, v.frames.hiddenBytes, v.frames.hiddenAt)})
	}
	if v.stopped {
		return nil
	}
	if v.refsDropped > 0 {
		v.problem(Problem{Code: finding.LimitExceeded, Actual: fmt.Sprint(v.refsDropped),
			Message: fmt.Sprintf("%d blob references read before manifest.yaml were past the limit of %d and not checked", v.refsDropped, v.o.maxMembers)})
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
				Message: "the bundle has no manifest.yaml, so no checksum can be verified; export it again"})
		}
		// Without a listing, what the content says stands.
		for _, d := range v.earlyDerived {
			v.problem(d.p)
		}
		for _, k := range sortedKeys(v.earlyRefs) {
			if p := BlobsDir + hex.EncodeToString(k[:]); !v.names.hasFile(p) {
				v.missingBlob(p, "sha256:"+hex.EncodeToString(k[:]), "a document in the bundle")
			}
		}
		return nil
	}
	m := v.manifest
	v.lst.each(func(i int32, e *listEntry) {
		if e.seen == 0 {
			path := v.lst.pathOf(i)
			what := ""
			if e.art != nil {
				what = "referrer "
			}
			v.problem(Problem{Code: finding.MissingFile, Path: path, Expected: fmt.Sprint(e.size),
				Message: "listed " + what + "member is not in the archive"})
		}
	})
	for _, s := range m.Referrers.Subjects {
		found := 0
		for _, a := range s.Artifacts {
			if e, ok := v.lst.lookup(a.Path); ok && e.seen > 0 && e.state&(entryMatched|entryFlagged) == entryMatched {
				found++
			}
		}
		v.rep.Subjects = append(v.rep.Subjects, SubjectCheck{Subject: s.Subject, Discovery: s.Discovery, Expected: s.Count, Found: found})
	}
	for _, p := range []string{LayoutPath, IndexPath} {
		if _, listed := v.lst.lookup(p); !listed && !v.names.hasFile(p) {
			v.problem(Problem{Code: finding.MalformedLayout, Path: p, Message: p + " is missing, so the bundle is not an OCI image layout"})
		}
	}
	indexStands := v.standing(v.indexSrc)
	for _, img := range m.Images {
		v.addRef(source{path: ManifestPath, early: -1, entry: &listEntry{seen: 1, state: entryMatched}}, img.Digest, 0)
		k, _ := digestKey(img.Digest)
		if v.indexSeen && indexStands {
			if _, ok := v.index[k]; !ok {
				v.problem(Problem{Code: finding.IndexMismatch, Path: IndexPath, Expected: img.Digest,
					Message: fmt.Sprintf("image %s is in manifest.yaml but not in index.json", img.Reference)})
			}
		}
	}
	for _, c := range v.sizeChecks {
		if e := &v.lst.entries[c.entry]; e.state&(entryMatched|entryFlagged) == entryMatched {
			v.derive(c.from, v.descriptorSize(v.lst.pathOf(c.entry), c.from.path, c.size, e.size))
		}
	}
	for _, k := range sortedKeys(v.unresolved) {
		from := v.unresolved[k]
		path := BlobsDir + hex.EncodeToString(k[:])
		if _, listed := v.lst.lookupBlob(k); listed || v.names.hasFile(path) {
			continue
		}
		v.missingBlob(path, "sha256:"+hex.EncodeToString(k[:]), from)
	}
	return nil
}
