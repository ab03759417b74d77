// Package cli is refdoctor's command line: cobra commands, global flags,
// table and JSON output, and exit codes. Commands call the engine packages
// and print their results; they hold no registry logic of their own.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/refdoctor/refdoctor/config"
	"github.com/refdoctor/refdoctor/internal/jsondoc"
	"github.com/refdoctor/refdoctor/probe"
	"github.com/refdoctor/refdoctor/telemetry"
)

// Stamped by the release build (see .goreleaser.yaml).
var (
	version = "dev"
	commit  = "none"
	date    = "unknown"
)

// Exit codes, a contract with the scripts that call refdoctor.
const (
	ExitOK         = 0
	ExitCheckFail  = 1
	ExitUsage      = 2
	ExitIncomplete = 3
)

// exitError carries an exit code with the message printed for it.
type exitError struct {
	code int
	err  error
	// usage is set for errors in how the command was called (a flag, an
	// argument, an unknown command): only those point to --help. A file
	// that does not exist exits 2 too, but help would not help.
	usage bool
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// usageErr is an error in how the command was called.
func usageErr(format string, a ...any) error {
	return &exitError{code: ExitUsage, err: fmt.Errorf(format, a...), usage: true}
}

// isUsage tells whether err is an error in how the command was called.
func isUsage(err error) bool {
	var e *exitError
	if errors.As(err, &e) {
		return e.usage
	}
	return strings.HasPrefix(err.Error(), "unknown command")
}

// silentExit ends with a code after the command already printed its result.
type silentExit int

func (s silentExit) Error() string { return fmt.Sprintf("exit %d", int(s)) }

// globals are the flags every command takes.
type globals struct {
	configFile  string
	timeout     time.Duration
	concurrency int
	plainHTTP   []string
	insecure    []string
	logLevel    string
	logFile     string
	metricsFile string
	output      string
	maxReply    string
	// cacheChecked is set once checkCache has looked at the cache folder.
	cacheChecked bool
	// session shares probe verdicts between the steps of this command
	// (a registry is probed and logged once per run); purpose ends the
	// log's "Probing N registries ..." line (see probePurpose).
	session *probe.Session
	purpose string
	// fileRegistries are the targets (HOST or HOST/REPO) of the config
	// file's [[registry]] list (not the hosts --plain-http or --insecure
	// add): what commands given no registry work on.
	fileRegistries []string

	stdout, stderr io.Writer
	cfg            config.Config
	log            *slog.Logger
	logClose       io.Closer
	metrics        *telemetry.Metrics
	// ownsProcess is true when refdoctor is the process (Execute), not a
	// library inside another one (Run): only then may a command change
	// process-wide settings such as the garbage collector's.
	ownsProcess bool
}

// Execute runs refdoctor with os.Args and returns the process exit code.
func Execute() int {
	// Every signal that can be caught ends refdoctor through ctx, so that
	// what it started (the lab and its temporary folder) is cleaned up:
	// closing a terminal or a tmux pane sends SIGHUP.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	return run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, true)
}

// Run is Execute with explicit arguments and streams, for tests.
func Run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return run(ctx, args, stdin, stdout, stderr, false)
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, ownsProcess bool) int {
	g := &globals{stdout: stdout, stderr: stderr, metrics: telemetry.NewMetrics(), ownsProcess: ownsProcess}
	root := newRoot(g)
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	cmd, err := root.ExecuteContextC(ctx)
	code := exitCode(err)
	if err != nil && !isSilent(err) {
		msg := err.Error()
		if !strings.HasPrefix(msg, "refdoctor ") {
			// Argument errors name their command already ("refdoctor
			// probe needs ..."); others get the program's name.
			msg = "refdoctor: " + msg
		}
		fmt.Fprintln(stderr, msg)
		if isUsage(err) {
			path := "refdoctor"
			if cmd != nil {
				path = cmd.CommandPath()
			}
			fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", path)
		}
	}
	if g.metricsFile != "" {
		if werr := g.metrics.WriteFile(g.metricsFile); werr != nil {
			fmt.Fprintf(stderr, "refdoctor: metrics file: %v\n", werr)
			if code == ExitOK {
				code = ExitIncomplete
			}
		}
	}
	if g.logClose != nil {
		g.logClose.Close()
	}
	return code
}

func isSilent(err error) bool {
	var s silentExit
	return errors.As(err, &s)
}

func exitCode(err error) int {
	if err == nil {
		return ExitOK
	}
	var s silentExit
	if errors.As(err, &s) {
		return int(s)
	}
	var e *exitError
	if errors.As(err, &e) {
		return e.code
	}
	if errors.Is(err, config.ErrInvalid) {
		return ExitUsage
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return ExitIncomplete
	}
	// Flag and argument errors are wrapped as usage errors where cobra
	// reports them (see usageArgs); an unknown command is the one cobra
	// error that reaches here unwrapped.
	if strings.HasPrefix(err.Error(), "unknown command") {
		return ExitUsage
	}
	return ExitIncomplete
}

func newRoot(g *globals) *cobra.Command {
	var tf tuiFlags
	root := &cobra.Command{
		Use:   "refdoctor",
		Short: "Troubleshoot OCI referrer discovery and air-gap mirror bundles",
		Long: `refdoctor finds out why SBOMs, signatures and attestations go missing
between a registry and a mirror bundle. It probes registries for the OCI 1.1
referrers API, discovers referrers the way export tools do, and checks
bundles before they cross an air gap.

On a terminal, refdoctor with no command opens the troubleshooter.
Start with the lab, which needs no network:
  refdoctor demo
Probe a registry:
  refdoctor probe registry.example.com/team/app`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			if err := g.setup(); err != nil {
				return err
			}
			// Verdicts in the capability cache name the command that
			// probed them.
			g.cfg.Cache.Origin = cmd.CommandPath()
			g.session = probe.NewSession()
			g.purpose = probePurpose(cmd.CommandPath())
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if isTerminal(g.stdout) {
				return g.openTUI(cmd, tf)
			}
			return cmd.Help()
		},
	}
	addTUIFlags(root, &tf)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return &exitError{code: ExitUsage, err: err, usage: true}
	})
	f := root.PersistentFlags()
	f.StringVar(&g.configFile, "config", "", "config file (default "+config.DefaultPath()+")")
	f.DurationVar(&g.timeout, "timeout", 0, "time limit per registry operation (default from config: export.referrer_discovery.timeout_seconds)")
	f.IntVar(&g.concurrency, "concurrency", 0, "operations at once (default from config: export.referrer_discovery.max_concurrent_discoveries)")
	f.StringArrayVar(&g.plainHTTP, "plain-http", nil, "use plain HTTP for this host (repeatable)")
	f.StringArrayVar(&g.insecure, "insecure", nil, "skip TLS verification for this host (repeatable)")
	f.StringVar(&g.logLevel, "log-level", "error", "log level: trace, debug, info, warn, error")
	f.StringVar(&g.logFile, "log-file", "", "write logs to this file instead of stderr")
	f.StringVar(&g.metricsFile, "metrics-file", "", "write Prometheus metrics (text format) to this file at exit")
	f.StringVarP(&g.output, "output", "o", "table", "output format: table or json")
	f.StringVar(&g.maxReply, "max-reply-size", "", "largest registry reply read whole, e.g. 64MiB; larger replies are reported, never judged cut off (default from config: export.referrer_discovery.max_reply_size, 32MiB)")
	root.AddCommand(newProbeCmd(g), newDiscoverCmd(g), newCompareCmd(g), newTagsCmd(g), newBundleCmd(g), newDemoCmd(g), newVersionCmd(g), newRunbookCmd(g), newLogsCmd(g), newDiagCmd(g), newMetricsCmd(g), newServeCmd(g), newCacheCmd(g))
	usageArgs(root)
	registerCompletions(root, g)
	return root
}

// probePurpose is what the log's "Probing N registries for OCI referrer
// capabilities ..." line says the probes are for: the exporter's "before
// export" only where refdoctor exports.
func probePurpose(command string) string {
	switch strings.TrimPrefix(command, "refdoctor ") {
	case "bundle export":
		return "before export"
	case "bundle import":
		return "before import"
	case "bundle diff":
		return "before comparing the bundle with its source"
	}
	return ""
}

// usageArgs makes every command's argument-count error a usage error
// (exit 2), as flag errors already are through SetFlagErrorFunc, and
// says what the argument is, with an example, instead of cobra's
// "accepts 1 arg(s), received 0".
func usageArgs(c *cobra.Command) {
	if check := c.Args; check != nil {
		c.Args = func(cmd *cobra.Command, args []string) error {
			if err := check(cmd, args); err != nil {
				return &exitError{code: ExitUsage, err: argsError(cmd, args), usage: true}
			}
			return nil
		}
	}
	for _, sub := range c.Commands() {
		usageArgs(sub)
	}
}

// setup loads the config, applies flags over it and opens the log.
func (g *globals) setup() error {
	if g.output != "table" && g.output != "json" {
		return usageErr("--output %q: use table or json", g.output)
	}
	level, err := telemetry.ParseLevel(g.logLevel)
	if err != nil {
		return usageErr("--log-level: %v", err)
	}
	logOut := g.stderr
	if g.logFile != "" {
		w, err := telemetry.OpenLogFile(g.logFile)
		if err != nil {
			return usageErr("--log-file: %v", err)
		}
		g.logClose = w
		logOut = w
	}
	g.log = telemetry.NewLogger(logOut, level)
	cfg, err := config.Load(g.configFile)
	if err != nil {
		if errors.Is(err, config.ErrInvalid) {
			return err
		}
		return &exitError{code: ExitUsage, err: err}
	}
	// The known kinds live in the matrix, above the config package: a
	// kind that is not there would otherwise be shown back as if it had
	// been detected.
	if err := probe.DefaultMatrix().CheckConfig(cfg); err != nil {
		return fmt.Errorf("config %s: %w", cfg.Path, err)
	}
	for _, r := range cfg.Registries {
		g.fileRegistries = append(g.fileRegistries, r.Target())
	}
	if g.timeout < 0 {
		return usageErr("--timeout must be positive")
	}
	if g.timeout > 0 {
		cfg.Export.ReferrerDiscovery.TimeoutSeconds = int((g.timeout + time.Second - 1) / time.Second)
	}
	if g.concurrency < 0 || g.concurrency > 256 {
		return usageErr("--concurrency %d: use 1 to 256", g.concurrency)
	}
	if g.concurrency > 0 {
		cfg.Export.ReferrerDiscovery.MaxConcurrentDiscoveries = g.concurrency
	}
	if g.maxReply != "" {
		n, err := config.ParseByteSize(g.maxReply)
		if err != nil {
			return usageErr("--max-reply-size: %v", err)
		}
		if n < 64<<10 {
			return usageErr("--max-reply-size %s: use at least 64KiB", g.maxReply)
		}
		cfg.Export.ReferrerDiscovery.MaxReplySize = n
	}
	for _, h := range g.plainHTTP {
		if err := config.ValidateHost(h); err != nil {
			return usageErr("--plain-http: %v", err)
		}
		r, _ := cfg.Host(h)
		r.Host, r.PlainHTTP, r.InsecureSkipVerify = h, true, false
		cfg.SetHost(r)
	}
	for _, h := range g.insecure {
		if err := config.ValidateHost(h); err != nil {
			return usageErr("--insecure: %v", err)
		}
		r, _ := cfg.Host(h)
		r.Host, r.InsecureSkipVerify, r.PlainHTTP = h, true, false
		cfg.SetHost(r)
	}
	g.cfg = cfg
	return nil
}

// probeTimeout bounds one registry's probe: --timeout, else 30s. A probe
// is four small requests; the discovery timeout (minutes) would leave an
// operator waiting on a dead host.
func (g *globals) probeTimeout() time.Duration {
	if g.timeout > 0 {
		return g.timeout
	}
	return min(30*time.Second, g.opTimeout())
}

// opTimeout is the per-operation time limit in force.
func (g *globals) opTimeout() time.Duration {
	if g.timeout > 0 {
		return g.timeout
	}
	return g.cfg.Export.ReferrerDiscovery.Timeout()
}

// print writes v as one JSON document, or as the table the command draws.
func (g *globals) print(v any, table func(io.Writer)) error {
	if g.output == "json" {
		return g.writeJSON(v)
	}
	table(g.stdout)
	return nil
}

func (g *globals) writeJSON(v any) error {
	// The TUI saves its screens with the same encoder (s key).
	return jsondoc.Encode(g.stdout, v)
}

func newVersionCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print version, commit and build date",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if g.output == "json" {
				return g.writeJSON(map[string]string{"version": version, "commit": commit, "date": date})
			}
			fmt.Fprintf(g.stdout, "refdoctor %s (commit %s, built %s)\n", version, commit, date)
			return nil
		},
	}
}

// argsAnnotation names, on a command, what its arguments are ("an image:
// HOST/REPO:TAG or HOST/REPO@sha256:DIGEST").
const argsAnnotation = "args"

// argsError explains a wrong number of arguments: what the command takes,
// with its first example.
func argsError(cmd *cobra.Command, args []string) error {
	what := cmd.Annotations[argsAnnotation]
	example := ""
	if ex := strings.TrimSpace(cmd.Example); ex != "" {
		example, _, _ = strings.Cut(ex, "\n")
		example = "; for example: " + strings.TrimSpace(example)
	}
	switch {
	case what == "" && len(args) > 0:
		msg := fmt.Sprintf("%s takes no arguments, got %q", cmd.CommandPath(), strings.Join(args, " "))
		if cmd.Flags().Lookup("file") != nil && len(args) == 1 {
			msg += fmt.Sprintf(" (did you mean --file %s?)", args[0])
		}
		return errors.New(msg + example)
	case len(args) == 0:
		return fmt.Errorf("%s needs %s%s", cmd.CommandPath(), what, example)
	}
	return fmt.Errorf("%s takes %s, got %d: %s%s", cmd.CommandPath(), what, len(args), strings.Join(args, " "), example)
}
