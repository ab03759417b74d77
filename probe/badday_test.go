package probe_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/olareg/olareg"
	olaregconfig "github.com/olareg/olareg/config"

	"github.com/refdoctor/refdoctor/config"
	"github.com/refdoctor/refdoctor/finding"
	"github.com/refdoctor/refdoctor/lab"
	"github.com/refdoctor/refdoctor/lab/labtest"
	"github.com/refdoctor/refdoctor/probe"
	"github.com/refdoctor/refdoctor/registry"
)

// TestBadDayVerdicts probes every bad-day registry of the lab and checks
// the verdict a truthful probe owes each: replies that redirect are
// judged at the end of the chain, a huge index is read whole, a body that
// stalls or trickles is unknown, a server that is not a registry is
// unknown, and none of the inconclusive ones is cached.
func TestBadDayVerdicts(t *testing.T) {
	t.Parallel()
	l := labtest.StartT(t,
		lab.Spec{Name: "307", Profile: lab.ProfileRedirect307},
		lab.Spec{Name: "cdn", Profile: lab.ProfileRedirectCDN},
		lab.Spec{Name: "login", Profile: lab.ProfileLogin302},
		lab.Spec{Name: "huge", Profile: lab.ProfileHugeIndex},
		lab.Spec{Name: "stalled", Profile: lab.ProfileStalledBody},
		lab.Spec{Name: "trickle", Profile: lab.ProfileTrickleBody},
		lab.Spec{Name: "web404", Profile: lab.ProfileNotARegistry404},
		lab.Spec{Name: "webhtml", Profile: lab.ProfileNotARegistryHTML},
		lab.Spec{Name: "hub6h", Profile: lab.ProfileThrottled6h},
		lab.Spec{Name: "ghcr303", Profile: lab.ProfileGHCR303},
		lab.Spec{Name: "acr424", Profile: lab.ProfileACR424},
		lab.Spec{Name: "ecr", Profile: lab.ProfileECR2024},
	)
	cfg := l.Config()
	cfg.Cache.Dir = t.TempDir()
	cache := probe.OpenCache(cfg)
	huge, _ := l.Get("huge")
	tests := []struct {
		reg, target string
		verdict     probe.Verdict
		reason      finding.Code
		codes       []finding.Code
		timeout     time.Duration
	}{
		{reg: "307", verdict: probe.Supported, reason: finding.ReferrersAPISupported, codes: []finding.Code{finding.ReferrersRedirected}},
		{reg: "cdn", verdict: probe.Supported, reason: finding.ReferrersAPISupported, codes: []finding.Code{finding.ReferrersRedirected}},
		{reg: "login", verdict: probe.Unsupported, reason: finding.ReferrersHTMLReply, codes: []finding.Code{finding.ReferrersRedirected, finding.KnownBehaviour}},
		{reg: "huge", target: huge.Host + "/" + lab.BadDayRepository + "@" + huge.Subject, verdict: probe.Supported, reason: finding.ReferrersAPISupported},
		{reg: "stalled", verdict: probe.Unknown, reason: finding.Timeout, timeout: 2 * time.Second},
		{reg: "trickle", verdict: probe.Unknown, reason: finding.Timeout, timeout: 2 * time.Second},
		{reg: "web404", verdict: probe.Unknown, reason: finding.NotARegistry},
		{reg: "webhtml", verdict: probe.Unknown, reason: finding.NotARegistry},
		{reg: "hub6h", verdict: probe.Unknown, reason: finding.ReferrersRateLimited, codes: []finding.Code{finding.KnownBehaviour}},
		{reg: "ghcr303", verdict: probe.Unknown, reason: finding.ReferrersRateLimited, codes: []finding.Code{finding.ReferrersRedirected, finding.KnownBehaviour}},
		{reg: "acr424", verdict: probe.Unknown, reason: finding.ReferrersUnexpectedStatus, codes: []finding.Code{finding.KnownBehaviour}},
		{reg: "ecr", verdict: probe.Unsupported, reason: finding.ReferrersNotFound, codes: []finding.Code{finding.KnownBehaviour}},
	}
	for _, tc := range tests {
		t.Run(tc.reg, func(t *testing.T) {
			t.Parallel()
			reg, _ := l.Get(tc.reg)
			target := tc.target
			if target == "" {
				target = reg.Host + "/" + lab.SeedRepository
			}
			timeout := tc.timeout
			if timeout == 0 {
				timeout = 5 * time.Minute
			}
			r := probeOne(t, l, target, probe.WithConfig(cfg), probe.WithCache(cache), probe.WithTimeout(timeout))
			if r.ReferrersAPI != tc.verdict || r.ReferrersReason != tc.reason {
				t.Fatalf("verdict %s/%s, want %s/%s; findings %v", r.ReferrersAPI, r.ReferrersReason, tc.verdict, tc.reason, r.Findings)
			}
			for _, c := range tc.codes {
				if !slices.Contains(codes(r.Findings), c) {
					t.Errorf("finding %s missing from %v", c, codes(r.Findings))
				}
			}
			_, cached := cache.Get(probe.CacheKey(cfg, mustTarget(t, target)))
			if cached != (tc.verdict != probe.Unknown) {
				t.Errorf("cached %v for verdict %s", cached, r.ReferrersAPI)
			}
			if tc.verdict == probe.Unknown && r.Outcome() != finding.OutcomeIncomplete {
				t.Errorf("outcome %s for an unknown verdict", r.Outcome())
			}
		})
	}

	t.Run("a redirect chain is shown hop by hop, Authorization stays home", func(t *testing.T) {
		t.Parallel()
		cdn, _ := l.Get("cdn")
		r := probeOne(t, l, cdn.Host+"/"+lab.SeedRepository, probe.WithCache(nil))
		var hops []string
		for _, ex := range r.Exchanges {
			if strings.Contains(ex.Requested(), "/referrers/") && ex.Status != 401 {
				hops = append(hops, hostOf(ex.URL)+" "+itoa(ex.Status))
			}
		}
		want := []string{cdn.Host + " 307", cdn.OtherHost + " 200"}
		if !slices.Equal(hops, want) {
			t.Errorf("referrers chain %v, want %v", hops, want)
		}
		n, withAuth := l.OtherHostRequests("cdn")
		if n == 0 || withAuth != 0 {
			t.Errorf("the CDN got %d requests, %d with Authorization", n, withAuth)
		}
	})
	t.Run("past the reply cap the answer is unknown, naming the size", func(t *testing.T) {
		t.Parallel()
		r := probeOne(t, l, huge.Host+"/"+lab.BadDayRepository+"@"+huge.Subject, probe.WithConfig(cfg), probe.WithCache(cache),
			probe.WithClientOpts(append(l.ClientOpts(), registry.WithMaxReplySize(4<<20))...))
		f := findingOf(r, finding.ReferrersReplyTooLarge)
		if r.ReferrersAPI != probe.Unknown || f == nil || !strings.Contains(f.Summary, "MiB") || !strings.Contains(f.Remedy, "--max-reply-size") {
			t.Fatalf("verdict %s/%s findings %v", r.ReferrersAPI, r.ReferrersReason, r.Findings)
		}
	})
	t.Run("the six-hour throttle is not waited on", func(t *testing.T) {
		t.Parallel()
		hub, _ := l.Get("hub6h")
		r := probeOne(t, l, hub.Host+"/"+lab.SeedRepository, probe.WithCache(nil), probe.WithTimeout(10*time.Minute))
		f := findingOf(r, finding.ReferrersRateLimited)
		if f == nil || r.RateLimit == nil || time.Until(r.RateLimit.RetryAt) < 5*time.Hour ||
			!strings.Contains(f.Summary, r.RateLimit.RetryAt.Format(time.RFC3339)) || !strings.Contains(f.Cause, "Budget left: 0 of 100") {
			t.Fatalf("findings %v rate %+v", r.Findings, r.RateLimit)
		}
	})
}

func hostOf(u string) string {
	_, rest, _ := strings.Cut(u, "://")
	h, _, _ := strings.Cut(rest, "/")
	return h
}

func itoa(n int) string {
	const digits = "0123456789"
	if n == 0 {
		return "0"
	}
	s := ""
	for n > 0 {
		s = string(digits[n%10]) + s
		n /= 10
	}
	return s
}

// TestEndlessRedirectsStop: a registry whose /referrers redirects to
// itself without end (olareg behind a layer that loops) is followed ten
// times, as Go's client and regclient do, then reported as
// TooManyRedirects: unknown, with every hop in the exchanges.
func TestEndlessRedirectsStop(t *testing.T) {
	t.Parallel()
	on := true
	ola := olareg.New(olaregconfig.Config{Storage: olaregconfig.ConfigStorage{StoreType: olaregconfig.StoreMem},
		API: olaregconfig.ConfigAPI{Referrer: olaregconfig.ConfigAPIReferrer{Enabled: &on}}})
	hops := 0
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "/referrers/") {
			mu.Lock()
			hops++
			n := hops
			mu.Unlock()
			http.Redirect(w, r, r.URL.Path+"?hop="+itoa(n), http.StatusTemporaryRedirect)
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
	rep, err := probe.Run(context.Background(), []probe.Target{mustTarget(t, host+"/demo/app")},
		probe.WithConfig(cfg), probe.WithClientOpts(registry.WithoutDockerCreds()))
	if err != nil {
		t.Fatal(err)
	}
	r := rep.Registries[0]
	if r.ReferrersAPI != probe.Unknown || r.ReferrersReason != finding.TooManyRedirects || r.Outcome() != finding.OutcomeIncomplete {
		t.Fatalf("verdict %s/%s findings %v", r.ReferrersAPI, r.ReferrersReason, r.Findings)
	}
	n := 0
	for _, ex := range r.Exchanges {
		if strings.Contains(ex.Requested(), "/referrers/") && ex.IsRedirect() {
			n++
		}
	}
	if n != registry.MaxRedirects || hops != registry.MaxRedirects {
		t.Errorf("%d redirects recorded, %d served; want %d", n, hops, registry.MaxRedirects)
	}
}
