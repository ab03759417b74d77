package ui

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/refdoctor/refdoctor/lab"
	"github.com/refdoctor/refdoctor/lab/labtest"
)

// TestLogsFixCommandsRun: the fix commands on the logs screen carry the
// repository the session looks at and the flag a plain-HTTP host needs,
// so they run as shown (the old screen said HOST/REPO-style placeholders
// and left --plain-http out).
func TestLogsFixCommandsRun(t *testing.T) {
	l := sharedLab(t)
	reg := l.Registries[0]
	h := newHarness(t, l, 200, 60, func(dir string, o *Options) {
		lines := []string{
			`time=2026-11-27T12:00:00.000Z level=INFO msg="Probing 2 registries for OCI referrer capabilities before export"`,
			`time=2026-11-27T12:00:01.000Z level=WARN msg="Failed to probe capabilities for registry ` + reg.Host + `: Timeout (referrers API unknown, version=none, probe_ms=30000)"`,
			`time=2026-11-27T12:00:02.000Z level=WARN msg="Registry ` + reg.Host + `: OCI 1.0 (using fallback tag discovery, version=registry/2.0, probe_ms=3)"`,
		}
		o.LogFile = filepath.Join(dir, "export.log")
		if err := os.WriteFile(o.LogFile, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	})
	h.keys("7")
	v := h.waitFor("the findings", contains("FINDINGS", "ProbeFailed"))
	for _, want := range []string{
		"refdoctor probe --plain-http " + reg.Host + " --exchanges " + reg.Host + "/" + lab.SeedRepository,
		"refdoctor tags --plain-http " + reg.Host + " " + reg.Host + "/" + lab.SeedRepository,
	} {
		if !strings.Contains(strings.Join(strings.Fields(v), " "), want) {
			t.Errorf("logs screen lacks the runnable command %q:\n%s", want, v)
		}
	}
	if strings.Contains(v, "/REPO") {
		t.Errorf("a REPO placeholder is left:\n%s", v)
	}
}

// TestResetLabBudget: on the Docker Hub-like lab registry, a spent pull
// budget shows as a throttle with the time it ends, and R on its detail
// view refills the lab's budget and probes again.
func TestResetLabBudget(t *testing.T) {
	t.Parallel()
	l := labtest.StartT(t, lab.Spec{Name: "hub", Profile: lab.ProfileRateLimit, RateBudget: 1})
	h := newHarness(t, l, 140, 50, nil)
	h.keys("3")
	h.waitFor("the first verdict", func(v string) bool { return idle(v) && strings.Contains(v, "supported") })
	h.keys("enter")
	h.waitFor("the detail", contains("EXCHANGES", "R reset lab budget"))
	h.keys("r")
	h.waitFor("the throttled verdict", func(v string) bool { return idle(v) && strings.Contains(v, "THROTTLED (429) until") })
	h.keys("R")
	h.waitFor("the verdict after the reset", func(v string) bool {
		return idle(v) && strings.Contains(v, "VERDICT  supported") && !strings.Contains(v, "THROTTLED")
	})
}

// TestReferrersScreenNeverSaysNoneWhenIncomplete: on a registry that
// throttles for six hours the Referrers screen says the lookup did not
// complete, with the time the registry answers again, at once and never
// "(none)".
func TestReferrersScreenNeverSaysNoneWhenIncomplete(t *testing.T) {
	t.Parallel()
	l := labtest.StartT(t, lab.Spec{Name: "hub6h", Profile: lab.ProfileThrottled6h})
	h := newHarness(t, l, 140, 50, nil)
	h.keys("5")
	v := h.waitFor("the result", func(v string) bool { return idle(v) && strings.Contains(v, "incomplete") })
	if strings.Contains(v, "(none)") || !strings.Contains(v, "(none read") || !strings.Contains(v, "answers again at") {
		t.Fatalf("referrers screen on a throttled registry:\n%s", v)
	}
}
