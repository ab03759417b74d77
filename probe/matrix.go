package probe

import (
	"bytes"
	_ "embed"
	"fmt"
	"net"
	"path"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/refdoctor/refdoctor/config"
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
