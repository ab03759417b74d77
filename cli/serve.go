package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/refdoctor/refdoctor/discovery"
	"github.com/refdoctor/refdoctor/finding"
	"github.com/refdoctor/refdoctor/internal/human"
	"github.com/refdoctor/refdoctor/probe"
	"github.com/refdoctor/refdoctor/registry"
	"github.com/refdoctor/refdoctor/telemetry"
)

func newServeCmd(g *globals) *cobra.Command {
	var listen string
	var interval time.Duration
	var discover []string
	cmd := &cobra.Command{
		Use:         "serve --listen ADDR [--interval DUR] [--discover REF]... [TARGET...]",
		Annotations: map[string]string{argsAnnotation: "targets to probe, HOST or HOST/REPO"},
		Short:       "Export referrer health to Prometheus (/metrics and /probe?target=)",
		Long: `Probe each target (HOST[/REPO], as for probe; default: the config's
[[registry]] hosts) every --interval, at most max_concurrent_discoveries at
once and with the capability cache honoured (no probe or discovery takes
longer than the interval), and serve the results to Prometheus in the style
of its multi-target exporters:

  /metrics              the last finished round, answered at once (a slow
                        registry delays the next round, never a scrape):
                        export_registry_capabilities_probed_total,
                        export_referrer_discovery_method_total,
                        export_referrer_discovery_failures_total,
                        refdoctor_registry_referrers_api_supported{registry}
                        (1 or 0; absent while the probe cannot decide),
                        refdoctor_registry_probe_success{registry},
                        refdoctor_registry_probe_duration_seconds{registry},
                        refdoctor_registry_ratelimit_remaining{registry} and
                        _limit (when the registry reports them),
                        refdoctor_registry_probe_cached{registry},
                        refdoctor_exporter_last_round_timestamp_seconds,
                        Go and process metrics
  /probe?target=HOST/REPO   a fresh probe of one target, answering with that
                        registry's gauges only (for relabel_configs that pass
                        __param_target)
  /-/healthy, /-/ready  ready once the first round has finished

The export_* counters count what serve does: a capability probe that sent
requests (a verdict from the cache is not a probe and is not counted; the
gauges still show it), and, for each --discover image, one referrer
discovery per round by the method it used, and a failure when it failed or
was partial (a throttled, refused or timed-out registry).

/probe sends requests, with the machine's registry logins, to any host it is
given: listen on localhost or a network only Prometheus reaches.`,
		Example: `  refdoctor serve --listen :9911 ghcr.io/org/app registry.example.com/team/app
  refdoctor serve --listen 127.0.0.1:9911 --interval 1m --discover registry.example.com/team/app:1.2`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if listen == "" {
				return usageErr("--listen is required: the address to serve on, e.g. --listen 127.0.0.1:9911")
			}
			if _, _, err := net.SplitHostPort(listen); err != nil {
				return usageErr("--listen %q: give HOST:PORT or :PORT (%v)", listen, err)
			}
			if interval < time.Second {
				return usageErr("--interval %s: use 1s or more", interval)
			}
			targets, err := g.serveTargets(cmd, args)
			if err != nil {
				return err
			}
			for _, ref := range discover {
				if _, err := discovery.ParseReference(ref); err != nil {
					return usageErr("--discover: %v", err)
				}
			}
			cache := probe.OpenCache(g.cfg)
			exp, err := telemetry.NewExporter(telemetry.ExporterConfig{
				Metrics:          g.metrics,
				Round:            g.serveRound(targets, discover, cache, interval),
				Probe:            g.serveProbe(cache),
				Interval:         interval,
				ProbeConcurrency: g.cfg.Export.ReferrerDiscovery.MaxConcurrentDiscoveries,
				Log:              g.log,
			})
			if err != nil {
				return err
			}
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return &exitError{code: ExitIncomplete, err: fmt.Errorf("listen on %s: %w", listen, err)}
			}
			what := human.Count(len(targets), "target")
			if len(targets) <= 4 {
				names := make([]string, len(targets))
				for i, t := range targets {
					names[i] = t.String()
				}
				what = strings.Join(names, ", ")
			}
			if len(discover) > 0 {
				what += " and discovering " + human.Count(len(discover), "image")
			}
			fmt.Fprintf(g.stderr, "refdoctor serve: listening on http://%s (/metrics, /probe?target=HOST/REPO); probing %s every %s\n",
				ln.Addr(), what, interval)
			if err := exp.Serve(cmd.Context(), ln); err != nil {
				return &exitError{code: ExitIncomplete, err: fmt.Errorf("serve: %w", err)}
			}
			fmt.Fprintln(g.stderr, "refdoctor serve: stopped")
			return nil
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "", "address to serve on, HOST:PORT or :PORT (required)")
	cmd.Flags().DurationVar(&interval, "interval", 5*time.Minute, "time between the starts of two probe rounds")
	cmd.Flags().StringArrayVar(&discover, "discover", nil, "also discover this image's referrers every round, HOST/REPO:TAG or HOST/REPO@DIGEST (repeatable)")
	return cmd
}

// serveTargets parses the targets, or takes the config's registries.
func (g *globals) serveTargets(cmd *cobra.Command, args []string) ([]probe.Target, error) {
	var targets []probe.Target
	for _, a := range args {
		t, err := probe.ParseTarget(a)
		if err != nil {
			return nil, &exitError{code: ExitUsage, err: err}
		}
		targets = append(targets, t)
	}
	if len(targets) == 0 {
		for _, h := range g.configRegistries("refdoctor serve") {
			t, err := probe.ParseTarget(h)
			if err != nil {
				return nil, &exitError{code: ExitUsage, err: err}
			}
			targets = append(targets, t)
		}
	}
	if len(targets) == 0 {
		return nil, g.noRegistries(cmd)
	}
	return targets, nil
}

// probeOpts are the engine settings every probe of this run uses.
func (g *globals) probeOpts() []probe.Opt {
	g.checkCache()
	return []probe.Opt{
		probe.WithConfig(g.cfg),
		probe.WithConcurrency(g.cfg.Export.ReferrerDiscovery.MaxConcurrentDiscoveries),
		probe.WithTimeout(g.probeTimeout()),
		probe.WithLogger(g.log),
		probe.WithMetrics(g.metrics),
		probe.WithClientOpts(registry.WithLogger(g.log), registry.WithUserAgent("refdoctor/"+version)),
		probe.WithSession(g.session),
		probe.WithPurpose(g.purpose),
	}
}

// serveRound probes every target (the cache answers within its TTL) and
// discovers the --discover images, all counted in g.metrics. No probe or
// discovery may take longer than the interval: a registry that throttles
// with a Retry-After of hours would otherwise hold every round for the
// whole discovery timeout, and the gauges of all registries would go stale.
func (g *globals) serveRound(targets []probe.Target, discover []string, cache *probe.Cache, interval time.Duration) func(context.Context) []telemetry.TargetHealth {
	return func(ctx context.Context) []telemetry.TargetHealth {
		// Every round probes anew (the cache answers within its TTL),
		// never from the command's session.
		opts := append(g.probeOpts(), probe.WithTimeout(min(g.probeTimeout(), interval)), probe.WithSession(nil))
		if cache != nil {
			opts = append(opts, probe.WithCache(cache))
		}
		rep, err := probe.Run(ctx, targets, opts...)
		if err != nil && !errors.Is(err, context.Canceled) {
			g.log.Error("probe round", "err", err)
		}
		if len(discover) > 0 && ctx.Err() == nil {
			dopts := append(g.discoveryOpts(false), discovery.WithTimeout(min(g.opTimeout(), interval)), discovery.WithProbeOpts(probe.WithSession(nil)))
			drep, err := discovery.DiscoverMany(ctx, discover, dopts...)
			if err != nil && !errors.Is(err, context.Canceled) {
				g.log.Error("discovery round", "err", err)
			}
			for _, r := range drep.Results {
				if r.Error != "" || r.Partial {
					g.log.Warn(fmt.Sprintf("Referrer discovery of %s failed (method=%s): %s", r.Subject.Reference, r.Method, r.Error))
				}
			}
		}
		health := make([]telemetry.TargetHealth, 0, len(rep.Registries))
		for _, r := range rep.Registries {
			health = append(health, healthOf(r))
		}
		return health
	}
}

// serveProbe is /probe: one target, probed afresh (the verdict refreshes
// the cache), counted like a round's probes.
func (g *globals) serveProbe(cache *probe.Cache) func(context.Context, string) (telemetry.TargetHealth, error) {
	return func(ctx context.Context, target string) (telemetry.TargetHealth, error) {
		t, err := probe.ParseTarget(target)
		if err != nil {
			return telemetry.TargetHealth{}, fmt.Errorf("%w: %v", telemetry.ErrBadTarget, err)
		}
		opts := append(g.probeOpts(), probe.WithRefresh(true), probe.WithSession(nil))
		if cache != nil {
			opts = append(opts, probe.WithCache(cache))
		}
		rep, _ := probe.Run(ctx, []probe.Target{t}, opts...)
		if len(rep.Registries) != 1 {
			return telemetry.TargetHealth{}, fmt.Errorf("probe of %s returned no result", t)
		}
		return healthOf(rep.Registries[0]), nil
	}
}

// healthOf reduces a probe result to the exporter's gauges. A probe
// succeeds when it reached a verdict and no error finding stands.
func healthOf(r probe.Result) telemetry.TargetHealth {
	h := telemetry.TargetHealth{Target: r.Target, Registry: r.Registry, Duration: time.Duration(r.ProbeMS) * time.Millisecond, Cached: r.Cached}
	switch r.ReferrersAPI {
	case probe.Supported:
		v := true
		h.APISupported = &v
	case probe.Unsupported:
		v := false
		h.APISupported = &v
	}
	o := r.Outcome()
	h.Success = o == finding.OutcomeOK || o == finding.OutcomeWarn
	if rl := r.RateLimit; rl != nil {
		if n, ok := rateLimitCount(rl.Remaining); ok {
			h.RateLimitRemaining = &n
		} else if rl.Throttled {
			// A 429 without a count still says nothing is left.
			zero := 0.0
			h.RateLimitRemaining = &zero
		}
		if n, ok := rateLimitCount(rl.Limit); ok {
			h.RateLimitLimit = &n
		}
	}
	return h
}

// rateLimitCount reads "76;w=21600" (RateLimit-Remaining, -Limit) as 76.
func rateLimitCount(s string) (float64, bool) {
	head, _, _ := strings.Cut(s, ";")
	n, err := strconv.ParseFloat(strings.TrimSpace(head), 64)
	if err != nil || n < 0 {
		return 0, false
	}
	return n, true
}
