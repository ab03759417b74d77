package telemetry

import (
	"cmp"
	"fmt"
	"io"
	"net/url"
	"os"
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/refdoctor/refdoctor/internal/atomicfile"
)

// Metric names are a contract: dashboards, alerts and the runbook grep for
// them, so they live in one place and never change spelling.
const (
	MetricCapabilitiesProbed = "export_registry_capabilities_probed_total"
	MetricDiscoveryMethod    = "export_referrer_discovery_method_total"
	MetricDiscoveryFailures  = "export_referrer_discovery_failures_total"
)

const (
	labelRegistry     = "registry"
	labelAPISupported = "api_supported"
	labelMethod       = "method"
	labelValueUnknown = "unknown"

	metricsFileMode os.FileMode = 0o644
)

// Metrics is refdoctor's set of counters on a private registry.
//
// A private registry (not prometheus.DefaultRegisterer) keeps the metrics
// file free of Go runtime noise and lets every test own its counters.
// All methods are safe for concurrent use, and a nil *Metrics is a valid
// receiver that does nothing, so engine code can count without nil checks
// when the caller did not ask for metrics.
type Metrics struct {
	registry           *prometheus.Registry
	capabilitiesProbed *prometheus.CounterVec
	discoveryMethod    *prometheus.CounterVec
	discoveryFailures  *prometheus.CounterVec
}

// Sample is one counter value, flattened for display (the TUI's metrics
// screen) and for tests.
type Sample struct {
	Name   string            `json:"name"`
	Labels map[string]string `json:"labels"`
	Value  float64           `json:"value"`
}

// NewMetrics returns a Metrics with all counters registered on a fresh
// registry.
func NewMetrics() *Metrics {
	m := &Metrics{
		registry: prometheus.NewRegistry(),
		capabilitiesProbed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricCapabilitiesProbed,
			Help: "Registries probed for OCI referrer capabilities before an export, by whether the referrers API is supported (true, false or unknown when the probe could not decide).",
		}, []string{labelRegistry, labelAPISupported}),
		discoveryMethod: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricDiscoveryMethod,
			Help: "Referrer discoveries by the method used: api (OCI 1.1 referrers API) or tags (sha256-<digest> fallback tag schema).",
		}, []string{labelRegistry, labelMethod}),
		discoveryFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricDiscoveryFailures,
			Help: "Referrer discoveries that failed, whichever method was tried.",
		}, []string{labelRegistry}),
	}
	// MustRegister cannot fail here: the registry is new and the names are
	// distinct constants, so a panic would be a programming error caught by
	// the tests.
	m.registry.MustRegister(m.capabilitiesProbed, m.discoveryMethod, m.discoveryFailures)
	return m
}

// Registry returns the underlying registry, e.g. to serve it over HTTP with
// promhttp. It returns nil for a nil Metrics.
func (m *Metrics) Registry() *prometheus.Registry {
	if m == nil {
		return nil
	}
	return m.registry
}

// CapabilityProbed counts one capability probe of registry. apiSupported
// should be "true", "false" or "unknown"; the probe report's words
// "supported" and "unsupported" are accepted too, and anything else counts
// as "unknown" so a caller's typo cannot grow the label set.
func (m *Metrics) CapabilityProbed(registry, apiSupported string) {
	if m == nil {
		return
	}
	m.capabilitiesProbed.WithLabelValues(RegistryLabel(registry), apiSupportedLabel(apiSupported)).Inc()
}

// DiscoveryMethod counts one referrer discovery of registry done with
// method "api" or "tags" ("tag" is accepted as "tags"; anything else counts
// as "unknown" to keep the label set bounded).
func (m *Metrics) DiscoveryMethod(registry, method string) {
	if m == nil {
		return
	}
	m.discoveryMethod.WithLabelValues(RegistryLabel(registry), methodLabel(method)).Inc()
}

// DiscoveryFailure counts one failed referrer discovery against registry.
func (m *Metrics) DiscoveryFailure(registry string) {
	if m == nil {
		return
	}
	m.discoveryFailures.WithLabelValues(RegistryLabel(registry)).Inc()
}

// WriteText writes all counters in the Prometheus text exposition format.
// Counters that were never incremented have no series yet and are absent,
// as with any Prometheus client.
func (m *Metrics) WriteText(w io.Writer) error {
	if m == nil {
		return nil
	}
	families, err := m.registry.Gather()
	if err != nil {
		return fmt.Errorf("gather metrics: %w", err)
	}
	for _, mf := range families {
		if _, err := expfmt.MetricFamilyToText(w, mf); err != nil {
			return fmt.Errorf("write metric %s: %w", mf.GetName(), err)
		}
	}
	return nil
}

// WriteFile writes the text exposition to path atomically: a reader (the
// node_exporter textfile collector, a CI step) sees either the old file or
// the complete new one, never a torn write. The temporary file lives in the
// same directory so the rename stays on one file system, and starts with a
// dot and lacks the .prom suffix so textfile collectors ignore it.
// A nil Metrics writes nothing.
func (m *Metrics) WriteFile(path string) error {
	if m == nil {
		return nil
	}
	// metricsFileMode, not 0600: metrics hold no secrets and are read by
	// other users' collectors.
	if err := atomicfile.Write(path, metricsFileMode, m.WriteText); err != nil {
		return fmt.Errorf("metrics file: %w", err)
	}
	return nil
}

// Snapshot returns every series' current value, sorted by metric name and
// then by labels, so a screen that redraws it does not jump around.
// A nil Metrics, or a gather error, yields nil: the snapshot is for
// display, and WriteText reports errors for callers that care.
func (m *Metrics) Snapshot() []Sample {
	if m == nil {
		return nil
	}
	families, err := m.registry.Gather()
	if err != nil {
		return nil
	}
	var samples []Sample
	for _, mf := range families {
		for _, metric := range mf.GetMetric() {
			samples = append(samples, Sample{
				Name:   mf.GetName(),
				Labels: labelMap(metric.GetLabel()),
				Value:  sampleValue(metric),
			})
		}
	}
	slices.SortFunc(samples, func(a, b Sample) int {
		return cmp.Or(cmp.Compare(a.Name, b.Name), compareLabels(a.Labels, b.Labels))
	})
	return samples
}

// RegistryLabel reduces a registry reference to the host[:port] used as
// the registry label. Callers should pass host names, but a URL or a
// reference may slip through, and one carrying user:password@ must never
// put the password into a metrics file (files get attached to tickets), so
// scheme, userinfo, path, query and fragment are all dropped. Host names
// are lower-cased because DNS is case-insensitive and one registry should
// be one series.
func RegistryLabel(registry string) string {
	s := strings.TrimSpace(registry)
	if i := strings.Index(s, "://"); i >= 0 {
		if u, err := url.Parse(s); err == nil && u.Host != "" {
			s = u.Host
		} else {
			s = s[i+len("://"):]
		}
	}
	// Cut the path first: an '@' after the first '/' is a digest
	// (repo@sha256:...), not userinfo.
	if i := strings.IndexAny(s, "/?#"); i >= 0 {
		s = s[:i]
	}
	if i := strings.LastIndex(s, "@"); i >= 0 {
		s = s[i+1:]
	}
	s = strings.ToLower(s)
	if s == "" {
		return labelValueUnknown
	}
	return s
}

func apiSupportedLabel(v string) string {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "true", "supported":
		return "true"
	case "false", "unsupported":
		return "false"
	default:
		return labelValueUnknown
	}
}

func methodLabel(v string) string {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "api":
		return "api"
	case "tags", "tag":
		return "tags"
	default:
		return labelValueUnknown
	}
}

func labelMap(pairs []*dto.LabelPair) map[string]string {
	labels := make(map[string]string, len(pairs))
	for _, p := range pairs {
		labels[p.GetName()] = p.GetValue()
	}
	return labels
}

// sampleValue covers the metric types a registry may hold, although this
// package only registers counters today.
func sampleValue(metric *dto.Metric) float64 {
	switch {
	case metric.GetCounter() != nil:
		return metric.GetCounter().GetValue()
	case metric.GetGauge() != nil:
		return metric.GetGauge().GetValue()
	case metric.GetUntyped() != nil:
		return metric.GetUntyped().GetValue()
	default:
		return 0
	}
}

// compareLabels orders label sets by their sorted name=value pairs, the
// same order the text exposition uses.
func compareLabels(a, b map[string]string) int {
	return slices.Compare(sortedPairs(a), sortedPairs(b))
}

func sortedPairs(labels map[string]string) []string {
	pairs := make([]string, 0, len(labels))
	for k, v := range labels {
		// NUL cannot appear in a label name, so it separates name from value
		// without ambiguity.
		pairs = append(pairs, k+"\x00"+v)
	}
	slices.Sort(pairs)
	return pairs
}
