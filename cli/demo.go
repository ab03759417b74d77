package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/refdoctor/refdoctor/lab"
	"github.com/refdoctor/refdoctor/probe"
	"github.com/refdoctor/refdoctor/registry"
)

func newDemoCmd(g *globals) *cobra.Command {
	var serve, noTUI bool
	var prometheus string
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Start the lab of local registries and troubleshoot them",
		Long: `Start the lab: in-process registries on 127.0.0.1, each a real OCI
registry behind a thin layer that answers /referrers the way one real-world
registry does (full OCI 1.1, 404 fallback, 406, HTML 200, wrong Content-Type,
501, rate limits, refused auth, slow replies, self-signed TLS). Each is seeded
with a multi-platform image carrying an SBOM, a signature, an attestation,
cosign-style tags and a referrer attached to a platform manifest.

On a terminal, the troubleshooter opens on the lab; --no-tui (or output that
is not a terminal) prints the probe table instead. --serve prints the
registries as JSON and serves until interrupted, so other tools (oras,
regctl, crane, curl) can be pointed at them.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			// The TUI needs a terminal; elsewhere demo prints the table.
			tui := !serve && !noTUI && g.output != "json" && isTerminal(g.stdout)
			log := g.log
			logPath := ""
			if tui {
				// Nothing may log to the screen under the TUI, the lab
				// included.
				l, path, closeLog, err := g.tuiLog(cmd, "demo.log", true)
				if err != nil {
					return err
				}
				defer closeLog()
				log, logPath = l, path
			}
			l, err := lab.Start(ctx, lab.WithLogger(log))
			if err != nil {
				return fmt.Errorf("start the lab: %w", err)
			}
			defer l.Close()
			if tui {
				// The session's own log holds the exporter-style probe
				// lines, so the logs screen has something to read back.
				// A good and a tampered bundle sit side by side in the lab
				// folder, for the bundle screen and the checksum step.
				b, err := l.WriteBundles(ctx, "oci11")
				if err != nil {
					return err
				}
				return g.runTUI(cmd, tuiFlags{exportLog: logPath, bundle: b.Good, prometheus: prometheus}, l, log, logPath)
			}
			if serve {
				b, err := l.WriteBundles(ctx, "oci11")
				if err != nil {
					return err
				}
				if err := g.writeJSON(map[string]any{"registries": l.Registries, "seed": l.Seed, "bundles": b}); err != nil {
					return err
				}
				<-ctx.Done()
				return nil
			}
			g.cfg.Registries = append(g.cfg.Registries, l.Config().Registries...)
			var targets []probe.Target
			clientOpts := append(l.ClientOpts(), registry.WithLogger(g.log))
			for _, r := range l.Registries {
				targets = append(targets, probe.Target{Host: r.Host, Repository: l.Seed.Repository})
			}
			report, err := g.runProbe(cmd, targets, probe.WithClientOpts(clientOpts...))
			if err != nil {
				return err
			}
			if g.output == "json" {
				return g.writeJSON(report)
			}
			fmt.Fprintln(g.stdout, "refdoctor lab: one registry per real-world behaviour, probed live")
			for _, r := range l.Registries {
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
	cmd.Flags().StringVar(&prometheus, "prometheus", "", "Prometheus the TUI's Metrics screen and telemetry step ask (default: [telemetry] prometheus_url)")
	return cmd
}
