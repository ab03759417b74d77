package runbook

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"

	"github.com/refdoctor/refdoctor/discovery"
	"github.com/refdoctor/refdoctor/probe"
)

// Targets are what the operator is troubleshooting: registries, one image,
// one bundle, one export log.
type Targets struct {
	// Registries are HOST, HOST/REPO or HOST/REPO@DIGEST probe targets.
	Registries []string `json:"registries,omitempty"`
	// Image is HOST/REPO:TAG or HOST/REPO@DIGEST.
	Image string `json:"image,omitempty"`
	// Source is where Image was copied from, when Image is a mirror's: the
	// compare step reads both (HOST/REPO:TAG or HOST/REPO@DIGEST).
	Source     string `json:"source,omitempty"`
	Repository string `json:"repository,omitempty"`
	Digest     string `json:"digest,omitempty"`
	// Referrer is a referrer's digest a check found, for the commands
	// that look at one.
	Referrer string `json:"referrer,omitempty"`
	Bundle   string `json:"bundle,omitempty"`
	// LogFile is the exporter's log to read (not refdoctor's own log).
	LogFile string `json:"log_file,omitempty"`
	// PlainHTTP are hosts reached over http rather than https.
	PlainHTTP []string `json:"plain_http,omitempty"`
}

// Placeholders shown in commands for targets the operator did not give.
const (
	PlaceholderRegistry   = "<registry>"
	PlaceholderRepository = "<repository>"
	PlaceholderDigest     = "<digest>"
	PlaceholderImage      = "<image>"
	PlaceholderSource     = "<source-image>"
	PlaceholderBundle     = "<bundle.tgz>"
	PlaceholderLogFile    = "<export.log>"
	PlaceholderReferrer   = "<referrer-digest>"
)

// Complete derives what the image reference says: its registry (added to
// Registries when none is given), its repository and, for a reference by
// digest, its digest. Values already set are kept.
func (t Targets) Complete() Targets {
	t.Registries = slices.Clone(t.Registries)
	t.PlainHTTP = slices.Clone(t.PlainHTTP)
	host, repo, digest, ok := splitImage(t.Image)
	if !ok {
		return t
	}
	if len(t.Registries) == 0 {
		t.Registries = []string{host}
	}
	if t.Repository == "" {
		t.Repository = repo
	}
	if t.Digest == "" {
		t.Digest = digest
	}
	return t
}

// Validate checks that the registries and the image can be parsed, so a
// caller can report bad input before running anything.
func (t Targets) Validate() error {
	var errs []error
	for _, r := range t.Registries {
		if _, err := probe.ParseTarget(r); err != nil {
			errs = append(errs, err)
		}
	}
	if t.Image != "" {
		if _, err := discovery.ParseReference(t.Image); err != nil {
			errs = append(errs, err)
		}
	}
	if t.Source != "" {
		if _, err := discovery.ParseReference(t.Source); err != nil {
			errs = append(errs, fmt.Errorf("source: %w", err))
		}
	}
	return errors.Join(errs...)
}

// splitImage reads HOST/REPO[:TAG][@DIGEST] through the same parser
// discovery uses, so the repository is normalised the same way.
func splitImage(image string) (host, repo, digest string, ok bool) {
	if image == "" {
		return "", "", "", false
	}
	r, err := discovery.ParseReference(image)
	if err != nil {
		return "", "", "", false
	}
	return r.Registry, r.Repository, r.Digest, true
}

// imageHost is the image's registry, or "".
func (t Targets) imageHost() string {
	host, _, _, _ := splitImage(t.Image)
	return host
}

// registry is the host commands talk to: the image's registry when an
// image is given (so HOST/REPO in a command belong together), else the
// first registry target's host.
func (t Targets) registry() string {
	if h := t.imageHost(); h != "" {
		return h
	}
	for _, r := range t.Registries {
		if pt, err := probe.ParseTarget(r); err == nil {
			return pt.Host
		}
	}
	return ""
}

// repository is the repository commands use: the image's, else one named
// by a HOST/REPO registry target on the same host.
func (t Targets) repository() (host, repo string) {
	t = t.Complete()
	if t.Repository != "" {
		if h := t.imageHost(); h != "" {
			return h, t.Repository
		}
		return t.registry(), t.Repository
	}
	for _, r := range t.Registries {
		if pt, err := probe.ParseTarget(r); err == nil && pt.Repository != "" {
			return pt.Host, pt.Repository
		}
	}
	return "", ""
}

// isPlainHTTP reports whether host is reached over http.
func (t Targets) isPlainHTTP(host string) bool {
	return host != "" && slices.Contains(t.PlainHTTP, host)
}

// probeTargets are the probe targets: every registry plus the image's
// registry, which is probed with the image's repository (and digest) for a
// certain verdict. A bare HOST entry for the image's host is merged into
// that target rather than probed twice.
func (t Targets) probeTargets() ([]probe.Target, error) {
	var out []probe.Target
	for _, r := range t.Registries {
		pt, err := probe.ParseTarget(r)
		if err != nil {
			return nil, err
		}
		if !slices.Contains(out, pt) {
			out = append(out, pt)
		}
	}
	host, repo, digest, ok := splitImage(t.Image)
	if t.Image != "" && !ok {
		_, err := discovery.ParseReference(t.Image)
		return nil, err
	}
	if ok {
		img := probe.Target{Host: host, Repository: repo, Digest: digest}
		merged := false
		for i, pt := range out {
			switch {
			case pt == img:
				merged = true
			case pt.Host == host && pt.Repository == "":
				out[i], merged = img, true
			}
			if merged {
				break
			}
		}
		if !merged {
			out = append(out, img)
		}
	}
	return out, nil
}

// Vars are the values command templates see.
type Vars struct {
	Registry   string
	Repository string
	Digest     string
	Image      string
	// Source is the image Image was copied from (PlaceholderSource when
	// none is given); SourcePlainHTTP says it is reached over http.
	Source          string
	SourcePlainHTTP bool
	// SourceHost is the source's registry when it is another than
	// Registry (for a second --plain-http), else empty.
	SourceHost string
	Bundle     string
	LogFile    string
	// Scheme is http for plain-HTTP hosts, https otherwise.
	Scheme    string
	PlainHTTP bool
	// Hostname is Registry without its port, for TLS server names.
	Hostname string
	// HostPort is Registry with the port (443 when none is given).
	HostPort string
	// FallbackTag is the digest written as a tag, sha256-<hex>: the
	// referrers tag schema's tag and the bundle's folder name.
	FallbackTag string
	// Repo is Registry/Repository; Ref is Repo@Digest.
	Repo string
	Ref  string
	// ReferrerDigest is a referrer the check found; ReferrerHex its hex,
	// the name of its file in a bundle.
	ReferrerDigest string
	ReferrerHex    string
}

// Vars fills the template values from the targets, with placeholders for
// what is missing.
func (t Targets) Vars() Vars {
	t = t.Complete()
	or := func(v, placeholder string) string {
		if v == "" {
			return placeholder
		}
		return v
	}
	reg := t.registry()
	_, repo := t.repository()
	digest := t.Digest
	if digest == "" {
		for _, r := range t.Registries {
			if pt, err := probe.ParseTarget(r); err == nil && pt.Digest != "" && pt.Repository == repo {
				digest = pt.Digest
				break
			}
		}
	}
	v := Vars{
		Registry:       or(reg, PlaceholderRegistry),
		Repository:     or(repo, PlaceholderRepository),
		Digest:         or(digest, PlaceholderDigest),
		Image:          or(t.Image, PlaceholderImage),
		Source:         or(t.Source, PlaceholderSource),
		Bundle:         or(t.Bundle, PlaceholderBundle),
		LogFile:        or(t.LogFile, PlaceholderLogFile),
		Scheme:         "https",
		PlainHTTP:      t.isPlainHTTP(reg),
		Hostname:       "<host>",
		HostPort:       "<host>:443",
		FallbackTag:    "<sha256-hex>",
		ReferrerDigest: or(t.Referrer, PlaceholderReferrer),
		ReferrerHex:    "<referrer-hex>",
	}
	if _, hex, ok := strings.Cut(t.Referrer, ":"); ok {
		v.ReferrerHex = hex
	}
	if v.PlainHTTP {
		v.Scheme = "http"
	}
	if host, _, _, ok := splitImage(t.Source); ok && host != reg {
		v.SourcePlainHTTP = t.isPlainHTTP(host)
		v.SourceHost = host
	}
	if reg != "" {
		v.Hostname, v.HostPort = reg, net.JoinHostPort(reg, "443")
		if h, _, err := net.SplitHostPort(reg); err == nil {
			v.Hostname, v.HostPort = h, reg
		}
	}
	if alg, hex, ok := strings.Cut(digest, ":"); ok {
		v.FallbackTag = fmt.Sprintf("%s-%s", alg, hex)
	}
	v.Repo = v.Registry + "/" + v.Repository
	v.Ref = v.Repo + "@" + v.Digest
	return v
}
