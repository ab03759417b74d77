package discovery_test

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/regclient/regclient/types/descriptor"
	"github.com/regclient/regclient/types/manifest"
	"github.com/regclient/regclient/types/mediatype"
	v1 "github.com/regclient/regclient/types/oci/v1"
	"github.com/regclient/regclient/types/ref"

	"github.com/refdoctor/refdoctor/discovery"
	"github.com/refdoctor/refdoctor/finding"
	"github.com/refdoctor/refdoctor/lab"
	"github.com/refdoctor/refdoctor/lab/labtest"
	"github.com/refdoctor/refdoctor/probe"
	"github.com/refdoctor/refdoctor/registry"
)

// regctlDigests lists a subject's referrers with regctl, by its own
// paging: the independent answer to compare with.
func regctlDigests(t *testing.T, host, subject string) []string {
	t.Helper()
	var rl struct {
		Descriptors []struct {
			Digest string `json:"digest"`
		} `json:"descriptors"`
	}
	out := labtest.RunTool(t, t.TempDir(), "regctl", "--host", "reg="+host+",tls=disabled", "artifact", "list", subject, "--format", "{{json .}}")
	if err := json.Unmarshal(out, &rl); err != nil {
		t.Fatal(err)
	}
	var ds []string
	for _, d := range rl.Descriptors {
		ds = append(ds, d.Digest)
	}
	sort.Strings(ds)
	return ds
}

// orasDigests lists a subject's referrers with oras through the API.
func orasDigests(t *testing.T, subject string) []string {
	t.Helper()
	var od struct {
		Referrers []struct {
			Digest string `json:"digest"`
		} `json:"referrers"`
	}
	out := labtest.RunTool(t, t.TempDir(), "oras", "discover", "--plain-http", "--distribution-spec", "v1.1-referrers-api", "--format", "json", subject)
	if err := json.Unmarshal(out, &od); err != nil {
		t.Fatal(err)
	}
	var ds []string
	for _, r := range od.Referrers {
		ds = append(ds, r.Digest)
	}
	sort.Strings(ds)
	return ds
}

// TestManyPagesAreAllRead: 600 referrers over 120 Link pages (relative
// links, each page a valid index) are all listed, the same 600 that
// regctl and oras list, one request per page. The old walk stopped at
// 100 pages, called it a loop and dropped everything it had read.
func TestManyPagesAreAllRead(t *testing.T) {
	t.Parallel()
	l := labtest.StartT(t, lab.Spec{Name: "pages", Profile: lab.ProfileLinkPages})
	reg, _ := l.Get("pages")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	subject := reg.Host + "/" + lab.BadDayRepository + "@" + reg.Subject
	res, err := discovery.Discover(ctx, subject, labOpts(l, discovery.WithMethod(discovery.MethodAPI))...)
	if err != nil {
		t.Fatal(err)
	}
	got := digestsBySource(res.Referrers)[discovery.SourceAPI]
	if len(got) != 600 || res.Partial || res.Outcome != finding.OutcomeOK {
		t.Fatalf("read %d of 600 referrers, partial %v, outcome %s, findings %v", len(got), res.Partial, res.Outcome, codes(res.Findings))
	}
	if res.Requests != 120+4 {
		t.Errorf("%d requests for 120 pages and 4 tag HEADs", res.Requests)
	}
	if r := regctlDigests(t, reg.Host, subject); !slices.Equal(got, r) {
		t.Errorf("refdoctor lists %d, regctl %d", len(got), len(r))
	}
	if o := orasDigests(t, subject); !slices.Equal(got, o) {
		t.Errorf("refdoctor lists %d, oras %d", len(got), len(o))
	}

	// The referrer limit ends the walk with what was read: partial, the
	// referrers kept, and a finding that names the limit.
	res, err = discovery.Discover(ctx, subject, labOpts(l, discovery.WithMethod(discovery.MethodAPI), discovery.WithMaxReferrers(100))...)
	if err != nil {
		t.Fatal(err)
	}
	n := len(res.Referrers)
	if !res.Partial || res.Outcome != finding.OutcomeIncomplete || !slices.Contains(codes(res.Findings), finding.PaginationLimit) || n != 100 {
		t.Fatalf("limit 100: %d referrers, partial %v, outcome %s, findings %v", n, res.Partial, res.Outcome, codes(res.Findings))
	}
	for _, r := range res.Referrers {
		if _, ok := slices.BinarySearch(got, r.Digest); !ok {
			t.Fatalf("limit 100: %s is not one of the 600", r.Digest)
		}
	}
	if res.Requests != 20 {
		t.Errorf("limit 100 at 5 per page took %d requests, want 20", res.Requests)
	}
}

// TestBudgetSpentOnALaterPage: the pull budget runs out after three of
// 120 pages (429, Retry-After one hour). The walk stops at once (no wait
// for the hour), keeps the 15 referrers the three pages listed (each one
// of the 600), and says the list is partial and when the registry
// answers again: exit 3, never "these are all".
func TestBudgetSpentOnALaterPage(t *testing.T) {
	t.Parallel()
	l := labtest.StartT(t, lab.Spec{Name: "pages", Profile: lab.ProfileLinkPages, BudgetAfter: 3})
	reg, _ := l.Get("pages")
	subject := reg.Host + "/" + lab.BadDayRepository + "@" + reg.Subject
	res, err := discovery.Discover(context.Background(), subject, labOpts(l, discovery.WithMethod(discovery.MethodAPI), discovery.WithTimeout(5*time.Minute))...)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Partial || res.Outcome != finding.OutcomeIncomplete || len(res.Referrers) != 15 {
		t.Fatalf("%d referrers, partial %v, outcome %s, findings %v", len(res.Referrers), res.Partial, res.Outcome, codes(res.Findings))
	}
	var f *finding.Finding
	for i := range res.Findings {
		if c := res.Findings[i].Code; c == finding.RateLimited || c == finding.ReferrersRateLimited {
			f = &res.Findings[i]
		}
	}
	if f == nil {
		t.Fatalf("no rate-limit finding in %v", codes(res.Findings))
	}
	at := time.Now().Add(time.Hour).UTC().Format("2006-01-02T15")
	if !strings.Contains(f.Summary+f.Remedy, at) {
		t.Errorf("the finding does not say when the registry answers again (%s): %+v", at, *f)
	}
	if res.Requests > 4 {
		t.Errorf("%d requests: the walk went on past the 429 on page 4", res.Requests)
	}
	// Asked again, throttled from the first page: nothing read, and it
	// says so rather than "no referrers".
	again, err := discovery.Discover(context.Background(), subject, labOpts(l, discovery.WithMethod(discovery.MethodAPI))...)
	if err != nil {
		t.Fatal(err)
	}
	if !again.Partial || again.Outcome != finding.OutcomeIncomplete || len(again.Referrers) != 0 {
		t.Fatalf("throttled from the start: %d referrers, partial %v, outcome %s", len(again.Referrers), again.Partial, again.Outcome)
	}
}

// TestLinkLoopKeepsWhatItRead: a Link back to the first page after four
// pages of three ends the walk with the 12 referrers read, partial, and a
// PaginationLoop finding; the old walk dropped all 12.
func TestLinkLoopKeepsWhatItRead(t *testing.T) {
	t.Parallel()
	l := labtest.StartT(t, lab.Spec{Name: "loop", Profile: lab.ProfileLinkLoop})
	reg, _ := l.Get("loop")
	subject := reg.Host + "/" + lab.BadDayRepository + "@" + reg.Subject
	res, err := discovery.Discover(context.Background(), subject, labOpts(l)...)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Referrers) != 12 || !res.Partial || res.Outcome != finding.OutcomeIncomplete || !slices.Contains(codes(res.Findings), finding.PaginationLoop) {
		t.Fatalf("%d referrers, partial %v, outcome %s, findings %v", len(res.Referrers), res.Partial, res.Outcome, codes(res.Findings))
	}
	if res.Requests > 5 {
		t.Errorf("the loop was cut after %d requests, want the 4 pages and the one Link back", res.Requests)
	}
}

// TestHarborPlatformsAreRead: on Harbor 2.8 (an index served as
// application/json), --platforms reads every platform manifest leniently.
// The old discovery asked regclient again after its first lenient read;
// regclient had marked the API off and skipped it, so each platform
// failed with "RequestFailed HTTP 0".
func TestHarborPlatformsAreRead(t *testing.T) {
	t.Parallel()
	l := labtest.StartT(t, lab.Spec{Name: "harbor", Profile: lab.ProfileJSON200})
	res := discover(t, l, "harbor", discovery.WithPlatforms(true))
	if slices.Contains(codes(res.Findings), finding.RequestFailed) || res.Partial || res.Outcome == finding.OutcomeIncomplete || res.Outcome == finding.OutcomeFailed {
		t.Fatalf("outcome %s partial %v findings %v", res.Outcome, res.Partial, codes(res.Findings))
	}
	amd64 := l.Seed.Platforms["linux/amd64"]
	var onAMD64 []string
	for _, p := range res.Platforms {
		if p.Digest == amd64 {
			for _, r := range p.Referrers {
				onAMD64 = append(onAMD64, r.Digest)
			}
		}
	}
	sort.Strings(onAMD64)
	if want := seededOn(l, amd64); len(want) == 0 || !slices.Equal(onAMD64, want) {
		t.Fatalf("linux/amd64 referrers %v, want %v", onAMD64, want)
	}
	if got := digestsBySource(res.Referrers)[discovery.SourceAPI]; !slices.Equal(got, seededOn(l, l.Seed.Index)) {
		t.Fatalf("index referrers %v", got)
	}
	n := 0
	for _, f := range res.Findings {
		if f.Code == finding.ReferrersWrongContentType {
			n++
		}
	}
	if n != 1 {
		t.Errorf("the lenient read is said %d times, want once", n)
	}
}

// TestOneFilterComparesLikeWithLike: with one --artifact-type, the API
// list and the fallback tag index are compared after the same filter, so
// a registry where both list the same referrers raises no disagreement
// (the old comparison set the filtered API list against the whole tag
// index); and a filter that matches nothing on the index does not claim
// that nothing is attached to it.
func TestOneFilterComparesLikeWithLike(t *testing.T) {
	t.Parallel()
	l := labtest.StartT(t, lab.Spec{Name: "oci11", Profile: lab.ProfileOCI11}, lab.Spec{Name: "ghcr", Profile: lab.ProfileFallback404})
	oci, _ := l.Get("oci11")
	ctx := context.Background()
	c, err := registry.New(l.Config(), l.ClientOpts()...)
	if err != nil {
		t.Fatal(err)
	}
	// Two referrers through the API, and the fallback index a client that
	// did not trust the API wrote for the same two.
	var descs []descriptor.Descriptor
	for _, at := range []string{lab.ArtifactTypeCycloneDX, lab.ArtifactTypeNotary} {
		d, err := lab.Attach(ctx, l, oci.Host, lab.SeedSingleRepository, l.Seed.Single, at, []byte(at))
		if err != nil {
			t.Fatal(err)
		}
		r, _ := ref.New(oci.Host + "/" + lab.SeedSingleRepository + "@" + d)
		m, err := c.ManifestHead(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		desc := m.GetDescriptor()
		descs = append(descs, descriptor.Descriptor{MediaType: desc.MediaType, Digest: desc.Digest, Size: desc.Size, ArtifactType: at})
	}
	idx, err := manifest.New(manifest.WithOrig(v1.Index{Versioned: v1.IndexSchemaVersion, MediaType: mediatype.OCI1ManifestList, Manifests: descs}))
	if err != nil {
		t.Fatal(err)
	}
	tag, _ := ref.New(oci.Host + "/" + lab.SeedSingleRepository + ":sha256-" + strings.TrimPrefix(l.Seed.Single, "sha256:"))
	if err := c.ManifestPut(ctx, tag, idx); err != nil {
		t.Fatal(err)
	}
	subject := oci.Host + "/" + lab.SeedSingleRepository + "@" + l.Seed.Single
	for _, filters := range [][]string{nil, {lab.ArtifactTypeCycloneDX}, {lab.ArtifactTypeCycloneDX, lab.ArtifactTypeNotary}} {
		res, err := discovery.Discover(ctx, subject, labOpts(l, discovery.WithArtifactTypes(filters...))...)
		if err != nil {
			t.Fatal(err)
		}
		if slices.Contains(codes(res.Findings), finding.APIAndTagIndexDisagree) {
			t.Errorf("filters %v: false disagreement %v", filters, res.Findings)
		}
		want := len(filters)
		if want == 0 {
			want = 2
		}
		if got := len(digestsBySource(res.Referrers)[discovery.SourceAPI]); got != want || res.Outcome != finding.OutcomeOK {
			t.Errorf("filters %v: %d referrers from the API, outcome %s", filters, got, res.Outcome)
		}
	}
	// A real disagreement is still told: a third referrer the tag index
	// does not list.
	third, err := lab.Attach(ctx, l, oci.Host, lab.SeedSingleRepository, l.Seed.Single, lab.ArtifactTypeCycloneDX, []byte("third"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := discovery.Discover(ctx, subject, labOpts(l, discovery.WithArtifactTypes(lab.ArtifactTypeCycloneDX))...)
	if err != nil {
		t.Fatal(err)
	}
	var disagree *finding.Finding
	for i := range res.Findings {
		if res.Findings[i].Code == finding.APIAndTagIndexDisagree {
			disagree = &res.Findings[i]
		}
	}
	if disagree == nil || !strings.Contains(disagree.Evidence, "only in API: "+discovery.ShortDigest(third)+"; only in tag index: none") {
		t.Errorf("the third referrer's absence from the tag index is not told: %v", res.Findings)
	}

	for _, name := range []string{"oci11", "ghcr"} {
		// The index has referrers, none of this type.
		res := discover(t, l, name, discovery.WithArtifactTypes("application/vnd.example.absent+json"))
		if len(res.Referrers) != 0 {
			t.Fatalf("%s: the filter kept %d referrers", name, len(res.Referrers))
		}
		for _, f := range res.Findings {
			if f.Code == finding.NoReferrersOnIndex {
				t.Errorf("%s: a filter matching nothing on the index claims nothing is attached: %s", name, f.Summary)
			}
		}
	}
}

// TestThrottledForHoursStopsAtOnce: a registry that answers 429 with a
// six-hour Retry-After is not waited on: discovery stops on the first
// such reply, partial, and says when the registry answers again. The old
// discovery slept until its timeout (here five minutes) to say less.
func TestThrottledForHoursStopsAtOnce(t *testing.T) {
	t.Parallel()
	l := labtest.StartT(t, lab.Spec{Name: "hub", Profile: lab.ProfileRateLimit, RateBudget: 0})
	reg, _ := l.Get("hub")
	refs := []string{l.Seed.Ref(reg.Host), reg.Host + "/" + lab.SeedSingleRepository + ":" + lab.SeedTag}
	rep, err := discovery.DiscoverMany(context.Background(), refs, labOpts(l, discovery.WithTimeout(5*time.Minute), discovery.WithConcurrency(1))...)
	if err != nil {
		t.Fatal(err)
	}
	for _, res := range rep.Results {
		if !res.Partial || res.Outcome != finding.OutcomeIncomplete || len(res.Referrers) != 0 {
			t.Fatalf("%s: partial %v outcome %s referrers %d", res.Subject.Reference, res.Partial, res.Outcome, len(res.Referrers))
		}
		var f *finding.Finding
		for i := range res.Findings {
			if c := res.Findings[i].Code; c == finding.RateLimited || c == finding.ReferrersRateLimited {
				f = &res.Findings[i]
			}
		}
		if f == nil {
			t.Fatalf("%s: no rate-limit finding in %v", res.Subject.Reference, codes(res.Findings))
		}
		// The absolute time the registry answers again, about six hours on.
		at := time.Now().Add(6 * time.Hour).UTC().Format("2006-01-02T15")
		if !strings.Contains(f.Summary+f.Remedy, at) || !strings.Contains(f.Cause, "Budget left: 0 of 100") {
			t.Errorf("%s: finding does not say when and what is left: %+v", res.Subject.Reference, *f)
		}
	}
	// The second subject is not sent to the throttled registry again.
	if rep.Results[1].Requests+rep.Results[1].ResolveRequests != 0 {
		t.Errorf("second subject sent %d requests to a registry throttled for hours", rep.Results[1].Requests+rep.Results[1].ResolveRequests)
	}
}

// TestCachedUnsupportedIsConfirmed: a cached "unsupported" (learned when
// the host was another registry) is not trusted to say "no referrers":
// one request to the referrers API finds the API, the referrers are
// listed, and the stale verdict leaves the cache. A verdict the registry
// confirms stays and says so.
func TestCachedUnsupportedIsConfirmed(t *testing.T) {
	t.Parallel()
	l := labtest.StartT(t, lab.Spec{Name: "oci11", Profile: lab.ProfileOCI11}, lab.Spec{Name: "ghcr", Profile: lab.ProfileFallback404})
	oci, _ := l.Get("oci11")
	ghcr, _ := l.Get("ghcr")
	cfg := l.Config()
	cfg.Cache.Dir = t.TempDir()
	cache := probe.OpenCache(cfg)
	// A real verdict of the registry without the API, stored under the
	// key of the host that now serves one.
	old, err := probe.Run(context.Background(), []probe.Target{{Host: ghcr.Host, Repository: lab.SeedSingleRepository}},
		probe.WithConfig(cfg), probe.WithClientOpts(l.ClientOpts()...), probe.WithCache(nil))
	if err != nil || old.Registries[0].ReferrersAPI != probe.Unsupported {
		t.Fatalf("probe of the fallback registry: %v %+v", err, old.Registries)
	}
	key := probe.CacheKey(cfg, probe.Target{Host: oci.Host, Repository: lab.SeedSingleRepository})
	if err := cache.Put(key, old.Registries[0], "refdoctor probe"); err != nil {
		t.Fatal(err)
	}
	subject := oci.Host + "/" + lab.SeedSingleRepository + "@" + l.Seed.Single
	attached, err := lab.Attach(context.Background(), l, oci.Host, lab.SeedSingleRepository, l.Seed.Single, lab.ArtifactTypeCycloneDX, []byte(`{"bomFormat":"CycloneDX"}`))
	if err != nil {
		t.Fatal(err)
	}
	opts := []discovery.Opt{discovery.WithConfig(cfg), discovery.WithClientOpts(l.ClientOpts()...), discovery.WithTimeout(30 * time.Second)}
	res, err := discovery.Discover(context.Background(), subject, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Referrers) != 1 || res.Referrers[0].Digest != attached || !slices.Contains(codes(res.Findings), finding.CacheStale) {
		t.Fatalf("stale cache: referrers %v findings %v", res.Referrers, codes(res.Findings))
	}
	if _, ok := cache.Get(key); ok {
		t.Fatal("the stale verdict is still cached")
	}

	// Confirmed: the registry without the API, no referrers on the single
	// image, a cached verdict; one request checks it.
	if _, err := probe.Run(context.Background(), []probe.Target{{Host: ghcr.Host, Repository: lab.SeedSingleRepository}},
		probe.WithConfig(cfg), probe.WithClientOpts(l.ClientOpts()...)); err != nil {
		t.Fatal(err)
	}
	before := l.Requests("ghcr")
	res, err = discovery.Discover(context.Background(), ghcr.Host+"/"+lab.SeedSingleRepository+"@"+l.Seed.Single, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Referrers) != 0 || !slices.Contains(codes(res.Findings), finding.CacheConfirmed) || res.Outcome != finding.OutcomeOK {
		t.Fatalf("confirmed cache: referrers %d outcome %s findings %v", len(res.Referrers), res.Outcome, codes(res.Findings))
	}
	for _, f := range res.Findings {
		// With --platforms, only some subjects may lack referrers: the
		// finding names the one it is about.
		if f.Code == finding.CacheConfirmed && !strings.Contains(f.Summary, discovery.ShortDigest(l.Seed.Single)) {
			t.Errorf("the confirmation does not name its subject: %s", f.Summary)
		}
	}
	// Resolving the digest, the tag list and the one referrers request;
	// no probe.
	if got := l.Requests("ghcr") - before; got != 3 {
		t.Errorf("discovery with a cached verdict cost %d requests, want 3 (manifest, tag list, referrers API)", got)
	}
	if _, ok := cache.Get(probe.CacheKey(cfg, probe.Target{Host: ghcr.Host, Repository: lab.SeedSingleRepository})); !ok {
		t.Error("a confirmed verdict was dropped")
	}
}

// TestMinReferrersFailsInTheResult: too few referrers is an outcome and a
// finding of the result, not only a message on stderr.
func TestMinReferrersFailsInTheResult(t *testing.T) {
	t.Parallel()
	l := labtest.StartT(t, lab.Spec{Name: "oci11", Profile: lab.ProfileOCI11})
	res := discover(t, l, "oci11", discovery.WithMinReferrers(50))
	if res.Outcome != finding.OutcomeFailed || !slices.Contains(codes(res.Findings), finding.TooFewReferrers) {
		t.Fatalf("outcome %s findings %v", res.Outcome, codes(res.Findings))
	}
	res = discover(t, l, "oci11", discovery.WithMinReferrers(3))
	if res.Outcome != finding.OutcomeOK {
		t.Fatalf("enough referrers: outcome %s findings %v", res.Outcome, codes(res.Findings))
	}
}

// pushSigstoreBundle pushes a referrer shaped as cosign v3 pushes one: a
// sigstore bundle artifact whose predicate type is an annotation.
func pushSigstoreBundle(t *testing.T, l *lab.Lab, host, repo, subject, predicate string) string {
	t.Helper()
	ctx := context.Background()
	c, err := registry.New(l.Config(), l.ClientOpts()...)
	if err != nil {
		t.Fatal(err)
	}
	r, _ := ref.New(host + "/" + repo)
	sm, err := c.ManifestHead(ctx, r.SetDigest(subject))
	if err != nil {
		t.Fatal(err)
	}
	sd := sm.GetDescriptor()
	sd = descriptor.Descriptor{MediaType: sd.MediaType, Digest: sd.Digest, Size: sd.Size}
	empty := descriptor.Descriptor{MediaType: mediatype.OCI1Empty, Digest: descriptor.EmptyDigest, Size: int64(len(descriptor.EmptyData))}
	if _, err := c.BlobPut(ctx, r, empty, bytes.NewReader(descriptor.EmptyData)); err != nil {
		t.Fatal(err)
	}
	const bundleType = "application/vnd.dev.sigstore.bundle.v0.3+json"
	body := []byte(`{"mediaType":"` + bundleType + `","predicate":"` + predicate + `"}`)
	layer, err := c.BlobPut(ctx, r, descriptor.Descriptor{MediaType: bundleType}, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	m, err := manifest.New(manifest.WithOrig(v1.Manifest{
		Versioned: v1.ManifestSchemaVersion, MediaType: mediatype.OCI1Manifest, ArtifactType: bundleType,
		Config: empty, Layers: []descriptor.Descriptor{{MediaType: bundleType, Digest: layer.Digest, Size: layer.Size}}, Subject: &sd,
		Annotations: map[string]string{finding.AnnotationSigstorePredicateType: predicate, "org.opencontainers.image.created": "2026-01-01T00:00:00Z"},
	}))
	if err != nil {
		t.Fatal(err)
	}
	d := m.GetDescriptor().Digest.String()
	if err := c.ManifestPut(ctx, r.SetDigest(d), m); err != nil {
		t.Fatal(err)
	}
	return d
}

// TestCosignV3BundlesAreToldApart: cosign v3 signs and attests with the
// same artifact type; the predicate annotation makes one a signature and
// the other an attestation, shown with its predicate.
func TestCosignV3BundlesAreToldApart(t *testing.T) {
	t.Parallel()
	l := labtest.StartT(t, lab.Spec{Name: "oci11", Profile: lab.ProfileOCI11}, lab.Spec{Name: "ghcr", Profile: lab.ProfileFallback404})
	for _, name := range []string{"oci11", "ghcr"} {
		reg, _ := l.Get(name)
		sig := pushSigstoreBundle(t, l, reg.Host, lab.SeedSingleRepository, l.Seed.Single, finding.PredicateCosignSign)
		att := pushSigstoreBundle(t, l, reg.Host, lab.SeedSingleRepository, l.Seed.Single, "https://cyclonedx.org/bom")
		res, err := discovery.Discover(context.Background(), reg.Host+"/"+lab.SeedSingleRepository+"@"+l.Seed.Single, labOpts(l)...)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]discovery.Referrer{}
		for _, r := range res.Referrers {
			got[r.Digest] = r
		}
		if r := got[sig]; r.Category != finding.CategorySignature || r.PredicateType != "" {
			t.Errorf("%s: cosign sign bundle is %s with predicate %q", name, r.Category, r.PredicateType)
		}
		if r := got[att]; r.Category != finding.CategoryAttestation || r.PredicateType != "https://cyclonedx.org/bom" {
			t.Errorf("%s: cosign attest bundle is %s with predicate %q", name, r.Category, r.PredicateType)
		}
	}
}
