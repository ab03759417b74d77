package cli

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/charmbracelet/x/term"
	"github.com/spf13/cobra"

	"github.com/refdoctor/refdoctor/discovery"
	"github.com/refdoctor/refdoctor/probe"
	"github.com/refdoctor/refdoctor/telemetry"
	"github.com/refdoctor/refdoctor/ui"
)

// tuiFlags are the targets `refdoctor` (no command) opens the TUI on; the
// start screen edits them too.
type tuiFlags struct {
	registries []string
	image      string
	source     string
	repository string
	bundle     string
	exportLog  string
	prometheus string
	mouse      bool
}

// addTUIFlags gives the root command the TUI's target flags (local to the
// root: every other command has its own).
func addTUIFlags(root *cobra.Command, f *tuiFlags) {
	fl := root.Flags()
	fl.StringArrayVar(&f.registries, "registry", nil, "TUI: registry to probe, HOST or HOST/REPO (repeatable)")
	fl.StringVar(&f.image, "image", "", "TUI: image whose referrers to discover, HOST/REPO:TAG or HOST/REPO@DIGEST")
	fl.StringVar(&f.source, "source", "", "TUI: where --image was copied from; the Referrers screen compares the two (s)")
	fl.StringVar(&f.repository, "repository", "", "TUI: repository whose fallback tags to list, HOST/REPO")
	fl.StringVar(&f.bundle, "bundle", "", "TUI: mirror bundle to verify")
	fl.StringVar(&f.exportLog, "export-log", "", "TUI: exporter's log to read")
	fl.StringVar(&f.prometheus, "prometheus", "", "TUI: Prometheus the Metrics screen and the telemetry step ask (default: [telemetry] prometheus_url)")
	fl.BoolVar(&f.mouse, "mouse", false, "TUI: clicks on tabs and rows and the wheel (off: the terminal's own selection copies text)")
}

// isTerminal tells whether w is a terminal, where the TUI can run.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(f.Fd())
}

// tuiLog opens the TUI session's log: --log-file if given, else the file
// name in the user cache folder (started afresh when fresh is set: the
// demo's lab is new each time, so older lines name registries long gone).
// The TUI never logs to the screen. Unless --log-level was given, it logs
// at info so that the probe lines the runbook greps for are there to read
// back.
func (g *globals) tuiLog(cmd *cobra.Command, name string, fresh bool) (*slog.Logger, string, func(), io.Writer, error) {
	path := g.logFile
	if path == "" {
		dir, err := os.UserCacheDir()
		if err != nil {
			dir = os.TempDir()
		}
		path = filepath.Join(dir, "refdoctor", name)
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, "", nil, nil, fmt.Errorf("TUI log: %w", err)
		}
		if fresh {
			if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
				return nil, "", nil, nil, fmt.Errorf("TUI log: %w", err)
			}
		}
	}
	level := slog.LevelInfo
	if f := cmd.Flags().Lookup("log-level"); f != nil && f.Changed {
		l, err := telemetry.ParseLevel(g.logLevel)
		if err != nil {
			return nil, "", nil, nil, usageErr("--log-level: %v", err)
		}
		level = l
	}
	w, err := telemetry.OpenLogFile(path)
	if err != nil {
		return nil, "", nil, nil, fmt.Errorf("TUI log: %w", err)
	}
	return telemetry.NewLogger(w, level), path, func() { w.Close() }, w, nil
}

// runTUI opens the TUI with the global settings over base (the lab's
// targets for demo) and the flags' targets, which win.
func (g *globals) runTUI(cmd *cobra.Command, base ui.Options, f tuiFlags, log *slog.Logger, logPath string) error {
	o := base
	if len(f.registries) > 0 {
		o.Targets = nil
		for _, r := range f.registries {
			t, err := probe.ParseTarget(r)
			if err != nil {
				return &exitError{code: ExitUsage, err: fmt.Errorf("--registry: %w", err)}
			}
			o.Targets = append(o.Targets, t)
		}
	}
	for _, v := range []struct{ flag, to *string }{{&f.image, &o.Image}, {&f.source, &o.Source}, {&f.repository, &o.Repository}, {&f.bundle, &o.Bundle}, {&f.exportLog, &o.LogFile}} {
		if *v.flag != "" {
			*v.to = *v.flag
		}
	}
	for _, v := range []struct{ flag, ref string }{{"--image", o.Image}, {"--source", o.Source}} {
		if v.ref == "" {
			continue
		}
		if _, err := discovery.ParseReference(v.ref); err != nil {
			return &exitError{code: ExitUsage, err: fmt.Errorf("%s: %w", v.flag, err)}
		}
	}
	prom, err := g.prometheusIfAny(f.prometheus)
	if err != nil {
		return err
	}
	o.Config = g.cfg
	if o.Config.Cache.Origin == "refdoctor" {
		// Verdicts the TUI stores say so where they are shown.
		o.Config.Cache.Origin = "refdoctor (TUI)"
	}
	o.Mouse = f.mouse
	o.SessionLog = logPath
	o.Metrics = g.metrics
	o.Prometheus = prom
	o.Logger = log
	o.Version = version
	o.Timeout = g.opTimeout()
	o.Concurrency = g.cfg.Export.ReferrerDiscovery.MaxConcurrentDiscoveries
	if err := ui.Run(cmd.Context(), o); err != nil {
		return fmt.Errorf("terminal UI: %w", err)
	}
	return nil
}

// openTUI is `refdoctor` with no command on a terminal.
func (g *globals) openTUI(cmd *cobra.Command, f tuiFlags) error {
	log, path, closeLog, _, err := g.tuiLog(cmd, "tui.log", false)
	if err != nil {
		return err
	}
	defer closeLog()
	return g.runTUI(cmd, ui.Options{}, f, log, path)
}
