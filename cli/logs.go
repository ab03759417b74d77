package cli

import (
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/refdoctor/refdoctor/internal/human"
	"github.com/refdoctor/refdoctor/runbook"
)

func newLogsCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:         "logs FILE",
		Annotations: map[string]string{argsAnnotation: "one export log file"},
		Short:       "Read an export log: capability probes and failures in it",
		Long: `Read an exporter's log (or refdoctor's own --log-file) and report the lines
the runbook greps for: "Probing N registries for OCI referrer capabilities",
each "Registry HOST: OCI 1.1 / OCI 1.0" verdict, "Failed to probe
capabilities for registry HOST", and failed referrer discovery. slog text
lines (level=INFO msg="..."), slog JSON lines and plain "[INFO] ..." lines
are understood; FILE - reads standard input.

Exit codes: 0 no failures, 1 failures or undecided probes in the log,
2 the file cannot be read.`,
		Example: `  refdoctor logs /var/log/exporter/export-center.log
  refdoctor logs refdoctor.log -o json | jq '.probes[] | select(.api != "supported")'`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var r io.Reader
			name := args[0]
			if name == "-" {
				r, name = cmd.InOrStdin(), "standard input"
			} else {
				f, err := os.Open(name)
				if err != nil {
					return &exitError{code: ExitUsage, err: fmt.Errorf("read log: %w", err)}
				}
				defer f.Close()
				r = f
			}
			rep, err := runbook.ReadLog(r)
			if err != nil {
				return &exitError{code: ExitUsage, err: fmt.Errorf("%s: %w", name, err)}
			}
			if err := g.print(rep, func(w io.Writer) { writeLogReport(w, name, rep) }); err != nil {
				return err
			}
			if len(rep.Failures) > 0 || rep.Unknown() > 0 {
				return silentExit(ExitCheckFail)
			}
			return nil
		},
	}
}

func writeLogReport(w io.Writer, name string, rep runbook.LogReport) {
	fmt.Fprintf(w, "%s: %s, %s announced, %s, %s\n",
		name, human.Count(rep.Lines, "line"), human.Count(len(rep.Announced), "probe run"), human.Count(len(rep.Probes), "verdict"), human.Count(len(rep.Failures), "failure line"))
	if rep.Truncated > 0 {
		fmt.Fprintf(w, "(%s longer than %d bytes cut)\n", human.Count(rep.Truncated, "line"), runbook.MaxLogLine)
	}
	fmt.Fprintln(w, "\nPROBES")
	if len(rep.Probes) == 0 {
		fmt.Fprintln(w, "  (none)")
	} else {
		t := &table{indent: "  ", head: []string{"LINE", "LEVEL", "REGISTRY", "REFERRERS API", "VERSION", "MS"}, flex: []int{3, 4, 2}, floor: map[int]int{2: 16}}
		for _, p := range rep.Probes {
			api := p.API
			if p.Reason != "" {
				api += " (" + p.Reason + ")"
			}
			ms := strconv.Itoa(p.ProbeMS)
			if p.Cached {
				ms = "cache " + orDash(p.Age)
			}
			t.add(strconv.Itoa(p.Line), orDash(p.Level), p.Host, api, orDash(p.Version), ms)
		}
		t.write(w)
	}
	fmt.Fprintln(w, "\nFAILURES")
	if len(rep.Failures) == 0 {
		fmt.Fprintln(w, "  (none)")
	}
	for _, f := range rep.Failures {
		writeWrapped(w, fmt.Sprintf("  line %d %s: ", f.Line, orDash(f.Level)), f.Text)
	}
	writeFindings(w, rep.Findings)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
