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
// Some profiles add a second listener (a CDN, a sign-in page, GitHub's
// packages endpoint) under another host name, and two are plain web
// servers rather than registries, standing for a wrong address.
// Tests across the project and `refdoctor demo` use the same lab, so a
// diagnosis shown in the demo is one the tests have seen. Helpers for
// tests live in lab/labtest, so the refdoctor binary links no test code
// of the lab.
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
	"github.com/refdoctor/refdoctor/lab/labinfo"
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

	// The profiles below reproduce registries on a bad day: replies that
	// are valid but hard (many pages, a huge index, redirects), replies
	// that never finish, and servers or vendors that answer something other
	// than the spec's reply. adversity.go plays them; each constant says
	// which real registry it stands for and where that was seen.

	// ProfileLinkPages is olareg paging its referrers with its own
	// Referrer.Limit: the subject Registry.Subject (demo/bad-day:v1)
	// carries 600 referrers served 5 per page over 120 pages, each page a
	// valid OCI index whose Link header (relative, olareg's own
	// "</v2/<name>/referrers/<digest>?cache=...&page=N>; rel=next") leads
	// to the next. regctl and oras list all 600. Real registries page
	// long lists the same way (distribution-spec "Listing Referrers").
	//
	// The 600 referrers reach olareg as an OCI layout whose fallback index
	// olareg converts into its referrers list when it loads the layout, on
	// the first request for demo/bad-day (0.1 to 0.4 s, mostly writing 600
	// small files); pushed one by one they cost 1-3 s, 25 s under the race
	// detector, as olareg rewrites the whole list on every push.
	ProfileLinkPages Profile = "link-pages"
	// ProfileLinkLoop pages Registry.Subject's 12 referrers 3 per page with
	// olareg's own Link headers, and the last page's reply carries a Link
	// back to the first page (the same request without olareg's cache and
	// page parameters): a paginator bug that sends clients round forever.
	// Any other paged list on this registry loops the same way.
	ProfileLinkLoop Profile = "link-loop"
	// ProfileRedirect307 answers GET and HEAD of /referrers with 307 and a
	// relative Location on the same host (/relocated/v2/...), which serves
	// olareg's own reply: a registry behind a front proxy that moved its
	// API path.
	ProfileRedirect307 Profile = "redirect-307"
	// ProfileRedirectCDN is olareg behind a bearer-token service (as
	// ProfileBearer) whose /referrers replies come from another host: an
	// authorised GET or HEAD gets 307 to Registry.OtherHost (a second
	// listener named localhost, as a CDN has its own host name) with a
	// signed URL, and that host serves olareg's reply to a valid signature
	// without any login. Docker Hub and ECR hand blobs to CDNs this way;
	// Lab.OtherHostRequests tells whether a client carried its
	// Authorization header across.
	ProfileRedirectCDN Profile = "redirect-cdn"
	// ProfileLogin302 answers GET and HEAD of /referrers with 302 to a
	// sign-in page on another host (Registry.OtherHost, standing for
	// accounts.google.com) that answers 200 text/html: Google Artifact
	// Registry and registry.k8s.io (google/go-containerregistry#1968,
	// oras-project/oras-go#633).
	ProfileLogin302 Profile = "login-302"
	// ProfileHugeIndex serves, for Registry.Subject, one valid referrers
	// index of 22,000 descriptors (over 5 MiB, past the 4 MiB that the
	// spec recommends for manifests and that clients often cap replies at).
	// Three of them are real referrers olareg lists; the layer appends
	// 21,997 generated descriptors (annotation dev.refdoctor.lab.generated)
	// to olareg's real reply. Real ones cost too much for a lab that every
	// test and demo starts: pushed one by one, olareg rewrites the whole
	// list per push (600 took 1-3 s, 2,000 took 23 s, 4,000 two minutes);
	// as an OCI layout, 22,000 manifests take about 5 s to write and 1 s
	// for olareg to load. The generated descriptors name manifests that do
	// not exist in the repository.
	ProfileHugeIndex Profile = "huge-index"
	// ProfileStalledBody sends the headers of every referrers GET reply on
	// time (status, index Content-Type, the full Content-Length) and the
	// first half of olareg's body, then stalls until the client gives up
	// or the lab closes: a proxy or registry that hangs mid-reply.
	ProfileStalledBody Profile = "stalled-body"
	// ProfileTrickleBody sends the headers of every referrers GET reply on
	// time, then olareg's body one byte per Spec.TrickleInterval (1 byte/s
	// by default): a reply that never finishes within any client's timeout.
	ProfileTrickleBody Profile = "trickle-body"
	// ProfileNoArtifactType lists referrers without artifactType, although
	// the manifests carry one, and ignores the artifactType filter (no
	// OCI-Filters-Applied): Azure Container Registry's listings
	// (Azure/acr#784, where oras discover shows "<unknown>").
	ProfileNoArtifactType Profile = "no-artifact-type"
	// ProfileMislabelledTypes lists every referrer with its config media
	// type as artifactType, whatever the manifest's own artifactType says
	// (application/vnd.oci.empty.v1+json for artifacts made like oras
	// attach), and ignores the artifactType filter: go-containerregistry's
	// pkg/registry (handleReferrers in v0.22.1 lists config.mediaType and
	// leaves the filter as a TODO), used by many test setups and small
	// registries.
	ProfileMislabelledTypes Profile = "mislabelled-types"
	// ProfileMislabelledFallback is GHCR with fallback indexes written by
	// cosign: the referrers API is off (plain-text 404), and every
	// sha256-<hex> fallback index lists its entries with artifactType
	// application/vnd.oci.empty.v1+json while the manifests carry their own
	// types (oci-referrers.md, GHCR row). Those indexes are stored as cosign
	// pushed them, not rewritten on the way out.
	ProfileMislabelledFallback Profile = "mislabelled-fallback"
	// ProfileNotARegistry404 is not a registry: Go's file server over an
	// empty folder, answering 404 on /v2/ and on every registry path, as
	// `python3 -m http.server` does.
	ProfileNotARegistry404 Profile = "not-a-registry-404"
	// ProfileNotARegistryHTML is not a registry: a web site that answers
	// every path, /v2/ included, with 200 and the same HTML page.
	ProfileNotARegistryHTML Profile = "not-a-registry-html"
	// ProfileThrottled6h is Docker Hub once the pull budget is spent: every
	// GET of a manifest or of referrers answers 429 TOOMANYREQUESTS with
	// Retry-After: 21600 (the six-hour window) and RateLimit headers
	// showing 0 remaining. HEAD and tag lists pass, as Docker Hub does not
	// count them (docker/hub-feedback#1907).
	ProfileThrottled6h Profile = "throttled-6h"
	// ProfileGHCR303 is GHCR with its /referrers answered by a 303 to
	// github.com's packages endpoint (Registry.OtherHost), with the digest
	// cut at the colon, and that endpoint answering 429 to everyone
	// (artifacthub/hub#4785, NVIDIA/aicr#1957). Underneath the API is off
	// and the fallback tags hold the referrers.
	ProfileGHCR303 Profile = "ghcr-303"
	// ProfileECR2024 is Amazon ECR as of June 2024: a manifest PUT with a
	// subject gets OCI-Subject back (olareg's own, its API is on
	// underneath) but /referrers answers 404, so clients that trust the
	// header write no fallback tag and their referrers are found nowhere
	// (sigstore/sigstore-js#1183). The 404 is Go's plain-text one: the
	// sources record ECR's status, not its body.
	ProfileECR2024 Profile = "ecr-2024"
	// ProfileACR424 is an Azure Container Registry cache rule for ghcr.io
	// since April 2026: /referrers answers 424 Failed Dependency with a
	// JSON error that wraps the upstream's 303 (Azure/acr#891).
	ProfileACR424 Profile = "acr-424"
)

// profileInfo is what the lab knows about each profile.
type profileInfo struct {
	mimics      string
	expected    string // key in refdoctor's known-registry matrix
	referrerAPI bool   // olareg's referrers API on underneath
	tls         bool
	webServer   bool // a plain web server, no olareg at all
	// badDay is how many referrers the profile's own subject
	// (demo/bad-day:v1, Registry.Subject) carries; 0 means it has none.
	badDay int
	// otherHost gives the registry a second listener (Registry.OtherHost).
	otherHost bool
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

	ProfileLinkPages: {mimics: "OCI 1.1 registry (olareg) paging a long list: demo/bad-day:v1 has 600 referrers over 120 pages with relative Link headers",
		expected: "olareg", referrerAPI: true, badDay: linkPagesReferrers},
	ProfileLinkLoop: {mimics: "registry whose referrers pagination loops: after 4 pages of 3 referrers of demo/bad-day:v1, Link points back to page 0",
		expected: "olareg", referrerAPI: true, badDay: linkLoopReferrers},
	ProfileRedirect307: {mimics: "registry behind a proxy that moved its API: 307 from /referrers to another path on the same host",
		expected: "olareg", referrerAPI: true},
	ProfileRedirectCDN: {mimics: "registry behind a bearer-token login whose /referrers replies come from a CDN: 307 to another host with a signed URL",
		expected: "olareg", referrerAPI: true, otherHost: true},
	ProfileLogin302: {mimics: "Google Artifact Registry / registry.k8s.io (302 from /referrers to a sign-in page on another host, answered 200 text/html)",
		expected: "gar", otherHost: true},
	ProfileHugeIndex: {mimics: "OCI 1.1 registry (olareg) with a 5+ MiB referrers index: 22,000 referrers of demo/bad-day:v1 in one page",
		expected: "olareg", referrerAPI: true, badDay: hugeIndexReal},
	ProfileStalledBody: {mimics: "registry or proxy that hangs mid-reply: /referrers headers on time, then half the body and a stall",
		expected: "olareg", referrerAPI: true},
	ProfileTrickleBody: {mimics: "registry or proxy that trickles: /referrers headers on time, then the body at 1 byte per second",
		expected: "olareg", referrerAPI: true},
	ProfileNoArtifactType: {mimics: "Azure Container Registry listings (referrers listed without artifactType although the manifests carry it; filter ignored)",
		expected: "acr", referrerAPI: true},
	ProfileMislabelledTypes: {mimics: "go-containerregistry's pkg/registry (every referrer listed with its config media type as artifactType; filter ignored)",
		expected: "ggcr", referrerAPI: true},
	ProfileMislabelledFallback: {mimics: "GHCR with fallback indexes written by cosign (404 on /referrers; index entries typed application/vnd.oci.empty.v1+json)",
		expected: "ghcr"},
	ProfileNotARegistry404: {mimics: "not a registry: a plain file server (python3 -m http.server) answering 404 on /v2/ and every registry path",
		webServer: true},
	ProfileNotARegistryHTML: {mimics: "not a registry: a web site answering every path, /v2/ included, with 200 text/html",
		webServer: true},
	ProfileThrottled6h: {mimics: "Docker Hub with the pull budget spent (429 with Retry-After: 21600 on every manifest and referrers GET)",
		expected: "dockerhub", referrerAPI: true},
	ProfileGHCR303: {mimics: "GHCR (303 from /referrers to a github.com packages endpoint that answers 429; fallback tags hold the referrers)",
		expected: "ghcr", otherHost: true},
	ProfileECR2024: {mimics: "Amazon ECR, June 2024 (OCI-Subject on manifest PUT, but 404 on /referrers: referrers pushed by trusting clients have no fallback tag)",
		expected: "ecr", referrerAPI: true},
	ProfileACR424: {mimics: "Azure Container Registry cache rule for ghcr.io, April 2026 (424 on /referrers wrapping the upstream's 303)",
		expected: "acr", referrerAPI: true},
}

// Profiles lists every profile in a stable order.
func Profiles() []Profile {
	return []Profile{
		ProfileOCI11, ProfileFallback404, ProfileNoAPI405, ProfileArtifactory406,
		ProfileHTML200, ProfileJSON200, ProfileNotImpl501, ProfileRateLimit,
		ProfileAuthRefuse, ProfileBasicAuth, ProfileSlow, ProfileTLS,
		ProfileTLSExpired, ProfileTLSWrongHost, ProfileQuay400, ProfileBearer,
		ProfileHarbor210, ProfileGitLab,
		ProfileLinkPages, ProfileLinkLoop, ProfileRedirect307, ProfileRedirectCDN,
		ProfileLogin302, ProfileHugeIndex, ProfileStalledBody, ProfileTrickleBody,
		ProfileNoArtifactType, ProfileMislabelledTypes, ProfileMislabelledFallback,
		ProfileNotARegistry404, ProfileNotARegistryHTML, ProfileThrottled6h,
		ProfileGHCR303, ProfileECR2024, ProfileACR424,
	}
}

// Valid reports whether p is a profile the lab knows.
func (p Profile) Valid() bool { _, ok := profiles[p]; return ok }

// ReferrersAPI reports whether olareg's referrers API is on underneath
// this profile, which decides whether seeding leaves fallback tags.
func (p Profile) ReferrersAPI() bool { return profiles[p].referrerAPI }

// TLS reports whether the profile serves HTTPS.
func (p Profile) TLS() bool { return profiles[p].tls }

// WebServer reports whether the profile is a plain web server rather than
// a registry: nothing is seeded into it.
func (p Profile) WebServer() bool { return profiles[p].webServer }

// Defaults for the knobs of Spec.
const (
	DefaultDelay      = time.Second
	DefaultRateWindow = 6 * time.Hour
	// DefaultRateBudget is the pull budget of the dockerhub-like registry in
	// DefaultSpecs: Docker Hub's anonymous allowance (100 pulls per six
	// hours), which a demo session does not spend in normal use: a probe
	// costs one pull, a discovery of the seeded image with its platforms
	// about a dozen. Lab.ResetRateLimit refills it; throttled-6h and a
	// spec with a small RateBudget show the 429.
	DefaultRateBudget = 100
	// DefaultTrickleInterval is ProfileTrickleBody's pause between bytes.
	DefaultTrickleInterval = time.Second
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
	// TrickleInterval is ProfileTrickleBody's pause between two bytes of a
	// referrers reply (default 1s).
	TrickleInterval time.Duration
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
	// BudgetAfter answers every referrers GET after the first N (counted
	// per registry) with 429, Retry-After: 3600 and RateLimit-Remaining: 0:
	// a pull budget that runs out in the middle of a paged list.
	BudgetAfter int
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
	// Login is set for the profiles behind a login (ProfileBasicAuth,
	// ProfileBearer, ProfileRedirectCDN) only and never written as JSON.
	Login *Login `json:"-"`
	// Subject is, for the profiles about one subject's referrers
	// (ProfileLinkPages, ProfileLinkLoop, ProfileHugeIndex), the digest of
	// that subject: the image tagged SeedTag in BadDayRepository.
	// SubjectReferrers is how many referrers its referrers API lists.
	Subject          string `json:"subject,omitempty"`
	SubjectReferrers int    `json:"subject_referrers,omitempty"`
	// OtherHost is the second host (localhost:PORT, a name other than the
	// registry's own 127.0.0.1) that this registry's redirects lead to: a
	// CDN, a sign-in page, github.com's packages endpoint.
	OtherHost string `json:"other_host,omitempty"`
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
	ola    *olareg.Server // nil for the web-server profiles
	layer  *layer
	ln     net.Listener
	server *http.Server
	// other is the second listener of the otherHost profiles.
	other       *otherHost
	otherLn     net.Listener
	otherServer *http.Server
	// stop ends the registry's life: stalled and trickling replies.
	stop context.CancelFunc
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
		{Name: "link-pages", Profile: ProfileLinkPages},
		{Name: "link-loop", Profile: ProfileLinkLoop},
		{Name: "redirect-307", Profile: ProfileRedirect307},
		{Name: "redirect-cdn", Profile: ProfileRedirectCDN},
		{Name: "login-302", Profile: ProfileLogin302},
		{Name: "huge-index", Profile: ProfileHugeIndex},
		{Name: "stalled-body", Profile: ProfileStalledBody},
		{Name: "trickle-body", Profile: ProfileTrickleBody},
		{Name: "no-artifact-type", Profile: ProfileNoArtifactType},
		{Name: "mislabelled-types", Profile: ProfileMislabelledTypes},
		{Name: "ghcr-cosign-fallback", Profile: ProfileMislabelledFallback},
		{Name: "not-a-registry-404", Profile: ProfileNotARegistry404},
		{Name: "not-a-registry-html", Profile: ProfileNotARegistryHTML},
		{Name: "throttled-6h", Profile: ProfileThrottled6h},
		{Name: "ghcr-303", Profile: ProfileGHCR303},
		{Name: "ecr-2024", Profile: ProfileECR2024},
		{Name: "acr-424", Profile: ProfileACR424},
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
		if s.Delay < 0 || s.RateWindow < 0 || s.RateBudget < 0 || s.Throttle429 < 0 || s.BudgetAfter < 0 || s.TrickleInterval < 0 || s.ReferrersPageLimit < 0 {
			return fmt.Errorf("lab: registry %q: negative delay, rate window, budget, throttle, budget-after, trickle interval or page limit", s.Name)
		}
		if s.Profile.WebServer() && (s.IgnoreArtifactTypeFilter || s.LinkLoop || s.Throttle429 > 0 || s.BudgetAfter > 0) {
			return fmt.Errorf("lab: registry %q: %s is a web server, not a registry: the referrers knobs do not apply", s.Name, s.Profile)
		}
	}
	return nil
}

// newRegistry builds olareg, the layer and the public listener of one
// spec. Nothing serves yet: seeding goes through its own address first.
func (l *Lab) newRegistry(s Spec, ca *labCA) (_ *labRegistry, err error) {
	info := profiles[s.Profile]
	if s.Profile == ProfileSlow && s.Delay == 0 {
		s.Delay = DefaultDelay
	}
	if s.Profile == ProfileRateLimit && s.RateWindow == 0 {
		s.RateWindow = DefaultRateWindow
	}
	if s.Profile == ProfileTrickleBody && s.TrickleInterval == 0 {
		s.TrickleInterval = DefaultTrickleInterval
	}
	if info.webServer {
		s.NoSeed = true
	}
	log := l.log.With("registry", s.Name)

	// The bad-day subject is built first: its referrers decide olareg's
	// page limit.
	var bad *badDay
	var layoutDir string
	if info.badDay > 0 && !s.NoSeed {
		perPage := map[Profile]int{ProfileLinkPages: linkPagesPerPage, ProfileLinkLoop: linkLoopPerPage}[s.Profile]
		if bad, err = newBadDay(info.badDay, perPage); err != nil {
			return nil, fmt.Errorf("lab: registry %s: %w", s.Name, err)
		}
		if s.ReferrersPageLimit == 0 {
			s.ReferrersPageLimit = bad.pageLimit
		}
		// olareg's in-memory store loads, on first use, the layout the
		// layer writes here (layer.badDay).
		layoutDir = filepath.Join(l.Dir, "olareg-"+safeFileName(s.Name))
	}
	ocfg := olaregconfig.Config{
		Storage: olaregconfig.ConfigStorage{StoreType: olaregconfig.StoreMem, RootDir: layoutDir},
		API: olaregconfig.ConfigAPI{
			Referrer: olaregconfig.ConfigAPIReferrer{Enabled: &info.referrerAPI, Limit: s.ReferrersPageLimit},
		},
		Log: log,
	}
	var login *Login
	if s.Profile == ProfileBasicAuth || s.Profile == ProfileBearer || s.Profile == ProfileRedirectCDN {
		if login, err = newLogin(); err != nil {
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
	life, stop := context.WithCancel(context.Background())
	lr := &labRegistry{
		spec: s,
		ln:   ln,
		stop: stop,
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
	defer func() {
		if err != nil {
			lr.release()
		}
	}()
	var next http.Handler
	var web http.Handler
	if info.webServer {
		if web, err = newWebServer(s.Profile, filepath.Join(l.Dir, "www-"+safeFileName(s.Name))); err != nil {
			return nil, fmt.Errorf("lab: registry %s: %w", s.Name, err)
		}
	} else {
		lr.ola = olareg.New(ocfg)
		next = lr.ola
	}
	scheme := "http"
	if info.tls {
		scheme = "https"
		leaf, err := ca.leaf(s.Profile)
		if err != nil {
			return nil, fmt.Errorf("lab: registry %s: %w", s.Name, err)
		}
		lr.ln = tlsListener(ln, leaf)
		lr.info.TLSCA = ca.file
	}
	lr.layer = newLayer(s, next, scheme+"://"+lr.info.Host, login, log, life)
	lr.layer.web = web
	if info.otherHost {
		if lr.otherLn, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			return nil, fmt.Errorf("lab: registry %s: listen for its other host: %w", s.Name, err)
		}
		_, port, _ := net.SplitHostPort(lr.otherLn.Addr().String())
		if lr.other, err = newOtherHost(s.Profile, port, next, &lr.layer.inflight); err != nil {
			return nil, err
		}
		lr.layer.other = lr.other
		lr.info.OtherHost = "localhost:" + port
	}
	if bad != nil {
		ola := lr.ola
		lr.layer.badDay = sync.OnceValue(func() error {
			if err := bad.writeLayout(layoutDir); err != nil {
				return fmt.Errorf("write its layout: %w", err)
			}
			return bad.check(life, ola)
		})
		lr.info.Subject = bad.subject.digest
		lr.info.SubjectReferrers = len(bad.referrers)
		if s.Profile == ProfileHugeIndex {
			lr.layer.huge = &hugeIndex{subject: bad.subject.digest, count: HugeIndexReferrers - len(bad.referrers)}
			lr.info.SubjectReferrers = HugeIndexReferrers
		}
	}
	return lr, nil
}

// release frees what newRegistry took when the registry never served.
func (lr *labRegistry) release() {
	lr.stop()
	if lr.ln != nil {
		_ = lr.ln.Close()
	}
	if lr.otherLn != nil {
		_ = lr.otherLn.Close()
	}
	if lr.ola != nil {
		_ = lr.ola.Close()
	}
}

// mimics is the human text for a spec, with its own knobs filled in.
func mimics(s Spec) string {
	m := profiles[s.Profile].mimics
	switch s.Profile {
	case ProfileSlow:
		m += fmt.Sprintf(" (%s per request)", s.Delay)
	case ProfileRateLimit:
		m += fmt.Sprintf(" (budget %d pulls per %s)", s.RateBudget, s.RateWindow)
	case ProfileTrickleBody:
		if s.TrickleInterval != DefaultTrickleInterval {
			m += fmt.Sprintf(" (here one byte every %s)", s.TrickleInterval)
		}
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
	if s.BudgetAfter > 0 {
		m += fmt.Sprintf("; referrers requests after the first %d answer 429 for an hour", s.BudgetAfter)
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
	if lr.other != nil {
		lr.otherServer = &http.Server{
			Handler:           lr.other,
			ReadHeaderTimeout: 10 * time.Second,
			ErrorLog:          log.New(slogWriter{l.log.With("registry", lr.spec.Name, "host", lr.info.OtherHost)}, "", 0),
		}
		l.wg.Go(func() {
			if err := lr.otherServer.Serve(lr.otherLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
				l.log.Error("lab registry's other host stopped", "registry", lr.spec.Name, "err", err)
			}
		})
	}
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
			if errs[i] == nil {
				errs[i] = t.lr.seedProfile(ctx, seeds[i])
			}
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

// seedProfile pushes, after the common seed, what the registry's profile
// adds to it: the fallback indexes as cosign writes them on GHCR. It talks
// to olareg in process. (The bad-day repository is loaded on first use.)
func (lr *labRegistry) seedProfile(ctx context.Context, seed Seed) error {
	if lr.spec.Profile == ProfileMislabelledFallback {
		if err := mislabelFallbackTags(ctx, lr.ola, seed); err != nil {
			return fmt.Errorf("fallback indexes: %w", err)
		}
	}
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
			if lr.otherServer != nil {
				if err := lr.otherServer.Close(); err != nil {
					errs = append(errs, fmt.Errorf("close the other host of %s: %w", lr.spec.Name, err))
				}
			} else if lr.otherLn != nil {
				_ = lr.otherLn.Close()
			}
			// After the connections are gone, so that a reply cut short
			// reaches no client as if it were whole.
			lr.stop()
		}
		l.wg.Wait()
		for _, lr := range l.byName {
			// Replies still being written (stalled, trickling, huge) end
			// now that the registry's life is over and its connections are
			// closed; olareg's store goes only after them.
			lr.layer.inflight.closeAndWait()
			if lr.ola == nil {
				continue
			}
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
	cfg.Registries = append(cfg.Registries, l.Info(nil).Config()...)
	return cfg
}

// Info describes the running lab as its clients see it, logins included:
// the document refdoctor-lab prints and refdoctor reads.
func (l *Lab) Info(b *Bundles) labinfo.Lab {
	info := labinfo.Lab{Format: labinfo.Format, Dir: l.Dir, Seed: labinfo.Seed{
		Repository: l.Seed.Repository, Tag: l.Seed.Tag, Index: l.Seed.Index,
		Platforms: l.Seed.Platforms, CosignTags: l.Seed.CosignTags, Single: l.Seed.Single,
	}}
	for _, r := range l.Seed.Referrers {
		info.Seed.Referrers = append(info.Seed.Referrers, labinfo.SeededReferrer{Digest: r.Digest, ArtifactType: r.ArtifactType,
			Subject: r.Subject, Category: r.Category, MediaType: r.MediaType, Size: r.Size})
	}
	for _, r := range l.Registries {
		ir := labinfo.Registry{Name: r.Name, Host: r.Host, Profile: string(r.Profile), PlainHTTP: r.PlainHTTP, TLSCA: r.TLSCA,
			Mimics: r.Mimics, Expected: r.Expected, Subject: r.Subject, SubjectReferrers: r.SubjectReferrers, OtherHost: r.OtherHost}
		if r.Login != nil {
			ir.Login = &labinfo.Login{User: r.Login.User, Password: r.Login.Password}
		}
		info.Registries = append(info.Registries, ir)
	}
	if b != nil {
		info.Bundles = &labinfo.Bundles{Good: b.Good, Tampered: b.Tampered}
	}
	return info
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

// OtherHostRequests counts the requests that reached the named registry's
// other host (Registry.OtherHost) and how many of them carried an
// Authorization header: a client that keeps its credentials on their host
// sends none there. Both are 0 for a registry without another host.
func (l *Lab) OtherHostRequests(name string) (requests, withAuthorization int64) {
	lr, ok := l.byName[name]
	if !ok || lr.other == nil {
		return 0, 0
	}
	return lr.other.requests.Load(), lr.other.withAuthorization.Load()
}

// ResetRateLimit refills the pull budget of the named ProfileRateLimit
// registry and starts a new window, as if six hours had passed: what the
// troubleshooter offers once the demo has spent it. It fails for a
// registry without a budget (throttled-6h is throttled for good).
func (l *Lab) ResetRateLimit(name string) error {
	lr, ok := l.byName[name]
	if !ok {
		return fmt.Errorf("lab has no registry %q", name)
	}
	if lr.layer.rate == nil {
		return fmt.Errorf("lab registry %q (%s) has no pull budget to reset", name, lr.spec.Profile)
	}
	lr.layer.rate.reset()
	return nil
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
func (l *Lab) ClientOpts() []registry.Opt { return l.Info(nil).ClientOpts() }
