package cli_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/refdoctor/refdoctor/cli"
	"github.com/refdoctor/refdoctor/lab"
	"github.com/refdoctor/refdoctor/lab/labtest"
)

// run calls the CLI in process and returns exit code, stdout and stderr.
func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	code := cli.Run(ctx, args, strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestBadInputExitsTwo(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	unknownKey := writeFile(t, dir, "unknown.toml", "[export.referrer_discovery]\ntimeout_seconds = 10\nmax_concurent_discoveries = 3\n")
	badPort := writeFile(t, dir, "port.toml", "[[registry]]\nhost = \"registry.example.com:99999\"\n")
	badKind := writeFile(t, dir, "kind.toml", "# two registries\n[[registry]]\nhost = \"a.example\"\nexpected = \"harbor\"\n\n[[registry]]\nhost = \"b.example\"\n  expected = \"nonsense-kind\"  # a typo\n")
	tests := []struct {
		name string
		args []string
		want []string
		// help is whether stderr points to --help: only for errors in
		// how the command was called.
		help bool
	}{
		{"unparsable target", []string{"probe", "registry.example.com/Team/App"}, []string{"not a repository name"}, false},
		{"scheme in target", []string{"probe", "https://registry.example.com/team/app"}, []string{"drop the scheme"}, false},
		{"bad digest", []string{"probe", "registry.example.com/team/app@sha256:abc"}, []string{"not a digest"}, false},
		{"port out of range", []string{"probe", "registry.example.com:70000/team/app"}, []string{"port \"70000\" is out of range"}, false},
		{"unknown config key names key and line", []string{"--config", unknownKey, "probe", "localhost:5000/x"}, []string{"max_concurent_discoveries", "line 3"}, false},
		{"unknown expected kind names the line and the known kinds", []string{"--config", badKind, "probe"},
			[]string{"line 8", "registry[1] (b.example)", `expected = "nonsense-kind"`, "harbor", "olareg", "ghcr", "artifactory"}, false},
		{"config port out of range", []string{"--config", badPort, "probe", "localhost:5000/x"}, []string{"out of range"}, false},
		{"missing config file", []string{"--config", filepath.Join(dir, "nope.toml"), "probe", "localhost:5000/x"}, []string{"nope.toml"}, false},
		{"bad output format", []string{"-o", "yaml", "probe", "localhost:5000/x"}, []string{"use table or json"}, true},
		{"unknown flag", []string{"probe", "--nope", "localhost:5000/x"}, []string{"unknown flag", "Run 'refdoctor probe --help' for usage."}, true},
		{"no target", []string{"--config", writeFile(t, dir, "empty.toml", ""), "probe"}, []string{"refdoctor probe needs registries to probe, HOST, HOST/REPO or HOST/REPO@sha256:DIGEST, or [[registry]] entries in " + filepath.Join(dir, "empty.toml") + "; for example: refdoctor probe "}, true},
		{"discover without an image", []string{"discover"}, []string{"refdoctor discover needs one or more images, HOST/REPO:TAG or HOST/REPO@sha256:DIGEST, or - to read them from standard input; for example: refdoctor discover registry.example.com/team/app:1.2", "Run 'refdoctor discover --help' for usage."}, true},
		{"tags with two repositories", []string{"tags", "a.example/x", "b.example/y"}, []string{"refdoctor tags takes one repository, HOST/REPO, got 2: a.example/x b.example/y"}, true},
		{"a bundle as an argument", []string{"bundle", "inspect", "app.tgz"}, []string{"takes no arguments", "did you mean --file app.tgz?"}, true},
		{"unknown step", []string{"runbook", "show", "nope"}, []string{"unknown step \"nope\"", "probe-registry"}, true},
		{"unknown command", []string{"discovr"}, []string{"unknown command", "Run 'refdoctor --help' for usage."}, true},
		{"a bundle that does not exist", []string{"bundle", "validate", "--file", filepath.Join(dir, "nope.tgz")}, []string{"nope.tgz"}, false},
		{"bad plain-http host", []string{"--plain-http", "http://x", "probe", "localhost:5000/x"}, []string{"not a host name"}, true},
		{"bad log level", []string{"--log-level", "loud", "version"}, []string{"valid levels"}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			code, out, errOut := run(t, tc.args...)
			if code != 2 {
				t.Fatalf("exit %d, want 2; stdout %q stderr %q", code, out, errOut)
			}
			for _, w := range tc.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr %q lacks %q", errOut, w)
				}
			}
			if got := strings.Contains(errOut, "--help"); got != tc.help {
				t.Errorf("stderr points to --help: %v, want %v: %q", got, tc.help, errOut)
			}
			if out != "" {
				t.Errorf("nothing belongs on stdout for bad input, got %q", out)
			}
			if strings.Contains(errOut, "refdoctor: refdoctor") {
				t.Errorf("the program's name is said twice: %q", errOut)
			}
		})
	}
}

func TestVersion(t *testing.T) {
	t.Parallel()
	code, out, _ := run(t, "version", "-o", "json")
	var v map[string]string
	if code != 0 || json.Unmarshal([]byte(out), &v) != nil || v["version"] == "" || v["commit"] == "" || v["date"] == "" {
		t.Fatalf("exit %d output %q", code, out)
	}
}

// TestProbeJSONContract checks the field names other tools rely on and the
// exit codes for a supported, an unsupported and a throttled registry.
func TestProbeJSONContract(t *testing.T) {
	t.Parallel()
	l := labtest.StartT(t,
		lab.Spec{Name: "oci11", Profile: lab.ProfileOCI11},
		lab.Spec{Name: "ghcr", Profile: lab.ProfileFallback404},
		lab.Spec{Name: "hub", Profile: lab.ProfileRateLimit},
	)
	dir := t.TempDir()
	cfg := fmt.Sprintf("[cache]\ndir = %q\n", filepath.Join(dir, "cache"))
	var args []string
	for _, r := range l.Registries {
		cfg += fmt.Sprintf("[[registry]]\nhost = %q\nplain_http = true\nexpected = %q\n", r.Host, r.Expected)
	}
	cfgPath := writeFile(t, dir, "config.toml", cfg)
	oci, _ := l.Get("oci11")
	ghcr, _ := l.Get("ghcr")
	hub, _ := l.Get("hub")

	for _, tc := range []struct {
		target  string
		code    int
		verdict string
	}{
		{oci.Host + "/demo/app", 0, "supported"},
		{ghcr.Host + "/demo/app", 0, "unsupported"},
		{hub.Host + "/demo/app", 3, "unknown"},
	} {
		args = []string{"--config", cfgPath, "-o", "json", "probe", tc.target}
		code, out, errOut := run(t, args...)
		if code != tc.code {
			t.Fatalf("%s: exit %d, want %d (stderr %q)", tc.target, code, tc.code, errOut)
		}
		var doc map[string][]map[string]any
		if err := json.Unmarshal([]byte(out), &doc); err != nil {
			t.Fatalf("%s: stdout is not one JSON document: %v\n%s", tc.target, err, out)
		}
		regs := doc["registries"]
		if len(regs) != 1 {
			t.Fatalf("registries: %v", regs)
		}
		for _, field := range []string{"registry", "kind", "reachable", "v2_status", "distribution_api_version", "auth", "referrers_api", "referrers_status", "referrers_content_type", "fallback_tags", "rate_limit", "probe_ms", "error", "findings", "expected"} {
			if _, ok := regs[0][field]; !ok {
				t.Errorf("%s: field %q missing", tc.target, field)
			}
		}
		if regs[0]["referrers_api"] != tc.verdict {
			t.Errorf("%s: referrers_api %v, want %s", tc.target, regs[0]["referrers_api"], tc.verdict)
		}
	}
}

// TestTableFitsEightyColumns: the probe table and findings are readable in
// an 80-column terminal.
func TestTableFitsEightyColumns(t *testing.T) {
	t.Parallel()
	l := labtest.StartT(t, lab.Spec{Name: "oci11", Profile: lab.ProfileOCI11}, lab.Spec{Name: "gar", Profile: lab.ProfileHTML200})
	args := []string{"--config", writeFile(t, t.TempDir(), "c.toml", "[cache]\ncapabilities_ttl = \"0s\"\n"), "probe"}
	for _, r := range l.Registries {
		args = append(args, "--plain-http", r.Host, r.Host+"/demo/app")
	}
	code, out, errOut := run(t, args...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, line := range strings.Split(out, "\n") {
		if len(line) > 80 {
			t.Errorf("line wider than 80 columns (%d): %q", len(line), line)
		}
	}
	for _, want := range []string{"REFERRERS API", "supported", "unsupported", "ReferrersHTMLReply", "cause:", "fix:"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}

// TestNoSecretLeaks probes registries behind basic auth and behind a real
// bearer-token flow with a login from docker's config.json at trace level,
// and searches everything refdoctor wrote (stdout, stderr, log file,
// metrics file, capability cache) for the password, the Authorization
// value and every token the registry issued.
func TestNoSecretLeaks(t *testing.T) {
	l := labtest.StartT(t, lab.Spec{Name: "basic", Profile: lab.ProfileBasicAuth}, lab.Spec{Name: "bearer", Profile: lab.ProfileBearer})
	dir := t.TempDir()
	dockerDir := filepath.Join(dir, "docker")
	if err := os.MkdirAll(dockerDir, 0o700); err != nil {
		t.Fatal(err)
	}
	var auths, cfg []string
	secrets := map[string]string{}
	for _, reg := range l.Registries {
		if reg.Login == nil {
			t.Fatalf("%s has no login", reg.Name)
		}
		basic := base64.StdEncoding.EncodeToString([]byte(reg.Login.User + ":" + reg.Login.Password))
		auths = append(auths, fmt.Sprintf("%q:{\"auth\":%q}", reg.Host, basic))
		cfg = append(cfg, fmt.Sprintf("[[registry]]\nhost = %q\nplain_http = true\n", reg.Host))
		secrets[reg.Name+" password"] = reg.Login.Password
		secrets[reg.Name+" basic credential"] = basic
	}
	writeFile(t, dockerDir, "config.json", `{"auths":{`+strings.Join(auths, ",")+`}}`)
	t.Setenv("DOCKER_CONFIG", dockerDir)
	cacheDir := filepath.Join(dir, "cache")
	cfgPath := writeFile(t, dir, "config.toml", fmt.Sprintf("[cache]\ndir = %q\n", cacheDir)+strings.Join(cfg, ""))
	logPath := filepath.Join(dir, "refdoctor.log")
	metricsPath := filepath.Join(dir, "metrics.prom")

	var outputs []string
	for _, reg := range l.Registries {
		for _, format := range []string{"json", "table"} {
			code, out, errOut := run(t, "--config", cfgPath, "--log-level", "trace", "--log-file", logPath,
				"--metrics-file", metricsPath, "-o", format, "probe", "--refresh", "--exchanges", reg.Host+"/demo/app")
			if code != 0 || !strings.Contains(out, "supported") {
				t.Fatalf("%s: exit %d: %s %s", reg.Name, code, out, errOut)
			}
			outputs = append(outputs, out, errOut)
		}
		code, out, errOut := run(t, "--config", cfgPath, "--log-level", "trace", "--log-file", logPath, "-o", "json", "discover", reg.Host+"/demo/app:v1")
		if code != 0 {
			t.Fatalf("%s discover: exit %d: %s %s", reg.Name, code, out, errOut)
		}
		outputs = append(outputs, out, errOut)
	}
	tokens := l.IssuedTokens("bearer")
	if len(tokens) == 0 {
		t.Fatal("the bearer registry issued no token, so the check would prove nothing")
	}
	for i, tok := range tokens {
		secrets[fmt.Sprintf("bearer token %d", i)] = tok
	}
	for _, p := range []string{logPath, metricsPath, filepath.Join(cacheDir, "capabilities.json")} {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatalf("%s not written: %v", p, err)
		}
		outputs = append(outputs, string(data))
	}
	if log, _ := os.ReadFile(logPath); !strings.Contains(string(log), "reg http request") || !strings.Contains(string(log), "/token") {
		t.Fatal("the trace log holds no HTTP exchanges or token requests, so the leak check would prove nothing")
	}
	for i, o := range outputs {
		for what, secret := range secrets {
			if strings.Contains(o, secret) {
				t.Errorf("output %d leaks the %s", i, what)
			}
		}
	}
}

// TestDiscoverAndTagsContract checks the JSON field names of discover and
// tags, and that a throttled lookup exits 3 instead of reporting none.
func TestDiscoverAndTagsContract(t *testing.T) {
	t.Parallel()
	l := labtest.StartT(t, lab.Spec{Name: "oci11", Profile: lab.ProfileOCI11}, lab.Spec{Name: "ghcr", Profile: lab.ProfileFallback404},
		lab.Spec{Name: "hub", Profile: lab.ProfileRateLimit, RateBudget: 1})
	dir := t.TempDir()
	cfg := fmt.Sprintf("[cache]\ndir = %q\n", filepath.Join(dir, "cache"))
	for _, r := range l.Registries {
		cfg += fmt.Sprintf("[[registry]]\nhost = %q\nplain_http = true\n", r.Host)
	}
	cfgPath := writeFile(t, dir, "c.toml", cfg)
	oci, _ := l.Get("oci11")
	ghcr, _ := l.Get("ghcr")
	hub, _ := l.Get("hub")

	code, out, errOut := run(t, "--config", cfgPath, "-o", "json", "discover", "--platforms", l.Seed.Ref(oci.Host))
	var res map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &res) != nil {
		t.Fatalf("discover: exit %d %s %s", code, out, errOut)
	}
	for _, f := range []string{"subject", "method", "referrers", "requests", "findings"} {
		if _, ok := res[f]; !ok {
			t.Errorf("discover JSON lacks %q", f)
		}
	}
	subject := res["subject"].(map[string]any)
	for _, f := range []string{"reference", "digest", "media_type"} {
		if _, ok := subject[f]; !ok {
			t.Errorf("subject lacks %q", f)
		}
	}
	first := res["referrers"].([]any)[0].(map[string]any)
	for _, f := range []string{"digest", "media_type", "artifact_type", "size", "annotations", "source", "referrers"} {
		if _, ok := first[f]; !ok {
			t.Errorf("referrer lacks %q", f)
		}
	}
	if res["method"] != "api" || subject["digest"] != l.Seed.Index {
		t.Errorf("method %v digest %v", res["method"], subject["digest"])
	}

	code, out, _ = run(t, "--config", cfgPath, "discover", "--method", "tags", l.Seed.Ref(ghcr.Host))
	if code != 0 || !strings.Contains(out, "tag-index") || !strings.Contains(out, "cosign-tag") {
		t.Fatalf("discover by tags: exit %d\n%s", code, out)
	}
	// Not a terminal: every value whole (artifact types, digests), in the
	// words the JSON uses, numbers with their nouns in the right number.
	for _, r := range l.Seed.ReferrersOf(l.Seed.Index) {
		if !strings.Contains(out, r.Digest) || !strings.Contains(out, r.ArtifactType) {
			t.Errorf("the table cuts %s (%s):\n%s", r.Digest, r.ArtifactType, out)
		}
	}
	for _, old := range []string{"tagidx", "in-idx", "~", "…", " 1 requests"} {
		if strings.Contains(out, old) {
			t.Errorf("the table says %q:\n%s", old, out)
		}
	}
	code, out, _ = run(t, "--config", cfgPath, "discover", "--method", "api", "--timeout", "3s", l.Seed.Ref(hub.Host))
	if code != 3 || !strings.Contains(out, "INCOMPLETE") || !strings.Contains(out, "RateLimited") {
		t.Fatalf("throttled discover: exit %d (want 3)\n%s", code, out)
	}
	if code, _, errOut = run(t, "discover", "alpine"); code != 2 || !strings.Contains(errOut, "no registry host") {
		t.Fatalf("bare name: exit %d %s", code, errOut)
	}
	if code, _, _ = run(t, "--config", cfgPath, "discover", "--min-referrers", "10", l.Seed.Ref(oci.Host)); code != 1 {
		t.Fatalf("--min-referrers above what exists: exit %d, want 1", code)
	}

	code, out, _ = run(t, "--config", cfgPath, "-o", "json", "tags", ghcr.Host+"/"+l.Seed.Repository)
	var tags struct {
		Repository string `json:"repository"`
		Subjects   []struct {
			Subject string `json:"subject"`
			Tags    []struct {
				Tag, Kind, Digest string
			} `json:"tags"`
		} `json:"subjects"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &tags) != nil || len(tags.Subjects) != 2 || tags.Repository == "" {
		t.Fatalf("tags: exit %d %s", code, out)
	}
	code, table, _ := run(t, "--config", cfgPath, "tags", ghcr.Host+"/"+l.Seed.Repository)
	for _, s := range tags.Subjects {
		for _, tg := range s.Tags {
			if tg.Kind == "" || tg.Digest == "" || !strings.HasPrefix(tg.Tag, "sha256-") {
				t.Errorf("tag entry %+v", tg)
			}
			// The table outside a terminal: whole tag names and digests.
			if !regexp.MustCompile(regexp.QuoteMeta(tg.Tag) + ` +-> ` + regexp.QuoteMeta(tg.Digest)).MatchString(table) {
				t.Errorf("tags table lacks %s -> %s whole (exit %d):\n%s", tg.Tag, tg.Digest, code, table)
			}
		}
	}
	if !strings.Contains(table, "1 subject") && !strings.Contains(table, "2 subjects") {
		t.Errorf("tags table:\n%s", table)
	}
}

// TestDemoWithoutTUI runs the whole lab as a newcomer's `refdoctor demo
// --no-tui` does: every registry is listed and classified, in 80 columns.
// The lab's stalled and trickling registries hold a probe until its
// timeout, so the test gives a short one rather than wait 30 s.
func TestDemoWithoutTUI(t *testing.T) {
	t.Parallel()
	code, out, errOut := run(t, "--config", writeFile(t, t.TempDir(), "c.toml", "[cache]\ncapabilities_ttl = \"0s\"\n"), "--timeout", "10s", "demo", "--no-tui")
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	for _, line := range strings.Split(out, "\n") {
		if len(line) > 80 {
			t.Errorf("line wider than 80 columns (%d): %q", len(line), line)
		}
	}
	for _, want := range []string{"oci11", "ghcr-like", "gitlab-like", "tls-expired", "supported", "unsupported!", "incomplete", "ReferrersNotFound", "TLSCertificateExpired"} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q", want)
		}
	}
}

// TestCompletions: the shell completes values, not only commands and
// flags: runbook steps, --method, -o, --compression, and the registry
// hosts of the config file wherever a registry is named.
func TestCompletions(t *testing.T) {
	t.Parallel()
	cfg := writeFile(t, t.TempDir(), "c.toml", "[[registry]]\nhost = \"registry.example.com\"\n\n[[registry]]\nhost = \"mirror.internal:5000\"\nplain_http = true\n")
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"runbook", "show", ""}, []string{"probe-registry\tTest registry connectivity and referrers support", "issue-discovery-timeout\tDiscovery timeout"}},
		{[]string{"runbook", "run", "issue-"}, []string{"issue-no-referrers"}},
		{[]string{"discover", "--method", ""}, []string{"auto\t", "api\t", "tags\t"}},
		{[]string{"probe", "-o", ""}, []string{"table", "json"}},
		{[]string{"bundle", "export", "--compression", ""}, []string{"gzip", "zstd"}},
		{[]string{"--config", cfg, "tags", ""}, []string{"registry.example.com/", "mirror.internal:5000/"}},
		{[]string{"--config", cfg, "discover", "mirror"}, []string{"mirror.internal:5000/"}},
		{[]string{"--config", cfg, "probe", "--plain-http", ""}, []string{"registry.example.com", "mirror.internal:5000"}},
		{[]string{"--config", cfg, "bundle", "import", "--to", ""}, []string{"mirror.internal:5000/"}},
		{[]string{"--config", cfg, "runbook", "run", "--registry", ""}, []string{"registry.example.com/"}},
		{[]string{"--config", cfg, "cache", "clear", ""}, []string{"registry.example.com"}},
	} {
		code, out, errOut := run(t, append([]string{"__complete"}, tc.args...)...)
		if code != 0 {
			t.Errorf("%v: exit %d %s", tc.args, code, errOut)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(out, w) {
				t.Errorf("completing %q: %q missing from\n%s", tc.args, w, out)
			}
		}
	}
	// Completing one host does not offer the other.
	if _, out, _ := run(t, "__complete", "--config", cfg, "discover", "mirror"); strings.Contains(out, "registry.example.com") {
		t.Errorf("completing \"mirror\" offers registry.example.com:\n%s", out)
	}
}
