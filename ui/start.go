package ui

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"

	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/list"
	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"

	"github.com/refdoctor/refdoctor/bundle"
	"github.com/refdoctor/refdoctor/config"
	"github.com/refdoctor/refdoctor/discovery"
	"github.com/refdoctor/refdoctor/probe"
)

// startItem is one row of the symptom list.
type startItem struct {
	title, desc, step   string
	solution, stepTitle string
}

func (i startItem) Title() string       { return i.title }
func (i startItem) Description() string { return i.desc }
func (i startItem) FilterValue() string { return i.title + " " + i.desc }

// Target form fields.
const (
	fieldRegistries = iota
	fieldPlainHTTP
	fieldInsecure
	fieldImage
	fieldSource
	fieldRepository
	fieldBundle
	fieldLogFile
	numFields
)

var fieldLabels = [numFields]string{"Registries", "Plain HTTP", "Insecure TLS", "Image", "Source", "Repository", "Bundle file", "Export log"}

// startScreen asks what the operator sees: the runbook's symptom table as
// a list, each leading to the step that deals with it, or the whole
// runbook. The targets (registries, image, bundle, log) are shown and can
// be edited in a small form.
type startScreen struct {
	sh   *shared
	list list.Model
	// filtering is true while the filter is typed into filterIn.
	filtering bool
	filterIn  textinput.Model
	editing   bool
	inputs    [numFields]textinput.Model
	focus     int
	formErr   string
	// checking is set while the form's files are being checked.
	checking bool
	w, h     int
}

func newStartScreen(sh *shared) *startScreen {
	s := &startScreen{sh: sh}
	items := []list.Item{startItem{title: "Walk the whole runbook", desc: "every step in order, from the export logs to escalation",
		solution: "Start at the export logs and go step by step (↓ moves on, r runs each check)."}}
	if sh.book != nil {
		for _, sym := range sh.book.Symptoms {
			it := startItem{title: sym.Symptom, desc: "likely: " + sym.LikelyCause, step: sym.Step, solution: sym.Solution}
			if st, ok := sh.book.Step(sym.Step); ok {
				it.stepTitle = st.Title
			}
			items = append(items, it)
		}
	}
	d := list.NewDefaultDelegate()
	d.SetSpacing(0)
	s.list = list.New(items, d, 0, 0)
	s.list.SetShowTitle(false)
	s.list.SetShowHelp(false)
	s.list.SetShowStatusBar(false)
	// The position and the filter show in the heading line instead.
	s.list.SetShowPagination(false)
	s.list.SetShowFilter(false)
	s.list.SetFilteringEnabled(true)
	s.list.KeyMap.Filter.SetEnabled(false)
	s.list.Filter = substringFilter
	s.filterIn = textinput.New()
	s.filterIn.Prompt = "/"
	s.filterIn.SetStyles(sh.st.Input)
	s.list.DisableQuitKeybindings()
	s.list.KeyMap.CursorUp = sh.keys.Up
	s.list.KeyMap.CursorDown = sh.keys.Down
	s.restyle()
	for i := range s.inputs {
		ti := textinput.New()
		ti.Prompt = ""
		ti.SetStyles(sh.st.Input)
		s.inputs[i] = ti
	}
	s.inputs[fieldRegistries].Placeholder = "HOST[/REPO] ... (space separated)"
	s.inputs[fieldPlainHTTP].Placeholder = "hosts reached over http:// (space separated)"
	s.inputs[fieldInsecure].Placeholder = "hosts whose TLS certificate is not verified"
	s.inputs[fieldImage].Placeholder = "HOST/REPO:TAG or HOST/REPO@sha256:..."
	s.inputs[fieldSource].Placeholder = "where the image was copied from (to compare)"
	s.inputs[fieldRepository].Placeholder = "HOST/REPO (fallback tags)"
	s.inputs[fieldBundle].Placeholder = "path to a mirror bundle (.tgz or .tar.zst)"
	s.inputs[fieldLogFile].Placeholder = "path to the exporter's log"
	return s
}

func (s *startScreen) restyle() {
	st := s.sh.st
	d := list.NewDefaultDelegate()
	d.SetSpacing(0)
	if st.colour() {
		d.Styles = list.NewDefaultItemStyles(st.dark)
		d.Styles.SelectedTitle = d.Styles.SelectedTitle.Foreground(st.tones[toneAccent].GetForeground()).BorderForeground(st.tones[toneAccent].GetForeground()).Bold(true)
		d.Styles.SelectedDesc = d.Styles.SelectedDesc.Foreground(st.tones[toneAccent].GetForeground()).BorderForeground(st.tones[toneAccent].GetForeground())
		s.list.Styles = list.DefaultStyles(st.dark)
	} else {
		plain := st.Plain
		sel := plain.Border(lipgloss.NormalBorder(), false, false, false, true).PaddingLeft(1)
		if st.Header.GetBold() {
			sel = sel.Bold(true)
		}
		d.Styles = list.DefaultItemStyles{
			NormalTitle: plain.PaddingLeft(2), NormalDesc: plain.PaddingLeft(2),
			SelectedTitle: sel, SelectedDesc: sel,
			DimmedTitle: plain.PaddingLeft(2), DimmedDesc: plain.PaddingLeft(2),
			FilterMatch: plain,
		}
		ls := list.Styles{}
		ls.TitleBar, ls.Title, ls.Spinner = plain, plain, plain
		ls.Filter = plainInput()
		ls.DefaultFilterCharacterMatch = plain
		ls.StatusBar, ls.StatusEmpty, ls.StatusBarActiveFilter, ls.StatusBarFilterCount = plain, plain, plain, plain
		ls.NoItems, ls.ArabicPagination, ls.PaginationStyle, ls.HelpStyle = plain, plain, plain.PaddingLeft(2), plain
		ls.ActivePaginationDot = plain.SetString("•")
		ls.InactivePaginationDot = plain.SetString("·")
		ls.DividerDot = plain.SetString(" • ")
		s.list.Styles = ls
	}
	s.list.SetDelegate(d)
	// The paginator keeps rendered dots from when the list was made.
	s.list.Paginator.ActiveDot = s.list.Styles.ActivePaginationDot.String()
	s.list.Paginator.InactiveDot = s.list.Styles.InactivePaginationDot.String()
	for i := range s.inputs {
		s.inputs[i].SetStyles(st.Input)
	}
	s.filterIn.SetStyles(st.Input)
}

// wide tells whether the targets sit beside the list.
func (s *startScreen) wide() bool { return s.w >= 110 }

func (s *startScreen) SetSize(w, h int) {
	s.w, s.h = w, h
	s.layout()
	for i := range s.inputs {
		s.inputs[i].SetWidth(max(10, w-18))
	}
}

// layout sizes the list: under it, when narrow, the targets take one line
// more with a source.
func (s *startScreen) layout() {
	if s.wide() {
		s.list.SetSize(s.w*3/5, max(3, s.h-1))
		return
	}
	below := 8
	if s.sh.opts.Source != "" {
		below++
	}
	s.list.SetSize(s.w, max(3, s.h-below))
}

func (s *startScreen) capturing() bool {
	return s.editing || s.filtering
}

func (s *startScreen) activate() tea.Cmd { return nil }
func (s *startScreen) stop()             {}

func (s *startScreen) back() (bool, tea.Cmd) {
	if s.list.FilterState() != list.Unfiltered {
		s.list.ResetFilter()
		return true, nil
	}
	return false, nil
}

// filterKey edits the filter; the list follows every key at once (the
// list's own filtering runs in the background and can show an older
// answer). enter keeps the filter, even with no match; esc drops it.
func (s *startScreen) filterKey(msg tea.KeyPressMsg) tea.Cmd {
	switch msg.String() {
	case "enter":
		s.filtering = false
		s.filterIn.Blur()
		return nil
	case "esc":
		s.filtering = false
		s.filterIn.Blur()
		s.list.ResetFilter()
		return nil
	}
	var cmd tea.Cmd
	s.filterIn, cmd = s.filterIn.Update(msg)
	if v := strings.TrimSpace(s.filterIn.Value()); v == "" {
		s.list.ResetFilter()
	} else {
		s.list.SetFilterText(v)
	}
	return cmd
}

func (s *startScreen) help() bindings {
	k := s.sh.keys
	if s.editing {
		return bindings{short: []key.Binding{k.NextField, k.PrevField, k.Save, k.Cancel}, full: [][]key.Binding{{k.NextField, k.PrevField, k.Save, k.Cancel}}}
	}
	if s.filtering {
		return bindings{short: []key.Binding{key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "keep filter")), k.ClearFilter}}
	}
	return bindings{
		short: []key.Binding{k.Choose, k.EditTargets, k.Filter},
		full:  [][]key.Binding{{k.Up, k.Down, k.PageUp, k.PageDown}, {k.Choose, k.EditTargets, k.Filter, k.ClearFilter}},
	}
}

func (s *startScreen) Update(msg tea.Msg) (screen, tea.Cmd) {
	switch msg := msg.(type) {
	case styleChangedMsg:
		s.restyle()
		return s, nil
	case targetsChangedMsg:
		s.layout()
		return s, nil
	case formCheckedMsg:
		if !s.editing || !s.checking {
			return s, nil // the form was closed meanwhile
		}
		s.checking = false
		if msg.err != nil {
			s.formErr = msg.err.Error()
			return s, nil
		}
		s.apply(msg.form)
		s.editing = false
		return s, tea.Batch(func() tea.Msg { return targetsChangedMsg{} }, flash("targets saved"))
	case tea.KeyPressMsg:
		if s.editing {
			return s, s.formKey(msg)
		}
		if s.filtering {
			return s, s.filterKey(msg)
		}
		{
			k := s.sh.keys
			switch {
			case key.Matches(msg, k.Filter):
				s.filtering = true
				s.filterIn.SetValue(s.list.FilterValue())
				s.filterIn.CursorEnd()
				return s, s.filterIn.Focus()
			case key.Matches(msg, k.EditTargets):
				return s, s.openForm()
			case key.Matches(msg, k.Choose):
				if it, ok := s.list.SelectedItem().(startItem); ok {
					step := it.step
					return s, func() tea.Msg { return gotoStepMsg{step: step} }
				}
				return s, nil
			}
		}
	}
	var cmd tea.Cmd
	s.list, cmd = s.list.Update(msg)
	return s, cmd
}

func (s *startScreen) openForm() tea.Cmd {
	o := s.sh.opts
	var regs []string
	for _, t := range o.Targets {
		regs = append(regs, t.String())
	}
	s.inputs[fieldRegistries].SetValue(strings.Join(regs, " "))
	var plain, insecure []string
	for _, r := range o.Config.Registries {
		if r.PlainHTTP {
			plain = append(plain, r.Host)
		}
		if r.InsecureSkipVerify {
			insecure = append(insecure, r.Host)
		}
	}
	s.inputs[fieldPlainHTTP].SetValue(strings.Join(plain, " "))
	s.inputs[fieldInsecure].SetValue(strings.Join(insecure, " "))
	s.inputs[fieldImage].SetValue(o.Image)
	s.inputs[fieldSource].SetValue(o.Source)
	s.inputs[fieldRepository].SetValue(o.Repository)
	s.inputs[fieldBundle].SetValue(o.Bundle)
	s.inputs[fieldLogFile].SetValue(o.LogFile)
	for i := range s.inputs {
		s.inputs[i].CursorStart()
	}
	s.editing, s.formErr, s.checking = true, "", false
	return s.focusField(fieldRegistries)
}

func (s *startScreen) focusField(i int) tea.Cmd {
	for j := range s.inputs {
		s.inputs[j].Blur()
	}
	s.focus = (i + numFields) % numFields
	return s.inputs[s.focus].Focus()
}

func (s *startScreen) formKey(msg tea.KeyPressMsg) tea.Cmd {
	switch msg.String() {
	case "esc":
		s.editing, s.checking = false, false
		return nil
	case "tab", "down":
		return s.focusField(s.focus + 1)
	case "shift+tab", "up":
		return s.focusField(s.focus - 1)
	case "enter":
		if s.checking {
			return nil
		}
		f, err := s.parse()
		if err != nil {
			s.formErr = err.Error()
			return nil
		}
		// The files are checked off the update loop; the form stays
		// until they are.
		s.checking, s.formErr = true, ""
		return func() tea.Msg { return formCheckedMsg{form: f, err: checkFormFiles(f)} }
	}
	var cmd tea.Cmd
	s.inputs[s.focus], cmd = s.inputs[s.focus].Update(msg)
	return cmd
}

// targetForm is the form as parsed, before its files are checked.
type targetForm struct {
	targets             []probe.Target
	registries          []config.Registry
	image, source, repo string
	bundle, logFile     string
	plainHTTP, insecure []string
}

// formCheckedMsg carries the form back with what its files turned out to
// be.
type formCheckedMsg struct {
	form targetForm
	err  error
}

// checkFormFiles checks that the bundle file is a file that can be a
// bundle and that the export log is a readable file, naming the field
// and the fix.
func checkFormFiles(f targetForm) error {
	if f.bundle != "" {
		if _, err := bundle.Sniff(f.bundle); err != nil {
			return fmt.Errorf("bundle file %s: %w (give a mirror bundle, .tgz or .tar.zst, or leave the field empty)", f.bundle, unwrapPath(err))
		}
	}
	if f.logFile != "" {
		fh, err := os.Open(f.logFile)
		if err != nil {
			return fmt.Errorf("export log %s: %w (give the exporter's log file, or leave the field empty)", f.logFile, unwrapPath(err))
		}
		defer fh.Close()
		if fi, err := fh.Stat(); err == nil && fi.IsDir() {
			return fmt.Errorf("export log %s is a folder: give the log file inside it", f.logFile)
		}
	}
	return nil
}

// unwrapPath drops the path an os error repeats ("open X: no such file").
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// parse checks the form's names (no file is touched here).
func (s *startScreen) parse() (targetForm, error) {
	var f targetForm
	for _, word := range strings.Fields(s.inputs[fieldRegistries].Value()) {
		t, err := probe.ParseTarget(word)
		if err != nil {
			return f, err
		}
		f.targets = append(f.targets, t)
	}
	hosts := func(field int) ([]string, map[string]bool, error) {
		var out []string
		set := map[string]bool{}
		for _, h := range strings.Fields(s.inputs[field].Value()) {
			if err := config.ValidateHost(h); err != nil {
				return nil, nil, fmt.Errorf("%s: %w (write HOST or HOST:PORT, no path)", strings.ToLower(fieldLabels[field]), err)
			}
			if !set[h] {
				set[h] = true
				out = append(out, h)
			}
		}
		return out, set, nil
	}
	plain, plainSet, err := hosts(fieldPlainHTTP)
	if err != nil {
		return f, err
	}
	insecure, insecureSet, err := hosts(fieldInsecure)
	if err != nil {
		return f, err
	}
	for _, h := range plain {
		if insecureSet[h] {
			return f, fmt.Errorf("%s is in both Plain HTTP and Insecure TLS: plain HTTP has no certificate to skip; keep it in one", h)
		}
	}
	f.plainHTTP, f.insecure = plain, insecure
	f.image = strings.TrimSpace(s.inputs[fieldImage].Value())
	if f.image != "" {
		if _, err := discovery.ParseReference(f.image); err != nil {
			return f, err
		}
	}
	f.source = strings.TrimSpace(s.inputs[fieldSource].Value())
	if f.source != "" {
		if _, err := discovery.ParseReference(f.source); err != nil {
			return f, fmt.Errorf("source: %w", err)
		}
	}
	f.repo = strings.TrimSpace(s.inputs[fieldRepository].Value())
	if f.repo != "" {
		t, err := probe.ParseTarget(f.repo)
		if err != nil {
			return f, err
		}
		if t.Repository == "" || t.Digest != "" {
			return f, errors.New("repository: write HOST/REPO")
		}
	}
	if f.repo == "" && f.image != "" {
		if r, err := discovery.ParseReference(f.image); err == nil {
			f.repo = r.Registry + "/" + r.Repository
		}
	}
	f.bundle = strings.TrimSpace(s.inputs[fieldBundle].Value())
	f.logFile = strings.TrimSpace(s.inputs[fieldLogFile].Value())
	// The config's registries with the form's flags: every target host
	// and every flagged host has an entry; the rest of each entry (CA,
	// expected kind, repository) is kept.
	regs := append([]config.Registry(nil), s.sh.opts.Config.Registries...)
	have := map[string]bool{}
	for _, r := range regs {
		have[r.Host] = true
	}
	add := func(h string) {
		if !have[h] {
			have[h] = true
			regs = append(regs, config.Registry{Host: h})
		}
	}
	for _, t := range f.targets {
		add(t.Host)
	}
	for _, h := range plain {
		add(h)
	}
	for _, h := range insecure {
		add(h)
	}
	for i := range regs {
		regs[i].PlainHTTP = plainSet[regs[i].Host]
		regs[i].InsecureSkipVerify = insecureSet[regs[i].Host]
	}
	f.registries = regs
	return f, nil
}

// apply makes a checked form the session's targets.
func (s *startScreen) apply(f targetForm) {
	o := s.sh.opts
	// Saving the form unchanged is no edit: an entry added only to hold
	// a target's host, with no flag set, changes nothing.
	if !sameTargets(o.Targets, f.targets) || flagsChanged(o.Config, f.registries) {
		s.sh.targetsEdited = true
	}
	o.Targets, o.Image, o.Source, o.Repository = f.targets, f.image, f.source, f.repo
	o.Config.Registries = f.registries
	o.Bundle, o.LogFile = f.bundle, f.logFile
}

func sameTargets(a, b []probe.Target) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// flagsChanged tells whether regs mark any host plain HTTP or insecure
// differently from cfg (a host cfg lacks has neither).
func flagsChanged(cfg config.Config, regs []config.Registry) bool {
	for _, r := range regs {
		was, _ := cfg.Host(r.Host)
		if was.PlainHTTP != r.PlainHTTP || was.InsecureSkipVerify != r.InsecureSkipVerify {
			return true
		}
	}
	return false
}

// heading is the line above the list: what to do, or the filter being
// typed or applied, with the position in the list.
func (s *startScreen) heading(w int) string {
	st := s.sh.st
	n := len(s.list.VisibleItems())
	pos := ""
	if n > 0 {
		pos = st.Label.Render(position(s.list.Index(), n))
	}
	switch {
	case s.filtering:
		return rightAlign(s.filterIn.View()+st.Label.Render("  enter keeps · esc drops"), pos, w)
	case s.list.FilterState() != list.Unfiltered:
		total := len(s.list.Items())
		return rightAlign(st.Header.Render("filter \""+s.list.FilterValue()+"\"")+st.Label.Render(" "+strconv.Itoa(n)+" of "+strconv.Itoa(total)+" · esc clears"), pos, w)
	}
	return rightAlign(st.Title.Render("What do you see?")+st.Label.Render("  choose a symptom, or walk the whole runbook"), pos, w)
}

// listView is the list, or what to do when the filter matches nothing.
func (s *startScreen) listView() string {
	if len(s.list.VisibleItems()) == 0 && s.list.FilterValue() != "" {
		return "\n  nothing matches \"" + s.list.FilterValue() + "\" in the symptoms;\n  esc clears the filter"
	}
	return s.list.View()
}

func (s *startScreen) View() string {
	st := s.sh.st
	if s.editing {
		return s.formView()
	}
	it, _ := s.list.SelectedItem().(startItem)
	if s.wide() {
		left := s.heading(s.list.Width()) + "\n" + s.listView()
		rw := s.w - s.list.Width() - 3
		right := s.targetsView(rw) + "\n\n" + s.choiceView(it, rw)
		return lipgloss.JoinHorizontal(lipgloss.Top, clipBlock(left, s.list.Width(), s.h), "   ", right)
	}
	next := ""
	if it.stepTitle != "" {
		next = st.Label.Render("enter → ") + it.stepTitle
	}
	return s.heading(s.w) + "\n" + clipBlock(s.listView(), s.w, s.list.Height()) + "\n" + trunc(next, s.w) + "\n" + s.targetsView(s.w)
}

// choiceView tells what choosing the selected symptom does.
func (s *startScreen) choiceView(it startItem, w int) string {
	st := s.sh.st
	lines := []string{st.Header.Render("WHAT TO DO")}
	lines = append(lines, wrapIndent("", it.solution, w)...)
	if it.stepTitle != "" {
		lines = append(lines, "", trunc(st.Label.Render("enter opens step: ")+it.stepTitle, w))
	} else {
		lines = append(lines, "", trunc(st.Label.Render("enter opens the first step"), w))
	}
	return strings.Join(lines, "\n")
}

// targetsView shows what the checks will run against.
func (s *startScreen) targetsView(w int) string {
	st, o := s.sh.st, s.sh.opts
	none := st.Label.Render("(none)")
	val := func(v string) string {
		if v == "" {
			return none
		}
		return v
	}
	var names []string
	for _, t := range o.Targets {
		names = append(names, s.sh.name(t.Host))
	}
	regs := none
	if len(names) > 0 {
		regs = strconv.Itoa(len(names)) + ": " + strings.Join(names, ", ")
	}
	lines := []string{
		st.Header.Render("TARGETS") + st.Label.Render("  e edits"),
		st.Label.Render("registries ") + regs,
		st.Label.Render("image      ") + val(o.Image),
	}
	if o.Source != "" {
		lines = append(lines, st.Label.Render("source     ")+o.Source)
	}
	lines = append(lines,
		st.Label.Render("repository ")+val(o.Repository),
		st.Label.Render("bundle     ")+val(o.Bundle),
		st.Label.Render("export log ")+val(o.LogFile),
	)
	for i, l := range lines {
		lines[i] = trunc(l, w)
	}
	return strings.Join(lines, "\n")
}

func (s *startScreen) formView() string {
	st := s.sh.st
	lines := []string{st.Title.Render("Targets"), st.Label.Render(trunc("What the checks run against. tab moves, enter saves, esc cancels.", s.w)), ""}
	for i := range s.inputs {
		mark := "  "
		if i == s.focus {
			mark = st.Cursor.Render("› ")
		}
		lines = append(lines, mark+pad(fieldLabels[i], 12, false)+"  "+s.inputs[i].View())
	}
	if s.checking {
		lines = append(lines, "", st.Label.Render("checking the files…"))
	}
	if s.formErr != "" {
		lines = append(lines, "")
		lines = append(lines, wrapIndent(st.word("error")+" ", s.formErr, s.w)...)
	}
	return strings.Join(lines, "\n")
}

// substringFilter keeps the symptoms that contain every word typed, as
// written (case aside): "tls" finds the symptoms that mention TLS, not
// every one that has a t, an l and an s somewhere.
func substringFilter(term string, targets []string) []list.Rank {
	words := strings.Fields(strings.ToLower(term))
	var out []list.Rank
	for i, t := range targets {
		lower := strings.ToLower(t)
		var matched []int
		ok := true
		for _, w := range words {
			j := strings.Index(lower, w)
			if j < 0 {
				ok = false
				break
			}
			for k := range len([]rune(w)) {
				matched = append(matched, len([]rune(lower[:j]))+k)
			}
		}
		if ok {
			out = append(out, list.Rank{Index: i, MatchedIndexes: matched})
		}
	}
	return out
}

// click selects the symptom under the mouse; a click on the selected one
// walks from it.
func (s *startScreen) click(x, y int) tea.Cmd {
	if s.editing || y < 1 || (s.wide() && x >= s.list.Width()) || y > s.list.Height() {
		return nil
	}
	per := max(1, s.list.Paginator.PerPage)
	i := s.list.Paginator.Page*per + (y-1)/2
	if i >= len(s.list.VisibleItems()) {
		return nil
	}
	if i == s.list.Index() {
		if it, ok := s.list.SelectedItem().(startItem); ok {
			step := it.step
			return func() tea.Msg { return gotoStepMsg{step: step} }
		}
	}
	s.list.Select(i)
	return nil
}
