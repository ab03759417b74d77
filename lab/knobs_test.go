package lab

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/regclient/regclient/scheme"
	"github.com/regclient/regclient/types/descriptor"
	"github.com/regclient/regclient/types/ref"
	"github.com/regclient/regclient/types/referrer"

	"github.com/refdoctor/refdoctor/registry"
)

// TestSpecKnobs exercises IgnoreArtifactTypeFilter, LinkLoop and
// Throttle429 over HTTP against registries of one lab.
func TestSpecKnobs(t *testing.T) {
	t.Parallel()
	l, err := Start(t.Context(), WithSpecs(
		Spec{Name: "plain", Profile: ProfileOCI11},
		Spec{Name: "nofilter", Profile: ProfileOCI11, IgnoreArtifactTypeFilter: true},
		Spec{Name: "loop", Profile: ProfileOCI11, LinkLoop: true},
		Spec{Name: "loop-paged", Profile: ProfileOCI11, LinkLoop: true, ReferrersPageLimit: 900},
		Spec{Name: "throttle", Profile: ProfileOCI11, Throttle429: 2},
		Spec{Name: "throttle-once", Profile: ProfileOCI11, Throttle429: 1},
		Spec{Name: "harbor-throttle", Profile: ProfileJSON200, Throttle429: 1, IgnoreArtifactTypeFilter: true},
	))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	index := l.Seed.Index
	path := "/v2/demo/app/referrers/" + index
	all := l.Seed.ReferrersOf(index)
	var notary []SeededReferrer
	for _, r := range all {
		if r.ArtifactType == ArtifactTypeNotary {
			notary = append(notary, r)
		}
	}
	filtered := path + "?artifactType=" + ArtifactTypeNotary

	t.Run("filter", func(t *testing.T) {
		t.Parallel()
		plain := mustGet(t, l, "plain")
		rep := get(t, httpClientFor(t, plain, false), plain, filtered, false)
		checkReferrers(t, parseIndex(t, rep.body), notary)
		if got := rep.header.Get("OCI-Filters-Applied"); got != "artifactType" {
			t.Errorf("plain olareg: OCI-Filters-Applied %q, want artifactType", got)
		}

		r := mustGet(t, l, "nofilter")
		hc := httpClientFor(t, r, false)
		rep = get(t, hc, r, filtered, false)
		if rep.status != http.StatusOK || rep.header.Get("Content-Type") != ociIndexType {
			t.Fatalf("status %d, content type %q", rep.status, rep.header.Get("Content-Type"))
		}
		checkReferrers(t, parseIndex(t, rep.body), all)
		if v, ok := rep.header["Oci-Filters-Applied"]; ok {
			t.Errorf("OCI-Filters-Applied %q on a registry that ignores the filter", v)
		}
		if m := mustGet(t, l, "nofilter").Mimics; !strings.Contains(m, "ignores the artifactType filter") {
			t.Errorf("mimics %q does not mention the knob", m)
		}

		// regclient filters on its side when the header is missing.
		c := clientFor(t, l, false)
		app, _ := ref.New(r.Host + "/demo/app@" + index)
		rl, err := c.ReferrerList(t.Context(), app, scheme.WithReferrerMatchOpt(descriptor.MatchOpt{ArtifactType: ArtifactTypeNotary}))
		if err != nil {
			t.Fatal(err)
		}
		if len(rl.Descriptors) != 1 || rl.Descriptors[0].Digest.String() != notary[0].Digest {
			t.Errorf("regclient listed %+v, want the notary signature only", rl.Descriptors)
		}
	})

	t.Run("filter-on-harbor-2.8", func(t *testing.T) {
		t.Parallel()
		// Knobs combine with the profile's own quirk (and with a throttle
		// that the first request spends).
		r := mustGet(t, l, "harbor-throttle")
		hc := httpClientFor(t, r, false)
		if rep := get(t, hc, r, filtered, false); rep.status != http.StatusTooManyRequests {
			t.Fatalf("first request: status %d, want 429", rep.status)
		}
		rep := get(t, hc, r, filtered, false)
		if rep.status != http.StatusOK || rep.header.Get("Content-Type") != "application/json" || rep.header.Get("OCI-Filters-Applied") != "" {
			t.Errorf("status %d, headers %v", rep.status, rep.header)
		}
		checkReferrers(t, parseIndex(t, rep.body), all)
	})

	t.Run("link-loop", func(t *testing.T) {
		t.Parallel()
		r := mustGet(t, l, "loop")
		hc := httpClientFor(t, r, false)
		for _, p := range []string{path, filtered} {
			want := "<" + p + `>; rel="next"`
			next := p
			for i := range 5 {
				rep := get(t, hc, r, next, false)
				if rep.status != http.StatusOK {
					t.Fatalf("%s page %d: status %d", p, i, rep.status)
				}
				if got := rep.header.Get("Link"); got != want {
					t.Fatalf("%s page %d: Link %q, want %q", p, i, got, want)
				}
				next = linkTarget(t, rep.header.Get("Link"))
			}
		}
		// Other routes keep their replies.
		if rep := get(t, hc, r, "/v2/demo/app/tags/list", false); rep.header.Get("Link") != "" {
			t.Errorf("tag list got a Link header: %q", rep.header.Get("Link"))
		}

		// olareg's own pagination link is replaced as well.
		paged := mustGet(t, l, "loop-paged")
		rep := get(t, httpClientFor(t, paged, false), paged, path, false)
		if got, want := rep.header.Get("Link"), "<"+path+`>; rel="next"`; got != want {
			t.Errorf("paged registry: Link %q, want %q", got, want)
		}
		if n := len(parseIndex(t, rep.body).Manifests); n == 0 || n >= len(all) {
			t.Errorf("paged registry's first page lists %d referrers, want a part of %d", n, len(all))
		}
	})

	t.Run("link-loop-regclient", func(t *testing.T) {
		t.Parallel()
		// A client without a cycle guard pages until its deadline: regclient
		// is one.
		r := mustGet(t, l, "loop")
		c := clientFor(t, l, false)
		app, _ := ref.New(r.Host + "/demo/app@" + index)
		var pages atomic.Int64
		ctx := registry.WithWatcher(t.Context(), func(ex registry.Exchange) {
			if strings.Contains(ex.Path, "/referrers/") {
				pages.Add(1)
			}
		})
		ctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
		_, err := c.ReferrerList(ctx, app)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("regclient ended with %v, want the deadline", err)
		}
		if pages.Load() < 3 {
			t.Errorf("regclient fetched %d pages, want it to keep following the loop", pages.Load())
		}
	})

	t.Run("throttle", func(t *testing.T) {
		t.Parallel()
		r := mustGet(t, l, "throttle")
		hc := httpClientFor(t, r, false)
		// HEAD and other routes are not counted.
		head, err := http.NewRequestWithContext(t.Context(), http.MethodHead, baseURL(r)+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := hc.Do(head)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("HEAD referrers: %d, want 200 (only GETs are throttled)", resp.StatusCode)
		}
		for i, want := range []int{429, 200, 429, 200, 200} {
			p := path
			if i == 1 {
				p = "/v2/demo/app/manifests/v1"
			}
			rep := get(t, hc, r, p, false)
			if rep.status != want {
				t.Fatalf("request %d (%s): status %d, want %d", i, p, rep.status, want)
			}
			if want == 200 {
				if rep.header.Get("Retry-After") != "" {
					t.Errorf("request %d: Retry-After on a 200", i)
				}
				continue
			}
			h := rep.header
			if h.Get("Retry-After") != "1" || h.Get("RateLimit-Limit") != "100;w=21600" || h.Get("RateLimit-Remaining") != "0;w=21600" || h.Get("Content-Type") != "application/json" {
				t.Errorf("request %d: headers %v", i, h)
			}
			jsonErrorCode("TOOMANYREQUESTS")(t, r, rep)
		}
		checkReferrers(t, parseIndex(t, get(t, hc, r, path, false).body), all)
	})

	t.Run("throttle-regclient", func(t *testing.T) {
		t.Parallel()
		// The pitfall the knob exists for: regclient sends its first
		// referrers request with IgnoreErr, so a 429 is not retried; it
		// marks the API off for the repository and falls back to the tag
		// schema, answering "no referrers" without an error. A client that
		// asks again once the 429 has cleared gets the list.
		r := mustGet(t, l, "throttle-once")
		app, _ := ref.New(r.Host + "/demo/app@" + index)
		c := clientFor(t, l, false, registry.WithRetryLimit(3))
		rl, err := c.ReferrerList(t.Context(), app)
		if err != nil || len(rl.Descriptors) != 0 {
			t.Errorf("throttled regclient: %d referrers, %v; want the silent empty fallback", len(rl.Descriptors), err)
		}
		var statuses []int
		for _, ex := range c.Recorder.Exchanges() {
			if strings.Contains(ex.Path, "/referrers/") {
				statuses = append(statuses, ex.Status)
			}
		}
		if len(statuses) != 1 || statuses[0] != http.StatusTooManyRequests {
			t.Errorf("referrers statuses %v, want one 429", statuses)
		}
		rl, err = clientFor(t, l, false).ReferrerList(t.Context(), app)
		if err != nil || len(rl.Descriptors) != len(all) {
			t.Errorf("after the 429 cleared: %d referrers, %v; want %d", len(rl.Descriptors), err, len(all))
		}
	})
}

// linkTarget is the URI between < and > of a Link header.
func linkTarget(t *testing.T, link string) string {
	t.Helper()
	start, end := strings.Index(link, "<"), strings.Index(link, ">")
	if start < 0 || end < start || !strings.Contains(link, "rel=") || !strings.Contains(link, "next") {
		t.Fatalf("bad Link header %q", link)
	}
	return link[start+1 : end]
}

// TestReferrersPagingMany attaches 30 referrers with AttachMany and reads
// them back in several pages with relative Link headers, over HTTP and
// with regclient; on an API-off registry they land in the fallback tag.
func TestReferrersPagingMany(t *testing.T) {
	t.Parallel()
	l, err := Start(t.Context(), WithSpecs(
		Spec{Name: "paged", Profile: ProfileOCI11, ReferrersPageLimit: 2000},
		Spec{Name: "ghcr-like", Profile: ProfileFallback404},
	))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	subject := l.Seed.Platforms["linux/arm64"] // no referrers of its own
	r := mustGet(t, l, "paged")
	digests, err := AttachMany(t.Context(), l, r.Host, l.Seed.Repository, subject, ArtifactTypeCycloneDX, 30)
	if err != nil {
		t.Fatalf("AttachMany: %v", err)
	}
	want := map[string]bool{}
	for _, d := range digests {
		want[d] = true
	}
	if len(digests) != 30 || len(want) != 30 {
		t.Fatalf("AttachMany returned %d digests, %d distinct", len(digests), len(want))
	}

	hc := httpClientFor(t, r, false)
	path := "/v2/demo/app/referrers/" + subject
	seen := map[string]bool{}
	pages := 0
	for path != "" {
		if pages++; pages > 30 {
			t.Fatal("more than 30 pages")
		}
		rep := get(t, hc, r, path, false)
		if rep.status != http.StatusOK || rep.header.Get("Content-Type") != ociIndexType {
			t.Fatalf("page %d: status %d %q", pages, rep.status, rep.header.Get("Content-Type"))
		}
		for _, m := range parseIndex(t, rep.body).Manifests {
			if !want[m.Digest] || seen[m.Digest] || m.ArtifactType != ArtifactTypeCycloneDX {
				t.Errorf("page %d: unexpected or repeated referrer %s (%s)", pages, m.Digest, m.ArtifactType)
			}
			seen[m.Digest] = true
		}
		path = ""
		if link := rep.header.Get("Link"); link != "" {
			path = linkTarget(t, link)
			if !strings.HasPrefix(path, "/v2/demo/app/referrers/"+subject+"?") {
				t.Errorf("page %d: Link %q is not a relative link to the same endpoint", pages, link)
			}
		}
	}
	if pages < 3 || len(seen) != 30 {
		t.Errorf("%d referrers in %d pages, want 30 in several", len(seen), pages)
	}

	c := clientFor(t, l, false)
	app, _ := ref.New(r.Host + "/demo/app@" + subject)
	rl, err := c.ReferrerList(t.Context(), app)
	if err != nil || len(rl.Descriptors) != 30 {
		t.Errorf("regclient listed %d referrers (%v), want 30", len(rl.Descriptors), err)
	}

	// API off: the same call fills the fallback tag, one referrer at a time.
	g := mustGet(t, l, "ghcr-like")
	fdigests, err := AttachMany(t.Context(), l, g.Host, l.Seed.Repository, subject, ArtifactTypeNotary, 5)
	if err != nil {
		t.Fatalf("AttachMany on ghcr-like: %v", err)
	}
	gapp, _ := ref.New(g.Host + "/demo/app")
	fb, _ := referrer.FallbackTag(gapp.SetDigest(subject))
	m, err := c.ManifestGet(t.Context(), fb)
	if err != nil {
		t.Fatalf("fallback tag: %v", err)
	}
	raw, _ := m.RawBody()
	var got index
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Manifests) != 5 {
		t.Fatalf("fallback tag lists %d referrers, want 5", len(got.Manifests))
	}
	for i, m := range got.Manifests {
		if m.Digest != fdigests[i] {
			t.Errorf("fallback entry %d is %s, want %s", i, m.Digest, fdigests[i])
		}
	}
	if empty, err := AttachMany(t.Context(), l, g.Host, l.Seed.Repository, subject, ArtifactTypeNotary, 0); err != nil || len(empty) != 0 {
		t.Errorf("AttachMany of 0: %v %v", empty, err)
	}
	if _, err := AttachMany(t.Context(), l, g.Host, l.Seed.Repository, "sha256:"+strings.Repeat("0", 64), ArtifactTypeNotary, 1); err == nil {
		t.Error("AttachMany to a missing subject succeeded")
	}
}
