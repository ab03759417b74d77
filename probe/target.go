package probe

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/refdoctor/refdoctor/config"
)

// ErrBadTarget marks a target the operator typed that cannot be probed.
var ErrBadTarget = errors.New("invalid probe target")

// Target is what one probe looks at: a registry host, optionally a
// repository in it and a subject digest in that repository.
type Target struct {
	Host       string `json:"host"`
	Repository string `json:"repository,omitempty"`
	Digest     string `json:"digest,omitempty"`
}

// String renders the target as it is typed on the command line.
func (t Target) String() string {
	s := t.Host
	if t.Repository != "" {
		s += "/" + t.Repository
	}
	if t.Digest != "" {
		s += "@" + t.Digest
	}
	return s
}

var (
	// repoPattern is the OCI distribution-spec repository name grammar.
	repoPattern   = regexp.MustCompile(`^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$`)
	digestPattern = regexp.MustCompile(`^(?:sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$`)
)

// ParseTarget reads HOST, HOST/REPO or HOST/REPO@DIGEST.
func ParseTarget(s string) (Target, error) {
	in := s
	if strings.Contains(s, "://") {
		return Target{}, fmt.Errorf("%w %q: drop the scheme (write HOST[/REPO[@DIGEST]]; use --plain-http HOST for http)", ErrBadTarget, in)
	}
	var t Target
	if i := strings.Index(s, "@"); i >= 0 {
		t.Digest = s[i+1:]
		s = s[:i]
		if !digestPattern.MatchString(t.Digest) {
			return Target{}, fmt.Errorf("%w %q: %q is not a digest (expected sha256: and 64 lowercase hex characters)", ErrBadTarget, in, t.Digest)
		}
	}
	host, repo, _ := strings.Cut(s, "/")
	if err := config.ValidateHost(host); err != nil {
		return Target{}, fmt.Errorf("%w %q: %v", ErrBadTarget, in, err)
	}
	t.Host = host
	if repo != "" {
		if strings.Contains(repo, ":") {
			return Target{}, fmt.Errorf("%w %q: tags are not probe targets; give HOST/REPO or HOST/REPO@DIGEST", ErrBadTarget, in)
		}
		if !repoPattern.MatchString(repo) {
			return Target{}, fmt.Errorf("%w %q: %q is not a repository name (lowercase letters, digits, separators . _ - and /)", ErrBadTarget, in, repo)
		}
		if (host == "docker.io" || host == "registry-1.docker.io" || host == "index.docker.io") && !strings.Contains(repo, "/") {
			repo = "library/" + repo
		}
		t.Repository = repo
	} else if strings.HasSuffix(s, "/") {
		return Target{}, fmt.Errorf("%w %q: empty repository after the host", ErrBadTarget, in)
	}
	if t.Digest != "" && t.Repository == "" {
		return Target{}, fmt.Errorf("%w %q: a digest needs a repository (HOST/REPO@DIGEST)", ErrBadTarget, in)
	}
	return t, nil
}
