package ui

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"

	"github.com/refdoctor/refdoctor/bundle"
	"github.com/refdoctor/refdoctor/discovery"
	"github.com/refdoctor/refdoctor/finding"
	"github.com/refdoctor/refdoctor/internal/human"
	"github.com/refdoctor/refdoctor/probe"
	"github.com/refdoctor/refdoctor/runbook"
)

// stepState is where one runbook step stands in this session.
type stepState struct {
	status runbook.Status
	res    *runbook.Result
	msg    string
	frac   float64
	events int
	cur    run
}

// walkScreen walks the runbook: the steps with their status on the left;
// on the right the selected step's explanation, the corrections of the
// older runbook it carries, its commands filled in with the operator's
// targets, and the live result of its check with findings.
type walkScreen struct {
	sh     *shared
	engine *runbook.Engine
	// fresh is engine with fresh probes (R).
	fresh  *runbook.Engine
	states map[string]*stepState
	sel    int
	cmdSel int
	cmds   []runbook.RenderedCommand
	cmdErr string
	cmdAt  []int // content line of each command, to scroll to it
	pane   pane
	w, h   int
	leftW  int
	// list is the step list's lines, selLine the selected step's line and
	// listOf the first line in view (kept in Update).
	list    []string
	listSel int
	listOf  int
	// stepAt maps a list line to its step index (-1 for section titles).
	stepAt []int
}

func newWalkScreen(sh *shared) *walkScreen {
	w := &walkScreen{sh: sh, states: map[string]*stepState{}, pane: newPane(sh)}
	w.newEngine()
	w.render()
	return w
}

func (w *walkScreen) steps() []runbook.Step {
	if w.sh.book == nil {
		return nil
	}
	return w.sh.book.Steps
}

// runbookTargets are the session's targets in the runbook's terms.
func (sh *shared) runbookTargets() runbook.Targets {
	o := sh.opts
	t := runbook.Targets{Image: o.Image, Source: o.Source, Bundle: o.Bundle, LogFile: o.LogFile, PlainHTTP: sh.plainHTTPHosts()}
	for _, pt := range o.Targets {
		t.Registries = append(t.Registries, pt.String())
	}
	if o.Image == "" && o.Repository != "" {
		// Without an image, the repository is what the tag and command
		// steps look at.
		t.Registries = append([]string{o.Repository}, t.Registries...)
	}
	return t
}

func (w *walkScreen) newEngine() {
	sh := w.sh
	if sh.book == nil {
		return
	}
	o := sh.opts
	diagOut := o.DiagOut
	opts := []runbook.Opt{
		runbook.WithConfig(o.Config),
		runbook.WithMetrics(o.Metrics),
		runbook.WithLogger(sh.log),
		runbook.WithClientOpts(sh.clientOpts()...),
		runbook.WithDiagOutput(diagOut),
		runbook.WithToolVersion(o.Version),
	}
	if o.Prometheus != nil {
		opts = append(opts, runbook.WithPrometheus(o.Prometheus, 0))
	}
	// r runs a step with the capability cache, as runbook run does; R
	// runs it again with fresh probes.
	w.engine = runbook.NewEngine(sh.book, sh.runbookTargets(), opts...)
	w.fresh = runbook.NewEngine(sh.book, sh.runbookTargets(), append(opts, runbook.WithProbeOpts(probe.WithRefresh(true)))...)
}

func (w *walkScreen) state(id string) *stepState {
	s := w.states[id]
	if s == nil {
		s = &stepState{status: runbook.StatusPending}
		w.states[id] = s
	}
	return s
}

func (w *walkScreen) SetSize(width, h int) {
	w.w, w.h = width, h
	w.leftW = clamp(width/3, 24, 38)
	w.pane.setSize(max(10, width-w.leftW-3), max(1, h))
	w.render()
}

func (w *walkScreen) capturing() bool   { return false }
func (w *walkScreen) activate() tea.Cmd { return nil }

func (w *walkScreen) selected() (runbook.Step, bool) {
	steps := w.steps()
	if w.sel < 0 || w.sel >= len(steps) {
		return runbook.Step{}, false
	}
	return steps[w.sel], true
}

func (w *walkScreen) selectStep(i int) {
	w.sel = clamp(i, 0, len(w.steps())-1)
	w.cmdSel = 0
	w.pane.top()
	w.render()
}

// runStep starts the selected step's check.
func (w *walkScreen) runStep(force bool) tea.Cmd {
	step, ok := w.selected()
	if !ok || w.engine == nil {
		return nil
	}
	st := w.state(step.ID)
	if st.status == runbook.StatusRunning && !force {
		return flash("already running")
	}
	if st.res != nil && !force {
		return flash("this step has a result; R runs it again")
	}
	st.cur.stop()
	eng, id := w.engine, step.ID
	if force {
		eng = w.fresh
	}
	var cmd tea.Cmd
	st.cur, cmd = start(w.sh, scrRunbook, func(ctx context.Context, emit func(runbook.Event)) (runbook.Result, error) {
		return eng.Run(ctx, id, emit), nil
	})
	st.status, st.res, st.msg, st.frac, st.events = runbook.StatusRunning, nil, "starting", 0, 0
	w.render()
	return cmd
}

// stepOf finds the step state that owns a run.
func (w *walkScreen) stepOf(runID uint64) *stepState {
	for _, s := range w.states {
		if s.cur.id == runID && s.cur.cancel != nil {
			return s
		}
	}
	return nil
}

func (w *walkScreen) Update(msg tea.Msg) (screen, tea.Cmd) {
	k := w.sh.keys
	switch msg := msg.(type) {
	case eventMsg[runbook.Event]:
		st := w.stepOf(msg.run)
		if st == nil {
			return w, nil
		}
		ev := msg.ev
		st.events++
		if ev.Message != "" {
			st.msg = ev.Message
		}
		if ev.Fraction > 0 {
			st.frac = ev.Fraction
		}
		w.render()
	case doneMsg[runbook.Result]:
		st := w.stepOf(msg.run)
		if st == nil {
			return w, nil
		}
		st.cur = run{}
		if msg.err != nil {
			st.status, st.msg = runbook.StatusFailed, msg.err.Error()
		} else {
			res := msg.val
			st.res, st.status = &res, res.Status
		}
		w.render()
	case gotoStepMsg:
		for i, s := range w.steps() {
			if s.ID == msg.step || msg.step == "" && i == 0 {
				w.selectStep(i)
				break
			}
		}
	case targetsChangedMsg:
		w.stop()
		w.states = map[string]*stepState{}
		w.newEngine()
		w.render()
	case styleChangedMsg:
		w.render()
	case tea.KeyPressMsg:
		switch {
		case key.Matches(msg, k.Down):
			w.selectStep(w.sel + 1)
		case key.Matches(msg, k.Up):
			w.selectStep(w.sel - 1)
		case key.Matches(msg, k.RunStep):
			return w, w.runStep(false)
		case key.Matches(msg, k.RerunStep):
			return w, w.runStep(true)
		case key.Matches(msg, k.NextCommand):
			w.selectCommand(w.cmdSel + 1)
		case key.Matches(msg, k.PrevCommand):
			w.selectCommand(w.cmdSel - 1)
		case key.Matches(msg, k.CompareSource) && w.offersCompare():
			if w.sh.opts.Source == "" {
				return w, flash("no source to compare with: give one on the Start screen (1, then e)")
			}
			return w, func() tea.Msg { return compareMsg{} }
		case key.Matches(msg, k.Copy):
			if w.cmdSel < len(w.cmds) {
				c := w.cmds[w.cmdSel]
				return w, copyText(c.Text, "copied: "+c.Title)
			}
			return w, flash("this step has no command to copy")
		default:
			return w, w.pane.update(msg)
		}
	case tea.MouseMsg:
		return w, w.pane.update(msg)
	}
	return w, nil
}

func (w *walkScreen) selectCommand(i int) {
	if len(w.cmds) == 0 {
		return
	}
	w.cmdSel = clamp(i, 0, len(w.cmds)-1)
	w.render()
	if w.cmdSel < len(w.cmdAt) {
		line := w.cmdAt[w.cmdSel]
		w.pane.show(max(0, line-2), line+2)
	}
}

// back stops the steps that are running.
func (w *walkScreen) back() (bool, tea.Cmd) {
	running := false
	for _, s := range w.states {
		if s.cur.cancel != nil {
			running = true
			s.cur.stop()
			s.cur = run{}
			s.status, s.msg = runbook.StatusSkipped, "stopped"
		}
	}
	if running {
		w.render()
		return true, flash("step stopped")
	}
	return false, nil
}

func (w *walkScreen) stop() {
	for _, s := range w.states {
		s.cur.stop()
		s.cur = run{}
	}
}

// compareStep is the runbook step that compares the image with its
// source; the steps that lead to it offer the comparison too.
const compareStep = "compare-with-source"

// offersCompare tells whether the selected step offers the comparison
// with the source (s).
func (w *walkScreen) offersCompare() bool {
	step, ok := w.selected()
	return ok && (step.ID == compareStep || slices.Contains(step.Next, compareStep))
}

func (w *walkScreen) help() bindings {
	k := w.sh.keys
	if w.offersCompare() && w.sh.opts.Source != "" {
		return bindings{
			short: []key.Binding{k.Steps, k.RunStep, k.CompareSource, k.NextCommand, k.Copy, k.PageDown},
			full: [][]key.Binding{
				{k.Steps, k.RunStep, k.RerunStep, k.CompareSource, k.Back},
				{k.PrevCommand, k.NextCommand, k.Copy},
				{k.PageUp, k.PageDown, k.Top, k.Bottom},
			},
		}
	}
	return bindings{
		short: []key.Binding{k.Steps, k.RunStep, k.RerunStep, k.NextCommand, k.Copy, k.PageDown},
		full: [][]key.Binding{
			{k.Steps, k.RunStep, k.RerunStep, k.Back},
			{k.PrevCommand, k.NextCommand, k.Copy},
			{k.PageUp, k.PageDown, k.Top, k.Bottom},
		},
	}
}

func (w *walkScreen) View() string {
	if w.sh.book == nil {
		return "The runbook could not be loaded: " + fmt.Sprint(w.sh.bookErr)
	}
	end := min(len(w.list), w.listOf+w.h)
	left := clipBlock(strings.Join(w.list[min(w.listOf, end):end], "\n"), w.leftW, w.h)
	sep := strings.TrimSuffix(strings.Repeat("│\n", w.h), "\n")
	return lipgloss.JoinHorizontal(lipgloss.Top, left, " ", w.sh.st.Rule.Render(sep), " ", w.pane.view())
}

var sectionTitles = map[string]string{
	runbook.SectionDiagnose: "DIAGNOSE",
	runbook.SectionIssue:    "ISSUES",
	runbook.SectionValidate: "VALIDATE",
	runbook.SectionEscalate: "ESCALATE",
}

// buildList draws the steps by section with their status words and
// keeps the selected one in view (in Update: View changes nothing).
func (w *walkScreen) buildList() {
	st := w.sh.st
	var lines []string
	w.stepAt = w.stepAt[:0]
	selLine := 0
	section := ""
	for i, s := range w.steps() {
		if s.Section != section {
			section = s.Section
			lines = append(lines, st.Header.Render(sectionTitles[section]))
			w.stepAt = append(w.stepAt, -1)
		}
		w.stepAt = append(w.stepAt, i)
		state := w.state(s.ID)
		word := string(state.status)
		if state.status == runbook.StatusRunning {
			word = "running"
		}
		title := trunc(s.Title, max(4, w.leftW-10))
		if i == w.sel {
			selLine = len(lines)
			lines = append(lines, st.Cursor.Render("› ")+st.paint(toneOf(word), pad(word, 7, false))+" "+st.Selected.Render(title))
		} else {
			lines = append(lines, "  "+st.paint(toneOf(word), pad(word, 7, false))+" "+title)
		}
	}
	w.list, w.listSel = lines, selLine
	w.listOf = window(selLine, w.listOf, w.h, len(lines))
}

// render rebuilds the right pane for the selected step (in Update, never
// in View).
func (w *walkScreen) render() {
	w.buildList()
	step, ok := w.selected()
	if !ok {
		w.pane.setContent("")
		return
	}
	sh, st := w.sh, w.sh.st
	width := w.pane.width()
	state := w.state(step.ID)
	w.cmds, w.cmdErr = nil, ""
	switch cmds, err := step.Render(sh.runbookTargets()); {
	case state.res != nil && len(state.res.Commands) > 0:
		// Filled in with what the check resolved: the digest, a referrer.
		w.cmds = state.res.Commands
	case err != nil:
		w.cmdErr = err.Error()
	default:
		w.cmds = cmds
	}
	w.cmdSel = clamp(w.cmdSel, 0, max(0, len(w.cmds)-1))

	var lines []string
	add := func(s ...string) { lines = append(lines, s...) }
	para := func(label, text string) {
		if text != "" {
			add(wrapIndent(label, text, width)...)
		}
	}
	word := string(state.status)
	add(trunc(st.Title.Render(step.Title)+"  "+st.word(word), width))
	add(st.Label.Render(trunc(sectionTitles[step.Section]+" · step "+strconv.Itoa(w.sel+1)+" of "+strconv.Itoa(len(w.steps()))+" · check: "+step.Check.Kind, width)))
	add("")
	para("", step.Summary)

	// The live result first: it is what changes.
	add("", st.Header.Render("CHECK")+"  "+st.Label.Render(step.Check.Kind))
	switch {
	case state.status == runbook.StatusRunning:
		line := sh.frame + " running"
		if state.frac > 0 && state.frac < 1 {
			line += " " + strconv.Itoa(int(state.frac*100)) + "%"
		}
		add(st.paint(toneRun, line))
		para("  ", state.msg)
	case state.res != nil:
		add(w.resultLines(state.res, width)...)
	case state.msg != "":
		para("  ", st.word(word)+" "+state.msg+"; r runs it, R again")
	default:
		add(st.Label.Render("  not run yet: r runs this check against your targets"))
	}
	if w.offersCompare() {
		add("", st.Header.Render("COMPARE WITH THE SOURCE"))
		if o := sh.opts; o.Source != "" {
			para("  ", "s shows "+sh.displayRef(o.Image)+" against "+sh.displayRef(o.Source)+", where it was copied from: side by side, the missing referrers marked, each with its cause and fix.")
		} else {
			add(wrapIndent("  ", st.Label.Render("If the image is a mirror's copy, give the image it was copied from as Source on the Start screen (1, then e); s then compares the two."), width)...)
		}
	}

	w.cmdAt = w.cmdAt[:0]
	if len(w.cmds) > 0 || w.cmdErr != "" {
		add("", st.Header.Render("COMMANDS")+st.Label.Render("  [ ] select · c copies"))
		if w.cmdErr != "" {
			para("  ", st.word("error")+" "+w.cmdErr)
		}
		for i, c := range w.cmds {
			w.cmdAt = append(w.cmdAt, len(lines))
			mark := "  "
			title := c.Title
			if i == w.cmdSel {
				mark = st.Cursor.Render("› ")
				title = st.Header.Render(title)
			}
			if !c.Shell() {
				title += st.Label.Render(" (" + c.Lang + ")")
			}
			add(trunc(mark+title, width))
			// A shell command gets a prompt on its first line; a config
			// snippet or a query is shown as it is pasted.
			for j, l := range strings.Split(c.Text, "\n") {
				lead := "      "
				if c.Shell() && j == 0 {
					lead = "    $ "
				}
				text := wrapIndent(lead, l, width)
				for k := range text {
					text[k] = st.Code.Render(text[k])
				}
				add(text...)
			}
		}
	}
	if cs := sh.book.CorrectionsFor(step); len(cs) > 0 {
		add("", st.Header.Render("THE OLDER RUNBOOK IS WRONG HERE")+st.Label.Render(" ("+strconv.Itoa(len(cs))+")"))
		for _, c := range cs {
			add(trunc("  "+st.Header.Render(c.Topic), width))
			para("    older runbook: ", c.OlderSays)
			para("    "+st.word("ok")+" correct:    ", c.Truth)
			para("    source:        ", c.Source)
		}
	}

	if step.Explanation != "" {
		add("", st.Header.Render("WHY"))
		for i, p := range strings.Split(step.Explanation, "\n\n") {
			if i > 0 {
				add("")
			}
			para("", p)
		}
	}
	list := func(title string, items []string) {
		if len(items) == 0 {
			return
		}
		add("", st.Header.Render(title))
		for _, it := range items {
			para("  • ", it)
		}
	}
	list("SYMPTOMS", step.Symptoms)
	list("CAUSES", step.Causes)
	list("SOLUTIONS", step.Solutions)

	if len(step.Next) > 0 {
		var next []string
		for _, id := range step.Next {
			if s, ok := sh.book.Step(id); ok {
				next = append(next, s.Title)
			}
		}
		add("", st.Header.Render("NEXT")+st.Label.Render("  ↓ moves on"))
		for _, n := range next {
			para("  → ", n)
		}
	}
	w.pane.setContent(strings.Join(lines, "\n"))
}

// resultLines renders a step result: status and summary, what the check
// saw, and the findings with cause and remedy.
func (w *walkScreen) resultLines(res *runbook.Result, width int) []string {
	sh, st := w.sh, w.sh.st
	var out []string
	add := func(s ...string) { out = append(out, s...) }
	head := st.word(string(res.Status))
	if res.Incomplete {
		head += " " + st.word("incomplete")
	}
	if res.SameAs != "" {
		head += st.Label.Render(" (same check as " + res.SameAs + ")")
	}
	head += st.Label.Render(" · " + sh.ms(res.DurationMS))
	add("  " + head)
	add(wrapIndent("  ", sh.names(res.Summary), width)...)
	if res.Error != "" {
		add(wrapIndent("  error: ", res.Error, width)...)
	}
	switch {
	case res.Timing != nil:
		add(timingTable(sh, *res.Timing, width)...)
	case res.Compat != nil:
		add(compatTable(sh, res.Compat, width)...)
	case res.Failures != nil || (res.Probe != nil && w.stepKind() == runbook.CheckProbeFailures):
		add(failureTable(sh, res.Failures, width)...)
	case res.Probe != nil:
		add(probeTable(sh, *res.Probe, width)...)
	case res.Discovery != nil:
		d := res.Discovery
		incomplete := d.Outcome == finding.OutcomeIncomplete
		add(referrerTreeLines(st, d.Referrers, width, incomplete)...)
		for _, p := range d.Platforms {
			add(trunc("  platform "+p.Platform+" "+discovery.ShortDigest(p.Digest)+" ("+strconv.Itoa(len(p.Referrers))+")", width))
			add(referrerTreeLines(st, p.Referrers, width, incomplete)...)
		}
	case res.Compare != nil:
		add(compareLines(sh, res.Compare, width)...)
	case res.Tags != nil:
		for _, s := range res.Tags.Subjects {
			state := "exists"
			if s.Exists != nil && !*s.Exists {
				state = "orphan"
			}
			kinds := map[string]int{}
			for _, t := range s.Tags {
				kinds[t.Kind]++
			}
			var parts []string
			for _, k := range []string{"index", "sig", "att", "sbom", "other"} {
				if kinds[k] > 0 {
					parts = append(parts, strconv.Itoa(kinds[k])+" "+k)
				}
			}
			add(trunc("    "+discovery.ShortDigest(s.Subject)+"  "+st.word(state)+"  "+strings.Join(parts, ", "), width))
		}
	case res.Bundle != nil:
		if rep, ok := res.Bundle.(*bundle.Report); ok {
			add(trunc("    "+strconv.Itoa(rep.FilesChecked)+" files, "+human.Size(rep.BytesChecked)+" hashed, "+strconv.Itoa(rep.ReferrersChecked)+" referrers checked", width))
			for _, s := range rep.Subjects {
				state := "ok"
				if s.Found != s.Expected {
					state = "fail"
				}
				add(trunc("    "+st.word(state)+" "+discovery.ShortDigest(s.Subject)+" "+strconv.Itoa(s.Found)+"/"+strconv.Itoa(s.Expected)+" referrers intact", width))
			}
		}
	case res.Logs != nil:
		for _, p := range res.Logs.Probes {
			add(trunc("    line "+pad(strconv.Itoa(p.Line), 5, false)+pad(trunc(sh.name(p.Host), 18), 18, false)+" "+st.word(p.API), width))
		}
		for _, f := range res.Logs.Failures {
			add(trunc("    line "+pad(strconv.Itoa(f.Line), 5, false)+st.word("fail")+" "+f.Text, width))
		}
	case res.Metrics != nil:
		if p := res.Prometheus; p != nil && !p.Incomplete {
			add(promLines(sh, *p, width)...)
			add("", st.Header.Render("  THIS RUN'S COUNTERS"))
			if len(res.Metrics) == 0 {
				add("    none yet: nothing was probed or discovered in this session")
			}
		}
		add(metricLines(sh, res.Metrics, width)...)
	case res.Diag != nil:
		add(trunc("    "+res.Diag.Path, width))
		for _, f := range res.Diag.Files {
			add(trunc("      "+f, width))
		}
	}
	if len(res.Findings) > 0 {
		add("", st.Header.Render("  FINDINGS ("+strconv.Itoa(len(res.Findings))+")"))
		// Warnings and errors in full; informational ones in a line each,
		// so the commands stay within reach.
		var full []finding.Finding
		for _, f := range sh.namedFindings(res.Findings) {
			if f.Severity == finding.SeverityInfo {
				add(trunc("  "+st.word("info")+"  "+string(f.Code)+": "+f.Summary, width))
				continue
			}
			full = append(full, f)
		}
		add(findingLines(st, full, width)...)
	}
	return out
}

// stepKind is the selected step's check kind.
func (w *walkScreen) stepKind() string {
	if step, ok := w.selected(); ok {
		return step.Check.Kind
	}
	return ""
}

// probeTable is each registry's verdict under a header.
func probeTable(sh *shared, rep probe.Report, width int) []string {
	st := sh.st
	nameW := clamp(width-4-14-12-10, 10, 24)
	out := []string{"", st.Header.Render("    " + pad("REGISTRY", nameW, false) + " " + pad("REFERRERS API", 13, false) + " " + pad("TAGS", 11, false) + " STATUS")}
	for _, r := range rep.Registries {
		verdict := string(r.ReferrersAPI)
		tone := toneOf(verdict)
		if mismatch(&r) {
			verdict += "!"
			tone = toneMismatch
		}
		out = append(out, trunc("    "+pad(truncMiddle(sh.name(r.Registry), nameW), nameW, false)+" "+st.paint(tone, pad(verdict, 13, false))+" "+
			pad(r.FallbackTags, 11, false)+" "+st.word(string(r.Outcome())), width))
	}
	return out
}

// timingTable is each registry's probe time, slowest first, with its
// slowest request on the line below (whole, wrapped): the ten slowest,
// then how many more and how fast they were.
func timingTable(sh *shared, tr runbook.TimingReport, width int) []string {
	st := sh.st
	const shown = 10
	nameW := clamp(width-4-9-6-9-4, 10, 24)
	out := []string{"", st.Header.Render("    " + pad("REGISTRY", nameW, false) + " " + pad("TIME", 9, true) + " " + pad("REQS", 5, true) + " " + pad("SLOWEST", 9, true))}
	for i, t := range tr.Registries {
		if i == shown {
			out = append(out, st.Label.Render("    and "+human.Count(len(tr.Registries)-shown, "more registry")+", each "+sh.ms(t.TotalMS)+" or less"))
			break
		}
		line := "    " + pad(truncMiddle(sh.name(t.Registry), nameW), nameW, false) + " " + pad(sh.ms(t.TotalMS), 9, true) + " " +
			pad(strconv.Itoa(t.Requests), 5, true) + " " + pad(sh.ms(t.SlowestMS), 9, true)
		tone := toneNone
		switch {
		case t.TimedOut:
			line += "  timed out"
			tone = toneFail
		case i == 0 && len(tr.Registries) > 1:
			line += "  slowest"
			tone = toneWarn
		}
		out = append(out, st.paint(tone, line))
		if t.SlowestRequest != "" {
			out = append(out, wrapHardIndent("        ", st.Label.Render(t.SlowestRequest), width)...)
		}
	}
	out = append(out, st.Label.Render("    slowest first, each with its slowest request · timeout "+sh.ms(tr.TimeoutMS)))
	return out
}

// compatTable lays what the table expects beside what was observed.
func compatTable(sh *shared, lines []runbook.CompatLine, width int) []string {
	st := sh.st
	nameW := clamp(width/4, 10, 20)
	expW := clamp(width-4-nameW-1-11-1-13-1-6, 10, 26)
	out := []string{"", st.Header.Render("    " + pad("REGISTRY", nameW, false) + " " + pad("KIND", 11, false) + " " + pad("EXPECTED", expW, false) + " " + pad("OBSERVED", 13, false) + " AGREES")}
	for _, c := range lines {
		agrees, tone := "-", toneDim
		if c.Agrees != nil {
			agrees, tone = "yes", toneOK
			if !*c.Agrees {
				agrees, tone = "NO", toneMismatch
			}
		}
		out = append(out, trunc("    "+pad(truncMiddle(sh.name(c.Registry), nameW), nameW, false)+" "+pad(trunc(c.Kind, 11), 11, false)+" "+
			pad(trunc(c.Expected, expW), expW, false)+" "+st.paint(toneOf(c.Observed), pad(c.Observed, 13, false))+" "+st.paint(tone, agrees), width))
	}
	return out
}

// failureTable names each probe that reached no verdict and its cause.
func failureTable(sh *shared, fs []runbook.ProbeFailure, width int) []string {
	st := sh.st
	if len(fs) == 0 {
		return []string{"", "    every probe reached a verdict"}
	}
	nameW := clamp(width/4, 10, 22)
	out := []string{"", st.Header.Render("    " + pad("REGISTRY", nameW, false) + " " + pad("CAUSE", 14, false) + " CODE")}
	for _, f := range fs {
		out = append(out, trunc("    "+pad(truncMiddle(sh.name(f.Registry), nameW), nameW, false)+" "+st.paint(toneFail, pad(f.Cause, 14, false))+" "+string(f.Code), width))
	}
	return out
}

// metricLines lists samples as name{labels} value, registry hosts by
// display name.
func metricLines(sh *shared, samples []metricSample, width int) []string {
	var out []string
	for _, s := range samples {
		keys := make([]string, 0, len(s.Labels))
		for k := range s.Labels {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var parts []string
		for _, k := range keys {
			v := s.Labels[k]
			if k == "registry" {
				v = sh.name(v)
			}
			parts = append(parts, k+"="+v)
		}
		out = append(out, trunc("    "+s.Name+"{"+strings.Join(parts, ",")+"} "+fmt.Sprint(s.Value), width))
	}
	return out
}
