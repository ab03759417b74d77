package discovery

import (
	"context"
	"fmt"
	"strings"

	"github.com/regclient/regclient/types/ref"

	"github.com/refdoctor/refdoctor/finding"
	"github.com/refdoctor/refdoctor/probe"
)

// Some teams keep signatures and attestations apart from the images, in a
// referrers repository: cosign's COSIGN_REPOSITORY, or one repository per
// registry. The referrers there name the image's digest as their subject
// (or a sha256-<hex>.sig tag names it), but live in another repository,
// where a client that looks only next to the image never finds them.

// WithReferrersRepository also looks for every subject's referrers in
// repo (HOST/REPO): its referrers API or fallback index for the subject
// digest, and its cosign tags. It replaces the referrers_repository that
// the configuration names for the subject's registry. Referrers found
// there carry Repository.
func WithReferrersRepository(repo ref.Ref) Opt {
	return func(o *options) {
		r := repo.SetTag("").SetDigest("")
		o.referrersRepo = &r
	}
}

// ParseRepository reads HOST/REPO, a repository without tag or digest,
// for --referrers-repo and the tags command.
func ParseRepository(s string) (ref.Ref, error) {
	r, err := ref.New(s)
	if err == nil && strings.ContainsAny(s[strings.LastIndex(s, "/")+1:], ":@") {
		err = fmt.Errorf("give a repository without tag or digest")
	}
	if err != nil {
		return ref.Ref{}, fmt.Errorf("%w %q: %v (write HOST/REPO)", ErrBadReference, s, err)
	}
	if first, _, slash := strings.Cut(s, "/"); !slash || (!strings.ContainsAny(first, ".:") && first != "localhost") {
		return ref.Ref{}, fmt.Errorf("%w %q: no registry host (write HOST/REPO)", ErrBadReference, s)
	}
	return r.SetTag(""), nil
}

// referrersRepo is where, besides repo itself, the referrers of repo's
// subjects are kept: --referrers-repo, else the registry's configured
// referrers_repository. ok is false when there is none, or it is repo.
func (e *engine) referrersRepo(repo ref.Ref) (ref.Ref, bool) {
	var other ref.Ref
	switch {
	case e.o.referrersRepo != nil:
		other = *e.o.referrersRepo
	default:
		h, found := e.o.cfg.Host(repo.Registry)
		if !found || h.ReferrersRepository == "" {
			return ref.Ref{}, false
		}
		r, err := ParseRepository(h.ReferrersRepository)
		if err != nil {
			return ref.Ref{}, false // config validation names it
		}
		other = r
	}
	if other.Registry == repo.Registry && other.Repository == repo.Repository {
		return ref.Ref{}, false
	}
	return other, true
}

// isReferrersRepo reports whether repo is a referrers repository: the
// one --referrers-repo names, or a registry's referrers_repository.
func (e *engine) isReferrersRepo(repo ref.Ref) bool {
	if r := e.o.referrersRepo; r != nil && r.Registry == repo.Registry && r.Repository == repo.Repository {
		return true
	}
	for _, h := range e.o.cfg.Registries {
		if h.ReferrersRepository == "" {
			continue
		}
		if r, err := ParseRepository(h.ReferrersRepository); err == nil && r.Registry == repo.Registry && r.Repository == repo.Repository {
			return true
		}
	}
	return false
}

// elsewhere is the repository to name on referrers found through subj:
// empty in the subject's own repository.
func (s *subjectRun) elsewhere(subj ref.Ref) string {
	if subj.Registry == s.repo.Registry && subj.Repository == s.repo.Repository {
		return ""
	}
	return subj.SetDigest("").SetTag("").CommonName()
}

// repoOf is the repository a referrer's manifest is read from.
func (s *subjectRun) repoOf(r Referrer) ref.Ref {
	if r.Repository == "" {
		return s.repo
	}
	other, err := ref.New(r.Repository)
	if err != nil {
		return s.repo
	}
	return other.SetTag("")
}

// listElsewhere finds the referrers of digest in the referrers repository
// other, with that repository's own method: its referrers API when its
// registry serves one, else its fallback index; and its cosign tags. A
// lookup that fails makes the result partial, as in the subject's own
// repository.
func (s *subjectRun) listElsewhere(ctx context.Context, other ref.Ref, digest string) []Referrer {
	subj := other.SetDigest(digest)
	var listing *tagListing
	where := "referrers repository " + other.Registry + "/" + other.Repository
	method := s.e.o.method
	if method == MethodAuto {
		c := s.e.capability(ctx, other)
		switch {
		case c.ReferrersAPI == probe.Unsupported && c.ReferrersReason != finding.ReferrersWrongContentType:
			method = MethodTags
		default:
			method = MethodAPI
		}
	}
	var out []Referrer
	if method == MethodAPI {
		rs, err := s.apiList(ctx, subj)
		out = append(out, rs...)
		switch {
		case err == nil:
			if !s.e.o.allTags {
				// As next to the image: four HEADs tell what the tags add.
				listing = s.tagHeads(ctx, subj)
			}
		case err.fallback && s.e.o.method == MethodAuto:
			method = MethodTags
		default:
			s.fail(where+": referrers API for "+ShortDigest(digest), *err)
		}
	}
	if listing == nil {
		listing = s.e.tagList(other)
	}
	if method == MethodTags {
		if !listing.ok() {
			s.fail(where, *listing.failure)
		} else {
			out = append(out, s.tagIndexList(ctx, subj, listing)...)
		}
	}
	if listing.ok() {
		out = append(out, s.cosignList(ctx, subj, listing)...)
	} else if method == MethodAPI {
		s.finding(finding.Finding{Severity: finding.SeverityWarn, Code: finding.CosignTagsUnchecked,
			Summary: "Cosign-style tags in " + where + " could not be checked: " + listing.failure.finding.Summary})
	}
	return out
}

// withoutSeen drops referrers whose digest is already in have.
func withoutSeen(have, more []Referrer) []Referrer {
	seen := map[string]bool{}
	for _, r := range have {
		seen[r.Digest] = true
	}
	out := have
	for _, r := range more {
		if !seen[r.Digest] {
			seen[r.Digest] = true
			out = append(out, r)
		}
	}
	return out
}
