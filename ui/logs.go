package ui

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"

	"github.com/refdoctor/refdoctor/internal/human"
	"github.com/refdoctor/refdoctor/runbook"
	"github.com/refdoctor/refdoctor/telemetry"
)

type metricSample = telemetry.Sample

// logsScreen reads an export log back: the capability probe lines, the
// failed probes and discoveries, and the findings they add up to.
type logsScreen struct {
	sh      *shared
	path    string
	job     job[none, runbook.LogReport]
	started bool
	pane    pane
	w, h    int
}

func newLogsScreen(sh *shared) *logsScreen {
	return &logsScreen{sh: sh, path: sh.opts.LogFile, pane: newPane(sh)}
}

func (l *logsScreen) SetSize(w, h int) {
	l.w, l.h = w, h
	l.pane.setSize(w, max(1, h-1))
	l.refresh()
}

func (l *logsScreen) capturing() bool { return false }

func (l *logsScreen) activate() tea.Cmd {
	if l.started {
		return nil
	}
	l.started = true
	return l.read()
}

func (l *logsScreen) read() tea.Cmd {
	if l.path == "" {
		l.job.reset()
		return nil
	}
	path := l.path
	cmd := l.job.start(l.sh, scrLogs, func(ctx context.Context, _ func(none)) (runbook.LogReport, error) {
		f, err := os.Open(path)
		if err != nil {
			return runbook.LogReport{}, err
		}
		defer f.Close()
		return runbook.ReadLog(f)
	})
	l.refresh()
	return cmd
}

func (l *logsScreen) Update(msg tea.Msg) (screen, tea.Cmd) {
	switch msg := msg.(type) {
	case doneMsg[runbook.LogReport]:
		if l.job.done(msg, false) {
			l.refresh()
		}
	case targetsChangedMsg:
		if l.sh.opts.LogFile != l.path {
			l.job.reset()
			l.path, l.started = l.sh.opts.LogFile, false
			l.refresh()
		}
	case styleChangedMsg:
		l.refresh()
	case tea.KeyPressMsg:
		if key.Matches(msg, l.sh.keys.Reload) {
			return l, l.read()
		}
		return l, l.pane.update(msg)
	case tea.MouseMsg:
		return l, l.pane.update(msg)
	}
	return l, nil
}

func (l *logsScreen) back() (bool, tea.Cmd) {
	if l.job.stop() {
		return true, flash("reading stopped")
	}
	return false, nil
}
func (l *logsScreen) stop() { l.job.stop() }

func (l *logsScreen) help() bindings {
	k := l.sh.keys
	return bindings{short: []key.Binding{k.Reload}, full: [][]key.Binding{{k.Up, k.Down, k.PageUp, k.PageDown, k.Top, k.Bottom}, {k.Reload}}}
}

func (l *logsScreen) View() string {
	st := l.sh.st
	if l.path == "" {
		return "No export log given.\n\nSet one on the Start screen (1, then e), or start refdoctor with\n--export-log FILE. The log is read, never changed."
	}
	head := st.Header.Render(filepath.Base(l.path)) + "  "
	switch l.job.state {
	case jobRunning:
		head += st.paint(toneRun, l.sh.frame+" reading")
	case jobFailed:
		head += st.word("error")
	case jobDone:
		r := l.job.res
		head += human.Count(r.Lines, "line") + " · " + human.Count(len(r.Probes), "verdict") + " · " + human.Count(len(r.Failures), "failure")
	}
	return rightAlign(head, st.Label.Render(l.pane.position()), l.w) + "\n" + l.pane.view()
}

func (l *logsScreen) refresh() {
	sh, st, w := l.sh, l.sh.st, l.pane.width()
	var lines []string
	add := func(s ...string) { lines = append(lines, s...) }
	add(wrapHardIndent(st.Label.Render("file "), l.path, w)...)
	switch {
	case l.job.state == jobFailed:
		add("")
		add(wrapIndent(st.word("error")+" ", l.job.err, w)...)
	case l.job.res != nil:
		r := l.job.res
		if len(r.Announced) > 0 {
			add(wrapIndent(st.Label.Render("announced "), announced(r.Announced), w)...)
		}
		if r.Truncated > 0 {
			add(st.Label.Render("truncated ") + human.Count(r.Truncated, "over-long line"))
		}
		add("", st.Header.Render(fmt.Sprintf("CAPABILITY VERDICTS (%d)", len(r.Probes))))
		if len(r.Probes) == 0 {
			add("  none: the log holds no \"Registry HOST: OCI 1.x\" lines")
		} else {
			add(st.Header.Render("  " + pad("LINE", 6, false) + pad("REGISTRY", 20, false) + pad("API", 12, false) + pad("VERSION", 16, false) + pad("MS", 6, true) + "  LEVEL"))
			for _, p := range r.Probes {
				version := p.Version
				if version == "" {
					version = "-"
				}
				ms := strconv.Itoa(p.ProbeMS)
				line := "  " + pad(strconv.Itoa(p.Line), 6, false) + pad(trunc(sh.name(p.Host), 19), 20, false) +
					st.paint(toneOf(p.API), pad(p.API, 12, false)) + pad(trunc(version, 15), 16, false) + pad(ms, 6, true) + "  " + p.Level
				add(trunc(line, w))
				if p.Reason != "" {
					add(wrapIndent("        reason: ", p.Reason, w)...)
				}
			}
		}
		add("", st.Header.Render(fmt.Sprintf("FAILURES (%d)", len(r.Failures))))
		if len(r.Failures) == 0 {
			add("  none")
		}
		for _, f := range r.Failures {
			add(wrapIndent("  line "+pad(strconv.Itoa(f.Line), 5, false)+" "+st.word("fail")+" ", sh.names(f.Text), w)...)
		}
		if len(r.Findings) > 0 {
			add("", st.Header.Render(fmt.Sprintf("FINDINGS (%d)", len(r.Findings))))
			add(findingLines(st, sh.namedFindings(r.Findings), w)...)
		}
	}
	l.pane.setContent(strings.Join(lines, "\n"))
}

// supportScreen is the escalation checklist and the support bundle:
// collect runs runbook.CollectDiag (a fresh probe and discovery at debug
// level, metrics, config and versions, credentials removed) and shows what
// it wrote.
type supportScreen struct {
	sh   *shared
	out  string
	job  job[none, runbook.DiagResult]
	pane pane
	w, h int
}

func newSupportScreen(sh *shared) *supportScreen {
	return &supportScreen{sh: sh, pane: newPane(sh)}
}

func (s *supportScreen) SetSize(w, h int) {
	s.w, s.h = w, h
	s.pane.setSize(w, max(1, h))
	s.refresh()
}

func (s *supportScreen) capturing() bool   { return false }
func (s *supportScreen) activate() tea.Cmd { return nil }

func (s *supportScreen) collect() tea.Cmd {
	sh := s.sh
	o := sh.opts
	out := o.DiagOut
	if out == "" {
		out = filepath.Join(o.workDir, runbook.DiagFileName(time.Now()))
	}
	s.out = out
	opts := runbook.DiagOptions{
		Targets:     sh.runbookTargets(),
		Config:      o.Config,
		ToolVersion: o.Version,
		Metrics:     o.Metrics,
		ClientOpts:  sh.clientOpts(),
		Timeout:     o.Timeout,
	}
	cmd := s.job.start(sh, scrSupport, func(ctx context.Context, _ func(none)) (runbook.DiagResult, error) {
		return runbook.CollectDiag(ctx, out, opts)
	})
	s.refresh()
	return cmd
}

func (s *supportScreen) Update(msg tea.Msg) (screen, tea.Cmd) {
	switch msg := msg.(type) {
	case doneMsg[runbook.DiagResult]:
		if s.job.done(msg, false) {
			s.refresh()
		}
	case styleChangedMsg, targetsChangedMsg:
		s.refresh()
	case tea.KeyPressMsg:
		if key.Matches(msg, s.sh.keys.Collect) {
			return s, s.collect()
		}
		return s, s.pane.update(msg)
	case tea.MouseMsg:
		return s, s.pane.update(msg)
	}
	return s, nil
}

func (s *supportScreen) back() (bool, tea.Cmd) {
	if !s.job.stop() {
		return false, nil
	}
	s.refresh()
	return true, flash("collection stopped")
}

func (s *supportScreen) stop() { s.job.stop() }

func (s *supportScreen) help() bindings {
	k := s.sh.keys
	return bindings{short: []key.Binding{k.Collect}, full: [][]key.Binding{{k.Up, k.Down, k.PageUp, k.PageDown}, {k.Collect, k.Back}}}
}

func (s *supportScreen) View() string { return s.pane.view() }

// destination says where d writes.
func (s *supportScreen) destination() string {
	if o := s.sh.opts; o.DiagOut != "" {
		return o.DiagOut
	}
	return filepath.Join(s.sh.opts.workDir, "refdoctor-support-<time>.tgz")
}

func (s *supportScreen) refresh() {
	sh, st, w := s.sh, s.sh.st, s.pane.width()
	var lines []string
	add := func(x ...string) { lines = append(lines, x...) }
	add(trunc(st.Title.Render("Escalation")+st.Label.Render("  when the runbook did not help"), w))
	if sh.opts.SessionLog != "" {
		add(trunc(st.Label.Render("this session logs to ")+sh.opts.SessionLog, w))
	}
	switch s.job.state {
	case jobIdle:
		add("")
		add(wrapIndent("", st.Key.Render("d")+" collects a support bundle: a fresh probe and discovery at debug level, metrics, registry kinds and versions, config and tool version, credentials removed.", w)...)
		add("")
		add(wrapHardIndent("  It is written to ", s.destination(), w)...)
		add(wrapIndent("  ", "Support bundles always go to the working folder unless a file is named (--diag-out, diag collect --out).", w)...)
	case jobRunning:
		add("", trunc(st.paint(toneRun, sh.frame+" collecting into "+s.out), w), st.Label.Render("  probing the targets and discovering the image again; esc stops"))
	case jobStopped:
		add("", st.word("skipped")+" stopped; d collects again")
	case jobFailed:
		add("")
		add(wrapIndent(st.word("error")+" ", s.job.err, w)...)
	case jobDone:
		res := s.job.res
		add("", trunc(st.word("written")+" "+res.Path, w), "  "+human.Count(len(res.Files), "file")+", "+human.Size(res.Bytes)+", credentials removed")
		for _, f := range res.Files {
			add(trunc("    "+f, w))
		}
		add(st.Label.Render("  look through it (tar -tzvf), then attach it to the ticket"))
	}
	if b := sh.book; b != nil {
		add("", st.Header.Render("COLLECT"))
		for _, c := range b.Escalation.Collect {
			add(wrapIndent("  • ", c, w)...)
		}
		add("", st.Header.Render("OPEN A TICKET WITH"))
		for _, c := range b.Escalation.Ticket {
			add(wrapIndent("  • ", c, w)...)
		}
	}
	s.pane.setContent(strings.Join(lines, "\n"))
}

// announced sums up the "Probing N registries" lines of a log: each
// distinct count once with how often it was announced, so that a log of
// a thousand exports reads in one line.
func announced(counts []int) string {
	var order []int
	seen := map[int]int{}
	for _, n := range counts {
		if seen[n] == 0 {
			order = append(order, n)
		}
		seen[n]++
	}
	const shown = 3
	var parts []string
	for i, n := range order {
		if i == shown {
			parts = append(parts, "and "+human.Count(len(order)-shown, "other count"))
			break
		}
		times := "once"
		if seen[n] > 1 {
			times = strconv.Itoa(seen[n]) + " times"
		}
		parts = append(parts, "Probing "+human.Count(n, "registry")+" ("+times+")")
	}
	return human.Count(len(counts), "export") + ": " + strings.Join(parts, ", ")
}
