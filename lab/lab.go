// Package lab is refdoctor's demo lab: in-process OCI registries on
// 127.0.0.1 that each reproduce one real-world answer to the referrers
// endpoint, seeded with the same multi-platform image, referrers, cosign
// tags and fallback tags.
//
// Every lab registry is a real registry (olareg, in memory), so pushes,
// pulls, tag lists and the referrers API behave as a registry really
// does. Where a vendor answers differently, a thin behaviour layer in front
// of olareg rewrites only the replies that differ (usually just
// /v2/<name>/referrers/<digest>); everything else reaches olareg untouched.
// Tests across the project and `refdoctor demo` use the same lab, so a
// diagnosis shown in the demo is one the tests have seen.
//
// The lab never imports the UI or any charm module: it is an engine
// package.
package lab

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"time"

	"github.com/olareg/olareg"
	olaregconfig "github.com/olareg/olareg/config"

	"github.com/refdoctor/refdoctor/config"
	"github.com/refdoctor/refdoctor/registry"
)

// Profile names the real-world behaviour a lab registry reproduces.
type Profile string

// The profiles, one per row of the compatibility matrix the lab plays.
const (
	// ProfileOCI11 is olareg with the referrers API on: 200 and an OCI index.
	ProfileOCI11 Profile = "oci11"
	// ProfileFallback404 has the API off and answers /referrers with the
	// plain-text "404 page not found" of GHCR, distribution v2/v3 and GitLab.
	ProfileFallback404 Profile = "fallback-404"
	// ProfileNoAPI405 is olareg with the referrers API disabled, answering
	// as olareg does: 405 with a JSON error body (labelled text/plain, as
	// olareg writes the status before its Content-Type header).
	ProfileNoAPI405 Profile = "olareg-405"
	// ProfileArtifactory406 has the API off and answers /referrers with 406
	// Not Acceptable and a JSON error (Artifactory before 7.90.1).
	ProfileArtifactory406 Profile = "artifactory-406"
	// ProfileHTML200 has the API off and answers /referrers with a 200
	// text/html login page (Google Artifact Registry in 2023).
	ProfileHTML200 Profile = "html-200"
	// ProfileJSON200 has the API on underneath, but the /referrers reply is
	// labelled application/json (Harbor 2.8-2.9).
	ProfileJSON200 Profile = "harbor-json-200"
	// ProfileNotImpl501 has the API off and answers /referrers with 501.
	ProfileNotImpl501 Profile = "not-implemented-501"
	// ProfileRateLimit is Docker Hub style: rate-limit headers on every
	// reply and 429 TOOMANYREQUESTS once the pull budget is spent.
	ProfileRateLimit Profile = "ratelimit-429"
	// ProfileAuthRefuse answers every /v2/ request with a bearer challenge
	// whose token service refuses everyone.
	ProfileAuthRefuse Profile = "auth-refuse"
	// ProfileBasicAuth is olareg with HTTP basic auth and the API on; the
	// login is generated per lab start and exposed only by Registry.Login.
	ProfileBasicAuth Profile = "basic-auth"
	// ProfileSlow is ProfileOCI11 with every reply delayed by Spec.Delay.
	ProfileSlow Profile = "slow"
	// ProfileTLS is ProfileOCI11 over HTTPS with a certificate from the lab
	// CA (Registry.TLSCA).
	ProfileTLS Profile = "tls-selfsigned"
	// ProfileTLSExpired serves HTTPS with an expired leaf from the lab CA.
	ProfileTLSExpired Profile = "tls-expired"
	// ProfileTLSWrongHost serves HTTPS with a leaf for another host name
	// (registry.invalid, 192.0.2.10) from the lab CA.
	ProfileTLSWrongHost Profile = "tls-wrong-host"
	// ProfileQuay400 has the API on underneath but answers /referrers of a
	// digest that is not a manifest in the repository with 400 and a JSON
	// error, as Quay 3.12.1 and later do for an unknown subject.
	ProfileQuay400 Profile = "quay-400"
	// ProfileBearer is olareg with the API on behind a working bearer-token
	// flow: a 401 challenge, a token endpoint that issues tokens for the lab
	// login (Registry.Login) and refuses anyone else, and requests with an
	// issued token passed through (Lab.IssuedTokens lists the tokens).
	ProfileBearer Profile = "bearer-auth"
	// ProfileHarbor210 has the API on but answers /referrers of a subject
	// that does not exist with 200, the OCI index type and the body {}
	// (Harbor 2.10).
	ProfileHarbor210 Profile = "harbor-2.10-empty"
	// ProfileGitLab has the API off (plain-text 404 on /referrers, fallback
	// tags written by seeding) and GitLab's tag quirk: a manifest request
	// for the tag sha256-<hex> answers with the manifest sha256:<hex>
	// itself, not the fallback index the tag holds.
	ProfileGitLab Profile = "gitlab-tag-quirk"
)

// profileInfo is what the lab knows about each profile.
type profileInfo struct {
	mimics      string
	expected    string // key in refdoctor's known-registry matrix
	referrerAPI bool   // olareg's referrers API on underneath
	tls         bool
}

var profiles = map[Profile]profileInfo{
	ProfileOCI11:          {mimics: "OCI 1.1 registry (olareg): referrers API answers 200 with an OCI index", expected: "olareg", referrerAPI: true},
	ProfileFallback404:    {mimics: "GHCR / distribution v2-v3 / GitLab (plain-text 404 on /referrers, tag fallback only)", expected: "ghcr"},
	ProfileNoAPI405:       {mimics: "olareg with the referrers API switched off (405 on /referrers)", expected: "olareg"},
	ProfileArtifactory406: {mimics: "JFrog Artifactory before 7.90.1 (406 Not Acceptable on /referrers)", expected: "artifactory"},
	ProfileHTML200:        {mimics: "Google Artifact Registry, 2023 (HTML login page with 200 on /referrers)", expected: "gar"},
	ProfileJSON200:        {mimics: "Harbor 2.8-2.9 (referrers index served as application/json)", expected: "harbor", referrerAPI: true},
	ProfileNotImpl501:     {mimics: "registry answering 501 Not Implemented on /referrers", expected: ""},
	ProfileRateLimit:      {mimics: "Docker Hub (rate-limit headers; 429 TOOMANYREQUESTS once the pull budget is spent)", expected: "dockerhub", referrerAPI: true},
	ProfileAuthRefuse:     {mimics: "bearer-token registry whose token service refuses every request (401)", expected: ""},
	ProfileBasicAuth:      {mimics: "OCI 1.1 registry (olareg) behind HTTP basic auth", expected: "olareg", referrerAPI: true},
	ProfileSlow:           {mimics: "OCI 1.1 registry (olareg) answering every request after a delay", expected: "olareg", referrerAPI: true},
	ProfileTLS:            {mimics: "OCI 1.1 registry (olareg) over HTTPS with a self-signed lab CA", expected: "olareg", referrerAPI: true, tls: true},
	ProfileTLSExpired:     {mimics: "OCI 1.1 registry (olareg) over HTTPS with an expired certificate", expected: "olareg", referrerAPI: true, tls: true},
	ProfileTLSWrongHost:   {mimics: "OCI 1.1 registry (olareg) over HTTPS with a certificate for registry.invalid", expected: "olareg", referrerAPI: true, tls: true},
	ProfileQuay400:        {mimics: "Quay 3.12.1 and later (400 on /referrers for an unknown subject, 200 index otherwise)", expected: "quay", referrerAPI: true},
	ProfileBearer:         {mimics: "OCI 1.1 registry (olareg) behind a bearer-token service (401 challenge, /token for the lab login)", expected: "olareg", referrerAPI: true},
	ProfileHarbor210:      {mimics: "Harbor 2.10 (200 with an OCI index type and body {} on /referrers for an unknown subject)", expected: "harbor", referrerAPI: true},
	ProfileGitLab:         {mimics: "GitLab (plain-text 404 on /referrers; the tag sha256-<hex> resolves to the subject manifest itself)", expected: "gitlab"},
}

// Profiles lists every profile in a stable order.
func Profiles() []Profile {
	return []Profile{
		ProfileOCI11, ProfileFallback404, ProfileNoAPI405, ProfileArtifactory406,
		ProfileHTML200, ProfileJSON200, ProfileNotImpl501, ProfileRateLimit,
		ProfileAuthRefuse, ProfileBasicAuth, ProfileSlow, ProfileTLS,
		ProfileTLSExpired, ProfileTLSWrongHost, ProfileQuay400, ProfileBearer,
		ProfileHarbor210, ProfileGitLab,
	}
}

// Valid reports whether p is a profile the lab knows.
func (p Profile) Valid() bool { _, ok := profiles[p]; return ok }

// ReferrersAPI reports whether olareg's referrers API is on underneath
// this profile, which decides whether seeding leaves fallback tags.
func (p Profile) ReferrersAPI() bool { return profiles[p].referrerAPI }

// TLS reports whether the profile serves HTTPS.
func (p Profile) TLS() bool { return profiles[p].tls }

// Defaults for the knobs of Spec.
const (
	DefaultDelay      = time.Second
	DefaultRateWindow = 6 * time.Hour
	// DefaultRateBudget is the pull budget of the dockerhub-like registry in
	// DefaultSpecs: enough for a probe and a discovery, small enough that a
	// demo session reaches the 429.
	DefaultRateBudget = 12
)

// Spec describes one lab registry to start.
type Spec struct {
	// Name is unique within a lab, e.g. "oci11" or "ghcr-like".
	Name    string
	Profile Profile
	// Delay is how long ProfileSlow waits before each reply (default 1s).
	Delay time.Duration
	// RateBudget is how many GETs of manifests and referrers
	// ProfileRateLimit allows per window before it answers 429; 0 means the
	// budget is already spent.
	RateBudget int
	// RateWindow is ProfileRateLimit's window (default 6h); Retry-After is
	// the seconds left in it.
	RateWindow time.Duration
	// ReferrersPageLimit, when positive, is olareg's Referrer.Limit in bytes
	// so that the referrers API pages with Link headers (relative ones,
	// </v2/<name>/referrers/<digest>?cache=...&page=N>; rel=next).
	ReferrersPageLimit int64

	// The spec knobs below change only GET /v2/<name>/referrers/<digest>
	// and combine with any profile; they matter where the API is on.

	// IgnoreArtifactTypeFilter drops the artifactType query parameter
	// before olareg sees it and removes OCI-Filters-Applied from the reply:
	// a registry that ignores the optional filter and lists every referrer.
	IgnoreArtifactTypeFilter bool
	// LinkLoop makes every referrers reply carry Link: <the same request
	// URL>; rel="next" (relative), so that a client without a cycle guard
	// pages forever.
	LinkLoop bool
	// Throttle429 answers the first N referrers GETs (counted per registry)
	// with Docker Hub's 429: Retry-After: 1, RateLimit headers and a JSON
	// TOOMANYREQUESTS error; later ones pass through, a 429 that clears.
	Throttle429 int
	// NoSeed leaves the registry empty.
	NoSeed bool
}

// Registry is one running lab registry as clients see it.
type Registry struct {
	Name      string  `json:"name"`
	Host      string  `json:"host"` // 127.0.0.1:PORT
	Profile   Profile `json:"profile"`
	PlainHTTP bool    `json:"plain_http"`
	// TLSCA is the lab CA PEM file for the TLS profiles.
	TLSCA string `json:"tls_ca,omitempty"`
	// Mimics says in words which real registry this one plays.
	Mimics string `json:"mimics"`
	// Expected is the kind key from refdoctor's known-registry matrix this
	// registry plays; a probe that disagrees with it has found the point.
	Expected string `json:"expected,omitempty"`
	// Login is set for ProfileBasicAuth and ProfileBearer only and never
	// written as JSON.
	Login *Login `json:"-"`
}

// Login is a username and password for a lab registry.
type Login struct{ User, Password string }

// String hides the password so that a logged Login leaks nothing.
func (l Login) String() string { return l.User + ":REDACTED" }

// LogValue hides the password from slog as well.
func (l Login) LogValue() slog.Value { return slog.StringValue(l.String()) }

// Lab is a set of running registries.
type Lab struct {
	Registries []Registry
	// Seed is what was seeded: the same content and digests in every
	// seeded registry.
	Seed Seed
	// Dir is the lab's working folder (CA files; later bundles).
	Dir string

	ownDir bool
	log    *slog.Logger
	byName map[string]*labRegistry
	wg     sync.WaitGroup

	closeOnce sync.Once
	closeErr  error
}

// labRegistry is the running machinery behind one Registry.
type labRegistry struct {
	spec   Spec
	info   Registry
	ola    *olareg.Server
	layer  *layer
	ln     net.Listener
	server *http.Server
}

type options struct {
	specs    []Spec
	specsSet bool
	dir      string
	log      *slog.Logger
}

// Opt changes how Start builds a lab.
type Opt func(*options)

// WithSpecs starts exactly these registries instead of DefaultSpecs.
func WithSpecs(specs ...Spec) Opt {
	return func(o *options) { o.specs, o.specsSet = append([]Spec(nil), specs...), true }
}

// WithDir uses dir as the lab's working folder and leaves it in place on
// Close. Without it the lab makes a temporary folder and removes it.
func WithDir(dir string) Opt { return func(o *options) { o.dir = dir } }

// WithLogger sends the lab's and olareg's logs to l.
func WithLogger(l *slog.Logger) Opt { return func(o *options) { o.log = l } }

// DefaultSpecs is one registry per profile, named after what it plays.
func DefaultSpecs() []Spec {
	return []Spec{
		{Name: "oci11", Profile: ProfileOCI11},
		{Name: "ghcr-like", Profile: ProfileFallback404},
		{Name: "olareg-405", Profile: ProfileNoAPI405},
		{Name: "artifactory-old", Profile: ProfileArtifactory406},
		{Name: "gar-2023", Profile: ProfileHTML200},
		{Name: "harbor-2.8", Profile: ProfileJSON200},
		{Name: "not-impl", Profile: ProfileNotImpl501},
		{Name: "dockerhub-like", Profile: ProfileRateLimit, RateBudget: DefaultRateBudget},
		{Name: "auth-refuse", Profile: ProfileAuthRefuse},
		{Name: "basic-auth", Profile: ProfileBasicAuth},
		{Name: "slow", Profile: ProfileSlow, Delay: DefaultDelay},
		{Name: "tls", Profile: ProfileTLS},
		{Name: "tls-expired", Profile: ProfileTLSExpired},
		{Name: "tls-wrong-host", Profile: ProfileTLSWrongHost},
		{Name: "quay-like", Profile: ProfileQuay400},
		{Name: "bearer-auth", Profile: ProfileBearer},
		{Name: "harbor-2.10", Profile: ProfileHarbor210},
		{Name: "gitlab-like", Profile: ProfileGitLab},
	}
}

// Start launches the registries, seeds them and switches their behaviour
// on. ctx bounds only the start-up: the registries serve until Close.
func Start(ctx context.Context, opts ...Opt) (_ *Lab, err error) {
	o := options{}
	for _, opt := range opts {
		opt(&o)
	}
	if !o.specsSet {
		o.specs = DefaultSpecs()
	}
	if o.log == nil {
		o.log = slog.New(slog.DiscardHandler)
	}
	if err := validateSpecs(o.specs); err != nil {
		return nil, err
	}
	l := &Lab{Dir: o.dir, log: o.log, byName: map[string]*labRegistry{}}
	if l.Dir == "" {
		dir, err := os.MkdirTemp("", "refdoctor-lab-")
		if err != nil {
			return nil, fmt.Errorf("lab dir: %w", err)
		}
		l.Dir, l.ownDir = dir, true
	} else if err := os.MkdirAll(l.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("lab dir: %w", err)
	}
	defer func() {
		if err != nil {
			_ = l.Close()
		}
	}()

	var ca *labCA
	for _, s := range o.specs {
		if s.Profile.TLS() {
			if ca, err = newLabCA(); err != nil {
				return nil, err
			}
			caFile := filepath.Join(l.Dir, "lab-ca.pem")
			if err := os.WriteFile(caFile, ca.pem, 0o600); err != nil {
				return nil, fmt.Errorf("write lab CA: %w", err)
			}
			ca.file = caFile
			break
		}
	}

	var regs []*labRegistry
	for _, s := range o.specs {
		lr, err := l.newRegistry(s, ca)
		if err != nil {
			return nil, err
		}
		regs = append(regs, lr)
		l.byName[s.Name] = lr
	}

	if err := l.seedAll(ctx, regs); err != nil {
		return nil, err
	}

	for _, lr := range regs {
		l.serve(lr)
		l.Registries = append(l.Registries, lr.info)
	}
	l.log.Info("lab started", "registries", len(regs), "dir", l.Dir)
	return l, nil
}

func validateSpecs(specs []Spec) error {
	if len(specs) == 0 {
		return errors.New("lab: no registries to start")
	}
	seen := map[string]bool{}
	for i, s := range specs {
		if s.Name == "" {
			return fmt.Errorf("lab: spec %d has no name", i)
		}
		if seen[s.Name] {
			return fmt.Errorf("lab: registry name %q is used twice", s.Name)
		}
		seen[s.Name] = true
		if !s.Profile.Valid() {
			return fmt.Errorf("lab: registry %q: unknown profile %q", s.Name, s.Profile)
		}
		if s.Delay < 0 || s.RateWindow < 0 || s.RateBudget < 0 || s.Throttle429 < 0 {
			return fmt.Errorf("lab: registry %q: negative delay, rate window, budget or throttle", s.Name)
		}
	}
	return nil
}

// newRegistry builds olareg, the layer and the public listener of one
// spec. Nothing serves yet: seeding goes through its own address first.
func (l *Lab) newRegistry(s Spec, ca *labCA) (*labRegistry, error) {
	info := profiles[s.Profile]
	if s.Profile == ProfileSlow && s.Delay == 0 {
		s.Delay = DefaultDelay
	}
	if s.Profile == ProfileRateLimit && s.RateWindow == 0 {
		s.RateWindow = DefaultRateWindow
	}
	log := l.log.With("registry", s.Name)
	ocfg := olaregconfig.Config{
		Storage: olaregconfig.ConfigStorage{StoreType: olaregconfig.StoreMem},
		API: olaregconfig.ConfigAPI{
			Referrer: olaregconfig.ConfigAPIReferrer{Enabled: &info.referrerAPI, Limit: s.ReferrersPageLimit},
		},
		Log: log,
	}
	var login *Login
	if s.Profile == ProfileBasicAuth || s.Profile == ProfileBearer {
		var err error
		login, err = newLogin()
		if err != nil {
			return nil, err
		}
	}
	if s.Profile == ProfileBasicAuth {
		auth, err := newBasicAuth(l.Dir, s.Name, login)
		if err != nil {
			return nil, fmt.Errorf("lab: registry %s: basic auth: %w", s.Name, err)
		}
		ocfg.Auth = auth
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("lab: registry %s: listen: %w", s.Name, err)
	}
	lr := &labRegistry{
		spec: s,
		ola:  olareg.New(ocfg),
		ln:   ln,
		info: Registry{
			Name:      s.Name,
			Host:      ln.Addr().String(),
			Profile:   s.Profile,
			PlainHTTP: !info.tls,
			Mimics:    mimics(s),
			Expected:  info.expected,
			Login:     login,
		},
	}
	scheme := "http"
	if info.tls {
		scheme = "https"
		leaf, err := ca.leaf(s.Profile)
		if err != nil {
			_ = ln.Close()
			_ = lr.ola.Close()
			return nil, fmt.Errorf("lab: registry %s: %w", s.Name, err)
		}
		lr.ln = tlsListener(ln, leaf)
		lr.info.TLSCA = ca.file
	}
	lr.layer = newLayer(s, lr.ola, scheme+"://"+lr.info.Host, login, log)
	return lr, nil
}

// mimics is the human text for a spec, with its own knobs filled in.
func mimics(s Spec) string {
	m := profiles[s.Profile].mimics
	switch s.Profile {
	case ProfileSlow:
		m += fmt.Sprintf(" (%s per request)", s.Delay)
	case ProfileRateLimit:
		m += fmt.Sprintf(" (budget %d pulls per %s)", s.RateBudget, s.RateWindow)
	}
	if s.IgnoreArtifactTypeFilter {
		m += "; ignores the artifactType filter"
	}
	if s.LinkLoop {
		m += "; its referrers Link header points back to the same page"
	}
	if s.Throttle429 > 0 {
		m += fmt.Sprintf("; the first %d referrers requests answer 429", s.Throttle429)
	}
	return m
}

// serve starts the public server of one registry.
func (l *Lab) serve(lr *labRegistry) {
	lr.server = &http.Server{
		Handler:           lr.layer,
		ReadHeaderTimeout: 10 * time.Second,
		// The TLS profiles exist to fail handshakes; those failures belong
		// in the debug log, not on stderr.
		ErrorLog: log.New(slogWriter{l.log.With("registry", lr.spec.Name)}, "", 0),
	}
	l.wg.Go(func() {
		if err := lr.server.Serve(lr.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			l.log.Error("lab registry stopped", "registry", lr.spec.Name, "err", err)
		}
	})
}

// slogWriter turns net/http's error log lines into debug records.
type slogWriter struct{ log *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	w.log.Debug(string(trimNewline(p)))
	return len(p), nil
}

func trimNewline(p []byte) []byte {
	for len(p) > 0 && (p[len(p)-1] == '\n' || p[len(p)-1] == '\r') {
		p = p[:len(p)-1]
	}
	return p
}

// seedAll pushes the seed into every registry that wants it. It goes
// through a private plain-HTTP address straight to olareg, so that the
// behaviour layers (auth refusal, rate limits, bad TLS) never stand in the
// way and never count the seeding requests. Referrers still land where a
// real push would put them: with the API off olareg sends no OCI-Subject,
// and regclient maintains the fallback tag.
func (l *Lab) seedAll(ctx context.Context, regs []*labRegistry) error {
	type target struct {
		lr   *labRegistry
		host string
		srv  *http.Server
	}
	var targets []target
	defer func() {
		for _, t := range targets {
			_ = t.srv.Close()
		}
	}()
	cfg := config.Defaults()
	var clientOpts []registry.Opt
	for _, lr := range regs {
		if lr.spec.NoSeed {
			continue
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return fmt.Errorf("lab: seed listener: %w", err)
		}
		srv := &http.Server{Handler: lr.ola, ReadHeaderTimeout: 10 * time.Second}
		t := target{lr: lr, host: ln.Addr().String(), srv: srv}
		targets = append(targets, t)
		l.wg.Go(func() { _ = srv.Serve(ln) })
		cfg.Registries = append(cfg.Registries, config.Registry{Host: t.host, PlainHTTP: true})
		if lr.info.Login != nil {
			clientOpts = append(clientOpts, registry.WithLogin(t.host, lr.info.Login.User, lr.info.Login.Password))
		}
	}
	if len(targets) == 0 {
		return nil
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	defer transport.CloseIdleConnections()
	clientOpts = append(clientOpts,
		registry.WithoutDockerCreds(),
		registry.WithLogger(l.log),
		registry.WithRecorder(registry.NewRecorder(transport)),
	)
	client, err := registry.New(cfg, clientOpts...)
	if err != nil {
		return fmt.Errorf("lab: seed client: %w", err)
	}

	seeds := make([]Seed, len(targets))
	errs := make([]error, len(targets))
	var wg sync.WaitGroup
	for i, t := range targets {
		wg.Go(func() {
			seeds[i], errs[i] = SeedInto(ctx, client, t.host)
			if errs[i] != nil {
				errs[i] = fmt.Errorf("lab: seed %s: %w", t.lr.spec.Name, errs[i])
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	// The seed is deterministic; a difference would mean a registry
	// rewrote content, and every test built on "same digests everywhere"
	// would mislead.
	for i := 1; i < len(seeds); i++ {
		if !reflect.DeepEqual(seeds[0], seeds[i]) {
			return fmt.Errorf("lab: seed of %s differs from %s", targets[i].lr.spec.Name, targets[0].lr.spec.Name)
		}
	}
	l.Seed = seeds[0]
	return nil
}

// Close stops every server and releases olareg's stores. It is safe to
// call more than once.
func (l *Lab) Close() error {
	l.closeOnce.Do(func() {
		var errs []error
		for _, lr := range l.byName {
			if lr.server != nil {
				if err := lr.server.Close(); err != nil {
					errs = append(errs, fmt.Errorf("close %s: %w", lr.spec.Name, err))
				}
			} else if lr.ln != nil {
				_ = lr.ln.Close()
			}
		}
		l.wg.Wait()
		for _, lr := range l.byName {
			if err := lr.ola.Close(); err != nil {
				errs = append(errs, fmt.Errorf("close store of %s: %w", lr.spec.Name, err))
			}
		}
		if l.ownDir && l.Dir != "" {
			if err := os.RemoveAll(l.Dir); err != nil {
				errs = append(errs, fmt.Errorf("remove lab dir: %w", err))
			}
		}
		l.closeErr = errors.Join(errs...)
	})
	return l.closeErr
}

// Get returns the registry called name.
func (l *Lab) Get(name string) (Registry, bool) {
	lr, ok := l.byName[name]
	if !ok || lr.server == nil {
		return Registry{}, false
	}
	return lr.info, true
}

// Config is config.Defaults plus one registry entry per lab registry, so a
// client built from it reaches every lab registry: plain HTTP where the
// lab serves HTTP, the lab CA file where it serves HTTPS, and the matrix
// kind it plays as expected.
func (l *Lab) Config() config.Config {
	cfg := config.Defaults()
	for _, r := range l.Registries {
		cfg.Registries = append(cfg.Registries, config.Registry{
			Host:      r.Host,
			PlainHTTP: r.PlainHTTP,
			CAFile:    r.TLSCA,
			Expected:  r.Expected,
		})
	}
	return cfg
}

// Requests is the number of HTTP requests that reached the named registry
// since it started serving (seeding is not counted); tests use it to count
// what a check cost.
func (l *Lab) Requests(name string) int64 {
	lr, ok := l.byName[name]
	if !ok {
		return 0
	}
	return lr.layer.requests.Load()
}

// IssuedTokens lists, in issue order, the bearer tokens the named
// ProfileBearer registry has handed out; it is empty for other registries.
// Tests use it to check that no token leaks into logs or reports.
func (l *Lab) IssuedTokens(name string) []string {
	lr, ok := l.byName[name]
	if !ok || lr.layer.tokens == nil {
		return nil
	}
	return lr.layer.tokens.issuedTokens()
}

// newLogin makes a fresh login so that no lab password is ever reused or
// written anywhere.
func newLogin() (*Login, error) {
	b := make([]byte, 18)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("lab: login: %w", err)
	}
	return &Login{User: "lab-" + hex.EncodeToString(b[:3]), Password: hex.EncodeToString(b[3:])}, nil
}

// ClientOpts are the registry options for a client of this lab: no logins
// from the machine's docker config, and the lab's own logins.
func (l *Lab) ClientOpts() []registry.Opt {
	opts := []registry.Opt{registry.WithoutDockerCreds()}
	for _, r := range l.Registries {
		if r.Login != nil {
			opts = append(opts, registry.WithLogin(r.Host, r.Login.User, r.Login.Password))
		}
	}
	return opts
}
