package probe_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/refdoctor/refdoctor/config"
	"github.com/refdoctor/refdoctor/probe"
)

func TestMatrixExpectsAPI(t *testing.T) {
	t.Parallel()
	cfg := config.Defaults()
	cfg.Registries = []config.Registry{
		{Host: "harbor.internal", Expected: "harbor"},
		{Host: "Mirror.Internal:5000", Expected: "ghcr"},
		{Host: "zot.internal", Expected: "olareg"},
	}
	m := probe.DefaultMatrix()
	for _, tc := range []struct {
		host           string
		expects, known bool
	}{
		{"ghcr.io", false, true},                                     // its own row: unsupported
		{"docker.io", true, true},                                    // its own row: supported
		{"123456789012.dkr.ecr.eu-west-1.amazonaws.com", true, true}, // a host pattern
		{"europe-docker.pkg.dev", false, false},                      // "varies": no dated source for the API
		{"mirror.internal:5000", false, true},                        // the config's kind, host case aside
		{"zot.internal", true, true},
		{"harbor.internal", false, false}, // "varies": no expectation
		{"unknown.example", false, false},
	} {
		expects, known := m.ExpectsAPI(cfg, tc.host)
		if expects != tc.expects || known != tc.known {
			t.Errorf("ExpectsAPI(%s) = %v, %v; want %v, %v", tc.host, expects, known, tc.expects, tc.known)
		}
	}
}

// TestKindOf: the kind the config names wins over the host name's row,
// and each says where it came from.
func TestKindOf(t *testing.T) {
	t.Parallel()
	cfg := config.Defaults()
	cfg.Registries = []config.Registry{
		{Host: "ghcr.io", Expected: "olareg"}, // the operator's word wins
		{Host: "mirror.internal", Expected: "harbor"},
		{Host: "plain.internal"},
	}
	m := probe.DefaultMatrix()
	for _, tc := range []struct {
		host, kind, source string
		ok                 bool
	}{
		{"ghcr.io", "olareg", probe.KindFromConfig, true},
		{"MIRROR.internal", "harbor", probe.KindFromConfig, true},
		{"docker.io", "dockerhub", probe.KindFromHost, true},
		{"plain.internal", "", "", false},
	} {
		k, source, ok := m.KindOf(cfg, tc.host)
		if k.Key != tc.kind || source != tc.source || ok != tc.ok {
			t.Errorf("KindOf(%s) = %q, %q, %v; want %q, %q, %v", tc.host, k.Key, source, ok, tc.kind, tc.source, tc.ok)
		}
	}
}

// TestCheckConfigNamesLineAndKinds: an expected kind the matrix lacks is
// an error naming the line, the entry and every known kind.
func TestCheckConfigNamesLineAndKinds(t *testing.T) {
	t.Parallel()
	cfg, err := config.Parse([]byte("[cache]\ncapabilities_ttl = \"1h\"\n\n[[registry]]  # first\nhost = \"a.internal\"\nexpected = \"olareg\"\n\n[[registry]]\nhost = \"b.internal\"\nplain_http = true\nexpected = \"nonsense-kind\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	err = probe.DefaultMatrix().CheckConfig(cfg)
	if !errors.Is(err, config.ErrInvalid) {
		t.Fatalf("CheckConfig = %v, want config.ErrInvalid", err)
	}
	for _, want := range append([]string{"line 11", "registry[1] (b.internal)", `"nonsense-kind"`}, probe.DefaultMatrix().Keys()...) {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	cfg.Registries[1].Expected = "distribution"
	if err := probe.DefaultMatrix().CheckConfig(cfg); err != nil {
		t.Errorf("a known kind: %v", err)
	}
}
