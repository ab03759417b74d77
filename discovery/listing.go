package discovery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"sync"

	"github.com/regclient/regclient/types/ref"
	"golang.org/x/sync/errgroup"

	"github.com/refdoctor/refdoctor/finding"
	"github.com/refdoctor/refdoctor/registry"
)

// Tag kinds in a fallback listing.
const (
	TagKindIndex = "index"
	TagKindSig   = "sig"
	TagKindAtt   = "att"
	TagKindSBOM  = "sbom"
	TagKindOther = "other"
)

// TagListing is every referrers-schema and cosign-style tag of a
// repository, grouped by the subject digest its name encodes.
type TagListing struct {
	Repository string            `json:"repository"`
	Subjects   []TagSubject      `json:"subjects"`
	TagsTotal  int               `json:"tags_total"`
	Requests   int               `json:"requests"`
	Partial    bool              `json:"partial"`
	Error      string            `json:"error,omitempty"`
	Findings   []finding.Finding `json:"findings"`
}

// TagSubject is one subject digest and the tags that point at it.
type TagSubject struct {
	Subject string `json:"subject"`
	// Exists is false when the subject manifest is gone: the tags are
	// orphans that an export would carry for nothing.
	Exists *bool      `json:"exists"`
	Tags   []TagEntry `json:"tags"`
}

// TagEntry is one tag with what it holds.
type TagEntry struct {
	Tag    string `json:"tag"`
	Kind   string `json:"kind"`
	Digest string `json:"digest"`
	// Health is the fallback index's check, for sha256-<hex> index tags
	// of a full sha256 subject digest.
	Health *IndexHealth `json:"health,omitempty"`
}

// schemaTag matches <alg>-<hex>[.<suffix>] tags (the spec's main branch
// truncates the algorithm to 32 and the hex to 64 characters).
var schemaTag = regexp.MustCompile(`^([a-z0-9]{1,32})-([a-f0-9]{32,64})(?:\.([A-Za-z0-9_-]+))?$`)

// ListTags lists a repository's fallback and cosign-style tags, resolves
// each to its digest, checks that each subject still exists, and checks
// each fallback index's health (health.go): what it holds, its entries,
// and, where the registry serves the referrers API, what it lacks.
func ListTags(ctx context.Context, repository string, opts ...Opt) (TagListing, error) {
	o := defaults()
	for _, opt := range opts {
		opt(&o)
	}
	if o.concurrency < 1 {
		o.concurrency = 1
	}
	r, err := ref.New(repository)
	if err == nil && strings.ContainsAny(repository[strings.LastIndex(repository, "/")+1:], ":@") {
		err = errors.New("give a repository without tag or digest")
	}
	if err != nil {
		return TagListing{}, fmt.Errorf("%w %q: %v (write HOST/REPO)", ErrBadReference, repository, err)
	}
	if first, _, _ := strings.Cut(repository, "/"); !strings.ContainsAny(first, ".:") && first != "localhost" {
		return TagListing{}, fmt.Errorf("%w %q: no registry host (write HOST/REPO)", ErrBadReference, repository)
	}
	repo := r.SetTag("")
	if o.log == nil {
		o.log = slog.New(slog.DiscardHandler)
	}
	eng, err := newEngine(ctx, &o)
	if err != nil {
		return TagListing{}, err
	}
	c := eng.client
	ctx, requests, end := o.bounded(ctx)
	defer end()
	out := TagListing{Repository: repo.CommonName(), Subjects: []TagSubject{}, Findings: []finding.Finding{}}
	listing := listTags(ctx, c, repo)
	if !listing.ok() {
		out.Partial = listing.failure.incomplete
		out.Error = listing.failure.finding.Summary
		out.Findings = append(out.Findings, listing.failure.finding)
		out.Requests = int(requests.Load())
		return out, nil
	}
	bySubject := map[string]*TagSubject{}
	var entries []*TagEntry
	for _, tag := range listing.list {
		m := schemaTag.FindStringSubmatch(tag)
		if m == nil {
			continue
		}
		subject := m[1] + ":" + m[2]
		kind := TagKindIndex
		switch m[3] {
		case "":
		case "sig":
			kind = TagKindSig
		case "att":
			kind = TagKindAtt
		case "sbom":
			kind = TagKindSBOM
		default:
			kind = TagKindOther
		}
		ts := bySubject[subject]
		if ts == nil {
			ts = &TagSubject{Subject: subject}
			bySubject[subject] = ts
		}
		ts.Tags = append(ts.Tags, TagEntry{Tag: tag, Kind: kind})
		out.TagsTotal++
	}
	for _, ts := range bySubject {
		for i := range ts.Tags {
			entries = append(entries, &ts.Tags[i])
		}
	}
	var mu sync.Mutex
	var failures []failure
	health := &healthRun{c: c, repo: repo, sem: make(chan struct{}, o.concurrency)}
	for _, e := range entries {
		if e.Kind == TagKindIndex && fullDigestTag(e.Tag) {
			health.api = eng.apiListerFor(ctx, repo)
			break
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(o.concurrency)
	for _, e := range entries {
		g.Go(func() error {
			if e.Kind == TagKindIndex && fullDigestTag(e.Tag) {
				health.check(gctx, "sha256:"+strings.TrimPrefix(e.Tag, "sha256-"), e)
				return nil
			}
			var last registry.Exchange
			hctx := registry.WithWatcher(gctx, func(ex registry.Exchange) { last = ex })
			m, err := c.ManifestHead(hctx, repo.SetTag(e.Tag))
			if err != nil {
				mu.Lock()
				failures = append(failures, classifyFailure(gctx, err, last))
				mu.Unlock()
				return nil
			}
			e.Digest = m.GetDescriptor().Digest.String()
			return nil
		})
	}
	elsewhere := eng.isReferrersRepo(repo)
	if elsewhere {
		out.Findings = append(out.Findings, finding.Finding{Severity: finding.SeverityInfo, Code: finding.ReferrersRepositoryTags,
			Summary: repo.Registry + "/" + repo.Repository + " is a referrers repository (referrers_repository in the config): its subjects live in other repositories and are not looked up here",
			Remedy:  finding.ReferrersRepositoryTags.Remedy()})
	}
	for subject, ts := range bySubject {
		if elsewhere || !strings.HasPrefix(subject, "sha256:") || len(subject) != len("sha256:")+64 {
			continue // a truncated digest cannot be looked up; a referrers repository holds no subjects
		}
		g.Go(func() error {
			var last registry.Exchange
			hctx := registry.WithWatcher(gctx, func(ex registry.Exchange) { last = ex })
			_, err := c.ManifestHead(hctx, repo.SetDigest(subject))
			exists := err == nil
			if err != nil && last.Status != http.StatusNotFound {
				mu.Lock()
				failures = append(failures, classifyFailure(gctx, err, last))
				mu.Unlock()
				return nil
			}
			mu.Lock()
			ts.Exists = &exists
			mu.Unlock()
			return nil
		})
	}
	_ = g.Wait()
	for _, ts := range bySubject {
		sort.Slice(ts.Tags, func(i, j int) bool { return ts.Tags[i].Tag < ts.Tags[j].Tag })
		out.Subjects = append(out.Subjects, *ts)
		if ts.Exists != nil && !*ts.Exists {
			var names []string
			for _, t := range ts.Tags {
				names = append(names, t.Tag)
			}
			out.Findings = append(out.Findings, finding.Finding{Severity: finding.SeverityWarn, Code: finding.OrphanTags,
				Summary:  fmt.Sprintf("Subject %s no longer exists, but %d tag(s) still point at it", ShortDigest(ts.Subject), len(ts.Tags)),
				Cause:    "The image was deleted or re-pushed under a new digest; its referrer tags stayed behind. (In a referrers repository, as cosign's COSIGN_REPOSITORY makes, subjects live elsewhere: name it as referrers_repository in the config.)",
				Remedy:   "Delete the orphan tags, or re-attach the artifacts to the new digest.",
				Evidence: strings.Join(names, ", ")})
		}
	}
	sort.Slice(out.Subjects, func(i, j int) bool { return out.Subjects[i].Subject < out.Subjects[j].Subject })
	sort.SliceStable(health.findings, func(i, j int) bool { return health.findings[i].Summary < health.findings[j].Summary })
	out.Findings = append(out.Findings, health.findings...)
	failures = append(failures, health.failures...)
	if len(failures) > 0 {
		out.Partial = true
		out.Error = failures[0].finding.Summary
		for _, f := range failures {
			out.Findings = append(out.Findings, f.finding)
		}
	}
	out.Requests = int(requests.Load() + eng.shared.Load())
	return out, nil
}

// fullDigestTag is true for sha256-<64 hex>, a fallback tag whose subject
// can be looked up (truncated digests of longer algorithms cannot).
func fullDigestTag(tag string) bool {
	return strings.HasPrefix(tag, "sha256-") && len(tag) == len("sha256-")+64
}
