package cli

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/refdoctor/refdoctor/finding"
	"github.com/refdoctor/refdoctor/probe"
	"github.com/refdoctor/refdoctor/registry"
)

func newProbeCmd(g *globals) *cobra.Command {
	var refresh, requireAPI, showExchanges bool
	cmd := &cobra.Command{
		Use:         "probe [HOST[/REPO[@DIGEST]]...]",
		Annotations: map[string]string{argsAnnotation: "registries to probe, HOST, HOST/REPO or HOST/REPO@sha256:DIGEST"},
		Short:       "Probe registries for OCI referrers API support",
		Long: `Probe each registry for the OCI 1.1 referrers API and the tag-schema
fallback, concurrently. The verdict follows the distribution spec: only a 200
carrying an OCI image index means "supported"; 404, 405, 406, 501, HTML or
non-index replies mean "unsupported, fall back to tags"; refusals and missing
logins, rate limits, timeouts, replies cut short or over --max-reply-size, and
servers that are not registries mean "unknown". Redirects are followed (at
most 10) and the final reply decides. Give HOST/REPO (an existing repository)
for a certain verdict. With no arguments, the registries of the config's
[[registry]] list are probed. Conclusive verdicts are cached (cache.capabilities_ttl;
see refdoctor cache show), and a cached verdict says its age.

Exit codes: 0 verdicts reached, 1 a registry cannot serve referrers at all or
the API is missing where --require-api asks for it, 2 bad input, 3 a probe
could not complete (network, missing login, timeout, rate limit, not a
registry).`,
		Example: `  refdoctor probe ghcr.io/org/app registry.example.com/team/app
  refdoctor probe                  # the registries of the config file
  refdoctor probe --plain-http localhost:5000 localhost:5000/demo/app -o json`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				args = g.configRegistries("refdoctor probe")
				if len(args) == 0 {
					return g.noRegistries(cmd)
				}
			}
			targets := make([]probe.Target, 0, len(args))
			for _, a := range args {
				t, err := probe.ParseTarget(a)
				if err != nil {
					return &exitError{code: ExitUsage, err: err}
				}
				targets = append(targets, t)
			}
			opts := []probe.Opt{probe.WithRefresh(refresh)}
			if g.stderrIsTerminal() {
				// Slow registries take seconds: say what is happening.
				var mu sync.Mutex
				opts = append(opts, probe.WithEvents(func(e probe.Event) {
					if e.Kind != probe.EventFinished || e.Result == nil {
						return
					}
					mu.Lock()
					defer mu.Unlock()
					fmt.Fprintf(g.stderr, "  probed %s: %s (%s)\n", e.Target, e.Result.ReferrersAPI, e.Result.Outcome())
				}))
			}
			report, err := g.runProbe(cmd, targets, opts...)
			if err != nil {
				return err
			}
			if err := g.print(report, func(w io.Writer) { writeProbeTable(w, report, showExchanges) }); err != nil {
				return err
			}
			return silentExit(probeExitCode(report, requireAPI))
		},
	}
	cmd.Flags().BoolVar(&refresh, "refresh", false, "ignore cached verdicts and probe again")
	cmd.Flags().BoolVar(&requireAPI, "require-api", false, "exit 1 unless every registry serves the referrers API")
	cmd.Flags().BoolVar(&showExchanges, "exchanges", false, "list every HTTP exchange of each probe (table output)")
	return cmd
}

// runProbe runs the engine with the global settings.
func (g *globals) runProbe(cmd *cobra.Command, targets []probe.Target, extra ...probe.Opt) (probe.Report, error) {
	return probe.Run(cmd.Context(), targets, append(g.probeOpts(), extra...)...)
}

func probeExitCode(report probe.Report, requireAPI bool) int {
	code := ExitOK
	for _, r := range report.Registries {
		switch r.Outcome() {
		case finding.OutcomeIncomplete:
			code = ExitIncomplete
		case finding.OutcomeFailed:
			if code == ExitOK {
				code = ExitCheckFail
			}
		}
		if requireAPI && r.ReferrersAPI == probe.Unsupported && code == ExitOK {
			code = ExitCheckFail
		}
	}
	return code
}

// writeProbeTable prints the capability table (sized to the terminal;
// whole values elsewhere) and then each registry's findings with cause
// and remedy.
func writeProbeTable(w io.Writer, report probe.Report, exchanges bool) {
	t := &table{head: []string{"REGISTRY", "KIND", "REFERRERS API", "TAGS", "AUTH", "MS", "STATUS"}, flex: []int{1, 4, 0}, floor: map[int]int{0: 16}, gap: 1}
	for _, r := range report.Registries {
		api := string(r.ReferrersAPI)
		if r.Expected != nil && r.Expected.Matches != nil && !*r.Expected.Matches {
			api += "!"
		}
		ms := fmt.Sprint(r.ProbeMS)
		if r.Cached {
			ms = "cache " + probe.Age(time.Since(r.CachedAt))
		}
		t.add(r.Registry, kindLabel(r), api, r.FallbackTags, r.Auth, ms, string(r.Outcome()))
	}
	t.write(w)
	differs, configured, recognised := false, false, false
	for _, r := range report.Registries {
		if r.Expected != nil && r.Expected.Matches != nil && !*r.Expected.Matches {
			differs = true
		}
		configured = configured || r.KindSource == probe.KindFromConfig
		recognised = recognised || r.KindSource == probe.KindFromHost
	}
	switch {
	case configured && recognised:
		fmt.Fprintln(w, "(* = kind recognised from the host name; the others from expected in the config)")
	case configured:
		fmt.Fprintln(w, "(kinds from expected in the config)")
	case recognised:
		fmt.Fprintln(w, "(* = kind recognised from the host name)")
	}
	if differs {
		fmt.Fprintln(w, "(! = differs from the known-registry matrix)")
	}
	for _, r := range report.Registries {
		fmt.Fprintf(w, "\n%s", r.Target)
		details := []string{}
		if r.ReferrersStatus != 0 {
			details = append(details, fmt.Sprintf("referrers: HTTP %d %s", r.ReferrersStatus, r.ReferrersContentType))
		}
		if r.DistributionAPIVersion != "" {
			details = append(details, "version: "+r.DistributionAPIVersion)
		}
		if r.RateLimit != nil {
			rl := "rate limit: " + r.RateLimit.Remaining + " of " + r.RateLimit.Limit
			switch {
			case r.RateLimit.Throttled && !r.RateLimit.RetryAt.IsZero():
				rl += " (throttled until " + r.RateLimit.RetryAt.Format(time.RFC3339) + ")"
			case r.RateLimit.Throttled:
				rl += " (throttled)"
			case r.RateLimit.Low:
				rl += " (low)"
			}
			details = append(details, rl)
		}
		if r.Expected != nil {
			details = append(details, fmt.Sprintf("matrix: %s %s", r.Expected.Name, r.Expected.ReferrersAPI), kindOrigin(r))
		}
		fmt.Fprintln(w)
		for _, d := range details {
			fmt.Fprintf(w, "  %s\n", d)
		}
		for _, f := range r.Findings {
			if f.Severity == finding.SeverityInfo && !shownInfo[f.Code] {
				continue
			}
			writeWrapped(w, fmt.Sprintf("  %-5s ", f.Severity), string(f.Code)+": "+f.Summary)
			if f.Cause != "" {
				writeWrapped(w, "        cause: ", f.Cause)
			}
			if f.Remedy != "" {
				writeWrapped(w, "        fix:   ", f.Remedy)
			}
		}
		if exchanges {
			for _, ex := range r.Exchanges {
				writeExchange(w, ex)
			}
		}
	}
}

// kindLabel is the KIND cell: the kind, marked * when it was recognised
// from the host name rather than named by expected in the config (the
// legend under the table says which is which).
func kindLabel(r probe.Result) string {
	if r.KindSource == probe.KindFromHost {
		return r.Kind + "*"
	}
	return r.Kind
}

// kindOrigin says in words where a registry's kind came from.
func kindOrigin(r probe.Result) string {
	if r.KindSource == probe.KindFromConfig {
		return "kind: " + r.Kind + ", from expected in the config"
	}
	return "kind: " + r.Kind + ", recognised from the host name"
}

// writeExchange prints one exchange; a redirect shows where it led, and
// the hop after it names the host it went to.
func writeExchange(w io.Writer, ex registry.Exchange) {
	status := fmt.Sprint(ex.Status)
	switch {
	case ex.Error != "":
		status = "error: " + ex.Error
	case ex.IsRedirect():
		status += " to " + ex.Headers["Location"]
	case ex.TooLarge:
		status += fmt.Sprintf(" (over the reply size cap, %d+ bytes)", ex.Size)
	case ex.BodyError != "":
		status += " (body cut short: " + ex.BodyError + ")"
	}
	path := ex.Path
	if ex.RedirectedFrom != "" {
		path = "  " + ex.URL
	}
	fmt.Fprintf(w, "    %s %s -> %s %s (%d ms)\n", ex.Method, path, status, ex.ContentType, ex.DurationMS)
}

// shownInfo are the info findings the probe table shows: the verdict
// itself and where it came from.
var shownInfo = map[finding.Code]bool{finding.ReferrersAPISupported: true, finding.CachedVerdict: true, finding.ReferrersRedirected: true}

// writeWrapped wraps text to the terminal (80 columns elsewhere) after
// prefix, indenting follow-on lines to the prefix's width.
func writeWrapped(w io.Writer, prefix, text string) {
	width := proseWidth(w)
	indent := strings.Repeat(" ", len(prefix))
	line := prefix
	for _, word := range strings.Fields(text) {
		if len(line)+len(word)+1 > width && strings.TrimSpace(line) != strings.TrimSpace(prefix) {
			fmt.Fprintln(w, strings.TrimRight(line, " "))
			line = indent
		}
		line += word + " "
	}
	fmt.Fprintln(w, strings.TrimRight(line, " "))
}
