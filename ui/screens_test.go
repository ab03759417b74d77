package ui

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/charmbracelet/x/ansi"
	"github.com/charmbracelet/x/exp/golden"

	"github.com/refdoctor/refdoctor/config"
)

var sizes = []struct{ w, h int }{{80, 24}, {120, 40}}

// screenCase drives one screen to a settled state for its golden file.
type screenCase struct {
	name   string
	opts   func(t *testing.T, dir string, o *Options)
	drive  func(h *harness)
	checks []string // words the final view must hold at any size
	absent []string // words it must not hold
}

func screenCases() []screenCase {
	return []screenCase{
		{name: "start", drive: func(h *harness) {}, checks: []string{"What do you see?", "No referrers discovered", "TARGETS"}},
		{name: "start-filter", drive: func(h *harness) {
			h.keys("/", "t", "l", "s", "enter")
			h.waitFor("the filter applied", contains("filter \"tls\""))
		}, checks: []string{"filter \"tls\" 1 of 11 · esc clears", "Failed to probe capabilities", "1/1"}},
		{name: "start-filter-none", drive: func(h *harness) {
			h.keys("/", "x", "y", "z", "enter")
			h.waitFor("the filter applied", contains("filter \"xyz\""))
		}, checks: []string{"filter \"xyz\" 0 of 11", "nothing matches \"xyz\"", "esc clears the filter"}},
		{name: "start-form", drive: func(h *harness) {
			h.keys("e")
			h.waitFor("the form", contains("Registries", "Export log"))
		}, checks: []string{"Targets", "Bundle file"}},
		{name: "start-form-bad-bundle", drive: func(h *harness) {
			h.keys("e", "tab", "tab", "tab", "tab", "tab", "tab")
			h.waitFor("the bundle field", contains("› Bundle file"))
			h.keys("n", "o", "p", "e", ".", "t", "g", "z", "enter")
			h.waitFor("the refusal", contains("bundle file nope.tgz"))
		}, checks: []string{"error bundle file nope.tgz: no such file or directory (give a mirror bundle", "› Bundle file"}},
		{name: "start-form-bad-log", drive: func(h *harness) {
			h.keys("e", "tab", "tab", "tab", "tab", "tab", "tab", "tab")
			h.waitFor("the export log field", contains("› Export log"))
			h.keys("t", "e", "s", "t", "d", "a", "t", "a", "enter")
			h.waitFor("the refusal", contains("export log testdata"))
		}, checks: []string{"error export log testdata is a folder: give the log file inside it"}},
		{name: "runbook", drive: func(h *harness) {
			h.keys("enter")
			h.waitFor("the walkthrough", contains("Check the export logs"))
			h.keys("j", "j") // Test registry connectivity and referrers support
			h.keys("r")
			h.waitFor("the probe step's result", func(v string) bool {
				return idle(v) && strings.Contains(v, "CHECK") && !strings.Contains(v, "not run yet")
			})
		}, checks: []string{"DIAGNOSE", "CHECK", "warned", "olareg-405"}},
		{name: "compat", drive: func(h *harness) {
			h.keys("3")
			h.waitFor("every verdict", func(v string) bool { return idle(v) && strings.Contains(v, "unsupported!") })
			h.keys("j", "j")
		}, checks: []string{"REGISTRY", "REFERRERS API", "unsupported!", "differ", "(!)"}},
		{name: "detail", drive: func(h *harness) {
			h.keys("3")
			h.waitFor("every verdict", func(v string) bool { return idle(v) && strings.Contains(v, "unsupported!") })
			h.keys("j", "j", "enter")
			h.waitFor("the detail", contains("EXCHANGES"))
		}, checks: []string{"VERDICT", "deciding reply", "405", "EXCHANGES"}},
		{name: "detail-exchange", drive: func(h *harness) {
			h.keys("3")
			h.waitFor("every verdict", func(v string) bool { return idle(v) && strings.Contains(v, "unsupported!") })
			h.keys("j", "j", "enter")
			h.waitFor("the detail", contains("EXCHANGES"))
			h.keys("j", "j", "enter")
			h.waitFor("the exchange", contains("REQUEST", "REPLY"))
		}, checks: []string{"REQUEST", "GET http://", "User-Agent: refdoctor/test", "REPLY", "405", "Content-Type:", "BODY", "UNSUPPORTED"}},
		{name: "tags", drive: func(h *harness) {
			h.keys("4")
			h.waitFor("the listing", func(v string) bool { return idle(v) && strings.Contains(v, "tags for") })
		}, checks: []string{"SUBJECT", "index", "sig"}},
		{name: "tags-open", drive: func(h *harness) {
			h.keys("4")
			h.waitFor("the listing", func(v string) bool { return idle(v) && strings.Contains(v, "tags for") })
			h.keys("j", "enter")
			h.waitFor("what the tag holds", func(v string) bool { return idle(v) && strings.Contains(v, "HOLDS") })
		}, checks: []string{"index tag", "points to", "HOLDS", "application/vnd.oci.image.index.v1+json"}},
		{name: "tags-filter-none", drive: func(h *harness) {
			h.keys("4")
			h.waitFor("the listing", func(v string) bool { return idle(v) && strings.Contains(v, "tags for") })
			h.keys("/", "x", "y", "z", "enter")
		}, checks: []string{"nothing matches \"xyz\"", "esc clears"}},
		{name: "tags-filter", drive: func(h *harness) {
			h.keys("4")
			h.waitFor("the listing", func(v string) bool { return idle(v) && strings.Contains(v, "tags for") })
			h.keys("/", "s", "i", "g", "enter")
		}, checks: []string{"sig", "/sig"}},
		{name: "referrers", drive: func(h *harness) {
			h.keys("5")
			h.waitFor("the referrers", func(v string) bool { return idle(v) && strings.Contains(v, "referrers ·") })
		}, checks: []string{"REFERRERS", "sbom", "sha256:", "1/7"}},
		{name: "referrers-open", drive: func(h *harness) {
			h.keys("5")
			h.waitFor("the referrers", func(v string) bool { return idle(v) && strings.Contains(v, "referrers ·") })
			h.keys("j", "enter")
			h.waitFor("the referrer", func(v string) bool { return idle(v) && strings.Contains(v, "SUBJECT CHAIN") })
		}, checks: []string{"SUBJECT CHAIN", "esc returns", "digest", "sbom"}},
		{name: "bundle-tampered", opts: func(t *testing.T, dir string, o *Options) {
			_, tampered := bundles(t, dir)
			o.Bundle = tampered
		}, drive: func(h *harness) {
			h.keys("6")
			h.waitFor("the verdict", func(v string) bool { return idle(v) && strings.Contains(v, "do not import") })
		}, checks: []string{"do not import", "BY CODE", "BY SUBJECT", "expected", "ReferrerChecksumMismatch"}},
		{name: "bundle-good", opts: func(t *testing.T, dir string, o *Options) {
			good, _ := bundles(t, dir)
			o.Bundle = good
		}, drive: func(h *harness) {
			h.keys("6")
			h.waitFor("the verdict", func(v string) bool { return idle(v) && strings.Contains(v, "whole") })
		}, checks: []string{"the bundle is whole"}},
		{name: "bundle-missing", opts: func(t *testing.T, dir string, o *Options) {
			o.Bundle = "no-such-bundle.tgz" // relative, so the golden is the same everywhere
		}, drive: func(h *harness) {
			h.keys("6")
			h.waitFor("the verdict", func(v string) bool { return idle(v) && strings.Contains(v, "not a readable bundle") })
		}, checks: []string{"error not a readable bundle", "no such file", "nothing in it was checked", "o picks another file"},
			absent: []string{"ok every", "  ok ", "every listed member", "signature", "checked   ", "the bundle is whole"}},
		{name: "bundle-not-a-bundle", opts: func(t *testing.T, dir string, o *Options) {
			o.Bundle = "keys.go" // a file of this package: plain text, not a bundle
		}, drive: func(h *harness) {
			h.keys("6")
			h.waitFor("the verdict", func(v string) bool { return idle(v) && strings.Contains(v, "keys.go") && strings.Contains(v, "error") })
		}, checks: []string{"error not a readable bundle", "neither gzip nor zstd", "code      NotABundle", "o picks another file"},
			absent: []string{"ok every", "  ok ", "every listed member", "the bundle is whole"}},
		{name: "bundle-signed", opts: func(t *testing.T, dir string, o *Options) {
			good, _ := bundles(t, dir)
			o.Bundle = good
			// A configuration as config.Load gives it, with the key.
			o.Config = config.Defaults()
			o.Config.Bundle.VerifyKeys = []string{signBundle(t, dir, good)}
		}, drive: func(h *harness) {
			h.keys("6")
			h.waitFor("the verdict", func(v string) bool { return idle(v) && strings.Contains(v, "whole") })
		}, checks: []string{"the bundle is whole", "verified · signed by key ", "(export.pub)", "IMAGE SIGNATURES", "unsigned", "registry.example.com/team/app:1.2"}},
		{name: "logs", opts: func(t *testing.T, dir string, o *Options) {
			o.LogFile = writeLog(t, dir)
		}, drive: func(h *harness) {
			h.keys("7")
			h.waitFor("the report", contains("CAPABILITY VERDICTS"))
		}, checks: []string{"gcr.io", "supported", "FAILURES"}},
		{name: "logs-many-exports", opts: func(t *testing.T, dir string, o *Options) {
			var lines []string
			for i := range 500 {
				n := 18
				if i%100 == 99 {
					n = 3
				}
				lines = append(lines, fmt.Sprintf(`time=2026-11-27T12:00:00.000Z level=INFO msg="Probing %d registries for OCI referrer capabilities before export"`, n))
			}
			o.LogFile = filepath.Join(dir, "export.log")
			if err := os.WriteFile(o.LogFile, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
		}, drive: func(h *harness) {
			h.keys("7")
			h.waitFor("the report", contains("CAPABILITY VERDICTS"))
		}, checks: []string{"500 exports: Probing 18 registries (495 times)", "Probing 3 registries"}},
		{name: "metrics", drive: func(h *harness) {
			h.keys("3")
			h.waitFor("every verdict", func(v string) bool { return idle(v) && strings.Contains(v, "unsupported!") })
			h.keys("8")
			h.waitFor("the counters", contains("export_registry_capabilities_probed_total"))
		}, checks: []string{"export_referrer_discovery_method_total", "total", "Only this session's counters", "--prometheus URL"}},
		{name: "metrics-prometheus", opts: func(t *testing.T, dir string, o *Options) {
			o.Prometheus = storyPrometheus(t)
		}, drive: func(h *harness) {
			h.keys("8")
			h.waitFor("Prometheus' answer", func(v string) bool {
				return idle(v) && strings.Contains(v, "docker.io") && !strings.Contains(v, "asking")
			})
		}, checks: []string{"Prometheus", "last 5m", "docker.io", "0.1", "█", "DiscoveryFailuresCounted"}},
		{name: "support", drive: func(h *harness) {
			h.keys("9")
			h.waitFor("escalation", contains("Escalation"))
		}, checks: []string{"COLLECT", "It is written to", "Support bundles always go"}},
		{name: "support-end", drive: func(h *harness) {
			h.keys("9")
			h.waitFor("escalation", contains("Escalation"))
			h.keys("G")
		}, checks: []string{"OPEN A TICKET WITH", "check it before sending"}},
		{name: "help", drive: func(h *harness) {
			h.keys("3")
			h.waitFor("every verdict", func(v string) bool { return idle(v) && strings.Contains(v, "unsupported!") })
			h.keys("?")
			h.waitFor("the full help", contains("Keys"))
		}, checks: []string{"re-probe all", "screens", "quit", "copy digest"}},
	}
}

// TestScreens drives every screen against the lab at 80x24 and 120x40 and
// compares the final View() with its golden file (go test ./ui -update
// rewrites them).
func TestScreens(t *testing.T) {
	l := sharedLab(t)
	for _, sc := range screenCases() {
		for _, sz := range sizes {
			t.Run(fmt.Sprintf("%s/%dx%d", sc.name, sz.w, sz.h), func(t *testing.T) {
				h := newHarness(t, l, sz.w, sz.h, func(dir string, o *Options) {
					if sc.opts != nil {
						sc.opts(t, dir, o)
					}
				})
				sc.drive(h)
				// The lab's probes start with the session; a frame taken
				// while they run would say so.
				h.waitFor("the session to settle", settled)
				v := h.final()
				checkFrame(t, v, sz.w, sz.h)
				for _, want := range sc.checks {
					if !strings.Contains(v, want) {
						t.Errorf("the view lacks %q", want)
					}
				}
				for _, bad := range sc.absent {
					if strings.Contains(v, bad) {
						t.Errorf("the view holds %q", bad)
					}
				}
				golden.RequireEqual(t, []byte(v))
			})
		}
	}
}

// settled is true once the status line, above the help line, reports no
// check running.
func settled(v string) bool {
	lines := strings.Split(v, "\n")
	if len(lines) < 2 {
		return false
	}
	return !strings.Contains(lines[len(lines)-2], "running")
}

// colourSGR matches an escape sequence that sets a colour.
var colourSGR = regexp.MustCompile(`\x1b\[[0-9;]*(?:3[0-9]|4[0-9]|9[0-7]|10[0-7])[;m]`)

// checkFrame asserts the frame is exactly the window: h lines, none wider
// than w, no escape sequences with colour off.
func checkFrame(t *testing.T, v string, w, h int) {
	t.Helper()
	lines := strings.Split(v, "\n")
	if len(lines) != h {
		t.Errorf("%d lines, want %d", len(lines), h)
	}
	for i, line := range lines {
		if n := ansi.StringWidth(line); n > w {
			t.Errorf("line %d is %d cells wide (> %d): %q", i+1, n, w, line)
		}
	}
	if colourSGR.MatchString(v) {
		t.Errorf("colour is off, yet the view holds colour escape sequences")
	}
}
