package telemetry

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

func TestMetricsTextOutput(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		count func(m *Metrics)
		want  []string
	}{
		{
			name: "capability probed",
			count: func(m *Metrics) {
				m.CapabilityProbed("gcr.io", "true")
				m.CapabilityProbed("gcr.io", "true")
				m.CapabilityProbed("registry.example.com:5000", "false")
				m.CapabilityProbed("quay.io", "unknown")
			},
			want: []string{
				"# HELP export_registry_capabilities_probed_total ",
				"# TYPE export_registry_capabilities_probed_total counter",
				`export_registry_capabilities_probed_total{api_supported="true",registry="gcr.io"} 2`,
				`export_registry_capabilities_probed_total{api_supported="false",registry="registry.example.com:5000"} 1`,
				`export_registry_capabilities_probed_total{api_supported="unknown",registry="quay.io"} 1`,
			},
		},
		{
			name: "probe report words map to the contract values",
			count: func(m *Metrics) {
				m.CapabilityProbed("a.example", "supported")
				m.CapabilityProbed("b.example", "Unsupported")
				m.CapabilityProbed("c.example", "maybe")
			},
			want: []string{
				`export_registry_capabilities_probed_total{api_supported="true",registry="a.example"} 1`,
				`export_registry_capabilities_probed_total{api_supported="false",registry="b.example"} 1`,
				`export_registry_capabilities_probed_total{api_supported="unknown",registry="c.example"} 1`,
			},
		},
		{
			name: "discovery method",
			count: func(m *Metrics) {
				m.DiscoveryMethod("ghcr.io", "api")
				m.DiscoveryMethod("docker.io", "tags")
				m.DiscoveryMethod("docker.io", "tags")
				m.DiscoveryMethod("docker.io", "tags")
			},
			want: []string{
				"# HELP export_referrer_discovery_method_total ",
				"# TYPE export_referrer_discovery_method_total counter",
				`export_referrer_discovery_method_total{method="api",registry="ghcr.io"} 1`,
				`export_referrer_discovery_method_total{method="tags",registry="docker.io"} 3`,
			},
		},
		{
			name: "discovery failures",
			count: func(m *Metrics) {
				m.DiscoveryFailure("harbor.example.com")
				m.DiscoveryFailure("harbor.example.com")
			},
			want: []string{
				"# HELP export_referrer_discovery_failures_total ",
				"# TYPE export_referrer_discovery_failures_total counter",
				`export_referrer_discovery_failures_total{registry="harbor.example.com"} 2`,
			},
		},
		{
			name: "credentials in a URL-like registry never reach a label",
			count: func(m *Metrics) {
				m.DiscoveryFailure("https://bob:hunter2@Registry.Example.com:5000/v2/")
				m.DiscoveryMethod("alice:s3cret@registry.example.com/team/app@sha256:abc", "api")
			},
			want: []string{
				`export_referrer_discovery_failures_total{registry="registry.example.com:5000"} 1`,
				`export_referrer_discovery_method_total{method="api",registry="registry.example.com"} 1`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m := NewMetrics()
			tt.count(m)
			var buf bytes.Buffer
			if err := m.WriteText(&buf); err != nil {
				t.Fatalf("WriteText: %v", err)
			}
			out := buf.String()
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q\n%s", w, out)
				}
			}
			for _, secret := range []string{"hunter2", "s3cret", "bob", "alice"} {
				if strings.Contains(out, secret) {
					t.Errorf("output contains %q\n%s", secret, out)
				}
			}
		})
	}
}

func TestRegistryLabel(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want string
	}{
		{"gcr.io", "gcr.io"},
		{"127.0.0.1:5000", "127.0.0.1:5000"},
		{"  Quay.IO ", "quay.io"},
		{"https://user:pass@host.example:443/v2/?x=1", "host.example:443"},
		{"http://token@host.example", "host.example"},
		{"user:pass@host.example", "host.example"},
		{"host.example/repo@sha256:0123", "host.example"},
		{"oci://[::1]:5000/repo", "[::1]:5000"},
		{"", "unknown"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			if got := RegistryLabel(tt.in); got != tt.want {
				t.Errorf("RegistryLabel(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestWriteFileIsAtomicAndParses(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "refdoctor.prom")
	// A previous run's file must be replaced whole, not appended to or
	// truncated in place.
	if err := os.WriteFile(path, []byte("stale content that is not a metric\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	m := NewMetrics()
	m.CapabilityProbed("gcr.io", "true")
	m.DiscoveryMethod("gcr.io", "api")
	m.DiscoveryFailure("docker.io")
	if err := m.WriteFile(path); err != nil {
		t.Fatalf("WriteFile: %v", err)
	}

	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := info.Mode().Perm(); got != 0o644 {
		t.Errorf("mode = %v, want 0644", got)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != "refdoctor.prom" {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("directory holds %v, want only refdoctor.prom (temp file left behind?)", names)
	}

	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	parser := expfmt.NewTextParser(model.LegacyValidation)
	families, err := parser.TextToMetricFamilies(f)
	if err != nil {
		t.Fatalf("parse metrics file: %v", err)
	}
	for _, name := range []string{MetricCapabilitiesProbed, MetricDiscoveryMethod, MetricDiscoveryFailures} {
		mf, ok := families[name]
		if !ok {
			t.Errorf("metrics file lacks %s", name)
			continue
		}
		if got := mf.GetMetric()[0].GetCounter().GetValue(); got != 1 {
			t.Errorf("%s = %v, want 1", name, got)
		}
		if mf.GetHelp() == "" {
			t.Errorf("%s has no help text", name)
		}
	}
}

func TestWriteFileErrorLeavesNothingBehind(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	// Renaming onto a directory fails after the temp file was written, which
	// exercises the clean-up path.
	target := filepath.Join(dir, "is-a-dir")
	if err := os.Mkdir(target, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(target, "keep"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	m := NewMetrics()
	m.DiscoveryFailure("gcr.io")
	if err := m.WriteFile(target); err == nil {
		t.Fatal("WriteFile onto a non-empty directory succeeded")
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want 1 (temp file left behind?)", len(entries))
	}
}

func TestSnapshotOrder(t *testing.T) {
	t.Parallel()
	m := NewMetrics()
	// Deliberately out of order.
	m.DiscoveryFailure("z.example")
	m.DiscoveryMethod("b.example", "tags")
	m.DiscoveryMethod("b.example", "api")
	m.DiscoveryMethod("a.example", "tags")
	m.CapabilityProbed("b.example", "true")
	m.CapabilityProbed("a.example", "false")
	m.CapabilityProbed("a.example", "false")
	m.DiscoveryFailure("a.example")

	got := m.Snapshot()
	// Plain byte order of names: "export_referrer_..." sorts before
	// "export_registry_...".
	want := []Sample{
		{MetricDiscoveryFailures, map[string]string{"registry": "a.example"}, 1},
		{MetricDiscoveryFailures, map[string]string{"registry": "z.example"}, 1},
		{MetricDiscoveryMethod, map[string]string{"method": "api", "registry": "b.example"}, 1},
		{MetricDiscoveryMethod, map[string]string{"method": "tags", "registry": "a.example"}, 1},
		{MetricDiscoveryMethod, map[string]string{"method": "tags", "registry": "b.example"}, 1},
		{MetricCapabilitiesProbed, map[string]string{"api_supported": "false", "registry": "a.example"}, 2},
		{MetricCapabilitiesProbed, map[string]string{"api_supported": "true", "registry": "b.example"}, 1},
	}
	if len(got) != len(want) {
		t.Fatalf("Snapshot has %d samples, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		if got[i].Name != want[i].Name || got[i].Value != want[i].Value || !equalLabels(got[i].Labels, want[i].Labels) {
			t.Errorf("sample %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

func equalLabels(a, b map[string]string) bool {
	return slices.Equal(sortedPairs(a), sortedPairs(b))
}

func TestNilMetricsIsNoOp(t *testing.T) {
	t.Parallel()
	var m *Metrics
	tests := []struct {
		name string
		call func(t *testing.T)
	}{
		{"CapabilityProbed", func(*testing.T) { m.CapabilityProbed("gcr.io", "true") }},
		{"DiscoveryMethod", func(*testing.T) { m.DiscoveryMethod("gcr.io", "api") }},
		{"DiscoveryFailure", func(*testing.T) { m.DiscoveryFailure("gcr.io") }},
		{"WriteText", func(t *testing.T) {
			var buf bytes.Buffer
			if err := m.WriteText(&buf); err != nil || buf.Len() != 0 {
				t.Errorf("WriteText = %v, wrote %q", err, buf.String())
			}
		}},
		{"WriteFile", func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "m.prom")
			if err := m.WriteFile(path); err != nil {
				t.Errorf("WriteFile: %v", err)
			}
			if _, err := os.Stat(path); !os.IsNotExist(err) {
				t.Errorf("nil Metrics created %s", path)
			}
		}},
		{"Snapshot", func(t *testing.T) {
			if s := m.Snapshot(); s != nil {
				t.Errorf("Snapshot = %v, want nil", s)
			}
		}},
		{"Registry", func(t *testing.T) {
			if r := m.Registry(); r != nil {
				t.Errorf("Registry = %v, want nil", r)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.call(t)
		})
	}
}

func TestMetricsConcurrentUse(t *testing.T) {
	t.Parallel()
	m := NewMetrics()
	dir := t.TempDir()
	const workers, perWorker = 8, 100
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range perWorker {
				m.CapabilityProbed("gcr.io", "true")
				m.DiscoveryMethod("gcr.io", "api")
				m.DiscoveryFailure("gcr.io")
				_ = m.Snapshot()
				if err := m.WriteFile(filepath.Join(dir, "m.prom")); err != nil {
					t.Errorf("WriteFile: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	for _, s := range m.Snapshot() {
		if s.Value != workers*perWorker {
			t.Errorf("%s%v = %v, want %d", s.Name, s.Labels, s.Value, workers*perWorker)
		}
	}
	if m.Registry() == nil {
		t.Error("Registry() = nil")
	}
}
