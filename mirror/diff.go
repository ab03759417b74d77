package mirror

import (
	"context"
	"fmt"
	"sort"

	"github.com/regclient/regclient/types/ref"

	"github.com/refdoctor/refdoctor/bundle"
	"github.com/refdoctor/refdoctor/discovery"
	"github.com/refdoctor/refdoctor/finding"
)

// ReferrerChange is one referrer that differs between bundle and registry.
type ReferrerChange struct {
	Digest       string           `json:"digest"`
	ArtifactType string           `json:"artifact_type"`
	Category     finding.Category `json:"category"`
}

// Replacement pairs a referrer the registry no longer has with the one of
// the same artifact type that took its place.
type Replacement struct {
	Old ReferrerChange `json:"old"`
	New ReferrerChange `json:"new"`
}

// SubjectDiff compares one subject's referrers.
type SubjectDiff struct {
	Subject   string           `json:"subject"`
	Added     []ReferrerChange `json:"added"`
	Removed   []ReferrerChange `json:"removed"`
	Replaced  []Replacement    `json:"replaced"`
	Unchanged int              `json:"unchanged"`
	// Damaged are referrers the bundle lists whose copy in the bundle did
	// not pass validation: the listing and the registry may agree, the
	// bundle does not hold what it lists.
	Damaged []string `json:"damaged,omitempty"`
}

// ImageDiff compares an exported image with what its reference names now.
type ImageDiff struct {
	Reference    string `json:"reference"`
	BundleDigest string `json:"bundle_digest"`
	LiveDigest   string `json:"live_digest"`
	Moved        bool   `json:"moved"`
	// Error says why the image could not be read from its registry.
	Error string `json:"error,omitempty"`
}

// UnreadSubject is a subject of the bundle whose referrers could not be
// read from the registry completely: nothing is judged about it.
type UnreadSubject struct {
	Subject   string `json:"subject"`
	Reference string `json:"reference"`
	Error     string `json:"error"`
}

// DiffResult is the bundle against its live source registry.
type DiffResult struct {
	File string `json:"file"`
	// Same: every subject was read, nothing changed, and the bundle holds
	// what it lists.
	Same bool `json:"same"`
	// Partial: some subjects could not be read (Unread); nothing is
	// judged added or removed for them.
	Partial  bool              `json:"partial"`
	Images   []ImageDiff       `json:"images"`
	Subjects []SubjectDiff     `json:"subjects"`
	Unread   []UnreadSubject   `json:"unread"`
	Findings []finding.Finding `json:"findings"`
	// BundleOK is the bundle's own validation: diff compares what
	// manifest.yaml lists, so it first checks the bundle holds that.
	BundleOK       bool             `json:"bundle_ok"`
	BundleProblems []bundle.Problem `json:"bundle_problems"`
}

// Diff compares a bundle with its live source registry: referrers added,
// removed or replaced since export, and image tags that moved (the
// runbook's "referrer modified after export" and "registry replaced
// artifact").
//
// It validates the bundle first, in one streaming pass: what it compares
// is manifest.yaml's listing, and a listing the bundle's members do not
// match is reported (BundleProblems, Damaged), never called the same as
// the source. A subject whose referrers could not be read completely
// (unreachable registry, refused login, rate limit, timeout) is listed in
// Unread with the reason, nothing is judged added or removed for it, and
// the result is Partial.
func Diff(ctx context.Context, env Env, file string) (DiffResult, error) {
	env = env.withDefaults()
	res := DiffResult{File: file, Images: []ImageDiff{}, Subjects: []SubjectDiff{}, Unread: []UnreadSubject{},
		Findings: []finding.Finding{}, BundleProblems: []bundle.Problem{}}
	rep, err := bundle.ValidateFile(ctx, file, bundle.WithCheckReferrers(true))
	if err != nil {
		return res, err
	}
	if rep.Unreadable() || rep.Manifest() == nil {
		return res, fmt.Errorf("%w: %s", bundle.ErrMalformedManifest, firstProblem(rep, func(bundle.Problem) bool { return true }))
	}
	m := rep.Manifest()
	res.BundleOK, res.BundleProblems = rep.OK, rep.Errors
	if !rep.OK {
		res.Findings = append(res.Findings, finding.Finding{Severity: finding.SeverityError, Code: rep.Errors[0].Code,
			Summary: fmt.Sprintf("The bundle does not hold what manifest.yaml lists: %d problem(s), first %s", len(rep.Errors), rep.Errors[0]),
			Cause:   "Diff compares the listing with the source; the bundle's own members fail validation.",
			Remedy:  rep.Errors[0].Code.Remedy()})
	}
	bundled := map[string]map[string]bundle.Artifact{}
	for _, s := range m.Referrers.Subjects {
		bundled[s.Subject] = map[string]bundle.Artifact{}
		for _, a := range s.Artifacts {
			bundled[s.Subject][a.Digest] = a
		}
	}
	live := map[string]map[string]discovery.Referrer{}
	read := map[string]bool{} // subjects whose referrers were read completely
	var failures []UnreadSubject
	dopts := env.discoveryOpts(discovery.WithPlatforms(true), discovery.WithDepth(3))
	for _, img := range m.Images {
		src, err := ref.New(img.Reference)
		if err != nil {
			return res, fmt.Errorf("bundle image %q: %w", img.Reference, err)
		}
		id := ImageDiff{Reference: img.Reference, BundleDigest: img.Digest}
		if src.Digest == "" {
			now, err := discovery.Discover(ctx, img.Reference, append(dopts, discovery.WithPlatforms(false), discovery.WithDepth(0))...)
			switch {
			case err != nil:
				id.Error = err.Error()
			case now.Subject.Digest == "":
				id.Error = now.Error
			default:
				id.LiveDigest = now.Subject.Digest
			}
			if id.LiveDigest != "" && id.LiveDigest != img.Digest {
				id.Moved = true
				res.Findings = append(res.Findings, finding.Finding{Severity: finding.SeverityWarn, Code: finding.ImageTagMoved,
					Summary:  fmt.Sprintf("%s now names %s, not the exported %s", img.Reference, id.LiveDigest, img.Digest),
					Cause:    "The tag was pushed again after the export.",
					Remedy:   "Re-export if the new image is the one to mirror; the bundle still holds the old one.",
					Evidence: id.LiveDigest})
			}
		} else {
			id.LiveDigest = img.Digest
		}
		r, err := discovery.Discover(ctx, src.SetTag("").SetDigest(img.Digest).CommonName(), dopts...)
		switch {
		case err != nil:
			failures = append(failures, UnreadSubject{Subject: img.Digest, Reference: img.Reference, Error: err.Error()})
		case r.Partial || r.Error != "":
			why := r.Error
			if why == "" {
				why = "the registry's answers were incomplete"
			}
			failures = append(failures, UnreadSubject{Subject: img.Digest, Reference: img.Reference, Error: why})
			res.Findings = append(res.Findings, r.Findings...)
		default:
			var collect func(subject string, rs []discovery.Referrer)
			collect = func(subject string, rs []discovery.Referrer) {
				read[subject] = true
				for _, x := range rs {
					if x.Source == discovery.SourceAPI || x.Source == discovery.SourceTagIndex {
						if live[subject] == nil {
							live[subject] = map[string]discovery.Referrer{}
						}
						live[subject][x.Digest] = x
					}
					collect(x.Digest, x.Referrers)
				}
			}
			collect(r.Subject.Digest, r.Referrers)
			for _, p := range r.Platforms {
				collect(p.Digest, p.Referrers)
			}
		}
		if id.Error != "" {
			res.Partial = true
			res.Findings = append(res.Findings, finding.Finding{Severity: finding.SeverityError, Code: finding.DiffIncomplete,
				Summary:  fmt.Sprintf("Could not tell what %s names now: %s", img.Reference, id.Error),
				Cause:    "The registry did not answer completely (unreachable, refused login, rate limit, timeout, or plain HTTP without --plain-http).",
				Remedy:   finding.DiffIncomplete.Remedy(),
				Evidence: img.Reference})
		}
		res.Images = append(res.Images, id)
	}
	subjects := map[string]bool{}
	for s := range bundled {
		subjects[s] = true
	}
	for s := range live {
		subjects[s] = true
	}
	var names []string
	for s := range subjects {
		names = append(names, s)
	}
	sort.Strings(names)
	res.Partial = res.Partial || len(failures) > 0
	res.Same = !res.Partial && res.BundleOK
	for _, s := range names {
		if !read[s] && len(failures) > 0 {
			// Not reached by a complete read while some reads failed:
			// the subject may belong to an image that could not be read.
			u := UnreadSubject{Subject: s, Error: "not reached: its image could not be read"}
			for _, f := range failures {
				if f.Subject == s {
					u = f
				}
			}
			res.Unread = append(res.Unread, u)
			continue
		}
		sd := SubjectDiff{Subject: s, Added: []ReferrerChange{}, Removed: []ReferrerChange{}, Replaced: []Replacement{}}
		for d, a := range bundled[s] {
			if !rep.Verified(a.Path) {
				sd.Damaged = append(sd.Damaged, d)
			}
			if _, ok := live[s][d]; ok {
				sd.Unchanged++
			} else {
				sd.Removed = append(sd.Removed, ReferrerChange{Digest: d, ArtifactType: a.ArtifactType, Category: a.Category})
			}
		}
		sort.Strings(sd.Damaged)
		for d, x := range live[s] {
			if _, ok := bundled[s][d]; !ok {
				sd.Added = append(sd.Added, ReferrerChange{Digest: d, ArtifactType: x.ArtifactType, Category: finding.Categorize(x.ArtifactType, x.Annotations)})
			}
		}
		sortChanges(sd.Added)
		sortChanges(sd.Removed)
		// A removal and an addition of the same artifact type is the
		// registry (or a tool) replacing the artifact.
		for i := 0; i < len(sd.Removed); i++ {
			for j := 0; j < len(sd.Added); j++ {
				if sd.Removed[i].ArtifactType == sd.Added[j].ArtifactType {
					sd.Replaced = append(sd.Replaced, Replacement{Old: sd.Removed[i], New: sd.Added[j]})
					sd.Removed = append(sd.Removed[:i], sd.Removed[i+1:]...)
					sd.Added = append(sd.Added[:j], sd.Added[j+1:]...)
					i--
					break
				}
			}
		}
		if len(sd.Added)+len(sd.Removed)+len(sd.Replaced) > 0 {
			res.Same = false
			res.Findings = append(res.Findings, finding.Finding{Severity: finding.SeverityWarn, Code: finding.ReferrersChangedSinceExport,
				Summary: fmt.Sprintf("Subject %s: %d added, %d removed, %d replaced since export", s, len(sd.Added), len(sd.Removed), len(sd.Replaced)),
				Cause:   "Referrers were attached, deleted or re-signed on the source after the bundle was made.",
				Remedy:  "Re-export the bundle to carry the current referrers (the runbook's \"Re-export\" fix for checksum mismatches)."})
		}
		if len(sd.Damaged) > 0 {
			res.Same = false
		}
		res.Subjects = append(res.Subjects, sd)
	}
	for _, u := range res.Unread {
		res.Findings = append(res.Findings, finding.Finding{Severity: finding.SeverityError, Code: finding.DiffIncomplete,
			Summary:  fmt.Sprintf("Could not read the referrers of %s from the source: %s", u.Subject, u.Error),
			Cause:    "The registry did not answer completely (unreachable, refused login, rate limit, timeout, or plain HTTP without --plain-http).",
			Remedy:   finding.DiffIncomplete.Remedy(),
			Evidence: u.Reference})
	}
	return res, nil
}

func sortChanges(cs []ReferrerChange) {
	sort.Slice(cs, func(i, j int) bool { return cs[i].Digest < cs[j].Digest })
}
