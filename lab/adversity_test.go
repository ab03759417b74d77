package lab

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/regclient/regclient/types/mediatype"
	"github.com/regclient/regclient/types/ref"

	"github.com/refdoctor/refdoctor/lab/external"
)

// noFollow is a plain client that shows redirects instead of following
// them.
func noFollow(t *testing.T, r Registry) *http.Client {
	hc := httpClientFor(t, r, false)
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return hc
}

// toolDir is a folder for a reference client with a docker config that
// logs it in to the lab registries that need a login, so no password
// appears on a command line.
func toolDir(t *testing.T, l *Lab) string {
	t.Helper()
	dir := t.TempDir()
	auths := map[string]any{}
	for _, r := range l.Registries {
		if r.Login != nil {
			auths[r.Host] = map[string]string{"auth": base64.StdEncoding.EncodeToString([]byte(r.Login.User + ":" + r.Login.Password))}
		}
	}
	b, err := json.Marshal(map[string]any{"auths": auths})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// regctlList is what regctl artifact list lists, as digest ->
// artifactType.
func regctlList(t *testing.T, dir string, r Registry, reference string, extra ...string) map[string]string {
	t.Helper()
	args := append([]string{"--host", "reg=" + r.Host + ",tls=disabled", "artifact", "list", reference, "--format", "{{json .}}"}, extra...)
	var rl struct {
		Descriptors []struct {
			Digest       string `json:"digest"`
			ArtifactType string `json:"artifactType"`
		} `json:"descriptors"`
	}
	if err := json.Unmarshal(external.RunTool(t, dir, "regctl", args...), &rl); err != nil {
		t.Fatalf("regctl artifact list: %v", err)
	}
	out := map[string]string{}
	for _, d := range rl.Descriptors {
		out[d.Digest] = d.ArtifactType
	}
	if len(out) != len(rl.Descriptors) {
		t.Errorf("regctl listed %d descriptors, %d distinct", len(rl.Descriptors), len(out))
	}
	return out
}

// orasDiscover is what oras discover lists, as digest -> artifactType;
// spec forces its --distribution-spec, "" lets it choose (API, then the
// tag schema).
func orasDiscover(t *testing.T, dir, reference, spec string) map[string]string {
	t.Helper()
	var od struct {
		Referrers []struct {
			Digest       string `json:"digest"`
			ArtifactType string `json:"artifactType"`
		} `json:"referrers"`
	}
	args := []string{"discover", "--plain-http", "--format", "json", reference}
	if spec != "" {
		args = append(args, "--distribution-spec", spec)
	}
	out := external.RunTool(t, dir, "oras", args...)
	if err := json.Unmarshal(out, &od); err != nil {
		t.Fatalf("oras discover: %v", err)
	}
	m := map[string]string{}
	for _, d := range od.Referrers {
		m[d.Digest] = d.ArtifactType
	}
	if len(m) != len(od.Referrers) {
		t.Errorf("oras listed %d referrers, %d distinct", len(od.Referrers), len(m))
	}
	return m
}

// seedRef is the seeded repository at dig on r; badDayRef is r's bad-day
// subject.
func seedRef(r Registry, dig string) string { return r.Host + "/" + SeedRepository + "@" + dig }
func badDayRef(r Registry) string           { return r.Host + "/" + BadDayRepository + "@" + r.Subject }

// badDayPath is the path of route (referrers, manifests) for ref in the
// bad-day repository.
func badDayPath(route, ref string) string { return "/v2/" + BadDayRepository + "/" + route + "/" + ref }

func digestsOf(i index) []string {
	var out []string
	for _, m := range i.Manifests {
		out = append(out, m.Digest)
	}
	return out
}

// TestLinkPages walks the 600 referrers of link-pages' subject over 120
// pages by hand, and checks that regctl and oras list the same 600.
//
// It counts the requests the walk sends to the shared lab's link-pages
// registry, so it does not run in parallel: TestBadDayLayout walks the
// same registry.
func TestLinkPages(t *testing.T) {
	l := sharedLab(t)
	r := mustGet(t, l, "link-pages")
	if r.Subject == "" || r.SubjectReferrers != 600 {
		t.Fatalf("link-pages subject %q with %d referrers", r.Subject, r.SubjectReferrers)
	}
	hc := httpClientFor(t, r, false)
	// The subject is the image tagged bad-day.
	if rep := get(t, hc, r, badDayPath("manifests", SeedTag), false); rep.header.Get("Docker-Content-Digest") != r.Subject {
		t.Fatalf("%s:%s is %q, want %s", BadDayRepository, SeedTag, rep.header.Get("Docker-Content-Digest"), r.Subject)
	}
	before := l.Requests("link-pages")
	first := badDayPath("referrers", r.Subject)
	path, pages, seen := first, 0, map[string]bool{}
	for path != "" {
		if pages++; pages > 200 {
			t.Fatal("more than 200 pages")
		}
		rep := get(t, hc, r, path, false)
		if rep.status != http.StatusOK || rep.header.Get("Content-Type") != ociIndexType {
			t.Fatalf("page %d: status %d %q", pages, rep.status, rep.header.Get("Content-Type"))
		}
		page := parseIndex(t, rep.body)
		if page.MediaType != ociIndexType || len(page.Manifests) != 5 {
			t.Fatalf("page %d: %q with %d referrers, want an index of 5", pages, page.MediaType, len(page.Manifests))
		}
		for _, m := range page.Manifests {
			if seen[m.Digest] || m.ArtifactType != ArtifactTypeCycloneDX {
				t.Errorf("page %d: repeated or mistyped referrer %s (%s)", pages, m.Digest, m.ArtifactType)
			}
			seen[m.Digest] = true
		}
		path = ""
		if link := rep.header.Get("Link"); link != "" {
			path = linkTarget(t, link)
			u, err := url.Parse(path)
			if err != nil || u.IsAbs() || u.Path != first || u.Query().Get("page") != fmt.Sprint(pages) {
				t.Fatalf("page %d: Link %q is not a relative link to page %d of the same list", pages, link, pages)
			}
		}
	}
	if pages != 120 || len(seen) != 600 {
		t.Errorf("%d referrers over %d pages, want 600 over 120", len(seen), pages)
	}
	if n := l.Requests("link-pages") - before; n != 120 {
		t.Errorf("the walk cost %d requests, want 120", n)
	}
	// The seeded referrers of the index are there too, paged as well.
	checkReferrers(t, allReferrers(t, hc, r, "/v2/demo/app/referrers/"+l.Seed.Index, false), l.Seed.ReferrersOf(l.Seed.Index))

	dir := t.TempDir()
	for tool, got := range map[string]map[string]string{
		"regctl": regctlList(t, dir, r, badDayRef(r)),
		"oras":   orasDiscover(t, dir, badDayRef(r), "v1.1-referrers-api"),
	} {
		if len(got) != 600 {
			t.Errorf("%s lists %d referrers, want 600", tool, len(got))
		}
		for d := range seen {
			if got[d] != ArtifactTypeCycloneDX {
				t.Errorf("%s: referrer %s listed as %q", tool, d, got[d])
				break
			}
		}
	}
}

// TestBadDayLayout: the bad-day referrers reach olareg as an OCI layout
// whose fallback index olareg turns into its referrers list; the fallback
// tag is gone, and the subject and referrers are ordinary manifests.
func TestBadDayLayout(t *testing.T) {
	t.Parallel()
	l := sharedLab(t)
	for _, name := range []string{"link-pages", "link-loop", "huge-index"} {
		r := mustGet(t, l, name)
		hc := httpClientFor(t, r, false)
		tags := get(t, hc, r, "/v2/"+BadDayRepository+"/tags/list", false)
		var tl struct {
			Tags []string `json:"tags"`
		}
		if err := json.Unmarshal(tags.body, &tl); err != nil {
			t.Fatalf("%s: tag list %s", name, tags.body)
		}
		if !slices.Equal(tl.Tags, []string{SeedTag}) {
			t.Errorf("%s: %s lists tags %v, want only %s", name, BadDayRepository, tl.Tags, SeedTag)
		}
		// Every referrer the API lists (the real part of huge-index) is a
		// manifest with the subject.
		var listed []string
		if name == "huge-index" {
			for _, m := range parseIndex(t, get(t, hc, r, badDayPath("referrers", r.Subject), false).body).Manifests {
				if m.Annotations[annotationGenerated] == "" {
					listed = append(listed, m.Digest)
				}
			}
		} else {
			listed = digestsOf(allReferrers(t, hc, r, badDayPath("referrers", r.Subject), false))
		}
		if want := map[string]int{"link-pages": 600, "link-loop": 12, "huge-index": hugeIndexReal}[name]; len(listed) != want {
			t.Fatalf("%s: %d real referrers, want %d", name, len(listed), want)
		}
		for _, d := range []string{listed[0], listed[len(listed)-1]} {
			rep := send(t, hc, r, http.MethodGet, badDayPath("manifests", d), http.Header{"Accept": {mediatype.OCI1Manifest}})
			var m struct {
				Subject struct {
					Digest string `json:"digest"`
				} `json:"subject"`
			}
			if rep.status != http.StatusOK || json.Unmarshal(rep.body, &m) != nil || m.Subject.Digest != r.Subject {
				t.Errorf("%s: referrer %s: %d, subject %q", name, d, rep.status, m.Subject.Digest)
			}
		}
	}
}

// TestLinkLoop: four pages of three referrers, then a Link back to the
// first page.
func TestLinkLoop(t *testing.T) {
	t.Parallel()
	l := sharedLab(t)
	r := mustGet(t, l, "link-loop")
	if r.SubjectReferrers != 12 {
		t.Fatalf("link-loop subject has %d referrers, want 12", r.SubjectReferrers)
	}
	hc := httpClientFor(t, r, false)
	for _, query := range []string{"", "?artifactType=" + url.QueryEscape(ArtifactTypeCycloneDX)} {
		first := badDayPath("referrers", r.Subject) + query
		path := first
		var pages [][]string
		for range 5 {
			rep := get(t, hc, r, path, false)
			if rep.status != http.StatusOK || rep.header.Get("Content-Type") != ociIndexType {
				t.Fatalf("%s: status %d %q", path, rep.status, rep.header.Get("Content-Type"))
			}
			pages = append(pages, digestsOf(parseIndex(t, rep.body)))
			path = linkTarget(t, rep.header.Get("Link"))
			if len(pages) == 4 && path != first {
				t.Fatalf("the fourth page links to %q, want back to the first page %q", path, first)
			}
		}
		all := map[string]bool{}
		for i, p := range pages[:4] {
			if len(p) != 3 {
				t.Errorf("page %d lists %d referrers, want 3", i, len(p))
			}
			for _, d := range p {
				all[d] = true
			}
		}
		if len(all) != 12 {
			t.Errorf("four pages hold %d distinct referrers, want 12", len(all))
		}
		if !slices.Equal(pages[4], pages[0]) {
			t.Errorf("following the loop gave %v, want page 0 %v again", pages[4], pages[0])
		}
	}
}

// TestRedirect307 follows a 307 to another path of the same host by hand,
// with regctl and with oras. It counts requests at the shared lab's
// redirect-307 registry, which the parallel tests read too, so it does not
// run in parallel.
func TestRedirect307(t *testing.T) {
	l := sharedLab(t)
	r := mustGet(t, l, "redirect-307")
	want := l.Seed.ReferrersOf(l.Seed.Index)
	path := "/v2/demo/app/referrers/" + l.Seed.Index
	filtered := path + "?artifactType=" + url.QueryEscape(ArtifactTypeNotary)
	for _, method := range []string{http.MethodGet, http.MethodHead} {
		for _, p := range []string{path, filtered} {
			rep := send(t, noFollow(t, r), r, method, p, nil)
			if rep.status != http.StatusTemporaryRedirect || rep.header.Get("Location") != relocatedPrefix+p {
				t.Errorf("%s %s: %d to %q, want 307 to %s", method, p, rep.status, rep.header.Get("Location"), relocatedPrefix+p)
			}
		}
	}
	hc := httpClientFor(t, r, false)
	before := l.Requests("redirect-307")
	rep := get(t, hc, r, path, false)
	if rep.status != http.StatusOK || rep.header.Get("Content-Type") != ociIndexType {
		t.Fatalf("followed: %d %q", rep.status, rep.header.Get("Content-Type"))
	}
	checkReferrers(t, parseIndex(t, rep.body), want)
	if n := l.Requests("redirect-307") - before; n != 2 {
		t.Errorf("the redirected GET cost %d requests, want 2", n)
	}
	// The filter survives the redirect. olareg v0.2.2 answers a filtered
	// list it has cached without OCI-Filters-Applied (the header is set
	// only on its uncached path: a second run in one process sees that);
	// without the header the spec has the client filter, which must
	// leave the one signature either way.
	rep = get(t, hc, r, filtered, false)
	var notary int
	for _, m := range parseIndex(t, rep.body).Manifests {
		if m.ArtifactType == ArtifactTypeNotary {
			notary++
		}
	}
	applied := rep.header.Get("OCI-Filters-Applied")
	if rep.status != http.StatusOK || (applied != "artifactType" && applied != "") || notary != 1 ||
		(applied != "" && len(parseIndex(t, rep.body).Manifests) != 1) {
		t.Errorf("filtered after the redirect: %d %s %v", rep.status, rep.body, rep.header)
	}
	// Only the referrers endpoint moved.
	if rep := send(t, noFollow(t, r), r, http.MethodGet, "/v2/demo/app/manifests/v1", nil); rep.status != http.StatusOK {
		t.Errorf("manifest GET: %d", rep.status)
	}
	if rep := send(t, noFollow(t, r), r, http.MethodPut, relocatedPrefix+path, nil); rep.status == http.StatusOK || rep.status == http.StatusCreated {
		t.Errorf("PUT to the relocated path: %d", rep.status)
	}

	dir := t.TempDir()
	for tool, got := range map[string]map[string]string{
		"regctl": regctlList(t, dir, r, seedRef(r, l.Seed.Index)),
		"oras":   orasDiscover(t, dir, seedRef(r, l.Seed.Index), "v1.1-referrers-api"),
	} {
		if len(got) != len(want) {
			t.Errorf("%s lists %v, want the %d seeded referrers", tool, got, len(want))
		}
		for _, w := range want {
			if got[w.Digest] != w.ArtifactType {
				t.Errorf("%s: %s listed as %q, want %s", tool, w.Digest, got[w.Digest], w.ArtifactType)
			}
		}
	}
}

// TestRedirectCDN: behind a bearer login, /referrers redirects to a CDN
// host that serves the reply to a signed URL; regctl, oras, refdoctor's
// client and Go's client follow it, and none carries its Authorization
// header to the CDN. The CDN does record one when it gets one.
func TestRedirectCDN(t *testing.T) {
	t.Parallel()
	// A lab of its own: the CDN's counters must see only this test.
	l, err := Start(t.Context(), WithSpecs(Spec{Name: "cdn", Profile: ProfileRedirectCDN}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	r := mustGet(t, l, "cdn")
	if r.Login == nil || !strings.HasPrefix(r.OtherHost, "localhost:") {
		t.Fatalf("login %v, other host %q", r.Login, r.OtherHost)
	}
	want := l.Seed.ReferrersOf(l.Seed.Index)
	path := "/v2/demo/app/referrers/" + l.Seed.Index

	// Without a login: the registry's challenge, before any redirect.
	if rep := send(t, noFollow(t, r), r, http.MethodGet, path, nil); rep.status != http.StatusUnauthorized || rep.header.Get("Location") != "" {
		t.Fatalf("anonymous: %d, Location %q", rep.status, rep.header.Get("Location"))
	}
	hc := httpClientFor(t, r, false)
	token, err := fetchToken(t.Context(), hc, r)
	if err != nil {
		t.Fatal(err)
	}
	authz := http.Header{"Authorization": {"Bearer " + token}}
	rep := send(t, noFollow(t, r), r, http.MethodGet, path, authz)
	loc, err := url.Parse(rep.header.Get("Location"))
	if rep.status != http.StatusTemporaryRedirect || err != nil || loc.Host != r.OtherHost || loc.Path != path || loc.Query().Get(signatureParam) == "" {
		t.Fatalf("with a token: %d to %q, want 307 to %s%s, signed", rep.status, rep.header.Get("Location"), r.OtherHost, path)
	}
	// The CDN serves the signed URL without a login, and nothing else.
	cdn := Registry{Host: r.OtherHost, PlainHTTP: true}
	cdnClient := httpClientFor(t, cdn, false)
	got := send(t, cdnClient, cdn, http.MethodGet, loc.RequestURI(), nil)
	if got.status != http.StatusOK || got.header.Get("Content-Type") != ociIndexType {
		t.Fatalf("CDN: %d %q", got.status, got.header.Get("Content-Type"))
	}
	checkReferrers(t, parseIndex(t, got.body), want)
	for name, p := range map[string]string{
		"unsigned": path,
		"tampered": "/v2/demo/app/referrers/" + l.Seed.Single + "?" + loc.RawQuery,
	} {
		if rep := send(t, cdnClient, cdn, http.MethodGet, p, nil); rep.status != http.StatusForbidden {
			t.Errorf("CDN, %s URL: %d, want 403", name, rep.status)
		}
	}
	if n, withAuth := l.OtherHostRequests("cdn"); n != 3 || withAuth != 0 {
		t.Fatalf("CDN counted %d requests, %d with Authorization; want 3 and 0", n, withAuth)
	}

	// Clients that follow the redirect with their login in hand.
	followers := map[string]func() map[string]string{
		"go net/http": func() map[string]string {
			rep := send(t, hc, r, http.MethodGet, path, authz)
			return typesOf(parseIndex(t, rep.body))
		},
		"refdoctor's client": func() map[string]string {
			app, _ := ref.New(r.Host + "/demo/app@" + l.Seed.Index)
			rl, err := clientFor(t, l, false).ReferrerList(t.Context(), app)
			if err != nil {
				t.Fatalf("ReferrerList: %v", err)
			}
			m := map[string]string{}
			for _, d := range rl.Descriptors {
				m[d.Digest.String()] = d.ArtifactType
			}
			return m
		},
		"regctl": func() map[string]string { return regctlList(t, toolDir(t, l), r, seedRef(r, l.Seed.Index)) },
		"oras": func() map[string]string {
			return orasDiscover(t, toolDir(t, l), seedRef(r, l.Seed.Index), "v1.1-referrers-api")
		},
	}
	for _, name := range []string{"go net/http", "refdoctor's client", "regctl", "oras"} {
		n0, _ := l.OtherHostRequests("cdn")
		got := followers[name]()
		if len(got) != len(want) {
			t.Errorf("%s lists %v, want the %d seeded referrers", name, got, len(want))
		}
		for _, w := range want {
			if got[w.Digest] != w.ArtifactType {
				t.Errorf("%s: %s listed as %q", name, w.Digest, got[w.Digest])
			}
		}
		n, withAuth := l.OtherHostRequests("cdn")
		if n == n0 {
			t.Errorf("%s never reached the CDN", name)
		}
		if withAuth != 0 {
			t.Errorf("%s sent its Authorization header to the CDN host", name)
		}
	}

	// The counter is not blind: a request that carries a header counts.
	send(t, cdnClient, cdn, http.MethodGet, loc.RequestURI(), authz)
	if _, withAuth := l.OtherHostRequests("cdn"); withAuth != 1 {
		t.Errorf("CDN counted %d requests with Authorization, want 1", withAuth)
	}
	if n, withAuth := l.OtherHostRequests("no-such"); n != 0 || withAuth != 0 {
		t.Errorf("OtherHostRequests of an unknown registry = %d, %d", n, withAuth)
	}
}

func typesOf(i index) map[string]string {
	m := map[string]string{}
	for _, d := range i.Manifests {
		m[d.Digest] = d.ArtifactType
	}
	return m
}

// TestLogin302: /referrers redirects to a sign-in page on another host
// that answers 200 text/html.
func TestLogin302(t *testing.T) {
	t.Parallel()
	l := sharedLab(t)
	r := mustGet(t, l, "login-302")
	path := "/v2/demo/app/referrers/" + l.Seed.Index
	for _, method := range []string{http.MethodGet, http.MethodHead} {
		rep := send(t, noFollow(t, r), r, method, path, nil)
		loc, err := url.Parse(rep.header.Get("Location"))
		if rep.status != http.StatusFound || err != nil || loc.Host != r.OtherHost || loc.Path != "/ServiceLogin" ||
			loc.Query().Get("continue") != "http://"+r.Host+path {
			t.Errorf("%s: %d to %q, want 302 to the sign-in page on %s", method, rep.status, rep.header.Get("Location"), r.OtherHost)
		}
	}
	n0, _ := l.OtherHostRequests("login-302")
	rep := get(t, httpClientFor(t, r, false), r, path, false)
	if rep.status != http.StatusOK || rep.header.Get("Content-Type") != contentTypeHTML || !strings.Contains(string(rep.body), "<form") {
		t.Errorf("followed: %d %q %.100s, want the 200 HTML sign-in page", rep.status, rep.header.Get("Content-Type"), rep.body)
	}
	if n, _ := l.OtherHostRequests("login-302"); n != n0+1 {
		t.Errorf("the sign-in host counted %d requests, want %d", n, n0+1)
	}
	// The registry itself works, and its referrers sit in fallback tags,
	// where regctl and oras find them once the sign-in page is not an
	// index.
	fb := "/v2/demo/app/manifests/sha256-" + strings.TrimPrefix(l.Seed.Index, "sha256:")
	want := l.Seed.ReferrersOf(l.Seed.Index)
	checkReferrers(t, parseIndex(t, get(t, httpClientFor(t, r, false), r, fb, false).body), want)
	dir := t.TempDir()
	for tool, got := range map[string]map[string]string{
		"regctl": regctlList(t, dir, r, seedRef(r, l.Seed.Index)),
		"oras":   orasDiscover(t, dir, seedRef(r, l.Seed.Index), ""),
	} {
		if len(got) != len(want) {
			t.Errorf("%s lists %v, want the %d referrers of the fallback tag", tool, got, len(want))
		}
		for _, w := range want {
			if got[w.Digest] != w.ArtifactType {
				t.Errorf("%s: %s listed as %q", tool, w.Digest, got[w.Digest])
			}
		}
	}
}

// TestHugeIndex: one valid index of 22,000 descriptors and over 5 MiB,
// whose real referrers exist and whose generated ones say so; regctl and
// oras read it whole.
func TestHugeIndex(t *testing.T) {
	t.Parallel()
	l := sharedLab(t)
	r := mustGet(t, l, "huge-index")
	if r.SubjectReferrers != HugeIndexReferrers {
		t.Fatalf("huge-index subject has %d referrers, want %d", r.SubjectReferrers, HugeIndexReferrers)
	}
	hc := httpClientFor(t, r, false)
	path := badDayPath("referrers", r.Subject)
	rep := get(t, hc, r, path, false)
	if rep.status != http.StatusOK || rep.header.Get("Content-Type") != ociIndexType || rep.header.Get("Link") != "" {
		t.Fatalf("status %d %q Link %q", rep.status, rep.header.Get("Content-Type"), rep.header.Get("Link"))
	}
	if rep.header.Get("Content-Length") != fmt.Sprint(len(rep.body)) || len(rep.body) < 5<<20 {
		t.Errorf("Content-Length %q, body %d bytes, want over 5 MiB", rep.header.Get("Content-Length"), len(rep.body))
	}
	var strict struct {
		SchemaVersion int    `json:"schemaVersion"`
		MediaType     string `json:"mediaType"`
		Manifests     []struct {
			MediaType    string            `json:"mediaType"`
			Digest       string            `json:"digest"`
			Size         int64             `json:"size"`
			ArtifactType string            `json:"artifactType"`
			Annotations  map[string]string `json:"annotations"`
		} `json:"manifests"`
	}
	dec := json.NewDecoder(bytes.NewReader(rep.body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&strict); err != nil || strict.SchemaVersion != 2 || strict.MediaType != ociIndexType {
		t.Fatalf("not a valid index: %v (schema %d, %q)", err, strict.SchemaVersion, strict.MediaType)
	}
	if len(strict.Manifests) != HugeIndexReferrers {
		t.Fatalf("%d descriptors, want %d", len(strict.Manifests), HugeIndexReferrers)
	}
	seen := map[string]bool{}
	var real []string
	perType := map[string]int{}
	for _, m := range strict.Manifests {
		if seen[m.Digest] || !strings.HasPrefix(m.Digest, "sha256:") || len(m.Digest) != 71 || m.Size <= 0 || m.MediaType != mediatype.OCI1Manifest || m.ArtifactType == "" {
			t.Fatalf("bad or repeated descriptor %+v", m)
		}
		seen[m.Digest] = true
		perType[m.ArtifactType]++
		if m.Annotations[annotationGenerated] == "" {
			real = append(real, m.Digest)
		}
	}
	if len(real) != hugeIndexReal {
		t.Fatalf("%d real referrers, want %d", len(real), hugeIndexReal)
	}
	for _, d := range real {
		if rep := send(t, hc, r, http.MethodHead, badDayPath("manifests", d), http.Header{"Accept": {mediatype.OCI1Manifest}}); rep.status != http.StatusOK {
			t.Errorf("real referrer %s: HEAD %d", d, rep.status)
		}
	}
	// The filter applies to the generated part as well. A reply without
	// OCI-Filters-Applied is unfiltered and the client filters (the
	// spec's rule): olareg v0.2.2 answers so from its cache, which a
	// second run in one process reaches.
	frep := get(t, hc, r, path+"?artifactType="+url.QueryEscape(ArtifactTypeNotary), false)
	fi := parseIndex(t, frep.body)
	applied := frep.header.Get("OCI-Filters-Applied")
	notary := 0
	for _, m := range fi.Manifests {
		if m.ArtifactType == ArtifactTypeNotary {
			notary++
		} else if applied != "" {
			t.Fatalf("filtered list (OCI-Filters-Applied %q) has %s", applied, m.ArtifactType)
		}
	}
	if (applied != "artifactType" && applied != "") || notary != perType[ArtifactTypeNotary] || notary == 0 {
		t.Errorf("filtered: %d of %d descriptors of the type (header %q), want %d", notary, len(fi.Manifests), applied, perType[ArtifactTypeNotary])
	}
	// Other subjects get olareg's own reply.
	checkReferrers(t, parseIndex(t, get(t, hc, r, "/v2/demo/app/referrers/"+l.Seed.Index, false).body), l.Seed.ReferrersOf(l.Seed.Index))

	// regctl reads it whole; oras refuses a reply past its 4 MiB limit
	// for metadata (oras-go), which is the point of the profile.
	dir := t.TempDir()
	if got := regctlList(t, dir, r, badDayRef(r)); len(got) != HugeIndexReferrers {
		t.Errorf("regctl lists %d referrers, want %d", len(got), HugeIndexReferrers)
	}
	out, err := runToolErr(t, dir, "oras", "discover", "--plain-http", "--format", "json", badDayRef(r))
	if err == nil {
		t.Errorf("oras read the %d-byte index: %.200s", len(rep.body), out)
	} else {
		t.Logf("oras on a %d-byte index: %v: %s", len(rep.body), err, bytes.TrimSpace(out))
	}
}

// runToolErr runs a reference client like external.RunTool but returns its failure
// (with stderr) instead of failing the test.
func runToolErr(t *testing.T, dir, name string, args ...string) ([]byte, error) {
	t.Helper()
	path, err := external.ReferenceTool(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("reference client %s missing in CI: %v", name, err)
		}
		t.Skipf("reference client %s not available: %v", name, err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "HOME="+dir, "DOCKER_CONFIG="+dir, "NO_COLOR=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return stderr.Bytes(), err
	}
	return out, nil
}

// openBody sends a referrers GET with ctx and returns the reply with its
// body unread.
func openBody(t *testing.T, ctx context.Context, r Registry, path string) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, baseURL(r)+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", ociIndexType)
	hc := httpClientFor(t, r, false)
	hc.Timeout = 0 // the test's context is the client's deadline
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = resp.Body.Close() })
	return resp
}

// clientDeadline is how long the stall tests' client waits for more of a
// body before it gives up. The server under test never sends more in that
// time, however long it is, so the result does not depend on it.
const clientDeadline = 300 * time.Millisecond

// TestStalledBody: headers and half the body arrive, the rest never does;
// the client's deadline ends the read, not the server.
func TestStalledBody(t *testing.T) {
	t.Parallel()
	l := sharedLab(t)
	r := mustGet(t, l, "stalled-body")
	plain := get(t, httpClientFor(t, mustGet(t, l, "oci11"), false), mustGet(t, l, "oci11"), "/v2/demo/app/referrers/"+l.Seed.Index, false)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	resp := openBody(t, ctx, r, "/v2/demo/app/referrers/"+l.Seed.Index)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != ociIndexType || resp.ContentLength != int64(len(plain.body)) {
		t.Fatalf("headers: %d %q length %d, want 200, an index and %d bytes", resp.StatusCode, resp.Header.Get("Content-Type"), resp.ContentLength, len(plain.body))
	}
	half := make([]byte, len(plain.body)/2)
	if _, err := io.ReadFull(resp.Body, half); err != nil {
		t.Fatalf("the first half did not arrive: %v", err)
	}
	if !bytes.Equal(half, plain.body[:len(half)]) {
		t.Error("the first half is not olareg's reply")
	}
	rest, err := readUntil(ctx, cancel, resp.Body)
	if rest != 0 || !errors.Is(err, context.Canceled) {
		t.Errorf("after the half: %d more bytes, %v; want none until the client gave up", rest, err)
	}
	// Other routes are untouched.
	if rep := get(t, httpClientFor(t, r, false), r, "/v2/demo/app/manifests/v1", false); rep.status != http.StatusOK {
		t.Errorf("manifest GET: %d", rep.status)
	}
}

// readUntil reads body until the client's deadline, then cancels (the
// client giving up) and reports how many bytes came and how it ended.
func readUntil(ctx context.Context, cancel context.CancelFunc, body io.Reader) (int64, error) {
	type result struct {
		n   int64
		err error
	}
	done := make(chan result, 1)
	go func() {
		n, err := io.Copy(io.Discard, body)
		done <- result{n, err}
	}()
	timer := time.NewTimer(clientDeadline)
	defer timer.Stop()
	select {
	case res := <-done:
		// The body ended (or broke) before the client gave up.
		if res.err == nil {
			res.err = errors.New("the body completed")
		}
		return res.n, res.err
	case <-timer.C:
		cancel()
	}
	res := <-done
	if ctx.Err() != nil {
		return res.n, context.Canceled
	}
	return res.n, res.err
}

// TestTrickleBody: headers on time, then one byte per interval; with an
// interval of an hour exactly one byte arrives before the client gives
// up, with a short one the bytes arrive one by one and are olareg's reply.
func TestTrickleBody(t *testing.T) {
	t.Parallel()
	l, err := Start(t.Context(), WithSpecs(
		Spec{Name: "oci11", Profile: ProfileOCI11},
		Spec{Name: "hourly", Profile: ProfileTrickleBody, TrickleInterval: time.Hour},
		Spec{Name: "fast", Profile: ProfileTrickleBody, TrickleInterval: 5 * time.Millisecond},
	))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	path := "/v2/demo/app/referrers/" + l.Seed.Index
	oci := mustGet(t, l, "oci11")
	plain := get(t, httpClientFor(t, oci, false), oci, path, false).body

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	resp := openBody(t, ctx, mustGet(t, l, "hourly"), path)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != ociIndexType || resp.ContentLength != int64(len(plain)) {
		t.Fatalf("headers: %d %q length %d", resp.StatusCode, resp.Header.Get("Content-Type"), resp.ContentLength)
	}
	b := make([]byte, 1)
	if _, err := io.ReadFull(resp.Body, b); err != nil || b[0] != plain[0] {
		t.Fatalf("first byte %q, %v", b, err)
	}
	if rest, err := readUntil(ctx, cancel, resp.Body); rest != 0 || !errors.Is(err, context.Canceled) {
		t.Errorf("after the first byte: %d more, %v; want none before the next interval", rest, err)
	}

	// With a short interval the bytes keep coming, in order.
	ctx2, cancel2 := context.WithCancel(t.Context())
	defer cancel2()
	fast := openBody(t, ctx2, mustGet(t, l, "fast"), path)
	var got []byte
	for len(got) < 8 {
		buf := make([]byte, 64)
		n, err := fast.Body.Read(buf)
		if err != nil {
			t.Fatalf("read after %d bytes: %v", len(got), err)
		}
		got = append(got, buf[:n]...)
	}
	if !bytes.Equal(got, plain[:len(got)]) {
		t.Errorf("trickled %q, want the start of olareg's reply %q", got, plain[:len(got)])
	}
	if m := mustGet(t, l, "fast").Mimics; !strings.Contains(m, "one byte every 5ms") {
		t.Errorf("mimics %q does not name the interval", m)
	}
	if m := mustGet(t, sharedLab(t), "trickle-body").Mimics; strings.Contains(m, "one byte every") || !strings.Contains(m, "1 byte per second") {
		t.Errorf("default trickle mimics %q", m)
	}
}

// TestNoArtifactType: the listing drops artifactType and ignores the
// filter while the manifests keep their types; regctl and oras see the
// entries untyped.
func TestNoArtifactType(t *testing.T) {
	t.Parallel()
	l := sharedLab(t)
	r := mustGet(t, l, "no-artifact-type")
	hc := httpClientFor(t, r, false)
	want := l.Seed.ReferrersOf(l.Seed.Index)
	path := "/v2/demo/app/referrers/" + l.Seed.Index
	for _, p := range []string{path, path + "?artifactType=" + url.QueryEscape(ArtifactTypeNotary)} {
		rep := get(t, hc, r, p, false)
		if rep.status != http.StatusOK || rep.header.Get("Content-Type") != ociIndexType || rep.header.Get("OCI-Filters-Applied") != "" {
			t.Fatalf("%s: %d %v", p, rep.status, rep.header)
		}
		idx := parseIndex(t, rep.body)
		if len(idx.Manifests) != len(want) {
			t.Errorf("%s: %d entries, want all %d", p, len(idx.Manifests), len(want))
		}
		if strings.Contains(string(rep.body), `"artifactType"`) {
			t.Errorf("%s: the listing carries artifactType: %s", p, rep.body)
		}
	}
	for _, w := range want {
		if at := manifestArtifactType(t, hc, r, w.Digest); at != w.ArtifactType {
			t.Errorf("manifest %s carries artifactType %q, want %q", w.Digest, at, w.ArtifactType)
		}
	}
	dir := t.TempDir()
	for tool, got := range map[string]map[string]string{
		"regctl": regctlList(t, dir, r, seedRef(r, l.Seed.Index)),
		"oras":   orasDiscover(t, dir, seedRef(r, l.Seed.Index), "v1.1-referrers-api"),
	} {
		if len(got) != len(want) {
			t.Errorf("%s lists %v, want %d referrers", tool, got, len(want))
		}
		for d, at := range got {
			if at != "" {
				t.Errorf("%s lists %s as %q, want no type", tool, d, at)
			}
		}
	}
}

// manifestArtifactType reads a manifest's own artifactType.
func manifestArtifactType(t *testing.T, hc *http.Client, r Registry, dig string) string {
	t.Helper()
	rep := send(t, hc, r, http.MethodGet, "/v2/demo/app/manifests/"+dig, http.Header{"Accept": {mediatype.OCI1Manifest + ", " + mediatype.OCI1ManifestList}})
	var m struct {
		ArtifactType string `json:"artifactType"`
	}
	if rep.status != http.StatusOK || json.Unmarshal(rep.body, &m) != nil {
		t.Fatalf("manifest %s: %d", dig, rep.status)
	}
	return m.ArtifactType
}

// TestMislabelledTypes: every referrer is listed with its config media
// type, whatever its artifactType, as go-containerregistry's registry
// does; the filter is ignored. regctl attaches one with a config of its
// own, and regctl and oras list the registry's labels.
func TestMislabelledTypes(t *testing.T) {
	t.Parallel()
	l, err := Start(t.Context(), WithSpecs(Spec{Name: "ggcr", Profile: ProfileMislabelledTypes}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	r := mustGet(t, l, "ggcr")
	hc := httpClientFor(t, r, false)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "config.json.in"), []byte(`{"tool":"refdoctor lab"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "sbom.json"), []byte(`{"bomFormat":"CycloneDX","specVersion":"1.5"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	const configType = "application/vnd.example.config.v1+json"
	external.RunTool(t, dir, "regctl", "--host", "reg="+r.Host+",tls=disabled", "artifact", "put",
		"--subject", r.Host+"/demo/app@"+l.Seed.Index, "--artifact-type", ArtifactTypeSPDX,
		"--config-type", configType, "--config-file", "config.json.in", "--file", "sbom.json", "--file-media-type", "application/json")

	path := "/v2/demo/app/referrers/" + l.Seed.Index
	idx := parseIndex(t, get(t, hc, r, path, false).body)
	filtered := get(t, hc, r, path+"?artifactType="+url.QueryEscape(ArtifactTypeNotary), false)
	if filtered.header.Get("OCI-Filters-Applied") != "" || len(parseIndex(t, filtered.body).Manifests) != len(idx.Manifests) {
		t.Errorf("the filter was applied: %v", filtered.header)
	}
	seeded := map[string]string{}
	for _, w := range l.Seed.ReferrersOf(l.Seed.Index) {
		seeded[w.Digest] = w.ArtifactType
	}
	if len(idx.Manifests) != len(seeded)+1 {
		t.Fatalf("%d referrers listed, want %d", len(idx.Manifests), len(seeded)+1)
	}
	listed := typesOf(idx)
	for _, m := range idx.Manifests {
		own := manifestArtifactType(t, hc, r, m.Digest)
		wantListed, wantOwn := mediatype.OCI1Empty, seeded[m.Digest]
		if wantOwn == "" {
			wantListed, wantOwn = configType, ArtifactTypeSPDX
		}
		if m.ArtifactType != wantListed || own != wantOwn {
			t.Errorf("%s: listed as %q with its own type %q, want %q and %q", m.Digest, m.ArtifactType, own, wantListed, wantOwn)
		}
	}
	for tool, got := range map[string]map[string]string{
		"regctl": regctlList(t, dir, r, seedRef(r, l.Seed.Index)),
		"oras":   orasDiscover(t, dir, seedRef(r, l.Seed.Index), "v1.1-referrers-api"),
	} {
		if !mapsEqual(got, listed) {
			t.Errorf("%s lists %v, want the registry's labels %v", tool, got, listed)
		}
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if bv, ok := b[k]; !ok || bv != v {
			return false
		}
	}
	return true
}

// TestMislabelledFallback: no referrers API, and fallback indexes whose
// entries are typed as the empty config while the manifests carry their
// own types; regctl and oras read the fallback as stored.
func TestMislabelledFallback(t *testing.T) {
	t.Parallel()
	l := sharedLab(t)
	r := mustGet(t, l, "ghcr-cosign-fallback")
	hc := httpClientFor(t, r, false)
	if rep := get(t, hc, r, "/v2/demo/app/referrers/"+l.Seed.Index, false); rep.status != http.StatusNotFound {
		t.Errorf("/referrers: %d, want 404", rep.status)
	}
	amd64 := l.Seed.Platforms["linux/amd64"]
	for _, subject := range []string{l.Seed.Index, amd64} {
		want := l.Seed.ReferrersOf(subject)
		rep := get(t, hc, r, "/v2/demo/app/manifests/sha256-"+strings.TrimPrefix(subject, "sha256:"), false)
		idx := parseIndex(t, rep.body)
		if rep.status != http.StatusOK || idx.MediaType != ociIndexType || len(idx.Manifests) != len(want) {
			t.Fatalf("fallback index of %s: %d, %d entries", subject, rep.status, len(idx.Manifests))
		}
		listed := map[string]string{}
		for _, m := range idx.Manifests {
			if m.ArtifactType != mediatype.OCI1Empty {
				t.Errorf("fallback entry %s typed %q, want %s", m.Digest, m.ArtifactType, mediatype.OCI1Empty)
			}
			listed[m.Digest] = m.ArtifactType
		}
		for _, w := range want {
			if at := manifestArtifactType(t, hc, r, w.Digest); at != w.ArtifactType {
				t.Errorf("manifest %s carries %q, want %q", w.Digest, at, w.ArtifactType)
			}
		}
		dir := t.TempDir()
		for tool, got := range map[string]map[string]string{
			"regctl": regctlList(t, dir, r, seedRef(r, subject)),
			"oras":   orasDiscover(t, dir, seedRef(r, subject), "v1.1-referrers-tag"),
		} {
			if !mapsEqual(got, listed) {
				t.Errorf("%s lists %v, want the fallback index as stored %v", tool, got, listed)
			}
		}
	}
}

// TestNotARegistry: the two web servers answer every registry path as a
// web server does, with no registry header.
func TestNotARegistry(t *testing.T) {
	t.Parallel()
	l := sharedLab(t)
	paths := []string{"/v2/", "/v2", "/v2/demo/app/tags/list", "/v2/demo/app/manifests/v1", "/v2/demo/app/referrers/" + l.Seed.Index, "/v2/_catalog", "/token"}
	for _, tc := range []struct {
		name        string
		status      int
		contentType string
	}{
		{"not-a-registry-404", http.StatusNotFound, "text/plain; charset=utf-8"},
		{"not-a-registry-html", http.StatusOK, contentTypeHTML},
	} {
		r := mustGet(t, l, tc.name)
		if !r.Profile.WebServer() || !r.PlainHTTP || r.Expected != "" {
			t.Errorf("%s: %+v", tc.name, r)
		}
		hc := noFollow(t, r)
		for _, p := range paths {
			for _, method := range []string{http.MethodGet, http.MethodHead} {
				rep := send(t, hc, r, method, p, http.Header{"Accept": {ociIndexType}})
				if p == "/v2" && tc.status == http.StatusNotFound && rep.status == http.StatusMovedPermanently {
					continue // Go's file server adds the slash to a folder: there is none
				}
				if rep.status != tc.status || rep.header.Get("Content-Type") != tc.contentType {
					t.Errorf("%s: %s %s: %d %q, want %d %q", tc.name, method, p, rep.status, rep.header.Get("Content-Type"), tc.status, tc.contentType)
				}
				for _, h := range []string{"Docker-Distribution-API-Version", "WWW-Authenticate", "Docker-Content-Digest"} {
					if rep.header.Get(h) != "" {
						t.Errorf("%s: %s %s carries %s", tc.name, method, p, h)
					}
				}
			}
		}
		// A manifest PUT gets the same page: nothing registry-like.
		if rep := send(t, hc, r, http.MethodPut, "/v2/demo/app/manifests/v1", nil); rep.status != tc.status || rep.header.Get("Location") != "" {
			t.Errorf("%s: manifest PUT answered %d, Location %q", tc.name, rep.status, rep.header.Get("Location"))
		}
	}
	// The file server lists its (empty) folder at the root, as
	// python3 -m http.server does.
	r := mustGet(t, l, "not-a-registry-404")
	if rep := get(t, httpClientFor(t, r, false), r, "/", false); rep.status != http.StatusOK || !strings.Contains(string(rep.body), "<pre>") {
		t.Errorf("file server root: %d %.100s", rep.status, rep.body)
	}
}

// TestThrottled6h: every manifest and referrers GET answers Docker Hub's
// 429 with a six-hour Retry-After; HEAD and the tag list pass.
func TestThrottled6h(t *testing.T) {
	t.Parallel()
	l := sharedLab(t)
	r := mustGet(t, l, "throttled-6h")
	hc := httpClientFor(t, r, false)
	for range 3 { // it never clears
		for _, p := range []string{"/v2/demo/app/referrers/" + l.Seed.Index, "/v2/demo/app/manifests/v1", "/v2/demo/app/manifests/" + l.Seed.Index} {
			rep := get(t, hc, r, p, false)
			h := rep.header
			if rep.status != http.StatusTooManyRequests || h.Get("Retry-After") != "21600" || h.Get("RateLimit-Limit") != "100;w=21600" ||
				h.Get("RateLimit-Remaining") != "0;w=21600" || h.Get("Docker-RateLimit-Source") != "127.0.0.1" || h.Get("Content-Type") != contentTypeJSON {
				t.Fatalf("GET %s: %d %v", p, rep.status, h)
			}
			jsonErrorCode("TOOMANYREQUESTS")(t, r, rep)
		}
	}
	head := send(t, hc, r, http.MethodHead, "/v2/demo/app/manifests/v1", http.Header{"Accept": {ociIndexType}})
	if head.status != http.StatusOK || head.header.Get("Docker-Content-Digest") != l.Seed.Index || head.header.Get("RateLimit-Remaining") != "0;w=21600" {
		t.Errorf("HEAD: %d %v", head.status, head.header)
	}
	tags := get(t, hc, r, "/v2/demo/app/tags/list", false)
	if tags.status != http.StatusOK || !strings.Contains(string(tags.body), `"v1"`) {
		t.Errorf("tag list: %d %s", tags.status, tags.body)
	}
}

// TestGHCR303: /referrers answers 303 to github.com's packages endpoint
// (the digest cut at its colon), which answers 429; the referrers are in
// fallback tags, where regctl finds them after the 429.
func TestGHCR303(t *testing.T) {
	t.Parallel()
	l := sharedLab(t)
	r := mustGet(t, l, "ghcr-303")
	path := "/v2/demo/app/referrers/" + l.Seed.Index
	rep := send(t, noFollow(t, r), r, http.MethodGet, path, nil)
	wantLoc := "http://" + r.OtherHost + "/-/v2/packages/container/package/demo%2Fapp%2Freferrers%2Fsha256"
	if rep.status != http.StatusSeeOther || rep.header.Get("Location") != wantLoc {
		t.Fatalf("GET: %d to %q, want 303 to %s", rep.status, rep.header.Get("Location"), wantLoc)
	}
	n0, _ := l.OtherHostRequests("ghcr-303")
	rep = get(t, httpClientFor(t, r, false), r, path, false)
	if rep.status != http.StatusTooManyRequests {
		t.Errorf("followed: %d, want the packages endpoint's 429", rep.status)
	}
	if n, _ := l.OtherHostRequests("ghcr-303"); n != n0+1 {
		t.Errorf("the packages endpoint counted %d requests, want %d", n, n0+1)
	}
	dir := t.TempDir()
	got := regctlList(t, dir, r, seedRef(r, l.Seed.Index))
	want := l.Seed.ReferrersOf(l.Seed.Index)
	if len(got) != len(want) {
		t.Errorf("regctl lists %v, want the %d referrers of the fallback tag", got, len(want))
	}
	for _, w := range want {
		if got[w.Digest] != w.ArtifactType {
			t.Errorf("regctl: %s listed as %q", w.Digest, got[w.Digest])
		}
	}
	// oras stops at the 429 of the packages endpoint.
	out, err := runToolErr(t, dir, "oras", "discover", "--plain-http", "--format", "json", seedRef(r, l.Seed.Index))
	if err == nil || !strings.Contains(string(out), "429") || !strings.Contains(string(out), r.OtherHost) {
		t.Errorf("oras discover: %v: %s; want its error naming the 429 of %s", err, out, r.OtherHost)
	}
}

// TestECR2024: a manifest PUT with a subject gets OCI-Subject back, yet
// /referrers answers 404 and no fallback tag exists; regctl trusts the
// header, writes no fallback tag, and then finds nothing.
func TestECR2024(t *testing.T) {
	t.Parallel()
	l, err := Start(t.Context(), WithSpecs(Spec{Name: "ecr", Profile: ProfileECR2024}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	r := mustGet(t, l, "ecr")
	hc := httpClientFor(t, r, false)
	fallback := "/v2/demo/app/manifests/sha256-" + strings.TrimPrefix(l.Seed.Index, "sha256:")
	for _, p := range []string{"/v2/demo/app/referrers/" + l.Seed.Index, fallback} {
		if rep := get(t, hc, r, p, false); rep.status != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", p, rep.status)
		}
	}
	// A referrer pushed by hand: the registry claims it indexed it.
	subject := fmt.Sprintf(`{"mediaType":%q,"digest":%q,"size":%d}`, mediatype.OCI1ManifestList, l.Seed.Index, indexSize(t, hc, r, l.Seed.Index))
	body := []byte(`{"schemaVersion":2,"mediaType":"` + mediatype.OCI1Manifest + `","artifactType":"application/vnd.example.test",` +
		`"config":{"mediaType":"` + mediatype.OCI1Empty + `","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},` +
		`"layers":[{"mediaType":"` + mediatype.OCI1Empty + `","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2}],` +
		`"subject":` + subject + `}`)
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPut, baseURL(r)+"/v2/demo/app/manifests/by-hand", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", mediatype.OCI1Manifest)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || resp.Header.Get("OCI-Subject") != l.Seed.Index {
		t.Fatalf("manifest PUT: %d, OCI-Subject %q", resp.StatusCode, resp.Header.Get("OCI-Subject"))
	}

	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "sbom.json"), []byte(`{"bomFormat":"CycloneDX"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	external.RunTool(t, dir, "regctl", "--host", "reg="+r.Host+",tls=disabled", "artifact", "put", "--subject", r.Host+"/demo/app@"+l.Seed.Index,
		"--artifact-type", ArtifactTypeCycloneDX, "--file", "sbom.json", "--file-media-type", ArtifactTypeCycloneDX)
	if got := regctlList(t, dir, r, seedRef(r, l.Seed.Index)); len(got) != 0 {
		t.Errorf("regctl lists %v: it should have found nothing", got)
	}
	if got := orasDiscover(t, dir, seedRef(r, l.Seed.Index), ""); len(got) != 0 {
		t.Errorf("oras lists %v: it should have found nothing", got)
	}
	if rep := get(t, hc, r, fallback, false); rep.status != http.StatusNotFound {
		t.Errorf("a fallback tag appeared: %d", rep.status)
	}
}

// indexSize is the size of a manifest as the registry serves it.
func indexSize(t *testing.T, hc *http.Client, r Registry, dig string) int {
	t.Helper()
	rep := send(t, hc, r, http.MethodGet, "/v2/demo/app/manifests/"+dig, http.Header{"Accept": {mediatype.OCI1ManifestList}})
	if rep.status != http.StatusOK {
		t.Fatalf("manifest %s: %d", dig, rep.status)
	}
	return len(rep.body)
}

// TestACR424: /referrers answers 424 with ACR's error wrapping the
// upstream 303; the rest of the registry works.
func TestACR424(t *testing.T) {
	t.Parallel()
	l := sharedLab(t)
	r := mustGet(t, l, "acr-424")
	hc := httpClientFor(t, r, false)
	path := "/v2/demo/app/referrers/" + l.Seed.Index
	rep := get(t, hc, r, path, false)
	var e struct {
		Errors []struct{ Code, Message string } `json:"errors"`
	}
	if rep.status != http.StatusFailedDependency || rep.header.Get("Content-Type") != contentTypeJSON || json.Unmarshal(rep.body, &e) != nil ||
		len(e.Errors) != 1 || e.Errors[0].Code != "UNKNOWN" ||
		!strings.Contains(e.Errors[0].Message, "from source 'demo/app' for cache rule 'ghcr-io' returned status code 303") {
		t.Errorf("GET: %d %q %s", rep.status, rep.header.Get("Content-Type"), rep.body)
	}
	if head := send(t, hc, r, http.MethodHead, path, nil); head.status != http.StatusFailedDependency || len(head.body) != 0 {
		t.Errorf("HEAD: %d, %d bytes", head.status, len(head.body))
	}
	if rep := get(t, hc, r, "/v2/demo/app/manifests/v1", false); rep.status != http.StatusOK {
		t.Errorf("manifest GET: %d", rep.status)
	}
	// The independent clients disagree: oras reports ACR's error, regctl
	// falls back to a tag that does not exist and lists nothing.
	dir := t.TempDir()
	out, err := runToolErr(t, dir, "oras", "discover", "--plain-http", "--format", "json", seedRef(r, l.Seed.Index))
	if err == nil || !strings.Contains(string(out), "returned status code 303") {
		t.Errorf("oras discover: %v: %s; want ACR's error", err, out)
	}
	if got := regctlList(t, dir, r, seedRef(r, l.Seed.Index)); len(got) != 0 {
		t.Errorf("regctl lists %v", got)
	}
}

// TestRateLimitBudgetAndReset: the demo's Docker Hub-like registry has
// Docker Hub's anonymous budget; a spent budget answers 429 until
// ResetRateLimit refills it.
func TestRateLimitBudgetAndReset(t *testing.T) {
	t.Parallel()
	for _, s := range DefaultSpecs() {
		if s.Profile == ProfileRateLimit && s.RateBudget != DefaultRateBudget {
			t.Errorf("%s: budget %d, want %d", s.Name, s.RateBudget, DefaultRateBudget)
		}
	}
	if DefaultRateBudget < 100 {
		t.Errorf("DefaultRateBudget %d: a demo session spends more than that", DefaultRateBudget)
	}
	l, err := Start(t.Context(), WithSpecs(
		Spec{Name: "hub", Profile: ProfileRateLimit, RateBudget: 2},
		Spec{Name: "oci11", Profile: ProfileOCI11},
		Spec{Name: "6h", Profile: ProfileThrottled6h},
	))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	r := mustGet(t, l, "hub")
	hc := httpClientFor(t, r, false)
	p := "/v2/demo/app/manifests/v1"
	for i, want := range []int{200, 200, 429, 429} {
		if rep := get(t, hc, r, p, false); rep.status != want {
			t.Fatalf("request %d: %d, want %d", i, rep.status, want)
		}
	}
	if err := l.ResetRateLimit("hub"); err != nil {
		t.Fatal(err)
	}
	rep := get(t, hc, r, p, false)
	if rep.status != http.StatusOK || rep.header.Get("RateLimit-Remaining") != "1;w=21600" {
		t.Errorf("after the reset: %d, remaining %q, want 200 and 1", rep.status, rep.header.Get("RateLimit-Remaining"))
	}
	for _, name := range []string{"oci11", "6h", "no-such"} {
		if err := l.ResetRateLimit(name); err == nil {
			t.Errorf("ResetRateLimit(%q) succeeded", name)
		}
	}
}
