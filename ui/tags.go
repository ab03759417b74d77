package ui

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"

	"github.com/refdoctor/refdoctor/discovery"
	"github.com/refdoctor/refdoctor/finding"
	"github.com/refdoctor/refdoctor/internal/human"
)

// lineKind says what a row of the tag list is.
type lineKind int

const (
	lineSubject lineKind = iota
	lineTag
	lineText
	// lineCont continues the row above: the rest of a tag name or a
	// subject digest that did not fit (never cut), or a finding's cause
	// and fix; not selectable.
	lineCont
	// lineFinding is a finding's first line: the cursor moves on from the
	// last tag to the findings, and c copies the selected one's fix.
	lineFinding
)

// tagLine is one row of the flattened, filtered tag listing.
type tagLine struct {
	kind    lineKind
	subject int // index into the listing's subjects
	tag     int // index into that subject's tags (a finding's: into findings)
	text    string
	tone    tone
	// part is, for a tag or subject row, the slice of its name on this
	// line; for a continuation, the rest.
	part string
	// of is the kind of row a continuation continues.
	of lineKind
}

// tagsScreen lists a repository's fallback (sha256-<hex>) and cosign
// (.sig/.att/.sbom) tags grouped by subject and kind, orphans marked; "/"
// filters. The list is flattened when data or filter change, and View
// draws only the rows in view.
type tagsScreen struct {
	sh    *shared
	repo  string
	job   job[none, discovery.TagListing]
	res   *discovery.TagListing
	lines []tagLine
	// findings are the listing's findings as shown (hidden by a filter).
	findings []finding.Finding
	cursor   int
	offset   int
	filter   textinput.Model
	editing  bool
	started  bool
	// open is the line shown in full (-1: the list), with the manifest
	// its tag or subject points to.
	open     int
	manifest job[none, discovery.Manifest]
	pane     pane
	// cat lists the registry's repositories to pick one from (l).
	cat  *catalogPicker
	w, h int
}

func newTagsScreen(sh *shared) *tagsScreen {
	t := &tagsScreen{sh: sh, repo: sh.opts.Repository, open: -1, pane: newPane(sh), cat: newCatalogPicker(sh, scrTags)}
	t.filter = textinput.New()
	t.filter.Prompt = "/"
	t.filter.Placeholder = "tag, kind or digest"
	t.filter.SetStyles(sh.st.Input)
	return t
}

func (t *tagsScreen) SetSize(w, h int) {
	t.w, t.h = w, h
	t.filter.SetWidth(max(10, w-20))
	t.pane.setSize(w, max(1, h-1))
	t.cat.setSize(w, h)
	t.flatten()
	t.renderOpen()
}

func (t *tagsScreen) capturing() bool { return t.editing || t.cat.capturing() }

func (t *tagsScreen) activate() tea.Cmd {
	if t.started {
		return nil
	}
	t.started = true
	return t.list()
}

func (t *tagsScreen) list() tea.Cmd {
	if t.repo == "" {
		t.job.reset()
		return nil
	}
	sh, repo := t.sh, t.repo
	cmd := t.job.start(sh, scrTags, func(ctx context.Context, _ func(none)) (discovery.TagListing, error) {
		return discovery.ListTags(ctx, repo, sh.discoveryOpts()...)
	})
	t.res = nil
	t.flatten()
	return cmd
}

func (t *tagsScreen) Update(msg tea.Msg) (screen, tea.Cmd) {
	switch msg := msg.(type) {
	case doneMsg[discovery.TagListing]:
		if t.job.done(msg, false) {
			t.res = byKind(t.job.res)
			t.open = -1
			t.flatten()
		}
	case doneMsg[discovery.Manifest]:
		if t.manifest.done(msg, false) {
			t.renderOpen()
		}
	case doneMsg[discovery.Catalog]:
		t.cat.update(msg)
	case targetsChangedMsg:
		t.cat.close()
		t.job.reset()
		t.manifest.reset()
		t.repo, t.started, t.res, t.open = t.sh.opts.Repository, false, nil, -1
		t.flatten()
	case styleChangedMsg:
		t.cat.restyle()
		t.filter.SetStyles(t.sh.st.Input)
	case tea.MouseWheelMsg:
		if t.open >= 0 {
			return t, t.pane.update(msg)
		}
		if msg.Button == tea.MouseWheelUp {
			t.move(-3)
		} else if msg.Button == tea.MouseWheelDown {
			t.move(3)
		}
	case tea.KeyPressMsg:
		if t.cat.open {
			picked, cmd := t.cat.update(msg)
			if picked != "" {
				t.repo, t.cursor, t.offset = picked, 0, 0
				return t, t.list()
			}
			return t, cmd
		}
		if t.open >= 0 {
			return t, t.pane.update(msg)
		}
		return t, t.key(msg)
	}
	return t, nil
}

// openLine shows what a tag (or a subject) points to and fetches that
// manifest.
func (t *tagsScreen) openLine(i int) tea.Cmd {
	if t.res == nil || i < 0 || i >= len(t.lines) {
		return nil
	}
	l := t.lines[i]
	if l.kind != lineTag && l.kind != lineSubject {
		return nil
	}
	target := t.res.Repository + "@" + t.res.Subjects[l.subject].Subject
	if l.kind == lineTag {
		target = t.res.Repository + ":" + t.res.Subjects[l.subject].Tags[l.tag].Tag
	}
	sh := t.sh
	t.cursor, t.open = i, i
	cmd := t.manifest.start(sh, scrTags, func(ctx context.Context, _ func(none)) (discovery.Manifest, error) {
		return discovery.FetchManifest(ctx, target, sh.discoveryOpts()...)
	})
	t.renderOpen()
	t.pane.top()
	return cmd
}

// click selects the row under the mouse; a click on the selected one opens
// it.
func (t *tagsScreen) click(_, y int) tea.Cmd {
	if t.open >= 0 || t.res == nil {
		return nil
	}
	i := t.offset + y - 2
	for i >= 0 && i < len(t.lines) && t.lines[i].kind == lineCont {
		i--
	}
	if i < 0 || i >= len(t.lines) || t.lines[i].kind == lineText {
		return nil
	}
	if i == t.cursor {
		return t.openLine(i)
	}
	t.cursor = i
	t.follow()
	return nil
}

func (t *tagsScreen) selectedDigest() string {
	if t.res == nil || t.cursor >= len(t.lines) {
		return ""
	}
	switch l := t.lines[t.cursor]; l.kind {
	case lineTag:
		return t.res.Subjects[l.subject].Tags[l.tag].Digest
	case lineSubject:
		return t.res.Subjects[l.subject].Subject
	}
	return ""
}

// renderOpen fills the pane with the open tag or subject.
func (t *tagsScreen) renderOpen() {
	if t.open < 0 || t.res == nil || t.open >= len(t.lines) {
		t.open = -1
		return
	}
	st, w := t.sh.st, t.pane.width()
	l := t.lines[t.open]
	s := t.res.Subjects[l.subject]
	var lines []string
	add := func(x ...string) { lines = append(lines, x...) }
	if l.kind == lineTag {
		tg := s.Tags[l.tag]
		add(trunc(st.Title.Render(tg.Kind+" tag"), w), st.Label.Render("esc returns to the list · y copies the digest"), "")
		add(wrapHardIndent(st.Label.Render("tag        "), tg.Tag, w)...)
		add(wrapHardIndent(st.Label.Render("points to  "), orText(tg.Digest, "(not resolved)"), w)...)
	} else {
		add(trunc(st.Title.Render("subject"), w), st.Label.Render("esc returns to the list · y copies the digest"), "")
	}
	add(wrapHardIndent(st.Label.Render("subject    "), s.Subject, w)...)
	exists := "not checked"
	if s.Exists != nil {
		exists = map[bool]string{true: "exists", false: "ORPHAN: the subject is gone"}[*s.Exists]
	}
	add(st.Label.Render("           ") + st.word(exists))
	switch m := t.manifest; {
	case m.running():
		add("", "  "+st.paint(toneRun, t.sh.frame+" fetching what it holds"))
	case m.state == jobFailed:
		add("")
		add(wrapIndent("  "+st.word("error")+" ", m.err, w)...)
	case m.res != nil:
		mf := m.res
		add("", st.Header.Render("HOLDS")+"  "+mf.MediaType+"  "+human.Size(mf.Size))
		if mf.ArtifactType != "" {
			add(wrapIndent("  artifact type ", mf.ArtifactType, w)...)
		}
		if mf.Subject != "" {
			add(wrapHardIndent("  subject       ", mf.Subject, w)...)
		}
		if len(mf.Entries) > 0 {
			add("", st.Header.Render(strings.ToUpper(human.Plural(len(mf.Entries), "entry"))+" ("+strconv.Itoa(len(mf.Entries))+")"))
			for _, e := range mf.Entries {
				what := e.ArtifactType
				if what == "" {
					what = e.MediaType
				}
				add(wrapIndent("  "+pad(e.Role, 9, false)+" ", what+"  "+human.Size(e.Size), w)...)
				add(wrapHardIndent("            ", e.Digest, w)...)
			}
		}
		if len(mf.Annotations) > 0 {
			add("", st.Header.Render(fmt.Sprintf("ANNOTATIONS (%d)", len(mf.Annotations))))
			keys := make([]string, 0, len(mf.Annotations))
			for k := range mf.Annotations {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				add(wrapHardIndent("  "+k+": ", mf.Annotations[k], w)...)
			}
		}
		add("", st.Header.Render("MANIFEST")+st.Label.Render("  as the registry serves it"))
		add(jsonLines(mf.Raw, w)...)
	}
	t.pane.setLines(lines)
}

// orText is v, or alt when v is empty.
func orText(v, alt string) string {
	if v == "" {
		return alt
	}
	return v
}

func (t *tagsScreen) key(msg tea.KeyPressMsg) tea.Cmd {
	k := t.sh.keys
	if t.editing {
		switch msg.String() {
		case "enter":
			t.editing = false
			t.filter.Blur()
			return nil
		case "esc":
			t.editing = false
			t.filter.Blur()
			t.filter.SetValue("")
			t.flatten()
			return nil
		}
		var cmd tea.Cmd
		t.filter, cmd = t.filter.Update(msg)
		t.cursor, t.offset = 0, 0
		t.flatten()
		return cmd
	}
	switch {
	case key.Matches(msg, k.Filter):
		t.editing = true
		return t.filter.Focus()
	case key.Matches(msg, k.OpenTag):
		return t.openLine(t.cursor)
	case key.Matches(msg, k.Up):
		t.move(-1)
	case key.Matches(msg, k.Down):
		t.move(1)
	case key.Matches(msg, k.PageUp):
		t.move(-t.listHeight())
	case key.Matches(msg, k.PageDown):
		t.move(t.listHeight())
	case key.Matches(msg, k.Top):
		t.cursor = 0
		t.follow()
	case key.Matches(msg, k.Bottom):
		t.cursor = max(0, len(t.lines)-1)
		t.move(0)
	case key.Matches(msg, k.Reload):
		return t.list()
	case key.Matches(msg, k.Repositories):
		if host := t.host(); host != "" {
			return t.cat.show(host)
		}
		return flash("no registry to list: set one on the Start screen (1, then e)")
	case key.Matches(msg, k.NextRegistry), key.Matches(msg, k.PrevRegistry):
		step := 1
		if key.Matches(msg, k.PrevRegistry) {
			step = -1
		}
		if next := nextHost(t.sh.registryHosts(), t.repo, step); next != "" {
			t.repo = t.sh.repositoryOn(next, t.repo)
			t.cursor, t.offset = 0, 0
			return t.list()
		}
	}
	return nil
}

// nextHost is the registry after (or before) the one ref names.
func nextHost(hosts []string, ref string, step int) string {
	if len(hosts) == 0 {
		return ""
	}
	host, _, _ := strings.Cut(ref, "/")
	i := -1
	for j, h := range hosts {
		if h == host {
			i = j
		}
	}
	return hosts[((i+step)%len(hosts)+len(hosts))%len(hosts)]
}

// move steps the cursor over the rows (subjects, tags, then findings),
// skipping continuation and text lines: on to the next row the way it
// moves, else back to the nearest one.
func (t *tagsScreen) move(d int) {
	if len(t.lines) == 0 {
		return
	}
	c := clamp(t.cursor+d, 0, len(t.lines)-1)
	step := -1
	if d > 0 {
		step = 1
	}
	row := func(i int) bool { k := t.lines[i].kind; return k != lineCont && k != lineText }
	for _, s := range []int{step, -step} {
		for i := c; i >= 0 && i < len(t.lines); i += s {
			if row(i) {
				t.cursor = i
				t.follow()
				return
			}
		}
	}
	t.cursor = c
	t.follow()
}

// onFinding is the index of the finding the cursor is on, -1 if none.
func (t *tagsScreen) onFinding() int {
	if t.cursor < len(t.lines) && t.lines[t.cursor].kind == lineFinding {
		return t.lines[t.cursor].tag
	}
	return -1
}

// selectedFix is the selected finding's fix, with its commands runnable
// as shown.
func (t *tagsScreen) selectedFix() (string, string) {
	switch {
	case t.cat.open:
		return "", "nothing to fix in the repository list"
	case t.open >= 0:
		return "", "a tag has no fix of its own: esc, then ↓ past the tags to a finding"
	case t.res == nil && t.job.running():
		return "", "no fix yet: the listing is still running"
	case t.res == nil || len(t.res.Findings) == 0:
		return "", "no findings here, so no fix to copy"
	case strings.TrimSpace(t.filter.Value()) != "":
		return "", "the filter hides the findings: esc clears it, then ↓ past the tags selects a finding"
	}
	i := t.onFinding()
	if i < 0 {
		return "", "a tag has no fix of its own: ↓ past the tags selects a finding"
	}
	f := t.findings[i]
	if f.Remedy == "" || strings.HasPrefix(f.Remedy, "Nothing to fix") {
		return "", "nothing to fix for " + string(f.Code)
	}
	return f.Remedy, ""
}

// follow keeps the cursor in view (in Update: View changes nothing).
func (t *tagsScreen) follow() {
	t.offset = window(t.cursor, t.offset, t.listHeight(), len(t.lines))
}

// host is the registry the screen is on: the listed repository's, else
// the first target's.
func (t *tagsScreen) host() string {
	if t.repo != "" {
		h, _, _ := strings.Cut(t.repo, "/")
		return h
	}
	if hosts := t.sh.registryHosts(); len(hosts) > 0 {
		return hosts[0]
	}
	return ""
}

func (t *tagsScreen) back() (bool, tea.Cmd) {
	if t.cat.open {
		if !t.cat.clearFilter() {
			t.cat.close()
		}
		return true, nil
	}
	if t.open >= 0 {
		t.open = -1
		t.manifest.stop()
		t.follow()
		return true, nil
	}
	if t.filter.Value() != "" {
		t.filter.SetValue("")
		t.flatten()
		return true, nil
	}
	if t.job.stop() {
		return true, flash("listing stopped")
	}
	return false, nil
}

func (t *tagsScreen) stop() {
	t.cat.close()
	t.job.stop()
	t.manifest.stop()
}

func (t *tagsScreen) help() bindings {
	k := t.sh.keys
	if t.editing {
		return bindings{short: []key.Binding{key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "apply")), k.ClearFilter}}
	}
	if t.cat.open {
		return t.cat.help()
	}
	if t.open >= 0 {
		return bindings{short: []key.Binding{k.PageDown, k.PageUp, k.Back}, full: [][]key.Binding{{k.PageUp, k.PageDown, k.Top, k.Bottom}, {k.Back}}}
	}
	// c shows where there are findings to copy a fix from, first while
	// one is selected (enter and y are for tags).
	var short []key.Binding
	switch {
	case t.onFinding() >= 0:
		short = []key.Binding{k.CopyFix, k.PrevRegistry, k.NextRegistry, k.Repositories, k.Filter, k.Reload, k.SaveJSON}
	case len(t.findings) > 0 && t.filter.Value() == "":
		short = []key.Binding{k.OpenTag, k.CopyDigest, k.CopyFix, k.PickRegistry, k.Repositories, k.Filter, k.Reload, k.SaveJSON}
	default:
		short = []key.Binding{k.OpenTag, k.CopyDigest, k.PrevRegistry, k.NextRegistry, k.Repositories, k.Filter, k.Reload, k.SaveJSON}
	}
	return bindings{
		short: short,
		full:  [][]key.Binding{{k.Up, k.Down, k.OpenTag, k.PageUp, k.PageDown, k.Top, k.Bottom}, {k.CopyDigest, k.CopyFix, k.Filter, k.ClearFilter, k.Reload, k.PrevRegistry, k.NextRegistry, k.Repositories, k.SaveJSON}},
	}
}

var kindOrder = map[string]int{discovery.TagKindIndex: 0, discovery.TagKindSig: 1, discovery.TagKindAtt: 2, discovery.TagKindSBOM: 3, discovery.TagKindOther: 4}

// addRow adds a row whose name wraps onto continuation lines at w.
func (t *tagsScreen) addRow(l tagLine, name string, w int) {
	parts := wrapHard(name, w)
	l.part = parts[0]
	t.lines = append(t.lines, l)
	for _, p := range parts[1:] {
		t.lines = append(t.lines, tagLine{kind: lineCont, subject: l.subject, tag: l.tag, part: p, of: l.kind})
	}
}

// byKind is the listing as the screen shows it: each subject's tags by
// kind. It is a copy: the job keeps the engine's listing, which w saves
// as refdoctor tags -o json prints it.
func byKind(res *discovery.TagListing) *discovery.TagListing {
	if res == nil {
		return nil
	}
	out := *res
	out.Subjects = make([]discovery.TagSubject, len(res.Subjects))
	for i, s := range res.Subjects {
		s.Tags = append([]discovery.TagEntry(nil), s.Tags...)
		sort.SliceStable(s.Tags, func(i, j int) bool { return kindOrder[s.Tags[i].Kind] < kindOrder[s.Tags[j].Kind] })
		out.Subjects[i] = s
	}
	return &out
}

// flatten builds the rows: each subject, then its tags by kind, then the
// findings; only rows matching the filter.
func (t *tagsScreen) flatten() {
	t.lines = t.lines[:0]
	if t.res == nil {
		t.findings = nil
		return
	}
	t.findings = t.sh.namedFindings(t.res.Findings)
	q := strings.ToLower(strings.TrimSpace(t.filter.Value()))
	for si := range t.res.Subjects {
		s := &t.res.Subjects[si]
		subjectMatch := q == "" || strings.Contains(strings.ToLower(s.Subject), q) || (q == "orphan" && s.Exists != nil && !*s.Exists)
		var tags []tagLine
		for ti, tg := range s.Tags {
			if subjectMatch || strings.Contains(strings.ToLower(tg.Tag), q) || tg.Kind == q || strings.Contains(strings.ToLower(tg.Digest), q) {
				tags = append(tags, tagLine{kind: lineTag, subject: si, tag: ti})
			}
		}
		if len(tags) == 0 {
			continue
		}
		// A subject's row says whether it exists; its digest follows in
		// full on the lines below.
		t.lines = append(t.lines, tagLine{kind: lineSubject, subject: si})
		for _, p := range wrapHard(s.Subject, max(20, t.w-3-4)) {
			t.lines = append(t.lines, tagLine{kind: lineCont, subject: si, part: p, of: lineSubject})
		}
		for _, tl := range tags {
			t.addRow(tl, s.Tags[tl.tag].Tag, t.tagWidth())
		}
	}
	if q == "" && len(t.findings) > 0 {
		t.lines = append(t.lines, tagLine{kind: lineText}, tagLine{kind: lineText, text: "FINDINGS", tone: toneBold})
		// Each finding wraps inside the rows' width (their mark, and the
		// scrollbar); its first line is the selectable row.
		for i, f := range t.findings {
			for j, l := range findingLines(t.sh.st, []finding.Finding{f}, max(t.w-5, 40)) {
				if j == 0 {
					t.lines = append(t.lines, tagLine{kind: lineFinding, tag: i, text: strings.TrimPrefix(l, "  ")})
				} else {
					t.lines = append(t.lines, tagLine{kind: lineCont, text: l, of: lineFinding})
				}
			}
		}
	}
	t.cursor = clamp(t.cursor, 0, len(t.lines)-1)
	t.move(0)
}

func (t *tagsScreen) listHeight() int {
	h := t.h - 2
	if t.editing || t.filter.Value() != "" {
		h--
	}
	return max(1, h)
}

func (t *tagsScreen) View() string {
	st := t.sh.st
	var b strings.Builder
	if t.cat.open {
		return t.cat.view()
	}
	if t.repo == "" {
		if t.host() != "" {
			return "No repository to list.\n\nPress l to pick one from " + t.sh.name(t.host()) + "'s catalog, or set one on the Start screen (1, then e): HOST/REPO."
		}
		return "No repository to list.\n\nSet one on the Start screen (1, then e): HOST/REPO."
	}
	if t.open >= 0 {
		return rightAlign(t.headline(), st.Label.Render(t.pane.position()), t.w) + "\n" + t.pane.view()
	}
	pos := ""
	if len(t.lines) > t.listHeight() {
		pos = st.Label.Render(position(t.cursor, len(t.lines)))
	}
	b.WriteString(rightAlign(t.headline(), pos, t.w))
	b.WriteByte('\n')
	h := t.listHeight()
	switch {
	case t.res == nil:
		b.WriteString("\n")
		switch t.job.state {
		case jobRunning:
			b.WriteString(st.paint(toneRun, t.sh.frame+" listing tags of "+t.repo+" …"))
		case jobFailed:
			b.WriteString(st.word("error") + " " + t.job.err)
		case jobStopped:
			b.WriteString(st.word("skipped") + " stopped; r lists again")
		}
		return b.String()
	case len(t.lines) == 0:
		b.WriteString("\n")
		if t.filter.Value() != "" {
			b.WriteString("  nothing matches \"" + t.filter.Value() + "\" (tag names, kinds, digests); esc clears the filter")
		} else {
			b.WriteString("  no referrer or cosign tags in this repository")
		}
	default:
		b.WriteString(st.Header.Render(t.columnHeader()))
		end := min(len(t.lines), t.offset+h)
		var rows strings.Builder
		for i := t.offset; i < end; i++ {
			if i > t.offset {
				rows.WriteByte('\n')
			}
			rows.WriteString(t.row(i))
		}
		b.WriteByte('\n')
		b.WriteString(withScrollbar(rows.String(), t.w-1, scrollbar(st, len(t.lines), t.offset, end-t.offset)))
	}
	if t.editing || t.filter.Value() != "" {
		for n := min(len(t.lines), h); n < h; n++ {
			b.WriteByte('\n')
		}
		b.WriteByte('\n')
		b.WriteString(t.filter.View())
	}
	return b.String()
}

func (t *tagsScreen) headline() string {
	st := t.sh.st
	if t.res == nil {
		return st.Header.Render(t.sh.displayRef(t.repo))
	}
	r := t.res
	orphans := 0
	for _, s := range r.Subjects {
		if s.Exists != nil && !*s.Exists {
			orphans++
		}
	}
	parts := []string{st.Header.Render(t.sh.displayRef(r.Repository)), human.Count(r.TagsTotal, "tag") + " for " + human.Count(len(r.Subjects), "subject")}
	if orphans > 0 {
		parts = append(parts, st.word("orphan")+" "+strconv.Itoa(orphans))
	}
	if r.Partial {
		parts = append(parts, st.word("partial"))
	}
	if t.job.running() {
		parts = append(parts, st.paint(toneRun, t.sh.frame+" listing"))
	}
	parts = append(parts, human.Count(r.Requests, "request"))
	return strings.Join(parts, " · ")
}

func (t *tagsScreen) columnHeader() string {
	return "  KIND    TAG" + strings.Repeat(" ", max(1, t.tagWidth()-2)) + "→ HOLDS"
}

func (t *tagsScreen) tagWidth() int { return max(12, t.w-3-2-7-1-22) }

func (t *tagsScreen) row(i int) string {
	st := t.sh.st
	l := t.lines[i]
	sel := i == t.cursor
	mark := "  "
	if sel {
		mark = st.Cursor.Render("› ")
	}
	var text string
	switch l.kind {
	case lineText:
		if l.text == "FINDINGS" && t.w >= 60 {
			return "  " + trunc(st.paint(l.tone, l.text)+st.Label.Render(findingsHint), t.w-3)
		}
		return "  " + trunc(st.paint(l.tone, l.text), t.w-3)
	case lineFinding:
		if sel {
			return "  " + mark + st.Selected.Render(trunc(l.text, t.w-5))
		}
		return "    " + trunc(l.text, t.w-5)
	case lineCont:
		if l.of == lineFinding {
			return "  " + trunc(l.text, t.w-3)
		}
		indent := 2 + 2 + 7 // under a tag name
		if l.of == lineSubject {
			indent = 4
		}
		return strings.Repeat(" ", indent) + l.part
	case lineSubject:
		s := t.res.Subjects[l.subject]
		state, tone := "exists", toneOK
		switch {
		case s.Exists == nil:
			state, tone = "not checked", toneDim
		case !*s.Exists:
			state, tone = "ORPHAN: subject missing", toneFail
		}
		n := human.Count(len(s.Tags), "tag")
		subject := "SUBJECT"
		if sel {
			return mark + st.Selected.Render(trunc(subject+" "+state+" · "+n, t.w-3))
		}
		text = st.Header.Render(subject) + " " + st.paint(tone, state) + st.Label.Render(" · "+n)
		return mark + trunc(text, t.w-3)
	}
	tg := t.res.Subjects[l.subject].Tags[l.tag]
	digest := discovery.ShortDigest(tg.Digest)
	if digest == "" {
		digest = "(not resolved)"
	}
	line := "  " + pad(tg.Kind, 6, false) + " " + pad(l.part, t.tagWidth(), false) + " → " + digest
	if sel {
		return mark + st.Selected.Render(trunc(line, t.w-3))
	}
	return mark + trunc(line, t.w-3)
}
