//go:build linux

package prometheustest_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/refdoctor/refdoctor/internal/prometheustest"
	"github.com/refdoctor/refdoctor/telemetry"
)

var deployDir = filepath.Join("..", "..", "deploy", "prometheus")

func promtool(t *testing.T, args ...string) string {
	t.Helper()
	bin, err := prometheustest.PromtoolBinary()
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%v", err)
		}
		t.Skipf("skipping: %v", err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = deployDir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestDeployExamplesPassPromtool: the scrape config (with its rule file)
// and the alerting rules are valid, and each alert fires on the story in
// alerts_test.yml and stays quiet on the healthy registry beside it.
func TestDeployExamplesPassPromtool(t *testing.T) {
	t.Parallel()
	if out := promtool(t, "check", "config", "prometheus.yml"); !strings.Contains(out, "SUCCESS") {
		t.Errorf("promtool check config:\n%s", out)
	}
	if out := promtool(t, "check", "rules", "alerts.yml"); !strings.Contains(out, "SUCCESS: 5 rules found") {
		t.Errorf("promtool check rules:\n%s", out)
	}
	if out := promtool(t, "test", "rules", "alerts_test.yml"); !strings.Contains(out, "SUCCESS") {
		t.Errorf("promtool test rules:\n%s", out)
	}
}

// TestGrafanaDashboardRunsTheRunbookQueries: the dashboard's three graphs
// are the runbook's queries, with the registry filter and the window
// variable (default 5m) in place.
func TestGrafanaDashboardRunsTheRunbookQueries(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile(filepath.Join(deployDir, "grafana-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Title  string `json:"title"`
		Panels []struct {
			Title   string `json:"title"`
			Type    string `json:"type"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Name    string `json:"name"`
				Current struct {
					Value any `json:"value"`
				} `json:"current"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatalf("grafana-dashboard.json: %v", err)
	}
	window := ""
	for _, v := range dash.Templating.List {
		if v.Name == "window" {
			window, _ = v.Current.Value.(string)
		}
	}
	if window != "5m" {
		t.Errorf("the window variable defaults to %q, want the runbook's 5m", window)
	}
	var exprs []string
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			exprs = append(exprs, strings.NewReplacer(`{registry=~"$registry"}`, "", "$window", window).Replace(tg.Expr))
		}
	}
	for name, q := range telemetry.RunbookQueries("5m") {
		found := false
		for _, e := range exprs {
			found = found || e == q
		}
		if !found {
			t.Errorf("the dashboard lacks the runbook's %s query %q", name, q)
		}
	}
}
