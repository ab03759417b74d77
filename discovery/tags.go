package discovery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"

	"github.com/regclient/regclient/types/manifest"
	"github.com/regclient/regclient/types/ref"
	"github.com/regclient/regclient/types/referrer"

	"github.com/refdoctor/refdoctor/finding"
	"github.com/refdoctor/refdoctor/probe"
	"github.com/refdoctor/refdoctor/registry"
)

// tagListing is one repository's tag list, fetched once per run and shared
// by every subject in the repository.
type tagListing struct {
	tags    map[string]bool
	list    []string
	failure *failure
}

func (t *tagListing) ok() bool { return t != nil && t.failure == nil }

func (t *tagListing) has(tag string) bool { return t.ok() && t.tags[tag] }

// tagList lists a repository's tags once per run; the requests count as
// shared, not against any one subject.
func (e *engine) tagList(repo ref.Ref) *tagListing {
	key := repo.Registry + "/" + repo.Repository
	e.mu.Lock()
	ov, ok := e.tagLists[key]
	if !ok {
		ov = &onceValue[*tagListing]{}
		e.tagLists[key] = ov
	}
	e.mu.Unlock()
	ov.once.Do(func() {
		if te := e.throttledHost(repo.Registry); te != nil {
			ov.v = &tagListing{failure: &failure{incomplete: true, throttle: true, finding: probe.ThrottledFinding(te)}}
			return
		}
		// The shared list lives by the run's context, not by the first
		// subject's timeout, so one slow subject cannot fail the others.
		lctx, cancel := context.WithTimeout(e.runCtx, e.o.timeout)
		defer cancel()
		lctx, stop := registry.StopWhenThrottled(lctx)
		defer stop()
		ov.v = listTags(counted(lctx, &e.shared), e.client, repo)
		var te *registry.ThrottledError
		if errors.As(context.Cause(lctx), &te) {
			e.noteThrottled(repo.Registry, te)
		}
	})
	return ov.v
}

func listTags(ctx context.Context, c *registry.Client, repo ref.Ref) *tagListing {
	var last registry.Exchange
	cctx := registry.WithWatcher(ctx, func(ex registry.Exchange) {
		if strings.HasSuffix(ex.Requested(), "/tags/list") && !ex.IsRedirect() {
			last = ex
		}
	})
	tl, err := c.TagList(cctx, repo)
	if err != nil {
		if (last.Status == http.StatusNotFound || last.Status == http.StatusOK) && last.Complete() && ctx.Err() == nil {
			// A 404 or a 200 that is no tag list, maybe from something
			// that is not a registry: ask /v2/ before calling the
			// repository missing.
			if nf, not := pingNotARegistry(ctx, c, repo.Registry); not {
				return &tagListing{failure: &failure{incomplete: true, finding: nf}}
			}
		}
		f := classifyFailure(ctx, err, last)
		f.finding.Summary = "listing tags of " + repo.CommonName() + ": " + f.finding.Summary
		return &tagListing{failure: &f}
	}
	tags, _ := tl.GetTags()
	l := &tagListing{tags: make(map[string]bool, len(tags)), list: tags}
	for _, t := range tags {
		l.tags[t] = true
	}
	return l
}

// tagHeads asks for the four tags that can name referrers of subj, the
// fallback index sha256-<hex> and cosign's .sig, .att and .sbom, with one
// HEAD each (side by side), instead of listing every tag of the
// repository: with the referrers API working this is all the tag list
// would be read for, and its cost no longer grows with the repository's
// tags. A 404 means the tag is absent; any other failure makes the
// answer unknown, as a failed tag list does.
func (s *subjectRun) tagHeads(ctx context.Context, subj ref.Ref) *tagListing {
	base := fallbackTag(subj)
	if base == "" {
		return &tagListing{tags: map[string]bool{}}
	}
	names := []string{base}
	for _, cs := range cosignSuffixes {
		names = append(names, base+"."+cs.suffix)
	}
	present := make([]bool, len(names))
	fails := make([]*failure, len(names))
	var wg sync.WaitGroup
	for i, tag := range names {
		wg.Go(func() {
			var last registry.Exchange
			cctx := registry.WithWatcher(counted(ctx, &s.requests), func(ex registry.Exchange) {
				if !ex.IsRedirect() {
					last = ex
				}
			})
			_, err := s.e.client.ManifestHead(cctx, subj.SetDigest("").SetTag(tag))
			switch {
			case err == nil:
				present[i] = true
			case last.Status == http.StatusNotFound && last.Err == nil && ctx.Err() == nil:
			default:
				f := classifyFailure(ctx, err, last)
				f.finding.Summary = "HEAD of tag " + tag + ": " + f.finding.Summary
				fails[i] = &f
			}
		})
	}
	wg.Wait()
	l := &tagListing{tags: map[string]bool{}}
	for i, tag := range names {
		if fails[i] != nil {
			return &tagListing{failure: fails[i]}
		}
		if present[i] {
			l.tags[tag] = true
			l.list = append(l.list, tag)
		}
	}
	return l
}

// fallbackTag is the referrers tag schema's tag for a subject, truncated
// as the spec's main branch says (regclient does this).
func fallbackTag(subj ref.Ref) string {
	r, err := referrer.FallbackTag(subj)
	if err != nil {
		return ""
	}
	return r.Tag
}

// tagIndexList reads the sha256-<hex> fallback index, guarding against
// registries (GitLab) that resolve the tag to the subject itself.
func (s *subjectRun) tagIndexList(ctx context.Context, subj ref.Ref, listing *tagListing) []Referrer {
	if !listing.ok() {
		s.fail("fallback tag index", *listing.failure)
		return nil
	}
	tag := fallbackTag(subj)
	if !listing.has(tag) {
		return nil
	}
	var last registry.Exchange
	cctx := registry.WithWatcher(counted(ctx, &s.requests), func(ex registry.Exchange) { last = ex })
	m, err := s.e.client.ManifestGet(cctx, subj.SetDigest("").SetTag(tag))
	if err != nil {
		s.fail("fallback tag "+tag, classifyFailure(ctx, err, last))
		return nil
	}
	d := m.GetDescriptor()
	idx, ok := m.(manifest.Indexer)
	if d.Digest.String() == subj.Digest || !isIndexMediaType(d.MediaType) || !ok {
		s.finding(notAnIndexFinding(tag, subj.Digest, d.MediaType, d.Digest.String()))
		return nil
	}
	list, _ := idx.GetManifestList()
	for _, f := range indexListHealth(tag, subj.Digest, list) {
		s.finding(f)
	}
	out := make([]Referrer, 0, len(list))
	seen := map[string]bool{}
	for _, d := range list {
		if seen[d.Digest.String()] {
			continue // FallbackIndexDuplicate says it
		}
		seen[d.Digest.String()] = true
		r := referrerFromDescriptor(d, SourceTagIndex, tag)
		r.Repository = s.elsewhere(subj)
		s.resolveType(ctx, &r)
		out = append(out, r)
	}
	return out
}

// cosignSuffixes are cosign's legacy tag suffixes and their categories.
var cosignSuffixes = []struct {
	suffix   string
	category finding.Category
}{
	{"sig", finding.CategorySignature}, {"att", finding.CategoryAttestation}, {"sbom", finding.CategorySBOM},
}

// cosignList reads sha256-<hex>.sig/.att/.sbom: manifests without a
// subject, found only by tag.
func (s *subjectRun) cosignList(ctx context.Context, subj ref.Ref, listing *tagListing) []Referrer {
	if !listing.ok() {
		if s.method == MethodAPI {
			// The API path does not need the tag list; say what is unknown.
			s.finding(finding.Finding{Severity: finding.SeverityWarn, Code: finding.CosignTagsUnchecked,
				Summary: "Cosign-style tags could not be checked: " + listing.failure.finding.Summary})
		}
		return nil
	}
	base := fallbackTag(subj)
	var out []Referrer
	for _, cs := range cosignSuffixes {
		tag := base + "." + cs.suffix
		if !listing.has(tag) {
			continue
		}
		var last registry.Exchange
		cctx := registry.WithWatcher(counted(ctx, &s.requests), func(ex registry.Exchange) { last = ex })
		m, err := s.e.client.ManifestGet(cctx, subj.SetDigest("").SetTag(tag))
		if err != nil {
			s.fail("cosign tag "+tag, classifyFailure(ctx, err, last))
			continue
		}
		d := m.GetDescriptor()
		r := Referrer{Digest: d.Digest.String(), MediaType: d.MediaType, Size: d.Size, Annotations: map[string]string{},
			Source: SourceCosignTag, Tag: tag, Category: cs.category, Repository: s.elsewhere(subj)}
		if a, ok := m.(manifest.Annotator); ok {
			if ann, err := a.GetAnnotations(); err == nil && ann != nil {
				r.Annotations = ann
			}
		}
		// Cosign manifests carry a generic image config; what they hold is
		// named by their layer (simple signing, DSSE envelope, SPDX...).
		if img, ok := m.(manifest.Imager); ok {
			if layers, err := img.GetLayers(); err == nil && len(layers) > 0 {
				r.ArtifactType = layers[0].MediaType
			}
		}
		if raw, err := m.RawBody(); err == nil && r.ArtifactType == "" {
			r.ArtifactType = artifactTypeOf(raw)
		}
		out = append(out, r)
	}
	return out
}

// compareWithTagIndex reads the fallback index too when the repository
// has one, and reports referrers that only one of the two lists, like with
// like: both lists complete, both filtered the same way. Where the two
// list one digest with different artifact types, the manifest decides.
func (s *subjectRun) compareWithTagIndex(ctx context.Context, subj ref.Ref, listing *tagListing, api []Referrer) {
	tag := fallbackTag(subj)
	if !listing.has(tag) {
		return
	}
	tagRefs := s.tagIndexList(ctx, subj, listing)
	inAPI := map[string]*Referrer{}
	for i := range api {
		inAPI[api[i].Digest] = &api[i]
	}
	for _, t := range tagRefs {
		a := inAPI[t.Digest]
		if a == nil || a.ArtifactType == t.ArtifactType {
			continue
		}
		// The two listings disagree on the type: read the manifest once.
		probeRef := Referrer{Digest: t.Digest, Annotations: map[string]string{}}
		s.readManifest(ctx, &probeRef)
		if probeRef.ArtifactType == "" {
			continue
		}
		if a.ArtifactType != probeRef.ArtifactType {
			s.noteMislabelled(SourceAPI, a.ArtifactType, probeRef.ArtifactType)
			a.ArtifactType = probeRef.ArtifactType
			a.Category = finding.Categorize(a.ArtifactType, a.Annotations)
			a.PredicateType = finding.Predicate(a.ArtifactType, a.Annotations)
		}
		if t.ArtifactType != probeRef.ArtifactType {
			s.noteMislabelled(SourceTagIndex, t.ArtifactType, probeRef.ArtifactType)
		}
	}
	inAPIf, inTags := map[string]bool{}, map[string]bool{}
	for _, r := range s.filter(api) {
		inAPIf[r.Digest] = true
	}
	for _, r := range tagRefs {
		if a := inAPI[r.Digest]; a != nil {
			r.ArtifactType = a.ArtifactType
		}
		if len(s.filter([]Referrer{r})) == 1 {
			inTags[r.Digest] = true
		}
	}
	var onlyAPI, onlyTags []string
	for d := range inAPIf {
		if !inTags[d] {
			onlyAPI = append(onlyAPI, ShortDigest(d))
		}
	}
	for d := range inTags {
		if !inAPIf[d] {
			onlyTags = append(onlyTags, ShortDigest(d))
		}
	}
	if len(onlyAPI)+len(onlyTags) == 0 {
		return
	}
	sort.Strings(onlyAPI)
	sort.Strings(onlyTags)
	s.finding(finding.Finding{Severity: finding.SeverityWarn, Code: finding.APIAndTagIndexDisagree,
		Summary:  fmt.Sprintf("The referrers API and the %s tag index disagree", tag),
		Cause:    "The tag index was written before the registry served the API, or by a tool that ignores it; clients that use only one of them see different referrers.",
		Remedy:   "Re-attach the missing artifacts, or delete the stale tag index once the API holds everything.",
		Evidence: fmt.Sprintf("only in API: %s; only in tag index: %s", listOrNone(onlyAPI), listOrNone(onlyTags))})
}

func listOrNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

// artifactTypeOf reads artifactType, else config.mediaType, from a raw
// manifest, as the spec defines a referrer's artifact type.
func artifactTypeOf(raw []byte) string {
	var m struct {
		ArtifactType string `json:"artifactType"`
		Config       struct {
			MediaType string `json:"mediaType"`
		} `json:"config"`
	}
	if json.Unmarshal(raw, &m) != nil {
		return ""
	}
	if m.ArtifactType != "" {
		return m.ArtifactType
	}
	if m.Config.MediaType == "application/vnd.oci.empty.v1+json" {
		return ""
	}
	return m.Config.MediaType
}
