package runbook_test

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/refdoctor/refdoctor/config"
	"github.com/refdoctor/refdoctor/lab"
	"github.com/refdoctor/refdoctor/lab/labtest"
	"github.com/refdoctor/refdoctor/runbook"
	"github.com/refdoctor/refdoctor/telemetry"
)

// untar returns every member of a .tgz by name.
func untar(t *testing.T, path string) map[string]string {
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
	out := map[string]string{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out[h.Name] = string(data)
	}
	return out
}

// TestDiagLeaksNoSecret collects a support bundle from a basic-auth
// registry whose login comes from docker's config.json, with a fake bearer
// token planted in an environment variable, in the export log and in the
// config, and proves that no member of the archive holds the password, the
// base64 basic credential or the token.
func TestDiagLeaksNoSecret(t *testing.T) {
	l := labtest.StartT(t, lab.Spec{Name: "basic", Profile: lab.ProfileBasicAuth})
	reg, _ := l.Get("basic")
	if reg.Login == nil {
		t.Fatal("basic-auth lab registry has no login")
	}
	dir := t.TempDir()
	dockerDir := filepath.Join(dir, "docker")
	if err := os.MkdirAll(dockerDir, 0o700); err != nil {
		t.Fatal(err)
	}
	basic := base64.StdEncoding.EncodeToString([]byte(reg.Login.User + ":" + reg.Login.Password))
	if err := os.WriteFile(filepath.Join(dockerDir, "config.json"), fmt.Appendf(nil, `{"auths":{%q:{"auth":%q}}}`, reg.Host, basic), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DOCKER_CONFIG", dockerDir)
	const token = "rdfake0tok3n.Zm9vYmFyYmF6cXV4.c2lnbmF0dXJlLWxlYWstY2FuYXJ5"
	t.Setenv("REGISTRY_TOKEN", token)

	cfg := l.Config()
	cfg.Path = filepath.Join(dir, "config.toml")
	// Where a careless operator pastes a token: a config value. The config
	// has no secret fields, so only the diag's redaction keeps it out.
	cfg.Cache.Dir = filepath.Join(dir, "cache-"+token)
	cfg.Registries[0].Expected = "Bearer " + token
	exportLog := filepath.Join(dir, "export.log")
	logText := "[INFO] Probing 1 registries for OCI referrer capabilities before export\n" +
		"[DEBUG] GET /v2/ Authorization: Basic " + basic + "\n" +
		"[DEBUG] token response " + token + " for " + reg.Login.User + ":" + reg.Login.Password + "\n" +
		"[INFO] Registry " + reg.Host + ": OCI 1.1 (referrers API supported, version=registry/2.0, probe_ms=3)\n"
	if err := os.WriteFile(exportLog, []byte(logText), 0o600); err != nil {
		t.Fatal(err)
	}

	out := filepath.Join(dir, "out", "diag.tgz")
	if err := os.MkdirAll(filepath.Dir(out), 0o700); err != nil {
		t.Fatal(err)
	}
	m := telemetry.NewMetrics()
	res, err := runbook.CollectDiag(context.Background(), out, runbook.DiagOptions{
		Targets:     runbook.Targets{Registries: []string{reg.Host}, Image: l.Seed.Ref(reg.Host), LogFile: exportLog},
		Config:      cfg,
		ToolVersion: "v9.9.9-test",
		Metrics:     m,
	})
	if err != nil {
		t.Fatalf("CollectDiag: %v", err)
	}
	info, err := os.Stat(out)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 || res.Bytes != info.Size() {
		t.Errorf("mode %v size %d, result %+v", info.Mode().Perm(), info.Size(), res)
	}
	if entries, _ := os.ReadDir(filepath.Dir(out)); len(entries) != 1 {
		t.Errorf("temp file left behind: %v", entries)
	}
	files := untar(t, out)
	if len(files) != len(res.Files)+1 { // plus the folder entry
		t.Errorf("archive holds %d members, result lists %d files", len(files), len(res.Files))
	}
	for _, name := range []string{"README.txt", "version.txt", "environment.txt", "config.toml", "probe.log", "probe.json", "registries.txt", "discovery.json", "metrics.prom", "export-log-report.json", "export.log"} {
		if _, ok := files["refdoctor-diag/"+name]; !ok {
			t.Errorf("member %s missing (have %v)", name, res.Files)
		}
	}
	// The login worked, so the check really went through the credentials.
	if !strings.Contains(files["refdoctor-diag/probe.json"], `"referrers_api": "supported"`) {
		t.Errorf("probe with the docker login did not reach a verdict:\n%s", files["refdoctor-diag/probe.json"])
	}
	if !strings.Contains(files["refdoctor-diag/probe.log"], "level=DEBUG") || !strings.Contains(files["refdoctor-diag/probe.log"], "OCI 1.1 (referrers API supported") {
		t.Errorf("probe.log is not a debug log of the probe:\n%s", files["refdoctor-diag/probe.log"])
	}
	if !strings.Contains(files["refdoctor-diag/version.txt"], "v9.9.9-test") || !strings.Contains(files["refdoctor-diag/registries.txt"], reg.Host+"  unknown") {
		t.Errorf("version or registry kinds missing")
	}
	// registries.txt is a table of refdoctor's own results: the login
	// registry's auth scheme and its /v2/ status stay readable (a column
	// "basic" before a column "200" is no credential; free-text redaction
	// used to take it for one).
	regs := files["refdoctor-diag/registries.txt"]
	if strings.Contains(regs, telemetry.Redacted) {
		t.Errorf("registries.txt redacts something that is no secret:\n%s", regs)
	}
	if row := regexp.MustCompile(regexp.QuoteMeta(reg.Host) + `\s.*\sbasic\s+(\d{3})\s`).FindStringSubmatch(regs); row == nil ||
		!strings.Contains(files["refdoctor-diag/probe.json"], `"v2_status": `+row[1]) {
		t.Errorf("registries.txt lacks the login registry's auth scheme and the /v2/ status probe.json holds:\n%s", regs)
	}
	if !strings.Contains(files["refdoctor-diag/metrics.prom"], telemetry.MetricCapabilitiesProbed) {
		t.Errorf("metrics missing:\n%s", files["refdoctor-diag/metrics.prom"])
	}
	if c := files["refdoctor-diag/config.toml"]; !strings.Contains(c, telemetry.Redacted) || !strings.Contains(c, reg.Host) {
		t.Errorf("config.toml lacks the host or the redaction:\n%s", c)
	}
	if !strings.Contains(files["refdoctor-diag/export.log"], "Probing 1 registries") {
		t.Errorf("export log copy missing")
	}
	for name, content := range files {
		for _, secret := range []string{reg.Login.Password, basic, token} {
			if strings.Contains(content, secret) {
				t.Errorf("%s leaks a secret (%q...)", name, secret[:6])
			}
		}
		for _, env := range []string{"DOCKER_CONFIG", "REGISTRY_TOKEN", "HOME="} {
			if strings.Contains(content, env) {
				t.Errorf("%s dumps the environment (%s)", name, env)
			}
		}
	}
}

func TestDiagWithoutTargets(t *testing.T) {
	t.Parallel()
	out := filepath.Join(t.TempDir(), "d.tgz")
	res, err := runbook.CollectDiag(context.Background(), out, runbook.DiagOptions{Config: config.Defaults()})
	if err != nil {
		t.Fatal(err)
	}
	files := untar(t, out)
	if _, ok := files["refdoctor-diag/probe.json"]; ok {
		t.Error("probe.json written without targets")
	}
	if !strings.Contains(files["refdoctor-diag/probe.log"], "nothing probed") || len(res.Files) < 5 {
		t.Errorf("files %v", res.Files)
	}
	_, err = runbook.CollectDiag(context.Background(), filepath.Join(t.TempDir(), "missing", "d.tgz"), runbook.DiagOptions{})
	if !errors.Is(err, runbook.ErrDiagOutput) {
		t.Errorf("unwritable folder: err %v, want ErrDiagOutput", err)
	}
}
