package ui

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"

	"github.com/refdoctor/refdoctor/discovery"
	"github.com/refdoctor/refdoctor/finding"
	"github.com/refdoctor/refdoctor/internal/human"
)

// catalogPicker lists a registry's repositories (its catalog, where the
// registry gives it out) for the Tags and Referrers screens to pick one
// from. A registry that refuses the catalog says so, with what to do
// instead: nothing is made up.
type catalogPicker struct {
	sh     *shared
	to     screenID
	host   string
	job    job[none, discovery.Catalog]
	open   bool
	cursor int // in shown
	offset int
	w, h   int

	// filter narrows the names to those holding its text (any case), as
	// the Tags screen's filter does; typing is true while it is typed;
	// shown indexes the names in view.
	filter textinput.Model
	typing bool
	shown  []int
}

func newCatalogPicker(sh *shared, to screenID) *catalogPicker {
	c := &catalogPicker{sh: sh, to: to, filter: textinput.New()}
	c.filter.Prompt = "/"
	c.filter.Placeholder = "part of a repository name"
	c.filter.SetStyles(sh.st.Input)
	return c
}

// restyle follows a change of styles.
func (c *catalogPicker) restyle() { c.filter.SetStyles(c.sh.st.Input) }

func (c *catalogPicker) setSize(w, h int) {
	c.w, c.h = w, h
	c.filter.SetWidth(min(32, max(10, w-50)))
}

// listHeight is the rows of names in view (the view has a heading, a hint
// and possibly a finding line above them).
func (c *catalogPicker) listHeight() int { return max(1, c.h-4) }

// show opens the picker on host's catalog, read anew.
func (c *catalogPicker) show(host string) tea.Cmd {
	c.open, c.host, c.cursor, c.offset = true, host, 0, 0
	c.typing, c.shown = false, nil
	c.filter.SetValue("")
	c.filter.Blur()
	sh := c.sh
	return c.job.start(sh, c.to, func(ctx context.Context, _ func(none)) (discovery.Catalog, error) {
		return discovery.ListRepositories(ctx, host, sh.discoveryOpts()...)
	})
}

// close closes the picker and stops its read.
func (c *catalogPicker) close() {
	c.open, c.typing = false, false
	c.job.stop()
}

// capturing is true while the filter is typed: every key goes to it.
func (c *catalogPicker) capturing() bool { return c.open && c.typing }

// clearFilter drops the filter, reporting whether there was one (esc
// clears the filter before it closes the picker).
func (c *catalogPicker) clearFilter() bool {
	had := c.filter.Value() != "" || c.typing
	c.typing = false
	c.filter.SetValue("")
	c.filter.Blur()
	c.refilter()
	return had
}

// refilter recomputes the names in view and keeps the cursor on them.
func (c *catalogPicker) refilter() {
	c.shown = c.shown[:0]
	if c.job.res == nil {
		return
	}
	want := strings.ToLower(strings.TrimSpace(c.filter.Value()))
	for i, name := range c.job.res.Repositories {
		if want == "" || strings.Contains(strings.ToLower(name), want) {
			c.shown = append(c.shown, i)
		}
	}
	c.cursor, c.offset = 0, 0
}

// typeKey edits the filter: enter keeps it, esc drops it; the rest is
// the text input's.
func (c *catalogPicker) typeKey(msg tea.KeyPressMsg) tea.Cmd {
	switch msg.String() {
	case "enter":
		c.typing = false
		c.filter.Blur()
		return nil
	case "esc":
		c.clearFilter()
		return nil
	}
	var cmd tea.Cmd
	c.filter, cmd = c.filter.Update(msg)
	c.refilter()
	return cmd
}

// update takes the catalog's result and the keys while open; it returns
// HOST/REPO when the operator picked a repository.
func (c *catalogPicker) update(msg tea.Msg) (picked string, cmd tea.Cmd) {
	switch msg := msg.(type) {
	case doneMsg[discovery.Catalog]:
		c.job.done(msg, false)
		c.refilter()
		return "", nil
	case tea.KeyPressMsg:
		if !c.open || c.job.res == nil {
			return "", nil
		}
		if c.typing {
			return "", c.typeKey(msg)
		}
		k, n := c.sh.keys, len(c.shown)
		switch {
		case key.Matches(msg, k.Filter) && len(c.job.res.Repositories) > 0:
			c.typing = true
			return "", c.filter.Focus()
		case key.Matches(msg, k.Up):
			c.move(-1)
		case key.Matches(msg, k.Down):
			c.move(1)
		case key.Matches(msg, k.PageUp):
			c.move(-c.listHeight())
		case key.Matches(msg, k.PageDown):
			c.move(c.listHeight())
		case key.Matches(msg, k.Top):
			c.move(-n)
		case key.Matches(msg, k.Bottom):
			c.move(n)
		case key.Matches(msg, k.Open):
			if c.cursor < n {
				c.open = false
				return c.host + "/" + c.job.res.Repositories[c.shown[c.cursor]], nil
			}
		}
	}
	return "", nil
}

func (c *catalogPicker) move(d int) {
	n := len(c.shown)
	if n == 0 {
		return
	}
	c.cursor = clamp(c.cursor+d, 0, n-1)
	c.offset = window(c.cursor, c.offset, c.listHeight(), n)
}

// view draws the picker: the names, or why there are none.
func (c *catalogPicker) view() string {
	st := c.sh.st
	head := st.Header.Render("Repositories on "+c.sh.name(c.host)) + st.Label.Render("  the registry's catalog")
	switch c.job.state {
	case jobRunning:
		return head + "\n\n" + st.paint(toneRun, c.sh.frame+" reading GET /v2/_catalog") + "\n\n" + st.Label.Render("esc closes")
	case jobFailed:
		return head + "\n\n" + strings.Join(wrapIndent(st.word("error")+" ", c.job.err, c.w), "\n") + "\n\n" + st.Label.Render("esc closes")
	case jobStopped, jobIdle:
		return head + "\n\n" + st.Label.Render("stopped; esc closes")
	}
	cat := c.job.res
	var lines []string
	pos := ""
	n := len(cat.Repositories)
	if len(c.shown) > c.listHeight() {
		pos = st.Label.Render(position(c.cursor, len(c.shown)))
	}
	count := human.Count(n, "repository")
	switch {
	case n == 0 && !cat.Complete:
		count = "not given out"
	case !cat.Complete:
		count += ", not every one there is"
	}
	lines = append(lines, rightAlign(head+st.Label.Render(" · "+count+" · "+human.Count(cat.Requests, "request")), pos, c.w))
	for _, f := range cat.Findings {
		lines = append(lines, wrapIndent(st.word(string(f.Severity))+" ", string(f.Code)+": "+c.sh.names(f.Summary), c.w)...)
		if f.Cause != "" {
			lines = append(lines, wrapIndent("  cause: ", f.Cause, c.w)...)
		}
		if f.Code == finding.CatalogUnavailable {
			lines = append(lines, wrapIndent("  fix:   ", "type the repository instead: e on the Start screen edits the targets (Image, Repository).", c.w)...)
		} else if f.Remedy != "" {
			lines = append(lines, wrapIndent("  fix:   ", f.Remedy, c.w)...)
		}
	}
	if n == 0 {
		if len(cat.Findings) == 0 {
			lines = append(lines, "", "  the catalog is empty: the registry holds no repository")
		}
		lines = append(lines, "", st.Label.Render("esc closes"))
		return strings.Join(lines, "\n")
	}
	switch {
	case c.typing:
		lines = append(lines, trunc(c.filter.View()+st.Label.Render(fmt.Sprintf("  %d of %d · enter keeps the filter · esc drops it", len(c.shown), n)), c.w))
	case c.filter.Value() != "":
		lines = append(lines, st.Label.Render(trunc(fmt.Sprintf("filter %q: %d of %d · enter picks · ↑/↓ move · / edits · esc clears", c.filter.Value(), len(c.shown), n), c.w)))
	default:
		lines = append(lines, st.Label.Render(trunc("enter picks · ↑/↓ move · / filters · esc closes", c.w)))
	}
	if len(c.shown) == 0 {
		lines = append(lines, "", "  no repository holds "+strconv.Quote(c.filter.Value()))
	}
	end := min(len(c.shown), c.offset+c.listHeight())
	for i := c.offset; i < end; i++ {
		mark := "  "
		if i == c.cursor {
			mark = st.Cursor.Render("› ")
		}
		lines = append(lines, trunc(mark+cat.Repositories[c.shown[i]], c.w))
	}
	return strings.Join(lines, "\n")
}

// help is the keys of the open picker: esc alone until there are names
// to pick.
func (c *catalogPicker) help() bindings {
	k := c.sh.keys
	if c.job.res == nil || len(c.job.res.Repositories) == 0 {
		return bindings{short: []key.Binding{k.Back}, full: [][]key.Binding{{k.Back}}}
	}
	if c.typing {
		return bindings{short: []key.Binding{key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "keep filter")), k.ClearFilter}}
	}
	return bindings{
		short: []key.Binding{k.Up, k.Down, k.Open, k.Filter, k.Back},
		full:  [][]key.Binding{{k.Up, k.Down, k.PageUp, k.PageDown, k.Top, k.Bottom}, {k.Open, k.Filter, k.Back}},
	}
}
