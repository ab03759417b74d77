package probe

import (
	"bytes"
	_ "embed"
	"fmt"
	"net"
	"path"
	"regexp"
	"slices"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/refdoctor/refdoctor/config"
	"github.com/refdoctor/refdoctor/finding"
)

//go:embed matrix.toml
var matrixTOML []byte

// Kind is one row of the known-registry matrix.
type Kind struct {
	Key          string   `toml:"key" json:"kind"`
	Name         string   `toml:"name" json:"name"`
	ReferrersAPI string   `toml:"referrers_api" json:"referrers_api"`
	Since        string   `toml:"since" json:"since,omitempty"`
	LastSeen     string   `toml:"last_seen" json:"last_seen"`
	Hosts        []string `toml:"hosts" json:"-"`
	HostPatterns []string `toml:"host_patterns" json:"-"`
	FallbackTags bool     `toml:"fallback_tags" json:"fallback_tags"`
	Notes        string   `toml:"notes" json:"notes,omitempty"`
	// Sources back the row's since date (a release note, an issue).
	Sources []string `toml:"sources" json:"sources,omitempty"`
	// Quirks are dated facts about this kind, each with its source; those
	// with a match are recognised in a probe's replies.
	Quirks []Quirk `toml:"quirk" json:"-"`
}

// Quirk is one dated fact about a registry kind, seen in public trackers
// or release notes.
type Quirk struct {
	// AsOf is when the fact was seen: YYYY-MM, or a span such as
	// 2024-2026 when the source gives no finer date.
	AsOf string `toml:"as_of" json:"as_of"`
	// Fact says what the registry does, in words.
	Fact string `toml:"fact" json:"fact"`
	// Source names where it was seen (owner/repo#issue, a release note).
	Source string `toml:"source" json:"source"`
	// Advice is the next step when a probe sees it.
	Advice string `toml:"advice" json:"advice,omitempty"`
	// Match recognises the fact in a probe's referrers replies; without
	// one the fact is documentation only.
	Match *QuirkMatch `toml:"match" json:"-"`
}

// QuirkMatch says how a quirk shows in a probe's referrers replies; every
// condition given must hold.
type QuirkMatch struct {
	// Status is the status of a referrers reply (any reply at the end of
	// a redirect chain, first probe or second).
	Status int `toml:"status"`
	// RedirectStatus is the status of a redirect on the way.
	RedirectStatus int `toml:"redirect_status"`
	// Reason is the verdict's reason code (ReferrersHTMLReply...).
	Reason string `toml:"reason"`
	// MinRetryAfter is a Retry-After of at least this many seconds.
	MinRetryAfter int `toml:"min_retry_after"`
	// NoChallenge is a 401 without WWW-Authenticate.
	NoChallenge bool `toml:"no_challenge"`
}

// Seen renders AsOf for a sentence: "as of 2026-04", "seen 2024-2026".
func (q Quirk) Seen() string {
	if len(q.AsOf) == 9 && q.AsOf[4] == '-' {
		return "seen " + q.AsOf
	}
	return "as of " + q.AsOf
}

// Matrix is the known-registry matrix, loaded from the embedded table.
type Matrix struct {
	Kinds []Kind `toml:"kind"`
}

var defaultMatrix = mustLoadMatrix(matrixTOML)

// DefaultMatrix returns the embedded known-registry matrix.
func DefaultMatrix() Matrix { return defaultMatrix }

func mustLoadMatrix(data []byte) Matrix {
	m, err := LoadMatrix(data)
	if err != nil {
		panic(err)
	}
	return m
}

// LoadMatrix decodes and checks a matrix table strictly.
func LoadMatrix(data []byte) (Matrix, error) {
	var m Matrix
	md, err := toml.NewDecoder(bytes.NewReader(data)).Decode(&m)
	if err != nil {
		return m, fmt.Errorf("registry matrix: %w", err)
	}
	if u := md.Undecoded(); len(u) > 0 {
		return m, fmt.Errorf("registry matrix: unknown keys %v", u)
	}
	seen := map[string]bool{}
	for _, k := range m.Kinds {
		switch {
		case k.Key == "" || k.Name == "":
			return m, fmt.Errorf("registry matrix: a kind lacks key or name")
		case seen[k.Key]:
			return m, fmt.Errorf("registry matrix: kind %q listed twice", k.Key)
		case k.ReferrersAPI != "supported" && k.ReferrersAPI != "unsupported" && k.ReferrersAPI != "varies":
			return m, fmt.Errorf("registry matrix: kind %q: referrers_api %q is not supported|unsupported|varies", k.Key, k.ReferrersAPI)
		case k.LastSeen == "":
			return m, fmt.Errorf("registry matrix: kind %q has no last_seen date", k.Key)
		}
		for _, p := range k.HostPatterns {
			if _, err := path.Match(p, "x"); err != nil {
				return m, fmt.Errorf("registry matrix: kind %q: bad host pattern %q", k.Key, p)
			}
		}
		if k.Since != "" && len(k.Sources) == 0 && !strings.Contains(k.Since, ".") {
			return m, fmt.Errorf("registry matrix: kind %q: since %q has no sources", k.Key, k.Since)
		}
		for i, q := range k.Quirks {
			if err := q.check(); err != nil {
				return m, fmt.Errorf("registry matrix: kind %q: quirk %d: %w", k.Key, i+1, err)
			}
		}
		seen[k.Key] = true
	}
	return m, nil
}

// Get returns the kind with this key.
func (m Matrix) Get(key string) (Kind, bool) {
	for _, k := range m.Kinds {
		if k.Key == key {
			return k, true
		}
	}
	return Kind{}, false
}

// Match finds the kind a host name belongs to, ignoring the port.
func (m Matrix) Match(host string) (Kind, bool) {
	name := strings.ToLower(host)
	if h, _, err := net.SplitHostPort(name); err == nil {
		name = h
	}
	for _, k := range m.Kinds {
		for _, h := range k.Hosts {
			if h == name {
				return k, true
			}
		}
	}
	for _, k := range m.Kinds {
		for _, p := range k.HostPatterns {
			if ok, _ := path.Match(p, name); ok {
				return k, true
			}
		}
	}
	return Kind{}, false
}

// Where a registry's kind came from (Result.KindSource).
const (
	KindFromConfig = "config"
	KindFromHost   = "host"
)

// KindOf is the kind of host: the one its [[registry]] entry in cfg names
// (expected = "..."), else the row its host name matches. source is
// KindFromConfig or KindFromHost.
func (m Matrix) KindOf(cfg config.Config, host string) (k Kind, source string, ok bool) {
	for _, r := range cfg.Registries {
		if strings.EqualFold(r.Host, host) && r.Expected != "" {
			if k, ok = m.Get(r.Expected); ok {
				return k, KindFromConfig, true
			}
			break
		}
	}
	if k, ok = m.Match(host); ok {
		return k, KindFromHost, true
	}
	return Kind{}, "", false
}

// Keys lists the kinds' keys in the matrix's order.
func (m Matrix) Keys() []string {
	keys := make([]string, len(m.Kinds))
	for i, k := range m.Kinds {
		keys[i] = k.Key
	}
	return keys
}

// CheckConfig reports [[registry]] entries whose expected names no kind
// of the matrix, with the line it is on and the kinds there are, and
// repositories that are not repository names. The error wraps
// config.ErrInvalid.
func (m Matrix) CheckConfig(cfg config.Config) error {
	var problems []string
	for i, r := range cfg.Registries {
		if r.Repository != "" {
			if _, err := ParseTarget(r.Target()); err != nil {
				where := fmt.Sprintf("registry[%d] (%s)", i, r.Host)
				if line := cfg.RegistryKeyLine(i, "repository"); line > 0 {
					where = fmt.Sprintf("line %d: %s", line, where)
				}
				problems = append(problems, fmt.Sprintf("%s: repository = %q: %v", where, r.Repository, err))
			}
		}
		if r.Expected == "" {
			continue
		}
		if _, ok := m.Get(r.Expected); ok {
			continue
		}
		where := fmt.Sprintf("registry[%d] (%s)", i, r.Host)
		if line := cfg.RegistryKeyLine(i, "expected"); line > 0 {
			where = fmt.Sprintf("line %d: %s", line, where)
		}
		problems = append(problems, fmt.Sprintf("%s: expected = %q is not a registry kind refdoctor knows; use one of %s, or leave expected out to recognise the kind from the host name",
			where, r.Expected, strings.Join(m.Keys(), ", ")))
	}
	if len(problems) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s", config.ErrInvalid, strings.Join(problems, "; "))
}

// ExpectsAPI is the matrix's word on whether host serves the referrers
// API: the kind cfg's [[registry]] entry names for it, else the host's own
// row. known is false when neither applies, or the kind "varies".
func (m Matrix) ExpectsAPI(cfg config.Config, host string) (expects, known bool) {
	k, _, ok := m.KindOf(cfg, host)
	if !ok || (k.ReferrersAPI != "supported" && k.ReferrersAPI != "unsupported") {
		return false, false
	}
	return k.ReferrersAPI == "supported", true
}

// asOf is YYYY, YYYY-MM or a span YYYY-YYYY.
var asOf = regexp.MustCompile(`^(20\d\d(-(0[1-9]|1[0-2]))?|20\d\d-20\d\d)$`)

func (q Quirk) check() error {
	switch {
	case !asOf.MatchString(q.AsOf):
		return fmt.Errorf("as_of %q: write YYYY-MM, YYYY or a span YYYY-YYYY", q.AsOf)
	case q.Fact == "" || q.Source == "":
		return fmt.Errorf("as_of %s: a fact and its source are required", q.AsOf)
	}
	if m := q.Match; m != nil {
		if *m == (QuirkMatch{}) {
			return fmt.Errorf("%q: an empty match", q.Fact)
		}
		if m.Reason != "" && !finding.Code(m.Reason).Known() {
			return fmt.Errorf("%q: match reason %q is no finding code", q.Fact, m.Reason)
		}
	}
	return nil
}

// Observation is what a probe saw of the referrers endpoint, as a quirk
// matches it.
type Observation struct {
	// Statuses are the replies at the end of each redirect chain.
	Statuses []int
	// Redirects are the redirect statuses on the way.
	Redirects []int
	Reason    finding.Code
	// RetryAfter is the longest Retry-After, in seconds.
	RetryAfter int
	// Unchallenged is true for a 401 without WWW-Authenticate.
	Unchallenged bool
	// Evidence says what was seen, for the finding.
	Evidence string
}

// Matches reports whether the observation shows the quirk.
func (m QuirkMatch) Matches(o Observation) bool {
	switch {
	case m.Status != 0 && !slices.Contains(o.Statuses, m.Status):
	case m.RedirectStatus != 0 && !slices.Contains(o.Redirects, m.RedirectStatus):
	case m.Reason != "" && string(o.Reason) != m.Reason:
	case m.MinRetryAfter != 0 && o.RetryAfter < m.MinRetryAfter:
	case m.NoChallenge && !o.Unchallenged:
	default:
		return true
	}
	return false
}

// KnownBehaviour is the first of the kind's quirks the observation shows.
func (k Kind) KnownBehaviour(o Observation) (Quirk, bool) {
	for _, q := range k.Quirks {
		if q.Match != nil && q.Match.Matches(o) {
			return q, true
		}
	}
	return Quirk{}, false
}
