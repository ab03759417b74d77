package probe_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/olareg/olareg"
	olaregconfig "github.com/olareg/olareg/config"

	"github.com/refdoctor/refdoctor/config"
	"github.com/refdoctor/refdoctor/finding"
	"github.com/refdoctor/refdoctor/internal/syncbuf"
	"github.com/refdoctor/refdoctor/lab"
	"github.com/refdoctor/refdoctor/lab/labtest"
	"github.com/refdoctor/refdoctor/probe"
	"github.com/refdoctor/refdoctor/registry"
)

// labOpts are the probe options for a lab: its config, its logins and no
// docker credentials from the machine running the test.
func labOpts(l *lab.Lab) []probe.Opt {
	return []probe.Opt{probe.WithConfig(l.Config()), probe.WithClientOpts(l.ClientOpts()...), probe.WithTimeout(20 * time.Second)}
}

func mustTarget(t *testing.T, s string) probe.Target {
	t.Helper()
	tg, err := probe.ParseTarget(s)
	if err != nil {
		t.Fatalf("ParseTarget(%q): %v", s, err)
	}
	return tg
}

func probeOne(t *testing.T, l *lab.Lab, target string, opts ...probe.Opt) probe.Result {
	t.Helper()
	rep, err := probe.Run(context.Background(), []probe.Target{mustTarget(t, target)}, append(labOpts(l), opts...)...)
	if err != nil {
		t.Fatalf("probe.Run: %v", err)
	}
	if len(rep.Registries) != 1 {
		t.Fatalf("got %d results, want 1", len(rep.Registries))
	}
	return rep.Registries[0]
}

func codes(fs []finding.Finding) []finding.Code {
	var out []finding.Code
	for _, f := range fs {
		out = append(out, f.Code)
	}
	return out
}

// TestVerdictsAgainstTheLab checks every verdict row of the OCI 1.1 rules
// against a real registry that answers the way a real vendor does.
func TestVerdictsAgainstTheLab(t *testing.T) {
	t.Parallel()
	l := labtest.StartT(t,
		lab.Spec{Name: "oci11", Profile: lab.ProfileOCI11},
		lab.Spec{Name: "ghcr", Profile: lab.ProfileFallback404},
		lab.Spec{Name: "ola405", Profile: lab.ProfileNoAPI405},
		lab.Spec{Name: "arti", Profile: lab.ProfileArtifactory406},
		lab.Spec{Name: "gar", Profile: lab.ProfileHTML200},
		lab.Spec{Name: "harbor", Profile: lab.ProfileJSON200},
		lab.Spec{Name: "n501", Profile: lab.ProfileNotImpl501},
		lab.Spec{Name: "hub", Profile: lab.ProfileRateLimit, RateBudget: 0},
		lab.Spec{Name: "hubok", Profile: lab.ProfileRateLimit, RateBudget: 50},
		lab.Spec{Name: "refuse", Profile: lab.ProfileAuthRefuse},
		lab.Spec{Name: "basic", Profile: lab.ProfileBasicAuth},
		lab.Spec{Name: "tls", Profile: lab.ProfileTLS},
		lab.Spec{Name: "expired", Profile: lab.ProfileTLSExpired},
		lab.Spec{Name: "wronghost", Profile: lab.ProfileTLSWrongHost},
	)
	repo := "/" + l.Seed.Repository
	tests := []struct {
		name, reg   string
		verdict     probe.Verdict
		reason      finding.Code
		status      int
		tags        string
		outcome     finding.Outcome
		wantCodes   []finding.Code
		auth        string
		indexParsed bool
		mismatch    *bool
	}{
		{name: "200 with an OCI index is supported", reg: "oci11", verdict: probe.Supported, reason: finding.ReferrersAPISupported, status: 200, tags: "ok", outcome: finding.OutcomeOK, auth: "anonymous", indexParsed: true, mismatch: ptr(false)},
		{name: "404 means fall back, not none attached", reg: "ghcr", verdict: probe.Unsupported, reason: finding.ReferrersNotFound, status: 404, tags: "ok", outcome: finding.OutcomeWarn, mismatch: ptr(false)},
		{name: "405 from olareg with the API off", reg: "ola405", verdict: probe.Unsupported, reason: finding.ReferrersMethodNotAllowed, status: 405, tags: "ok", outcome: finding.OutcomeWarn, wantCodes: []finding.Code{finding.ExpectationMismatch}, mismatch: ptr(true)},
		{name: "406 from old Artifactory", reg: "arti", verdict: probe.Unsupported, reason: finding.ReferrersNotAcceptable, status: 406, tags: "ok", outcome: finding.OutcomeWarn, wantCodes: []finding.Code{finding.KnownBehaviour}},
		{name: "HTML 200 is not the API", reg: "gar", verdict: probe.Unsupported, reason: finding.ReferrersHTMLReply, status: 200, tags: "ok", outcome: finding.OutcomeWarn, wantCodes: []finding.Code{finding.KnownBehaviour}, mismatch: ptr(false)},
		{name: "index as application/json is unsupported", reg: "harbor", verdict: probe.Unsupported, reason: finding.ReferrersWrongContentType, status: 200, tags: "ok", outcome: finding.OutcomeWarn, indexParsed: true, wantCodes: []finding.Code{finding.KnownBehaviour}},
		{name: "501 is unsupported", reg: "n501", verdict: probe.Unsupported, reason: finding.ReferrersNotImplemented, status: 501, tags: "ok", outcome: finding.OutcomeWarn},
		{name: "429 is unknown, never unsupported", reg: "hub", verdict: probe.Unknown, reason: finding.ReferrersRateLimited, status: 429, outcome: finding.OutcomeIncomplete, wantCodes: []finding.Code{finding.KnownBehaviour}},
		{name: "rate-limit headers within budget", reg: "hubok", verdict: probe.Supported, reason: finding.ReferrersAPISupported, status: 200, tags: "ok", outcome: finding.OutcomeOK, indexParsed: true},
		{name: "refused bearer auth is unknown, for the missing login", reg: "refuse", verdict: probe.Unknown, reason: finding.AuthFailed, status: 401, tags: "denied", outcome: finding.OutcomeIncomplete, wantCodes: []finding.Code{finding.ReferrersAuthRefused}, auth: "bearer"},
		{name: "basic auth with a login", reg: "basic", verdict: probe.Supported, reason: finding.ReferrersAPISupported, status: 200, tags: "ok", outcome: finding.OutcomeOK, auth: "basic", indexParsed: true},
		{name: "TLS with the lab CA configured", reg: "tls", verdict: probe.Supported, reason: finding.ReferrersAPISupported, status: 200, tags: "ok", outcome: finding.OutcomeOK, indexParsed: true},
		{name: "expired certificate", reg: "expired", verdict: probe.Unknown, reason: finding.TLSCertificateExpired, tags: "not-checked", outcome: finding.OutcomeIncomplete, wantCodes: []finding.Code{finding.TLSCertificateExpired}},
		{name: "certificate for another host", reg: "wronghost", verdict: probe.Unknown, reason: finding.TLSWrongHost, tags: "not-checked", outcome: finding.OutcomeIncomplete, wantCodes: []finding.Code{finding.TLSWrongHost}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			reg, ok := l.Get(tc.reg)
			if !ok {
				t.Fatalf("lab has no %s", tc.reg)
			}
			r := probeOne(t, l, reg.Host+repo)
			if r.ReferrersAPI != tc.verdict || r.ReferrersReason != tc.reason {
				t.Fatalf("verdict %s/%s, want %s/%s; findings %v", r.ReferrersAPI, r.ReferrersReason, tc.verdict, tc.reason, r.Findings)
			}
			if tc.status != 0 && r.ReferrersStatus != tc.status {
				t.Errorf("referrers status %d, want %d", r.ReferrersStatus, tc.status)
			}
			if tc.tags != "" && r.FallbackTags != tc.tags {
				t.Errorf("fallback_tags %q, want %q", r.FallbackTags, tc.tags)
			}
			if got := r.Outcome(); got != tc.outcome {
				t.Errorf("outcome %s, want %s", got, tc.outcome)
			}
			if r.ReferrersIndexParsed != tc.indexParsed {
				t.Errorf("index parsed %v, want %v", r.ReferrersIndexParsed, tc.indexParsed)
			}
			if tc.auth != "" && r.Auth != tc.auth {
				t.Errorf("auth %q, want %q", r.Auth, tc.auth)
			}
			for _, c := range append([]finding.Code{tc.reason}, tc.wantCodes...) {
				if !slices.Contains(codes(r.Findings), c) {
					t.Errorf("finding %s missing from %v", c, codes(r.Findings))
				}
			}
			if tc.mismatch != nil {
				if r.Expected == nil || r.Expected.Matches == nil {
					t.Fatalf("no expectation compared: %+v", r.Expected)
				}
				if got := !*r.Expected.Matches; got != *tc.mismatch {
					t.Errorf("mismatch with matrix = %v, want %v", got, *tc.mismatch)
				}
			}
			if r.ProbeMS < 0 || r.ProbedAt.IsZero() {
				t.Errorf("probe_ms %d probed_at %v", r.ProbeMS, r.ProbedAt)
			}
			if tc.verdict != probe.Unknown && r.DistributionAPIVersion != "registry/2.0" {
				t.Errorf("Docker-Distribution-API-Version %q not recorded", r.DistributionAPIVersion)
			}
		})
	}

	t.Run("rate limit headers are reported", func(t *testing.T) {
		t.Parallel()
		reg, _ := l.Get("hub")
		r := probeOne(t, l, reg.Host+repo)
		if r.RateLimit == nil || !r.RateLimit.Throttled || r.RateLimit.Limit != "100;w=21600" || r.RateLimit.RetryAfter == "" {
			t.Fatalf("rate limit %+v", r.RateLimit)
		}
	})
	t.Run("TLS without the CA is an unknown authority", func(t *testing.T) {
		t.Parallel()
		reg, _ := l.Get("tls")
		cfg := l.Config()
		for i := range cfg.Registries {
			cfg.Registries[i].CAFile = ""
		}
		r := probeOne(t, l, reg.Host+repo, probe.WithConfig(cfg))
		if r.ReferrersAPI != probe.Unknown || r.ReferrersReason != finding.TLSUnknownAuthority || r.Reachable {
			t.Fatalf("got %s/%s reachable=%v", r.ReferrersAPI, r.ReferrersReason, r.Reachable)
		}
	})
	t.Run("basic auth without a login is unknown", func(t *testing.T) {
		t.Parallel()
		reg, _ := l.Get("basic")
		rep, err := probe.Run(context.Background(), []probe.Target{mustTarget(t, reg.Host+repo)},
			probe.WithConfig(l.Config()), probe.WithClientOpts(registry.WithoutDockerCreds()))
		if err != nil {
			t.Fatal(err)
		}
		r := rep.Registries[0]
		if r.ReferrersAPI != probe.Unknown || r.Auth != "basic" || !slices.Contains(codes(r.Findings), "AuthFailed") {
			t.Fatalf("got %s/%s auth=%s findings=%v", r.ReferrersAPI, r.ReferrersReason, r.Auth, codes(r.Findings))
		}
	})
	t.Run("host only picks a repository from the catalog", func(t *testing.T) {
		t.Parallel()
		reg, _ := l.Get("oci11")
		r := probeOne(t, l, reg.Host)
		if r.ReferrersAPI != probe.Supported || r.Repository == "" {
			t.Fatalf("got %s repo=%q findings=%v", r.ReferrersAPI, r.Repository, codes(r.Findings))
		}
	})
	t.Run("an empty repository is named", func(t *testing.T) {
		t.Parallel()
		reg, _ := l.Get("ghcr")
		r := probeOne(t, l, reg.Host+"/no/such-repo")
		if !slices.Contains(codes(r.Findings), "RepositoryEmpty") || r.Outcome() != finding.OutcomeWarn {
			t.Fatalf("findings %v outcome %s", codes(r.Findings), r.Outcome())
		}
	})
	t.Run("a real subject digest is probed as given", func(t *testing.T) {
		t.Parallel()
		reg, _ := l.Get("oci11")
		r := probeOne(t, l, reg.Host+repo+"@"+l.Seed.Index)
		if r.ReferrersAPI != probe.Supported || r.ReferrersDigest != l.Seed.Index {
			t.Fatalf("got %s digest %s", r.ReferrersAPI, r.ReferrersDigest)
		}
	})
}

func ptr[T any](v T) *T { return &v }

// TestTimeoutIsUnknown: a registry slower than the timeout gets "unknown:
// timeout", never "unsupported".
func TestTimeoutIsUnknown(t *testing.T) {
	t.Parallel()
	l := labtest.StartT(t, lab.Spec{Name: "slow", Profile: lab.ProfileSlow, Delay: 3 * time.Second})
	reg, _ := l.Get("slow")
	r := probeOne(t, l, reg.Host+"/"+l.Seed.Repository, probe.WithTimeout(700*time.Millisecond))
	if r.ReferrersAPI != probe.Unknown || r.ReferrersReason != finding.Timeout || r.Outcome() != finding.OutcomeIncomplete {
		t.Fatalf("got %s/%s outcome %s findings %v", r.ReferrersAPI, r.ReferrersReason, r.Outcome(), codes(r.Findings))
	}
}

// inFlight is a real registry (olareg, in memory) behind a layer that
// counts the requests it is serving at once. Every request waits there
// until the count first reaches gate, so a client that sends requests
// concurrently is seen to, without any clock; the layer then holds them a
// moment longer, so that a client sending more than it should shows a
// count above gate (the pause can only catch a fault, never cause one),
// and afterwards requests pass straight through.
type inFlight struct {
	next     http.Handler
	gate     int64
	now, max atomic.Int64
	total    atomic.Int64
	open     chan struct{}
	once     sync.Once
}

func (f *inFlight) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.total.Add(1)
	n := f.now.Add(1)
	defer f.now.Add(-1)
	for {
		m := f.max.Load()
		if n <= m || f.max.CompareAndSwap(m, n) {
			break
		}
	}
	if n >= f.gate {
		f.once.Do(func() { time.AfterFunc(100*time.Millisecond, func() { close(f.open) }) })
	}
	select {
	case <-f.open:
	case <-r.Context().Done():
		return
	}
	f.next.ServeHTTP(w, r)
}

// startInFlight serves an empty olareg behind an inFlight layer.
func startInFlight(t testing.TB, gate int64) (*inFlight, string) {
	t.Helper()
	on := true
	ola := olareg.New(olaregconfig.Config{Storage: olaregconfig.ConfigStorage{StoreType: olaregconfig.StoreMem},
		API: olaregconfig.ConfigAPI{Referrer: olaregconfig.ConfigAPIReferrer{Enabled: &on}}})
	f := &inFlight{next: ola, gate: gate, open: make(chan struct{})}
	srv := httptest.NewServer(f)
	t.Cleanup(func() {
		srv.Close()
		_ = ola.Close()
	})
	return f, strings.TrimPrefix(srv.URL, "http://")
}

// TestProbesRunConcurrently: probes of many targets keep exactly the
// configured number of requests in flight at the registry: they reach the
// limit (the registry holds the first requests until they do) and never
// pass it.
func TestProbesRunConcurrently(t *testing.T) {
	t.Parallel()
	for _, limit := range []int{1, 3} {
		f, host := startInFlight(t, int64(limit))
		cfg := config.Defaults()
		cfg.Registries = []config.Registry{{Host: host, PlainHTTP: true}}
		var targets []probe.Target
		for i := range 6 {
			targets = append(targets, mustTarget(t, fmt.Sprintf("%s/app%d", host, i)))
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		rep, err := probe.Run(ctx, targets, probe.WithConfig(cfg), probe.WithConcurrency(limit),
			probe.WithClientOpts(registry.WithoutDockerCreds()))
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rep.Registries {
			if !r.Reachable {
				t.Fatalf("limit %d: %s unreachable: %v", limit, r.Target, r.Findings)
			}
		}
		if got := f.max.Load(); got != int64(limit) {
			t.Errorf("concurrency %d: %d requests were in flight at most", limit, got)
		}
		t.Logf("concurrency %d: %d requests, at most %d in flight", limit, f.total.Load(), f.max.Load())
	}
}

// TestCacheAvoidsRequests: inside the TTL a second probe sends nothing;
// --refresh probes again; unknown verdicts are not cached.
func TestCacheAvoidsRequests(t *testing.T) {
	t.Parallel()
	l := labtest.StartT(t, lab.Spec{Name: "oci11", Profile: lab.ProfileOCI11}, lab.Spec{Name: "hub", Profile: lab.ProfileRateLimit})
	cache := probe.NewCache(t.TempDir(), time.Hour)
	oci, _ := l.Get("oci11")
	target := oci.Host + "/" + l.Seed.Repository

	first := probeOne(t, l, target, probe.WithCache(cache))
	if first.Cached || first.ReferrersAPI != probe.Supported {
		t.Fatalf("first probe: cached=%v verdict=%s", first.Cached, first.ReferrersAPI)
	}
	before := l.Requests("oci11")
	second := probeOne(t, l, target, probe.WithCache(cache))
	if got := l.Requests("oci11") - before; got != 0 {
		t.Fatalf("second probe inside the TTL sent %d requests, want 0", got)
	}
	if !second.Cached || second.ReferrersAPI != probe.Supported || second.ReferrersStatus != 200 {
		t.Fatalf("second probe: cached=%v verdict=%s status=%d", second.Cached, second.ReferrersAPI, second.ReferrersStatus)
	}
	before = l.Requests("oci11")
	third := probeOne(t, l, target, probe.WithCache(cache), probe.WithRefresh(true))
	if l.Requests("oci11") == before || third.Cached {
		t.Fatal("--refresh did not probe again")
	}

	hub, _ := l.Get("hub")
	throttled := probeOne(t, l, hub.Host+"/"+l.Seed.Repository, probe.WithCache(cache))
	if throttled.ReferrersAPI != probe.Unknown {
		t.Fatalf("hub verdict %s, want unknown", throttled.ReferrersAPI)
	}
	if _, ok := cache.Get(hub.Host + "/" + l.Seed.Repository); ok {
		t.Fatal("an unknown (rate limited) verdict was cached")
	}
	expired := probe.NewCache(t.TempDir(), time.Nanosecond)
	_ = expired.Put("x", first, "test")
	time.Sleep(time.Millisecond)
	if _, ok := expired.Get("x"); ok {
		t.Fatal("an entry older than the TTL was served")
	}
}

func TestEventsReportExchanges(t *testing.T) {
	t.Parallel()
	l := labtest.StartT(t, lab.Spec{Name: "oci11", Profile: lab.ProfileOCI11})
	oci, _ := l.Get("oci11")
	var kinds []probe.EventKind
	var paths []string
	rep, err := probe.Run(context.Background(), []probe.Target{mustTarget(t, oci.Host+"/"+l.Seed.Repository)},
		append(labOpts(l), probe.WithEvents(func(e probe.Event) {
			kinds = append(kinds, e.Kind)
			if e.Exchange != nil {
				paths = append(paths, e.Exchange.Path)
			}
		}))...)
	if err != nil {
		t.Fatal(err)
	}
	if kinds[0] != probe.EventStarted || kinds[len(kinds)-1] != probe.EventFinished {
		t.Fatalf("events %v", kinds)
	}
	if !slices.Contains(paths, "/v2/") || !slices.Contains(paths, "/v2/"+l.Seed.Repository+"/referrers/"+probe.ZeroDigest) {
		t.Fatalf("exchanges %v", paths)
	}
	if len(rep.Registries[0].Exchanges) != len(paths) {
		t.Fatalf("result has %d exchanges, events %d", len(rep.Registries[0].Exchanges), len(paths))
	}
}

// TestRealDigestReprobe: Quay answers 400 and Harbor 2.10 answers {} for
// the all-zeros placeholder; the probe asks again with a real digest from
// the repository before concluding.
func TestRealDigestReprobe(t *testing.T) {
	t.Parallel()
	l := labtest.StartT(t, lab.Spec{Name: "quay", Profile: lab.ProfileQuay400}, lab.Spec{Name: "harbor210", Profile: lab.ProfileHarbor210})
	for _, name := range []string{"quay", "harbor210"} {
		reg, _ := l.Get(name)
		r := probeOne(t, l, reg.Host+"/"+l.Seed.Repository)
		if r.ReferrersAPI != probe.Supported || r.ReferrersDigest == probe.ZeroDigest || !slices.Contains(codes(r.Findings), "ReprobedWithRealDigest") {
			t.Errorf("%s: verdict %s digest %s findings %v", name, r.ReferrersAPI, r.ReferrersDigest, codes(r.Findings))
		}
	}
	// Without a tag to take a digest from, the 400 stays unknown.
	quay, _ := l.Get("quay")
	r := probeOne(t, l, quay.Host+"/no/such-repo")
	if r.ReferrersAPI != probe.Unknown || r.ReferrersReason != finding.ReferrersBadRequest {
		t.Errorf("empty repository: %s/%s", r.ReferrersAPI, r.ReferrersReason)
	}
}

// TestDistributionProcess probes Debian's docker-registry (distribution
// v2.8) running as its own process: no referrers API, a plain-text 404.
func TestDistributionProcess(t *testing.T) {
	t.Parallel()
	d := labtest.StartDistributionT(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg := config.Defaults()
	cfg.Registries = []config.Registry{{Host: d.Host, PlainHTTP: true, Expected: "distribution"}}
	c, err := registry.New(cfg, registry.WithoutDockerCreds())
	if err != nil {
		t.Fatal(err)
	}
	seed, err := lab.SeedInto(ctx, c, d.Host)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := probe.Run(ctx, []probe.Target{mustTarget(t, d.Host+"/"+seed.Repository), mustTarget(t, d.Host+"/no/such-repo")},
		probe.WithConfig(cfg), probe.WithClientOpts(registry.WithoutDockerCreds()))
	if err != nil {
		t.Fatal(err)
	}
	r := rep.Registries[0]
	if r.ReferrersAPI != probe.Unsupported || r.ReferrersReason != finding.ReferrersNotFound || r.FallbackTags != "ok" ||
		r.DistributionAPIVersion != "registry/2.0" || r.Expected == nil || !*r.Expected.Matches {
		t.Fatalf("distribution: %s/%s tags=%s version=%q expected=%+v", r.ReferrersAPI, r.ReferrersReason, r.FallbackTags, r.DistributionAPIVersion, r.Expected)
	}
	missing := rep.Registries[1]
	if !slices.Contains(codes(missing.Findings), "RepositoryNotFound") || missing.Outcome() != finding.OutcomeFailed {
		t.Fatalf("missing repository: findings %v outcome %s", codes(missing.Findings), missing.Outcome())
	}
}

// TestSessionProbesOnce: within one session a target is probed, announced
// and logged once however many Runs ask for it, concurrently or later;
// WithRefresh probes again.
func TestSessionProbesOnce(t *testing.T) {
	t.Parallel()
	l := labtest.StartT(t, lab.Spec{Name: "oci11", Profile: lab.ProfileOCI11})
	oci, _ := l.Get("oci11")
	var logBuf syncbuf.Buffer
	log := slog.New(slog.NewTextHandler(&logBuf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	s := probe.NewSession()
	opts := append(labOpts(l), probe.WithSession(s), probe.WithLogger(log), probe.WithCache(nil), probe.WithPurpose("before export"))
	target := mustTarget(t, oci.Host+"/demo/app")
	before := l.Requests("oci11")
	var wg sync.WaitGroup
	results := make([]probe.Result, 4)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rep, err := probe.Run(context.Background(), []probe.Target{target, target}, opts...)
			if err != nil || len(rep.Registries) != 2 {
				t.Errorf("Run: %v, %d results", err, len(rep.Registries))
				return
			}
			results[i] = rep.Registries[1]
		}()
	}
	wg.Wait()
	firstCost := l.Requests("oci11") - before
	for i, r := range results {
		if r.ReferrersAPI != probe.Supported || r.Target != target.String() {
			t.Errorf("run %d: %s %s", i, r.Target, r.ReferrersAPI)
		}
	}
	text := logBuf.String()
	if n := strings.Count(text, "Probing 1 registries for OCI referrer capabilities before export"); n != 1 {
		t.Errorf("%d announcements, want 1:\n%s", n, text)
	}
	if n := strings.Count(text, "Registry "+oci.Host+": OCI 1.1"); n != 1 {
		t.Errorf("%d verdict lines, want 1:\n%s", n, text)
	}
	if firstCost == 0 {
		t.Fatal("the probe sent no request")
	}
	if _, err := probe.Run(context.Background(), []probe.Target{target}, append(opts, probe.WithRefresh(true))...); err != nil {
		t.Fatal(err)
	}
	if cost := l.Requests("oci11") - before - firstCost; cost != firstCost {
		t.Errorf("a refresh sent %d requests, want %d (a probe of its own)", cost, firstCost)
	}
	if n := strings.Count(logBuf.String(), "Probing 1 registries"); n != 2 {
		t.Errorf("a refresh is not announced: %d announcements\n%s", n, logBuf.String())
	}
}
