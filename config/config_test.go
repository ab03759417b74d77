package config_test

import (
	"errors"
	"os"
	"path/filepath"
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
