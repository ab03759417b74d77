package lab

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/regclient/regclient/types/errs"
	"github.com/regclient/regclient/types/manifest"
	"github.com/regclient/regclient/types/mediatype"
	"github.com/regclient/regclient/types/ref"
	"github.com/regclient/regclient/types/referrer"
	"go.uber.org/goleak"
)

const ociIndexType = "application/vnd.oci.image.index.v1+json"

// TestReferrersEndpoint asks every profile's registry for the referrers of
// the seeded index and checks the reply is the one the profile promises.
func TestReferrersEndpoint(t *testing.T) {
	t.Parallel()
	l := sharedLab(t)
	path := "/v2/" + l.Seed.Repository + "/referrers/" + l.Seed.Index
	wantRefs := l.Seed.ReferrersOf(l.Seed.Index)
	if len(wantRefs) != 3 {
		t.Fatalf("seed has %d referrers of the index, want 3", len(wantRefs))
	}

	tests := []struct {
		name        string
		insecure    bool // look past a broken certificate
		noLogin     bool
		status      int
		contentType string
		isIndex     bool // body is an index listing the 3 referrers
		check       func(t *testing.T, r Registry, rep reply)
	}{
		{name: "oci11", status: 200, contentType: ociIndexType, isIndex: true},
		{name: "ghcr-like", status: 404, contentType: "text/plain; charset=utf-8", check: func(t *testing.T, _ Registry, rep reply) {
			if string(rep.body) != "404 page not found\n" {
				t.Errorf("body %q, want Go's plain-text 404", rep.body)
			}
		}},
		// olareg writes the status before it sets Content-Type, so its JSON
		// error goes out sniffed as text/plain: kept as olareg really is.
		{name: "olareg-405", status: 405, contentType: "text/plain; charset=utf-8", check: jsonErrorCode("UNSUPPORTED")},
		{name: "artifactory-old", status: 406, contentType: "application/json", check: func(t *testing.T, _ Registry, rep reply) {
			var e struct {
				Errors []struct {
					Status  int    `json:"status"`
					Message string `json:"message"`
				} `json:"errors"`
			}
			if err := json.Unmarshal(rep.body, &e); err != nil || len(e.Errors) != 1 || e.Errors[0].Status != 406 {
				t.Errorf("body %q is not Artifactory's 406 error", rep.body)
			}
		}},
		{name: "gar-2023", status: 200, contentType: "text/html; charset=utf-8", check: func(t *testing.T, _ Registry, rep reply) {
			if !strings.Contains(string(rep.body), "<form") {
				t.Errorf("body is not a login page: %.200s", rep.body)
			}
		}},
		{name: "harbor-2.8", status: 200, contentType: "application/json", isIndex: true},
		{name: "not-impl", status: 501, contentType: "application/json", check: jsonErrorCode("UNSUPPORTED")},
		{name: "dockerhub-like", status: 200, contentType: ociIndexType, isIndex: true, check: func(t *testing.T, _ Registry, rep reply) {
			if !strings.HasPrefix(rep.header.Get("RateLimit-Limit"), "100000;w=21600") || rep.header.Get("RateLimit-Remaining") == "" || rep.header.Get("Docker-RateLimit-Source") == "" {
				t.Errorf("rate-limit headers missing: %v", rep.header)
			}
		}},
		{name: "auth-refuse", status: 401, contentType: "application/json", check: func(t *testing.T, r Registry, rep reply) {
			want := `Bearer realm="http://` + r.Host + `/token",service="refdoctor-lab",scope="repository:demo/app:pull"`
			if got := rep.header.Get("WWW-Authenticate"); got != want {
				t.Errorf("challenge %q, want %q", got, want)
			}
		}},
		{name: "basic-auth", status: 200, contentType: ociIndexType, isIndex: true},
		{name: "basic-auth", noLogin: true, status: 401, contentType: "text/plain; charset=utf-8", check: func(t *testing.T, _ Registry, rep reply) {
			if got := rep.header.Get("WWW-Authenticate"); !strings.HasPrefix(got, `Basic realm="refdoctor lab"`) {
				t.Errorf("challenge %q, want a Basic one", got)
			}
		}},
		{name: "slow", status: 200, contentType: ociIndexType, isIndex: true},
		{name: "tls", status: 200, contentType: ociIndexType, isIndex: true},
		{name: "tls-expired", insecure: true, status: 200, contentType: ociIndexType, isIndex: true},
		{name: "tls-wrong-host", insecure: true, status: 200, contentType: ociIndexType, isIndex: true},
		// The subject exists: Quay and Harbor 2.10 answer as olareg does.
		{name: "quay-like", status: 200, contentType: ociIndexType, isIndex: true},
		{name: "harbor-2.10", status: 200, contentType: ociIndexType, isIndex: true},
		{name: "bearer-auth", status: 200, contentType: ociIndexType, isIndex: true},
		{name: "bearer-auth", noLogin: true, status: 401, contentType: "application/json", check: func(t *testing.T, r Registry, rep reply) {
			want := `Bearer realm="http://` + r.Host + `/token",service="refdoctor-lab",scope="repository:demo/app:pull"`
			if got := rep.header.Get("WWW-Authenticate"); got != want {
				t.Errorf("challenge %q, want %q", got, want)
			}
		}},
		{name: "gitlab-like", status: 404, contentType: "text/plain; charset=utf-8", check: func(t *testing.T, _ Registry, rep reply) {
			if string(rep.body) != "404 page not found\n" {
				t.Errorf("body %q, want Go's plain-text 404", rep.body)
			}
		}},
	}
	for _, tc := range tests {
		label := tc.name
		if tc.noLogin {
			label += "/anonymous"
		}
		t.Run(label, func(t *testing.T) {
			t.Parallel()
			r := mustGet(t, l, tc.name)
			start := time.Now()
			rep := get(t, httpClientFor(t, r, tc.insecure), r, path, !tc.noLogin)
			if rep.status != tc.status {
				t.Errorf("status %d, want %d (body %.200s)", rep.status, tc.status, rep.body)
			}
			if got := rep.header.Get("Content-Type"); got != tc.contentType {
				t.Errorf("content type %q, want %q", got, tc.contentType)
			}
			if tc.isIndex {
				checkReferrers(t, parseIndex(t, rep.body), wantRefs)
			}
			if tc.check != nil {
				tc.check(t, r, rep)
			}
			if r.Profile == ProfileSlow && time.Since(start) < testDelay {
				t.Errorf("slow registry answered in %s, want at least %s", time.Since(start), testDelay)
			}
		})
	}
}

func jsonErrorCode(code string) func(t *testing.T, _ Registry, rep reply) {
	return func(t *testing.T, _ Registry, rep reply) {
		var e struct {
			Errors []struct {
				Code string `json:"code"`
			} `json:"errors"`
		}
		if err := json.Unmarshal(rep.body, &e); err != nil || len(e.Errors) == 0 || e.Errors[0].Code != code {
			t.Errorf("body %q lacks error code %s", rep.body, code)
		}
	}
}

// TestEveryProfileHasARegistry keeps DefaultSpecs and the profile list in
// step, with the matrix keys the probe expects.
func TestEveryProfileHasARegistry(t *testing.T) {
	t.Parallel()
	want := map[Profile]string{
		ProfileOCI11: "olareg", ProfileFallback404: "ghcr", ProfileNoAPI405: "olareg",
		ProfileArtifactory406: "artifactory", ProfileHTML200: "gar", ProfileJSON200: "harbor",
		ProfileNotImpl501: "", ProfileRateLimit: "dockerhub", ProfileAuthRefuse: "",
		ProfileBasicAuth: "olareg", ProfileSlow: "olareg", ProfileTLS: "olareg",
		ProfileTLSExpired: "olareg", ProfileTLSWrongHost: "olareg",
		ProfileQuay400: "quay", ProfileBearer: "olareg", ProfileHarbor210: "harbor",
		ProfileGitLab:    "gitlab",
		ProfileLinkPages: "olareg", ProfileLinkLoop: "olareg", ProfileRedirect307: "olareg",
		ProfileRedirectCDN: "olareg", ProfileLogin302: "gar", ProfileHugeIndex: "olareg",
		ProfileStalledBody: "olareg", ProfileTrickleBody: "olareg", ProfileNoArtifactType: "acr",
		ProfileMislabelledTypes: "ggcr", ProfileMislabelledFallback: "ghcr",
		ProfileNotARegistry404: "", ProfileNotARegistryHTML: "", ProfileThrottled6h: "dockerhub",
		ProfileGHCR303: "ghcr", ProfileECR2024: "ecr", ProfileACR424: "acr",
	}
	matrix := map[string]bool{
		"olareg": true, "ghcr": true, "artifactory": true, "gar": true, "harbor": true, "dockerhub": true,
		"quay": true, "distribution": true, "zot": true, "gitlab": true, "ecr": true, "acr": true, "ggcr": true, "": true,
	}
	seen := map[Profile]bool{}
	for _, s := range DefaultSpecs() {
		seen[s.Profile] = true
		if got := profiles[s.Profile].expected; got != want[s.Profile] {
			t.Errorf("%s: expected kind %q, want %q", s.Profile, got, want[s.Profile])
		}
		if !matrix[profiles[s.Profile].expected] {
			t.Errorf("%s: expected kind %q is not in the known-registry matrix", s.Profile, profiles[s.Profile].expected)
		}
		if profiles[s.Profile].mimics == "" {
			t.Errorf("%s: no mimics text", s.Profile)
		}
	}
	for _, p := range Profiles() {
		if !seen[p] {
			t.Errorf("DefaultSpecs has no registry for %s", p)
		}
		if !p.Valid() {
			t.Errorf("%s is not valid", p)
		}
	}
	if len(Profiles()) != len(profiles) || len(want) != len(profiles) {
		t.Errorf("Profiles() lists %d, the table has %d", len(Profiles()), len(profiles))
	}
}

// TestSeededContent checks where the referrers live on each registry:
// behind the API where it is on, in the fallback tag where it is off, and
// cosign tags everywhere.
func TestSeededContent(t *testing.T) {
	t.Parallel()
	l := sharedLab(t)
	c := clientFor(t, l, true)
	seed := l.Seed
	amd64 := seed.Platforms["linux/amd64"]
	if amd64 == "" || seed.Platforms["linux/arm64"] == "" {
		t.Fatalf("seed platforms: %v", seed.Platforms)
	}
	platformRefs := seed.ReferrersOf(amd64)
	if len(platformRefs) != 1 || platformRefs[0].ArtifactType != ArtifactTypeSPDX {
		t.Fatalf("referrers of linux/amd64: %+v, want the one SPDX SBOM", platformRefs)
	}

	for _, r := range l.Registries {
		if r.Profile == ProfileAuthRefuse || r.Profile == ProfileThrottled6h || r.Profile.WebServer() {
			// Nothing can be read from them: that is their point. Their
			// own tests read what they do serve.
			continue
		}
		t.Run(r.Name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			app, err := ref.New(r.Host + "/" + seed.Repository)
			if err != nil {
				t.Fatal(err)
			}
			// The tagged index and its platforms.
			m, err := c.ManifestGet(ctx, app.SetTag(seed.Tag))
			if err != nil {
				t.Fatalf("get %s:%s: %v", seed.Repository, seed.Tag, err)
			}
			if got := m.GetDescriptor().Digest.String(); got != seed.Index {
				t.Errorf("tag %s is %s, want %s", seed.Tag, got, seed.Index)
			}

			// Cosign tags and fallback tags in the tag list.
			tl, err := c.TagList(ctx, app)
			if err != nil {
				t.Fatalf("tag list: %v", err)
			}
			tags, _ := tl.GetTags()
			for _, ct := range seed.CosignTags {
				if !slices.Contains(tags, ct) {
					t.Errorf("cosign tag %s missing from %v", ct, tags)
				}
				cm, err := c.ManifestGet(ctx, app.SetTag(ct))
				if err != nil {
					t.Errorf("get %s: %v", ct, err)
					continue
				}
				if s, ok := cm.(manifest.Subjecter); ok {
					if subj, _ := s.GetSubject(); subj != nil {
						t.Errorf("cosign manifest %s has a subject", ct)
					}
				}
			}

			for subject, want := range map[string][]SeededReferrer{seed.Index: seed.ReferrersOf(seed.Index), amd64: platformRefs} {
				if r.Profile == ProfileGitLab {
					// The fallback tag is listed, but reading it yields the
					// subject itself: TestGitLabTagQuirk looks at that.
					fb, _ := referrer.FallbackTag(app.SetDigest(subject))
					if !slices.Contains(tags, fb.Tag) {
						t.Errorf("gitlab-like lacks fallback tag %s (tags %v)", fb.Tag, tags)
					}
					continue
				}
				rSubject := app.SetDigest(subject)
				fb, err := referrer.FallbackTag(rSubject)
				if err != nil {
					t.Fatal(err)
				}
				hasTag := slices.Contains(tags, fb.Tag)
				if r.Profile.ReferrersAPI() {
					if hasTag {
						t.Errorf("API-on registry has fallback tag %s: regclient should have seen OCI-Subject", fb.Tag)
					}
					if alteredReferrers[r.Profile] {
						continue // the profile's own test reads its reply
					}
					// Redirects are followed; pages are walked.
					hc := httpClientFor(t, r, true)
					checkReferrers(t, allReferrers(t, hc, r, "/v2/"+seed.Repository+"/referrers/"+subject, true), want)
					continue
				}
				if !hasTag {
					t.Fatalf("API-off registry lacks fallback tag %s (tags %v)", fb.Tag, tags)
				}
				fm, err := c.ManifestGet(ctx, fb)
				if err != nil {
					t.Fatalf("get fallback tag %s: %v", fb.Tag, err)
				}
				if mt := manifest.GetMediaType(fm); mt != mediatype.OCI1ManifestList {
					t.Errorf("fallback tag %s holds %s, want an OCI index", fb.Tag, mt)
				}
				raw, err := fm.RawBody()
				if err != nil {
					t.Fatal(err)
				}
				if r.Profile == ProfileMislabelledFallback {
					continue // typed as cosign writes them: TestMislabelledFallback
				}
				checkReferrers(t, parseIndex(t, raw), want)
			}
		})
	}
}

// alteredReferrers are the API-on profiles whose referrers reply is not
// olareg's list of the seeded referrers by design; each has its own test.
var alteredReferrers = map[Profile]bool{
	ProfileStalledBody: true, ProfileTrickleBody: true, ProfileNoArtifactType: true,
	ProfileMislabelledTypes: true, ProfileECR2024: true, ProfileACR424: true,
}

// allReferrers follows a referrers list through its redirects (the
// client's) and Link pages, stopping at a page it has already read, and
// returns every entry it saw.
func allReferrers(t *testing.T, hc *http.Client, r Registry, path string, withLogin bool) index {
	t.Helper()
	var all index
	seen := map[string]bool{}
	for path != "" && !seen[path] {
		seen[path] = true
		rep := get(t, hc, r, path, withLogin)
		if rep.status != http.StatusOK {
			t.Fatalf("referrers page %s: status %d", path, rep.status)
		}
		page := parseIndex(t, rep.body)
		all.MediaType = page.MediaType
		all.Manifests = append(all.Manifests, page.Manifests...)
		path = ""
		if link := rep.header.Get("Link"); link != "" {
			path = linkTarget(t, link)
		}
	}
	return all
}

// TestSeedDeterministic starts two labs and seeds a third registry through
// SeedInto: the digests must be the same everywhere, always.
func TestSeedDeterministic(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	specs := []Spec{
		{Name: "a", Profile: ProfileOCI11},
		{Name: "b", Profile: ProfileFallback404},
		{Name: "empty", Profile: ProfileOCI11, NoSeed: true},
	}
	l1, err := Start(ctx, WithSpecs(specs...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l1.Close() })
	l2, err := Start(ctx, WithSpecs(specs[:1]...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l2.Close() })
	if !equalSeeds(l1.Seed, l2.Seed) {
		t.Fatalf("two labs seeded differently:\n%+v\n%+v", l1.Seed, l2.Seed)
	}

	// The empty registry holds nothing until seeded through the public
	// SeedInto, over the layer, with the lab's own config.
	empty := mustGet(t, l1, "empty")
	hc := httpClientFor(t, empty, false)
	if rep := get(t, hc, empty, "/v2/demo/app/manifests/v1", false); rep.status != http.StatusNotFound {
		t.Fatalf("NoSeed registry answers %d for demo/app:v1", rep.status)
	}
	seed, err := SeedInto(ctx, clientFor(t, l1, false), empty.Host)
	if err != nil {
		t.Fatalf("SeedInto: %v", err)
	}
	if !equalSeeds(seed, l1.Seed) {
		t.Fatalf("SeedInto gave\n%+v\nwant\n%+v", seed, l1.Seed)
	}
	// Digests as the registries report them, not as the seed claims.
	for _, name := range []string{"a", "b", "empty"} {
		r := mustGet(t, l1, name)
		rep := get(t, hc, r, "/v2/demo/app/manifests/v1", false)
		if got := rep.header.Get("Docker-Content-Digest"); got != l1.Seed.Index {
			t.Errorf("%s: demo/app:v1 is %s, want %s", name, got, l1.Seed.Index)
		}
		rep = get(t, hc, r, "/v2/demo/single/manifests/v1", false)
		if got := rep.header.Get("Docker-Content-Digest"); got != l1.Seed.Single {
			t.Errorf("%s: demo/single:v1 is %s, want %s", name, got, l1.Seed.Single)
		}
	}
	// demo/single has no referrers at all.
	rep := get(t, hc, mustGet(t, l1, "a"), "/v2/demo/single/referrers/"+l1.Seed.Single, false)
	if i := parseIndex(t, rep.body); rep.status != http.StatusOK || len(i.Manifests) != 0 {
		t.Errorf("demo/single has referrers: %d %s", rep.status, rep.body)
	}
}

func equalSeeds(a, b Seed) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

// TestRateLimit spends a small pull budget and meets Docker Hub's 429.
func TestRateLimit(t *testing.T) {
	t.Parallel()
	l, err := Start(t.Context(), WithSpecs(
		Spec{Name: "hub", Profile: ProfileRateLimit, RateBudget: 2, RateWindow: time.Hour},
		Spec{Name: "hub-spent", Profile: ProfileRateLimit},
	))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	r := mustGet(t, l, "hub")
	hc := httpClientFor(t, r, false)
	manifestPath := "/v2/demo/app/manifests/v1"
	referrersPath := "/v2/demo/app/referrers/" + l.Seed.Index

	steps := []struct {
		method, path string
		status       int
		remaining    string
	}{
		{http.MethodGet, "/v2/", 200, "2;w=3600"},        // the ping is free
		{http.MethodHead, manifestPath, 200, "2;w=3600"}, // so is HEAD, as on Docker Hub
		{http.MethodGet, manifestPath, 200, "1;w=3600"},
		{http.MethodGet, referrersPath, 200, "0;w=3600"},
		{http.MethodGet, manifestPath, 429, "0;w=3600"},
		{http.MethodGet, "/v2/demo/app/tags/list", 200, "0;w=3600"}, // tag lists are not charged
	}
	for i, s := range steps {
		req, err := http.NewRequestWithContext(t.Context(), s.method, baseURL(r)+s.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body struct {
			Errors []struct{ Code string } `json:"errors"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&body)
		_ = resp.Body.Close()
		if resp.StatusCode != s.status {
			t.Fatalf("step %d %s %s: status %d, want %d", i, s.method, s.path, resp.StatusCode, s.status)
		}
		if got := resp.Header.Get("RateLimit-Limit"); got != "100;w=3600" {
			t.Errorf("step %d: ratelimit-limit %q", i, got)
		}
		if got := resp.Header.Get("RateLimit-Remaining"); got != s.remaining {
			t.Errorf("step %d: ratelimit-remaining %q, want %q", i, got, s.remaining)
		}
		if got := resp.Header.Get("Docker-RateLimit-Source"); got != "127.0.0.1" {
			t.Errorf("step %d: docker-ratelimit-source %q", i, got)
		}
		if s.status == 429 {
			ra := resp.Header.Get("Retry-After")
			secs, err := time.ParseDuration(ra + "s")
			if err != nil || secs <= 59*time.Minute || secs > time.Hour {
				t.Errorf("Retry-After %q, want the seconds left in the hour", ra)
			}
			if len(body.Errors) != 1 || body.Errors[0].Code != "TOOMANYREQUESTS" {
				t.Errorf("429 body lacks TOOMANYREQUESTS: %+v", body)
			}
		}
	}

	// A zero budget is spent from the start.
	spent := mustGet(t, l, "hub-spent")
	rep := get(t, httpClientFor(t, spent, false), spent, manifestPath, false)
	if rep.status != http.StatusTooManyRequests || rep.header.Get("Retry-After") == "" || rep.header.Get("RateLimit-Remaining") != "0;w=21600" {
		t.Errorf("spent budget: %d %v", rep.status, rep.header)
	}

	// regclient honours Retry-After by sleeping until then (here: hours),
	// even with its smallest retry limit, so only the caller's deadline
	// ends the call; the recorder still saw the 429 that explains it.
	c := clientFor(t, l, false)
	app, _ := ref.New(spent.Host + "/demo/app:v1")
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	_, err = c.ManifestGet(ctx, app)
	if err == nil || errors.Is(err, errs.ErrNotFound) {
		t.Errorf("regclient error %v, want a failure that is not not-found", err)
	}
	saw429 := false
	for _, ex := range c.Recorder.Exchanges() {
		saw429 = saw429 || ex.Status == http.StatusTooManyRequests && ex.Headers["Retry-After"] != ""
	}
	if !saw429 {
		t.Errorf("recorder saw no 429 with Retry-After: %+v", c.Recorder.Exchanges())
	}
}

// TestAuthRefuse walks the bearer flow with regclient: the challenge is
// answered, the token service refuses, and the error says so.
func TestAuthRefuse(t *testing.T) {
	t.Parallel()
	l := sharedLab(t)
	r := mustGet(t, l, "auth-refuse")
	hc := httpClientFor(t, r, false)

	ping := get(t, hc, r, "/v2/", false)
	if want := `Bearer realm="http://` + r.Host + `/token",service="refdoctor-lab"`; ping.status != 401 || ping.header.Get("WWW-Authenticate") != want {
		t.Errorf("ping: %d %q, want 401 %q", ping.status, ping.header.Get("WWW-Authenticate"), want)
	}
	tok := get(t, hc, r, "/token?service=refdoctor-lab&scope=repository:demo/app:pull", false)
	if tok.status != 401 || tok.header.Get("Content-Type") != "application/json" {
		t.Errorf("token: %d %q, want a 401 JSON refusal", tok.status, tok.header.Get("Content-Type"))
	}
	jsonErrorCode("UNAUTHORIZED")(t, r, tok)

	c := clientFor(t, l, false)
	app, _ := ref.New(r.Host + "/demo/app:v1")
	_, err := c.ManifestGet(t.Context(), app)
	if err == nil || !errors.Is(err, errs.ErrHTTPUnauthorized) || errors.Is(err, errs.ErrNotFound) {
		t.Errorf("regclient error %v, want ErrHTTPUnauthorized and not ErrNotFound", err)
	}
}

// TestSlowHonoursCancel shows the slow registry gives up with its client.
func TestSlowHonoursCancel(t *testing.T) {
	t.Parallel()
	l := sharedLab(t)
	r := mustGet(t, l, "slow")
	ctx, cancel := context.WithTimeout(t.Context(), testDelay/5)
	defer cancel()
	_, err := tryGet(ctx, httpClientFor(t, r, false), r, "/v2/", false)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v, want the deadline to end the request", err)
	}
}

// TestReferrersPaging makes olareg split the referrers list with Link
// headers, for the pagination tests of discovery.
func TestReferrersPaging(t *testing.T) {
	t.Parallel()
	l, err := Start(t.Context(), WithSpecs(Spec{Name: "paged", Profile: ProfileOCI11, ReferrersPageLimit: 900}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	r := mustGet(t, l, "paged")
	hc := httpClientFor(t, r, false)
	var all index
	path := "/v2/demo/app/referrers/" + l.Seed.Index
	pages := 0
	for path != "" {
		pages++
		if pages > 10 {
			t.Fatal("more than 10 pages")
		}
		rep := get(t, hc, r, path, false)
		if rep.status != 200 {
			t.Fatalf("page %d: status %d", pages, rep.status)
		}
		all.Manifests = append(all.Manifests, parseIndex(t, rep.body).Manifests...)
		path = ""
		if link := rep.header.Get("Link"); link != "" {
			start, end := strings.Index(link, "<"), strings.Index(link, ">")
			if start < 0 || end < start || !strings.Contains(link, `rel=next`) {
				t.Fatalf("bad Link header %q", link)
			}
			path = link[start+1 : end]
		}
	}
	if pages < 2 {
		t.Errorf("referrers came in %d page, want several", pages)
	}
	checkReferrers(t, all, l.Seed.ReferrersOf(l.Seed.Index))
}

// TestConfig checks the config the lab hands to refdoctor's client.
func TestConfig(t *testing.T) {
	t.Parallel()
	l := sharedLab(t)
	cfg := l.Config()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("lab config does not validate: %v", err)
	}
	if len(cfg.Registries) != len(l.Registries) {
		t.Fatalf("config has %d registries, lab %d", len(cfg.Registries), len(l.Registries))
	}
	for _, r := range l.Registries {
		h, ok := cfg.Host(r.Host)
		if !ok {
			t.Fatalf("config lacks %s", r.Host)
		}
		if h.PlainHTTP != r.PlainHTTP || h.CAFile != r.TLSCA || h.Expected != r.Expected {
			t.Errorf("%s: config %+v does not match %+v", r.Name, h, r)
		}
		if r.Profile.TLS() {
			if r.PlainHTTP || r.TLSCA == "" {
				t.Errorf("%s: TLS registry without CA file", r.Name)
			} else if _, err := os.Stat(r.TLSCA); err != nil {
				t.Errorf("%s: %v", r.Name, err)
			}
		}
	}
	// No password ever reaches JSON.
	b, err := json.Marshal(l.Registries)
	if err != nil {
		t.Fatal(err)
	}
	logins := []string{"basic-auth", "bearer-auth", "redirect-cdn"}
	for _, name := range logins {
		ba := mustGet(t, l, name)
		if ba.Login == nil || ba.Login.Password == "" {
			t.Fatalf("%s registry has no login", name)
		}
		if strings.Contains(string(b), ba.Login.Password) || strings.Contains(string(b), ba.Login.User) || strings.Contains(string(b), `"login"`) {
			t.Errorf("registry JSON leaks the login of %s: %s", name, b)
		}
	}
	passwords := map[string]bool{}
	for _, name := range logins {
		passwords[mustGet(t, l, name).Login.Password] = true
	}
	if len(passwords) != len(logins) {
		t.Error("two registries share a password")
	}
	for _, r := range l.Registries {
		if !slices.Contains(logins, r.Name) && r.Login != nil {
			t.Errorf("%s has a login", r.Name)
		}
	}
	if _, ok := l.Get("no-such"); ok {
		t.Error("Get found a registry that does not exist")
	}
	if n := l.Requests("no-such"); n != 0 {
		t.Errorf("Requests of an unknown registry = %d", n)
	}
}

func TestStartRejectsBadSpecs(t *testing.T) {
	t.Parallel()
	for name, specs := range map[string][]Spec{
		"empty list":      {},
		"no name":         {{Profile: ProfileOCI11}},
		"duplicate name":  {{Name: "a", Profile: ProfileOCI11}, {Name: "a", Profile: ProfileSlow}},
		"unknown profile": {{Name: "a", Profile: "no-such-profile"}},
		"negative delay":  {{Name: "a", Profile: ProfileSlow, Delay: -time.Second}},
		"negative 429s":   {{Name: "a", Profile: ProfileOCI11, Throttle429: -1}},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			l, err := Start(t.Context(), WithSpecs(specs...), WithDir(dir))
			if err == nil {
				_ = l.Close()
				t.Fatal("Start accepted bad specs")
			}
		})
	}
}

// TestRequestsAndClose is not parallel: it checks that Close leaves no
// goroutine of its own behind, which needs a quiet process.
func TestRequestsAndClose(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	dir := filepath.Join(t.TempDir(), "lab")
	l, err := Start(t.Context(), WithDir(dir), WithSpecs(
		Spec{Name: "oci11", Profile: ProfileOCI11},
		Spec{Name: "slow", Profile: ProfileSlow, Delay: time.Hour},
		Spec{Name: "tls", Profile: ProfileTLS},
		Spec{Name: "basic", Profile: ProfileBasicAuth},
	))
	if err != nil {
		t.Fatal(err)
	}
	r := mustGet(t, l, "oci11")
	if n := l.Requests("oci11"); n != 0 {
		t.Errorf("seeding was counted: %d requests", n)
	}
	hc := httpClientFor(t, r, false)
	for range 3 {
		get(t, hc, r, "/v2/", false)
	}
	if n := l.Requests("oci11"); n != 3 {
		t.Errorf("Requests = %d, want 3", n)
	}
	// A request stuck in the slow registry must not hold Close up.
	slow := mustGet(t, l, "slow")
	slowClient := httpClientFor(t, slow, false)
	done := make(chan error, 1)
	go func() {
		_, err := tryGet(context.Background(), slowClient, slow, "/v2/", false)
		done <- err
	}()
	for l.Requests("slow") == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	// The TLS registry is served with a handshake per client.
	tr := mustGet(t, l, "tls")
	get(t, httpClientFor(t, tr, false), tr, "/v2/", false)

	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := <-done; err == nil {
		t.Error("request to a closed lab succeeded")
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := tryGet(t.Context(), hc, r, "/v2/", false); err == nil {
		t.Error("closed registry still answers")
	}
	if _, err := os.Stat(filepath.Join(dir, "lab-ca.pem")); err != nil {
		t.Errorf("WithDir: the lab removed or never wrote its CA: %v", err)
	}

	// Without WithDir the lab cleans up its own folder.
	l2, err := Start(t.Context(), WithSpecs(Spec{Name: "tls", Profile: ProfileTLS, NoSeed: true}))
	if err != nil {
		t.Fatal(err)
	}
	if err := l2.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(l2.Dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temp lab dir %s left behind: %v", l2.Dir, err)
	}
}

// TestStartHonoursContext: a cancelled start-up fails cleanly.
func TestStartHonoursContext(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	l, err := Start(ctx, WithSpecs(Spec{Name: "oci11", Profile: ProfileOCI11}))
	if err == nil {
		_ = l.Close()
		t.Fatal("Start seeded with a cancelled context")
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error %v, want context.Canceled in the chain", err)
	}
}

// TestAttach adds a referrer of a referrer, behind the API and in the
// fallback tag, and shows it fails where a client would.
func TestAttach(t *testing.T) {
	t.Parallel()
	l, err := Start(t.Context(), WithSpecs(
		Spec{Name: "oci11", Profile: ProfileOCI11},
		Spec{Name: "ghcr-like", Profile: ProfileFallback404},
		Spec{Name: "basic", Profile: ProfileBasicAuth},
		Spec{Name: "refuse", Profile: ProfileAuthRefuse},
	))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	sbom := l.Seed.ReferrersOf(l.Seed.Index)[0]
	c := clientFor(t, l, false)
	for _, name := range []string{"oci11", "ghcr-like", "basic"} {
		r := mustGet(t, l, name)
		dig, err := Attach(t.Context(), l, r.Host, l.Seed.Repository, sbom.Digest, ArtifactTypeNotary, []byte("signature of the SBOM"))
		if err != nil {
			t.Fatalf("%s: Attach: %v", name, err)
		}
		var got index
		if r.Profile.ReferrersAPI() {
			rep := get(t, httpClientFor(t, r, false), r, "/v2/demo/app/referrers/"+sbom.Digest, true)
			got = parseIndex(t, rep.body)
		} else {
			app, _ := ref.New(r.Host + "/demo/app")
			fb, _ := referrer.FallbackTag(app.SetDigest(sbom.Digest))
			m, err := c.ManifestGet(t.Context(), fb)
			if err != nil {
				t.Fatalf("%s: fallback tag of the SBOM: %v", name, err)
			}
			raw, _ := m.RawBody()
			got = parseIndex(t, raw)
		}
		if len(got.Manifests) != 1 || got.Manifests[0].Digest != dig || got.Manifests[0].ArtifactType != ArtifactTypeNotary {
			t.Errorf("%s: referrers of the SBOM %+v, want only %s", name, got.Manifests, dig)
		}
	}
	refuse := mustGet(t, l, "refuse")
	if _, err := Attach(t.Context(), l, refuse.Host, l.Seed.Repository, sbom.Digest, ArtifactTypeNotary, []byte("x")); !errors.Is(err, errs.ErrHTTPUnauthorized) {
		t.Errorf("Attach to auth-refuse: %v, want unauthorized", err)
	}
}
