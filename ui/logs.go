package ui

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/viewport"
	tea "charm.land/bubbletea/v2"

	"github.com/refdoctor/refdoctor/runbook"
	"github.com/refdoctor/refdoctor/telemetry"
)

type metricSample = telemetry.Sample

// logsScreen reads an export log back: the capability probe lines, the
// failed probes and discoveries, and the findings they add up to.
type logsScreen struct {
	sh      *shared
	path    string
	state   string // idle, reading, done, error
	err     string
	rep     *runbook.LogReport
	cur     run
	started bool
	vp      viewport.Model
	w, h    int
}

func newLogsScreen(sh *shared) *logsScreen {
	return &logsScreen{sh: sh, path: sh.opts.LogFile, state: "idle", vp: newViewport(sh)}
}

func (l *logsScreen) SetSize(w, h int) {
	l.w, l.h = w, h
	l.vp.SetWidth(w)
	l.vp.SetHeight(max(1, h-1))
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
	l.cur.stop()
	if l.path == "" {
		return nil
	}
	path := l.path
	l.state, l.err = "reading", ""
	var cmd tea.Cmd
	l.cur, cmd = l.sh.start(scrLogs, func(ctx context.Context, _ func(any)) (any, error) {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		return runbook.ReadLog(f)
	})
	l.refresh()
	return cmd
}

func (l *logsScreen) Update(msg tea.Msg) (screen, tea.Cmd) {
	switch msg := msg.(type) {
	case doneMsg:
		if msg.run != l.cur.id {
			return l, nil
		}
		l.cur = run{}
		if msg.err != nil {
			l.state, l.err = "error", msg.err.Error()
		} else {
			rep := msg.val.(runbook.LogReport)
			l.rep, l.state = &rep, "done"
		}
		l.refresh()
	case targetsChangedMsg:
		if l.sh.opts.LogFile != l.path {
			l.stop()
			l.path, l.rep, l.started, l.state = l.sh.opts.LogFile, nil, false, "idle"
			l.refresh()
		}
	case styleChangedMsg:
		l.refresh()
	case tea.KeyPressMsg:
		if key.Matches(msg, l.sh.keys.Reload) {
			return l, l.read()
		}
		return l, scrollKeys(l.sh, &l.vp, msg)
	case tea.MouseMsg:
		return l, scrollKeys(l.sh, &l.vp, msg)
	}
	return l, nil
}

func (l *logsScreen) back() (bool, tea.Cmd) { return false, nil }
func (l *logsScreen) stop() {
	l.cur.stop()
	l.cur = run{}
}

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
	switch l.state {
	case "reading":
		head += st.paint(toneRun, l.sh.frame+" reading")
	case "error":
		head += st.word("error")
	case "done":
		head += itoa(int64(l.rep.Lines)) + " lines · " + itoa(int64(len(l.rep.Probes))) + " verdicts · " + itoa(int64(len(l.rep.Failures))) + " failures"
	}
	return trunc(head, l.w) + "\n" + l.vp.View()
}

func (l *logsScreen) refresh() {
	sh, st, w := l.sh, l.sh.st, max(l.w, 20)
	var lines []string
	add := func(s ...string) { lines = append(lines, s...) }
	add(trunc(st.Label.Render("file ")+l.path, w))
	switch {
	case l.state == "error":
		add("")
		add(wrapIndent(st.word("error")+" ", l.err, w)...)
	case l.rep != nil:
		r := l.rep
		if len(r.Announced) > 0 {
			var n []string
			for _, a := range r.Announced {
				n = append(n, itoa(int64(a)))
			}
			add(trunc(st.Label.Render("announced ")+"Probing "+strings.Join(n, ", ")+" registries", w))
		}
		if r.Truncated > 0 {
			add(st.Label.Render("truncated ") + itoa(int64(r.Truncated)) + " over-long lines")
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
				ms := itoa(int64(p.ProbeMS))
				if sh.opts.stable {
					ms = "0"
				}
				line := "  " + pad(itoa(int64(p.Line)), 6, false) + pad(trunc(sh.name(p.Host), 19), 20, false) +
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
			add(wrapIndent("  line "+pad(itoa(int64(f.Line)), 5, false)+" "+st.word("fail")+" ", sh.names(f.Text), w)...)
		}
		if len(r.Findings) > 0 {
			add("", st.Header.Render(fmt.Sprintf("FINDINGS (%d)", len(r.Findings))))
			add(findingLines(st, sh.namedFindings(r.Findings), w)...)
		}
	}
	l.vp.SetContent(strings.Join(lines, "\n"))
}

// supportScreen is the escalation checklist and the support bundle:
// collect runs runbook.CollectDiag (a fresh probe and discovery at debug
// level, metrics, config and versions, credentials removed) and shows what
// it wrote.
type supportScreen struct {
	sh    *shared
	out   string
	state string // idle, collecting, done, error, stopped
	err   string
	res   *runbook.DiagResult
	cur   run
	vp    viewport.Model
	w, h  int
}

func newSupportScreen(sh *shared) *supportScreen {
	return &supportScreen{sh: sh, state: "idle", vp: newViewport(sh)}
}

func (s *supportScreen) SetSize(w, h int) {
	s.w, s.h = w, h
	s.vp.SetWidth(w)
	s.vp.SetHeight(max(1, h))
	s.refresh()
}

func (s *supportScreen) capturing() bool   { return false }
func (s *supportScreen) activate() tea.Cmd { return nil }

func (s *supportScreen) collect() tea.Cmd {
	s.cur.stop()
	sh := s.sh
	o := sh.opts
	out := o.DiagOut
	if out == "" {
		out = filepath.Join(o.workDir, "refdoctor-support-"+timeStamp()+".tgz")
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
	s.state, s.err, s.res = "collecting", "", nil
	var cmd tea.Cmd
	s.cur, cmd = sh.start(scrSupport, func(ctx context.Context, _ func(any)) (any, error) {
		return runbook.CollectDiag(ctx, out, opts)
	})
	s.refresh()
	return cmd
}

func (s *supportScreen) Update(msg tea.Msg) (screen, tea.Cmd) {
	switch msg := msg.(type) {
	case doneMsg:
		if msg.run != s.cur.id {
			return s, nil
		}
		s.cur = run{}
		switch {
		case errors.Is(msg.err, context.Canceled):
			s.state = "stopped"
		case msg.err != nil:
			s.state, s.err = "error", msg.err.Error()
		default:
			res := msg.val.(runbook.DiagResult)
			s.res, s.state = &res, "done"
		}
		s.refresh()
	case styleChangedMsg, targetsChangedMsg:
		s.refresh()
	case tea.KeyPressMsg:
		if key.Matches(msg, s.sh.keys.Collect) {
			return s, s.collect()
		}
		return s, scrollKeys(s.sh, &s.vp, msg)
	case tea.MouseMsg:
		return s, scrollKeys(s.sh, &s.vp, msg)
	}
	return s, nil
}

func (s *supportScreen) back() (bool, tea.Cmd) {
	if s.cur.cancel == nil {
		return false, nil
	}
	s.stop()
	s.state = "stopped"
	s.refresh()
	return true, flash("collection stopped")
}

func (s *supportScreen) stop() {
	s.cur.stop()
	s.cur = run{}
}

func (s *supportScreen) help() bindings {
	k := s.sh.keys
	return bindings{short: []key.Binding{k.Collect}, full: [][]key.Binding{{k.Up, k.Down, k.PageUp, k.PageDown}, {k.Collect, k.Back}}}
}

func (s *supportScreen) View() string { return s.vp.View() }

func (s *supportScreen) refresh() {
	sh, st, w := s.sh, s.sh.st, max(s.w, 20)
	var lines []string
	add := func(x ...string) { lines = append(lines, x...) }
	add(trunc(st.Title.Render("Escalation")+st.Label.Render("  when the runbook did not help"), w))
	if sh.opts.SessionLog != "" {
		add(trunc(st.Label.Render("this session logs to ")+sh.opts.SessionLog, w))
	}
	switch s.state {
	case "idle":
		add("", trunc(st.Key.Render("d")+" collects a support bundle: a fresh probe and discovery at debug level,", w),
			trunc("  metrics, registry kinds and versions, config and tool version, credentials removed.", w))
	case "collecting":
		add("", trunc(st.paint(toneRun, sh.frame+" collecting into "+s.out), w), st.Label.Render("  probing the targets and discovering the image again; esc stops"))
	case "stopped":
		add("", st.word("skipped")+" stopped; d collects again")
	case "error":
		add("")
		add(wrapIndent(st.word("error")+" ", s.err, w)...)
	case "done":
		add("", trunc(st.word("written")+" "+s.res.Path, w), "  "+itoa(int64(len(s.res.Files)))+" files, "+humanSize(s.res.Bytes)+", credentials removed")
		for _, f := range s.res.Files {
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
	s.vp.SetContent(strings.Join(lines, "\n"))
}
