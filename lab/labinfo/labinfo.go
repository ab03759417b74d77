// Package labinfo describes a running lab as its clients see it: the
// registries with their addresses, logins and CA, the seeded image and the
// bundles. It is the JSON document `refdoctor demo --serve` and the
// refdoctor-lab process print, and what refdoctor turns into the TUI's
// targets. It links no registry implementation, so the refdoctor binary
// can read a lab it does not run.
package labinfo

import (
	"fmt"
	"log/slog"

	"github.com/refdoctor/refdoctor/config"
	"github.com/refdoctor/refdoctor/probe"
	"github.com/refdoctor/refdoctor/registry"
)

// Format is the version of the document; a reader refuses another one.
const Format = 1

// Profiles whose registries the TUI opens on: the seeded image on the
// full OCI 1.1 registry, the fallback tags on the plain-404 one.
const (
	ProfileOCI11       = "oci11"
	ProfileFallback404 = "fallback-404"
	ProfileRateLimit   = "ratelimit-429"
)

// Lab is a running lab.
type Lab struct {
	Format     int        `json:"format"`
	Registries []Registry `json:"registries"`
	Seed       Seed       `json:"seed"`
	Bundles    *Bundles   `json:"bundles,omitempty"`
	// Dir is the lab's working folder (CA file, basic-auth file, bundles);
	// the lab removes it when it stops.
	Dir string `json:"dir"`
}

// Registry is one lab registry.
type Registry struct {
	Name      string `json:"name"`
	Host      string `json:"host"` // 127.0.0.1:PORT
	Profile   string `json:"profile"`
	PlainHTTP bool   `json:"plain_http"`
	// TLSCA is the lab CA PEM file for the TLS profiles.
	TLSCA string `json:"tls_ca,omitempty"`
	// Mimics says in words which real registry this one plays.
	Mimics string `json:"mimics"`
	// Expected is the kind from the known-registry matrix it plays.
	Expected string `json:"expected,omitempty"`
	// Login is the generated login of the registries behind one (basic
	// auth, bearer tokens, the CDN redirect), so that oras and regctl can
	// log in. It is made afresh on every start and never reused.
	Login            *Login `json:"login,omitempty"`
	Subject          string `json:"subject,omitempty"`
	SubjectReferrers int    `json:"subject_referrers,omitempty"`
	OtherHost        string `json:"other_host,omitempty"`
}

// Login is a username and password for a lab registry. Printed with %v or
// logged, the password is hidden; only the JSON document carries it.
type Login struct {
	User     string `json:"user"`
	Password string `json:"password"`
}

// String hides the password.
func (l Login) String() string { return l.User + ":REDACTED" }

// LogValue hides the password from slog as well.
func (l Login) LogValue() slog.Value { return slog.StringValue(l.String()) }

// Seed is what the lab seeded into every registry.
type Seed struct {
	Repository string            `json:"repository"`
	Tag        string            `json:"tag"`
	Index      string            `json:"index"`
	Platforms  map[string]string `json:"platforms"`
	Referrers  []SeededReferrer  `json:"referrers"`
	CosignTags []string          `json:"cosign_tags"`
	Single     string            `json:"single"`
}

// SeededReferrer is one referrer manifest the seed pushed.
type SeededReferrer struct {
	Digest       string `json:"digest"`
	ArtifactType string `json:"artifact_type"`
	Subject      string `json:"subject"`
	Category     string `json:"category"`
	MediaType    string `json:"media_type"`
	Size         int64  `json:"size"`
}

// Ref is the seeded tag on host, e.g. "127.0.0.1:5000/demo/app:v1".
func (s Seed) Ref(host string) string { return host + "/" + s.Repository + ":" + s.Tag }

// Bundles are the lab's mirror bundles: one whole, one with a referrer
// altered after export.
type Bundles struct {
	Good     string `json:"good"`
	Tampered string `json:"tampered"`
}

// Check tells whether a document read from a lab process is one this
// refdoctor understands.
func (l Lab) Check() error {
	if l.Format != Format {
		return fmt.Errorf("lab document format %d, want %d: the lab and refdoctor come from different versions", l.Format, Format)
	}
	if len(l.Registries) == 0 {
		return fmt.Errorf("the lab document lists no registries")
	}
	return nil
}

// Config is one registry entry per lab registry: plain HTTP where the lab
// serves HTTP, the lab CA where it serves HTTPS, and the matrix kind it
// plays as expected.
func (l Lab) Config() []config.Registry {
	out := make([]config.Registry, 0, len(l.Registries))
	for _, r := range l.Registries {
		out = append(out, config.Registry{Host: r.Host, PlainHTTP: r.PlainHTTP, CAFile: r.TLSCA, Expected: r.Expected})
	}
	return out
}

// ClientOpts are the registry options of a client of this lab: no logins
// from the machine's docker config, and the lab's own logins.
func (l Lab) ClientOpts() []registry.Opt {
	opts := []registry.Opt{registry.WithoutDockerCreds()}
	for _, r := range l.Registries {
		if r.Login != nil {
			opts = append(opts, registry.WithLogin(r.Host, r.Login.User, r.Login.Password))
		}
	}
	return opts
}

// Names maps each registry's host to its name.
func (l Lab) Names() map[string]string {
	out := make(map[string]string, len(l.Registries))
	for _, r := range l.Registries {
		out[r.Host] = r.Name
	}
	return out
}

// Targets are every registry with the seeded repository.
func (l Lab) Targets() []probe.Target {
	out := make([]probe.Target, 0, len(l.Registries))
	for _, r := range l.Registries {
		out = append(out, probe.Target{Host: r.Host, Repository: l.Seed.Repository})
	}
	return out
}

// first is the first registry of a profile, else the first registry.
func (l Lab) first(profile string) (Registry, bool) {
	for _, r := range l.Registries {
		if r.Profile == profile {
			return r, true
		}
	}
	if len(l.Registries) > 0 {
		return l.Registries[0], true
	}
	return Registry{}, false
}

// Image is the seeded image on the full OCI 1.1 registry: where discovery
// shows every way of finding a referrer.
func (l Lab) Image() string {
	if r, ok := l.first(ProfileOCI11); ok {
		return l.Seed.Ref(r.Host)
	}
	return ""
}

// Repository is the seeded repository on the registry without the
// referrers API: where the fallback tags are.
func (l Lab) Repository() string {
	if r, ok := l.first(ProfileFallback404); ok {
		return r.Host + "/" + l.Seed.Repository
	}
	return ""
}

// RateLimited lists the registries with a Docker Hub-like pull budget
// that the lab can refill, by host.
func (l Lab) RateLimited() map[string]string {
	out := map[string]string{}
	for _, r := range l.Registries {
		if r.Profile == ProfileRateLimit {
			out[r.Host] = r.Name
		}
	}
	return out
}
