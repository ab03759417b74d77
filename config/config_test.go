package config_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/refdoctor/refdoctor/config"
)

func TestParse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		toml string
		want []string // substrings of the error; none means valid
	}{
		{"defaults", "", nil},
		{"full", "[export.referrer_discovery]\ntimeout_seconds = 30\nmax_concurrent_discoveries = 8\n[[registry]]\nhost = \"r.example.com:5000\"\nplain_http = true\nexpected = \"zot\"\n[cache]\ncapabilities_ttl = \"1h\"\n", nil},
		{"unknown key names key and line", "[export.referrer_discovery]\ntimeout_seconds = 30\ntimeout_second = 3\n", []string{"export.referrer_discovery.timeout_second", "line 3"}},
		{"unknown table", "[exporter]\nx = 1\n", []string{"exporter"}},
		{"bad duration", "[cache]\ncapabilities_ttl = \"a day\"\n", []string{"not a duration"}},
		{"port out of range", "[[registry]]\nhost = \"r.example.com:0\"\n", []string{"out of range"}},
		{"scheme in host", "[[registry]]\nhost = \"https://r.example.com\"\n", []string{"without a scheme"}},
		{"zero timeout", "[export.referrer_discovery]\ntimeout_seconds = 0\n", []string{"timeout_seconds"}},
		{"duplicate host", "[[registry]]\nhost = \"a.io\"\n[[registry]]\nhost = \"a.io\"\n", []string{"listed twice"}},
		{"plain and insecure", "[[registry]]\nhost = \"a.io\"\nplain_http = true\ninsecure_skip_verify = true\n", []string{"exclude each other"}},
		{"syntax error line", "[cache]\ncapabilities_ttl = = 1\n", []string{"line 2"}},
		{"referrers repository", "[[registry]]\nhost = \"ghcr.io\"\nreferrers_repository = \"ghcr.io/org/signatures\"\n", nil},
		{"referrers repository on a port", "[[registry]]\nhost = \"a.io\"\nreferrers_repository = \"localhost:5000/sigs\"\n", nil},
		{"referrers repository without host", "[[registry]]\nhost = \"a.io\"\nreferrers_repository = \"signatures\"\n", []string{"referrers_repository", "give HOST/REPO"}},
		{"referrers repository with a tag", "[[registry]]\nhost = \"a.io\"\nreferrers_repository = \"a.io/sigs:v1\"\n", []string{"referrers_repository", "not a repository name"}},
		{"referrers repository with a scheme", "[[registry]]\nhost = \"a.io\"\nreferrers_repository = \"https://a.io/sigs\"\n", []string{"referrers_repository"}},
		{"referrers repository in capitals", "[[registry]]\nhost = \"a.io\"\nreferrers_repository = \"a.io/Sigs\"\n", []string{"not a repository name"}},
		{"telemetry with bearer token", "[telemetry]\nprometheus_url = \"https://prom.example.com:9090/prefix\"\nprometheus_bearer_token_file = \"/run/secrets/prom-token\"\n", nil},
		{"telemetry with basic auth", "[telemetry]\nprometheus_url = \"http://localhost:9090\"\nprometheus_username = \"ops\"\nprometheus_password_file = \"/run/secrets/prom-pw\"\n", nil},
		{"telemetry unknown key", "[telemetry]\nprometheus_password = \"x\"\n", []string{"telemetry.prometheus_password", "line 2"}},
		{"prometheus url without scheme", "[telemetry]\nprometheus_url = \"localhost:9090\"\n", []string{"telemetry.prometheus_url", "http://"}},
		{"prometheus url without host", "[telemetry]\nprometheus_url = \"http:///api\"\n", []string{"has no host"}},
		{"prometheus url with query", "[telemetry]\nprometheus_url = \"http://p:9090/?x=1\"\n", []string{"without a query"}},
		{"both logins", "[telemetry]\nprometheus_url = \"http://p:9090\"\nprometheus_bearer_token_file = \"t\"\nprometheus_username = \"u\"\nprometheus_password_file = \"p\"\n", []string{"exclude each other"}},
		{"username without password file", "[telemetry]\nprometheus_username = \"u\"\n", []string{"needs prometheus_password_file"}},
		{"password file without username", "[telemetry]\nprometheus_password_file = \"p\"\n", []string{"needs prometheus_username"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := config.Parse([]byte(tc.toml))
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if cfg.Export.ReferrerDiscovery.TimeoutSeconds <= 0 || cfg.Cache.CapabilitiesTTL.Duration <= 0 {
					t.Fatalf("defaults lost: %+v", cfg)
				}
				return
			}
			if !errors.Is(err, config.ErrInvalid) {
				t.Fatalf("error %v is not ErrInvalid", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

// TestPrometheusURLLoginNeverEchoed: a URL carrying user:password@ is
// refused, and the error names the problem without repeating the secret.
func TestPrometheusURLLoginNeverEchoed(t *testing.T) {
	t.Parallel()
	for _, u := range []string{"http://ops:planted-pw@prom.example.com:9090", "https://planted-token@prom.example.com"} {
		_, err := config.Parse([]byte("[telemetry]\nprometheus_url = \"" + u + "\"\n"))
		if err == nil {
			t.Fatalf("%s accepted", u)
		}
		if strings.Contains(err.Error(), "planted") {
			t.Errorf("error repeats the secret: %v", err)
		}
		if !strings.Contains(err.Error(), "prometheus_password_file") || !strings.Contains(err.Error(), "prom.example.com") {
			t.Errorf("error %q does not say where the login goes or which URL", err)
		}
		if err := config.ValidatePrometheusURL(u); err == nil || strings.Contains(err.Error(), "planted") {
			t.Errorf("ValidatePrometheusURL(%s) = %v", u, err)
		}
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", dir)
	cfg, err := config.Load("")
	if err != nil || cfg.Path != "" || cfg.Cache.CapabilitiesTTL.Duration != 24*time.Hour {
		t.Fatalf("missing default file: %v %+v", err, cfg)
	}
	if _, err := config.Load(filepath.Join(dir, "nope.toml")); err == nil {
		t.Fatal("a named missing file is not an error")
	}
	p := filepath.Join(dir, "refdoctor", "config.toml")
	os.MkdirAll(filepath.Dir(p), 0o700)
	os.WriteFile(p, []byte("[cache]\ncapabilities_ttl = \"5m\"\n"), 0o600)
	cfg, err = config.Load("")
	if err != nil || cfg.Path != p || cfg.Cache.CapabilitiesTTL.Duration != 5*time.Minute {
		t.Fatalf("default location: %v %+v", err, cfg)
	}
}

// TestBundleVerifyKeys: [bundle] verify_keys names public key files that
// must exist and hold a public key; a relative path is relative to the
// configuration file's folder.
func TestBundleVerifyKeys(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pubDER, _ := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	privDER, _ := x509.MarshalPKCS8PrivateKey(priv)
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	pub := write("cosign.pub", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}))
	privFile := write("cosign.key", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDER}))
	garbage := write("notes.txt", []byte("not a key\n"))
	broken := write("broken.pub", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte("not DER")}))

	cfgFile := write("config.toml", []byte("[bundle]\nverify_keys = [\"cosign.pub\", "+strconv.Quote(pub)+"]\n"))
	cfg, err := config.Load(cfgFile)
	if err != nil {
		t.Fatalf("relative and absolute key paths: %v", err)
	}
	if len(cfg.Bundle.VerifyKeys) != 2 || cfg.Bundle.VerifyKeys[0] != pub || cfg.Bundle.VerifyKeys[1] != pub {
		t.Errorf("verify_keys = %q, want the relative one resolved against %s", cfg.Bundle.VerifyKeys, dir)
	}
	for _, c := range []struct {
		name, key string
		want      []string
	}{
		{"missing file", filepath.Join(dir, "gone.pub"), []string{"bundle.verify_keys[0]", "gone.pub", "no such file"}},
		{"private key", privFile, []string{"bundle.verify_keys[0]", "PRIVATE KEY", "cosign.pub"}},
		{"not PEM", garbage, []string{"not PEM"}},
		{"PEM, not a key", broken, []string{"not a public key"}},
		{"empty", "", []string{"bundle.verify_keys[0] is empty"}},
		{"a folder", dir, []string{"not a regular file"}},
	} {
		_, err := config.Parse([]byte("[bundle]\nverify_keys = [" + strconv.Quote(c.key) + "]\n"))
		if !errors.Is(err, config.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", c.name, err)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not say %q", c.name, err, w)
			}
		}
	}
	if _, err := config.Parse([]byte("[bundle]\nverify_key = \"x\"\n")); err == nil || !strings.Contains(err.Error(), "bundle.verify_key") {
		t.Errorf("misspelt key: %v", err)
	}
}
