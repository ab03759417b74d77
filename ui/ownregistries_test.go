package ui

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/refdoctor/refdoctor/config"
	"github.com/refdoctor/refdoctor/lab"
	"github.com/refdoctor/refdoctor/probe"
)

// ownLab is a lab of its own for a test that counts requests.
func ownLab(t *testing.T, specs ...lab.Spec) *lab.Lab {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	l, err := lab.Start(ctx, lab.WithSpecs(specs...))
	if err != nil {
		t.Fatalf("start lab: %v", err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

// TestRegistriesReadTheCache: the Registries screen answers from the
// capability cache the CLI wrote, sending no request, and says how old
// the verdict is and which command probed it; r probes anew. The
// Referrers screen's method choice reads the same cache.
func TestRegistriesReadTheCache(t *testing.T) {
	l := ownLab(t, lab.Spec{Name: "oci11", Profile: lab.ProfileOCI11})
	oci, _ := l.Get("oci11")
	cacheDir := t.TempDir()
	cfg := config.Defaults()
	cfg.Registries = l.Info(nil).Config()
	cfg.Cache.Dir = cacheDir
	cfg.Cache.Origin = "refdoctor probe"
	target := probe.Target{Host: oci.Host, Repository: l.Seed.Repository}
	if _, err := probe.Run(context.Background(), []probe.Target{target}, probe.WithConfig(cfg), probe.WithClientOpts(l.ClientOpts()...)); err != nil {
		t.Fatal(err)
	}
	if entries, _ := probe.OpenCache(cfg).Entries(); len(entries) != 1 {
		t.Fatalf("the CLI-side probe cached %d verdicts, want 1", len(entries))
	}
	before := l.Requests("oci11")
	h := newHarness(t, l, 120, 40, func(dir string, o *Options) {
		o.Config.Cache = cfg.Cache
		o.Config.Cache.Origin = "refdoctor (TUI)"
		o.Targets = []probe.Target{target}
	})
	h.keys("3")
	v := h.waitFor("the cached verdict", func(v string) bool {
		return idle(v) && strings.Contains(v, "supported") && strings.Contains(v, "verdict from the cache, probed")
	})
	if !strings.Contains(v, "by refdoctor probe; r probes anew") || !regexp.MustCompile(`cache \d+s `).MatchString(v) {
		t.Errorf("the row does not say how old the verdict is and who probed it:\n%s", v)
	}
	if n := l.Requests("oci11") - before; n != 0 {
		t.Errorf("the screen sent %d requests for a verdict the cache holds", n)
	}
	h.keys("enter")
	h.waitFor("the detail says where the verdict came from", contains("verdict from the cache, probed", "by refdoctor probe"))
	h.keys("esc", "r")
	v = h.waitFor("a fresh verdict", func(v string) bool {
		return idle(v) && strings.Contains(v, "supported") && !strings.Contains(v, "verdict from the cache")
	})
	if n := l.Requests("oci11") - before; n == 0 {
		t.Errorf("r sent no request:\n%s", v)
	}
	entries, _ := probe.OpenCache(cfg).Entries()
	if len(entries) != 1 || entries[0].StoredBy != "refdoctor (TUI)" {
		t.Errorf("r did not store its fresh verdict in the shared cache: %+v", entries)
	}
	h.keys("5")
	h.waitFor("discovery's method from the cached capability", func(v string) bool {
		return idle(v) && strings.Contains(v, "Method chosen from the cached capability")
	})
}
