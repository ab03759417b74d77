package cli

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/refdoctor/refdoctor/internal/human"
	"github.com/refdoctor/refdoctor/probe"
	"github.com/refdoctor/refdoctor/registry"
	"github.com/refdoctor/refdoctor/runbook"
)

// runbookFlags are the targets the runbook commands work on.
type runbookFlags struct {
	registries []string
	image      string
	source     string
	bundle     string
	exportLog  string
	diagOut    string
	prometheus string
}

// runbookOpts builds the runbook engine's options from the global
// settings. It is the one place to plug further checks in (the bundle
// validator goes here).
func (g *globals) runbookOpts() []runbook.Opt {
	return []runbook.Opt{
		runbook.WithConfig(g.cfg),
		runbook.WithMetrics(g.metrics),
		runbook.WithLogger(g.log),
		runbook.WithClientOpts(registry.WithLogger(g.log), registry.WithUserAgent("refdoctor/"+version)),
		runbook.WithToolVersion(version),
		runbook.WithProbeOpts(probe.WithSession(g.session)),
	}
}

// plainHTTPHosts are the hosts reached over http, from flags and config,
// so that rendered commands use the right scheme.
func (g *globals) plainHTTPHosts() []string {
	var hosts []string
	for _, r := range g.cfg.Registries {
		if r.PlainHTTP {
			hosts = append(hosts, r.Host)
		}
	}
	return hosts
}

// targets turns the flags into validated runbook targets. Given no
// registry and no image, the runbook works on the config's registries.
func (f *runbookFlags) targets(g *globals, command string) (runbook.Targets, error) {
	registries := f.registries
	if len(registries) == 0 && f.image == "" {
		registries = g.configRegistries(command)
	}
	t := runbook.Targets{
		Registries: registries,
		Image:      f.image,
		Source:     f.source,
		Bundle:     f.bundle,
		LogFile:    f.exportLog,
		PlainHTTP:  g.plainHTTPHosts(),
	}
	if err := t.Validate(); err != nil {
		return t, &exitError{code: ExitUsage, err: err}
	}
	return t.Complete(), nil
}

func loadBook() (*runbook.Book, error) {
	b, err := runbook.Load()
	if err != nil {
		// The book is embedded and tested; failing here is a build defect.
		return nil, fmt.Errorf("the embedded runbook is broken: %w", err)
	}
	return b, nil
}

func newRunbookCmd(g *globals) *cobra.Command {
	f := &runbookFlags{}
	cmd := &cobra.Command{
		Use:   "runbook [list|show STEP|run [STEP]]",
		Short: "Walk the referrer troubleshooting runbook without the TUI",
		Long: `The runbook as a program: symptoms and the step each leads to, each step's
explanation, causes, fixes and commands filled in with your registry, image
and bundle, and a real check behind every step (probe, discovery, tag listing,
bundle validation, export-log reading, metrics, support bundle). Where the
older runbook was wrong, the step says so and shows the truth.

Targets come from --registry, --image, --bundle and --export-log (the
exporter's log to read; --log-file is refdoctor's own log). With neither
--registry nor --image, the registries of the config's [[registry]] list are
checked; run with nothing to check at all is a usage error (exit 2), and a
step named on its own that lacks its input is one too. Plain-HTTP hosts
(--plain-http or plain_http in the config) get http:// in commands.

Exit codes of run: 0 every check passed, warned or was skipped, 1 a check
failed, 2 bad input or an unknown step, 3 a check could not complete.`,
		Example: `  refdoctor runbook list
  refdoctor runbook show probe-registry --image registry.example.com/team/app:1.2
  refdoctor runbook run --image registry.example.com/team/app:1.2 --export-log export.log
  refdoctor runbook run issue-no-referrers --image ghcr.io/org/app@sha256:... -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runbookList(g)
		},
	}
	pf := cmd.PersistentFlags()
	pf.StringArrayVar(&f.registries, "registry", nil, "registry to check: HOST, HOST/REPO or HOST/REPO@DIGEST (repeatable)")
	pf.StringVar(&f.image, "image", "", "image to check: HOST/REPO:TAG or HOST/REPO@DIGEST")
	pf.StringVar(&f.source, "source", "", "where --image was copied from (for the compare step): HOST/REPO:TAG or HOST/REPO@DIGEST")
	pf.StringVar(&f.bundle, "bundle", "", "mirror bundle to check (.tgz)")
	pf.StringVar(&f.exportLog, "export-log", "", "the exporter's log file to read")
	pf.StringVar(&f.diagOut, "diag-out", "", "where the escalation step writes its support bundle (default: refdoctor-support-<time>.tgz in the working folder; a full run writes one only with this flag)")
	pf.StringVar(&f.prometheus, "prometheus", "", "Prometheus the telemetry step asks (default: [telemetry] prometheus_url; none: only this run's counters)")

	cmd.AddCommand(&cobra.Command{
		Use:   "list",
		Short: "List symptoms, the step each leads to, and the steps by section",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runbookList(g)
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:         "show STEP",
		Annotations: map[string]string{argsAnnotation: "one step ID (refdoctor runbook list shows them)"},
		Short:       "Show one step: explanation, corrections, causes, fixes and commands",
		Args:        cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := loadBook()
			if err != nil {
				return err
			}
			step, err := stepOrUsage(b, args[0])
			if err != nil {
				return err
			}
			t, err := f.targets(g, "refdoctor runbook show")
			if err != nil {
				return err
			}
			cmds, err := step.Render(t)
			if err != nil {
				return fmt.Errorf("render step %s: %w", step.ID, err)
			}
			if g.output == "json" {
				return g.writeJSON(map[string]any{
					"step": step, "corrections": b.CorrectionsFor(step), "commands": cmds, "targets": t,
				})
			}
			writeStep(g.stdout, b, step, cmds)
			return nil
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:         "run [STEP]",
		Annotations: map[string]string{argsAnnotation: "at most one step ID (none runs every step)"},
		Short:       "Run one step's check, or every step, and print the results",
		Args:        cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := loadBook()
			if err != nil {
				return err
			}
			if len(args) == 1 {
				if _, err := stepOrUsage(b, args[0]); err != nil {
					return err
				}
			}
			t, err := f.targets(g, "refdoctor runbook run")
			if err != nil {
				return err
			}
			if len(t.Registries) == 0 && t.Image == "" && t.Bundle == "" && t.LogFile == "" {
				return usageErr("refdoctor runbook run: nothing to check: pass --registry HOST[/REPO], --image REF, --bundle FILE or --export-log FILE, or list registries as [[registry]] entries in %s", g.configFileHint())
			}
			opts := g.runbookOpts()
			if f.diagOut != "" {
				opts = append(opts, runbook.WithDiagOutput(f.diagOut))
			}
			prom, err := g.prometheusIfAny(f.prometheus)
			if err != nil {
				return err
			}
			if prom != nil {
				opts = append(opts, runbook.WithPrometheus(prom, 0))
			}
			e := runbook.NewEngine(b, t, opts...)
			var results []runbook.Result
			if len(args) == 1 {
				results = []runbook.Result{e.Run(cmd.Context(), args[0], nil)}
				if results[0].Status == runbook.StatusSkipped {
					// The operator asked for this check; not running it is
					// not a pass.
					return usageErr("step %s was not run: %s", args[0], results[0].Summary)
				}
			} else {
				results = e.RunAll(cmd.Context(), nil)
			}
			if g.output == "json" {
				if err := g.writeJSON(map[string]any{"targets": e.Targets(), "results": results}); err != nil {
					return err
				}
			} else {
				writeResults(g.stdout, b, results)
			}
			return silentExit(runbookExitCode(results))
		},
	})
	return cmd
}

// checkLabel names a step's check with its switches.
func checkLabel(c runbook.Check) string {
	label := c.Kind
	if c.Platforms {
		label += " (all platforms)"
	}
	if c.CheckReferrers {
		label += " (with referrers)"
	}
	return label
}

// stepOrUsage finds a step or fails with exit 2 listing the valid IDs.
func stepOrUsage(b *runbook.Book, id string) (runbook.Step, error) {
	step, ok := b.Step(id)
	if !ok {
		return step, usageErr("unknown step %q; valid steps: %s", id, strings.Join(b.StepIDs(), ", "))
	}
	return step, nil
}

// runbookExitCode is the worst of the results: 3 when a check could not
// complete, else 1 when one failed.
func runbookExitCode(results []runbook.Result) int {
	code := ExitOK
	for _, r := range results {
		if r.Status != runbook.StatusFailed {
			continue
		}
		if r.Incomplete {
			code = ExitIncomplete
		} else if code == ExitOK {
			code = ExitCheckFail
		}
	}
	return code
}

// skippedNeeds names the flags that would run the skipped steps.
func skippedNeeds(b *runbook.Book, results []runbook.Result) []string {
	flags := map[string]string{
		runbook.CheckDiscover:       "--image REF",
		runbook.CheckTags:           "--image REF or --registry HOST/REPO",
		runbook.CheckBundleValidate: "--bundle FILE",
		runbook.CheckLogs:           "--export-log FILE",
	}
	var needs []string
	for _, r := range results {
		s, ok := b.Step(r.Step)
		if r.Status != runbook.StatusSkipped || !ok {
			continue
		}
		if f := flags[s.Check.Kind]; f != "" && !slices.Contains(needs, f) {
			needs = append(needs, f)
		}
	}
	return needs
}

func runbookList(g *globals) error {
	b, err := loadBook()
	if err != nil {
		return err
	}
	if g.output == "json" {
		type stepEntry struct {
			ID      string        `json:"id"`
			Title   string        `json:"title"`
			Section string        `json:"section"`
			Check   runbook.Check `json:"check"`
		}
		steps := make([]stepEntry, len(b.Steps))
		for i, s := range b.Steps {
			steps[i] = stepEntry{s.ID, s.Title, s.Section, s.Check}
		}
		return g.writeJSON(map[string]any{
			"title": b.Title, "symptoms": b.Symptoms, "steps": steps, "compatibility": b.CompatibilityTable(),
		})
	}
	writeBookList(g.stdout, b)
	return nil
}

func writeBookList(w io.Writer, b *runbook.Book) {
	fmt.Fprintln(w, b.Title)
	fmt.Fprintln(w, "\nSYMPTOMS (refdoctor runbook show STEP)")
	width := len("STEP")
	for _, s := range b.Symptoms {
		width = max(width, len(s.Step))
	}
	fmt.Fprintf(w, "  %-*s  SYMPTOM\n", width, "STEP")
	for _, s := range b.Symptoms {
		writeWrapped(w, fmt.Sprintf("  %-*s  ", width, s.Step), s.Symptom)
	}
	fmt.Fprintln(w, "\nSTEPS (refdoctor runbook run STEP)")
	for _, section := range runbook.Sections() {
		steps := b.StepsIn(section)
		if len(steps) == 0 {
			continue
		}
		fmt.Fprintf(w, "%s\n", section)
		t := &table{indent: "  ", flex: []int{1}, floor: map[int]int{1: 24}}
		for _, s := range steps {
			t.add(s.ID, s.Title)
		}
		t.write(w)
	}
	fmt.Fprintln(w, "\nREGISTRY COMPATIBILITY (the older runbook's table, corrected; a probe wins)")
	for _, r := range b.CompatibilityTable() {
		fmt.Fprintf(w, "  %s [%s], last seen %s\n", r.Registry, r.Kind, r.LastSeen)
		writeWrapped(w, "    was: ", r.OlderSaid)
		writeWrapped(w, "    now: ", r.Now+"; fallback tags: "+r.Fallback)
	}
}

func writeStep(w io.Writer, b *runbook.Book, s runbook.Step, cmds []runbook.RenderedCommand) {
	fmt.Fprintf(w, "%s: %s\n", s.ID, s.Title)
	fmt.Fprintf(w, "section %s, check %s\n\n", s.Section, checkLabel(s.Check))
	writeWrapped(w, "", s.Summary)
	for _, para := range strings.Split(s.Explanation, "\n\n") {
		fmt.Fprintln(w)
		writeWrapped(w, "", para)
	}
	if cs := b.CorrectionsFor(s); len(cs) > 0 {
		fmt.Fprintln(w, "\nCORRECTS THE OLDER RUNBOOK")
		for _, c := range cs {
			writeWrapped(w, "  ", c.Topic+" ["+c.ID+"]")
			writeWrapped(w, "    it said: ", c.OlderSays)
			writeWrapped(w, "    truth:   ", c.Truth)
			writeWrapped(w, "    source:  ", c.Source)
		}
	}
	for _, list := range []struct {
		head  string
		items []string
	}{{"SYMPTOMS", s.Symptoms}, {"CAUSES", s.Causes}, {"SOLUTIONS", s.Solutions}} {
		if len(list.items) == 0 {
			continue
		}
		fmt.Fprintf(w, "\n%s\n", list.head)
		for _, it := range list.items {
			writeWrapped(w, "  - ", it)
		}
	}
	if s.Section == runbook.SectionEscalate {
		fmt.Fprintln(w, "\nCOLLECT")
		for _, it := range b.Escalation.Collect {
			writeWrapped(w, "  - ", it)
		}
		fmt.Fprintln(w, "\nOPEN A TICKET WITH")
		for _, it := range b.Escalation.Ticket {
			writeWrapped(w, "  - ", it)
		}
	}
	if len(cmds) > 0 {
		fmt.Fprintln(w, "\nCOMMANDS")
		for i, c := range cmds {
			if i > 0 {
				fmt.Fprintln(w)
			}
			// Every line of the title is a shell comment, so the block can
			// be pasted whole.
			var title strings.Builder
			writeWrapped(&title, "  ", c.Title)
			for _, line := range strings.Split(strings.TrimRight(title.String(), "\n"), "\n") {
				fmt.Fprintf(w, "#%s\n", strings.TrimPrefix(line, " "))
			}
			// Commands are not indented: a here-document or a TOML
			// snippet must paste exactly as shown.
			fmt.Fprintln(w, c.Text)
		}
	}
	if len(s.Next) > 0 {
		fmt.Fprintf(w, "\nNEXT  %s\n", strings.Join(s.Next, ", "))
	}
}

func writeResults(w io.Writer, b *runbook.Book, results []runbook.Result) {
	counts := map[runbook.Status]int{}
	for i, r := range results {
		if i > 0 {
			fmt.Fprintln(w)
		}
		counts[r.Status]++
		title := r.Step
		if s, ok := b.Step(r.Step); ok {
			title += ": " + s.Title
		}
		fmt.Fprintln(w, title)
		status := string(r.Status)
		if r.Incomplete {
			status += " (could not complete)"
		}
		switch {
		case r.SameAs != "":
			status += ", same check as " + r.SameAs
		case r.Status != runbook.StatusSkipped:
			status += fmt.Sprintf(", %d ms", r.DurationMS)
		}
		fmt.Fprintf(w, "  status   %s\n", status)
		writeWrapped(w, "  result   ", r.Summary)
		if r.Error != "" {
			writeWrapped(w, "  error    ", r.Error)
		}
		if r.SameAs != "" && len(r.Findings) > 0 {
			// The findings were printed with the step that ran the check.
			fmt.Fprintf(w, "  findings %s, as for %s above\n", human.Count(len(r.Findings), "finding"), r.SameAs)
			continue
		}
		if p := r.Prometheus; p != nil && !p.Incomplete && len(p.Registries) > 0 {
			fmt.Fprintln(w)
			writeRegistryRates(w, *p)
		}
		writeCheckTable(w, r)
		writeFindings(w, r.Findings)
	}
	fmt.Fprintf(w, "\n%d passed, %d warned, %d failed, %d skipped\n",
		counts[runbook.StatusPassed], counts[runbook.StatusWarned], counts[runbook.StatusFailed], counts[runbook.StatusSkipped])
	if needs := skippedNeeds(b, results); len(needs) > 0 {
		writeWrapped(w, "", "The skipped steps need "+strings.Join(needs, ", ")+".")
	}
}

// writeCheckTable prints what a probe-based step looked at, under a
// header: the verdicts, the timings, the compatibility table against the
// probe, or the probes that failed.
func writeCheckTable(w io.Writer, r runbook.Result) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	defer tw.Flush()
	switch {
	case r.Timing != nil:
		fmt.Fprintln(tw, "\n  REGISTRY\tTIME\tREQUESTS\tSLOWEST REQUEST")
		for _, t := range r.Timing.Registries {
			req := fmt.Sprintf("%s (%d ms)", t.SlowestRequest, t.SlowestMS)
			if t.TimedOut {
				req = "timed out; " + req
			}
			fmt.Fprintf(tw, "  %s\t%d ms\t%d\t%s\n", t.Registry, t.TotalMS, t.Requests, req)
		}
	case r.Compat != nil:
		fmt.Fprintln(tw, "\n  REGISTRY\tKIND\tEXPECTED\tOBSERVED\tAGREES")
		for _, c := range r.Compat {
			agrees := "-"
			if c.Agrees != nil {
				agrees = map[bool]string{true: "yes", false: "NO"}[*c.Agrees]
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", c.Registry, c.Kind, c.Expected, c.Observed, agrees)
		}
	case len(r.Failures) > 0:
		fmt.Fprintln(tw, "\n  REGISTRY\tCAUSE\tCODE")
		for _, f := range r.Failures {
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", f.Registry, f.Cause, f.Code)
		}
	case r.Probe != nil && r.SameAs == "":
		fmt.Fprintln(tw, "\n  REGISTRY\tREFERRERS API\tTAGS\tSTATUS")
		for _, p := range r.Probe.Registries {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", p.Registry, p.ReferrersAPI, p.FallbackTags, p.Outcome())
		}
	}
}
