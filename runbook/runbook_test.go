package runbook_test

import (
	"errors"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/refdoctor/refdoctor/probe"
	"github.com/refdoctor/refdoctor/runbook"
)

func mustLoad(t *testing.T) *runbook.Book {
	t.Helper()
	b, err := runbook.Load()
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return b
}

// TestEmbeddedBook checks the embedded runbook as the operator meets it:
// every symptom leads to a step, every check kind exists, every seed topic
// is there, and the compatibility table agrees with the probe's matrix.
func TestEmbeddedBook(t *testing.T) {
	t.Parallel()
	b := mustLoad(t)
	steps := map[string]runbook.Step{}
	for _, s := range b.Steps {
		steps[s.ID] = s
		if !slices.Contains(runbook.CheckKinds(), s.Check.Kind) {
			t.Errorf("step %s: check kind %q does not exist", s.ID, s.Check.Kind)
		}
		if got, ok := b.Step(s.ID); !ok || got.Title != s.Title {
			t.Errorf("Step(%q) = %v, %v", s.ID, got.Title, ok)
		}
		if strings.Contains(s.Explanation, "\n") && !strings.Contains(s.Explanation, "\n\n") {
			t.Errorf("step %s: explanation keeps hard line breaks", s.ID)
		}
	}
	for _, sym := range b.Symptoms {
		if _, ok := steps[sym.Step]; !ok {
			t.Errorf("symptom %s leads to missing step %q", sym.ID, sym.Step)
		}
	}
	// The older runbook's sections and issues all carry over.
	for _, want := range []struct{ id, kind, section, title string }{
		{"check-export-logs", runbook.CheckLogs, runbook.SectionDiagnose, "Check the export logs"},
		{"check-metrics", runbook.CheckMetrics, runbook.SectionDiagnose, "Check the telemetry metrics"},
		{"probe-registry", runbook.CheckProbe, runbook.SectionDiagnose, "Test registry connectivity"},
		{"test-fallback-tags", runbook.CheckTags, runbook.SectionDiagnose, "Test fallback tag discovery"},
		{"issue-probe-failed", runbook.CheckProbeFailures, runbook.SectionIssue, "Failed to probe capabilities"},
		{"issue-no-referrers", runbook.CheckDiscover, runbook.SectionIssue, "No referrers found for image"},
		{"issue-checksum-mismatch", runbook.CheckBundleValidate, runbook.SectionIssue, "Referrer checksum mismatch during import"},
		{"issue-slow-discovery", runbook.CheckDiscover, runbook.SectionIssue, "Slow referrer discovery"},
		{"issue-partial-referrers", runbook.CheckDiscover, runbook.SectionIssue, "Partial referrers"},
		{"issue-discovery-timeout", runbook.CheckTiming, runbook.SectionIssue, "Discovery timeout"},
		{"check-compatibility", runbook.CheckCompat, runbook.SectionDiagnose, "compatibility table"},
		{"validate-bundle", runbook.CheckBundleValidate, runbook.SectionValidate, "Verify bundle referrers"},
		{"escalate", runbook.CheckDiag, runbook.SectionEscalate, "Escalate"},
	} {
		s, ok := steps[want.id]
		if !ok {
			t.Errorf("step %s missing", want.id)
			continue
		}
		if s.Check.Kind != want.kind || s.Section != want.section || !strings.Contains(s.Title, want.title) {
			t.Errorf("step %s = %s/%s %q, want %s/%s %q", want.id, s.Check.Kind, s.Section, s.Title, want.kind, want.section, want.title)
		}
	}
	if !steps["issue-no-referrers"].Check.Platforms || !steps["validate-bundle"].Check.CheckReferrers {
		t.Error("no-referrers must look at platforms and validate-bundle at referrers")
	}
	for _, id := range []string{"no-referrers", "discovery-timeout", "partial-referrers", "checksum-mismatch", "probe-failed", "slow-discovery"} {
		if !slices.ContainsFunc(b.Symptoms, func(s runbook.Symptom) bool { return s.ID == id }) {
			t.Errorf("symptom %s missing", id)
		}
	}
	matrix := probe.DefaultMatrix()
	var registries []string
	for _, r := range b.Compatibility {
		k, ok := matrix.Get(r.Kind)
		if !ok {
			t.Errorf("compatibility %s: kind %q not in the matrix", r.Registry, r.Kind)
			continue
		}
		if r.LastSeen != k.LastSeen {
			t.Errorf("compatibility %s: last_seen %s, matrix says %s", r.Registry, r.LastSeen, k.LastSeen)
		}
		registries = append(registries, r.Kind)
	}
	for _, kind := range []string{"dockerhub", "ghcr", "gar", "ecr", "acr", "harbor", "quay", "artifactory"} {
		if !slices.Contains(registries, kind) {
			t.Errorf("the older runbook's compatibility row for %s is missing", kind)
		}
	}
	if len(b.Escalation.Collect) < 4 || len(b.Escalation.Ticket) < 3 {
		t.Errorf("escalation checklist too short: %+v", b.Escalation)
	}
}

// TestCorrections: where the older runbook is wrong, the book says what is
// true, and no command repeats the older runbook's mistakes.
func TestCorrections(t *testing.T) {
	t.Parallel()
	b := mustLoad(t)
	for _, want := range []struct{ id, truth string }{
		{"referrers-404", "fall back"},
		{"referrers-501", "not in the distribution spec"},
		{"version-header", "Only probing /referrers tells"},
		{"compat-table-outdated", "Artifactory serves it from 7.90.1"},
		{"cli-name", "refdoctor bundle validate"},
	} {
		c, ok := b.Correction(want.id)
		if !ok {
			t.Errorf("correction %s missing", want.id)
			continue
		}
		if !strings.Contains(c.Truth, want.truth) {
			t.Errorf("correction %s truth lacks %q: %s", want.id, want.truth, c.Truth)
		}
	}
	probeStep, _ := b.Step("probe-registry")
	for _, id := range []string{"referrers-404", "referrers-501", "version-header"} {
		if !slices.Contains(probeStep.Corrections, id) {
			t.Errorf("probe-registry does not show correction %s", id)
		}
	}
	if got := b.CorrectionsFor(probeStep); len(got) != len(probeStep.Corrections) {
		t.Errorf("CorrectionsFor = %d, want %d", len(got), len(probeStep.Corrections))
	}
	for _, s := range b.Steps {
		for _, c := range s.Commands {
			for _, wrong := range []string{"OCI-Distribution-API-Version", "/var/log/"} {
				if strings.Contains(c.Template, wrong) {
					t.Errorf("step %s command %q repeats the older runbook's %q", s.ID, c.Title, wrong)
				}
			}
		}
	}
}

func TestParseIsStrict(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("runbook.toml")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := runbook.Parse(data); err != nil {
		t.Fatalf("Parse(runbook.toml): %v", err)
	}
	tests := []struct {
		name, edit, want string
	}{
		{"unknown top-level key", "subtitle = \"x\"\n" + string(data), "subtitle"},
		{"unknown key in a step", strings.Replace(string(data), "id = \"check-export-logs\"\n", "id = \"check-export-logs\"\nseverity = \"high\"\n", 1), "step.severity"},
		{"unknown key in a check", strings.Replace(string(data), "kind = \"logs\"\n", "kind = \"logs\"\nretries = 3\n", 1), "step.check.retries"},
		{"misspelt symptom field", strings.Replace(string(data), "likely_cause = \"Network trouble", "likely_causes = \"Network trouble", 1), "likely_causes"},
		{"not TOML", "title = \n", "line 1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := runbook.Parse([]byte(tc.edit))
			if err == nil || !errors.Is(err, runbook.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Parse error = %v, want ErrInvalid naming %q", err, tc.want)
			}
		})
	}
}

func TestValidateCatches(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		mutate func(b *runbook.Book)
		want   string
	}{
		{"symptom to a missing step", func(b *runbook.Book) { b.Symptoms[0].Step = "no-such-step" }, `leads to step "no-such-step"`},
		{"template that does not parse", func(b *runbook.Book) { b.Steps[2].Commands[0].Template = "curl {{.Registry" }, "unclosed action"},
		{"template with an unknown value", func(b *runbook.Book) { b.Steps[2].Commands[0].Template = "curl {{.Hostnmae}}" }, "Hostnmae"},
		{"unknown check kind", func(b *runbook.Book) { b.Steps[0].Check.Kind = "ping" }, `check kind "ping"`},
		{"unknown section", func(b *runbook.Book) { b.Steps[0].Section = "misc" }, `section "misc"`},
		{"duplicate step id", func(b *runbook.Book) { b.Steps[1].ID = b.Steps[0].ID }, "used twice"},
		{"next to a missing step", func(b *runbook.Book) { b.Steps[0].Next = append(b.Steps[0].Next, "nowhere") }, `next step "nowhere"`},
		{"missing correction", func(b *runbook.Book) { b.Steps[0].Corrections = []string{"no-such-fix"} }, `correction "no-such-fix" does not exist`},
		{"correction shown nowhere", func(b *runbook.Book) {
			b.Corrections = append(b.Corrections, runbook.Correction{ID: "orphan", Topic: "t", OlderSays: "s", Truth: "t", Source: "s"})
		}, `"orphan" is not shown`},
		{"compatibility kind not in matrix", func(b *runbook.Book) { b.Compatibility[0].Kind = "dockerhubb" }, `kind "dockerhubb"`},
		{"platforms on a probe check", func(b *runbook.Book) {
			for i := range b.Steps {
				if b.Steps[i].Check.Kind == runbook.CheckProbe {
					b.Steps[i].Check.Platforms = true
					return
				}
			}
		}, "platforms only applies"},
		{"bad id", func(b *runbook.Book) { b.Symptoms[0].ID = "No Referrers" }, "not lowercase words"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := mustLoad(t)
			tc.mutate(b)
			err := b.Validate()
			if err == nil || !errors.Is(err, runbook.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate = %v, want ErrInvalid naming %q", err, tc.want)
			}
		})
	}
}

func TestTargetsComplete(t *testing.T) {
	t.Parallel()
	digest := "sha256:" + strings.Repeat("0f", 32)
	tests := []struct {
		name                   string
		in                     runbook.Targets
		registries             []string
		repository, wantDigest string
	}{
		{"tag", runbook.Targets{Image: "registry.example.com/team/app:1.2"}, []string{"registry.example.com"}, "team/app", ""},
		{"digest", runbook.Targets{Image: "localhost:5000/demo/app@" + digest}, []string{"localhost:5000"}, "demo/app", digest},
		{"registries kept", runbook.Targets{Registries: []string{"ghcr.io"}, Image: "quay.io/org/app:1"}, []string{"ghcr.io"}, "org/app", ""},
		{"repository kept", runbook.Targets{Image: "quay.io/org/app:1", Repository: "other/repo"}, []string{"quay.io"}, "other/repo", ""},
		{"docker hub library", runbook.Targets{Image: "docker.io/alpine:3"}, []string{"docker.io"}, "library/alpine", ""},
		{"nothing", runbook.Targets{}, nil, "", ""},
		{"bad image left alone", runbook.Targets{Image: "alpine"}, nil, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := tc.in.Complete()
			if !slices.Equal(got.Registries, tc.registries) || got.Repository != tc.repository || got.Digest != tc.wantDigest {
				t.Errorf("Complete = %+v", got)
			}
		})
	}
	if err := (runbook.Targets{Registries: []string{"https://x"}}).Validate(); err == nil {
		t.Error("Validate accepted a scheme in a registry")
	}
	if err := (runbook.Targets{Image: "alpine"}).Validate(); err == nil {
		t.Error("Validate accepted an image without a registry")
	}
}

func TestRenderFillsTargets(t *testing.T) {
	t.Parallel()
	b := mustLoad(t)
	step, _ := b.Step("probe-registry")
	digest := "sha256:" + strings.Repeat("ab", 32)
	full := runbook.Targets{Image: "127.0.0.1:5000/demo/app@" + digest, PlainHTTP: []string{"127.0.0.1:5000"}}
	cmds, err := step.Render(full)
	if err != nil {
		t.Fatal(err)
	}
	text := joinCommands(cmds)
	for _, want := range []string{
		`"http://127.0.0.1:5000/v2/demo/app/referrers/` + digest + `"`,
		"refdoctor --plain-http 127.0.0.1:5000 probe --exchanges 127.0.0.1:5000/demo/app",
		"oras discover --plain-http --distribution-spec v1.1-referrers-api 127.0.0.1:5000/demo/app@" + digest,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("rendered commands lack %q:\n%s", want, text)
		}
	}
	cmds, _ = step.Render(runbook.Targets{Image: "registry.example.com/team/app:1"})
	if text := joinCommands(cmds); !strings.Contains(text, "https://registry.example.com/v2/team/app/referrers/<digest>") || strings.Contains(text, "--plain-http") {
		t.Errorf("TLS host rendered wrongly:\n%s", text)
	}
	cmds, _ = step.Render(runbook.Targets{})
	if text := joinCommands(cmds); !strings.Contains(text, runbook.PlaceholderRegistry) || !strings.Contains(text, runbook.PlaceholderRepository) {
		t.Errorf("missing targets lack placeholders:\n%s", text)
	}
	fb, _ := b.Step("test-fallback-tags")
	cmds, _ = fb.Render(full)
	if !strings.Contains(joinCommands(cmds), "/manifests/sha256-"+strings.Repeat("ab", 32)) {
		t.Errorf("fallback tag not rendered:\n%s", joinCommands(cmds))
	}
	tls, _ := b.Step("issue-probe-failed")
	cmds, _ = tls.Render(runbook.Targets{Registries: []string{"registry.example.com"}})
	if !strings.Contains(joinCommands(cmds), "-connect registry.example.com:443 -servername registry.example.com") {
		t.Errorf("openssl line wrong:\n%s", joinCommands(cmds))
	}
}

func joinCommands(cmds []runbook.RenderedCommand) string {
	var lines []string
	for _, c := range cmds {
		lines = append(lines, c.Text)
	}
	return strings.Join(lines, "\n")
}

// TestPlaceholdersAreQuoted: a command copied with placeholders still in it
// must not turn <registry> into a shell redirection.
func TestPlaceholdersAreQuoted(t *testing.T) {
	t.Parallel()
	b := mustLoad(t)
	for _, s := range b.Steps {
		cmds, err := s.Render(runbook.Targets{})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cmds {
			if pos := unquotedAngle(c.Text); pos >= 0 {
				t.Errorf("step %s, %q: unquoted '<' at %d in %s", s.ID, c.Title, pos, c.Text)
			}
		}
	}
}

// unquotedAngle returns the position of a '<' outside quotes that is not a
// here-document or </dev/null, or -1.
func unquotedAngle(s string) int {
	var quote rune
	for i, r := range s {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			}
		case r == '\'' || r == '"':
			quote = r
		case r == '<':
			if strings.HasPrefix(s[i:], "<<'EOF'") || strings.HasPrefix(s[i:], "</dev/null") || (i > 0 && s[i-1] == '<') {
				continue
			}
			return i
		}
	}
	return -1
}

// TestCompatibilityTableCoversTheMatrix: the table runbook list prints has
// a row for every kind of the known-registry matrix, the older runbook's
// rows first and unchanged.
func TestCompatibilityTableCoversTheMatrix(t *testing.T) {
	t.Parallel()
	b, err := runbook.Load()
	if err != nil {
		t.Fatal(err)
	}
	rows := b.CompatibilityTable()
	for i, r := range b.Compatibility {
		if rows[i] != r {
			t.Errorf("row %d changed: %+v", i, rows[i])
		}
	}
	kinds := map[string]runbook.CompatRow{}
	for _, r := range rows {
		kinds[r.Kind] = r
	}
	for _, k := range probe.DefaultMatrix().Kinds {
		r, ok := kinds[k.Key]
		if !ok {
			t.Errorf("matrix kind %s has no row", k.Key)
			continue
		}
		if r.Registry == "" || r.Now == "" || r.LastSeen == "" || r.Fallback == "" {
			t.Errorf("row for %s is incomplete: %+v", k.Key, r)
		}
	}
	if r := kinds["olareg"]; r.OlderSaid != "(not in the older runbook)" || !strings.HasPrefix(r.Now, "Referrers API supported") {
		t.Errorf("olareg row %+v", r)
	}
}

// TestCommandLanguages: a command is either a shell command line, which
// starts with a program an operator has, or says what else it is (a TOML
// snippet, a PromQL query), so that no screen shows it after a $ prompt.
func TestCommandLanguages(t *testing.T) {
	programs := map[string]bool{"refdoctor": true, "curl": true, "oras": true, "crane": true, "regctl": true, "docker": true,
		"grep": true, "tar": true, "sha256sum": true, "openssl": true, "time": true}
	b := mustLoad(t)
	langs := map[string]int{}
	for _, s := range b.Steps {
		cmds, err := s.Render(runbook.Targets{Image: "registry.example.com/team/app:1.2"})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cmds {
			langs[c.Lang]++
			first := strings.Fields(c.Text)[0]
			if c.Shell() != programs[first] {
				t.Errorf("step %s, %q: shell %v, but it starts with %q:\n%s", s.ID, c.Title, c.Shell(), first, c.Text)
			}
		}
	}
	if langs["toml"] == 0 || langs["promql"] < 3 {
		t.Errorf("languages %v: the config snippet and the three PromQL queries are marked", langs)
	}
}
