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
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Start the lab of local registries and troubleshoot them",
		Long: `Start the lab: in-process registries on 127.0.0.1, each a real OCI
registry behind a thin layer that answers /referrers the way one real-world
registry does (full OCI 1.1, 404 fallback, 406, HTML 200, wrong Content-Type,
501, rate limits, refused auth, slow replies, self-signed TLS). Each is seeded
with a multi-platform image carrying an SBOM, a signature, an attestation,
cosign-style tags and a referrer attached to a platform manifest.

--serve prints the registries as JSON and serves until interrupted, so other
tools (oras, regctl, crane, curl) can be pointed at them.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			l, err := lab.Start(ctx, lab.WithLogger(g.log))
			if err != nil {
				return fmt.Errorf("start the lab: %w", err)
			}
			defer l.Close()
			if serve {
				if err := g.writeJSON(map[string]any{"registries": l.Registries, "seed": l.Seed}); err != nil {
					return err
				}
				<-ctx.Done()
				return nil
			}
			_ = noTUI // the TUI is not built yet: demo prints the probe table
			g.cfg.Registries = append(g.cfg.Registries, l.Config().Registries...)
			var targets []probe.Target
			clientOpts := []registry.Opt{registry.WithoutDockerCreds(), registry.WithLogger(g.log)}
			for _, r := range l.Registries {
				targets = append(targets, probe.Target{Host: r.Host, Repository: l.Seed.Repository})
				if r.Login != nil {
					clientOpts = append(clientOpts, registry.WithLogin(r.Host, r.Login.User, r.Login.Password))
				}
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
				fmt.Fprintf(g.stdout, "  %-16s %-16s %s\n", r.Name, r.Host, r.Mimics)
			}
			fmt.Fprintln(g.stdout)
			writeProbeTable(g.stdout, report, false)
			return nil
		},
	}
	cmd.Flags().BoolVar(&serve, "serve", false, "print the lab's registries as JSON and serve until interrupted")
	cmd.Flags().BoolVar(&noTUI, "no-tui", false, "print results instead of opening the terminal UI")
	return cmd
}
