package discovery_test

import (
	"context"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/refdoctor/refdoctor/discovery"
	"github.com/refdoctor/refdoctor/finding"
	"github.com/refdoctor/refdoctor/lab"
	"github.com/refdoctor/refdoctor/lab/labtest"
)

func labOpts(l *lab.Lab, extra ...discovery.Opt) []discovery.Opt {
	return append([]discovery.Opt{discovery.WithConfig(l.Config()), discovery.WithClientOpts(l.ClientOpts()...), discovery.WithTimeout(30 * time.Second)}, extra...)
}

func discover(t *testing.T, l *lab.Lab, name string, opts ...discovery.Opt) discovery.Result {
	t.Helper()
	reg, ok := l.Get(name)
	if !ok {
		t.Fatalf("lab has no %s", name)
	}
	res, err := discovery.Discover(context.Background(), l.Seed.Ref(reg.Host), labOpts(l, opts...)...)
	if err != nil {
		t.Fatalf("Discover: %v", err)
	}
	return res
}

// digestsBySource maps each source to the sorted digests found by it.
func digestsBySource(rs []discovery.Referrer) map[discovery.Source][]string {
	out := map[discovery.Source][]string{}
	for _, r := range rs {
		out[r.Source] = append(out[r.Source], r.Digest)
	}
	for _, v := range out {
		sort.Strings(v)
	}
	return out
}

func seededOn(l *lab.Lab, subject string) []string {
	var out []string
	for _, r := range l.Seed.Referrers {
		if r.Subject == subject {
			out = append(out, r.Digest)
		}
	}
	sort.Strings(out)
	return out
}

func codes(fs []finding.Finding) []finding.Code {
	var out []finding.Code
	for _, f := range fs {
		out = append(out, f.Code)
	}
	return out
}

// TestAutoMethodPerRegistry: auto picks the API where the probe found it
// and the tag schema elsewhere, and finds the same referrers either way.
func TestAutoMethodPerRegistry(t *testing.T) {
	t.Parallel()
	l := labtest.StartT(t,
		lab.Spec{Name: "oci11", Profile: lab.ProfileOCI11},
		lab.Spec{Name: "ghcr", Profile: lab.ProfileFallback404},
		lab.Spec{Name: "ola405", Profile: lab.ProfileNoAPI405},
		lab.Spec{Name: "arti", Profile: lab.ProfileArtifactory406},
		lab.Spec{Name: "gar", Profile: lab.ProfileHTML200},
		lab.Spec{Name: "harbor", Profile: lab.ProfileJSON200},
		lab.Spec{Name: "n501", Profile: lab.ProfileNotImpl501},
		lab.Spec{Name: "basic", Profile: lab.ProfileBasicAuth},
		lab.Spec{Name: "tls", Profile: lab.ProfileTLS},
		lab.Spec{Name: "slow", Profile: lab.ProfileSlow, Delay: 50 * time.Millisecond},
	)
	want := seededOn(l, l.Seed.Index)
	if len(want) != 3 || len(l.Seed.CosignTags) != 3 {
		t.Fatalf("seed has %d referrers on the index and %d cosign tags", len(want), len(l.Seed.CosignTags))
	}
	tests := []struct {
		reg    string
		method discovery.Method
		source discovery.Source
	}{
		{"oci11", discovery.MethodAPI, discovery.SourceAPI},
		{"ghcr", discovery.MethodTags, discovery.SourceTagIndex},
		{"ola405", discovery.MethodTags, discovery.SourceTagIndex},
		{"arti", discovery.MethodTags, discovery.SourceTagIndex},
		{"gar", discovery.MethodTags, discovery.SourceTagIndex},
		{"harbor", discovery.MethodAPI, discovery.SourceAPI},
		{"n501", discovery.MethodTags, discovery.SourceTagIndex},
		{"basic", discovery.MethodAPI, discovery.SourceAPI},
		{"tls", discovery.MethodAPI, discovery.SourceAPI},
		{"slow", discovery.MethodAPI, discovery.SourceAPI},
	}
	for _, tc := range tests {
		t.Run(tc.reg, func(t *testing.T) {
			t.Parallel()
			res := discover(t, l, tc.reg)
			if res.Method != tc.method {
				t.Fatalf("method %s, want %s (findings %v)", res.Method, tc.method, codes(res.Findings))
			}
			if res.Subject.Digest != l.Seed.Index || res.Subject.Tag != l.Seed.Tag {
				t.Errorf("subject %+v, want %s resolved from tag %s", res.Subject, l.Seed.Index, l.Seed.Tag)
			}
			got := digestsBySource(res.Referrers)
			if !slices.Equal(got[tc.source], want) {
				t.Errorf("%s referrers %v, want %v", tc.source, got[tc.source], want)
			}
			if len(got[discovery.SourceCosignTag]) != 3 {
				t.Errorf("cosign-tag referrers %v, want 3", got[discovery.SourceCosignTag])
			}
			for _, r := range res.Referrers {
				if r.ArtifactType == "" || r.Category == "" || r.Subject != l.Seed.Index {
					t.Errorf("referrer %s lacks artifact type, category or subject: %+v", r.Digest, r)
				}
				if r.Source == discovery.SourceTagIndex && r.Tag == "" {
					t.Errorf("tag-index referrer %s does not name its tag", r.Digest)
				}
			}
			if tc.reg == "harbor" && !slices.Contains(codes(res.Findings), "ReferrersWrongContentType") {
				t.Errorf("mislabelled API reply read without saying so: %v", codes(res.Findings))
			}
			if res.Outcome == finding.OutcomeIncomplete || res.Outcome == finding.OutcomeFailed || res.Partial {
				t.Errorf("outcome %s, findings %v", res.Outcome, codes(res.Findings))
			}
		})
	}
}

// TestRequestCountsAreMinimal: API discovery costs one request per page,
// a HEAD of each tag that can name referrers (sha256-<hex> and its .sig,
// .att and .sbom) and a GET of each cosign tag present; tag discovery one
// GET per matching tag, plus the cosign tags present.
func TestRequestCountsAreMinimal(t *testing.T) {
	t.Parallel()
	l := labtest.StartT(t, lab.Spec{Name: "oci11", Profile: lab.ProfileOCI11}, lab.Spec{Name: "ghcr", Profile: lab.ProfileFallback404})
	api := discover(t, l, "oci11")
	if want := 1 + 4 + len(l.Seed.CosignTags); api.Requests != want {
		t.Errorf("API discovery sent %d requests, want %d (1 page, 4 tag HEADs, %d cosign tags)", api.Requests, want, len(l.Seed.CosignTags))
	}
	tags := discover(t, l, "ghcr")
	if want := 1 + len(l.Seed.CosignTags); tags.Requests != want {
		t.Errorf("tag discovery sent %d requests, want %d (1 index tag + %d cosign tags)", tags.Requests, want, len(l.Seed.CosignTags))
	}
	forced := discover(t, l, "oci11", discovery.WithMethod(discovery.MethodTags))
	if forced.Method != discovery.MethodTags || len(digestsBySource(forced.Referrers)[discovery.SourceTagIndex]) != 0 {
		t.Errorf("forced tags on an API registry: method %s referrers %v", forced.Method, digestsBySource(forced.Referrers))
	}
}

// TestPlatforms: the referrer attached to linux/amd64 is found with
// --platforms, and without it a finding says where to look.
func TestPlatforms(t *testing.T) {
	t.Parallel()
	l := labtest.StartT(t, lab.Spec{Name: "oci11", Profile: lab.ProfileOCI11})
	amd := l.Seed.Platforms["linux/amd64"]
	res := discover(t, l, "oci11", discovery.WithPlatforms(true))
	var found []string
	for _, p := range res.Platforms {
		if p.Digest == amd {
			for _, r := range p.Referrers {
				found = append(found, r.Digest)
			}
		}
	}
	sort.Strings(found)
	if want := seededOn(l, amd); len(want) == 0 || !slices.Equal(found, want) {
		t.Fatalf("linux/amd64 referrers %v, want %v", found, want)
	}
	if !slices.Contains(codes(res.Findings), "ReferrersOnPlatforms") {
		t.Errorf("no finding about platform referrers: %v", codes(res.Findings))
	}
	if len(res.Platforms) != len(l.Seed.Platforms) {
		t.Errorf("%d platforms looked at, want %d", len(res.Platforms), len(l.Seed.Platforms))
	}
}

func TestArtifactTypeFilter(t *testing.T) {
	t.Parallel()
	l := labtest.StartT(t, lab.Spec{Name: "oci11", Profile: lab.ProfileOCI11}, lab.Spec{Name: "ghcr", Profile: lab.ProfileFallback404})
	for _, reg := range []string{"oci11", "ghcr"} {
		res := discover(t, l, reg, discovery.WithArtifactTypes("application/vnd.cyclonedx+json"))
		if len(res.Referrers) != 1 || res.Referrers[0].ArtifactType != "application/vnd.cyclonedx+json" || res.Referrers[0].Category != finding.CategorySBOM {
			t.Errorf("%s: filtered referrers %+v", reg, res.Referrers)
		}
	}
}

// TestFailuresAreNeverNone: throttling, refused auth and a forced API that
// is absent never come back as an empty, successful list.
func TestFailuresAreNeverNone(t *testing.T) {
	t.Parallel()
	l := labtest.StartT(t,
		lab.Spec{Name: "hub", Profile: lab.ProfileRateLimit, RateBudget: 1},
		lab.Spec{Name: "refuse", Profile: lab.ProfileAuthRefuse},
		lab.Spec{Name: "ghcr", Profile: lab.ProfileFallback404},
	)
	tests := []struct {
		name    string
		reg     string
		opts    []discovery.Opt
		outcome finding.Outcome
		code    finding.Code
	}{
		{"rate limited", "hub", []discovery.Opt{discovery.WithMethod(discovery.MethodAPI), discovery.WithTimeout(3 * time.Second)}, finding.OutcomeIncomplete, finding.RateLimited},
		{"auth refused", "refuse", nil, finding.OutcomeIncomplete, finding.AuthRefused},
		{"forced API absent", "ghcr", []discovery.Opt{discovery.WithMethod(discovery.MethodAPI)}, finding.OutcomeFailed, finding.ReferrersNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			res := discover(t, l, tc.reg, tc.opts...)
			if res.Outcome != tc.outcome || !slices.Contains(codes(res.Findings), tc.code) {
				t.Fatalf("outcome %s findings %v, want %s with %s", res.Outcome, codes(res.Findings), tc.outcome, tc.code)
			}
			if res.Error == "" {
				t.Error("a failed discovery must carry an error")
			}
		})
	}
}

func TestDepthFollowsReferrersOfReferrers(t *testing.T) {
	t.Parallel()
	l := labtest.StartT(t, lab.Spec{Name: "oci11", Profile: lab.ProfileOCI11})
	reg, _ := l.Get("oci11")
	var sbom string
	for _, r := range l.Seed.Referrers {
		if r.Subject == l.Seed.Index && r.Category == string(finding.CategorySBOM) {
			sbom = r.Digest
		}
	}
	sig, err := lab.Attach(context.Background(), l, reg.Host, l.Seed.Repository, sbom, "application/vnd.cncf.notary.signature", []byte("signature of the SBOM"))
	if err != nil {
		t.Fatal(err)
	}
	flat := discover(t, l, "oci11")
	deep := discover(t, l, "oci11", discovery.WithDepth(2))
	if flat.Count() != 6 {
		t.Fatalf("depth 0 found %d, want 6", flat.Count())
	}
	var nested []string
	for _, r := range deep.Referrers {
		if r.Digest == sbom {
			for _, rr := range r.Referrers {
				nested = append(nested, rr.Digest)
			}
		}
	}
	if !slices.Equal(nested, []string{sig}) {
		t.Fatalf("referrers of the SBOM %v, want [%s]", nested, sig)
	}
}

func TestBadReference(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"alpine", "UPPER/case:1", "localhost:5000/app@sha256:nothex"} {
		if _, err := discovery.Discover(context.Background(), s); err == nil {
			t.Errorf("%q: no error", s)
		}
	}
}
