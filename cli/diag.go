package cli

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/refdoctor/refdoctor/internal/human"
	"github.com/refdoctor/refdoctor/registry"
	"github.com/refdoctor/refdoctor/runbook"
)

func newDiagCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "diag",
		Short: "Diagnostics for support tickets",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return cmd.Help()
		},
	}
	var (
		out       string
		regs      []string
		image     string
		exportLog string
	)
	collect := &cobra.Command{
		Use:   "collect [--out FILE.tgz]",
		Short: "Write a support bundle, credentials removed",
		Long: `Probe the given registries (with neither --registry nor --image, those of
the config's [[registry]] list) afresh, and discover the image, with a
debug-level log, and write one archive for a support ticket: the log, the
probe and discovery results, the metrics, each registry's kind and version,
the configuration in force, the tool version and OS facts. Passwords,
tokens, Authorization values, the values of sensitive environment variables,
and the secrets and user names of docker logins are removed from every file.
The archive is written to a temporary file next to FILE (mode 0600) and
renamed into place.

Support bundles go to the working folder as refdoctor-support-<time>.tgz
unless a file is named, here with --out (the same rule as the TUI's d and
runbook run escalate).

Exit codes: 0 written, 2 bad input or an unwritable path, 3 interrupted.`,
		Example: `  refdoctor diag collect --out refdoctor-diag.tgz --registry ghcr.io --image ghcr.io/org/app:1.2
  refdoctor diag collect --out diag.tgz --export-log /var/log/exporter/export.log`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				out = runbook.DefaultDiagPath(time.Now())
			}
			if len(regs) == 0 && image == "" {
				regs = g.configRegistries("refdoctor diag collect")
			}
			t := runbook.Targets{Registries: regs, Image: image, LogFile: exportLog, PlainHTTP: g.plainHTTPHosts()}
			if err := t.Validate(); err != nil {
				return &exitError{code: ExitUsage, err: err}
			}
			res, err := runbook.CollectDiag(cmd.Context(), out, runbook.DiagOptions{
				Targets:     t,
				Config:      g.cfg,
				ToolVersion: version,
				Metrics:     g.metrics,
				ClientOpts:  []registry.Opt{registry.WithUserAgent("refdoctor/" + version)},
				Timeout:     g.opTimeout(),
			})
			if err != nil {
				if errors.Is(err, runbook.ErrDiagOutput) {
					return &exitError{code: ExitUsage, err: err}
				}
				return &exitError{code: ExitIncomplete, err: err}
			}
			if g.output == "json" {
				return g.writeJSON(res)
			}
			fmt.Fprintf(g.stdout, "wrote %s (%s, mode 0600)\n", res.Path, human.Count64(res.Bytes, "byte"))
			for _, f := range res.Files {
				fmt.Fprintf(g.stdout, "  %s\n", f)
			}
			fmt.Fprintln(g.stdout, "Credentials were removed; look through the files before you send them.")
			return nil
		},
	}
	f := collect.Flags()
	f.StringVar(&out, "out", "", "support bundle to write (default: refdoctor-support-<time>.tgz in the working folder)")
	f.StringArrayVar(&regs, "registry", nil, "registry to probe: HOST, HOST/REPO or HOST/REPO@DIGEST (repeatable)")
	f.StringVar(&image, "image", "", "image to discover: HOST/REPO:TAG or HOST/REPO@DIGEST")
	f.StringVar(&exportLog, "export-log", "", "exporter's log to read and include, redacted")
	cmd.AddCommand(collect)
	return cmd
}
