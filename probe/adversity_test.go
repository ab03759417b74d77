package probe_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/refdoctor/refdoctor/config"
	"github.com/refdoctor/refdoctor/finding"
	"github.com/refdoctor/refdoctor/lab"
	"github.com/refdoctor/refdoctor/lab/labtest"
	"github.com/refdoctor/refdoctor/probe"
	"github.com/refdoctor/refdoctor/registry"
)

func findingOf(r probe.Result, c finding.Code) *finding.Finding {
	for i := range r.Findings {
		if r.Findings[i].Code == c {
			return &r.Findings[i]
		}
	}
	return nil
}

// TestPlainHTTPHint: a plain-HTTP registry probed over TLS is named as
// such, with the exact flag to add (the old hint was the raw TLS error and
// `curl -v https://...`).
func TestPlainHTTPHint(t *testing.T) {
	t.Parallel()
	l := labtest.StartT(t, lab.Spec{Name: "oci11", Profile: lab.ProfileOCI11})
	reg, _ := l.Get("oci11")
	cfg := l.Config()
	cfg.Registries = nil // no --plain-http for the host
	r := probeOne(t, l, reg.Host+"/"+l.Seed.Repository, probe.WithConfig(cfg))
	f := findingOf(r, finding.TLSPlainHTTPServer)
	if r.ReferrersAPI != probe.Unknown || f == nil {
		t.Fatalf("verdict %s/%s findings %v", r.ReferrersAPI, r.ReferrersReason, r.Findings)
	}
	if !strings.Contains(f.Remedy, "--plain-http "+reg.Host) || !strings.Contains(f.Summary, "plain HTTP") {
		t.Errorf("finding does not give the flag to add: %+v", *f)
	}
	if r.Outcome() != finding.OutcomeIncomplete {
		t.Errorf("outcome %s", r.Outcome())
	}
}

// TestCacheKeyHoldsTheTransport: a verdict probed over plain HTTP is not
// the answer for the same host over TLS; each has its own key, with the
// scheme and the TLS settings in it.
func TestCacheKeyHoldsTheTransport(t *testing.T) {
	t.Parallel()
	l := labtest.StartT(t, lab.Spec{Name: "oci11", Profile: lab.ProfileOCI11})
	reg, _ := l.Get("oci11")
	plain := l.Config()
	plain.Cache.Dir = t.TempDir()
	target := reg.Host + "/" + l.Seed.Repository
	first := probeOne(t, l, target, probe.WithConfig(plain), probe.WithCache(probe.OpenCache(plain)))
	if first.ReferrersAPI != probe.Supported {
		t.Fatalf("plain HTTP probe: %s", first.ReferrersAPI)
	}
	tlsCfg := plain
	tlsCfg.Registries = nil
	tlsCfg.SetHost(configHost(reg.Host, false, true))
	if probe.CacheKey(plain, mustTarget(t, target)) == probe.CacheKey(tlsCfg, mustTarget(t, target)) {
		t.Fatal("plain HTTP and TLS share a cache key")
	}
	// Over TLS the plain-HTTP registry cannot answer: a fresh probe says
	// so instead of serving the plain-HTTP verdict.
	second := probeOne(t, l, target, probe.WithConfig(tlsCfg), probe.WithCache(probe.OpenCache(tlsCfg)))
	if second.Cached || second.ReferrersAPI != probe.Unknown || second.ReferrersReason != finding.TLSPlainHTTPServer {
		t.Fatalf("TLS probe: cached %v verdict %s/%s", second.Cached, second.ReferrersAPI, second.ReferrersReason)
	}
	third := probeOne(t, l, target, probe.WithConfig(plain), probe.WithCache(probe.OpenCache(plain)))
	if !third.Cached || third.ReferrersAPI != probe.Supported {
		t.Fatalf("plain HTTP probe again: cached %v verdict %s", third.Cached, third.ReferrersAPI)
	}
	f := findingOf(third, finding.CachedVerdict)
	if f == nil || !strings.Contains(f.Summary, "ago by") || third.CachedAt.IsZero() {
		t.Fatalf("a cached verdict does not say its age and origin: %v", third.Findings)
	}
}

// TestFailedLoginIsNeverCached: a probe without a login is unknown and
// leaves nothing in the cache, so the probe after `docker login` is fresh.
func TestFailedLoginIsNeverCached(t *testing.T) {
	t.Parallel()
	l := labtest.StartT(t, lab.Spec{Name: "basic", Profile: lab.ProfileBasicAuth})
	reg, _ := l.Get("basic")
	cfg := l.Config()
	cfg.Cache.Dir = t.TempDir()
	cache := probe.OpenCache(cfg)
	target := reg.Host + "/" + l.Seed.Repository
	rep, err := probe.Run(context.Background(), []probe.Target{mustTarget(t, target)},
		probe.WithConfig(cfg), probe.WithCache(cache), probe.WithClientOpts(registry.WithoutDockerCreds()))
	if err != nil {
		t.Fatal(err)
	}
	r := rep.Registries[0]
	if r.ReferrersAPI != probe.Unknown || r.ReferrersReason != finding.AuthFailed || r.Outcome() != finding.OutcomeIncomplete {
		t.Fatalf("without a login: %s/%s outcome %s", r.ReferrersAPI, r.ReferrersReason, r.Outcome())
	}
	if entries, _ := cache.Entries(); len(entries) != 0 {
		t.Fatalf("a failed login was cached: %+v", entries)
	}
	ok := probeOne(t, l, target, probe.WithConfig(cfg), probe.WithCache(cache))
	if ok.Cached || ok.ReferrersAPI != probe.Supported {
		t.Fatalf("with the login: cached %v verdict %s", ok.Cached, ok.ReferrersAPI)
	}
}

// TestCacheKeepsVerdictsNotExchanges: an entry is a verdict of a few
// hundred bytes, never the exchanges, and expired entries leave the file.
func TestCacheKeepsVerdictsNotExchanges(t *testing.T) {
	t.Parallel()
	l := labtest.StartT(t, lab.Spec{Name: "oci11", Profile: lab.ProfileOCI11}, lab.Spec{Name: "ghcr", Profile: lab.ProfileFallback404})
	cfg := l.Config()
	cfg.Cache.Dir = t.TempDir()
	cache := probe.NewCache(cfg.Cache.Dir, time.Hour)
	var targets []probe.Target
	for _, r := range l.Registries {
		targets = append(targets, mustTarget(t, r.Host+"/"+l.Seed.Repository))
	}
	if _, err := probe.Run(context.Background(), targets, append(labOpts(l), probe.WithConfig(cfg), probe.WithCache(cache))...); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(cfg.Cache.Dir, "capabilities.json"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), `"exchanges"`) || strings.Contains(string(data), "/v2/") && strings.Contains(string(data), `"duration_ms"`) {
		t.Error("the cache holds exchanges")
	}
	if per := len(data) / len(targets); per > 1500 {
		t.Errorf("%d bytes per cached verdict", per)
	}
	t.Logf("%d bytes for %d verdicts", len(data), len(targets))
	entries, _ := cache.Entries()
	if len(entries) != 2 || entries[0].StoredBy == "" || entries[0].Scheme != "http" {
		t.Fatalf("entries %+v", entries)
	}
	// A cache with a TTL shorter than the entries' age drops them when it
	// next writes.
	short := probe.NewCache(cfg.Cache.Dir, time.Nanosecond)
	oci, _ := l.Get("oci11")
	fresh := probeOne(t, l, oci.Host+"/"+l.Seed.Repository, probe.WithConfig(cfg), probe.WithCache(probe.NewCache(t.TempDir(), 0)))
	if err := short.Put("http://example.invalid/x", fresh, "test"); err != nil {
		t.Fatal(err)
	}
	long := probe.NewCache(cfg.Cache.Dir, 100*time.Hour)
	entries, _ = long.Entries()
	if len(entries) != 1 || entries[0].Key != "http://example.invalid/x" {
		t.Fatalf("expired entries were not pruned: %+v", entries)
	}
}

// TestThrottledProbeSaysWhen: a probe throttled with a six-hour
// Retry-After says when the registry answers again, as an absolute time,
// and how much budget is left; a low budget that still answers is a
// warning.
func TestThrottledProbeSaysWhen(t *testing.T) {
	t.Parallel()
	l := labtest.StartT(t, lab.Spec{Name: "spent", Profile: lab.ProfileRateLimit, RateBudget: 0}, lab.Spec{Name: "low", Profile: lab.ProfileRateLimit, RateBudget: 6})
	spent, _ := l.Get("spent")
	r := probeOne(t, l, spent.Host+"/"+l.Seed.Repository, probe.WithTimeout(5*time.Minute))
	f := findingOf(r, finding.ReferrersRateLimited)
	if r.ReferrersAPI != probe.Unknown || f == nil || r.RateLimit == nil || r.RateLimit.RetryAt.IsZero() {
		t.Fatalf("verdict %s findings %v rate %+v", r.ReferrersAPI, r.Findings, r.RateLimit)
	}
	at := r.RateLimit.RetryAt.Format(time.RFC3339)
	if d := time.Until(r.RateLimit.RetryAt); d < 5*time.Hour || !strings.Contains(f.Summary, at) || !strings.Contains(f.Cause, "Budget left: 0 of 100") {
		t.Errorf("finding does not say when (%s, in %s) and what is left: %+v", at, d, *f)
	}
	low, _ := l.Get("low")
	r = probeOne(t, l, low.Host+"/"+l.Seed.Repository)
	if r.ReferrersAPI != probe.Supported || findingOf(r, finding.RateLimitLow) == nil || r.Outcome() != finding.OutcomeWarn {
		t.Fatalf("low budget: %s outcome %s findings %v", r.ReferrersAPI, r.Outcome(), codes(r.Findings))
	}
	if !slices.Contains(codes(r.Findings), finding.ReferrersAPISupported) {
		t.Errorf("findings %v", codes(r.Findings))
	}
}

func configHost(host string, plain, insecure bool) config.Registry {
	return config.Registry{Host: host, PlainHTTP: plain, InsecureSkipVerify: insecure}
}

// TestUnwritableCacheIsNotAFailure: a cache folder that cannot be written
// (bundle import on a read-only home, a file in its place) costs a debug
// line, never the verdict.
func TestUnwritableCacheIsNotAFailure(t *testing.T) {
	t.Parallel()
	l := labtest.StartT(t, lab.Spec{Name: "oci11", Profile: lab.ProfileOCI11})
	reg, _ := l.Get("oci11")
	blocker := filepath.Join(t.TempDir(), "not-a-dir")
	if err := os.WriteFile(blocker, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := l.Config()
	cfg.Cache.Dir = filepath.Join(blocker, "cache")
	var logs strings.Builder
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	r := probeOne(t, l, reg.Host+"/"+l.Seed.Repository, probe.WithConfig(cfg), probe.WithLogger(log))
	if r.ReferrersAPI != probe.Supported || r.Outcome() != finding.OutcomeOK {
		t.Fatalf("verdict %s outcome %s", r.ReferrersAPI, r.Outcome())
	}
	if !strings.Contains(logs.String(), "level=DEBUG msg=\"capability cache not written\"") {
		t.Fatalf("no debug line for the unwritable cache:\n%s", logs.String())
	}
	if strings.Contains(logs.String(), "level=WARN msg=\"capability cache") || strings.Contains(logs.String(), "level=ERROR") {
		t.Fatalf("an unwritable cache is logged above debug:\n%s", logs.String())
	}
}

// TestRemediesNameTheRegistry: the fix of a verdict names the registry and
// repository probed, so the command runs as shown.
func TestRemediesNameTheRegistry(t *testing.T) {
	t.Parallel()
	l := labtest.StartT(t, lab.Spec{Name: "ghcr", Profile: lab.ProfileFallback404})
	reg, _ := l.Get("ghcr")
	r := probeOne(t, l, reg.Host+"/"+l.Seed.Repository)
	f := findingOf(r, finding.ReferrersNotFound)
	if f == nil || !strings.Contains(f.Remedy, "refdoctor tags "+reg.Host+"/"+l.Seed.Repository) || strings.Contains(f.Remedy, "HOST/REPO") {
		t.Fatalf("remedy %+v", f)
	}
}
