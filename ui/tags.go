package ui

import (
	"context"
	"sort"
	"strconv"
	"strings"

	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"

	"github.com/refdoctor/refdoctor/discovery"
	"github.com/refdoctor/refdoctor/internal/human"
)

// lineKind says what a row of the tag list is.
type lineKind int

const (
	lineSubject lineKind = iota
	lineTag
	lineText
)

// tagLine is one row of the flattened, filtered tag listing.
type tagLine struct {
	kind    lineKind
	subject int // index into the listing's subjects
	tag     int // index into that subject's tags
	text    string
	tone    tone
}

// tagsScreen lists a repository's fallback (sha256-<hex>) and cosign
// (.sig/.att/.sbom) tags grouped by subject and kind, orphans marked; "/"
// filters. The list is flattened when data or filter change, and View
// draws only the rows in view.
type tagsScreen struct {
	sh      *shared
	repo    string
	job     job[none, discovery.TagListing]
	res     *discovery.TagListing
	lines   []tagLine
	cursor  int
	offset  int
	filter  textinput.Model
	editing bool
	started bool
	w, h    int
}

func newTagsScreen(sh *shared) *tagsScreen {
	t := &tagsScreen{sh: sh, repo: sh.opts.Repository}
	t.filter = textinput.New()
	t.filter.Prompt = "/"
	t.filter.Placeholder = "tag, kind or digest"
	t.filter.SetStyles(sh.st.Input)
	return t
}

func (t *tagsScreen) SetSize(w, h int) {
	t.w, t.h = w, h
	t.filter.SetWidth(max(10, w-20))
	t.flatten()
}

func (t *tagsScreen) capturing() bool { return t.editing }

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
			t.res = t.job.res
			t.flatten()
		}
	case targetsChangedMsg:
		t.job.reset()
		t.repo, t.started, t.res = t.sh.opts.Repository, false, nil
		t.flatten()
	case styleChangedMsg:
		t.filter.SetStyles(t.sh.st.Input)
	case tea.MouseWheelMsg:
		if msg.Button == tea.MouseWheelUp {
			t.move(-3)
		} else if msg.Button == tea.MouseWheelDown {
			t.move(3)
		}
	case tea.KeyPressMsg:
		return t, t.key(msg)
	}
	return t, nil
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
		t.follow()
	case key.Matches(msg, k.Reload):
		return t.list()
	case key.Matches(msg, k.NextRegistry), key.Matches(msg, k.PrevRegistry):
		step := 1
		if key.Matches(msg, k.PrevRegistry) {
			step = -1
		}
		if next := nextHost(t.sh.registryHosts(), t.repo, step); next != "" {
			t.repo = swapHost(t.repo, next)
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

func (t *tagsScreen) move(d int) {
	t.cursor = clamp(t.cursor+d, 0, len(t.lines)-1)
	t.follow()
}

// follow keeps the cursor in view (in Update: View changes nothing).
func (t *tagsScreen) follow() {
	t.offset = window(t.cursor, t.offset, t.listHeight(), len(t.lines))
}

func (t *tagsScreen) back() (bool, tea.Cmd) {
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

func (t *tagsScreen) stop() { t.job.stop() }

func (t *tagsScreen) help() bindings {
	k := t.sh.keys
	if t.editing {
		return bindings{short: []key.Binding{key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "apply")), k.ClearFilter}}
	}
	return bindings{
		short: []key.Binding{k.Filter, k.Reload, k.PrevRegistry, k.NextRegistry},
		full:  [][]key.Binding{{k.Up, k.Down, k.PageUp, k.PageDown, k.Top, k.Bottom}, {k.Filter, k.ClearFilter, k.Reload, k.PrevRegistry, k.NextRegistry}},
	}
}

var kindOrder = map[string]int{discovery.TagKindIndex: 0, discovery.TagKindSig: 1, discovery.TagKindAtt: 2, discovery.TagKindSBOM: 3, discovery.TagKindOther: 4}

// flatten builds the rows: each subject, then its tags by kind, then the
// findings; only rows matching the filter.
func (t *tagsScreen) flatten() {
	t.lines = t.lines[:0]
	if t.res == nil {
		return
	}
	q := strings.ToLower(strings.TrimSpace(t.filter.Value()))
	for si := range t.res.Subjects {
		s := &t.res.Subjects[si]
		sort.SliceStable(s.Tags, func(i, j int) bool { return kindOrder[s.Tags[i].Kind] < kindOrder[s.Tags[j].Kind] })
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
		t.lines = append(t.lines, tagLine{kind: lineSubject, subject: si})
		t.lines = append(t.lines, tags...)
	}
	if q == "" && len(t.res.Findings) > 0 {
		t.lines = append(t.lines, tagLine{kind: lineText}, tagLine{kind: lineText, text: "FINDINGS", tone: toneBold})
		for _, l := range findingLines(t.sh.st, t.sh.namedFindings(t.res.Findings), max(t.w, 40)) {
			t.lines = append(t.lines, tagLine{kind: lineText, text: l})
		}
	}
	t.cursor = clamp(t.cursor, 0, len(t.lines)-1)
	t.follow()
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
	if t.repo == "" {
		return "No repository to list.\n\nSet one on the Start screen (1, then e): HOST/REPO."
	}
	b.WriteString(trunc(t.headline(), t.w))
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
			b.WriteString("  nothing matches the filter")
		} else {
			b.WriteString("  no referrer or cosign tags in this repository")
		}
	default:
		b.WriteString(st.Header.Render(t.columnHeader()))
		end := min(len(t.lines), t.offset+h)
		for i := t.offset; i < end; i++ {
			b.WriteByte('\n')
			b.WriteString(t.row(i))
		}
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

func (t *tagsScreen) tagWidth() int { return max(12, t.w-2-2-7-1-22) }

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
		return "  " + trunc(st.paint(l.tone, l.text), t.w-2)
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
		subject := "SUBJECT " + truncMiddle(s.Subject, max(20, t.w-50))
		if sel {
			return mark + st.Selected.Render(trunc(subject+"  "+state+" · "+n, t.w-2))
		}
		text = st.Header.Render(subject) + "  " + st.paint(tone, state) + st.Label.Render(" · "+n)
		return mark + trunc(text, t.w-2)
	}
	tg := t.res.Subjects[l.subject].Tags[l.tag]
	digest := discovery.ShortDigest(tg.Digest)
	if digest == "" {
		digest = "(not resolved)"
	}
	line := "  " + pad(tg.Kind, 6, false) + " " + pad(truncMiddle(tg.Tag, t.tagWidth()), t.tagWidth(), false) + " → " + digest
	if sel {
		return mark + st.Selected.Render(trunc(line, t.w-2))
	}
	return mark + trunc(line, t.w-2)
}
