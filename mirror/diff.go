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
}

// ImageDiff compares an exported image with what its reference names now.
type ImageDiff struct {
	Reference    string `json:"reference"`
	BundleDigest string `json:"bundle_digest"`
	LiveDigest   string `json:"live_digest"`
	Moved        bool   `json:"moved"`
}

// DiffResult is the bundle against its live source registry.
type DiffResult struct {
	File     string            `json:"file"`
	Same     bool              `json:"same"`
	Partial  bool              `json:"partial"`
	Images   []ImageDiff       `json:"images"`
	Subjects []SubjectDiff     `json:"subjects"`
	Findings []finding.Finding `json:"findings"`
}

// Diff compares a bundle with its live source registry: referrers added,
// removed or replaced since export, and image tags that moved (the
// runbook's "referrer modified after export" and "registry replaced
// artifact").
func Diff(ctx context.Context, env Env, file string) (DiffResult, error) {
	env = env.withDefaults()
	res := DiffResult{File: file, Images: []ImageDiff{}, Subjects: []SubjectDiff{}, Findings: []finding.Finding{}}
	m, err := bundle.ReadManifest(ctx, file)
	if err != nil {
		return res, err
	}
	bundled := map[string]map[string]bundle.Artifact{}
	for _, s := range m.Referrers.Subjects {
		bundled[s.Subject] = map[string]bundle.Artifact{}
		for _, a := range s.Artifacts {
			bundled[s.Subject][a.Digest] = a
		}
	}
	live := map[string]map[string]discovery.Referrer{}
	dopts := env.discoveryOpts(discovery.WithPlatforms(true), discovery.WithDepth(3))
	for _, img := range m.Images {
		src, err := ref.New(img.Reference)
		if err != nil {
			return res, fmt.Errorf("bundle image %q: %w", img.Reference, err)
		}
		id := ImageDiff{Reference: img.Reference, BundleDigest: img.Digest}
		if src.Digest == "" {
			now, err := discovery.Discover(ctx, img.Reference, append(dopts, discovery.WithPlatforms(false), discovery.WithDepth(0))...)
			if err == nil {
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
		res.Images = append(res.Images, id)
		r, err := discovery.Discover(ctx, src.SetTag("").SetDigest(img.Digest).CommonName(), dopts...)
		if err != nil {
			return res, err
		}
		if r.Partial || r.Error != "" {
			res.Partial = true
			res.Findings = append(res.Findings, r.Findings...)
			continue
		}
		var collect func(subject string, rs []discovery.Referrer)
		collect = func(subject string, rs []discovery.Referrer) {
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
	res.Same = !res.Partial
	for _, s := range names {
		sd := SubjectDiff{Subject: s, Added: []ReferrerChange{}, Removed: []ReferrerChange{}, Replaced: []Replacement{}}
		for d, a := range bundled[s] {
			if _, ok := live[s][d]; ok {
				sd.Unchanged++
			} else {
				sd.Removed = append(sd.Removed, ReferrerChange{Digest: d, ArtifactType: a.ArtifactType, Category: a.Category})
			}
		}
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
		res.Subjects = append(res.Subjects, sd)
	}
	return res, nil
}

func sortChanges(cs []ReferrerChange) {
	sort.Slice(cs, func(i, j int) bool { return cs[i].Digest < cs[j].Digest })
}
