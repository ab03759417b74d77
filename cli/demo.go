package cli

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/refdoctor/refdoctor/lab/labinfo"
	"github.com/refdoctor/refdoctor/probe"
	"github.com/refdoctor/refdoctor/registry"
	"github.com/refdoctor/refdoctor/ui"
)

func newDemoCmd(g *globals) *cobra.Command {
	var serve, noTUI, mouse bool
	var prometheus string
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Start the lab of local registries and troubleshoot them",
		Long: `Start the lab: local registries on 127.0.0.1, each a real OCI registry
behind a thin layer that answers /referrers the way one real-world registry
does (full OCI 1.1, 404 fallback, 406, HTML 200, wrong Content-Type, 501,
rate limits, refused auth, slow replies, self-signed TLS). Each is seeded with
a multi-platform image carrying an SBOM, a signature, an attestation,
cosign-style tags and a referrer attached to a platform manifest.

On a terminal, the troubleshooter opens on the lab; --no-tui (or output that
is not a terminal) prints the probe table instead. --serve prints the
registries as JSON (with the logins of the registries behind one) and serves
until interrupted, so other tools (oras, regctl, crane, curl) can be pointed
at them.

The lab runs as a process of its own, refdoctor-lab, found next to refdoctor
or on PATH; run from the source tree (go run . demo), refdoctor builds it.
It stops with refdoctor, however refdoctor ends, and removes its temporary
folder.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			// The TUI needs a terminal; elsewhere demo prints the table.
			tui := !serve && !noTUI && g.output != "json" && isTerminal(g.stdout)
			log := g.log
			var labLog io.Writer = g.stderr
			labLevel := g.logLevel
			logPath := ""
			if tui {
				// Nothing may log to the screen under the TUI, the lab
				// included.
				l, path, closeLog, w, err := g.tuiLog(cmd, "demo.log", true)
				if err != nil {
					return err
				}
				defer closeLog()
				log, logPath, labLog, labLevel = l, path, w, "info"
			}
			path, err := findLab(ctx, g.stderr)
			if err != nil {
				return &exitError{code: ExitIncomplete, err: err}
			}
			lp, err := startLab(ctx, path, tui || serve, labLevel, labLog)
			if err != nil {
				return &exitError{code: ExitIncomplete, err: fmt.Errorf("start the lab: %w", err)}
			}
			defer lp.Close()
			info := lp.info
			switch {
			case tui:
				// The session's own log holds the exporter-style probe
				// lines, so the logs screen has something to read back.
				// A good and a tampered bundle sit side by side in the lab
				// folder, for the bundle screen and the checksum step.
				for _, r := range info.Config() {
					if _, ok := g.cfg.Host(r.Host); !ok {
						g.cfg.Registries = append(g.cfg.Registries, r)
					}
				}
				o := labOptions(info, lp)
				o.LogFile = logPath
				return g.runTUI(cmd, o, tuiFlags{prometheus: prometheus, mouse: mouse}, log, logPath)
			case serve:
				if err := g.writeJSON(info); err != nil {
					return err
				}
				fmt.Fprintf(g.stderr, "refdoctor: lab serving %d registries from %s; Ctrl+C stops it\n", len(info.Registries), info.Dir)
				<-ctx.Done()
				return nil
			}
			g.cfg.Registries = append(g.cfg.Registries, info.Config()...)
			clientOpts := append(info.ClientOpts(), registry.WithLogger(g.log))
			report, err := g.runProbe(cmd, info.Targets(), probe.WithClientOpts(clientOpts...))
			if err != nil {
				return err
			}
			if g.output == "json" {
				return g.writeJSON(report)
			}
			fmt.Fprintln(g.stdout, "refdoctor lab: one registry per real-world behaviour, probed live")
			for _, r := range info.Registries {
				fmt.Fprintf(g.stdout, "  %-16s %s\n", r.Name, r.Host)
				writeWrapped(g.stdout, "      ", r.Mimics)
			}
			fmt.Fprintln(g.stdout)
			writeProbeTable(g.stdout, report, false)
			return nil
		},
	}
	cmd.Flags().BoolVar(&serve, "serve", false, "print the lab's registries as JSON and serve until interrupted")
	cmd.Flags().BoolVar(&noTUI, "no-tui", false, "print results instead of opening the terminal UI")
	cmd.Flags().BoolVar(&mouse, "mouse", false, "TUI: clicks on tabs and rows and the wheel (off: the terminal's own selection copies text)")
	cmd.Flags().StringVar(&prometheus, "prometheus", "", "Prometheus the TUI's Metrics screen and telemetry step ask (default: [telemetry] prometheus_url)")
	return cmd
}

// labOptions turns a running lab into what the TUI works on: its
// registries as targets (probed as the TUI opens), its seeded image and
// fallback repository, its names, logins and CA, its good bundle, and the
// refill of its Docker Hub-like pull budget.
func labOptions(info labinfo.Lab, lp *labProcess) ui.Options {
	o := ui.Options{
		Targets:      info.Targets(),
		Image:        info.Image(),
		Repository:   info.Repository(),
		Names:        info.Names(),
		ClientOpts:   info.ClientOpts(),
		ProbeOnStart: true,
	}
	if info.Bundles != nil {
		o.Bundle = info.Bundles.Good
	}
	if lp != nil {
		o.RefillBudget = map[string]func(context.Context) error{}
		for host, name := range info.RateLimited() {
			o.RefillBudget[host] = func(context.Context) error { return lp.ResetRateLimit(name) }
		}
	}
	return o
}
