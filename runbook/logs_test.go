package runbook_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/refdoctor/refdoctor/finding"
	"github.com/refdoctor/refdoctor/lab"
	"github.com/refdoctor/refdoctor/lab/labtest"
	"github.com/refdoctor/refdoctor/probe"
	"github.com/refdoctor/refdoctor/registry"
	"github.com/refdoctor/refdoctor/runbook"
	"github.com/refdoctor/refdoctor/telemetry"
)

func readLog(t *testing.T, text string) runbook.LogReport {
	t.Helper()
	rep, err := runbook.ReadLog(strings.NewReader(text))
	if err != nil {
		t.Fatalf("ReadLog: %v", err)
	}
	return rep
}

// TestReadLogOfARealProbe reads back what probe.Run logs through
// telemetry.NewLogger, against a supported, a fallback and a throttled
// registry.
func TestReadLogOfARealProbe(t *testing.T) {
	t.Parallel()
	l := labtest.StartT(t,
		lab.Spec{Name: "oci11", Profile: lab.ProfileOCI11},
		lab.Spec{Name: "ghcr", Profile: lab.ProfileFallback404},
		lab.Spec{Name: "hub", Profile: lab.ProfileRateLimit, RateBudget: 0},
	)
	var buf bytes.Buffer
	var targets []probe.Target
	want := map[string]string{}
	for _, r := range l.Registries {
		targets = append(targets, probe.Target{Host: r.Host, Repository: l.Seed.Repository})
		want[r.Host] = map[string]string{"oci11": runbook.LogAPISupported, "ghcr": runbook.LogAPIUnsupported, "hub": runbook.LogAPIUnknown}[r.Name]
	}
	_, err := probe.Run(context.Background(), targets, probe.WithConfig(l.Config()),
		probe.WithClientOpts(registry.WithoutDockerCreds()), probe.WithLogger(telemetry.NewLogger(&buf, slog.LevelInfo)))
	if err != nil {
		t.Fatal(err)
	}
	rep := readLog(t, buf.String())
	if len(rep.Announced) != 1 || rep.Announced[0] != 3 {
		t.Errorf("announced %v, want [3]\n%s", rep.Announced, buf.String())
	}
	if len(rep.Probes) != 3 {
		t.Fatalf("probes %+v, want 3\n%s", rep.Probes, buf.String())
	}
	for _, p := range rep.Probes {
		if want[p.Host] != p.API {
			t.Errorf("%s: api %s, want %s", p.Host, p.API, want[p.Host])
		}
		wantLevel := map[string]string{runbook.LogAPISupported: "INFO", runbook.LogAPIUnsupported: "WARN", runbook.LogAPIUnknown: "WARN"}[p.API]
		if p.Level != wantLevel || p.Line < 2 || p.Version == "" {
			t.Errorf("%s: level %s line %d version %q", p.Host, p.Level, p.Line, p.Version)
		}
		if p.API == runbook.LogAPIUnknown && p.Reason != "ReferrersRateLimited" {
			t.Errorf("%s: reason %q", p.Host, p.Reason)
		}
	}
	if len(rep.Failures) != 1 || rep.Unknown() != 1 {
		t.Errorf("failures %+v", rep.Failures)
	}
	for _, code := range []finding.Code{finding.FallbackTagDiscovery, finding.ProbeFailed} {
		if !hasCode(rep.Findings, code) {
			t.Errorf("finding %s missing: %+v", code, rep.Findings)
		}
	}
	if hasCode(rep.Findings, finding.ProbeCountMismatch) || hasCode(rep.Findings, finding.InventedVersionHeader) {
		t.Errorf("unexpected findings %+v", rep.Findings)
	}
}

// TestReadLogSeedExample reads the example output printed in the older
// runbook, "# " prefixes and all.
func TestReadLogSeedExample(t *testing.T) {
	t.Parallel()
	rep := readLog(t, `# Example output:
# [INFO] Probing 2 registries for OCI referrer capabilities before export
# [INFO] Registry gcr.io: OCI 1.1 (referrers API supported, version=OCI-Distribution/2.1, probe_ms=42)
# [WARN] Registry ghcr.io: OCI 1.0 (using fallback tag discovery, version=registry/2.0, probe_ms=85)
`)
	want := []runbook.LogProbe{
		{Host: "gcr.io", API: runbook.LogAPISupported, Version: "OCI-Distribution/2.1", ProbeMS: 42, Level: "INFO", Line: 3},
		{Host: "ghcr.io", API: runbook.LogAPIUnsupported, Version: "registry/2.0", ProbeMS: 85, Level: "WARN", Line: 4},
	}
	if len(rep.Announced) != 1 || rep.Announced[0] != 2 || len(rep.Probes) != 2 {
		t.Fatalf("report %+v", rep)
	}
	for i := range want {
		if rep.Probes[i] != want[i] {
			t.Errorf("probe %d = %+v, want %+v", i, rep.Probes[i], want[i])
		}
	}
	if len(rep.Failures) != 0 || rep.Lines != 4 {
		t.Errorf("failures %v lines %d", rep.Failures, rep.Lines)
	}
	if !hasCode(rep.Findings, finding.InventedVersionHeader) || !hasCode(rep.Findings, finding.FallbackTagDiscovery) || hasCode(rep.Findings, finding.ProbeCountMismatch) {
		t.Errorf("findings %+v", rep.Findings)
	}
	for _, f := range rep.Findings {
		if f.Code == finding.InventedVersionHeader && !strings.Contains(f.Cause, "does not exist") && !strings.Contains(f.Summary, "does not exist") {
			t.Errorf("the finding must say the header does not exist: %+v", f)
		}
	}
}

func TestReadLogFormatsAndFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		log       string
		probes    int
		failures  int
		announced []int
		codes     []finding.Code
	}{
		{
			name:      "slog text with a failed probe",
			log:       `time=2026-11-27T12:00:00Z level=INFO msg="Probing 2 registries for OCI referrer capabilities before export"` + "\n" + `time=2026-11-27T12:00:01Z level=WARN msg="Failed to probe capabilities for registry quay.example.com:8443: Timeout (referrers API unknown, version=none, probe_ms=30000)"` + "\n",
			probes:    1,
			failures:  1,
			announced: []int{2},
			codes:     []finding.Code{finding.ProbeFailed, finding.ProbeCountMismatch},
		},
		{
			name:      "slog json",
			log:       `{"time":"2026-11-27T12:00:00Z","level":"INFO","msg":"Probing 1 registries for OCI referrer capabilities before export"}` + "\n" + `{"time":"2026-11-27T12:00:00Z","level":"INFO","msg":"Registry zot.example.com: OCI 1.1 (referrers API supported, version=registry/2.0, probe_ms=12)"}` + "\n",
			probes:    1,
			announced: []int{1},
		},
		{
			name:      "discovery failures in plain lines",
			log:       "[INFO] Probing 1 registries for OCI referrer capabilities before export\n[INFO] Registry docker.io: OCI 1.1 (referrers API supported, version=registry/2.0, probe_ms=300)\n[WARN] Referrer discovery failed for docker.io/library/alpine:3: 429 Too Many Requests\n[ERROR] export aborted\n",
			probes:    1,
			failures:  2,
			announced: []int{1},
			codes:     []finding.Code{finding.DiscoveryFailures},
		},
		{
			name:      "refdoctor's own incomplete discovery line",
			log:       `level=DEBUG msg="Discovered 0 referrers for r.example.com/a:1 (sha256:ab) using api, requests=3, outcome=incomplete"` + "\n",
			failures:  1,
			announced: []int{},
			codes:     []finding.Code{finding.DiscoveryFailures, finding.NoProbeLines},
		},
		{
			name:      "not an export log",
			log:       "hello\nworld\n",
			announced: []int{},
			codes:     []finding.Code{finding.NoProbeLines},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rep := readLog(t, tc.log)
			if len(rep.Probes) != tc.probes || len(rep.Failures) != tc.failures || len(rep.Announced) != len(tc.announced) {
				t.Fatalf("report %+v", rep)
			}
			for _, c := range tc.codes {
				if !hasCode(rep.Findings, c) {
					t.Errorf("finding %s missing: %+v", c, rep.Findings)
				}
			}
		})
	}
}

// TestReadLogBoundsLines: a huge line is cut, not held, and the lines
// after it are still read.
func TestReadLogBoundsLines(t *testing.T) {
	t.Parallel()
	huge := "level=DEBUG msg=\"body " + strings.Repeat("x", 4*runbook.MaxLogLine) + "\"\n"
	rep := readLog(t, huge+"[INFO] Registry a.example: OCI 1.1 (referrers API supported, version=none, probe_ms=1)")
	if rep.Lines != 2 || rep.Truncated != 1 || len(rep.Probes) != 1 || rep.Probes[0].Line != 2 {
		t.Fatalf("report lines %d truncated %d probes %+v", rep.Lines, rep.Truncated, rep.Probes)
	}
}
