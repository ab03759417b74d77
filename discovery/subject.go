package discovery

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

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
// never "none found".
func (s *subjectRun) fail(what string, f failure) {
	s.mu.Lock()
	s.res.Partial = s.res.Partial || f.incomplete
	if s.res.Error == "" {
		s.res.Error = what + ": " + f.finding.Summary
	}
	s.failed = true
	s.mu.Unlock()
	f.finding.Summary = what + ": " + f.finding.Summary
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
	s.res.Referrers = s.list(ctx, subject, s.e.o.depth)
	if m.IsList() {
		s.res.Referrers = append(s.res.Referrers, s.indexAttestations(m)...)
		sortReferrers(s.res.Referrers)
		s.platforms(ctx, m)
	}
	if s.failed && len(s.res.Referrers) > 0 {
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
		if last.Status == http.StatusNotFound {
			f.finding = finding.Finding{Severity: finding.SeverityError, Code: finding.ImageNotFound,
				Summary: fmt.Sprintf("%s does not exist", r.CommonName()),
				Cause:   "The registry answered 404 for the tag or digest.",
				Remedy:  "Check the reference; list tags with `regctl tag ls " + r.SetTag("").CommonName() + "`."}
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

// chooseMethod picks api or tags: forced by the operator, else from the
// registry's probed capability (one probe per registry per run, cached).
func (s *subjectRun) chooseMethod(ctx context.Context) Method {
	if s.e.o.method != MethodAuto {
		return s.e.o.method
	}
	capability := s.e.capability(ctx, s.repo)
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
	s.finding(finding.Finding{Severity: finding.SeverityWarn, Code: finding.CapabilityUnknown,
		Summary: "The registry's referrers support could not be probed; trying the API, then the tag schema",
		Remedy:  "Run `refdoctor probe " + s.repo.Registry + "/" + s.repo.Repository + "` to see why."})
	return MethodAPI
}

// list finds the referrers of one digest by the chosen method plus the
// cosign tags, then descends depth more levels.
func (s *subjectRun) list(ctx context.Context, digest string, depth int) []Referrer {
	var out []Referrer
	subj := s.repo.SetDigest(digest)
	listing := s.e.tagList(s.repo)
	switch s.method {
	case MethodAPI:
		rs, err := s.apiList(ctx, subj)
		if err == nil {
			out = append(out, rs...)
			if listing.ok() && s.e.o.method == MethodAuto {
				s.compareWithTagIndex(ctx, subj, listing, rs)
			}
		} else if s.e.o.method == MethodAuto && err.fallback {
			s.finding(finding.Finding{Severity: finding.SeverityWarn, Code: finding.APIFellBackToTags,
				Summary: "The referrers API did not answer as an OCI index; used the tag schema",
				Cause:   err.finding.Summary, Evidence: err.finding.Evidence})
			out = append(out, s.tagIndexList(ctx, subj, listing)...)
		} else {
			s.fail("referrers API for "+ShortDigest(digest), *err)
		}
	case MethodTags:
		out = append(out, s.tagIndexList(ctx, subj, listing)...)
	}
	out = append(out, s.cosignList(ctx, subj, listing)...)
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
				out[i].Referrers = s.list(ctx, out[i].Digest, depth-1)
			}
		}
	}
	sortReferrers(out)
	return out
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

// fillArtifactType fetches a referrer manifest whose descriptor lacks the
// artifactType (older fallback index writers omitted it) and takes the
// manifest's artifactType, else its config media type, as the spec says.
func (s *subjectRun) fillArtifactType(ctx context.Context, r *Referrer) {
	if r.ArtifactType != "" {
		return
	}
	m, err := s.e.client.ManifestGet(counted(ctx, &s.requests), s.repo.SetDigest(r.Digest))
	if err != nil {
		return
	}
	if raw, err := m.RawBody(); err == nil {
		r.ArtifactType = artifactTypeOf(raw)
	}
	r.Category = finding.Categorize(r.ArtifactType, r.Annotations)
}

func referrerFromDescriptor(d descriptor.Descriptor, src Source, tag string) Referrer {
	ann := d.Annotations
	if ann == nil {
		ann = map[string]string{}
	}
	return Referrer{Digest: d.Digest.String(), MediaType: d.MediaType, ArtifactType: d.ArtifactType, Size: d.Size,
		Annotations: ann, Source: src, Tag: tag, Category: finding.Categorize(d.ArtifactType, ann)}
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
// operator to when the index itself has nothing attached.
func (s *subjectRun) platforms(ctx context.Context, m manifest.Manifest) {
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
	indexHas := 0
	for _, r := range s.res.Referrers {
		if r.Source != SourceIndexAttestation {
			indexHas++
		}
	}
	if !s.e.o.platforms {
		if indexHas == 0 && len(children) > 0 {
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
		rs := s.list(ctx, d.Digest.String(), s.e.o.depth)
		s.res.Platforms = append(s.res.Platforms, PlatformResult{Platform: plat, Digest: d.Digest.String(), Referrers: rs})
		if len(rs) > 0 {
			withRefs = append(withRefs, fmt.Sprintf("%s (%s): %d", plat, ShortDigest(d.Digest.String()), len(rs)))
		}
	}
	switch {
	case indexHas == 0 && len(withRefs) > 0:
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
}

// classifyFailure explains a failed request from the last reply seen.
func classifyFailure(ctx context.Context, err error, last registry.Exchange) failure {
	if last.Err != nil || (last.Status == 0 && err != nil) {
		e := last.Err
		if e == nil {
			e = err
		}
		if cerr := context.Cause(ctx); cerr != nil {
			e = cerr
		}
		code, summary, cause, remedy := probe.ClassifyTransportError(e)
		return failure{incomplete: true, finding: finding.Finding{Severity: finding.SeverityError, Code: code, Summary: summary, Cause: cause, Remedy: remedy, Evidence: e.Error()}}
	}
	switch last.Status {
	case http.StatusTooManyRequests:
		return failure{incomplete: true, finding: finding.Finding{Severity: finding.SeverityError, Code: finding.RateLimited,
			Summary:  "rate limited (429): unknown, not \"no referrers\"",
			Cause:    "The registry throttled the request and the wait it asked for did not fit in the timeout.",
			Remedy:   "Wait for the rate-limit window (Retry-After " + last.Headers["Retry-After"] + "s), log in for a higher limit, or lower max_concurrent_discoveries.",
			Evidence: fmt.Sprintf("HTTP 429, ratelimit-remaining %q", last.Headers["RateLimit-Remaining"])}}
	case http.StatusUnauthorized, http.StatusForbidden:
		return failure{incomplete: true, finding: finding.Finding{Severity: finding.SeverityError, Code: finding.AuthRefused,
			Summary: fmt.Sprintf("refused (%d)", last.Status),
			Cause:   "The login is missing or lacks pull permission on the repository.",
			Remedy:  "docker login to the registry (or a credential helper) with pull access, then retry."}}
	}
	msg := "request failed"
	if err != nil {
		msg = err.Error()
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return failure{incomplete: true, finding: finding.Finding{Severity: finding.SeverityError, Code: finding.Timeout, Summary: "timed out",
			Remedy: "Raise --timeout or export.referrer_discovery.timeout_seconds."}}
	}
	return failure{incomplete: last.Status >= 500, finding: finding.Finding{Severity: finding.SeverityError, Code: finding.RequestFailed,
		Summary: fmt.Sprintf("HTTP %d", last.Status), Evidence: msg}}
}

// isIndexMediaType covers OCI and Docker lists.
func isIndexMediaType(mt string) bool {
	return mt == mediatype.OCI1ManifestList || mt == mediatype.Docker2ManifestList
}
