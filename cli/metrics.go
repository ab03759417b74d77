package cli

import (
	"errors"
	"fmt"
	"io"
	"net/url"
	"time"

	"github.com/spf13/cobra"

	"github.com/refdoctor/refdoctor/config"
	"github.com/refdoctor/refdoctor/finding"
	"github.com/refdoctor/refdoctor/probe"
	"github.com/refdoctor/refdoctor/telemetry"
)

// historyPoints is how many steps of the window a sparkline shows (one
// more point than steps).
const historyPoints = 12

func newMetricsCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "metrics",
		Short: "Read refdoctor's telemetry back from Prometheus",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return cmd.Help()
		},
	}
	cmd.AddCommand(newMetricsQueryCmd(g))
	return cmd
}

func newMetricsQueryCmd(g *globals) *cobra.Command {
	var promURL, window string
	var registries []string
	cmd := &cobra.Command{
		Use:   "query [--prometheus URL] [--window 5m] [--registry HOST]...",
		Short: "Run the runbook's three PromQL queries against Prometheus",
		Long: `Ask Prometheus the telemetry step's three questions, with the window in
place of 5m:

  sum by (registry, api_supported) (rate(export_registry_capabilities_probed_total[5m]))
  sum by (registry, method) (rate(export_referrer_discovery_method_total[5m]))
  sum by (registry) (rate(export_referrer_discovery_failures_total[5m]))

and the same with increase() for the counts over the window. One row per
registry: probes by verdict, discoveries by method, failures and the failure
rate, with a sparkline of the failure rate across the window. A registry
whose discoveries fail, or that is discovered through the fallback tags while
the known-registry matrix expects the referrers API, gets a finding.

Prometheus comes from --prometheus or [telemetry] prometheus_url; a bearer
token (prometheus_bearer_token_file) or basic auth (prometheus_username and
prometheus_password_file) from the config are sent to that host only.

Exit codes: 0 all well, 1 a finding is a warning or worse, 2 bad input,
3 Prometheus cannot be reached or answered an error (the reply is shown).`,
		Example: `  refdoctor metrics query --prometheus http://localhost:9090
  refdoctor metrics query --window 1h --registry ghcr.io -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			w, err := telemetry.ParseWindow(window)
			if err != nil {
				return usageErr("--window: %v", err)
			}
			for _, r := range registries {
				if err := config.ValidateHost(r); err != nil {
					return usageErr("--registry: %v", err)
				}
			}
			prom, err := g.prometheus(promURL)
			if err != nil {
				return err
			}
			rep := prom.Query(cmd.Context(), telemetry.QueryOptions{
				Window: w, Registries: registries, ExpectsAPI: g.expectsAPI, HistoryPoints: historyPoints,
			})
			if err := g.print(rep, func(out io.Writer) { writeMetricsTable(out, rep) }); err != nil {
				return err
			}
			if rep.Incomplete {
				for _, f := range rep.Findings {
					if f.Severity == finding.SeverityError {
						return &exitError{code: ExitIncomplete, err: errors.New(f.Summary)}
					}
				}
				return silentExit(ExitIncomplete)
			}
			// Unlike most commands, a warning fails this one: the findings
			// are what an operator runs it to be told about.
			if w := finding.Worst(rep.Findings); w == finding.SeverityWarn || w == finding.SeverityError {
				return silentExit(ExitCheckFail)
			}
			return silentExit(ExitOK)
		},
	}
	cmd.Flags().StringVar(&promURL, "prometheus", "", "Prometheus base URL (default: [telemetry] prometheus_url)")
	cmd.Flags().StringVar(&window, "window", "5m", "rate and increase window, in Prometheus' duration syntax")
	cmd.Flags().StringArrayVar(&registries, "registry", nil, "only this registry, HOST[:PORT] (repeatable)")
	return cmd
}

// prometheusIfAny is the Prometheus of --prometheus or the config, or nil
// when neither names one.
func (g *globals) prometheusIfAny(flagURL string) (*telemetry.Prometheus, error) {
	if flagURL == "" && g.cfg.Telemetry.PrometheusURL == "" {
		return nil, nil
	}
	return g.prometheus(flagURL)
}

// prometheus builds the Prometheus client from --prometheus or the
// config. The config's credentials go only to the config's host: a
// --prometheus pointing elsewhere gets no login.
func (g *globals) prometheus(flagURL string) (*telemetry.Prometheus, error) {
	t := g.cfg.Telemetry
	u := flagURL
	if u == "" {
		u = t.PrometheusURL
	}
	if u == "" {
		where := "the config"
		if p := g.cfg.Path; p != "" {
			where = p
		} else if p := config.DefaultPath(); p != "" {
			where = p
		}
		return nil, usageErr("no Prometheus to ask: give --prometheus URL, or set prometheus_url in the [telemetry] table of %s", where)
	}
	if err := config.ValidatePrometheusURL(u); err != nil {
		return nil, usageErr("--prometheus: %v", err)
	}
	pc := telemetry.PrometheusConfig{URL: u, Timeout: 30 * time.Second, UserAgent: "refdoctor/" + version}
	if g.timeout > 0 {
		pc.Timeout = g.timeout
	}
	if sameHost(u, t.PrometheusURL) {
		pc.BearerTokenFile = t.PrometheusBearerTokenFile
		pc.Username, pc.PasswordFile = t.PrometheusUsername, t.PrometheusPasswordFile
	}
	p, err := telemetry.NewPrometheus(pc)
	if err != nil {
		return nil, &exitError{code: ExitUsage, err: err}
	}
	return p, nil
}

func sameHost(a, b string) bool {
	ua, errA := url.Parse(a)
	ub, errB := url.Parse(b)
	return errA == nil && errB == nil && ua.Host != "" && ua.Scheme == ub.Scheme && ua.Host == ub.Host
}

// expectsAPI is the known-registry matrix's word on a registry.
func (g *globals) expectsAPI(host string) (expects, known bool) {
	return probe.DefaultMatrix().ExpectsAPI(g.cfg, host)
}

// writeMetricsTable prints one row per registry (80 columns), the
// findings, and the queries to paste into Prometheus.
func writeMetricsTable(w io.Writer, rep telemetry.QueryReport) {
	fmt.Fprintf(w, "Prometheus %s · window %s · %s\n", rep.Prometheus, rep.Window, rep.At.Format(time.RFC3339))
	if !rep.Incomplete && len(rep.Registries) > 0 {
		fmt.Fprintln(w)
		writeRegistryRates(w, rep)
	}
	writeFindings(w, rep.Findings)
	if len(rep.Warnings) > 0 {
		fmt.Fprintln(w, "\nPROMETHEUS WARNINGS")
		for _, s := range rep.Warnings {
			writeWrapped(w, "  ", s)
		}
	}
	fmt.Fprintln(w, "\nQUERIES")
	for _, q := range rep.Queries {
		fmt.Fprintf(w, "  %s\n", q.PromQL)
	}
}

// writeRegistryRates is the per-registry table of a Prometheus report.
func writeRegistryRates(w io.Writer, rep telemetry.QueryReport) {
	t := &table{head: []string{"REGISTRY", "PROBES T/F/?", "API/TAGS", "FAILED", "FAIL/S", "FAIL/S, LAST " + rep.Window}, flex: []int{0}, floor: map[int]int{0: 16}}
	for _, r := range rep.Registries {
		probes := fmt.Sprintf("%s/%s/%s", count(r.Probes["true"]), count(r.Probes["false"]), count(r.Probes["unknown"]))
		methods := fmt.Sprintf("%s/%s", count(r.Discoveries["api"]), count(r.Discoveries["tags"]))
		spark := rep.Sparkline(r.FailureHistory)
		if len(r.FailureHistory) == 0 {
			spark = "-"
		}
		t.add(r.Registry, probes, methods, count(r.Failures), telemetry.FormatNumber(r.FailureRate), spark)
	}
	t.write(w)
	fmt.Fprintln(w, "(counts over the window; T/F/? = api_supported true, false, unknown)")
}

// count writes an increase() value rounded to a whole count: Prometheus
// extrapolates to the window's edges, so 2.03 means 2.
func count(v float64) string {
	return telemetry.FormatNumber(float64(int64(v + 0.5)))
}
