package mirror

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/regclient/regclient/types/descriptor"
	"github.com/regclient/regclient/types/manifest"
	"github.com/regclient/regclient/types/mediatype"
	"github.com/regclient/regclient/types/ref"
	"golang.org/x/sync/errgroup"

	"github.com/refdoctor/refdoctor/bundle"
	"github.com/refdoctor/refdoctor/config"
	"github.com/refdoctor/refdoctor/discovery"
	"github.com/refdoctor/refdoctor/finding"
	"github.com/refdoctor/refdoctor/probe"
	"github.com/refdoctor/refdoctor/registry"
)

// ErrRefused marks an import that pushed nothing because the bundle was
// not fit to push: strict validation failed, the archive is hostile, or
// index.json or manifest.yaml, which decide what is pushed and tagged,
// did not pass validation.
var ErrRefused = errors.New("import refused")

// hostileCodes make a bundle unfit to import even without strict mode:
// what the archive holds cannot be told for sure.
var hostileCodes = []finding.Code{finding.UnsafePath, finding.LinkMember, finding.DeviceMember, finding.UnsupportedMember,
	finding.DuplicateMember, finding.AmbiguousMember, finding.MemberCollision, finding.CaseCollision,
	finding.MemberTooLarge, finding.DecompressionBomb, finding.TruncatedArchive, finding.CorruptArchive, finding.LimitExceeded,
	finding.MissingManifest, finding.MalformedManifest, finding.NotABundle, finding.UnsupportedVersion}

// PlanItem is one thing import pushes, finds already there, or refuses.
type PlanItem struct {
	Kind       string `json:"kind"` // blob | manifest | referrer | tag
	Repository string `json:"repository"`
	Digest     string `json:"digest"`
	Tag        string `json:"tag,omitempty"`
	Size       int64  `json:"size"`
	// Action is push, skip (the target has it), or refused (not
	// imported: the bundle's copy did not pass validation, or something
	// it needs did not).
	Action string `json:"action"`
	Reason string `json:"reason,omitempty"`
}

// ReconcileSubject compares, for one subject, the referrers import meant
// to push with what discovery finds on the target afterwards, and checks
// that the referrers it refused are not there.
type ReconcileSubject struct {
	Subject    string   `json:"subject"`
	Repository string   `json:"repository"`
	Method     string   `json:"method"`
	Expected   int      `json:"expected"`
	Found      int      `json:"found"`
	Missing    []string `json:"missing"`
	// Refused are the subject's referrers the import did not push;
	// RefusedPresent those of them the target serves all the same (from
	// an earlier import or another writer).
	Refused        []string `json:"refused"`
	RefusedPresent []string `json:"refused_present"`
}

// ImportResult says what import did.
type ImportResult struct {
	File        string             `json:"file"`
	Target      string             `json:"target"`
	DryRun      bool               `json:"dry_run"`
	Strict      bool               `json:"strict"`
	OK          bool               `json:"ok"`
	Validation  *bundle.Report     `json:"validation"`
	Plan        []PlanItem         `json:"plan"`
	Pushed      int                `json:"pushed"`
	Skipped     int                `json:"skipped"`
	Refused     int                `json:"refused"`
	BytesPushed int64              `json:"bytes_pushed"`
	Reconcile   []ReconcileSubject `json:"reconcile"`
	Findings    []finding.Finding  `json:"findings"`
}

// ImportEvent reports import progress.
type ImportEvent struct {
	Kind   string    `json:"kind"` // validating | planned | pushed | reconciling
	Item   *PlanItem `json:"item,omitempty"`
	Done   int       `json:"done"`
	Total  int       `json:"total"`
	Detail string    `json:"detail,omitempty"`
}

type importOptions struct {
	strict      bool
	dryRun      bool
	concurrency int
	events      func(ImportEvent)
	signatures  bundle.ManifestVerifier
	requireSig  bool
}

// ImportOpt configures one Import.
type ImportOpt func(*importOptions)

// ImportStrict validates the whole bundle first and pushes nothing when
// any problem is found (--strict-referrer-validation).
func ImportStrict(b bool) ImportOpt { return func(o *importOptions) { o.strict = b } }

// ImportDryRun only plans: it asks the target what it has and pushes
// nothing.
func ImportDryRun(b bool) ImportOpt { return func(o *importOptions) { o.dryRun = b } }

// ImportWithSignatureVerifier checks the bundle's signature during
// validation (bundle.WithSignatureVerifier, --verify-key): a missing,
// invalid or foreign signature refuses the whole import, strict or not,
// before anything is sent to the target.
func ImportWithSignatureVerifier(v bundle.ManifestVerifier) ImportOpt {
	return func(o *importOptions) { o.signatures = v }
}

// ImportRequireSignature refuses an unsigned bundle (--require-signature).
func ImportRequireSignature(b bool) ImportOpt { return func(o *importOptions) { o.requireSig = b } }

// ImportWithConcurrency bounds concurrent pushes.
func ImportWithConcurrency(n int) ImportOpt { return func(o *importOptions) { o.concurrency = n } }

// ImportWithEvents receives progress.
func ImportWithEvents(fn func(ImportEvent)) ImportOpt {
	return func(o *importOptions) { o.events = fn }
}

// importState is one run.
type importState struct {
	env    Env
	o      importOptions
	c      *registry.Client
	target ref.Ref // host with optional path prefix in Repository
	rep    bundle.Report
	m      *bundle.Manifest
	docs   *docStore
	layout []descriptor.Descriptor
	res    *ImportResult

	// The plan, built from validated content only.
	manifests map[string]string // pushable manifests: digest -> the member holding it
	blobs     map[string]bool   // pushable blobs (not manifests)
	subjectOf map[string]string // pushable referrer -> its subject
	refused   map[string]string // digest -> why it is not imported
	archive   os.FileInfo       // the file validation read
	// archiveRead counts the compressed bytes the push readers read.
	archiveRead atomic.Int64

	mu        sync.Mutex
	repoOf    map[string][]string // digest -> target repositories needing it
	apiByRepo map[string]bool
}

// Import pushes a bundle into the registry at to (HOST or HOST/PREFIX):
// blobs first, then image manifests, then referrers, skipping what the
// target has (one HEAD each) and checking every digest it pushes.
//
// What is pushed is decided by validation alone (Report.Verified): a
// member whose checksum failed, a referrer filed under the wrong subject,
// anything ambiguous, is never used to decide what to push or tag, and
// nothing is pushed from another copy of it. An image or referrer is
// pushed only if it and everything it needs passed; the rest is refused
// and reported, and reconciliation checks the target does not serve it.
// A hostile archive, or an index.json or manifest.yaml that failed,
// imports nothing, strict or not.
//
// On a target without the referrers API, regclient maintains the fallback
// tag index by read-merge-write, so other writers' entries stay; refdoctor
// checks afterwards that none were lost. A rerun after an interruption
// completes the job.
//
// The archive is read twice, each time as a stream in bounded memory:
// validation, which also collects the (small) manifests, and pushing the
// blobs.
func Import(ctx context.Context, env Env, file, to string, opts ...ImportOpt) (ImportResult, error) {
	env = env.withDefaults()
	o := importOptions{concurrency: 4}
	for _, opt := range opts {
		opt(&o)
	}
	if o.concurrency < 1 {
		o.concurrency = 1
	}
	res := ImportResult{File: file, Target: to, DryRun: o.dryRun, Strict: o.strict, Plan: []PlanItem{}, Reconcile: []ReconcileSubject{}, Findings: []finding.Finding{}}
	host, prefix, _ := strings.Cut(strings.TrimSuffix(to, "/"), "/")
	if err := config.ValidateHost(host); err != nil {
		return res, fmt.Errorf("--to %q: %w (write HOST or HOST/PREFIX)", to, err)
	}
	target, err := ref.NewHost(host)
	if err != nil {
		return res, fmt.Errorf("--to %q: %w", to, err)
	}
	target.Repository = prefix
	docs, err := newDocStore()
	if err != nil {
		return res, err
	}
	defer docs.close()
	st := &importState{env: env, o: o, target: target, res: &res, docs: docs,
		manifests: map[string]string{}, blobs: map[string]bool{}, subjectOf: map[string]string{}, refused: map[string]string{},
		repoOf: map[string][]string{}, apiByRepo: map[string]bool{}}

	// 1. Validate the whole stream, keeping the documents as they go by;
	// only those validation passes are used.
	if st.archive, err = os.Stat(file); err != nil {
		return res, fmt.Errorf("open bundle: %w", err)
	}
	o.emit(ImportEvent{Kind: "validating"})
	phase := time.Now()
	rep, err := bundle.ValidateFile(ctx, file, bundle.WithCheckReferrers(true), bundle.WithDocuments(docs.put),
		bundle.WithSignatureVerifier(o.signatures), bundle.WithRequireSignature(o.requireSig))
	res.Validation = &rep
	if err != nil {
		return res, err
	}
	if err := docs.err(); err != nil {
		return res, err
	}
	st.rep, st.m = rep, rep.Manifest()
	if err := st.refuseWhole(); err != nil {
		return res, err
	}

	// 2. Plan from what validated; nothing touches the target yet.
	if err := st.plan(); err != nil {
		return res, err
	}
	o.emit(ImportEvent{Kind: "planned", Detail: fmt.Sprintf("%d blobs and %d manifests to import", len(st.blobs), len(st.manifests))})
	env.Log.Debug("import validated and planned", "ms", time.Since(phase).Milliseconds(), "blobs", len(st.blobs), "manifests", len(st.manifests))
	phase = time.Now()
	c, err := env.client()
	if err != nil {
		return res, err
	}
	st.c = c

	// 3. Push.
	if err := st.pushBlobs(ctx, file); err != nil {
		return res, err
	}
	env.Log.Debug("import pushed the blobs", "ms", time.Since(phase).Milliseconds(), "bytes", res.BytesPushed,
		"archive_bytes", st.archive.Size(), "archive_read", st.archiveRead.Load())
	phase = time.Now()
	before, err := st.fallbackSnapshot(ctx)
	if err != nil {
		return res, err
	}
	if err := st.pushManifests(ctx); err != nil {
		return res, err
	}
	env.Log.Debug("import pushed the manifests", "ms", time.Since(phase).Milliseconds())
	phase = time.Now()
	if o.dryRun {
		res.OK = res.Refused == 0
		return res, nil
	}
	// 4. Reconcile with what the target now serves.
	o.emit(ImportEvent{Kind: "reconciling"})
	st.checkLostUpdates(ctx, before)
	st.reconcile(ctx)
	env.Log.Debug("import reconciled", "ms", time.Since(phase).Milliseconds())
	res.OK = res.Refused == 0 && finding.Worst(res.Findings) != finding.SeverityError
	return res, nil
}

func (o *importOptions) emit(e ImportEvent) {
	if o.events != nil {
		o.events(e)
	}
}

// refuseWhole decides whether anything at all may be imported.
func (st *importState) refuseWhole() error {
	rep := st.rep
	refuse := func(format string, args ...any) error {
		msg := fmt.Sprintf(format, args...)
		st.res.Findings = append(st.res.Findings, finding.Finding{Severity: finding.SeverityError, Code: finding.ImportRefused,
			Summary: "Nothing was imported: " + msg, Remedy: finding.ImportRefused.Remedy()})
		return fmt.Errorf("%w: %s; nothing was pushed", ErrRefused, msg)
	}
	switch {
	case rep.Unreadable():
		first := firstProblem(rep, func(p bundle.Problem) bool { return true })
		return fmt.Errorf("%w: %w: %s; nothing was pushed", ErrRefused, bundle.ErrMalformedManifest, first)
	case !rep.Signature.OK():
		// Checked before any other member is trusted: a bundle whose
		// signature fails (or is misplaced) imports nothing.
		return refuse("the bundle's signature did not pass (%s: %s)", rep.Signature.Code, rep.Signature.Message)
	case st.o.strict && !rep.OK:
		return refuse("strict validation found %d problem(s), first %s", len(rep.Errors), rep.Errors[0])
	case !rep.Complete:
		return refuse("the archive could not be read to its end (%s)", firstProblem(rep, func(bundle.Problem) bool { return true }))
	}
	if p := firstProblem(rep, func(p bundle.Problem) bool { return slices.Contains(hostileCodes, p.Code) }); p != "" {
		return refuse("the archive is damaged or unsafe (%s)", p)
	}
	for _, path := range []string{bundle.ManifestPath, bundle.IndexPath} {
		if !rep.Verified(path) {
			return refuse("%s did not pass validation (%s), and it decides what is pushed and tagged", path, st.why(path))
		}
	}
	return nil
}

func firstProblem(rep bundle.Report, match func(bundle.Problem) bool) string {
	for _, p := range rep.Errors {
		if match(p) {
			return p.String()
		}
	}
	return ""
}

// why names the validation problem of a member that did not pass.
func (st *importState) why(path string) string {
	for _, p := range st.rep.Errors {
		if p.Path == path || slices.Contains(p.More, path) {
			return string(p.Code)
		}
	}
	if _, ok := st.docs.get(path); !ok && !st.rep.Verified(path) {
		if path == bundle.ManifestPath {
			return "inconsistent"
		}
		return "not verified"
	}
	return "not verified"
}

// plan decides, from validated content only, what is pushed: every
// manifest whose member passed validation and whose references all did,
// every referrer whose referrer file passed (subject, checksum, metadata)
// and whose subject is pushed, every blob one of them needs.
func (st *importState) plan() error {
	raw, _ := st.docs.get(bundle.IndexPath)
	var idx struct {
		Manifests []descriptor.Descriptor `json:"manifests"`
	}
	if err := json.Unmarshal(raw, &idx); err != nil {
		return fmt.Errorf("index.json: %w", err)
	}
	st.layout = idx.Manifests

	// state: 1 visiting, 2 pushable, 3 refused.
	state := map[string]int{}
	var closure func(d string) bool
	closure = func(d string) bool {
		switch state[d] {
		case 1:
			st.refused[d] = "references itself"
			return false
		case 2:
			return true
		case 3:
			return false
		}
		state[d] = 1
		ok := st.visit(d, closure)
		state[d] = map[bool]int{true: 2, false: 3}[ok]
		return ok
	}
	for _, d := range st.layout {
		closure(d.Digest.String())
	}
	// Referrers, subjects first: a referrer of a referrer waits for its
	// subject.
	var todo []pendingReferrer
	for _, s := range st.m.Referrers.Subjects {
		for _, a := range s.Artifacts {
			todo = append(todo, pendingReferrer{s.Subject, a})
		}
	}
	for progress := true; progress && len(todo) > 0; {
		progress = false
		var next []pendingReferrer
		for _, p := range todo {
			if _, subjectPushed := st.manifests[p.subject]; !subjectPushed {
				if _, refused := st.refused[p.subject]; !refused && st.isPendingReferrer(p.subject, todo) {
					next = append(next, p)
					continue
				}
			}
			st.referrer(p.subject, p.a, closure)
			progress = true
		}
		todo = next
	}
	for _, p := range todo { // a cycle among referrers
		st.refused[p.a.Digest] = "its subject " + p.subject + " is not imported"
	}
	// Refused wins: a digest refused anywhere is pushed from nowhere.
	for d := range st.refused {
		delete(st.manifests, d)
		delete(st.subjectOf, d)
	}
	return st.mapRepositories()
}

// pendingReferrer is a referrer waiting for its subject to be planned.
type pendingReferrer struct {
	subject string
	a       bundle.Artifact
}

func (st *importState) isPendingReferrer(d string, todo []pendingReferrer) bool {
	return slices.ContainsFunc(todo, func(p pendingReferrer) bool { return p.a.Digest == d })
}

// visit decides whether the manifest or blob d, and all it references,
// can be pushed.
func (st *importState) visit(d string, closure func(string) bool) bool {
	path := bundle.BlobPath(d)
	if !validSHA256(d) {
		st.refused[d] = "not a sha256 digest"
		return false
	}
	if !st.rep.Verified(path) {
		st.refused[d] = st.why(path) + " " + path
		return false
	}
	raw, isDoc := st.docs.get(path)
	if !isDoc {
		st.blobs[d] = true
		return true
	}
	doc, ok := bundle.ParseOCIDocument(raw)
	if !ok {
		st.blobs[d] = true
		return true
	}
	for _, r := range doc.References() {
		if !closure(r.Digest) {
			st.refused[d] = "it needs " + r.Digest + ", which is not imported"
			return false
		}
	}
	st.manifests[d] = path
	return true
}

// referrer plans one referrer of subject.
func (st *importState) referrer(subject string, a bundle.Artifact, closure func(string) bool) {
	if _, ok := st.manifests[subject]; !ok {
		st.refused[a.Digest] = "its subject " + subject + " is not imported"
		return
	}
	if !st.rep.Verified(a.Path) {
		st.refused[a.Digest] = st.why(a.Path) + " " + a.Path
		return
	}
	raw, ok := st.docs.get(a.Path)
	if !ok || digestOf(raw) != a.Digest {
		st.refused[a.Digest] = "its referrer file was not read"
		return
	}
	doc, ok := bundle.ParseOCIDocument(raw)
	if !ok || doc.Subject == nil || doc.Subject.Digest != subject {
		st.refused[a.Digest] = "SubjectMismatch " + a.Path
		return
	}
	for _, r := range doc.References() {
		if !closure(r.Digest) {
			st.refused[a.Digest] = "it needs " + r.Digest + ", which is not imported"
			return
		}
	}
	st.manifests[a.Digest] = a.Path
	st.subjectOf[a.Digest] = subject
}

func validSHA256(d string) bool {
	h, ok := strings.CutPrefix(d, "sha256:")
	if !ok || len(h) != 64 {
		return false
	}
	_, err := hex.DecodeString(h)
	return err == nil && strings.ToLower(h) == h
}

func digestOf(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// targetRepo maps a source reference's repository under the target.
func (st *importState) targetRepo(source string) (ref.Ref, string, error) {
	src, err := ref.New(source)
	if err != nil {
		return ref.Ref{}, "", fmt.Errorf("bundle reference %q: %w", source, err)
	}
	repo := src.Repository
	if st.target.Repository != "" {
		repo = st.target.Repository + "/" + repo
	}
	r, err := ref.New(st.target.Registry + "/" + repo)
	if err != nil {
		return ref.Ref{}, "", err
	}
	tag := ""
	if src.Digest == "" {
		tag = src.Tag
	}
	return r.SetTag(""), tag, nil
}

// mapRepositories works out which target repository needs each digest:
// an image's closure (children, configs, layers) and its referrers' go to
// the image's repository. Refused digests are mapped too, so that the
// plan can say where they were not pushed.
func (st *importState) mapRepositories() error {
	referrersOf := map[string][]string{}
	for _, s := range st.m.Referrers.Subjects {
		for _, a := range s.Artifacts {
			referrersOf[s.Subject] = append(referrersOf[s.Subject], a.Digest)
		}
	}
	for _, d := range st.layout {
		source := d.Annotations[bundle.AnnotationReference]
		if source == "" {
			continue
		}
		repo, _, err := st.targetRepo(source)
		if err != nil {
			return err
		}
		var walk func(digest string)
		walk = func(digest string) {
			if slices.Contains(st.repoOf[digest], repo.CommonName()) {
				return
			}
			st.repoOf[digest] = append(st.repoOf[digest], repo.CommonName())
			if raw, ok := st.raw(digest); ok {
				if doc, ok := bundle.ParseOCIDocument(raw); ok {
					for _, ref := range doc.References() {
						if ref.Digest != st.subjectOf[digest] {
							walk(ref.Digest)
						}
					}
				}
			}
			for _, r := range referrersOf[digest] {
				walk(r)
			}
		}
		walk(d.Digest.String())
	}
	return nil
}

func (st *importState) add(item PlanItem) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.res.Plan = append(st.res.Plan, item)
	switch item.Action {
	case "push":
		st.res.Pushed++
		st.res.BytesPushed += item.Size
	case "skip":
		st.res.Skipped++
	case "refused":
		st.res.Refused++
	}
	it := item
	st.o.emit(ImportEvent{Kind: "pushed", Item: &it, Done: len(st.res.Plan)})
}

// pushBlobs pushes every blob the plan needs to each repository that
// needs it. It asks each repository for each blob first (one HEAD each,
// concurrently). Then up to concurrency readers (at most
// uploadsPerRegistry) each stream the archive from its start and push the
// blobs they take, in archive order: the blobs are split into runs of
// about equal bytes, one per reader (readerStarts); a reader skips to the
// start of its run, then takes the next blob no other reader has taken
// and skips the others, so that large blobs upload side by side without
// being held anywhere (the cost is inflating part of the archive more
// than once). A blob goes to the first repository that needs it by
// upload and to the others by cross-repository mount.
//
// The bytes are not hashed a second time: validation hashed every one of
// them, the registry checks each blob's digest as it commits the upload,
// and every reader checks that the archive is the very file validation
// read (same device, inode, size and modification time).
func (st *importState) pushBlobs(ctx context.Context, file string) error {
	sizes := map[string]int64{}
	for d := range st.blobs {
		n, ok := st.rep.VerifiedSize(bundle.BlobPath(d))
		if !ok {
			return fmt.Errorf("internal error: blob %s is planned but did not pass validation", d)
		}
		sizes[d] = n
	}
	jobs := map[string]*blobJob{}
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(st.o.concurrency)
	for d := range st.blobs {
		for _, repo := range st.repoOf[d] {
			g.Go(func() error {
				rr, err := ref.New(repo)
				if err != nil {
					return err
				}
				desc := descriptor.Descriptor{Digest: digest.Digest(d), Size: sizes[d]}
				if _, err := st.c.BlobHead(gctx, rr, desc); err == nil {
					st.add(PlanItem{Kind: "blob", Repository: repo, Digest: d, Size: sizes[d], Action: "skip"})
					return nil
				}
				mu.Lock()
				defer mu.Unlock()
				j := jobs[d]
				if j == nil {
					j = &blobJob{digest: d, size: sizes[d]}
					jobs[d] = j
				}
				j.need = append(j.need, rr)
				return nil
			})
		}
	}
	if err := g.Wait(); err != nil {
		return err
	}
	for _, j := range jobs {
		slices.SortFunc(j.need, func(a, b ref.Ref) int { return strings.Compare(a.CommonName(), b.CommonName()) })
	}
	if st.o.dryRun || len(jobs) == 0 {
		for _, j := range jobs {
			for _, rr := range j.need {
				st.add(PlanItem{Kind: "blob", Repository: rr.CommonName(), Digest: j.digest, Size: j.size, Action: "push"})
			}
		}
		return nil
	}
	order := st.archiveOrder(jobs)
	for _, j := range order {
		j.seek, _ = st.rep.VerifiedOffset(bundle.BlobPath(j.digest))
	}
	pr := &pushReaders{jobs: jobs, order: order, unclaimed: int64(len(jobs)),
		seekable: slices.ContainsFunc(order, func(j *blobJob) bool { return j.seek > 0 })}
	g, gctx = errgroup.WithContext(ctx)
	for _, from := range readerStarts(order, min(st.o.concurrency, uploadsPerRegistry)) {
		g.Go(func() error { return st.pushReader(gctx, file, pr, from) })
	}
	if err := g.Wait(); err != nil {
		return err
	}
	if n := pr.left(); n > 0 {
		return fmt.Errorf("%d blob(s) validation saw were not found when the archive was read again; nothing more was pushed", n)
	}
	return st.sameArchive(file, nil)
}

// uploadsPerRegistry is how many requests regclient sends to one registry
// at a time (its default, which refdoctor keeps): more archive readers
// than that would only inflate the archive to wait for a connection.
const uploadsPerRegistry = 3

// archiveOrder lists the blobs to push in the order manifest.yaml gives
// the members, which is the archive's order in every bundle refdoctor
// writes. It is only a hint for sharing the archive among readers:
// every blob is pushed whatever the real order (see pushReader).
func (st *importState) archiveOrder(jobs map[string]*blobJob) []*blobJob {
	out := make([]*blobJob, 0, len(jobs))
	placed := make(map[*blobJob]bool, len(jobs))
	for _, path := range st.m.MemberOrder() {
		if d, ok := blobDigest(path); ok {
			if j := jobs[d]; j != nil && !placed[j] {
				placed[j] = true
				out = append(out, j)
			}
		}
	}
	var rest []*blobJob
	for _, j := range jobs {
		if !placed[j] {
			rest = append(rest, j)
		}
	}
	slices.SortFunc(rest, func(a, b *blobJob) int { return strings.Compare(a.digest, b.digest) })
	return append(out, rest...)
}

// readerStarts splits the blobs, in archive order, into at most readers
// runs of about equal bytes and returns the digest each reader starts
// taking blobs at ("" for the first reader: from the start); a run too
// small to be worth a reader of its own is left to the others. When some
// blobs can be sought (blobJob.seek), runs start only at those: a reader
// starts decompressing right at its blob. Otherwise a reader inflates the
// archive up to its start without taking anything, so the bytes inflated
// in vain are those before each start, about (readers-1)/2 archives in
// all, instead of every reader passing every blob the others took before
// it.
func readerStarts(order []*blobJob, readers int) []string {
	readers = max(1, min(readers, len(order)))
	seekable := slices.ContainsFunc(order, func(j *blobJob) bool { return j.seek > 0 })
	var total int64
	for _, j := range order {
		total += j.size
	}
	starts := []string{""}
	var before int64
	for i, j := range order {
		// A reader starts where the bytes before reach its share, unless
		// what is left is too little to be worth a reader.
		if i > 0 && len(starts) < readers && (j.seek > 0 || !seekable) &&
			before*int64(readers) >= total*int64(len(starts)) &&
			(total-before)*2*int64(readers) >= total {
			starts = append(starts, j.digest)
		}
		before += j.size
	}
	return starts
}

// blobJob is one blob to push and the repositories that lack it.
type blobJob struct {
	digest string
	size   int64
	need   []ref.Ref
	// seek is where a reader can start decompressing the archive to read
	// this blob first (bundle.Report.VerifiedOffset), 0 when it cannot.
	seek    int64
	claimed bool
}

// pushReaders shares the blobs among the readers of the archive.
type pushReaders struct {
	mu        sync.Mutex
	jobs      map[string]*blobJob
	order     []*blobJob // archive order
	next      int        // order[:next] holds no job a reader can seek to untaken
	seekable  bool       // some job can be sought
	unclaimed int64
}

// claim returns the job of blob d when the reader takes it, taken when
// another reader has, and stop once every blob is taken. A reader that
// has pushed a blob goes on to the next one nobody has taken, skipping
// those others took meanwhile (see pushReader).
func (p *pushReaders) claim(d string) (job *blobJob, taken, stop bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.unclaimed == 0 {
		return nil, false, true
	}
	j := p.jobs[d]
	if j == nil {
		return nil, false, false
	}
	if j.claimed {
		return nil, true, false
	}
	j.claimed = true
	p.unclaimed--
	return j, false, false
}

// claimJob takes j if nobody has.
func (p *pushReaders) claimJob(j *blobJob) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if j.claimed {
		return false
	}
	j.claimed = true
	p.unclaimed--
	return true
}

// claimSeekable takes the first untaken blob, in archive order, that a
// reader can seek to, or returns nil when none is left.
func (p *pushReaders) claimSeekable() *blobJob {
	p.mu.Lock()
	defer p.mu.Unlock()
	for ; p.next < len(p.order); p.next++ {
		if j := p.order[p.next]; j.seek > 0 && !j.claimed {
			j.claimed = true
			p.unclaimed--
			p.next++
			return j
		}
	}
	return nil
}

func (p *pushReaders) left() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.unclaimed
}

// errStopReading ends a reader's walk through the archive; errSeek ends
// it to start again at a blob the reader has taken.
var (
	errStopReading = errors.New("stop reading")
	errSeek        = errors.New("seek")
)

// pushReader reads the archive and pushes the blobs it takes: none before
// the blob from (any blob from the start when from is ""), then every blob
// no other reader has taken. The reader that starts at the beginning
// takes whatever it passes untaken, so every blob is pushed whatever the
// archive's order.
//
// Where validation found a gzip member starting with a blob's header
// (bundle.Report.VerifiedOffset: refdoctor gives every blob it stores
// uncompressed a member of its own), a reader starts decompressing right
// there instead of inflating everything before it: at its from blob, and
// whenever it meets a blob another reader has taken, at the first blob
// in archive order nobody has; when none is left, it stops. Neither
// leaves anything behind: the reader that took the blob met goes on
// reading after it. In an archive with no such offsets (zstd), a reader
// that meets a taken blob inflates past it to the next one nobody has
// taken: that costs far less than leaving an upload slot idle while the
// registry, or the network, is the slow part.
func (st *importState) pushReader(ctx context.Context, file string, pr *pushReaders, from string) error {
	f, err := os.Open(file)
	if err != nil {
		return fmt.Errorf("open bundle: %w", err)
	}
	defer f.Close()
	if err := st.sameArchive(file, f); err != nil {
		return err
	}
	// at is the blob the reader has taken and seeks to, nil to read from
	// the start of the archive.
	var at *blobJob
	if j := pr.jobs[from]; j != nil && j.seek > 0 {
		if pr.claimJob(j) {
			at = j
		} else if at = pr.claimSeekable(); at == nil {
			// Another reader skipped ahead to the from blob: what comes
			// after it is that reader's, what comes before the reader's
			// that starts earlier.
			return nil
		}
		from = ""
	}
	for {
		var offset int64
		if at != nil {
			offset = at.seek
		}
		if _, err := f.Seek(offset, io.SeekStart); err != nil {
			return fmt.Errorf("bundle: %w", err)
		}
		first := at
		err = bundle.EachMemberIn(ctx, &countingReader{r: f, n: &st.archiveRead}, func(name string, size int64, r io.Reader) error {
			d, _ := blobDigest(name)
			var j *blobJob
			switch {
			case first != nil:
				if d != first.digest {
					return fmt.Errorf("%s does not start where validation read %s: the archive changed; nothing more was pushed", file, bundle.BlobPath(first.digest))
				}
				j, first = first, nil
			case from != "":
				if d != from {
					if pr.left() == 0 {
						return errStopReading
					}
					return nil
				}
				from = ""
				fallthrough
			default:
				var taken, stop bool
				j, taken, stop = pr.claim(d)
				if stop {
					return errStopReading
				}
				if taken {
					if at = pr.claimSeekable(); at != nil {
						return errSeek
					}
					if pr.seekable {
						// What follows is the reader's that took this blob.
						return errStopReading
					}
				}
				if j == nil {
					return nil
				}
			}
			return st.pushJob(ctx, j, name, size, r)
		})
		if errors.Is(err, errSeek) {
			continue
		}
		if errors.Is(err, errStopReading) {
			return nil
		}
		if err == nil && first != nil {
			return fmt.Errorf("%s ends before %s, where validation read it: the archive changed; nothing more was pushed", file, bundle.BlobPath(first.digest))
		}
		return err
	}
}

// countingReader adds what it reads to n.
type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	k, err := c.r.Read(p)
	c.n.Add(int64(k))
	return k, err
}

// pushJob pushes the blob the reader is at to the first repository that
// lacks it and mounts it into the others.
func (st *importState) pushJob(ctx context.Context, j *blobJob, name string, size int64, r io.Reader) error {
	if size != j.size {
		return fmt.Errorf("%s holds %d bytes, validation read %d: the archive changed; nothing more was pushed", name, size, j.size)
	}
	d := j.digest
	if err := st.putBlob(ctx, j.need[0], d, size, r); err != nil {
		return err
	}
	st.add(PlanItem{Kind: "blob", Repository: j.need[0].CommonName(), Digest: d, Size: size, Action: "push"})
	for _, rr := range j.need[1:] {
		if err := st.c.BlobMount(ctx, j.need[0], rr, descriptor.Descriptor{Digest: digest.Digest(d), Size: size}); err != nil {
			return fmt.Errorf("mount blob %s into %s: %w", d, rr.CommonName(), err)
		}
		st.add(PlanItem{Kind: "blob", Repository: rr.CommonName(), Digest: d, Size: size, Action: "push", Reason: "mounted"})
	}
	return nil
}

// sameArchive checks that the archive (f when open, else the path) is the
// file validation read.
func (st *importState) sameArchive(file string, f *os.File) error {
	var fi os.FileInfo
	var err error
	if f != nil {
		fi, err = f.Stat()
	} else {
		fi, err = os.Stat(file)
	}
	if err != nil {
		return fmt.Errorf("bundle: %w", err)
	}
	if !os.SameFile(fi, st.archive) || fi.Size() != st.archive.Size() || !fi.ModTime().Equal(st.archive.ModTime()) {
		return fmt.Errorf("%s changed while it was imported (it is not the file validation read); nothing more was pushed: validate and import it again", file)
	}
	return nil
}

// manifestOrder lists a repository's pushable manifests so that every
// manifest comes after what it references (children before indexes) and
// referrers come after their subjects.
func (st *importState) manifestOrder(repo string) []string {
	var order []string
	seen := map[string]bool{}
	var visit func(d string)
	visit = func(d string) {
		if seen[d] {
			return
		}
		seen[d] = true
		if raw, ok := st.raw(d); ok {
			if doc, ok := bundle.ParseOCIDocument(raw); ok {
				for _, r := range doc.References() {
					if _, isManifest := st.manifests[r.Digest]; isManifest && r.Digest != st.subjectOf[d] {
						visit(r.Digest)
					}
				}
			}
		}
		if s := st.subjectOf[d]; s != "" {
			visit(s)
		}
		order = append(order, d)
	}
	var digests []string
	for d, repos := range st.repoOf {
		if _, isManifest := st.manifests[d]; isManifest && slices.Contains(repos, repo) {
			digests = append(digests, d)
		}
	}
	sort.Strings(digests)
	for _, d := range digests {
		visit(d)
	}
	return order
}

// pushManifests pushes the pushable manifests and tags, repository by
// repository, and lists what was refused.
func (st *importState) pushManifests(ctx context.Context) error {
	tags := map[string][]string{} // digest -> tags in its repository
	for _, d := range st.layout {
		if tag := d.Annotations[bundle.AnnotationRefName]; tag != "" {
			tags[d.Digest.String()] = append(tags[d.Digest.String()], tag)
		}
	}
	repos := map[string]bool{}
	for _, rs := range st.repoOf {
		for _, r := range rs {
			repos[r] = true
		}
	}
	var names []string
	for r := range repos {
		names = append(names, r)
	}
	sort.Strings(names)
	for _, repoName := range names {
		repo, _ := ref.New(repoName)
		repo = repo.SetTag("")
		noAPI := false
		checkedAPI := false
		for _, d := range st.manifestOrder(repoName) {
			raw, ok := st.raw(d)
			if !ok {
				return fmt.Errorf("manifest %s: its validated copy could not be read back", d)
			}
			kind := "manifest"
			if st.subjectOf[d] != "" {
				kind = "referrer"
			}
			item := PlanItem{Kind: kind, Repository: repoName, Digest: d, Size: int64(len(raw))}
			exists := false
			if _, err := st.c.ManifestHead(ctx, repo.SetDigest(d)); err == nil {
				exists = true
			}
			if kind == "referrer" && !checkedAPI {
				noAPI, checkedAPI = !st.hasReferrersAPI(ctx, repo), true
			}
			// On a target without the API a referrer also needs its entry
			// in the fallback index; an interrupted import may have pushed
			// the manifest but not the index.
			needsIndex := kind == "referrer" && noAPI && exists && !st.inFallbackIndex(ctx, repo, st.subjectOf[d], d)
			switch {
			case exists && !needsIndex:
				item.Action = "skip"
			case st.o.dryRun:
				item.Action = "push"
				if needsIndex {
					item.Reason = "fallback tag index lacks it"
				}
			default:
				if err := st.putManifest(ctx, repo.SetDigest(d), raw); err != nil {
					return err
				}
				item.Action = "push"
				if needsIndex {
					item.Reason = "fallback tag index lacked it"
				}
			}
			st.add(item)
			for _, tag := range tags[d] {
				tagItem := PlanItem{Kind: "tag", Repository: repoName, Digest: d, Tag: tag, Size: int64(len(raw))}
				m, err := st.c.ManifestHead(ctx, repo.SetTag(tag))
				switch {
				case err == nil && m.GetDescriptor().Digest.String() == d:
					tagItem.Action = "skip"
				case st.o.dryRun:
					tagItem.Action = "push"
				default:
					if err := st.putManifest(ctx, repo.SetTag(tag), raw); err != nil {
						return err
					}
					tagItem.Action = "push"
				}
				st.add(tagItem)
			}
		}
	}
	st.listRefused(tags)
	return nil
}

// listRefused adds the refused images, manifests, referrers and tags to
// the plan, each with a NotImported finding: what the operator reads as
// "not imported" is exactly what was not pushed.
func (st *importState) listRefused(tags map[string][]string) {
	subjectOfListed := map[string]string{}
	for _, s := range st.m.Referrers.Subjects {
		for _, a := range s.Artifacts {
			subjectOfListed[a.Digest] = s.Subject
		}
	}
	var ds []string
	for d := range st.refused {
		if _, isBlob := st.blobs[d]; isBlob {
			continue
		}
		ds = append(ds, d)
	}
	sort.Strings(ds)
	for _, d := range ds {
		why := st.refused[d]
		kind, what := "manifest", "manifest "+d
		if s := subjectOfListed[d]; s != "" {
			kind, what = "referrer", "referrer "+d+" of "+s
		} else if !slices.ContainsFunc(st.layout, func(x descriptor.Descriptor) bool { return x.Digest.String() == d }) {
			// A blob or child manifest inside a refused image: the image
			// is what the operator sees refused.
			if !st.isManifestDoc(d) {
				continue
			}
		}
		repos := st.repoOf[d]
		if len(repos) == 0 {
			repos = []string{""}
		}
		for _, repo := range repos {
			st.add(PlanItem{Kind: kind, Repository: repo, Digest: d, Action: "refused", Reason: why})
			for _, tag := range tags[d] {
				st.add(PlanItem{Kind: "tag", Repository: repo, Digest: d, Tag: tag, Action: "refused", Reason: "its manifest is not imported"})
			}
		}
		st.res.Findings = append(st.res.Findings, finding.Finding{Severity: finding.SeverityError, Code: finding.NotImported,
			Summary:  "Not imported: " + what + " (" + why + ")",
			Cause:    "Validation did not pass it, or something it needs, so it was not pushed from any copy in the bundle.",
			Remedy:   finding.NotImported.Remedy(),
			Evidence: d})
	}
}

// raw is a pushable manifest's validated bytes.
func (st *importState) raw(d string) ([]byte, bool) {
	path, ok := st.manifests[d]
	if !ok {
		return nil, false
	}
	return st.docs.get(path)
}

func (st *importState) isManifestDoc(d string) bool {
	_, ok := st.docs.get(bundle.BlobPath(d))
	return ok
}

// putBlob pushes one blob with its digest; the registry checks the bytes
// against it as it commits the upload and refuses a mismatch.
func (st *importState) putBlob(ctx context.Context, r ref.Ref, d string, size int64, src io.Reader) error {
	desc := descriptor.Descriptor{Digest: digest.Digest(d), Size: size}
	if _, err := st.c.BlobPut(ctx, r, desc, src); err != nil {
		return fmt.Errorf("push blob %s to %s: %w", d, r.CommonName(), err)
	}
	return nil
}

// hasReferrersAPI probes a target repository once.
func (st *importState) hasReferrersAPI(ctx context.Context, repo ref.Ref) bool {
	key := repo.CommonName()
	st.mu.Lock()
	v, ok := st.apiByRepo[key]
	st.mu.Unlock()
	if ok {
		return v
	}
	rep, err := probe.Run(ctx, []probe.Target{{Host: repo.Registry, Repository: repo.Repository}},
		append([]probe.Opt{probe.WithConfig(st.env.Config), probe.WithClientOpts(st.env.Client...)}, st.env.Probe...)...)
	v = err == nil && len(rep.Registries) == 1 && rep.Registries[0].ReferrersAPI == probe.Supported
	st.mu.Lock()
	st.apiByRepo[key] = v
	st.mu.Unlock()
	return v
}

// putManifest pushes raw bytes unchanged, so the digest stays the same.
func (st *importState) putManifest(ctx context.Context, r ref.Ref, raw []byte) error {
	// The media type comes from the document (or its shape, when the
	// optional mediaType field is absent) so regclient sends the right
	// Content-Type without re-encoding anything.
	mt := mediatype.OCI1Manifest
	if doc, ok := bundle.ParseOCIDocument(raw); ok {
		switch {
		case doc.MediaType != "":
			mt = doc.MediaType
		case doc.Manifests != nil:
			mt = mediatype.OCI1ManifestList
		}
	}
	m, err := manifest.New(manifest.WithRaw(raw), manifest.WithDesc(descriptor.Descriptor{
		MediaType: mt, Digest: digest.Digest(sha256Digest(raw)), Size: int64(len(raw))}))
	if err != nil {
		return fmt.Errorf("manifest %s: %w", sha256Digest(raw), err)
	}
	if got := m.GetDescriptor().Digest.String(); got != sha256Digest(raw) {
		return fmt.Errorf("manifest %s would be re-encoded as %s; refusing", sha256Digest(raw), got)
	}
	if err := st.c.ManifestPut(ctx, r, m); err != nil {
		return fmt.Errorf("push manifest %s to %s: %w", sha256Digest(raw), r.CommonName(), err)
	}
	return nil
}

// inFallbackIndex reports whether the subject's sha256-<hex> index lists d.
func (st *importState) inFallbackIndex(ctx context.Context, repo ref.Ref, subject, d string) bool {
	return slices.Contains(st.fallbackEntries(ctx, repo, subject), d)
}

func (st *importState) fallbackEntries(ctx context.Context, repo ref.Ref, subject string) []string {
	tag := "sha256-" + strings.TrimPrefix(subject, "sha256:")
	m, err := st.c.ManifestGet(ctx, repo.SetTag(tag))
	if err != nil {
		return nil
	}
	idx, ok := m.(manifest.Indexer)
	if !ok {
		return nil
	}
	list, _ := idx.GetManifestList()
	var out []string
	for _, d := range list {
		out = append(out, d.Digest.String())
	}
	return out
}

type fallbackKey struct{ repo, subject string }

// fallbackSnapshot records the fallback indexes before import, to prove
// afterwards that no other writer's entry was dropped.
func (st *importState) fallbackSnapshot(ctx context.Context) (map[fallbackKey][]string, error) {
	out := map[fallbackKey][]string{}
	if st.o.dryRun {
		return out, nil
	}
	for _, s := range st.m.Referrers.Subjects {
		for _, repoName := range st.repoOf[s.Subject] {
			repo, _ := ref.New(repoName)
			out[fallbackKey{repoName, s.Subject}] = st.fallbackEntries(ctx, repo.SetTag(""), s.Subject)
		}
	}
	return out, nil
}

func (st *importState) checkLostUpdates(ctx context.Context, before map[fallbackKey][]string) {
	for k, prev := range before {
		if len(prev) == 0 {
			continue
		}
		repo, _ := ref.New(k.repo)
		now := st.fallbackEntries(ctx, repo.SetTag(""), k.subject)
		var lost []string
		for _, d := range prev {
			if !slices.Contains(now, d) {
				lost = append(lost, d)
			}
		}
		if len(lost) > 0 {
			st.res.Findings = append(st.res.Findings, finding.Finding{Severity: finding.SeverityError, Code: finding.FallbackIndexLostUpdate,
				Summary:  fmt.Sprintf("The fallback index of %s in %s lost %d entries another writer had put there", k.subject, k.repo, len(lost)),
				Cause:    "Another tool rewrote the sha256-<hex> tag at the same time (read-modify-write without locking).",
				Remedy:   "Re-attach the lost referrers (their digests are in the evidence), then run the import again.",
				Evidence: strings.Join(lost, ", ")})
		}
	}
}

// reconcile runs discovery on the target and compares every subject's
// referrers with what import meant to push, and checks that what it
// refused is not there.
func (st *importState) reconcile(ctx context.Context) {
	expected := map[string][]string{}
	refused := map[string][]string{}
	for _, s := range st.m.Referrers.Subjects {
		for _, a := range s.Artifacts {
			if st.subjectOf[a.Digest] == s.Subject {
				expected[s.Subject] = append(expected[s.Subject], a.Digest)
			} else {
				refused[s.Subject] = append(refused[s.Subject], a.Digest)
			}
		}
	}
	subjects := make([]string, 0, len(st.m.Referrers.Subjects))
	for _, s := range st.m.Referrers.Subjects {
		subjects = append(subjects, s.Subject)
	}
	sort.Strings(subjects)
	for _, subject := range subjects {
		repos := st.repoOf[subject]
		if _, pushed := st.manifests[subject]; !pushed {
			continue // the subject itself is refused: nothing to discover
		}
		for _, repoName := range repos {
			res, err := discovery.Discover(ctx, repoName+"@"+subject, st.env.discoveryOpts()...)
			rs := ReconcileSubject{Subject: subject, Repository: repoName, Method: string(res.Method), Expected: len(expected[subject]),
				Missing: []string{}, Refused: append([]string{}, refused[subject]...), RefusedPresent: []string{}}
			found := map[string]bool{}
			for _, r := range res.Referrers {
				if r.Source == discovery.SourceAPI || r.Source == discovery.SourceTagIndex {
					found[r.Digest] = true
				}
			}
			for _, d := range expected[subject] {
				if found[d] {
					rs.Found++
				} else {
					rs.Missing = append(rs.Missing, d)
				}
			}
			st.res.Reconcile = append(st.res.Reconcile, rs)
			if err != nil || res.Partial || res.Error != "" {
				msg := res.Error
				if err != nil {
					msg = err.Error()
				}
				st.res.Findings = append(st.res.Findings, finding.Finding{Severity: finding.SeverityError, Code: finding.ReconcileIncomplete,
					Summary: fmt.Sprintf("Could not check the referrers of %s in %s: %s", subject, repoName, msg)})
				continue
			}
			for _, d := range refused[subject] {
				if found[d] {
					st.res.Reconcile[len(st.res.Reconcile)-1].RefusedPresent = append(st.res.Reconcile[len(st.res.Reconcile)-1].RefusedPresent, d)
					st.res.Findings = append(st.res.Findings, finding.Finding{Severity: finding.SeverityWarn, Code: finding.NotImported,
						Summary:  fmt.Sprintf("Referrer %s of %s was not imported, but %s already serves it", d, subject, repoName),
						Cause:    "An earlier import or another writer put it there; this import did not push it.",
						Remedy:   "Check where the target's copy came from before trusting it.",
						Evidence: d})
				}
			}
			for _, d := range rs.Missing {
				st.res.Findings = append(st.res.Findings, finding.Finding{Severity: finding.SeverityError, Code: finding.ReferrerMissingAfterImport,
					Summary:  fmt.Sprintf("Referrer %s of %s is not discoverable in %s", d, subject, repoName),
					Cause:    "The target did not list it through " + string(res.Method) + " after the push.",
					Remedy:   "Run the import again; if it stays missing, check the target's referrers support with refdoctor probe.",
					Evidence: d})
			}
		}
	}
}
