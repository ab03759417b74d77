package discovery

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"

	"github.com/regclient/regclient/types/descriptor"
	"github.com/regclient/regclient/types/manifest"
	"github.com/regclient/regclient/types/ref"
	"golang.org/x/sync/errgroup"

	"github.com/refdoctor/refdoctor/finding"
	"github.com/refdoctor/refdoctor/probe"
	"github.com/refdoctor/refdoctor/registry"
)

// Fallback-index health: a registry without the referrers API shows a
// subject's referrers only through the index tagged sha256-<hex>. Every
// client that attaches rewrites that index whole, so two writers at once
// lose an entry, a careless writer lists one twice or without its
// artifactType, and a registry may resolve the tag to something else.
//
// What it costs: discover checks what it already read (the index itself:
// not the subject, duplicates, missing artifactType; and, with the API,
// entries the API lists and the index lacks). tags checks everything:
// one GET per index tag (in place of its HEAD), one GET per entry (it
// exists, it names the subject), and, where the registry serves the API,
// one referrers request per subject to find entries the index lacks.

// indexListHealth checks the entries of one fallback index as listed,
// without reading anything more: duplicates and entries without
// artifactType.
func indexListHealth(tag, subject string, list []descriptor.Descriptor) []finding.Finding {
	var out []finding.Finding
	count := map[string]int{}
	var dups, untyped []string
	for _, d := range list {
		k := d.Digest.String()
		count[k]++
		if count[k] == 2 {
			dups = append(dups, ShortDigest(k))
		}
		if count[k] == 1 && (d.ArtifactType == "" || d.ArtifactType == finding.MediaTypeEmpty) {
			t := d.ArtifactType
			if t == "" {
				t = "none"
			}
			untyped = append(untyped, fmt.Sprintf("%s (%s)", ShortDigest(k), t))
		}
	}
	if len(dups) > 0 {
		out = append(out, finding.Finding{Severity: finding.SeverityWarn, Code: finding.FallbackIndexDuplicate,
			Summary:  fmt.Sprintf("Fallback index %s lists %d referrer(s) of %s more than once", tag, len(dups), ShortDigest(subject)),
			Cause:    "A client appended to the index without checking what it already listed; clients that count referrers or copy them see duplicates.",
			Remedy:   finding.FallbackIndexDuplicate.Remedy(),
			Evidence: "listed twice or more: " + strings.Join(dups, ", ")})
	}
	if len(untyped) > 0 {
		out = append(out, finding.Finding{Severity: finding.SeverityWarn, Code: finding.FallbackIndexNoArtifactType,
			Summary:  fmt.Sprintf("Fallback index %s lists %d referrer(s) without an artifactType", tag, len(untyped)),
			Cause:    "The writer left artifactType out of the index entries, or wrote the empty config type (GHCR's indexes written by cosign list application/vnd.oci.empty.v1+json). Clients that filter by artifact type from the index miss these referrers; refdoctor reads each manifest for its type.",
			Remedy:   finding.FallbackIndexNoArtifactType.Remedy(),
			Evidence: strings.Join(untyped, ", ")})
	}
	return out
}

// notAnIndexFinding says a sha256-<hex> tag holds something other than a
// referrers index: the subject itself (GitLab) or another manifest.
func notAnIndexFinding(tag, subject, mediaType, digest string) finding.Finding {
	what := fmt.Sprintf("tag holds %s %s", mediaType, digest)
	cause := "Something other than a referrers index was pushed under the tag."
	if digest == subject {
		what += ", the subject itself"
		cause = "GitLab resolves sha256-<hex> tags to the subject manifest itself, so the tag schema cannot work there; elsewhere a tool pushed the subject under the tag."
	}
	return finding.Finding{Severity: finding.SeverityWarn, Code: finding.FallbackTagNotIndex,
		Summary:  fmt.Sprintf("Tag %s does not hold a referrers index", tag),
		Cause:    cause,
		Remedy:   finding.FallbackTagNotIndex.Remedy(),
		Evidence: what}
}

// IndexHealth is what tags found about one fallback index.
type IndexHealth struct {
	// Entries is how many descriptors the index lists.
	Entries int `json:"entries"`
	// Problems names the findings about this index, empty when it is
	// healthy.
	Problems []finding.Code `json:"problems"`
	// Checked says whether every entry could be read (entries exist,
	// subjects match) and the API cross-check, where there is one, ran.
	Checked bool `json:"checked"`
}

// healthRun checks the fallback indexes of one repository for tags.
type healthRun struct {
	c    *registry.Client
	repo ref.Ref
	// api lists a subject's referrers through the API; nil when the
	// registry does not serve it.
	api func(ctx context.Context, subject string) ([]string, *failure)
	sem chan struct{}

	mu       sync.Mutex
	findings []finding.Finding
	failures []failure
}

func (h *healthRun) add(fs ...finding.Finding) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.findings = append(h.findings, fs...)
}

func (h *healthRun) fail(f failure) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.failures = append(h.failures, f)
}

// check reads the index tagged tag for subject and checks it whole. It
// fills e.Digest (a GET tells the digest as a HEAD would).
func (h *healthRun) check(ctx context.Context, subject string, e *TagEntry) {
	var last registry.Exchange
	cctx := registry.WithWatcher(ctx, func(ex registry.Exchange) { last = ex })
	m, err := h.c.ManifestGet(cctx, h.repo.SetTag(e.Tag))
	if err != nil {
		h.fail(classifyFailure(ctx, err, last))
		return
	}
	d := m.GetDescriptor()
	e.Digest = d.Digest.String()
	health := &IndexHealth{Problems: []finding.Code{}}
	e.Health = health
	var fs []finding.Finding
	defer func() {
		for _, f := range fs {
			health.Problems = append(health.Problems, f.Code)
		}
		h.add(fs...)
	}()
	idx, ok := m.(manifest.Indexer)
	if e.Digest == subject || !isIndexMediaType(d.MediaType) || !ok {
		fs = append(fs, notAnIndexFinding(e.Tag, subject, d.MediaType, e.Digest))
		health.Checked = true
		return
	}
	list, _ := idx.GetManifestList()
	health.Entries = len(list)
	fs = append(fs, indexListHealth(e.Tag, subject, list)...)

	var mu sync.Mutex
	var gone, wrong []string
	complete := true
	listed := map[string]bool{}
	g, gctx := errgroup.WithContext(ctx)
	for _, entry := range list {
		k := entry.Digest.String()
		if listed[k] {
			continue
		}
		listed[k] = true
		g.Go(func() error {
			select {
			case h.sem <- struct{}{}:
				defer func() { <-h.sem }()
			case <-gctx.Done():
				return nil
			}
			var last registry.Exchange
			ectx := registry.WithWatcher(gctx, func(ex registry.Exchange) { last = ex })
			em, err := h.c.ManifestGet(ectx, h.repo.SetDigest(k))
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if last.Status == http.StatusNotFound && last.Complete() {
					gone = append(gone, ShortDigest(k))
					return nil
				}
				complete = false
				h.fail(classifyFailure(gctx, err, last))
				return nil
			}
			raw, _ := em.RawBody()
			if got := subjectOf(raw); got != subject {
				if got == "" {
					got = "no subject"
				} else {
					got = ShortDigest(got)
				}
				wrong = append(wrong, fmt.Sprintf("%s names %s", ShortDigest(k), got))
			}
			return nil
		})
	}
	_ = g.Wait()
	sort.Strings(gone)
	sort.Strings(wrong)
	if len(gone) > 0 {
		fs = append(fs, finding.Finding{Severity: finding.SeverityError, Code: finding.FallbackIndexEntryMissing,
			Summary:  fmt.Sprintf("Fallback index %s lists %d referrer(s) of %s that the repository does not have", e.Tag, len(gone), ShortDigest(subject)),
			Cause:    "The referrer was deleted (or never pushed) after the index listed it; clients that copy or verify the listed referrers fail on it.",
			Remedy:   finding.FallbackIndexEntryMissing.Remedy(),
			Evidence: "404 for: " + strings.Join(gone, ", ")})
	}
	if len(wrong) > 0 {
		fs = append(fs, finding.Finding{Severity: finding.SeverityError, Code: finding.FallbackIndexWrongSubject,
			Summary:  fmt.Sprintf("Fallback index %s lists %d manifest(s) that are not referrers of %s", e.Tag, len(wrong), ShortDigest(subject)),
			Cause:    "A writer put the entry into the wrong subject's index (or the manifest has no subject field): clients show it as attached to an image it does not describe.",
			Remedy:   finding.FallbackIndexWrongSubject.Remedy(),
			Evidence: strings.Join(wrong, "; ")})
	}
	if !complete {
		return
	}
	if h.api == nil {
		health.Checked = true
		return
	}
	viaAPI, ferr := h.api(ctx, subject)
	if ferr != nil {
		h.fail(*ferr)
		return
	}
	health.Checked = true
	var lacking []string
	for _, k := range viaAPI {
		if !listed[k] {
			lacking = append(lacking, ShortDigest(k))
		}
	}
	sort.Strings(lacking)
	if len(lacking) > 0 {
		fs = append(fs, missingEntryFinding(e.Tag, subject, "the referrers API lists", lacking))
	}
}

// missingEntryFinding says a fallback index lacks referrers another
// source knows: clients that read only the tag schema do not see them.
func missingEntryFinding(tag, subject, knownFrom string, lacking []string) finding.Finding {
	return finding.Finding{Severity: finding.SeverityError, Code: finding.FallbackIndexMissingEntry,
		Summary:  fmt.Sprintf("Fallback index %s lacks %d referrer(s) of %s that %s", tag, len(lacking), ShortDigest(subject), knownFrom),
		Cause:    "Two writers updated the index at once and one update was lost, or the referrer was pushed by a client that trusted the referrers API and wrote no index entry. Clients that read the tag schema (mirrors, registries without the API) do not see it.",
		Remedy:   finding.FallbackIndexMissingEntry.Remedy(),
		Evidence: "missing from the index: " + strings.Join(lacking, ", ")}
}

// subjectOf reads subject.digest from a raw manifest.
func subjectOf(raw []byte) string {
	var m struct {
		Subject *struct {
			Digest string `json:"digest"`
		} `json:"subject"`
	}
	if json.Unmarshal(raw, &m) != nil || m.Subject == nil {
		return ""
	}
	return m.Subject.Digest
}

// apiListerFor returns a lister of a subject's referrer digests through
// the referrers API when the repository's registry serves it (a probe
// through the capability cache), else nil. The listing reads every page,
// as discovery does.
func (e *engine) apiListerFor(ctx context.Context, repo ref.Ref) func(context.Context, string) ([]string, *failure) {
	c := e.capability(ctx, repo)
	if c.ReferrersAPI != probe.Supported {
		return nil
	}
	return func(ctx context.Context, subject string) ([]string, *failure) {
		res := Result{Referrers: []Referrer{}, Findings: []finding.Finding{}}
		// Types are not needed: the digests are compared, nothing more
		// is read.
		s := &subjectRun{e: e, res: &res, repo: repo, visited: map[string]bool{}, skipTypes: true}
		rs, ferr := s.apiList(ctx, repo.SetDigest(subject))
		var out []string
		for _, r := range rs {
			out = append(out, r.Digest)
		}
		return out, ferr
	}
}
