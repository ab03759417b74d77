package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/refdoctor/refdoctor/config"
)

const operatorConfig = `# refdoctor at the plant: four registries
# (the olareg one is the lab's)

[export.referrer_discovery]
timeout_seconds = 60   # the exporter's own limit

# olareg from the lab
[[registry]]
host = "127.0.0.1:5001"
plain_http = true   # no TLS in the lab
expected = "olareg"

# docker-registry, going away
[[registry]]
host = "127.0.0.1:5002"
plain_http = true

# docker-registry behind htpasswd; login in ~/.docker/config.json
[[registry]]
host = "mirror.internal:5443"
ca_file = "/etc/ssl/plant-ca.pem"   # the plant's CA
expected = "distribution"
repository = "team/old"

[cache]
capabilities_ttl = "12h"
`

// TestEditRegistriesKeepsWhatItDoesNotOwn: saving the TUI's targets
// changes the [[registry]] list as asked and keeps every comment, every
// other table and every key the form does not edit.
func TestEditRegistriesKeepsWhatItDoesNotOwn(t *testing.T) {
	t.Parallel()
	regs := []config.Registry{
		{Host: "127.0.0.1:5001", PlainHTTP: false, InsecureSkipVerify: true, Repository: "demo/app"},
		{Host: "mirror.internal:5443", Repository: "team/app"},
		{Host: "127.0.0.1:5004", PlainHTTP: true, Repository: "demo/app"},
	}
	out, err := config.EditRegistries([]byte(operatorConfig), regs)
	if err != nil {
		t.Fatal(err)
	}
	text := string(out)
	for _, keep := range []string{
		"# refdoctor at the plant: four registries\n# (the olareg one is the lab's)\n",
		"timeout_seconds = 60   # the exporter's own limit",
		"# olareg from the lab\n[[registry]]\nhost = \"127.0.0.1:5001\"\n",
		"plain_http = false   # no TLS in the lab",
		"expected = \"olareg\"\n",
		"# docker-registry behind htpasswd; login in ~/.docker/config.json",
		"ca_file = \"/etc/ssl/plant-ca.pem\"   # the plant's CA",
		"expected = \"distribution\"\nrepository = \"team/app\"\n",
		"[cache]\ncapabilities_ttl = \"12h\"\n",
		"[[registry]]\nhost = \"127.0.0.1:5004\"\nrepository = \"demo/app\"\nplain_http = true\n",
	} {
		if !strings.Contains(text, keep) {
			t.Errorf("edited file lacks %q:\n%s", keep, text)
		}
	}
	if strings.Contains(text, `host = "127.0.0.1:5002"`) {
		t.Errorf("the removed registry is still there:\n%s", text)
	}
	if strings.Contains(text, "\n\n\n") {
		t.Errorf("the removal left a gap:\n%s", text)
	}
	cfg, err := config.Parse(out)
	if err != nil {
		t.Fatalf("edited file does not load: %v\n%s", err, text)
	}
	if cfg.Export.ReferrerDiscovery.TimeoutSeconds != 60 || cfg.Cache.CapabilitiesTTL.Hours() != 12 {
		t.Errorf("other tables changed: %+v", cfg)
	}
	want := []config.Registry{
		{Host: "127.0.0.1:5001", InsecureSkipVerify: true, Expected: "olareg", Repository: "demo/app"},
		{Host: "mirror.internal:5443", CAFile: "/etc/ssl/plant-ca.pem", Expected: "distribution", Repository: "team/app"},
		{Host: "127.0.0.1:5004", PlainHTTP: true, Repository: "demo/app"},
	}
	if len(cfg.Registries) != len(want) {
		t.Fatalf("registries %+v", cfg.Registries)
	}
	for i, w := range want {
		if cfg.Registries[i] != w {
			t.Errorf("registry %d = %+v, want %+v", i, cfg.Registries[i], w)
		}
	}
	// Saving the same list again changes nothing.
	again, err := config.EditRegistries(out, regs)
	if err != nil || string(again) != text {
		t.Errorf("a second save changed the file (%v):\n%s", err, again)
	}
}

// TestSaveRegistriesWritesAtomically: the file keeps its mode, a link
// keeps pointing at it, a file that does not exist is created, and a
// save that cannot be done leaves the file byte for byte as it was.
func TestSaveRegistriesWritesAtomically(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	real := filepath.Join(dir, "real.toml")
	if err := os.WriteFile(real, []byte(operatorConfig), 0o640); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "config.toml")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	regs := []config.Registry{{Host: "127.0.0.1:5001", PlainHTTP: true}}
	if err := config.SaveRegistries(link, regs); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the link was replaced: %v %v", fi, err)
	}
	info, err := os.Stat(real)
	if err != nil || info.Mode().Perm() != 0o640 {
		t.Errorf("mode %v, want 0640 (%v)", info.Mode(), err)
	}
	cfg, err := config.Load(link)
	if err != nil || len(cfg.Registries) != 1 || cfg.Registries[0].Expected != "olareg" {
		t.Fatalf("saved file: %+v %v", cfg.Registries, err)
	}
	before, _ := os.ReadFile(real)
	if err := config.SaveRegistries(link, []config.Registry{{Host: "https://bad"}}); err == nil {
		t.Error("a bad host was saved")
	}
	broken := filepath.Join(dir, "broken.toml")
	if err := os.WriteFile(broken, []byte("[[registry]]\nhost = \"a\"\nplain_http = maybe\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := config.SaveRegistries(broken, regs); err == nil || !strings.Contains(err.Error(), "does not load") {
		t.Errorf("a file that does not load was edited: %v", err)
	}
	after, _ := os.ReadFile(real)
	if string(before) != string(after) {
		t.Error("a refused save changed the file")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 3 {
		t.Errorf("temporary files left behind: %v", entries)
	}
	fresh := filepath.Join(dir, "new", "refdoctor", "config.toml")
	if err := config.SaveRegistries(fresh, []config.Registry{{Host: "127.0.0.1:5004", Repository: "demo/app", PlainHTTP: true}}); err != nil {
		t.Fatal(err)
	}
	if cfg, err := config.Load(fresh); err != nil || len(cfg.Registries) != 1 || cfg.Registries[0].Target() != "127.0.0.1:5004/demo/app" {
		t.Errorf("new file: %+v %v", cfg.Registries, err)
	}
	if info, err := os.Stat(fresh); err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("new file mode %v %v", info, err)
	}
}
