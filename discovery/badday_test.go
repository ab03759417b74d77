package discovery_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/olareg/olareg"
	olaregconfig "github.com/olareg/olareg/config"
	"github.com/regclient/regclient/types/manifest"
	"github.com/regclient/regclient/types/mediatype"
	v1 "github.com/regclient/regclient/types/oci/v1"
	"github.com/regclient/regclient/types/ref"

	"github.com/refdoctor/refdoctor/config"
	"github.com/refdoctor/refdoctor/discovery"
	"github.com/refdoctor/refdoctor/finding"
	"github.com/refdoctor/refdoctor/lab"
	"github.com/refdoctor/refdoctor/lab/labtest"
	"github.com/refdoctor/refdoctor/probe"
	"github.com/refdoctor/refdoctor/registry"
)

// TestRedirectsAreFollowed: referrers served through a 307 on the same
// host, or through a CDN on another host, are listed like any others, the
// same as regctl and oras list them, and the CDN never sees the
// registry's Authorization. A 302 to a sign-in page is the HTML rule's
// "unsupported": discovery reads the tag schema.
func TestRedirectsAreFollowed(t *testing.T) {
	t.Parallel()
	l := labtest.StartT(t,
		lab.Spec{Name: "307", Profile: lab.ProfileRedirect307},
		lab.Spec{Name: "cdn", Profile: lab.ProfileRedirectCDN},
		lab.Spec{Name: "login", Profile: lab.ProfileLogin302},
	)
	want := seededOn(l, l.Seed.Index)
	for _, name := range []string{"307", "cdn"} {
		res := discover(t, l, name)
		got := digestsBySource(res.Referrers)[discovery.SourceAPI]
		if res.Method != discovery.MethodAPI || !slices.Equal(got, want) || res.Outcome != finding.OutcomeOK {
			t.Errorf("%s: method %s referrers %v outcome %s findings %v", name, res.Method, got, res.Outcome, codes(res.Findings))
		}
		if !slices.Contains(codes(res.Findings), finding.ReferrersRedirected) {
			t.Errorf("%s: the redirect is not shown: %v", name, codes(res.Findings))
		}
	}
	reg307, _ := l.Get("307")
	subject := reg307.Host + "/" + l.Seed.Repository + "@" + l.Seed.Index
	if r, o := regctlDigests(t, reg307.Host, subject), orasDigests(t, subject); !slices.Equal(r, want) || !slices.Equal(o, want) {
		t.Errorf("regctl %v, oras %v, refdoctor %v", r, o, want)
	}
	n, withAuth := l.OtherHostRequests("cdn")
	if n == 0 || withAuth != 0 {
		t.Errorf("the CDN got %d requests, %d with the registry's Authorization", n, withAuth)
	}
	res := discover(t, l, "login")
	if res.Method != discovery.MethodTags || !slices.Equal(digestsBySource(res.Referrers)[discovery.SourceTagIndex], want) || res.Partial {
		t.Errorf("login 302: method %s referrers %v findings %v", res.Method, digestsBySource(res.Referrers), codes(res.Findings))
	}
	res = discover(t, l, "login", discovery.WithMethod(discovery.MethodAPI))
	if res.Outcome != finding.OutcomeFailed || !slices.Contains(codes(res.Findings), finding.ReferrersHTMLReply) {
		t.Errorf("login 302 by the API: outcome %s findings %v", res.Outcome, codes(res.Findings))
	}
}

// TestHugeIndexIsReadWhole: a valid 5+ MiB referrers index (22,000
// descriptors) is read whole, never judged from a cut-off copy; past a
// smaller reply cap the answer is unknown, partial, and nothing is cached.
func TestHugeIndexIsReadWhole(t *testing.T) {
	t.Parallel()
	l := labtest.StartT(t, lab.Spec{Name: "huge", Profile: lab.ProfileHugeIndex})
	reg, _ := l.Get("huge")
	cfg := l.Config()
	cfg.Cache.Dir = t.TempDir()
	subject := reg.Host + "/" + lab.BadDayRepository + "@" + reg.Subject
	opts := []discovery.Opt{discovery.WithConfig(cfg), discovery.WithClientOpts(l.ClientOpts()...), discovery.WithTimeout(time.Minute)}
	res, err := discovery.Discover(context.Background(), subject, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if res.Method != discovery.MethodAPI || len(res.Referrers) != lab.HugeIndexReferrers || res.Partial || res.Outcome != finding.OutcomeOK {
		t.Fatalf("method %s, %d referrers, partial %v, outcome %s, findings %v", res.Method, len(res.Referrers), res.Partial, res.Outcome, codes(res.Findings))
	}

	small := cfg
	small.Cache.Dir = t.TempDir()
	small.Export.ReferrerDiscovery.MaxReplySize = 4 << 20
	res, err = discovery.Discover(context.Background(), subject, discovery.WithConfig(small), discovery.WithClientOpts(l.ClientOpts()...), discovery.WithTimeout(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if !res.Partial || res.Outcome != finding.OutcomeIncomplete || !slices.Contains(codes(res.Findings), finding.ReferrersReplyTooLarge) {
		t.Fatalf("4 MiB cap: partial %v outcome %s findings %v", res.Partial, res.Outcome, codes(res.Findings))
	}
	// The probe (of the placeholder digest) was conclusive; the cut
	// discovery leaves no other verdict behind.
	entries, _ := probe.OpenCache(small).Entries()
	for _, e := range entries {
		if e.ReferrersAPI != probe.Supported {
			t.Errorf("cached %+v", e)
		}
	}
}

// TestStalledBodiesAreUnknown: headers on time and a body that stalls or
// trickles past the timeout is unknown and partial, never "none", and no
// inconclusive verdict is cached.
func TestStalledBodiesAreUnknown(t *testing.T) {
	t.Parallel()
	l := labtest.StartT(t, lab.Spec{Name: "stalled", Profile: lab.ProfileStalledBody}, lab.Spec{Name: "trickle", Profile: lab.ProfileTrickleBody})
	cfg := l.Config()
	cfg.Cache.Dir = t.TempDir()
	for _, name := range []string{"stalled", "trickle"} {
		for _, m := range []discovery.Method{discovery.MethodAuto, discovery.MethodAPI} {
			reg, _ := l.Get(name)
			res, err := discovery.Discover(context.Background(), l.Seed.Ref(reg.Host), discovery.WithConfig(cfg),
				discovery.WithClientOpts(l.ClientOpts()...), discovery.WithTimeout(2*time.Second), discovery.WithMethod(m))
			if err != nil {
				t.Fatal(err)
			}
			if !res.Partial || res.Outcome != finding.OutcomeIncomplete || !slices.Contains(codes(res.Findings), finding.Timeout) {
				t.Errorf("%s %s: partial %v outcome %s findings %v", name, m, res.Partial, res.Outcome, codes(res.Findings))
			}
			if n := len(digestsBySource(res.Referrers)[discovery.SourceAPI]); n != 0 {
				t.Errorf("%s %s: %d referrers judged from part of a reply", name, m, n)
			}
		}
	}
	if entries, _ := probe.OpenCache(cfg).Entries(); len(entries) != 0 {
		t.Errorf("inconclusive verdicts cached: %+v", entries)
	}
}

// TestListedTypesAreCheckedAgainstManifests: registries that list
// referrers without artifactType (ACR) or with the config media type
// (go-containerregistry's registry, GHCR's cosign-written fallback
// indexes) are read through each manifest's own type, with one GET per
// such referrer, a finding that names the mislabelling, and filters that
// find the referrers whether one type or two is asked for.
func TestListedTypesAreCheckedAgainstManifests(t *testing.T) {
	t.Parallel()
	l := labtest.StartT(t,
		lab.Spec{Name: "acr", Profile: lab.ProfileNoArtifactType},
		lab.Spec{Name: "ggcr", Profile: lab.ProfileMislabelledTypes},
		lab.Spec{Name: "ghcr", Profile: lab.ProfileMislabelledFallback},
	)
	want := map[string]string{}
	for _, r := range l.Seed.Referrers {
		if r.Subject == l.Seed.Index {
			want[r.Digest] = r.ArtifactType
		}
	}
	for _, name := range []string{"acr", "ggcr", "ghcr"} {
		res := discover(t, l, name)
		src := discovery.SourceAPI
		if name == "ghcr" {
			src = discovery.SourceTagIndex
		}
		n := 0
		for _, r := range res.Referrers {
			if r.Source != src {
				continue
			}
			n++
			if want[r.Digest] != r.ArtifactType || r.Category == finding.CategoryOther {
				t.Errorf("%s: %s typed %q (%s), its manifest says %q", name, r.Digest, r.ArtifactType, r.Category, want[r.Digest])
			}
		}
		// A fallback index whose entries carry no type (or the empty
		// config type) is the index's own problem, with its own fix.
		code := finding.ArtifactTypeMislabelled
		if name == "ghcr" {
			code = finding.FallbackIndexNoArtifactType
		}
		if n != len(want) || !slices.Contains(codes(res.Findings), code) {
			t.Errorf("%s: %d referrers, findings %v", name, n, codes(res.Findings))
		}
		// One GET per mislabelled referrer, counted: 3 manifests.
		if res.Requests < 1+len(want) {
			t.Errorf("%s: %d requests, the manifest reads are not counted", name, res.Requests)
		}
		for _, filters := range [][]string{{lab.ArtifactTypeCycloneDX}, {lab.ArtifactTypeCycloneDX, lab.ArtifactTypeNotary}} {
			res := discover(t, l, name, discovery.WithArtifactTypes(filters...))
			var got []string
			for _, r := range res.Referrers {
				if r.Source == src {
					got = append(got, r.ArtifactType)
				}
			}
			slices.Sort(got)
			if !slices.Equal(got, slices.Sorted(slices.Values(filters))) {
				t.Errorf("%s filter %v: found %v", name, filters, got)
			}
			for _, f := range res.Findings {
				if f.Code == finding.NoReferrersOnIndex {
					t.Errorf("%s filter %v: %s", name, filters, f.Summary)
				}
			}
		}
	}
}

// TestCosignV3BundleListedWithoutAnnotations: a cosign v3 attestation
// whose listing carries its type but not its annotations (a fallback index
// written by an older tool) is read from its manifest and shown as an
// attestation with its predicate, not as a signature; one listed without
// its type either (ACR) likewise.
func TestCosignV3BundleListedWithoutAnnotations(t *testing.T) {
	t.Parallel()
	l := labtest.StartT(t, lab.Spec{Name: "acr", Profile: lab.ProfileNoArtifactType}, lab.Spec{Name: "ghcr", Profile: lab.ProfileFallback404})
	for _, name := range []string{"acr", "ghcr"} {
		reg, _ := l.Get(name)
		att := pushSigstoreBundle(t, l, reg.Host, lab.SeedSingleRepository, l.Seed.Single, "https://slsa.dev/provenance/v1")
		if name == "ghcr" {
			// Rewrite the fallback index without annotations.
			ctx := context.Background()
			c, err := registry.New(l.Config(), l.ClientOpts()...)
			if err != nil {
				t.Fatal(err)
			}
			tag, _ := ref.New(reg.Host + "/" + lab.SeedSingleRepository + ":sha256-" + strings.TrimPrefix(l.Seed.Single, "sha256:"))
			m, err := c.ManifestGet(ctx, tag)
			if err != nil {
				t.Fatal(err)
			}
			list, _ := m.(manifest.Indexer).GetManifestList()
			for i := range list {
				list[i].Annotations = nil
			}
			bare, err := manifest.New(manifest.WithOrig(v1.Index{Versioned: v1.IndexSchemaVersion, MediaType: mediatype.OCI1ManifestList, Manifests: list}))
			if err != nil {
				t.Fatal(err)
			}
			if err := c.ManifestPut(ctx, tag, bare); err != nil {
				t.Fatal(err)
			}
		}
		res, err := discovery.Discover(context.Background(), reg.Host+"/"+lab.SeedSingleRepository+"@"+l.Seed.Single, labOpts(l)...)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Referrers) != 1 || res.Referrers[0].Digest != att || res.Referrers[0].Category != finding.CategoryAttestation ||
			res.Referrers[0].PredicateType != "https://slsa.dev/provenance/v1" {
			t.Fatalf("%s: referrers %+v", name, res.Referrers)
		}
	}
}

// TestNotARegistry: a web server that answers 404 everywhere, or HTML 200
// to every path, is not a registry: discovery and tags say so and stop,
// never "unsupported, fall back to tags" or "image not found".
func TestNotARegistry(t *testing.T) {
	t.Parallel()
	l := labtest.StartT(t, lab.Spec{Name: "web404", Profile: lab.ProfileNotARegistry404}, lab.Spec{Name: "webhtml", Profile: lab.ProfileNotARegistryHTML})
	for _, name := range []string{"web404", "webhtml"} {
		reg, _ := l.Get(name)
		for _, m := range []discovery.Method{discovery.MethodAuto, discovery.MethodTags} {
			res, err := discovery.Discover(context.Background(), reg.Host+"/demo/app:v1", labOpts(l, discovery.WithMethod(m))...)
			if err != nil {
				t.Fatal(err)
			}
			if !res.Partial || res.Outcome != finding.OutcomeIncomplete || !slices.Contains(codes(res.Findings), finding.NotARegistry) ||
				slices.Contains(codes(res.Findings), finding.ImageNotFound) {
				t.Errorf("%s %s: partial %v outcome %s findings %v", name, m, res.Partial, res.Outcome, codes(res.Findings))
			}
		}
		tags, err := discovery.ListTags(context.Background(), reg.Host+"/demo/app", labOpts(l)...)
		if err != nil {
			t.Fatal(err)
		}
		if !tags.Partial || !slices.Contains(codes(tags.Findings), finding.NotARegistry) {
			t.Errorf("%s tags: partial %v findings %v", name, tags.Partial, codes(tags.Findings))
		}
	}
}

// TestThrottled6hStopsAtOnce: Docker Hub's six-hour 429 on every pull
// stops discovery on the first reply, with the time it answers again.
func TestThrottled6hStopsAtOnce(t *testing.T) {
	t.Parallel()
	l := labtest.StartT(t, lab.Spec{Name: "hub", Profile: lab.ProfileThrottled6h})
	res := discover(t, l, "hub", discovery.WithTimeout(10*time.Minute))
	var f *finding.Finding
	for i := range res.Findings {
		if c := res.Findings[i].Code; c == finding.RateLimited || c == finding.ReferrersRateLimited {
			f = &res.Findings[i]
		}
	}
	if !res.Partial || res.Outcome != finding.OutcomeIncomplete || f == nil {
		t.Fatalf("partial %v outcome %s findings %v", res.Partial, res.Outcome, codes(res.Findings))
	}
	at := time.Now().Add(6 * time.Hour).UTC().Format("2006-01-02T15")
	if !strings.Contains(f.Summary+f.Remedy, at) || !strings.Contains(f.Cause, "Budget left: 0 of 100") {
		t.Errorf("finding does not say when and what is left: %+v", *f)
	}
}

// TestUnjudgedAPIStillListsTags: GHCR answering /referrers with a 303 to
// an endpoint that answers 429 leaves the API unjudged; the referrers in
// the fallback tags are listed, as regctl lists them, and the result stays
// partial.
func TestUnjudgedAPIStillListsTags(t *testing.T) {
	t.Parallel()
	l := labtest.StartT(t, lab.Spec{Name: "ghcr303", Profile: lab.ProfileGHCR303})
	res := discover(t, l, "ghcr303")
	got := digestsBySource(res.Referrers)[discovery.SourceTagIndex]
	if !slices.Equal(got, seededOn(l, l.Seed.Index)) || !res.Partial || res.Outcome != finding.OutcomeIncomplete {
		t.Fatalf("tag-index referrers %v, partial %v, outcome %s, findings %v", got, res.Partial, res.Outcome, codes(res.Findings))
	}
	reg, _ := l.Get("ghcr303")
	if r := regctlDigests(t, reg.Host, reg.Host+"/"+l.Seed.Repository+"@"+l.Seed.Index); !slices.Equal(r, got) {
		t.Errorf("regctl %v, refdoctor %v", r, got)
	}
}

// TestEndlessRedirectsAreIncomplete: a referrers API that redirects to
// itself without end (olareg behind a layer that loops) ends after ten
// redirects as TooManyRedirects: partial, exit 3, never "none".
func TestEndlessRedirectsAreIncomplete(t *testing.T) {
	t.Parallel()
	on := true
	ola := olareg.New(olaregconfig.Config{Storage: olaregconfig.ConfigStorage{StoreType: olaregconfig.StoreMem},
		API: olaregconfig.ConfigAPI{Referrer: olaregconfig.ConfigAPIReferrer{Enabled: &on}}})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "/referrers/") {
			http.Redirect(w, r, r.URL.Path+"?again="+r.URL.Query().Get("again")+"x", http.StatusTemporaryRedirect)
			return
		}
		ola.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		srv.Close()
		_ = ola.Close()
	})
	host := strings.TrimPrefix(srv.URL, "http://")
	cfg := config.Defaults()
	cfg.Registries = []config.Registry{{Host: host, PlainHTTP: true}}
	c, err := registry.New(cfg, registry.WithoutDockerCreds())
	if err != nil {
		t.Fatal(err)
	}
	seed, err := lab.SeedInto(context.Background(), c, host)
	if err != nil {
		t.Fatal(err)
	}
	res, err := discovery.Discover(context.Background(), seed.Ref(host), discovery.WithConfig(cfg),
		discovery.WithClientOpts(registry.WithoutDockerCreds()), discovery.WithMethod(discovery.MethodAPI))
	if err != nil {
		t.Fatal(err)
	}
	if !res.Partial || res.Outcome != finding.OutcomeIncomplete || !slices.Contains(codes(res.Findings), finding.TooManyRedirects) {
		t.Fatalf("partial %v outcome %s findings %v", res.Partial, res.Outcome, codes(res.Findings))
	}
}
