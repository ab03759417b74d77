package cli_test

import (
	"archive/tar"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/refdoctor/refdoctor/lab"
	"github.com/refdoctor/refdoctor/lab/labtest"
)

// ownConfig writes a config listing the lab's registries (plain HTTP,
// their matrix kinds) with a cache of its own.
func ownConfig(t *testing.T, l *lab.Lab, ttl string) (path, dir string) {
	t.Helper()
	dir = t.TempDir()
	cfg := fmt.Sprintf("# the operator's registries\n[cache]\ndir = %q\ncapabilities_ttl = %q\n", filepath.Join(dir, "cache"), ttl)
	for _, r := range l.Registries {
		cfg += fmt.Sprintf("\n[[registry]]\nhost = %q\nplain_http = true\nexpected = %q\n", r.Host, r.Expected)
	}
	return writeFile(t, dir, "config.toml", cfg), dir
}

// readArchive returns the members of a support bundle by name (without
// the refdoctor-diag/ folder).
func readArchive(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	members := map[string]string{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return members
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		members[strings.TrimPrefix(h.Name, "refdoctor-diag/")] = string(data)
	}
}

// readmeFiles are the file names README.txt lists (the first word of each
// line that names a file).
func readmeFiles(readme string) []string {
	var names []string
	for _, line := range strings.Split(readme, "\n") {
		f := strings.Fields(line)
		if len(f) > 1 && regexp.MustCompile(`^[a-z-]+\.(txt|toml|log|json|prom)$`).MatchString(f[0]) {
			names = append(names, f[0])
		}
	}
	return names
}

// TestCommandsUseTheConfigRegistries: with no target, probe, runbook run
// and diag collect work on the config's [[registry]] list and say so on
// stderr; with neither targets nor a list they are usage errors that
// name both ways to give one; and a support bundle's README lists exactly
// the files it holds.
func TestCommandsUseTheConfigRegistries(t *testing.T) {
	t.Parallel()
	l := labtest.StartT(t, lab.Spec{Name: "oci11", Profile: lab.ProfileOCI11}, lab.Spec{Name: "ghcr", Profile: lab.ProfileFallback404})
	oci, _ := l.Get("oci11")
	ghcr, _ := l.Get("ghcr")
	cfg, dir := ownConfig(t, l, "0s")
	empty := writeFile(t, dir, "empty.toml", "[cache]\ncapabilities_ttl = \"0s\"\n")
	note := "no registry given; using the 2 registries in " + cfg + ": " + oci.Host + ", " + ghcr.Host

	code, out, errOut := run(t, "--config", cfg, "-o", "json", "probe")
	var rep struct {
		Registries []struct {
			Registry     string `json:"registry"`
			ReferrersAPI string `json:"referrers_api"`
			Kind         string `json:"kind"`
			KindSource   string `json:"kind_source"`
		} `json:"registries"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &rep) != nil || len(rep.Registries) != 2 {
		t.Fatalf("probe with no target: exit %d\n%s%s", code, out, errOut)
	}
	if !strings.Contains(errOut, "refdoctor probe: "+note) {
		t.Errorf("probe does not say it uses the config's registries:\n%s", errOut)
	}
	if r := rep.Registries[0]; r.Registry != oci.Host || r.ReferrersAPI != "supported" || r.Kind != "olareg" || r.KindSource != "config" {
		t.Errorf("first registry %+v, want %s supported, kind olareg from the config", r, oci.Host)
	}
	if r := rep.Registries[1]; r.Registry != ghcr.Host || r.ReferrersAPI != "unsupported" {
		t.Errorf("second registry %+v, want %s unsupported", r, ghcr.Host)
	}
	code, out, _ = run(t, "--config", cfg, "probe")
	if code != 0 || !strings.Contains(out, "olareg ") || strings.Contains(out, "olareg*") || !strings.Contains(out, "(kinds from expected in the config)") || !strings.Contains(out, "kind: olareg, from expected in the config") {
		t.Errorf("the KIND column does not say the kind was configured: exit %d\n%s", code, out)
	}

	code, out, errOut = run(t, "--config", cfg, "runbook", "run")
	if !strings.Contains(errOut, "refdoctor runbook run: "+note) {
		t.Errorf("runbook run does not say it uses the config's registries:\n%s", errOut)
	}
	if strings.Contains(out, "No registry given") || !strings.Contains(out, "2 registries probed") {
		t.Errorf("runbook run skipped the registry steps: exit %d\n%s", code, out)
	}
	if !strings.Contains(out, "The skipped steps need --export-log FILE, --image REF") || !strings.Contains(out, "--bundle FILE") {
		t.Errorf("runbook run does not say what the skipped steps need:\n%s", out)
	}
	if code != 0 {
		t.Errorf("runbook run over a supported and a fallback registry: exit %d\n%s", code, out)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"probe"}, "refdoctor probe needs registries to probe, HOST, HOST/REPO or HOST/REPO@sha256:DIGEST, or [[registry]] entries in " + empty + "; for example: "},
		{[]string{"runbook", "run"}, "nothing to check: pass --registry HOST[/REPO], --image REF, --bundle FILE or --export-log FILE, or list registries as [[registry]] entries in " + empty},
		{[]string{"serve", "--listen", "127.0.0.1:0"}, "refdoctor serve needs targets to probe, HOST or HOST/REPO, or [[registry]] entries in " + empty},
	} {
		code, out, errOut := run(t, append([]string{"--config", empty}, tc.args...)...)
		if code != 2 || !strings.Contains(errOut, tc.want) || out != "" {
			t.Errorf("%v with an empty list: exit %d, want 2 with %q\n%s%s", tc.args, code, tc.want, out, errOut)
		}
	}

	for _, tc := range []struct {
		name, config string
		hasProbe     bool
	}{
		{"config registries", cfg, true},
		{"nothing to probe", empty, false},
	} {
		out := filepath.Join(t.TempDir(), "diag.tgz")
		code, stdout, errOut := run(t, "--config", tc.config, "diag", "collect", "--out", out)
		if code != 0 {
			t.Fatalf("%s: diag collect: exit %d\n%s%s", tc.name, code, stdout, errOut)
		}
		members := readArchive(t, out)
		listed := readmeFiles(members["README.txt"])
		if len(listed) < 5 {
			t.Fatalf("%s: README lists %v:\n%s", tc.name, listed, members["README.txt"])
		}
		for _, name := range listed {
			if _, ok := members[name]; !ok {
				t.Errorf("%s: README lists %s, which the archive does not hold", tc.name, name)
			}
		}
		for name := range members {
			if !strings.Contains(members["README.txt"], name) {
				t.Errorf("%s: the archive holds %s, which README does not list", tc.name, name)
			}
		}
		_, probed := members["probe.json"]
		if probed != tc.hasProbe {
			t.Errorf("%s: probe.json in the archive: %v, want %v", tc.name, probed, tc.hasProbe)
		}
		if tc.hasProbe {
			if !strings.Contains(errOut, "refdoctor diag collect: "+note) {
				t.Errorf("diag collect does not say it uses the config's registries:\n%s", errOut)
			}
			if !strings.Contains(members["registries.txt"], oci.Host) || !strings.Contains(members["registries.txt"], ghcr.Host) || !strings.Contains(members["registries.txt"], "olareg (config)") {
				t.Errorf("registries.txt lacks the config's registries:\n%s", members["registries.txt"])
			}
		} else if !strings.Contains(members["README.txt"], "nothing was probed") {
			t.Errorf("the README of a bundle without probes does not say so:\n%s", members["README.txt"])
		}
	}
}

// TestLogsMatchTheRun exports from two registries, then again from the
// cache, imports the bundle and probes, each with --log-level info
// --log-file, and reads every log back with refdoctor logs: one
// announcement per run with the right count and the command's own words,
// a verdict line for every announced probe (cached=true and the age when
// the cache answered), and no ProbeCountMismatch.
func TestLogsMatchTheRun(t *testing.T) {
	t.Parallel()
	l := labtest.StartT(t, lab.Spec{Name: "oci11", Profile: lab.ProfileOCI11}, lab.Spec{Name: "ghcr", Profile: lab.ProfileFallback404})
	oci, _ := l.Get("oci11")
	ghcr, _ := l.Get("ghcr")
	cfg, dir := ownConfig(t, l, "24h")
	bundlePath := filepath.Join(dir, "app.tgz")

	type logDoc struct {
		Announced []int `json:"announced"`
		Probes    []struct {
			Host   string `json:"host"`
			API    string `json:"api"`
			Cached bool   `json:"cached"`
		} `json:"probes"`
		Findings []struct {
			Code string `json:"code"`
		} `json:"findings"`
	}
	readBack := func(name string) (string, logDoc) {
		t.Helper()
		path := filepath.Join(dir, name)
		text, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		code, out, errOut := run(t, "-o", "json", "logs", path)
		var doc logDoc
		if code != 0 || json.Unmarshal([]byte(out), &doc) != nil {
			t.Fatalf("logs %s: exit %d\n%s%s", name, code, out, errOut)
		}
		for _, f := range doc.Findings {
			if f.Code == "ProbeCountMismatch" || f.Code == "NoProbeLines" {
				t.Errorf("%s: refdoctor logs reports %s\n%s", name, f.Code, text)
			}
		}
		return string(text), doc
	}
	logArgs := func(name string) []string {
		return []string{"--config", cfg, "--log-level", "info", "--log-file", filepath.Join(dir, name)}
	}

	for _, pass := range []string{"export.log", "export-cached.log"} {
		code, out, errOut := run(t, append(logArgs(pass), "bundle", "export", "--file", bundlePath, l.Seed.Ref(oci.Host), l.Seed.Ref(ghcr.Host))...)
		if code != 0 {
			t.Fatalf("%s: export exit %d\n%s%s", pass, code, out, errOut)
		}
		text, doc := readBack(pass)
		if n := strings.Count(text, "Probing 2 registries for OCI referrer capabilities before export"); n != 1 || len(doc.Announced) != 1 {
			t.Errorf("%s: announced %v (%d times as one line for both), want one line for 2 registries\n%s", pass, doc.Announced, n, text)
		}
		if len(doc.Probes) != 2 || doc.Probes[0].Host == doc.Probes[1].Host {
			t.Errorf("%s: verdict lines %+v, want one for each registry\n%s", pass, doc.Probes, text)
		}
		cached := regexp.MustCompile(`cached=true, age=\d+[smhd]`).FindAllString(text, -1)
		if pass == "export-cached.log" && (len(cached) != 2 || !doc.Probes[0].Cached || !doc.Probes[1].Cached) {
			t.Errorf("%s: %d verdicts say they came from the cache, want 2 (read back: %+v)\n%s", pass, len(cached), doc.Probes, text)
		}
		if pass == "export.log" && len(cached) != 0 {
			t.Errorf("%s: the first export's verdicts say cached\n%s", pass, text)
		}
	}

	code, out, errOut := run(t, append(logArgs("import.log"), "bundle", "import", "--file", bundlePath, "--to", ghcr.Host+"/mirror")...)
	if code != 0 {
		t.Fatalf("import: exit %d\n%s%s", code, out, errOut)
	}
	text, doc := readBack("import.log")
	if strings.Contains(text, "before export") || !strings.Contains(text, "for OCI referrer capabilities before import") {
		t.Errorf("import's log does not speak of the import:\n%s", text)
	}
	if total := sum(doc.Announced); total != len(doc.Probes) || total == 0 {
		t.Errorf("import announced %v probes and logged %d verdicts\n%s", doc.Announced, len(doc.Probes), text)
	}

	code, out, errOut = run(t, append(logArgs("probe.log"), "probe")...)
	if code != 0 {
		t.Fatalf("probe: exit %d\n%s%s", code, out, errOut)
	}
	text, doc = readBack("probe.log")
	if !strings.Contains(text, `msg="Probing 2 registries for OCI referrer capabilities"`) || len(doc.Probes) != 2 {
		t.Errorf("probe's log: want one plain announcement of 2 and 2 verdicts\n%s", text)
	}

	code, out, errOut = run(t, append(logArgs("runbook.log"), "runbook", "run", "--image", l.Seed.Ref(oci.Host))...)
	if code != 0 {
		t.Fatalf("runbook run: exit %d\n%s%s", code, out, errOut)
	}
	text, doc = readBack("runbook.log")
	if len(doc.Announced) != 1 || len(doc.Probes) != 1 {
		t.Errorf("runbook run probes %s in several steps: want it announced and logged once, got %v and %d verdicts\n%s", oci.Host, doc.Announced, len(doc.Probes), text)
	}
}

func sum(ns []int) int {
	total := 0
	for _, n := range ns {
		total += n
	}
	return total
}

// TestDockerLoginOnYourRegistries runs against docker-registry behind
// htpasswd with the login in a docker config.json, next to an olareg
// registry, both plain HTTP in the config: regclient does not warn about
// TLS settings for the login's host on commands that never touch it, the
// login works, and the support bundle holds neither the password nor the
// user name.
func TestDockerLoginOnYourRegistries(t *testing.T) {
	d, login := labtest.StartDistributionWithLoginT(t)
	l := labtest.StartT(t, lab.Spec{Name: "oci11", Profile: lab.ProfileOCI11})
	oci, _ := l.Get("oci11")
	dir := t.TempDir()
	docker := filepath.Join(dir, "docker")
	if err := os.MkdirAll(docker, 0o700); err != nil {
		t.Fatal(err)
	}
	auth := base64.StdEncoding.EncodeToString([]byte(login.User + ":" + login.Password))
	writeFile(t, docker, "config.json", fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, d.Host, auth))
	t.Setenv("DOCKER_CONFIG", docker)
	cfg := writeFile(t, dir, "config.toml", fmt.Sprintf("[cache]\ndir = %q\n\n[[registry]]\nhost = %q\nplain_http = true\n\n[[registry]]\nhost = %q\nplain_http = true\nexpected = \"distribution\"\n",
		filepath.Join(dir, "cache"), oci.Host, d.Host))

	logPath := filepath.Join(dir, "warn.log")
	code, out, errOut := run(t, "--config", cfg, "--log-level", "debug", "--log-file", logPath, "probe", oci.Host+"/demo/app")
	if code != 0 {
		t.Fatalf("probe: exit %d\n%s%s", code, out, errOut)
	}
	logText, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(logText), d.Host) {
		t.Fatalf("regclient did not load the docker login at all, so the check below proves nothing:\n%s", logText)
	}
	if strings.Contains(string(logText), "Changing TLS settings") {
		t.Errorf("a probe of %s warns about the TLS of %s:\n%s", oci.Host, d.Host, logText)
	}

	code, out, errOut = run(t, "--config", cfg, "probe", d.Host)
	if code != 0 || !strings.Contains(out, "basic") || strings.Contains(errOut, "Changing TLS") {
		t.Fatalf("probe with the docker login: exit %d\n%s%s", code, out, errOut)
	}

	bundlePath := filepath.Join(dir, "support.tgz")
	code, out, errOut = run(t, "--config", cfg, "diag", "collect", "--out", bundlePath)
	if code != 0 {
		t.Fatalf("diag collect: exit %d\n%s%s", code, out, errOut)
	}
	members := readArchive(t, bundlePath)
	if !strings.Contains(members["probe.log"], "user=[REDACTED]") {
		t.Errorf("probe.log does not show the removed user name, so the check below may prove nothing:\n%s", members["probe.log"])
	}
	for name, text := range members {
		for what, secret := range map[string]string{"user name": login.User, "password": login.Password, "docker auth": auth} {
			if strings.Contains(text, secret) {
				t.Errorf("%s holds the docker login's %s", name, what)
			}
		}
	}
}
