package probe_test

import (
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
