//go:build linux

package telemetry_test

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/refdoctor/refdoctor/finding"
	"github.com/refdoctor/refdoctor/internal/prometheustest"
	"github.com/refdoctor/refdoctor/telemetry"
)

const emptyScrapeConfig = "global:\n  scrape_interval: 1s\nscrape_configs: []\n"

func secretFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// reportText is everything a report would show, for secret searches.
func reportText(t *testing.T, rep telemetry.QueryReport) string {
	t.Helper()
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestQueryBasicAuth runs the queries against a real Prometheus that
// requires basic auth: the password from its file gets in, a wrong one
// gets Prometheus' 401 shown as PrometheusError, and neither password
// appears in the report.
func TestQueryBasicAuth(t *testing.T) {
	t.Parallel()
	password := "planted-" + rand.Text()
	prom := prometheustest.StartT(t, emptyScrapeConfig, prometheustest.WithBasicAuth("ops", password))

	p, err := telemetry.NewPrometheus(telemetry.PrometheusConfig{URL: prom.URL, Username: "ops", PasswordFile: secretFile(t, "pw", password)})
	if err != nil {
		t.Fatal(err)
	}
	rep := p.Query(t.Context(), telemetry.QueryOptions{Window: time.Minute, HistoryPoints: 4})
	if rep.Incomplete {
		t.Fatalf("query with the right password is incomplete: %+v", rep.Findings)
	}
	// Nothing exports the counters here: the answer is "no series", a
	// warning, not "all well".
	if len(rep.Findings) != 1 || rep.Findings[0].Code != finding.NoExportSeries || rep.Outcome() != finding.OutcomeWarn {
		t.Errorf("findings %+v, want one NoExportSeries", rep.Findings)
	}
	for _, q := range rep.Queries {
		if q.Series == nil || len(q.Series) != 0 {
			t.Errorf("query %s: series %v, want an empty list", q.Name, q.Series)
		}
	}

	wrong := "planted-wrong-" + rand.Text()
	p, err = telemetry.NewPrometheus(telemetry.PrometheusConfig{URL: prom.URL, Username: "ops", PasswordFile: secretFile(t, "pw", wrong)})
	if err != nil {
		t.Fatal(err)
	}
	rep = p.Query(t.Context(), telemetry.QueryOptions{Window: time.Minute})
	if !rep.Incomplete || rep.Outcome() != finding.OutcomeIncomplete {
		t.Fatalf("wrong password: report not incomplete: %+v", rep)
	}
	if len(rep.Findings) != 1 || rep.Findings[0].Code != finding.PrometheusError || !strings.Contains(rep.Findings[0].Evidence, "401") {
		t.Errorf("wrong password: findings %+v, want PrometheusError showing the 401 reply", rep.Findings)
	}
	for _, q := range rep.Queries {
		if q.Series != nil {
			t.Errorf("an incomplete read carries series for %s: %v", q.Name, q.Series)
		}
	}
	if text := reportText(t, rep); strings.Contains(text, "planted") {
		t.Errorf("the report shows a password:\n%s", text)
	}
}

// TestQueryBearerToken puts a token check in front of a real Prometheus,
// as an authenticating proxy does: the token from the file is sent, a
// wrong one is refused, and the token never reaches the report.
func TestQueryBearerToken(t *testing.T) {
	t.Parallel()
	prom := prometheustest.StartT(t, emptyScrapeConfig)
	token := "planted-" + rand.Text()
	target, err := url.Parse(prom.URL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+token {
			http.Error(w, "bearer token required", http.StatusUnauthorized)
			return
		}
		proxy.ServeHTTP(w, r)
	})}
	ln := listen(t)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	front := "http://" + ln.Addr().String()

	p, err := telemetry.NewPrometheus(telemetry.PrometheusConfig{URL: front, BearerTokenFile: secretFile(t, "token", token)})
	if err != nil {
		t.Fatal(err)
	}
	if rep := p.Query(t.Context(), telemetry.QueryOptions{}); rep.Incomplete {
		t.Fatalf("query with the token is incomplete: %+v", rep.Findings)
	} else if rep.Window != "5m" || !strings.Contains(rep.Queries[2].PromQL, "[5m]") {
		t.Errorf("default window: %s %s", rep.Window, rep.Queries[2].PromQL)
	}
	p, err = telemetry.NewPrometheus(telemetry.PrometheusConfig{URL: front, BearerTokenFile: secretFile(t, "token", "planted-wrong")})
	if err != nil {
		t.Fatal(err)
	}
	rep := p.Query(t.Context(), telemetry.QueryOptions{})
	if !rep.Incomplete || rep.Findings[0].Code != finding.PrometheusError || !strings.Contains(rep.Findings[0].Evidence, "bearer token required") {
		t.Errorf("wrong token: %+v", rep.Findings)
	}
	if text := reportText(t, rep); strings.Contains(text, "planted") {
		t.Errorf("the report shows a token:\n%s", text)
	}
}

func TestNewPrometheusSettings(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	twoLines := filepath.Join(dir, "two")
	if err := os.WriteFile(twoLines, []byte("planted-a\nplanted-b\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		cfg  telemetry.PrometheusConfig
		want string
	}{
		{"no scheme", telemetry.PrometheusConfig{URL: "localhost:9090"}, "not an http://"},
		{"login in the URL", telemetry.PrometheusConfig{URL: "http://ops:planted@localhost:9090"}, "carries a login"},
		{"missing token file", telemetry.PrometheusConfig{URL: "http://p:9090", BearerTokenFile: filepath.Join(dir, "nope")}, "nope"},
		{"empty token file", telemetry.PrometheusConfig{URL: "http://p:9090", BearerTokenFile: empty}, "is empty"},
		{"two-line password file", telemetry.PrometheusConfig{URL: "http://p:9090", Username: "u", PasswordFile: twoLines}, "more than one line"},
		{"username without password file", telemetry.PrometheusConfig{URL: "http://p:9090", Username: "u"}, "both a username and a password file"},
		{"both logins", telemetry.PrometheusConfig{URL: "http://p:9090", Username: "u", PasswordFile: empty, BearerTokenFile: empty}, "exclude each other"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := telemetry.NewPrometheus(tc.cfg)
			if !errors.Is(err, telemetry.ErrPrometheusSettings) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want ErrPrometheusSettings mentioning %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "planted") {
				t.Errorf("error shows a secret: %v", err)
			}
		})
	}
}

func TestParseWindow(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]time.Duration{"5m": 5 * time.Minute, "90s": 90 * time.Second, "1h30m": 90 * time.Minute, "1d": 24 * time.Hour} {
		got, err := telemetry.ParseWindow(in)
		if err != nil || got != want {
			t.Errorf("ParseWindow(%q) = %v, %v; want %v", in, got, err, want)
		}
		if back, err := telemetry.ParseWindow(telemetry.FormatWindow(got)); err != nil || back != got {
			t.Errorf("FormatWindow(%v) = %q does not read back", got, telemetry.FormatWindow(got))
		}
	}
	for _, bad := range []string{"", "5", "five minutes", "-5m", "0s", "500ms"} {
		if _, err := telemetry.ParseWindow(bad); err == nil {
			t.Errorf("ParseWindow(%q) accepted", bad)
		}
	}
}

func TestSparkline(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	rep := telemetry.QueryReport{Window: "1m", HistoryStart: start, HistoryStepSeconds: 15}
	at := func(s int, v float64) telemetry.Point {
		return telemetry.Point{Time: start.Add(time.Duration(s) * time.Second), Value: v}
	}
	for _, tc := range []struct {
		name   string
		points []telemetry.Point
		want   string
	}{
		{"rising", []telemetry.Point{at(0, 0), at(15, 1), at(30, 2), at(45, 4), at(60, 8)}, "▁▁▂▄█"},
		{"gap is a space", []telemetry.Point{at(0, 1), at(30, 1), at(60, 1)}, "█ █ █"},
		{"all zero is a baseline", []telemetry.Point{at(0, 0), at(15, 0), at(30, 0), at(45, 0), at(60, 0)}, "▁▁▁▁▁"},
		{"no points", nil, "     "},
	} {
		if got := rep.Sparkline(tc.points); got != tc.want {
			t.Errorf("%s: Sparkline = %q, want %q", tc.name, got, tc.want)
		}
	}
	if got := (telemetry.QueryReport{Window: "1m"}).Sparkline([]telemetry.Point{at(0, 1)}); got != "" {
		t.Errorf("a report without history draws %q", got)
	}
}
