package cli_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/refdoctor/refdoctor/lab"
	"github.com/refdoctor/refdoctor/lab/labtest"
)

// labArgs are global flags that reach every lab registry over plain HTTP
// with no capability cache and no docker logins from the machine.
func labArgs(t *testing.T, l *lab.Lab) []string {
	t.Helper()
	dir := t.TempDir()
	cfg := "[cache]\ncapabilities_ttl = \"0s\"\n"
	for _, r := range l.Registries {
		cfg += "[[registry]]\nhost = \"" + r.Host + "\"\nplain_http = true\nexpected = \"" + r.Expected + "\"\n"
	}
	return []string{"--config", writeFile(t, dir, "config.toml", cfg), "--timeout", "20s"}
}

func TestRunbookListAndShow(t *testing.T) {
	t.Parallel()
	digest := "sha256:" + strings.Repeat("ab", 32)
	tests := []struct {
		name string
		args []string
		code int
		out  []string
		err  []string
	}{
		{"list", []string{"runbook", "list"}, 0, []string{"SYMPTOM", "issue-no-referrers", "diagnose", "probe-registry", "escalate", "REGISTRY COMPATIBILITY", "Artifactory", "olareg [olareg]"}, nil},
		{"bare runbook lists", []string{"runbook"}, 0, []string{"SYMPTOM", "check-export-logs"}, nil},
		{"show fills targets", []string{"--plain-http", "127.0.0.1:5000", "runbook", "show", "probe-registry", "--image", "127.0.0.1:5000/demo/app@" + digest},
			0, []string{"http://127.0.0.1:5000/v2/demo/app/referrers/" + digest, "CORRECTS THE OLDER RUNBOOK", "fall back", "OCI-Distribution-API-Version", "COMMANDS", "NEXT"}, nil},
		{"show placeholders", []string{"runbook", "show", "validate-bundle"}, 0, []string{"'<bundle.tgz>'", "refdoctor bundle validate"}, nil},
		{"show escalation checklist", []string{"runbook", "show", "escalate"}, 0, []string{"COLLECT", "OPEN A TICKET WITH"}, nil},
		{"unknown step", []string{"runbook", "show", "nope"}, 2, nil, []string{`unknown step "nope"`, "probe-registry", "issue-no-referrers"}},
		{"unknown step to run", []string{"runbook", "run", "nope"}, 2, nil, []string{"valid steps"}},
		{"bad image", []string{"runbook", "run", "--image", "alpine"}, 2, nil, []string{"no registry host"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			code, out, errOut := run(t, tc.args...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout %s\nstderr %s", code, tc.code, out, errOut)
			}
			for _, w := range tc.out {
				if !strings.Contains(out, w) {
					t.Errorf("stdout lacks %q:\n%s", w, out)
				}
			}
			for _, w := range tc.err {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr lacks %q:\n%s", w, errOut)
				}
			}
			// Prose fits 80 columns; command lines stay whole to be copyable.
			commands := false
			for _, line := range strings.Split(out, "\n") {
				switch {
				case line == "COMMANDS":
					commands = true
				case strings.HasPrefix(line, "NEXT"):
					commands = false
				}
				if len([]rune(line)) > 80 && (!commands || strings.HasPrefix(line, "#")) {
					t.Errorf("prose wider than 80 columns: %q", line)
				}
			}
		})
	}
	code, out, _ := run(t, "runbook", "list", "-o", "json")
	var doc struct {
		Symptoms []map[string]any `json:"symptoms"`
		Steps    []map[string]any `json:"steps"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &doc) != nil || len(doc.Symptoms) == 0 || len(doc.Steps) == 0 || doc.Symptoms[0]["step"] == nil {
		t.Fatalf("list -o json: exit %d\n%s", code, out)
	}
}

func TestRunbookRun(t *testing.T) {
	t.Parallel()
	l := labtest.StartT(t,
		lab.Spec{Name: "oci11", Profile: lab.ProfileOCI11},
		lab.Spec{Name: "ghcr", Profile: lab.ProfileFallback404},
		lab.Spec{Name: "hub", Profile: lab.ProfileRateLimit, RateBudget: 0},
	)
	oci, _ := l.Get("oci11")
	ghcr, _ := l.Get("ghcr")
	hub, _ := l.Get("hub")
	tests := []struct {
		name string
		args []string
		code int
		out  []string
	}{
		{"probe passes", []string{"run", "probe-registry", "--image", l.Seed.Ref(oci.Host)}, 0, []string{"status   passed", "supported"}},
		{"fallback warns", []string{"run", "probe-registry", "--registry", ghcr.Host + "/demo/app"}, 0, []string{"status   warned", "ReferrersNotFound"}},
		{"throttled cannot complete", []string{"run", "probe-registry", "--registry", hub.Host + "/demo/app"}, 3, []string{"could not complete"}},
		{"missing image fails", []string{"run", "issue-no-referrers", "--image", oci.Host + "/demo/app:nope"}, 1, []string{"status   failed", "ImageNotFound"}},
		// A step asked for by name that lacks its input is not a pass.
		{"named step without its input", []string{"run", "issue-no-referrers"}, 2, nil},
		{"everything", []string{"run", "--image", l.Seed.Ref(oci.Host), "--diag-out", filepath.Join(t.TempDir(), "d.tgz")}, 0, []string{"same check as issue-partial-referrers",
			"EXPECTED", "OBSERVED", "AGREES", "SLOWEST REQUEST", "Every probe reached a verdict", "Support bundle written", "passed,"}},
		{"everything, no support bundle unless asked", []string{"run", "--image", l.Seed.Ref(oci.Host)}, 0, []string{"Not collected in a full run: refdoctor runbook run escalate", "working folder"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			args := append(append(labArgs(t, l), "runbook"), tc.args...)
			code, out, errOut := run(t, args...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout %s\nstderr %s", code, tc.code, out, errOut)
			}
			for _, w := range tc.out {
				if !strings.Contains(out, w) {
					t.Errorf("stdout lacks %q:\n%s", w, out)
				}
			}
		})
	}
	code, out, _ := run(t, append(labArgs(t, l), "-o", "json", "runbook", "run", "issue-no-referrers", "--image", l.Seed.Ref(ghcr.Host))...)
	var doc struct {
		Results []struct {
			Step      string         `json:"step"`
			Status    string         `json:"status"`
			Discovery map[string]any `json:"discovery"`
		} `json:"results"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &doc) != nil || len(doc.Results) != 1 || doc.Results[0].Status != "warned" || doc.Results[0].Discovery["method"] != "tags" {
		t.Fatalf("run -o json: exit %d\n%s", code, out)
	}
}

func TestLogsCommand(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	seed := writeFile(t, dir, "seed.log", "[INFO] Probing 2 registries for OCI referrer capabilities before export\n"+
		"[INFO] Registry gcr.io: OCI 1.1 (referrers API supported, version=OCI-Distribution/2.1, probe_ms=42)\n"+
		"[WARN] Registry ghcr.io: OCI 1.0 (using fallback tag discovery, version=registry/2.0, probe_ms=85)\n")
	failed := writeFile(t, dir, "failed.log", `time=2026-11-27T12:00:00Z level=INFO msg="Probing 1 registries for OCI referrer capabilities before export"`+"\n"+
		`time=2026-11-27T12:00:01Z level=WARN msg="Failed to probe capabilities for registry docker.io: ReferrersRateLimited (referrers API unknown, version=none, probe_ms=120)"`+"\n")
	tests := []struct {
		name string
		args []string
		code int
		out  []string
	}{
		{"clean log", []string{"logs", seed}, 0, []string{"PROBES", "gcr.io", "supported", "ghcr.io", "unsupported", "InventedVersionHeader", "FallbackTagDiscovery"}},
		{"failed probe", []string{"logs", failed}, 1, []string{"docker.io", "unknown (ReferrersRateLimited)", "FAILURES", "line 2 WARN"}},
		{"unreadable", []string{"logs", filepath.Join(dir, "missing.log")}, 2, nil},
		{"json", []string{"-o", "json", "logs", seed}, 0, []string{`"announced"`, `"probes"`, `"api": "supported"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			code, out, errOut := run(t, tc.args...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout %s\nstderr %s", code, tc.code, out, errOut)
			}
			for _, w := range tc.out {
				if !strings.Contains(out, w) {
					t.Errorf("stdout lacks %q:\n%s", w, out)
				}
			}
		})
	}
}

func TestDiagCollectCommand(t *testing.T) {
	t.Parallel()
	l := labtest.StartT(t, lab.Spec{Name: "oci11", Profile: lab.ProfileOCI11})
	oci, _ := l.Get("oci11")
	dir := t.TempDir()
	out := filepath.Join(dir, "diag.tgz")
	code, stdout, errOut := run(t, append(labArgs(t, l), "diag", "collect", "--out", out, "--registry", oci.Host, "--image", l.Seed.Ref(oci.Host))...)
	if code != 0 {
		t.Fatalf("exit %d: %s %s", code, stdout, errOut)
	}
	info, err := os.Stat(out)
	if err != nil || info.Mode().Perm() != 0o600 || !strings.Contains(stdout, "refdoctor-diag/probe.json") {
		t.Fatalf("stat %v %v\n%s", info, err, stdout)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"missing folder", []string{"diag", "collect", "--out", filepath.Join(dir, "nope", "d.tgz")}, "cannot write"},
		{"bad registry", []string{"diag", "collect", "--out", out, "--registry", "https://x"}, "drop the scheme"},
	} {
		code, _, errOut := run(t, tc.args...)
		if code != 2 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%s: exit %d, stderr %q", tc.name, code, errOut)
		}
	}
}
