package lab

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/regclient/regclient/types/errs"
	"github.com/regclient/regclient/types/ref"
	"github.com/regclient/regclient/types/referrer"
)

// zeroDigest is the all-zeros subject oras-go probes with.
var zeroDigest = "sha256:" + strings.Repeat("0", 64)

// send is one request of any method with optional headers.
func send(t *testing.T, hc *http.Client, r Registry, method, path string, header http.Header) reply {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, baseURL(r)+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return reply{status: resp.StatusCode, header: resp.Header, body: body}
}

// TestQuay400 answers 400 for a subject that is not a manifest in the
// repository and passes known subjects through to olareg.
func TestQuay400(t *testing.T) {
	t.Parallel()
	l := sharedLab(t)
	r := mustGet(t, l, "quay-like")
	hc := httpClientFor(t, r, false)
	seed := l.Seed
	amd64 := seed.Platforms["linux/amd64"]

	for name, subject := range map[string]string{
		"all zeros":        zeroDigest,
		"other repository": seed.Single, // a manifest, but in demo/single
		"malformed":        "sha256:nothex",
	} {
		rep := get(t, hc, r, "/v2/demo/app/referrers/"+subject, false)
		if rep.status != http.StatusBadRequest || rep.header.Get("Content-Type") != "application/json" {
			t.Errorf("%s: %d %q, want 400 JSON", name, rep.status, rep.header.Get("Content-Type"))
		}
		var e struct {
			Errors []struct{ Code, Message string } `json:"errors"`
		}
		if err := json.Unmarshal(rep.body, &e); err != nil || len(e.Errors) != 1 || e.Errors[0].Code != "MANIFEST_INVALID" || e.Errors[0].Message != "unknown subject" {
			t.Errorf("%s: body %q", name, rep.body)
		}
	}
	if rep := send(t, hc, r, http.MethodHead, "/v2/demo/app/referrers/"+zeroDigest, nil); rep.status != http.StatusBadRequest {
		t.Errorf("HEAD of an unknown subject: %d, want 400", rep.status)
	}
	// Known subjects of every kind: the index, an image manifest (the
	// referrers Accept header must not hide it), a referrer.
	sbom := seed.ReferrersOf(seed.Index)[0].Digest
	for subject, want := range map[string][]SeededReferrer{
		seed.Index: seed.ReferrersOf(seed.Index), amd64: seed.ReferrersOf(amd64), sbom: nil,
	} {
		rep := get(t, hc, r, "/v2/demo/app/referrers/"+subject, false)
		if rep.status != http.StatusOK || rep.header.Get("Content-Type") != ociIndexType {
			t.Errorf("%s: %d %q, want 200 and an index", subject, rep.status, rep.header.Get("Content-Type"))
			continue
		}
		checkReferrers(t, parseIndex(t, rep.body), want)
	}
	// The existence check is in process: one request per referrers call.
	before := l.Requests("quay-like")
	get(t, hc, r, "/v2/demo/app/referrers/"+zeroDigest, false)
	if n := l.Requests("quay-like") - before; n != 1 {
		t.Errorf("one referrers request counted as %d", n)
	}
}

// TestHarbor210 answers {} labelled as an index for an unknown subject.
func TestHarbor210(t *testing.T) {
	t.Parallel()
	l := sharedLab(t)
	r := mustGet(t, l, "harbor-2.10")
	hc := httpClientFor(t, r, false)
	for _, subject := range []string{zeroDigest, l.Seed.Single} {
		rep := get(t, hc, r, "/v2/demo/app/referrers/"+subject, false)
		if rep.status != http.StatusOK || rep.header.Get("Content-Type") != ociIndexType || string(rep.body) != "{}" {
			t.Errorf("%s: %d %q %q, want 200, the index type and {}", subject, rep.status, rep.header.Get("Content-Type"), rep.body)
		}
		if rep.header.Get("Content-Length") != "2" {
			t.Errorf("%s: Content-Length %q", subject, rep.header.Get("Content-Length"))
		}
	}
	amd64 := l.Seed.Platforms["linux/amd64"]
	rep := get(t, hc, r, "/v2/demo/app/referrers/"+amd64, false)
	if rep.status != http.StatusOK {
		t.Fatalf("known subject: %d", rep.status)
	}
	checkReferrers(t, parseIndex(t, rep.body), l.Seed.ReferrersOf(amd64))
}

// TestBearer walks the bearer-token flow by hand and with regclient.
func TestBearer(t *testing.T) {
	t.Parallel()
	l := sharedLab(t)
	r := mustGet(t, l, "bearer-auth")
	if r.Login == nil {
		t.Fatal("bearer-auth has no login")
	}
	hc := httpClientFor(t, r, false)
	realm := `Bearer realm="http://` + r.Host + `/token",service="refdoctor-lab"`

	// Challenges: none scoped on the ping, scoped on repository routes.
	if rep := get(t, hc, r, "/v2/", false); rep.status != 401 || rep.header.Get("WWW-Authenticate") != realm {
		t.Errorf("ping: %d %q", rep.status, rep.header.Get("WWW-Authenticate"))
	}
	if rep := get(t, hc, r, "/v2/demo/app/tags/list", false); rep.status != 401 || rep.header.Get("WWW-Authenticate") != realm+`,scope="repository:demo/app:pull"` {
		t.Errorf("tag list: %d %q", rep.status, rep.header.Get("WWW-Authenticate"))
	}
	if rep := get(t, hc, r, "/elsewhere", false); rep.status != 404 {
		t.Errorf("non-registry path: %d, want 404", rep.status)
	}

	// The token service: the lab login only.
	tokenPath := "/token?service=refdoctor-lab&scope=repository:demo/app:pull"
	basic := func(user, pass string) http.Header {
		req, _ := http.NewRequest(http.MethodGet, "/", nil)
		req.SetBasicAuth(user, pass)
		return req.Header
	}
	for name, h := range map[string]http.Header{
		"anonymous":      nil,
		"wrong password": basic(r.Login.User, r.Login.Password+"x"),
		"wrong user":     basic("someone", r.Login.Password),
	} {
		rep := send(t, hc, r, http.MethodGet, tokenPath, h)
		if rep.status != 401 || rep.header.Get("Content-Type") != "application/json" {
			t.Errorf("token for %s: %d %q, want a 401 JSON refusal", name, rep.status, rep.header.Get("Content-Type"))
		}
		jsonErrorCode("UNAUTHORIZED")(t, r, rep)
	}
	rep := send(t, hc, r, http.MethodGet, tokenPath, basic(r.Login.User, r.Login.Password))
	var tok struct {
		Token       string `json:"token"`
		AccessToken string `json:"access_token"`
		ExpiresIn   int    `json:"expires_in"`
	}
	if err := json.Unmarshal(rep.body, &tok); err != nil || rep.status != 200 || tok.Token == "" || tok.AccessToken != tok.Token || tok.ExpiresIn != 300 {
		t.Fatalf("token: %d %v %+v", rep.status, err, tok)
	}
	if !slices.Contains(l.IssuedTokens("bearer-auth"), tok.Token) {
		t.Error("IssuedTokens does not list the token just issued")
	}
	if l.IssuedTokens("basic-auth") != nil || l.IssuedTokens("no-such") != nil {
		t.Error("IssuedTokens lists tokens of a registry without a token service")
	}

	// A POST password grant is served as well.
	form := url.Values{"grant_type": {"password"}, "username": {r.Login.User}, "password": {r.Login.Password}, "service": {"refdoctor-lab"}}
	post, err := hc.Post(baseURL(r)+"/token", "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	_ = post.Body.Close()
	if post.StatusCode != 200 {
		t.Errorf("POST password grant: %d", post.StatusCode)
	}

	// Only tokens this registry issued pass.
	path := "/v2/demo/app/referrers/" + l.Seed.Index
	for name, auth := range map[string]string{"made up": "Bearer not-a-token", "basic": basic(r.Login.User, r.Login.Password).Get("Authorization")} {
		if rep := send(t, hc, r, http.MethodGet, path, http.Header{"Authorization": {auth}}); rep.status != 401 {
			t.Errorf("%s credentials: %d, want 401", name, rep.status)
		}
	}
	rep = send(t, hc, r, http.MethodGet, path, http.Header{"Authorization": {"Bearer " + tok.Token}})
	if rep.status != 200 || rep.header.Get("Content-Type") != ociIndexType {
		t.Fatalf("with the token: %d %q", rep.status, rep.header.Get("Content-Type"))
	}
	checkReferrers(t, parseIndex(t, rep.body), l.Seed.ReferrersOf(l.Seed.Index))

	// regclient with the login does the dance; its recorder never holds a
	// token; without the login it is unauthorized.
	c := clientFor(t, l, false)
	app, _ := ref.New(r.Host + "/demo/app@" + l.Seed.Index)
	rl, err := c.ReferrerList(t.Context(), app)
	if err != nil || len(rl.Descriptors) != 3 {
		t.Fatalf("regclient: %d referrers, %v", len(rl.Descriptors), err)
	}
	if c.Recorder.Len() == 0 {
		t.Fatal("the recorder kept no exchange, so the token check would prove nothing")
	}
	exchanges, _ := json.Marshal(c.Recorder.Exchanges())
	for _, issued := range l.IssuedTokens("bearer-auth") {
		if strings.Contains(string(exchanges), issued) {
			t.Error("the recorder holds an issued token")
		}
	}
	noLogin := Registry{Name: "x", Host: r.Host, PlainHTTP: true}
	anon := clientFor(t, &Lab{Registries: []Registry{noLogin}}, false)
	if _, err := anon.ManifestHead(t.Context(), app); !errors.Is(err, errs.ErrHTTPUnauthorized) {
		t.Errorf("anonymous regclient: %v, want unauthorized", err)
	}
}

// TestGitLabTagQuirk: the tag sha256-<hex> is listed, but reading it
// yields the subject manifest itself, while the fallback index is there.
func TestGitLabTagQuirk(t *testing.T) {
	t.Parallel()
	l := sharedLab(t)
	r := mustGet(t, l, "gitlab-like")
	ghcr := mustGet(t, l, "ghcr-like")
	hc := httpClientFor(t, r, false)
	accept := http.Header{"Accept": {"application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json"}}
	seed := l.Seed
	amd64 := seed.Platforms["linux/amd64"]

	tags := get(t, hc, r, "/v2/demo/app/tags/list", false)
	for subject, mediaType := range map[string]string{seed.Index: ociIndexType, amd64: "application/vnd.oci.image.manifest.v1+json"} {
		tag := strings.Replace(subject, ":", "-", 1)
		if !strings.Contains(string(tags.body), `"`+tag+`"`) {
			t.Errorf("tag list lacks %s: %s", tag, tags.body)
		}
		for _, method := range []string{http.MethodGet, http.MethodHead} {
			rep := send(t, hc, r, method, "/v2/demo/app/manifests/"+tag, accept)
			if rep.status != 200 || rep.header.Get("Docker-Content-Digest") != subject || rep.header.Get("Content-Type") != mediaType {
				t.Errorf("%s %s: %d %q %q, want the subject %s (%s)", method, tag, rep.status,
					rep.header.Get("Docker-Content-Digest"), rep.header.Get("Content-Type"), subject, mediaType)
			}
		}
		// The same tag on ghcr-like holds the fallback index.
		rep := send(t, httpClientFor(t, ghcr, false), ghcr, http.MethodGet, "/v2/demo/app/manifests/"+tag, accept)
		if rep.status != 200 || rep.header.Get("Docker-Content-Digest") == subject {
			t.Errorf("ghcr-like %s: %d %q, want the fallback index", tag, rep.status, rep.header.Get("Docker-Content-Digest"))
		}
	}
	// Cosign tags keep their suffix and their own content; /referrers is
	// the plain 404.
	sig := send(t, hc, r, http.MethodGet, "/v2/demo/app/manifests/"+seed.CosignTags[0], accept)
	if sig.status != 200 || sig.header.Get("Docker-Content-Digest") == seed.Index {
		t.Errorf("cosign tag: %d %q", sig.status, sig.header.Get("Docker-Content-Digest"))
	}
	if rep := get(t, hc, r, "/v2/demo/app/referrers/"+seed.Index, false); rep.status != 404 || string(rep.body) != "404 page not found\n" {
		t.Errorf("referrers: %d %q", rep.status, rep.body)
	}

	// regclient reading the fallback tag meets the subject.
	c := clientFor(t, l, false)
	app, _ := ref.New(r.Host + "/demo/app")
	fb, _ := referrer.FallbackTag(app.SetDigest(amd64))
	m, err := c.ManifestGet(t.Context(), fb)
	if err != nil {
		t.Fatal(err)
	}
	if got := m.GetDescriptor().Digest.String(); got != amd64 {
		t.Errorf("fallback tag resolved to %s, want the subject %s", got, amd64)
	}
}
