package cli_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/refdoctor/refdoctor/config"
	"github.com/refdoctor/refdoctor/lab"
	"github.com/refdoctor/refdoctor/lab/labtest"
	"github.com/refdoctor/refdoctor/registry"
)

// labConfig writes a config naming every lab registry as plain HTTP, with
// the cache in dir.
func labConfig(t *testing.T, l *lab.Lab, dir string) string {
	t.Helper()
	cfg := fmt.Sprintf("[cache]\ndir = %q\n", filepath.Join(dir, "cache"))
	for _, r := range l.Registries {
		cfg += fmt.Sprintf("[[registry]]\nhost = %q\nplain_http = true\n", r.Host)
	}
	return writeFile(t, dir, "config.toml", cfg)
}

// TestMinReferrersInJSON: too few referrers shows in the JSON document
// (outcome and a TooFewReferrers finding), not only on stderr.
func TestMinReferrersInJSON(t *testing.T) {
	t.Parallel()
	l := labtest.StartT(t, lab.Spec{Name: "oci11", Profile: lab.ProfileOCI11})
	oci, _ := l.Get("oci11")
	cfg := labConfig(t, l, t.TempDir())
	code, out, errOut := run(t, "--config", cfg, "-o", "json", "discover", "--min-referrers", "10", l.Seed.Ref(oci.Host))
	var res struct {
		Outcome  string `json:"outcome"`
		Findings []struct {
			Code    string `json:"code"`
			Summary string `json:"summary"`
		} `json:"findings"`
	}
	if code != 1 || json.Unmarshal([]byte(out), &res) != nil {
		t.Fatalf("exit %d (want 1)\n%s\n%s", code, out, errOut)
	}
	found := false
	for _, f := range res.Findings {
		if f.Code == "TooFewReferrers" && strings.Contains(f.Summary, "fewer than the 10 required") {
			found = true
		}
	}
	if res.Outcome != "fail" || !found {
		t.Fatalf("outcome %q findings %+v", res.Outcome, res.Findings)
	}
}

// TestCacheShowAndClear: the cache lists each verdict with its key, age
// and the command that probed it, and clears one host or all.
func TestCacheShowAndClear(t *testing.T) {
	t.Parallel()
	l := labtest.StartT(t, lab.Spec{Name: "oci11", Profile: lab.ProfileOCI11}, lab.Spec{Name: "ghcr", Profile: lab.ProfileFallback404})
	oci, _ := l.Get("oci11")
	ghcr, _ := l.Get("ghcr")
	cfg := labConfig(t, l, t.TempDir())
	if code, out, errOut := run(t, "--config", cfg, "probe", oci.Host+"/demo/app", ghcr.Host+"/demo/app"); code != 0 {
		t.Fatalf("probe: exit %d\n%s%s", code, out, errOut)
	}
	code, out, _ := run(t, "--config", cfg, "probe", oci.Host+"/demo/app")
	if code != 0 || !strings.Contains(out, "cache 0s") || !strings.Contains(out, "CachedVerdict") || !strings.Contains(out, "ago by refdoctor probe") {
		t.Fatalf("cached probe does not say so:\n%s", out)
	}
	code, out, _ = run(t, "--config", cfg, "-o", "json", "cache", "show")
	var show struct {
		Path    string `json:"path"`
		Enabled bool   `json:"enabled"`
		Entries []struct {
			Key          string `json:"key"`
			Host         string `json:"host"`
			Scheme       string `json:"scheme"`
			ReferrersAPI string `json:"referrers_api"`
			StoredBy     string `json:"stored_by"`
			StoredAt     string `json:"stored_at"`
			AgeSeconds   *int64 `json:"age_seconds"`
		} `json:"entries"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &show) != nil || !show.Enabled || len(show.Entries) != 2 {
		t.Fatalf("cache show: exit %d\n%s", code, out)
	}
	verdicts := map[string]string{}
	for _, e := range show.Entries {
		verdicts[e.Host] = e.ReferrersAPI
		if e.StoredBy != "refdoctor probe" || e.Scheme != "http" || e.AgeSeconds == nil || e.StoredAt == "" || !strings.HasPrefix(e.Key, "http://"+e.Host+"/demo/app") {
			t.Errorf("entry %+v", e)
		}
	}
	if verdicts[oci.Host] != "supported" || verdicts[ghcr.Host] != "unsupported" {
		t.Errorf("verdicts %v", verdicts)
	}
	code, out, _ = run(t, "--config", cfg, "cache", "show")
	if code != 0 || !strings.Contains(out, "2 verdicts") || !strings.Contains(out, "refdoctor probe") {
		t.Fatalf("cache show table:\n%s", out)
	}
	if code, out, _ = run(t, "--config", cfg, "cache", "clear", ghcr.Host); code != 0 || !strings.Contains(out, "removed 1 ") {
		t.Fatalf("cache clear HOST: exit %d %s", code, out)
	}
	if code, out, _ = run(t, "--config", cfg, "-o", "json", "cache", "show"); code != 0 || strings.Contains(out, ghcr.Host) || !strings.Contains(out, oci.Host) {
		t.Fatalf("after clearing %s:\n%s", ghcr.Host, out)
	}
	if code, out, _ = run(t, "--config", cfg, "cache", "clear"); code != 0 || !strings.Contains(out, "removed 1 ") {
		t.Fatalf("cache clear: exit %d %s", code, out)
	}
	if code, _, errOut := run(t, "--config", cfg, "cache", "clear", "http://x"); code != 2 || !strings.Contains(errOut, "not a host name") {
		t.Fatalf("cache clear with a URL: exit %d %s", code, errOut)
	}
}

// TestMissingLoginExitsThreeEverywhere: probe, discover and tags agree
// that a registry refusing an absent login cannot be judged: exit 3, and
// the output names the missing login.
func TestMissingLoginExitsThreeEverywhere(t *testing.T) {
	l := labtest.StartT(t, lab.Spec{Name: "basic", Profile: lab.ProfileBasicAuth}, lab.Spec{Name: "refuse", Profile: lab.ProfileAuthRefuse})
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	cfg := labConfig(t, l, t.TempDir())
	for _, reg := range l.Registries {
		for _, args := range [][]string{
			{"probe", reg.Host + "/demo/app"},
			{"discover", l.Seed.Ref(reg.Host)},
			{"tags", reg.Host + "/demo/app"},
		} {
			code, out, errOut := run(t, append([]string{"--config", cfg}, args...)...)
			if code != 3 {
				t.Errorf("%s %s: exit %d, want 3\n%s%s", reg.Name, args[0], code, out, errOut)
			}
			if !strings.Contains(out, "login") {
				t.Errorf("%s %s: output does not name the missing login:\n%s", reg.Name, args[0], out)
			}
			if strings.Contains(out, "(none)") {
				t.Errorf("%s %s: says none on a read that did not complete:\n%s", reg.Name, args[0], out)
			}
		}
	}
}

// TestPlainHTTPHintNamesTheFlag: a plain-HTTP registry probed without
// --plain-http gets the exact flag to add.
func TestPlainHTTPHintNamesTheFlag(t *testing.T) {
	t.Parallel()
	l := labtest.StartT(t, lab.Spec{Name: "oci11", Profile: lab.ProfileOCI11})
	oci, _ := l.Get("oci11")
	cfg := writeFile(t, t.TempDir(), "c.toml", fmt.Sprintf("[cache]\ndir = %q\n", t.TempDir()))
	code, out, _ := run(t, "--config", cfg, "probe", oci.Host+"/demo/app")
	if code != 3 || !strings.Contains(out, "TLSPlainHTTPServer") || !strings.Contains(out, "--plain-http "+oci.Host) {
		t.Fatalf("exit %d\n%s", code, out)
	}
	code, out, _ = run(t, "--config", cfg, "discover", l.Seed.Ref(oci.Host))
	if code != 3 || !strings.Contains(out, "--plain-http "+oci.Host) {
		t.Fatalf("discover: exit %d\n%s", code, out)
	}
}

// TestDistributionWithoutLogin: docker-registry behind htpasswd answers
// /referrers with its plain-text 404 before any login check, and refuses
// /v2/ and the tag list without one. Without a login probe, discover and
// tags all exit 3 and name the missing login (the old probe said
// "unsupported | denied | fail", exit 1); with the login from docker's
// config the probe reaches its verdict.
func TestDistributionWithoutLogin(t *testing.T) {
	d, login := labtest.StartDistributionWithLoginT(t)
	seedCfg := config.Defaults()
	seedCfg.Registries = []config.Registry{{Host: d.Host, PlainHTTP: true}}
	c, err := registry.New(seedCfg, registry.WithoutDockerCreds(), registry.WithLogin(d.Host, login.User, login.Password))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lab.SeedInto(context.Background(), c, d.Host); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	t.Setenv("DOCKER_CONFIG", filepath.Join(dir, "docker-empty"))
	cfg := writeFile(t, dir, "c.toml", fmt.Sprintf("[cache]\ndir = %q\n[[registry]]\nhost = %q\nplain_http = true\n", filepath.Join(dir, "cache"), d.Host))
	for _, args := range [][]string{
		{"probe", d.Host + "/demo/app"},
		{"discover", d.Host + "/demo/app:v1"},
		{"tags", d.Host + "/demo/app"},
	} {
		code, out, errOut := run(t, append([]string{"--config", cfg}, args...)...)
		if code != 3 || !strings.Contains(out, "login") || strings.Contains(out, "unsupported") {
			t.Errorf("%s: exit %d, want 3 naming the login\n%s%s", args[0], code, out, errOut)
		}
	}
	code, out, _ := run(t, "--config", cfg, "-o", "json", "probe", d.Host+"/demo/app")
	var rep struct {
		Registries []struct {
			ReferrersAPI    string `json:"referrers_api"`
			ReferrersReason string `json:"referrers_reason"`
		} `json:"registries"`
	}
	if code != 3 || json.Unmarshal([]byte(out), &rep) != nil || rep.Registries[0].ReferrersAPI != "unknown" || rep.Registries[0].ReferrersReason != "AuthFailed" {
		t.Fatalf("probe JSON: exit %d %s", code, out)
	}
	if code, out, _ := run(t, "--config", cfg, "-o", "json", "cache", "show"); code != 0 || strings.Contains(out, d.Host) {
		t.Fatalf("a failed login was cached:\n%s", out)
	}
	docker := filepath.Join(dir, "docker")
	auth := base64.StdEncoding.EncodeToString([]byte(login.User + ":" + login.Password))
	if err := os.MkdirAll(docker, 0o700); err != nil {
		t.Fatal(err)
	}
	writeFile(t, docker, "config.json", fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, d.Host, auth))
	t.Setenv("DOCKER_CONFIG", docker)
	code, out, errOut := run(t, "--config", cfg, "probe", d.Host+"/demo/app")
	if code != 0 || !strings.Contains(out, "unsupported") || !strings.Contains(out, "basic") {
		t.Fatalf("with the login: exit %d\n%s%s", code, out, errOut)
	}
}
