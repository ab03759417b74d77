package runbook_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/refdoctor/refdoctor/bundle"
	"github.com/refdoctor/refdoctor/bundle/signing"
	"github.com/refdoctor/refdoctor/discovery"
	"github.com/refdoctor/refdoctor/finding"
	"github.com/refdoctor/refdoctor/lab"
	"github.com/refdoctor/refdoctor/lab/labtest"
	"github.com/refdoctor/refdoctor/runbook"
	"github.com/refdoctor/refdoctor/telemetry"
)

// labEngine is an engine against the lab: its config (plain HTTP hosts),
// its logins, and no docker credentials from the machine running the test.
func labEngine(t *testing.T, l *lab.Lab, targets runbook.Targets, extra ...runbook.Opt) *runbook.Engine {
	t.Helper()
	copts := l.ClientOpts()
	cfg := l.Config()
	cfg.Export.ReferrerDiscovery.TimeoutSeconds = 20
	for _, r := range l.Registries {
		if r.PlainHTTP {
			targets.PlainHTTP = append(targets.PlainHTTP, r.Host)
		}
	}
	opts := append([]runbook.Opt{runbook.WithConfig(cfg), runbook.WithClientOpts(copts...),
		runbook.WithDiagOutput(t.TempDir() + "/diag.tgz")}, extra...)
	return runbook.NewEngine(mustLoad(t), targets, opts...)
}

// commandText is every command of a result, one a line.
func commandText(r runbook.Result) string {
	var b strings.Builder
	for _, c := range r.Commands {
		b.WriteString(c.Text + "\n")
	}
	return b.String()
}

func hasCode(fs []finding.Finding, code finding.Code) bool {
	for _, f := range fs {
		if f.Code == code {
			return true
		}
	}
	return false
}

// TestEngineAgainstTheLab runs the probe, discover and tags steps against
// an OCI 1.1 registry and a GHCR-like one that answers 404 on /referrers.
func TestEngineAgainstTheLab(t *testing.T) {
	t.Parallel()
	l := labtest.StartT(t,
		lab.Spec{Name: "oci11", Profile: lab.ProfileOCI11},
		lab.Spec{Name: "ghcr", Profile: lab.ProfileFallback404},
		lab.Spec{Name: "hub", Profile: lab.ProfileRateLimit, RateBudget: 0},
		lab.Spec{Name: "olareg-405", Profile: lab.ProfileNoAPI405},
		lab.Spec{Name: "slow", Profile: lab.ProfileSlow, Delay: 150 * time.Millisecond},
	)
	oci, _ := l.Get("oci11")
	ghcr, _ := l.Get("ghcr")
	hub, _ := l.Get("hub")
	no405, _ := l.Get("olareg-405")
	slow, _ := l.Get("slow")
	tests := []struct {
		name       string
		targets    runbook.Targets
		step       string
		status     runbook.Status
		incomplete bool
		summary    string
		check      func(t *testing.T, r runbook.Result)
	}{
		{"probe OCI 1.1", runbook.Targets{Image: l.Seed.Ref(oci.Host)}, "probe-registry", runbook.StatusPassed, false, "1 registry probed: 1 supported.", func(t *testing.T, r runbook.Result) {
			if r.Probe == nil || len(r.Probe.Registries) != 1 || r.Probe.Registries[0].Repository != l.Seed.Repository {
				t.Errorf("probe report %+v", r.Probe)
			}
			// The image was given by tag: its commands carry the digest
			// the tag points to, not a <digest> placeholder.
			if text := commandText(r); !strings.Contains(text, l.Seed.Index) || strings.Contains(text, runbook.PlaceholderDigest) {
				t.Errorf("commands not filled with the image's digest %s:\n%s", l.Seed.Index, text)
			}
		}},
		{"probe fallback", runbook.Targets{Registries: []string{ghcr.Host + "/" + l.Seed.Repository}}, "probe-registry", runbook.StatusWarned, false, "1 registry probed: 1 unsupported.", func(t *testing.T, r runbook.Result) {
			if !hasCode(r.Findings, finding.ReferrersNotFound) {
				t.Errorf("findings %+v", r.Findings)
			}
		}},
		{"probe failures: none, image merges with its bare host", runbook.Targets{Registries: []string{oci.Host, ghcr.Host + "/" + l.Seed.Repository}, Image: l.Seed.IndexRef(oci.Host)}, "issue-probe-failed", runbook.StatusPassed, false, "Every probe reached a verdict (2 registries)", func(t *testing.T, r runbook.Result) {
			if got := r.Probe.Registries[0]; got.Target != l.Seed.IndexRef(oci.Host) {
				t.Errorf("first target %s, want the image's repository and digest", got.Target)
			}
			if len(r.Failures) != 0 {
				t.Errorf("failures %+v", r.Failures)
			}
		}},
		{"probe failures: the throttled one, and why", runbook.Targets{Registries: []string{oci.Host + "/" + l.Seed.Repository, hub.Host + "/" + l.Seed.Repository}}, "issue-probe-failed", runbook.StatusFailed, true, "1 of 2 registries could not be probed: " + hub.Host + " (rate limit).", func(t *testing.T, r runbook.Result) {
			if len(r.Failures) != 1 || r.Failures[0].Registry != hub.Host || r.Failures[0].Code != finding.ReferrersRateLimited {
				t.Errorf("failures %+v", r.Failures)
			}
		}},
		{"probe throttled", runbook.Targets{Registries: []string{hub.Host + "/" + l.Seed.Repository}}, "probe-registry", runbook.StatusFailed, true, "Could not reach a verdict for " + hub.Host, nil},
		{"timing names the slow registry", runbook.Targets{Registries: []string{oci.Host + "/" + l.Seed.Repository, slow.Host + "/" + l.Seed.Repository}}, "issue-discovery-timeout", runbook.StatusPassed, false, "Slowest: " + slow.Host, func(t *testing.T, r runbook.Result) {
			tr := r.Timing
			if tr == nil || tr.Slowest != slow.Host || len(tr.Registries) != 2 || tr.TimeoutMS != 20000 {
				t.Fatalf("timing %+v", tr)
			}
			// Every request to the slow registry waits 150ms: its slowest
			// request and its total say so, whatever the machine.
			got := tr.Registries[0]
			if got.Registry != slow.Host || got.Requests < 2 || got.SlowestMS < 150 || got.TotalMS < int64(got.Requests)*150 || got.SlowestRequest == "" {
				t.Errorf("slow registry timing %+v", got)
			}
		}},
		{"compat: expected against observed", runbook.Targets{Registries: []string{oci.Host + "/" + l.Seed.Repository, no405.Host + "/" + l.Seed.Repository}}, "check-compatibility", runbook.StatusWarned, false, "1 of 2 registries differ from the compatibility table: " + no405.Host + ".", func(t *testing.T, r runbook.Result) {
			if len(r.Compat) != 2 {
				t.Fatalf("compat %+v", r.Compat)
			}
			for _, c := range r.Compat {
				differs := c.Registry == no405.Host
				if c.Agrees == nil || *c.Agrees == differs || c.Expected != "supported" {
					t.Errorf("compat line %+v", c)
				}
			}
			if !hasCode(r.Findings, finding.ExpectationMismatch) {
				t.Errorf("findings %+v", r.Findings)
			}
		}},
		{"discover OCI 1.1", runbook.Targets{Image: l.Seed.Ref(oci.Host)}, "issue-no-referrers", runbook.StatusPassed, false, "through the referrers API", func(t *testing.T, r runbook.Result) {
			if r.Discovery == nil || r.Discovery.Method != discovery.MethodAPI || r.Discovery.Count() < len(l.Seed.Referrers) || len(r.Discovery.Platforms) != 2 {
				t.Errorf("discovery %+v", r.Discovery)
			}
			// The commands name the digest and a referrer discovery found.
			text := commandText(r)
			if !strings.Contains(text, l.Seed.Index) || !strings.Contains(text, r.Discovery.Referrers[0].Digest) || strings.Contains(text, "<") {
				t.Errorf("commands not filled with what discovery found:\n%s", text)
			}
		}},
		{"discover fallback", runbook.Targets{Image: l.Seed.Ref(ghcr.Host)}, "issue-partial-referrers", runbook.StatusWarned, false, "through the fallback tag schema", func(t *testing.T, r runbook.Result) {
			if r.Discovery.Method != discovery.MethodTags || !hasCode(r.Findings, finding.FallbackTagDiscovery) {
				t.Errorf("method %s findings %+v", r.Discovery.Method, r.Findings)
			}
		}},
		{"discover missing image", runbook.Targets{Image: oci.Host + "/demo/nope:v9"}, "issue-no-referrers", runbook.StatusFailed, false, "", func(t *testing.T, r runbook.Result) {
			if !hasCode(r.Findings, finding.ImageNotFound) {
				t.Errorf("findings %+v", r.Findings)
			}
		}},
		{"discover without image", runbook.Targets{Registries: []string{oci.Host}}, "issue-no-referrers", runbook.StatusSkipped, false, "No image given: pass --image", nil},
		{"tags OCI 1.1", runbook.Targets{Image: l.Seed.Ref(oci.Host)}, "test-fallback-tags", runbook.StatusPassed, false, "0 fallback index, 3 cosign-style", nil},
		{"tags fallback", runbook.Targets{Registries: []string{ghcr.Host + "/" + l.Seed.Repository}}, "test-fallback-tags", runbook.StatusPassed, false, "2 fallback index", func(t *testing.T, r runbook.Result) {
			if r.Tags == nil || len(r.Tags.Subjects) != 2 {
				t.Errorf("tags %+v", r.Tags)
			}
		}},
		{"tags without repository", runbook.Targets{Registries: []string{oci.Host}}, "test-fallback-tags", runbook.StatusSkipped, false, "No repository given", nil},
		{"probe without targets", runbook.Targets{}, "probe-registry", runbook.StatusSkipped, false, "No registry given", nil},
		{"logs without file", runbook.Targets{}, "check-export-logs", runbook.StatusSkipped, false, "No export log given", nil},
		{"bundle without file", runbook.Targets{}, "validate-bundle", runbook.StatusSkipped, false, "No bundle given", nil},
		{"bundle that does not exist", runbook.Targets{Bundle: "no-such-bundle.tgz"}, "validate-bundle", runbook.StatusFailed, false, "could not be validated", nil},
		{"metrics before anything", runbook.Targets{}, "check-metrics", runbook.StatusPassed, false, "Only the counters of this run of refdoctor", func(t *testing.T, r runbook.Result) {
			if !strings.Contains(r.Summary, "no samples yet") || !hasCode(r.Findings, finding.NoTelemetry) || r.Prometheus != nil {
				t.Errorf("without Prometheus the step must say it shows only this run's counters and how to point it at Prometheus: %q %+v", r.Summary, r.Findings)
			}
		}},
		{"unknown step", runbook.Targets{}, "no-such-step", runbook.StatusFailed, false, "No such step", func(t *testing.T, r runbook.Result) {
			if !strings.Contains(r.Error, "probe-registry") {
				t.Errorf("error does not list the steps: %s", r.Error)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := labEngine(t, l, tc.targets)
			var mu sync.Mutex
			var events []runbook.Event
			res := e.Run(context.Background(), tc.step, func(ev runbook.Event) {
				mu.Lock()
				defer mu.Unlock()
				events = append(events, ev)
			})
			if res.Status != tc.status || res.Incomplete != tc.incomplete || !strings.Contains(res.Summary, tc.summary) {
				t.Fatalf("Run(%s) = %s (incomplete %v) %q, want %s (incomplete %v) with %q; findings %+v",
					tc.step, res.Status, res.Incomplete, res.Summary, tc.status, tc.incomplete, tc.summary, res.Findings)
			}
			if res.Step != tc.step || res.StartedAt.IsZero() || res.Findings == nil {
				t.Errorf("result header %+v", res)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(events) < 2 || events[0].Kind != runbook.EventStarted || events[len(events)-1].Kind != runbook.EventFinished {
				t.Fatalf("events %+v", events)
			}
			if last := events[len(events)-1]; last.Result == nil || last.Result.Status != res.Status || last.Step != tc.step {
				t.Errorf("finished event %+v", last)
			}
			if tc.check != nil {
				tc.check(t, res)
			}
		})
	}
}

// TestRunAll runs the whole book: results in book order, identical checks
// run once, and the metrics step reports what this run counted.
func TestRunAll(t *testing.T) {
	t.Parallel()
	l := labtest.StartT(t, lab.Spec{Name: "oci11", Profile: lab.ProfileOCI11})
	oci, _ := l.Get("oci11")
	m := telemetry.NewMetrics()
	e := labEngine(t, l, runbook.Targets{Image: l.Seed.Ref(oci.Host)}, runbook.WithMetrics(m))
	var finished []string
	results := e.RunAll(context.Background(), func(ev runbook.Event) {
		if ev.Kind == runbook.EventFinished {
			finished = append(finished, ev.Step)
		}
	})
	b := e.Book()
	if len(results) != len(b.Steps) || len(finished) != len(b.Steps) {
		t.Fatalf("%d results, %d finished events, %d steps", len(results), len(finished), len(b.Steps))
	}
	byStep := map[string]runbook.Result{}
	for i, r := range results {
		if r.Step != b.Steps[i].ID {
			t.Errorf("result %d is %s, want %s", i, r.Step, b.Steps[i].ID)
		}
		byStep[r.Step] = r
		if r.Status == runbook.StatusFailed {
			t.Errorf("%s failed: %s %s", r.Step, r.Summary, r.Error)
		}
	}
	if finished[len(finished)-1] != "check-metrics" {
		t.Errorf("metrics should finish last, order %v", finished)
	}
	// The probe-based steps read one probe: the same probe time in each.
	probed := byStep["probe-registry"].Probe.Registries[0].ProbedAt
	for _, id := range []string{"check-compatibility", "issue-probe-failed", "issue-discovery-timeout"} {
		if r := byStep[id]; r.Probe == nil || !r.Probe.Registries[0].ProbedAt.Equal(probed) {
			t.Errorf("%s did not reuse the probe: %+v", id, r)
		}
	}
	if r := byStep["check-metrics"]; r.Status != runbook.StatusPassed || len(r.Metrics) == 0 || !strings.Contains(r.Summary, "supported") {
		t.Errorf("metrics %+v", r)
	}
	if r := byStep["escalate"]; r.Diag == nil || r.Diag.Bytes == 0 {
		t.Errorf("escalate %+v", r)
	}
}

// TestBundleValidatorHook covers the plug-in point the bundle package uses:
// results, progress events, and a panicking validator.
func TestBundleValidatorHook(t *testing.T) {
	t.Parallel()
	b := mustLoad(t)
	bad := finding.Finding{Severity: finding.SeverityError, Code: finding.ReferrerChecksumMismatch, Summary: "referrers/sha256-a/sha256-b.json changed"}
	tests := []struct {
		name       string
		validator  runbook.BundleValidator
		status     runbook.Status
		incomplete bool
		errText    string
	}{
		{"whole", func(ctx context.Context, path string, checkReferrers bool, progress func(float64)) (any, bool, []finding.Finding, error) {
			if !checkReferrers || path != "b.tgz" {
				return nil, false, nil, errors.New("wrong arguments")
			}
			progress(0.5)
			progress(1)
			return map[string]int{"files_checked": 3}, true, nil, nil
		}, runbook.StatusPassed, false, ""},
		{"tampered", func(ctx context.Context, path string, checkReferrers bool, progress func(float64)) (any, bool, []finding.Finding, error) {
			return nil, false, []finding.Finding{bad}, nil
		}, runbook.StatusFailed, false, ""},
		{"unreadable", func(ctx context.Context, path string, checkReferrers bool, progress func(float64)) (any, bool, []finding.Finding, error) {
			return nil, false, nil, errors.New("open b.tgz: no such file")
		}, runbook.StatusFailed, false, "no such file"},
		{"panics", func(ctx context.Context, path string, checkReferrers bool, progress func(float64)) (any, bool, []finding.Finding, error) {
			panic("validator bug")
		}, runbook.StatusFailed, false, "validator bug"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := runbook.NewEngine(b, runbook.Targets{Bundle: "b.tgz"}, runbook.WithBundleValidator(tc.validator))
			var progress []float64
			res := e.Run(context.Background(), "validate-bundle", func(ev runbook.Event) {
				if ev.Kind == runbook.EventProgress {
					progress = append(progress, ev.Fraction)
				}
				if ev.Kind == runbook.EventFinished {
					panic("a listener that panics must not break the engine")
				}
			})
			if res.Status != tc.status || res.Incomplete != tc.incomplete || !strings.Contains(res.Error, tc.errText) {
				t.Fatalf("result %+v", res)
			}
			if tc.name == "whole" && (len(progress) != 2 || res.Bundle == nil) {
				t.Errorf("progress %v bundle %v", progress, res.Bundle)
			}
			if tc.name == "tampered" && !hasCode(res.Findings, finding.ReferrerChecksumMismatch) {
				t.Errorf("findings %+v", res.Findings)
			}
		})
	}
}

func TestCanceledRunIsIncomplete(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	e := runbook.NewEngine(mustLoad(t), runbook.Targets{Registries: []string{"127.0.0.1:1"}})
	res := e.Run(ctx, "probe-registry", nil)
	if res.Status != runbook.StatusFailed || !res.Incomplete {
		t.Fatalf("result %+v", res)
	}
}

// TestBundleSteps runs the validation step on the lab's good and tampered
// bundles with the real validator.
func TestBundleSteps(t *testing.T) {
	t.Parallel()
	l := labtest.StartT(t, lab.Spec{Name: "oci11", Profile: lab.ProfileOCI11})
	b, err := l.WriteBundles(context.Background(), "oci11")
	if err != nil {
		t.Fatal(err)
	}
	good := labEngine(t, l, runbook.Targets{Bundle: b.Good}).Run(context.Background(), "validate-bundle", nil)
	if good.Status != runbook.StatusPassed || !strings.Contains(good.Summary, "is whole") {
		t.Fatalf("good bundle: %s %q %v", good.Status, good.Summary, good.Findings)
	}
	bad := labEngine(t, l, runbook.Targets{Bundle: b.Tampered}).Run(context.Background(), "issue-checksum-mismatch", nil)
	if bad.Status != runbook.StatusFailed || len(bad.Findings) == 0 || bad.Findings[0].Code != finding.ReferrerChecksumMismatch || bad.Findings[0].Remedy == "" {
		t.Fatalf("tampered bundle: %s %q %+v", bad.Status, bad.Summary, bad.Findings)
	}
}

// TestRunAllLeavesNoSupportBundle: a full run skips the support bundle
// unless a path was given, and says how to write one and where it goes.
func TestRunAllLeavesNoSupportBundle(t *testing.T) {
	t.Parallel()
	e := runbook.NewEngine(mustLoad(t), runbook.Targets{})
	results := e.RunAll(context.Background(), nil)
	for _, r := range results {
		if r.Step != "escalate" {
			continue
		}
		if r.Status != runbook.StatusSkipped || r.Diag != nil || !strings.Contains(r.Summary, "runbook run escalate") || !strings.Contains(r.Summary, "working folder") {
			t.Errorf("escalate in a full run: %+v", r)
		}
		return
	}
	t.Fatal("no escalate result")
}

// TestBundleStepWithKeys: with [bundle] verify_keys the validation step
// verifies the bundle's signature and the image signatures inside it;
// another key fails it with UnknownKey.
func TestBundleStepWithKeys(t *testing.T) {
	t.Parallel()
	l := labtest.StartT(t, lab.Spec{Name: "oci11", Profile: lab.ProfileOCI11})
	b, err := l.WriteBundles(context.Background(), "oci11")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	newKey := func(name string) (*signing.SigningKey, string) {
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		der, _ := x509.MarshalPKCS8PrivateKey(priv)
		k, err := signing.ParseSigningKey(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil)
		if err != nil {
			t.Fatal(err)
		}
		pubPEM, _ := k.Public().PEM()
		p := filepath.Join(dir, name+".pub")
		if err := os.WriteFile(p, pubPEM, 0o644); err != nil {
			t.Fatal(err)
		}
		return k, p
	}
	key, pub := newKey("export")
	_, other := newKey("other")
	if _, err := bundle.AttachSignature(context.Background(), b.Good, key.SignManifest, false); err != nil {
		t.Fatal(err)
	}
	withKeys := func(keys ...string) runbook.Opt {
		cfg := l.Config()
		cfg.Bundle.VerifyKeys = keys
		return runbook.WithConfig(cfg)
	}
	res := labEngine(t, l, runbook.Targets{Bundle: b.Good}, withKeys(pub)).Run(context.Background(), "validate-bundle", nil)
	// The seeded index carries a .sig that no key made: a warning.
	if res.Status != runbook.StatusWarned || !strings.Contains(res.Summary, "Signed by key "+key.Fingerprint()+", verified.") ||
		!strings.Contains(res.Summary, "Image signatures: 1 unknown-key.") || !hasCode(res.Findings, finding.ImageSignatureUnknownKey) {
		t.Fatalf("signed bundle, right key: %s %q %+v", res.Status, res.Summary, res.Findings)
	}
	rep, ok := res.Bundle.(*bundle.Report)
	if !ok || len(rep.ImageSignatures) != 1 || rep.ImageSignatures[0].Subject != l.Seed.Index {
		t.Fatalf("the step's report: %#v", res.Bundle)
	}
	res = labEngine(t, l, runbook.Targets{Bundle: b.Good}, withKeys(other)).Run(context.Background(), "validate-bundle", nil)
	if res.Status != runbook.StatusFailed || !hasCode(res.Findings, finding.UnknownKey) || !strings.Contains(res.Summary, "Signature: UnknownKey.") {
		t.Fatalf("signed bundle, another key: %s %q %+v", res.Status, res.Summary, res.Findings)
	}
	res = labEngine(t, l, runbook.Targets{Bundle: b.Good}).Run(context.Background(), "validate-bundle", nil)
	if res.Status != runbook.StatusPassed || !strings.Contains(res.Summary, "Signed, not verified") {
		t.Fatalf("signed bundle, no key: %s %q %+v", res.Status, res.Summary, res.Findings)
	}
}
