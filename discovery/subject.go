package discovery

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/regclient/regclient/types/descriptor"
	"github.com/regclient/regclient/types/manifest"
	"github.com/regclient/regclient/types/mediatype"
	"github.com/regclient/regclient/types/ref"

	"github.com/refdoctor/refdoctor/finding"
	"github.com/refdoctor/refdoctor/probe"
	"github.com/refdoctor/refdoctor/registry"
)

const (
	annotationRefType      = "vnd.docker.reference.type"
	annotationRefDigest    = "vnd.docker.reference.digest"
	attestationManifestRef = "attestation-manifest"
)

// subjectRun is the discovery of one subject (and its platforms and
// referrers of referrers).
type subjectRun struct {
	e               *engine
	res             *Result
	repo            ref.Ref
	requests        atomic.Int64
	resolveRequests atomic.Int64
	mu              sync.Mutex
	visited         map[string]bool
	method          Method
	failed          bool
	// capability is the probe verdict auto chose the method from.
	capability probe.Result
	// confirmed is set once a cached "unsupported" was checked against
	// the registry (one request per subject).
	confirmed     bool
	redirectNoted bool
	lenientNoted  bool
	// mislabelled collects listed artifact types that the manifests
	// contradict, by source, for one finding per subject.
	mislabelled map[Source][]string
	// skipTypes lists referrers as the registry lists them, without
	// reading manifests for their types (fallback-index health compares
	// digests only).
	skipTypes bool
}

func (s *subjectRun) finding(f finding.Finding) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, existing := range s.res.Findings {
		if existing.Code == f.Code && existing.Evidence == f.Evidence && existing.Summary == f.Summary {
			return
		}
	}
	s.res.Findings = append(s.res.Findings, f)
}

// fail records a lookup that could not complete: the result is partial,
// never "none found". A throttle is said once, however many lookups it
// stopped.
func (s *subjectRun) fail(what string, f failure) {
	s.mu.Lock()
	s.res.Partial = s.res.Partial || f.incomplete
	if s.res.Error == "" {
		s.res.Error = what + ": " + f.finding.Summary
	}
	s.failed = true
	// A throttle, or the subject's time running out, stops every lookup
	// after it: the first finding says it.
	if f.throttle || f.finding.Code == finding.Timeout || f.finding.Code == finding.Canceled {
		for _, existing := range s.res.Findings {
			if existing.Code == f.finding.Code {
				s.mu.Unlock()
				return
			}
		}
	}
	s.mu.Unlock()
	if !f.throttle {
		f.finding.Summary = what + ": " + f.finding.Summary
	}
	s.finding(f.finding)
}

func (s *subjectRun) run(ctx context.Context, r ref.Ref) {
	m, ok := s.resolve(ctx, r)
	if !ok {
		return
	}
	s.method = s.chooseMethod(ctx)
	s.res.Method = s.method
	if s.method == "" {
		return
	}
	subject := s.res.Subject.Digest
	s.visited[subject] = true
	var onIndex int
	s.res.Referrers, onIndex = s.list(ctx, subject, s.e.o.depth)
	s.res.Method = s.method
	if m.IsList() {
		s.res.Referrers = append(s.res.Referrers, s.indexAttestations(m)...)
		sortReferrers(s.res.Referrers)
		s.platforms(ctx, m, onIndex)
	}
	s.reportMislabelled()
	if s.failed && s.res.Count() > 0 {
		s.finding(finding.Finding{Severity: finding.SeverityWarn, Code: finding.PartialReferrers,
			Summary: fmt.Sprintf("Only part of the referrers could be listed (%d found before the failure)", s.res.Count()),
			Cause:   "A lookup failed part way; the list is incomplete.",
			Remedy:  "Fix the failure above and run discovery again before exporting."})
	}
}

// resolve turns the reference into a digest and media type.
func (s *subjectRun) resolve(ctx context.Context, r ref.Ref) (manifest.Manifest, bool) {
	var last registry.Exchange
	cctx := registry.WithWatcher(counted(ctx, &s.resolveRequests), func(ex registry.Exchange) { last = ex })
	m, err := s.e.client.ManifestGet(cctx, r)
	if err != nil {
		f := classifyFailure(ctx, err, last)
		if (last.Status == http.StatusNotFound || last.Status == http.StatusOK) && last.Err == nil && ctx.Err() == nil {
			// A 404, or a 200 that is no manifest, from something that may
			// not be a registry at all: ask /v2/ before calling the image
			// missing.
			if nf, not := s.notARegistry(ctx, r.Registry); not {
				s.fail("resolve "+r.CommonName(), failure{incomplete: true, finding: nf})
				return nil, false
			}
		}
		if last.Status == http.StatusNotFound {
			f.finding = finding.Finding{Severity: finding.SeverityError, Code: finding.ImageNotFound,
				Summary: fmt.Sprintf("%s does not exist", r.CommonName()),
				Cause:   "The registry answered 404 for the tag or digest.",
				Remedy:  "Check the reference; list tags with `refdoctor tags " + r.SetTag("").SetDigest("").CommonName() + "`."}
			f.incomplete = false
		}
		s.fail("resolve "+r.CommonName(), f)
		return nil, false
	}
	d := m.GetDescriptor()
	s.res.Subject.Digest = d.Digest.String()
	s.res.Subject.MediaType = d.MediaType
	if r.Digest == "" {
		s.res.Subject.Tag = r.Tag
	} else if d.Digest.String() != r.Digest {
		s.fail("resolve", failure{finding: finding.Finding{Severity: finding.SeverityError, Code: finding.DigestMismatch,
			Summary: fmt.Sprintf("registry served %s for %s", d.Digest, r.Digest), Remedy: "The registry or a proxy altered the manifest; do not export from it."}})
		return nil, false
	}
	return m, true
}

// notARegistry asks host's /v2/ (one request, and its login) whether a
// registry answers there at all.
func (s *subjectRun) notARegistry(ctx context.Context, host string) (finding.Finding, bool) {
	return pingNotARegistry(counted(ctx, &s.resolveRequests), s.e.client, host)
}

// pingNotARegistry pings host's /v2/ and recognises a server that is not
// a registry (probe.NotARegistry).
func pingNotARegistry(ctx context.Context, c *registry.Client, host string) (finding.Finding, bool) {
	var mu sync.Mutex
	var v2 []registry.Exchange
	cctx := registry.WithWatcher(ctx, func(ex registry.Exchange) {
		mu.Lock()
		defer mu.Unlock()
		if p := ex.Requested(); p == "/v2/" || p == "/v2" {
			v2 = append(v2, ex)
		}
	})
	hr, err := ref.NewHost(host)
	if err != nil {
		return finding.Finding{}, false
	}
	_, _ = c.Ping(cctx, hr)
	mu.Lock()
	defer mu.Unlock()
	for i := len(v2) - 1; i >= 0; i-- {
		if !v2[i].IsRedirect() && v2[i].Err == nil {
			return probe.NotARegistry(host, v2[i])
		}
	}
	return finding.Finding{}, false
}

// chooseMethod picks api or tags: forced by the operator, else from the
// registry's probed capability (one probe per registry per run, cached).
func (s *subjectRun) chooseMethod(ctx context.Context) Method {
	if s.e.o.method != MethodAuto {
		return s.e.o.method
	}
	capability := s.e.capability(ctx, s.repo)
	s.capability = capability
	if capability.Cached {
		for _, f := range capability.Findings {
			if f.Code == finding.CachedVerdict {
				f.Summary = "Method chosen from the cached capability: " + f.Summary
				s.finding(f)
			}
		}
	}
	switch {
	case capability.ReferrersAPI == probe.Supported:
		return MethodAPI
	case capability.ReferrersReason == finding.ReferrersWrongContentType:
		// The API answers with a mislabelled index: the referrers live
		// only there, so read it (leniently) rather than the tags.
		return MethodAPI
	case capability.ReferrersAPI == probe.Unsupported:
		return MethodTags
	}
	switch capability.ReferrersReason {
	case finding.NotARegistry, finding.AuthFailed, finding.RateLimited:
		// Nothing else this host says can be judged: say why, and stop.
		for _, f := range capability.Findings {
			if f.Code == capability.ReferrersReason {
				s.fail("capability probe of "+s.repo.Registry, failure{incomplete: true, throttle: f.Code == finding.RateLimited, finding: f})
				return ""
			}
		}
	}
	s.finding(finding.Finding{Severity: finding.SeverityWarn, Code: finding.CapabilityUnknown,
		Summary: fmt.Sprintf("The registry's referrers support could not be probed (%s); trying the API, then the tag schema", capability.ReferrersReason),
		Remedy:  "Run `refdoctor probe " + s.repo.Registry + "/" + s.repo.Repository + "` to see why."})
	return MethodAPI
}

// list finds the referrers of one digest by the chosen method plus the
// cosign tags, resolves their types, filters them, then descends depth
// more levels. It also returns how many referrers the digest has before
// filtering.
func (s *subjectRun) list(ctx context.Context, digest string, depth int) ([]Referrer, int) {
	var out []Referrer
	subj := s.repo.SetDigest(digest)
	var listing *tagListing
	switch s.method {
	case MethodAPI:
		rs, err := s.apiList(ctx, subj)
		if err == nil && !s.e.o.allTags {
			// The API answered: four HEADs tell what the tags can add.
			listing = s.tagHeads(ctx, subj)
		} else {
			// --all-tags, or the API failed and the tag schema may be all
			// there is: list the repository's tags (once per run).
			listing = s.e.tagList(s.repo)
		}
		if err == nil && listing.ok() && s.e.o.method == MethodAuto {
			s.compareWithTagIndex(ctx, subj, listing, rs)
		}
		out = append(out, rs...)
		switch {
		case err == nil:
		case s.e.o.method == MethodAuto && err.fallback:
			s.finding(finding.Finding{Severity: finding.SeverityWarn, Code: finding.APIFellBackToTags,
				Summary: "The referrers API did not answer as an OCI index; used the tag schema",
				Cause:   err.finding.Summary, Evidence: err.finding.Evidence})
			if s.capability.Cached {
				s.dropCached(fmt.Sprintf("the cache said the referrers API is supported, and it now answers: %s", err.finding.Summary))
			}
			out = append(out, s.tagIndexList(ctx, subj, listing)...)
		default:
			s.fail("referrers API for "+ShortDigest(digest), *err)
			if s.e.o.method == MethodAuto && err.incomplete && !err.throttle && err.finding.Code != finding.AuthRefused && listing.ok() && ctx.Err() == nil {
				// The API could not be judged (a 429 at the end of a
				// redirect, a 424): read the tag schema too, so what it
				// holds is listed, while the result stays partial.
				tagged := s.tagIndexList(ctx, subj, listing)
				if len(tagged) > 0 {
					s.finding(finding.Finding{Severity: finding.SeverityWarn, Code: finding.APIFellBackToTags,
						Summary:  fmt.Sprintf("Listed %d referrers of %s from the tag schema while the referrers API could not be read; the API may hold more", len(tagged), ShortDigest(digest)),
						Cause:    "The API's answer says nothing certain, so the result is partial; the fallback tag index was read as clients that fall back do.",
						Remedy:   "Fix the API failure above and run discovery again before exporting.",
						Evidence: err.finding.Summary})
				}
				out = append(out, tagged...)
			}
		}
	case MethodTags:
		listing = s.e.tagList(s.repo)
		out = append(out, s.tagIndexList(ctx, subj, listing)...)
		if len(out) == 0 && s.capability.Cached && s.capability.ReferrersAPI == probe.Unsupported {
			out = append(out, s.confirmCachedUnsupported(ctx, subj)...)
		}
	}
	out = append(out, s.cosignList(ctx, subj, listing)...)
	if other, ok := s.e.referrersRepo(s.repo); ok {
		out = withoutSeen(out, s.listElsewhere(ctx, other, digest))
	}
	total := len(out)
	out = s.filter(out)
	if out == nil {
		out = []Referrer{}
	}
	for i := range out {
		out[i].Subject = digest
		if out[i].Referrers == nil {
			out[i].Referrers = []Referrer{}
		}
		ref := out[i]
		s.e.emit(Event{Kind: EventReferrerFound, Reference: s.res.Subject.Reference, Referrer: &ref})
	}
	if depth > 0 {
		for i := range out {
			s.mu.Lock()
			seen := s.visited[out[i].Digest]
			s.visited[out[i].Digest] = true
			s.mu.Unlock()
			if !seen {
				out[i].Referrers, _ = s.list(ctx, out[i].Digest, depth-1)
			}
		}
	}
	sortReferrers(out)
	return out, total
}

// confirmCachedUnsupported spends one request on the referrers API before
// a cached "unsupported" lets the result say there are no referrers: a
// registry that gained the API (an upgrade, or the host now points
// elsewhere) keeps its referrers there, not in fallback tags.
func (s *subjectRun) confirmCachedUnsupported(ctx context.Context, subj ref.Ref) []Referrer {
	s.mu.Lock()
	done := s.confirmed
	s.confirmed = true
	s.mu.Unlock()
	if done {
		return nil
	}
	age := probe.Age(time.Since(s.capability.CachedAt))
	rs, err := s.apiList(ctx, subj)
	switch {
	case err == nil:
		s.dropCached(fmt.Sprintf("the cache (%s old) said the referrers API is unsupported, and it now answers with an OCI index", age))
		s.method = MethodAPI
		return rs
	case err.fallback:
		s.finding(finding.Finding{Severity: finding.SeverityInfo, Code: finding.CacheConfirmed,
			Summary:  fmt.Sprintf("No referrers of %s by the tag schema; the cached verdict (unsupported, %s old, by %s) was confirmed with one request to the referrers API", ShortDigest(subj.Digest), age, s.capability.CachedBy),
			Evidence: err.finding.Evidence})
		return nil
	default:
		s.fail("confirming the cached verdict", *err)
		return rs
	}
}

// dropCached removes a cached capability verdict that the registry
// contradicted, and says so.
func (s *subjectRun) dropCached(why string) {
	key := s.e.cacheKey(s.repo)
	err := s.e.cache.Delete(key)
	f := finding.Finding{Severity: finding.SeverityWarn, Code: finding.CacheStale,
		Summary:  "The registry changed since its capability was cached: " + why + "; the cached verdict was dropped",
		Cause:    "A registry upgrade, or the host name now pointing at another registry.",
		Remedy:   "Nothing to fix: the next probe stores the new verdict.",
		Evidence: "cache key " + key}
	if err != nil {
		f.Evidence += "; dropping it failed: " + err.Error()
	}
	s.finding(f)
}

func (s *subjectRun) filter(rs []Referrer) []Referrer {
	if len(s.e.o.artifactTypes) == 0 {
		return rs
	}
	var out []Referrer
	for _, r := range rs {
		if slices.Contains(s.e.o.artifactTypes, r.ArtifactType) {
			out = append(out, r)
		}
	}
	return out
}

// resolveType makes a referrer's artifact type and annotations the
// manifest's own where the listing cannot be trusted: a listed type that
// is empty or the empty config's media type (registries that list the
// config type, fallback indexes written without artifactType), and a
// sigstore bundle listed without its predicate annotation. It costs one
// GET per such referrer, counted against the subject.
func (s *subjectRun) resolveType(ctx context.Context, r *Referrer) {
	listed := r.ArtifactType
	needType := listed == "" || listed == finding.MediaTypeEmpty
	needPredicate := finding.IsSigstoreBundle(listed) && r.Annotations[finding.AnnotationSigstorePredicateType] == ""
	if needType || needPredicate {
		s.readManifest(ctx, r)
	}
	if r.ArtifactType != listed {
		s.noteMislabelled(r.Source, listed, r.ArtifactType)
	}
	r.Category = finding.Categorize(r.ArtifactType, r.Annotations)
	r.PredicateType = finding.Predicate(r.ArtifactType, r.Annotations)
}

// readManifest takes artifactType (else the config media type, as the
// spec defines a referrer's type) and annotations from the referrer's
// manifest.
func (s *subjectRun) readManifest(ctx context.Context, r *Referrer) {
	m, err := s.e.client.ManifestGet(counted(ctx, &s.requests), s.repoOf(*r).SetDigest(r.Digest))
	if err != nil {
		return
	}
	raw, err := m.RawBody()
	if err != nil {
		return
	}
	if t := artifactTypeOf(raw); t != "" {
		r.ArtifactType = t
	}
	if a, ok := m.(manifest.Annotator); ok {
		if ann, err := a.GetAnnotations(); err == nil {
			for k, v := range ann {
				if _, listed := r.Annotations[k]; !listed {
					r.Annotations[k] = v
				}
			}
		}
	}
}

func (s *subjectRun) noteMislabelled(src Source, listed, real string) {
	if listed == "" {
		listed = "(none)"
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mislabelled == nil {
		s.mislabelled = map[Source][]string{}
	}
	s.mislabelled[src] = append(s.mislabelled[src], listed+" -> "+real)
}

// reportMislabelled raises one finding per listing whose artifact types
// the manifests contradicted.
func (s *subjectRun) reportMislabelled() {
	s.mu.Lock()
	m := s.mislabelled
	s.mu.Unlock()
	for _, src := range []Source{SourceAPI, SourceTagIndex} {
		pairs := m[src]
		if src == SourceTagIndex {
			// An index entry without a type is FallbackIndexNoArtifactType,
			// said where the index is read; only contradictions remain.
			pairs = slices.DeleteFunc(slices.Clone(pairs), func(p string) bool {
				return strings.HasPrefix(p, "(none) -> ") || strings.HasPrefix(p, finding.MediaTypeEmpty+" -> ")
			})
		}
		if len(pairs) == 0 {
			continue
		}
		counts := map[string]int{}
		for _, p := range pairs {
			counts[p]++
		}
		var ev []string
		for p, n := range counts {
			ev = append(ev, fmt.Sprintf("%s (%d)", p, n))
		}
		sort.Strings(ev)
		where := "referrers API"
		code := finding.ArtifactTypeMislabelled
		if src == SourceTagIndex {
			where = "fallback tag index"
		}
		s.finding(finding.Finding{Severity: finding.SeverityWarn, Code: code,
			Summary:  fmt.Sprintf("The registry's %s lists %d referrer(s) with an artifactType their manifests contradict; refdoctor used each manifest's own type", where, len(pairs)),
			Cause:    "Some registries list the config media type (application/vnd.oci.empty.v1+json) or nothing as artifactType (go-containerregistry's registry, Azure Container Registry, fallback indexes written by cosign). Clients that trust the listing see the wrong categories, and --artifact-type filters miss these referrers.",
			Remedy:   finding.ArtifactTypeMislabelled.Remedy(),
			Evidence: "listed -> manifest: " + strings.Join(ev, "; ")})
	}
}

func referrerFromDescriptor(d descriptor.Descriptor, src Source, tag string) Referrer {
	ann := map[string]string{}
	for k, v := range d.Annotations {
		ann[k] = v
	}
	return Referrer{Digest: d.Digest.String(), MediaType: d.MediaType, ArtifactType: d.ArtifactType, Size: d.Size,
		Annotations: ann, Source: src, Tag: tag, Category: finding.Categorize(d.ArtifactType, ann),
		PredicateType: finding.Predicate(d.ArtifactType, ann)}
}

// indexAttestations lists buildkit attestation manifests inside an index:
// not referrers, but the operator must see them next to the referrers.
func (s *subjectRun) indexAttestations(m manifest.Manifest) []Referrer {
	idx, ok := m.(manifest.Indexer)
	if !ok {
		return nil
	}
	list, _ := idx.GetManifestList()
	var out []Referrer
	for _, d := range list {
		if d.Annotations[annotationRefType] != attestationManifestRef {
			continue
		}
		r := referrerFromDescriptor(d, SourceIndexAttestation, "")
		r.Subject = d.Annotations[annotationRefDigest]
		if r.ArtifactType == "" {
			r.ArtifactType = "application/vnd.in-toto+json"
		}
		r.Category = finding.CategoryAttestation
		r.Referrers = []Referrer{}
		out = append(out, r)
	}
	if len(out) > 0 && len(s.e.o.artifactTypes) > 0 {
		out = s.filter(out)
	}
	return out
}

// platforms looks at each platform manifest of an index, or tells the
// operator to when the index itself has nothing attached (onIndex counts
// the index's referrers before any filter).
func (s *subjectRun) platforms(ctx context.Context, m manifest.Manifest, onIndex int) {
	idx, ok := m.(manifest.Indexer)
	if !ok {
		return
	}
	list, _ := idx.GetManifestList()
	var children []descriptor.Descriptor
	for _, d := range list {
		if d.Annotations[annotationRefType] == attestationManifestRef {
			continue
		}
		children = append(children, d)
	}
	indexHas := onIndex
	if !s.e.o.platforms {
		if indexHas == 0 && len(children) > 0 && !s.failed {
			s.finding(finding.Finding{Severity: finding.SeverityWarn, Code: finding.NoReferrersOnIndex,
				Summary: "Nothing is attached to the index; referrers may be attached to its platform manifests",
				Cause:   "Referrers attach to one digest: a multi-platform index and each platform manifest are different digests.",
				Remedy:  "Run again with --platforms to look at every platform manifest."})
		}
		return
	}
	withRefs := []string{}
	for _, d := range children {
		plat := "unknown"
		if d.Platform != nil {
			plat = d.Platform.String()
		}
		s.mu.Lock()
		s.visited[d.Digest.String()] = true
		s.mu.Unlock()
		rs, _ := s.list(ctx, d.Digest.String(), s.e.o.depth)
		s.res.Platforms = append(s.res.Platforms, PlatformResult{Platform: plat, Digest: d.Digest.String(), Referrers: rs})
		if len(rs) > 0 {
			withRefs = append(withRefs, fmt.Sprintf("%s (%s): %d", plat, ShortDigest(d.Digest.String()), len(rs)))
		}
	}
	switch {
	case indexHas == 0 && len(withRefs) > 0 && !s.failed:
		s.finding(finding.Finding{Severity: finding.SeverityWarn, Code: finding.ReferrersOnPlatformsOnly,
			Summary:  "The index has no referrers, but platform manifests do",
			Cause:    "The tools that attached them used a platform digest, not the index digest.",
			Remedy:   "Export the platform digests too (or attach to the index): exports by the index digest miss these.",
			Evidence: strings.Join(withRefs, "; ")})
	case indexHas > 0 && len(withRefs) > 0:
		s.finding(finding.Finding{Severity: finding.SeverityInfo, Code: finding.ReferrersOnPlatforms,
			Summary:  "Platform manifests carry referrers of their own",
			Cause:    "Referrers attach to one digest; these are not listed on the index.",
			Remedy:   "Include them when exporting (bundle export walks all platforms).",
			Evidence: strings.Join(withRefs, "; ")})
	}
}

// ShortDigest keeps the algorithm and 12 hex characters of a digest, as
// operators read and type them.
func ShortDigest(d string) string {
	alg, hex, ok := strings.Cut(d, ":")
	if !ok || len(hex) < 12 {
		return d
	}
	return alg + ":" + hex[:12]
}

// failure is a lookup that did not complete, classified for the operator.
type failure struct {
	finding    finding.Finding
	incomplete bool
	// fallback is true when the API is absent (so auto may use tags).
	fallback bool
	// throttle is true when a registry's throttle stopped the lookup: one
	// finding says it for every lookup it stopped.
	throttle bool
}

// hostOfURL is the host:port of a recorded URL.
func hostOfURL(u string) string {
	_, rest, ok := strings.Cut(u, "://")
	if !ok {
		return ""
	}
	host, _, _ := strings.Cut(rest, "/")
	return host
}

// classifyFailure explains a failed request from the last reply seen.
func classifyFailure(ctx context.Context, err error, last registry.Exchange) failure {
	var te *registry.ThrottledError
	if errors.As(context.Cause(ctx), &te) {
		return failure{incomplete: true, throttle: true, finding: probe.ThrottledFinding(te)}
	}
	host := hostOfURL(last.URL)
	if last.Err != nil || (last.Status == 0 && err != nil) {
		e := last.Err
		if e == nil {
			e = err
		}
		if cerr := context.Cause(ctx); cerr != nil {
			e = cerr
		}
		code, summary, cause, remedy := probe.ClassifyTransportError(host, e)
		return failure{incomplete: true, finding: finding.Finding{Severity: finding.SeverityError, Code: code, Summary: summary, Cause: cause, Remedy: remedy, Evidence: e.Error()}}
	}
	if !last.Complete() {
		if last.TooLarge {
			return failure{incomplete: true, finding: probe.TooLargeFinding("The reply to "+last.Requested(), last.Status, last.ContentType, last.Size)}
		}
		code, summary, cause, remedy := probe.ClassifyTransportError(host, last.BodyErr)
		return failure{incomplete: true, finding: finding.Finding{Severity: finding.SeverityError, Code: code,
			Summary: fmt.Sprintf("the reply to %s (HTTP %d) did not arrive whole: %s", last.Requested(), last.Status, summary),
			Cause:   cause, Remedy: remedy, Evidence: last.BodyError}}
	}
	switch last.Status {
	case http.StatusTooManyRequests:
		b, _ := registry.BudgetOf(last, last.Start)
		when := "the rate-limit window"
		if !b.Until.IsZero() {
			when = b.Until.UTC().Format(time.RFC3339)
		}
		return failure{incomplete: true, finding: finding.Finding{Severity: finding.SeverityError, Code: finding.RateLimited,
			Summary:  fmt.Sprintf("rate limited (429) until %s: unknown, not \"no referrers\"", when),
			Cause:    "The registry throttled the request and the wait it asked for did not fit in the timeout.",
			Remedy:   fmt.Sprintf("Run again after %s, log in for a higher limit, or lower max_concurrent_discoveries.", when),
			Evidence: fmt.Sprintf("HTTP 429, Retry-After %q, ratelimit-remaining %q", last.Headers["Retry-After"], last.Headers["RateLimit-Remaining"])}}
	case http.StatusUnauthorized, http.StatusForbidden:
		return failure{incomplete: true, finding: finding.Finding{Severity: finding.SeverityError, Code: finding.AuthRefused,
			Summary: fmt.Sprintf("refused (%d): no login, or one without pull access; discovery cannot be judged", last.Status),
			Cause:   "The login is missing or lacks pull permission on the repository.",
			Remedy:  fmt.Sprintf("docker login %s (or a credential helper) with pull access, then retry.", orHost(host))}}
	}
	msg := "request failed"
	if err != nil {
		msg = err.Error()
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return failure{incomplete: true, finding: finding.Finding{Severity: finding.SeverityError, Code: finding.Timeout, Summary: "timed out",
			Remedy: "Raise --timeout or export.referrer_discovery.timeout_seconds."}}
	}
	return failure{incomplete: last.Status >= 500 || last.Status == 0, finding: finding.Finding{Severity: finding.SeverityError, Code: finding.RequestFailed,
		Summary: fmt.Sprintf("HTTP %d", last.Status), Evidence: msg}}
}

func orHost(h string) string {
	if h == "" {
		return "HOST"
	}
	return h
}

// isIndexMediaType covers OCI and Docker lists.
func isIndexMediaType(mt string) bool {
	return mt == mediatype.OCI1ManifestList || mt == mediatype.Docker2ManifestList
}
