package mirror

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"runtime/debug"
	"sort"
	"strings"
	"sync"

	"github.com/regclient/regclient/types/manifest"
	"github.com/regclient/regclient/types/ref"
	"golang.org/x/sync/errgroup"

	"github.com/refdoctor/refdoctor/discovery"
	"github.com/refdoctor/refdoctor/finding"
	"github.com/refdoctor/refdoctor/registry"
)

// Compare answers the operator's question after a copy, a replication or
// a pull-through cache: which of the source's referrers reached the
// mirror. Each side is discovered on its own (its own method: API, tag
// schema, cosign tags, in-index attestations), referrers are matched by
// digest per subject (per platform, per referrer with depth), and every
// referrer the destination lacks gets the likely cause from what the
// destination was seen to hold. A side that could not be read completely
// makes the comparison incomplete, and then nothing is called missing.

// Pair is one source image and its mirror.
type Pair struct {
	Source      string `json:"source"`
	Destination string `json:"destination"`
}

// CompareSide is one side of a comparison as it was read.
type CompareSide struct {
	// Reference is what was looked up: for the destination, DEST with the
	// source's tag or digest when DEST named a repository.
	Reference string           `json:"reference"`
	Digest    string           `json:"digest"`
	MediaType string           `json:"media_type"`
	Method    discovery.Method `json:"method"`
	// Complete is true when every lookup of this side answered (an image
	// that is not there at all is a complete answer).
	Complete bool `json:"complete"`
	// Found is false when the image itself is not there (404).
	Found    bool   `json:"found"`
	Error    string `json:"error,omitempty"`
	Requests int    `json:"requests"`
	// ReferrersRepository is the referrers repository looked at too.
	ReferrersRepository string `json:"referrers_repository,omitempty"`
}

// CompareReferrer is one referrer in a comparison.
type CompareReferrer struct {
	Digest       string           `json:"digest"`
	ArtifactType string           `json:"artifact_type"`
	Category     finding.Category `json:"category"`
	// Source is how the referrer was found at the source (for extras: at
	// the destination); DestinationSource how at the destination.
	Source            discovery.Source `json:"source"`
	DestinationSource discovery.Source `json:"destination_source,omitempty"`
	Tag               string           `json:"tag,omitempty"`
	// Repository names the referrers repository the referrer was found in
	// (empty: next to the image).
	Repository string `json:"repository,omitempty"`
}

// MissingReferrer is a source referrer the destination lacks, with the
// likely cause.
type MissingReferrer struct {
	CompareReferrer
	// Cause says in words what was observed; CauseCode names it (a
	// finding code, with Fix as the next step).
	Cause     string       `json:"cause"`
	CauseCode finding.Code `json:"cause_code"`
	Fix       string       `json:"fix"`
	// PresentByDigest is true when the destination has the manifest by
	// digest although it does not list it.
	PresentByDigest bool `json:"present_by_digest"`
}

// RewrittenReferrer is a source referrer whose place at the destination
// holds another digest of the same artifact type: re-signed, re-generated
// or rewritten by the copy.
type RewrittenReferrer struct {
	CompareReferrer
	DestinationDigest string `json:"destination_digest"`
}

// UnknownReferrer is a referrer read at one side whose presence at the
// other could not be told, as that side was not read completely.
type UnknownReferrer struct {
	CompareReferrer
	// SeenAt is the side it was read at: source or destination.
	SeenAt string `json:"seen_at"`
}

// SubjectCompare compares the referrers of one subject.
type SubjectCompare struct {
	// Subject is the source's digest; DestinationSubject the digest the
	// destination holds in its place (empty when it holds none).
	Subject            string `json:"subject"`
	DestinationSubject string `json:"destination_subject"`
	// Platform names a platform manifest of an index (--platforms).
	Platform string `json:"platform"`
	// Parent is, for referrers of referrers (--depth), the subject this
	// subject (itself a referrer) is attached to.
	Parent    string              `json:"parent,omitempty"`
	Both      []CompareReferrer   `json:"both"`
	Missing   []MissingReferrer   `json:"missing"`
	Extra     []CompareReferrer   `json:"extra"`
	Rewritten []RewrittenReferrer `json:"rewritten"`
	// Unknown lists, when a side was not read completely, the referrers
	// read at one side and not (or not yet) at the other: whether they
	// are missing could not be told.
	Unknown []UnknownReferrer `json:"unknown"`
}

// UnreadSide says which side (and which of its subjects) could not be
// read completely, and why.
type UnreadSide struct {
	Side      string   `json:"side"`
	Reference string   `json:"reference"`
	Subjects  []string `json:"subjects"`
	Error     string   `json:"error"`
}

// CompareResult is one source image against its mirror.
type CompareResult struct {
	Source      CompareSide      `json:"source"`
	Destination CompareSide      `json:"destination"`
	Subjects    []SubjectCompare `json:"subjects"`
	// Same: both sides read completely and every referrer is at both.
	Same bool `json:"same"`
	// Complete: both sides were read completely. When false, nothing is
	// listed as missing, extra or rewritten; Unread says what was not read.
	Complete  bool         `json:"complete"`
	Unread    []UnreadSide `json:"unread"`
	Missing   int          `json:"missing"`
	Rewritten int          `json:"rewritten"`
	Extra     int          `json:"extra"`
	BothCount int          `json:"both"`
	// Unknown counts the referrers whose presence could not be told.
	Unknown  int               `json:"unknown"`
	Findings []finding.Finding `json:"findings"`
	Outcome  finding.Outcome   `json:"outcome"`
}

// CompareReport is many pairs compared at once.
type CompareReport struct {
	Results []CompareResult `json:"results"`
	Same    bool            `json:"same"`
}

// Outcome is the worst outcome of the report's pairs.
func (r CompareReport) Outcome() finding.Outcome {
	worst := finding.OutcomeOK
	rank := map[finding.Outcome]int{finding.OutcomeOK: 0, finding.OutcomeWarn: 1, finding.OutcomeFailed: 2, finding.OutcomeIncomplete: 3}
	for _, x := range r.Results {
		if rank[x.Outcome] > rank[worst] {
			worst = x.Outcome
		}
	}
	return worst
}

// CompareOpt sets one comparison setting.
type CompareOpt func(*compareOptions)

type compareOptions struct {
	platforms     bool
	depth         int
	artifactTypes []string
	sourceRepo    *ref.Ref
	destRepo      *ref.Ref
}

// CompareWithPlatforms also compares every platform manifest of an index.
func CompareWithPlatforms(b bool) CompareOpt { return func(o *compareOptions) { o.platforms = b } }

// CompareWithDepth also compares referrers of referrers, n levels down.
func CompareWithDepth(n int) CompareOpt { return func(o *compareOptions) { o.depth = n } }

// CompareWithArtifactTypes compares only referrers of these types.
func CompareWithArtifactTypes(t ...string) CompareOpt {
	return func(o *compareOptions) { o.artifactTypes = append(o.artifactTypes, t...) }
}

// CompareWithSourceReferrersRepo also looks for the source's referrers in
// repo (--referrers-repo).
func CompareWithSourceReferrersRepo(repo ref.Ref) CompareOpt {
	return func(o *compareOptions) { o.sourceRepo = &repo }
}

// CompareWithDestinationReferrersRepo also looks for the destination's
// referrers in repo (--dest-referrers-repo).
func CompareWithDestinationReferrersRepo(repo ref.Ref) CompareOpt {
	return func(o *compareOptions) { o.destRepo = &repo }
}

// DestinationReference is what is looked up at the destination: dest
// itself when it names a tag or digest, else the repository dest with the
// source's digest (when the source names one) or tag.
func DestinationReference(source, dest string) (string, error) {
	src, err := discovery.ParseReference(source)
	if err != nil {
		return "", err
	}
	last := dest[strings.LastIndex(dest, "/")+1:]
	if strings.ContainsAny(last, ":@") {
		if _, err := discovery.ParseReference(dest); err != nil {
			return "", err
		}
		return dest, nil
	}
	repo, err := discovery.ParseRepository(dest)
	if err != nil {
		return "", err
	}
	name := repo.Registry + "/" + repo.Repository
	if src.Digest != "" {
		return name + "@" + src.Digest, nil
	}
	return name + ":" + src.Tag, nil
}

// ParsePairs reads a pairs file: one "SOURCE DEST" per line; blank lines
// and lines starting with # are skipped. A line that is not two
// references is an error naming the line.
func ParsePairs(r io.Reader) ([]Pair, error) {
	var out []Pair
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 2 {
			return nil, fmt.Errorf("%w: line %d: %q: write SOURCE DEST (two references separated by spaces)", discovery.ErrBadReference, n, line)
		}
		if _, err := DestinationReference(f[0], f[1]); err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		out = append(out, Pair{Source: f[0], Destination: f[1]})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading pairs: %w", err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no pairs in the file (write one SOURCE DEST per line)", discovery.ErrBadReference)
	}
	return out, nil
}

// Compare compares each pair's referrers: the sources and the
// destinations are each discovered in one run (shared capability probes
// and tag lists), concurrently, and then every pair is judged. The error
// is for bad references and a canceled context; registry trouble is in
// each result (incomplete, exit 3 in the CLI).
func Compare(ctx context.Context, env Env, pairs []Pair, opts ...CompareOpt) (CompareReport, error) {
	env = env.withDefaults()
	var o compareOptions
	for _, opt := range opts {
		opt(&o)
	}
	rep := CompareReport{Results: make([]CompareResult, len(pairs))}
	if len(pairs) == 0 {
		return rep, fmt.Errorf("%w: nothing to compare", discovery.ErrBadReference)
	}
	srcRefs := make([]string, len(pairs))
	dstRefs := make([]string, len(pairs))
	for i, p := range pairs {
		d, err := DestinationReference(p.Source, p.Destination)
		if err != nil {
			return rep, err
		}
		srcRefs[i], dstRefs[i] = p.Source, d
	}
	common := []discovery.Opt{discovery.WithPlatforms(o.platforms), discovery.WithDepth(o.depth), discovery.WithArtifactTypes(o.artifactTypes...)}
	srcOpts := append([]discovery.Opt(nil), common...)
	if o.sourceRepo != nil {
		srcOpts = append(srcOpts, discovery.WithReferrersRepository(*o.sourceRepo))
	}
	dstOpts := append([]discovery.Opt(nil), common...)
	if o.destRepo != nil {
		dstOpts = append(dstOpts, discovery.WithReferrersRepository(*o.destRepo))
	}
	var srcRep, dstRep discovery.Report
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() (err error) {
		srcRep, err = discovery.DiscoverMany(gctx, srcRefs, env.discoveryOpts(srcOpts...)...)
		return err
	})
	g.Go(func() (err error) {
		dstRep, err = discovery.DiscoverMany(gctx, dstRefs, env.discoveryOpts(dstOpts...)...)
		return err
	})
	if err := g.Wait(); err != nil {
		return rep, err
	}
	c, err := env.client()
	if err != nil {
		return rep, err
	}
	g, gctx = errgroup.WithContext(ctx)
	g.SetLimit(max(1, env.Config.Export.ReferrerDiscovery.MaxConcurrentDiscoveries))
	for i := range pairs {
		g.Go(func() (err error) {
			defer func() {
				if p := recover(); p != nil {
					err = fmt.Errorf("comparing %s with %s panicked: %v\n%s", srcRefs[i], dstRefs[i], p, debug.Stack())
				}
			}()
			cr := &compareRun{c: c, o: o, pair: pairs[i], destRef: dstRefs[i], src: srcRep.Results[i], dst: dstRep.Results[i],
				fallbackTags: map[string]*onceResult{}}
			rep.Results[i] = cr.run(gctx)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return rep, err
	}
	rep.Same = true
	for _, r := range rep.Results {
		rep.Same = rep.Same && r.Same
	}
	return rep, ctx.Err()
}

// unit is one subject whose referrers were looked up on one side: the
// image, a platform manifest, or a referrer (with depth).
type unit struct {
	digest, platform, parent string
	referrers                []discovery.Referrer
}

// units lists what one side's discovery looked up.
func units(r discovery.Result, depth int) (top unit, platforms map[string]unit, byReferrer map[string]unit, order []unit) {
	platforms, byReferrer = map[string]unit{}, map[string]unit{}
	top = unit{digest: r.Subject.Digest, referrers: r.Referrers}
	order = append(order, top)
	var walk func(parent string, rs []discovery.Referrer, level int)
	walk = func(parent string, rs []discovery.Referrer, level int) {
		if level > depth {
			return
		}
		for _, x := range rs {
			if x.Source == discovery.SourceIndexAttestation {
				continue
			}
			if _, seen := byReferrer[x.Digest]; seen {
				continue
			}
			u := unit{digest: x.Digest, parent: parent, referrers: x.Referrers}
			byReferrer[x.Digest] = u
			order = append(order, u)
			walk(x.Digest, x.Referrers, level+1)
		}
	}
	walk(top.digest, r.Referrers, 1)
	for _, p := range r.Platforms {
		u := unit{digest: p.Digest, platform: p.Platform, referrers: p.Referrers}
		platforms[p.Platform] = u
		order = append(order, u)
		walk(p.Digest, p.Referrers, 1)
	}
	return top, platforms, byReferrer, order
}

type onceResult struct {
	once sync.Once
	ok   bool
	err  error
}

// compareRun judges one pair once both sides were discovered.
type compareRun struct {
	c       *registry.Client
	o       compareOptions
	pair    Pair
	destRef string
	src     discovery.Result
	dst     discovery.Result
	res     CompareResult

	mu           sync.Mutex
	fallbackTags map[string]*onceResult
}

// sideRead tells whether a side was read completely, and whether its
// image is there at all.
func sideRead(r discovery.Result) (complete, found bool) {
	notFound := false
	for _, f := range r.Findings {
		switch f.Code {
		case finding.ImageNotFound:
			notFound = true
		case finding.CosignTagsUnchecked:
			// Cosign tags are referrers a copy may miss: unread ones leave
			// the comparison open.
			return false, r.Subject.Digest != ""
		}
	}
	switch {
	case r.Partial:
		return false, r.Subject.Digest != ""
	case notFound && r.Subject.Digest == "":
		return true, false
	case r.Error != "":
		return false, r.Subject.Digest != ""
	}
	return true, true
}

func side(r discovery.Result, ref string, repo *ref.Ref) CompareSide {
	s := CompareSide{Reference: ref, Digest: r.Subject.Digest, MediaType: r.Subject.MediaType, Method: r.Method,
		Error: r.Error, Requests: r.Requests + r.ResolveRequests}
	s.Complete, s.Found = sideRead(r)
	if repo != nil {
		s.ReferrersRepository = repo.Registry + "/" + repo.Repository
	}
	return s
}

func (cr *compareRun) finding(f finding.Finding) {
	cr.res.Findings = append(cr.res.Findings, f)
}

func (cr *compareRun) run(ctx context.Context) CompareResult {
	cr.res = CompareResult{Source: side(cr.src, cr.pair.Source, cr.o.sourceRepo), Destination: side(cr.dst, cr.destRef, cr.o.destRepo),
		Subjects: []SubjectCompare{}, Unread: []UnreadSide{}, Findings: []finding.Finding{}}
	res := &cr.res
	res.Complete = res.Source.Complete && res.Destination.Complete
	// What each side's discovery said that bears on the comparison.
	for _, sd := range []struct {
		name string
		r    discovery.Result
	}{{"source", cr.src}, {"destination", cr.dst}} {
		for _, f := range sd.r.Findings {
			if f.Severity == finding.SeverityInfo || (sd.name == "destination" && (f.Code == finding.ImageNotFound || f.Code == finding.NoReferrersOnIndex)) {
				continue
			}
			f.Summary = sd.name + " " + sd.r.Subject.Reference + ": " + f.Summary
			cr.finding(f)
		}
	}
	if f, ok := cacheWithoutReferrers(cr.dst); ok {
		cr.finding(f)
	}
	if res.Source.Complete && !res.Source.Found {
		res.Outcome = finding.OutcomeFailed
		return *res
	}
	for _, sd := range []struct {
		name string
		s    CompareSide
		r    discovery.Result
	}{{"source", res.Source, cr.src}, {"destination", res.Destination, cr.dst}} {
		if sd.s.Complete {
			continue
		}
		u := UnreadSide{Side: sd.name, Reference: sd.r.Subject.Reference, Subjects: []string{}, Error: sd.r.Error}
		if u.Error == "" {
			u.Error = "a lookup did not answer completely (see findings)"
		}
		if sd.r.Subject.Digest != "" {
			u.Subjects = append(u.Subjects, sd.r.Subject.Digest)
		}
		for _, p := range sd.r.Platforms {
			u.Subjects = append(u.Subjects, p.Digest)
		}
		res.Unread = append(res.Unread, u)
		cr.finding(finding.Finding{Severity: finding.SeverityError, Code: finding.CompareIncomplete,
			Summary:  fmt.Sprintf("The %s (%s) could not be read completely: %s; nothing is called missing", sd.name, sd.r.Subject.Reference, u.Error),
			Cause:    "A lookup failed, was throttled or timed out; what was not read cannot be compared.",
			Remedy:   finding.CompareIncomplete.Remedy(),
			Evidence: strings.Join(u.Subjects, ", ")})
	}

	_, _, _, sOrder := units(cr.src, cr.o.depth)
	var dTop *unit
	dPlat, dRef := map[string]unit{}, map[string]unit{}
	if res.Destination.Found && cr.dst.Subject.Digest != "" {
		t, p, r, _ := units(cr.dst, cr.o.depth)
		dTop, dPlat, dRef = &t, p, r
	}
	type pairing struct {
		s    unit
		d    *unit
		kind string // image, platform, referrer
	}
	var pairs []pairing
	matched := map[string]bool{} // destination platforms matched
	for i, s := range sOrder {
		switch {
		case i == 0:
			pairs = append(pairs, pairing{s, dTop, "image"})
		case s.platform != "":
			var d *unit
			if u, ok := dPlat[s.platform]; ok {
				d = &u
				matched[s.platform] = true
			} else if dTop != nil && dTop.digest == s.digest {
				d = dTop
			}
			pairs = append(pairs, pairing{s, d, "platform"})
		default:
			var d *unit
			if u, ok := dRef[s.digest]; ok {
				d = &u
			}
			pairs = append(pairs, pairing{s, d, "referrer"})
		}
	}
	for name, u := range dPlat {
		if !matched[name] && len(u.referrers) > 0 {
			pairs = append(pairs, pairing{unit{platform: name}, &u, "destination-platform"})
		}
	}

	// Both, missing and extra by digest, per pairing.
	subjects := make([]SubjectCompare, len(pairs))
	both := map[string]bool{}
	for i, p := range pairs {
		sc := SubjectCompare{Subject: p.s.digest, Platform: p.s.platform, Parent: p.s.parent,
			Both: []CompareReferrer{}, Missing: []MissingReferrer{}, Extra: []CompareReferrer{}, Rewritten: []RewrittenReferrer{}, Unknown: []UnknownReferrer{}}
		at := map[string]discovery.Referrer{}
		if p.d != nil {
			sc.DestinationSubject = p.d.digest
			for _, x := range p.d.referrers {
				at[x.Digest] = x
			}
		}
		here := map[string]bool{}
		for _, x := range p.s.referrers {
			here[x.Digest] = true
			if y, ok := at[x.Digest]; ok {
				cref := compareRef(x)
				cref.DestinationSource = y.Source
				sc.Both = append(sc.Both, cref)
				both[x.Digest] = true
				continue
			}
			sc.Missing = append(sc.Missing, MissingReferrer{CompareReferrer: compareRef(x)})
		}
		if p.d != nil {
			for _, y := range p.d.referrers {
				if !here[y.Digest] {
					sc.Extra = append(sc.Extra, compareRef(y))
				}
			}
		}
		subjects[i] = sc
	}
	for i := range subjects {
		sc := &subjects[i]
		// A destination referrer compared with two source subjects (a
		// platform-only copy: the image and its platform) is extra in one
		// only if it is at both in neither.
		sc.Extra = deleteWhere(sc.Extra, func(x CompareReferrer) bool { return both[x.Digest] })
		if !res.Complete {
			for _, m := range sc.Missing {
				sc.Unknown = append(sc.Unknown, UnknownReferrer{CompareReferrer: m.CompareReferrer, SeenAt: "source"})
			}
			for _, x := range sc.Extra {
				sc.Unknown = append(sc.Unknown, UnknownReferrer{CompareReferrer: x, SeenAt: "destination"})
			}
			sc.Missing, sc.Extra = []MissingReferrer{}, []CompareReferrer{}
			continue
		}
		if sc.DestinationSubject != "" && sc.DestinationSubject == sc.Subject {
			cr.pairRewritten(sc)
		}
	}
	if res.Complete {
		var g errgroup.Group
		g.SetLimit(4)
		for i, p := range pairs {
			for j := range subjects[i].Missing {
				g.Go(func() error {
					cr.explain(ctx, p.s, p.d, p.kind, &subjects[i].Missing[j])
					return nil
				})
			}
		}
		_ = g.Wait()
		for i := range subjects {
			cr.fallbackIndexFix(&subjects[i])
		}
	}
	for i, sc := range subjects {
		if p := pairs[i]; len(p.s.referrers) == 0 && (p.d == nil || len(p.d.referrers) == 0) && p.kind != "image" {
			continue // nothing attached on either side
		}
		sortRefs(sc.Both)
		sort.Slice(sc.Missing, func(a, b int) bool { return sc.Missing[a].Digest < sc.Missing[b].Digest })
		sortRefs(sc.Extra)
		sort.Slice(sc.Unknown, func(a, b int) bool { return sc.Unknown[a].Digest < sc.Unknown[b].Digest })
		res.BothCount += len(sc.Both)
		res.Missing += len(sc.Missing)
		res.Extra += len(sc.Extra)
		res.Rewritten += len(sc.Rewritten)
		res.Unknown += len(sc.Unknown)
		res.Subjects = append(res.Subjects, sc)
		cr.subjectFindings(sc)
	}
	switch {
	case !res.Complete:
		res.Outcome = finding.OutcomeIncomplete
	case res.Missing > 0 || res.Rewritten > 0:
		res.Outcome = finding.OutcomeFailed
	case res.Extra > 0:
		res.Outcome = finding.OutcomeWarn
	default:
		res.Outcome = finding.OutcomeOK
	}
	res.Same = res.Complete && res.Missing+res.Extra+res.Rewritten == 0
	return *res
}

func compareRef(x discovery.Referrer) CompareReferrer {
	return CompareReferrer{Digest: x.Digest, ArtifactType: x.ArtifactType, Category: x.Category, Source: x.Source, Tag: x.Tag, Repository: x.Repository}
}

func sortRefs(rs []CompareReferrer) {
	sort.Slice(rs, func(i, j int) bool { return rs[i].Digest < rs[j].Digest })
}

func deleteWhere[T any](s []T, drop func(T) bool) []T {
	out := s[:0]
	for _, x := range s {
		if !drop(x) {
			out = append(out, x)
		}
	}
	return out
}

// pairRewritten pairs a missing referrer with an extra one of the same
// artifact type on the same subject: the destination holds another
// version (re-signed, re-generated, converted by the copy).
func (cr *compareRun) pairRewritten(sc *SubjectCompare) {
	for i := 0; i < len(sc.Missing); i++ {
		m := sc.Missing[i]
		for j, e := range sc.Extra {
			if e.ArtifactType == m.ArtifactType && e.Category == m.Category {
				sc.Rewritten = append(sc.Rewritten, RewrittenReferrer{CompareReferrer: m.CompareReferrer, DestinationDigest: e.Digest})
				sc.Missing = append(sc.Missing[:i], sc.Missing[i+1:]...)
				sc.Extra = append(sc.Extra[:j], sc.Extra[j+1:]...)
				i--
				break
			}
		}
	}
}

// explain fills a missing referrer's cause from what the destination was
// seen to hold, at a cost of at most two HEAD requests (the manifest by
// digest, the subject's fallback tag).
func (cr *compareRun) explain(ctx context.Context, s unit, d *unit, kind string, m *MissingReferrer) {
	set := func(code finding.Code, cause string) {
		m.CauseCode, m.Cause = code, cause
		m.Fix = cr.runnable(code.Remedy())
	}
	destRepo, err := ref.New(cr.destRef)
	if err != nil {
		set(finding.ReferrerMissingAtMirror, "not listed at the destination")
		return
	}
	destRepo = destRepo.SetTag("").SetDigest("")
	switch {
	case !cr.res.Destination.Found:
		set(finding.ImageMissingAtMirror, fmt.Sprintf("the image itself is not at the destination (%s answered 404)", cr.destRef))
		return
	case d == nil && kind == "platform":
		set(finding.ReferrerSubjectRewritten, fmt.Sprintf("platform %s (%s) is not at the destination: %s", s.platform, discovery.ShortDigest(s.digest), cr.destinationHolds()))
		return
	case d == nil:
		set(finding.ReferrerMissingAtMirror, fmt.Sprintf("its subject, the referrer %s, is missing at the destination", discovery.ShortDigest(s.parent)))
		return
	case d.digest != s.digest:
		set(finding.ReferrerSubjectRewritten, fmt.Sprintf("the destination holds %s where the source has %s: referrers attach to one digest, and the copy rewrote the manifest (%s)",
			discovery.ShortDigest(d.digest), discovery.ShortDigest(s.digest), cr.rewriteKind(ctx, &s, d)))
		return
	case m.Repository != "":
		set(finding.ReferrerInOtherRepository, fmt.Sprintf("at the source it is kept in the referrers repository %s, not next to the image; the copy brought what is next to the image", m.Repository))
		return
	case m.Source == discovery.SourceCosignTag:
		set(finding.CosignTagNotCopied, fmt.Sprintf("at the source these exist only under cosign's tags (sha256-%s.sig, .att, .sbom), which the copy did not bring: cosign tags are no OCI referrers, and copies with --referrers alone skip them", strings.TrimPrefix(s.digest, "sha256:")[:12]+"…"))
		return
	}
	present, perr := cr.exists(ctx, destRepo.SetDigest(m.Digest))
	m.PresentByDigest = present
	if perr != nil {
		set(finding.ReferrerMissingAtMirror, "not listed at the destination; the cause could not be checked: "+perr.Error())
		return
	}
	if cr.dst.Method == discovery.MethodTags {
		full := "sha256-" + strings.TrimPrefix(d.digest, "sha256:")
		hasTag, terr := cr.fallbackTag(ctx, destRepo.SetTag(full))
		tag := full[:len("sha256-")+12] + "…"
		switch {
		case terr != nil:
			set(finding.ReferrerMissingAtMirror, "not listed at the destination (no referrers API there); whether its fallback tag exists could not be checked: "+terr.Error())
		case !hasTag && present:
			set(finding.MirrorNoFallbackTag, fmt.Sprintf("the manifest was copied, but the destination has no referrers API and no fallback tag %s lists it: the copy tool wrote no tag schema (it trusted the registry's OCI-Subject header or API, as clients did on ECR in 2024)", tag))
			// The fix names every such referrer of the subject; see
			// fallbackIndexFix.
		case !hasTag:
			set(finding.MirrorNoFallbackTag, fmt.Sprintf("the destination has no referrers API and no fallback tag %s: the copy brought no referrers, and nothing wrote the tag schema", tag))
		case present:
			set(finding.FallbackIndexMissingEntry, fmt.Sprintf("the manifest is at the destination, but the fallback index %s lacks it: an update of the index was lost (two writers at once, or a writer that replaced the index)", tag))
			m.Fix = cr.runnable("Push the referrer again so that the index is rewritten with it: regctl image copy --referrers --force-recursive SOURCE DEST (a plain copy skips manifests the destination has), or `refdoctor bundle import`, which merges the index.")
		default:
			set(finding.ReferrerMissingAtMirror, fmt.Sprintf("not copied: the destination's fallback index %s lists other referrers of this subject, not this one", tag))
		}
		return
	}
	if present {
		set(finding.ReferrerNotListed, "the manifest is at the destination by digest, but its referrers API does not list it (the registry did not index its subject: pushed before the API was on, or by a path that ignores subject)")
		return
	}
	set(finding.ReferrerMissingAtMirror, "not copied: the copy brought the image without its referrers (crane copy, skopeo copy and docker push copy images only)")
}

// fallbackIndexFix gives the referrers that are at the destination by
// digest but in no fallback index, on a destination without the API,
// one command that writes the index with all of them: copying again does
// not help, as every client that trusts the registry's OCI-Subject header
// writes no index, and copies skip manifests that are there.
func (cr *compareRun) fallbackIndexFix(sc *SubjectCompare) {
	var digests []string
	for _, m := range sc.Missing {
		if m.CauseCode == finding.MirrorNoFallbackTag && m.PresentByDigest {
			digests = append(digests, m.Digest)
		}
	}
	if len(digests) == 0 {
		return
	}
	dest, err := ref.New(cr.destRef)
	if err != nil {
		return
	}
	cmd := "regctl index create " + dest.Registry + "/" + dest.Repository + ":sha256-" + strings.TrimPrefix(sc.DestinationSubject, "sha256:")
	for _, d := range digests {
		cmd += " --digest " + d
	}
	fix := "Write the fallback index the copy did not write (copying again does not help: clients that trust the registry's OCI-Subject header write none, and skip manifests that are there): " + cmd +
		". Better still, have the registry serve the referrers API it announces."
	for i := range sc.Missing {
		if m := &sc.Missing[i]; m.CauseCode == finding.MirrorNoFallbackTag && m.PresentByDigest {
			m.Fix = fix
		}
	}
}

// runnable puts the pair's references into a remedy's commands.
func (cr *compareRun) runnable(remedy string) string {
	return strings.NewReplacer("SOURCE", cr.pair.Source, "DEST", cr.destRef).Replace(remedy)
}

// destinationHolds says what the destination's reference names.
func (cr *compareRun) destinationHolds() string {
	if cr.dst.Subject.Digest == "" {
		return "the destination's image could not be resolved"
	}
	kind := "a single manifest"
	if isIndex(cr.dst.Subject.MediaType) {
		kind = "an index without this platform"
	}
	return fmt.Sprintf("%s names %s, %s (a platform-only or filtered copy)", cr.destRef, discovery.ShortDigest(cr.dst.Subject.Digest), kind)
}

func isIndex(mt string) bool {
	return mt == "application/vnd.oci.image.index.v1+json" || mt == "application/vnd.docker.distribution.manifest.list.v2+json"
}

// rewriteKind tells how the destination's subject relates to the source's:
// one platform of the source's index (a platform-only copy), or another
// manifest altogether (a conversion, a rebuilt index).
func (cr *compareRun) rewriteKind(ctx context.Context, s, d *unit) string {
	for _, p := range cr.src.Platforms {
		if p.Digest == d.digest {
			return "a platform-only copy: the destination holds the source's " + p.Platform + " manifest"
		}
	}
	if isIndex(cr.src.Subject.MediaType) && s.digest == cr.src.Subject.Digest {
		src, err := ref.New(cr.pair.Source)
		if err == nil {
			m, err := cr.c.ManifestGet(ctx, src.SetTag("").SetDigest(s.digest))
			if idx, ok := m.(manifest.Indexer); err == nil && ok {
				list, _ := idx.GetManifestList()
				for _, c := range list {
					if c.Digest.String() == d.digest {
						plat := "one"
						if c.Platform != nil {
							plat = "the " + c.Platform.String()
						}
						return "a platform-only copy: the destination holds " + plat + " manifest of the source's index"
					}
				}
			}
		}
	}
	if d.digest == cr.dst.Subject.Digest && cr.dst.Subject.MediaType != cr.src.Subject.MediaType && s.digest == cr.src.Subject.Digest {
		return fmt.Sprintf("a converting copy: %s at the source, %s at the destination", cr.src.Subject.MediaType, cr.dst.Subject.MediaType)
	}
	return "a converting copy, a rebuilt index, or the tag was pushed again at one side"
}

// exists HEADs a manifest: false on a complete 404, an error when the
// registry did not answer.
func (cr *compareRun) exists(ctx context.Context, r ref.Ref) (bool, error) {
	var last registry.Exchange
	hctx := registry.WithWatcher(ctx, func(ex registry.Exchange) { last = ex })
	_, err := cr.c.ManifestHead(hctx, r)
	switch {
	case err == nil:
		return true, nil
	case last.Status == http.StatusNotFound:
		return false, nil
	case last.Status != 0:
		return false, fmt.Errorf("HEAD %s answered %d", r.CommonName(), last.Status)
	}
	return false, fmt.Errorf("HEAD %s: %w", r.CommonName(), err)
}

// fallbackTag HEADs a fallback tag once per comparison.
func (cr *compareRun) fallbackTag(ctx context.Context, r ref.Ref) (bool, error) {
	cr.mu.Lock()
	o := cr.fallbackTags[r.Tag]
	if o == nil {
		o = &onceResult{}
		cr.fallbackTags[r.Tag] = o
	}
	cr.mu.Unlock()
	o.once.Do(func() { o.ok, o.err = cr.exists(ctx, r) })
	return o.ok, o.err
}

// subjectFindings turns one subject's differences into findings: one per
// cause of missing referrers, one for rewritten, one for extra.
func (cr *compareRun) subjectFindings(sc SubjectCompare) {
	where := discovery.ShortDigest(sc.Subject)
	if sc.Platform != "" {
		where += " (" + sc.Platform + ")"
	}
	if sc.Subject == "" {
		where = "destination platform " + sc.Platform
	}
	byCause := map[finding.Code][]MissingReferrer{}
	var order []finding.Code
	for _, m := range sc.Missing {
		if _, ok := byCause[m.CauseCode]; !ok {
			order = append(order, m.CauseCode)
		}
		byCause[m.CauseCode] = append(byCause[m.CauseCode], m)
	}
	for _, code := range order {
		ms := byCause[code]
		var ev []string
		for _, m := range ms {
			ev = append(ev, fmt.Sprintf("%s %s (%s)", m.Category, discovery.ShortDigest(m.Digest), m.ArtifactType))
		}
		cr.finding(finding.Finding{Severity: finding.SeverityError, Code: code,
			Summary:  fmt.Sprintf("%d referrer(s) of %s missing at the destination", len(ms), where),
			Cause:    upperFirst(ms[0].Cause) + ".",
			Remedy:   ms[0].Fix,
			Evidence: strings.Join(ev, "; ")})
	}
	if len(sc.Rewritten) > 0 {
		var ev []string
		for _, r := range sc.Rewritten {
			ev = append(ev, fmt.Sprintf("%s %s -> %s (%s)", r.Category, discovery.ShortDigest(r.Digest), discovery.ShortDigest(r.DestinationDigest), r.ArtifactType))
		}
		cr.finding(finding.Finding{Severity: finding.SeverityError, Code: finding.ReferrerRewritten,
			Summary:  fmt.Sprintf("%d referrer(s) of %s are at the destination under another digest", len(sc.Rewritten), where),
			Cause:    "The destination holds a referrer of the same artifact type with another digest: re-signed, re-generated, or converted by the copy. Verification against the source's signature or SBOM digest fails.",
			Remedy:   finding.ReferrerRewritten.Remedy(),
			Evidence: strings.Join(ev, "; ")})
	}
	if len(sc.Extra) > 0 {
		var ev []string
		for _, x := range sc.Extra {
			ev = append(ev, fmt.Sprintf("%s %s (%s)", x.Category, discovery.ShortDigest(x.Digest), x.ArtifactType))
		}
		cr.finding(finding.Finding{Severity: finding.SeverityInfo, Code: finding.ReferrerExtraAtMirror,
			Summary:  fmt.Sprintf("%d referrer(s) of %s are at the destination only", len(sc.Extra), where),
			Cause:    "Attached at the mirror (a mirror-side signature or scan), or deleted at the source since the copy.",
			Remedy:   finding.ReferrerExtraAtMirror.Remedy(),
			Evidence: strings.Join(ev, "; ")})
	}
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// cacheWithoutReferrers recognises, from the destination's referrers
// replies, a pull-through cache that does not proxy referrers: Azure
// Container Registry's cache rules answer 424 Failed Dependency with an
// error naming the cache rule and the upstream's status.
func cacheWithoutReferrers(r discovery.Result) (finding.Finding, bool) {
	for _, f := range r.Findings {
		text := f.Summary + " " + f.Evidence
		is424 := strings.Contains(text, "HTTP 424") || strings.Contains(text, "unexpected 424")
		cacheRule := strings.Contains(strings.ToLower(text), "cache rule")
		if !is424 && !cacheRule {
			continue
		}
		return finding.Finding{Severity: finding.SeverityError, Code: finding.MirrorCacheNoReferrers,
			Summary:  fmt.Sprintf("The destination %s is a pull-through cache that does not pass referrers through", r.Subject.Reference),
			Cause:    "Its referrers endpoint answers 424 Failed Dependency, wrapping the upstream's reply (Azure Container Registry cache rules since April 2026 answer so for ghcr.io, whose /referrers is a 303): the cache cannot fetch the upstream's referrers, and what it holds cannot be judged.",
			Remedy:   finding.MirrorCacheNoReferrers.Remedy(),
			Evidence: f.Evidence}, true
	}
	return finding.Finding{}, false
}
