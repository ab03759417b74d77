package ui

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"

	"github.com/refdoctor/refdoctor/finding"
	"github.com/refdoctor/refdoctor/internal/human"
	"github.com/refdoctor/refdoctor/probe"
	"github.com/refdoctor/refdoctor/registry"
)

// rowState is where one registry's probe stands.
type rowState int

const (
	rowPending rowState = iota // not probed yet
	rowQueued                  // waiting for a free probe slot
	rowProbing                 // exchanges arriving
	rowDone                    // a result
	rowError                   // the run ended without a result
	rowStopped                 // esc stopped it
)

// String is the word the table shows.
func (s rowState) String() string {
	return [...]string{"pending", "queued", "probing", "done", "error", "stopped"}[s]
}

// compatRow is one registry in the compatibility table.
type compatRow struct {
	target    probe.Target
	state     rowState
	owner     uint64 // the run whose events this row takes
	exchanges []registry.Exchange
	res       *probe.Result
	err       string
	ver       int // bumped on every change, for the detail screen
}

// compatRun is one probe run over some rows.
type compatRun struct {
	run
	rows map[string][]int // target string -> row indexes
}

// reprobeMsg asks the compatibility screen to probe one row again (after
// the detail refilled a lab budget).
type reprobeMsg struct{ row int }

// reprobeRefillTimeout bounds asking the lab to refill a budget.
const reprobeRefillTimeout = 10 * time.Second

// compatScreen is the live compatibility table: one row per registry,
// filling in as probe events arrive, mismatches against the known-registry
// matrix marked with "!". Enter opens a row's detail in place; esc
// returns to the same row.
type compatScreen struct {
	sh      *shared
	rows    []*compatRow
	tbl     *table
	runs    map[uint64]*compatRun
	started bool
	detail  *detailScreen
	w, h    int
}

func newCompatScreen(sh *shared) *compatScreen {
	c := &compatScreen{sh: sh, runs: map[uint64]*compatRun{}}
	c.tbl = newTable([]column{
		{title: "REGISTRY", min: 10, max: 26, prio: 0},
		{title: "KIND", min: 6, max: 12, prio: 3},
		{title: "EXPECTED", min: 8, max: 11, prio: 2},
		{title: "REFERRERS API", min: 12, max: 14, prio: 0},
		{title: "TAGS", min: 6, max: 11, prio: 1},
		{title: "VERSION", min: 7, max: 12, prio: 7},
		{title: "AUTH", min: 6, max: 9, prio: 4},
		{title: "RATE", min: 5, max: 9, prio: 5},
		{title: "TIME", min: 6, max: 10, prio: 6, right: true},
		{title: "STATUS", min: 10, max: 10, prio: 0},
	})
	c.resetRows()
	return c
}

func (c *compatScreen) resetRows() {
	for _, r := range c.runs {
		r.stop()
	}
	c.runs = map[uint64]*compatRun{}
	c.rows = nil
	for _, t := range c.sh.opts.Targets {
		c.rows = append(c.rows, &compatRow{target: t, state: rowPending})
	}
	c.refreshTable()
}

func (c *compatScreen) refreshTable() {
	rows := make([][]cell, len(c.rows))
	for i, r := range c.rows {
		rows[i] = c.cells(r)
	}
	c.tbl.setRows(rows)
}

func (c *compatScreen) refreshRow(i int) {
	c.rows[i].ver++
	c.tbl.setRow(i, c.cells(c.rows[i]))
}

// mismatch tells whether a result contradicts the matrix.
func mismatch(r *probe.Result) bool {
	return r != nil && r.Expected != nil && r.Expected.Matches != nil && !*r.Expected.Matches
}

func (c *compatScreen) cells(r *compatRow) []cell {
	name := c.sh.name(r.target.Host)
	row := []cell{{text: name}}
	if r.res == nil {
		state := r.state.String()
		api, status := state, state
		switch r.state {
		case rowProbing:
			api = "probing " + strconv.Itoa(len(r.exchanges))
		case rowError:
			api = "-"
		}
		return append(row, cell{"-", toneDim}, cell{"-", toneDim}, cell{api, toneOf(state)},
			cell{"-", toneDim}, cell{"-", toneDim}, cell{"-", toneDim}, cell{"-", toneDim}, cell{"-", toneDim}, cell{status, toneOf(status)})
	}
	res := r.res
	expected := "-"
	if res.Expected != nil {
		expected = res.Expected.ReferrersAPI
	}
	api := string(res.ReferrersAPI)
	apiTone := toneOf(api)
	expTone := toneNone
	if mismatch(res) {
		api += "!"
		apiTone, expTone = toneMismatch, toneMismatch
	}
	version := res.DistributionAPIVersion
	if res.OCIDistributionAPIVersion != "" {
		version = res.OCIDistributionAPIVersion
	}
	if version == "" {
		version = "-"
	}
	rate := "-"
	if rl := res.RateLimit; rl != nil {
		limit, _, _ := strings.Cut(rl.Limit, ";")
		rem, _, _ := strings.Cut(rl.Remaining, ";")
		switch {
		case rl.Throttled:
			rate = "429"
		case limit != "" || rem != "":
			rate = rem + "/" + limit
		}
	}
	rateTone := toneNone
	if rate == "429" || (res.RateLimit != nil && res.RateLimit.Low) {
		rateTone = toneWarn
	}
	ms := c.sh.ms(res.ProbeMS)
	if res.Cached {
		ms = "cache " + probe.Age(c.sh.since(res.CachedAt))
	}
	outcome := string(res.Outcome())
	return append(row,
		cell{res.Kind, toneNone},
		cell{expected, expTone},
		cell{api, apiTone},
		cell{res.FallbackTags, toneOf(res.FallbackTags)},
		cell{version, toneNone},
		cell{res.Auth, toneNone},
		cell{rate, rateTone},
		cell{ms, toneNone},
		cell{outcome, toneOf(outcome)},
	)
}

func (c *compatScreen) SetSize(w, h int) {
	c.w, c.h = w, h
	c.tbl.setSize(w, max(2, h-5))
	if c.detail != nil {
		c.detail.SetSize(w, h)
	}
}

// openDetail shows a row's exchanges, cause and fix.
func (c *compatScreen) openDetail(row int) {
	c.detail = newDetailScreen(c.sh, c, row)
	c.detail.SetSize(c.w, c.h)
}

func (c *compatScreen) capturing() bool { return false }

func (c *compatScreen) activate() tea.Cmd {
	if c.started || len(c.rows) == 0 {
		return nil
	}
	c.started = true
	return c.probe(nil, false)
}

// probe starts a run over the given rows (nil: all). A row probed again
// belongs to the new run, and the older run's events for it are dropped.
// Without refresh the capability cache answers where it holds a fresh
// verdict (as the CLI's probe does); r and R probe anew.
func (c *compatScreen) probe(rows []int, refresh bool) tea.Cmd {
	if rows == nil {
		for _, r := range c.runs {
			r.stop()
		}
		c.runs = map[uint64]*compatRun{}
		for i := range c.rows {
			rows = append(rows, i)
		}
	}
	if len(rows) == 0 {
		return nil
	}
	var targets []probe.Target
	byTarget := map[string][]int{}
	for _, i := range rows {
		t := c.rows[i].target
		if _, ok := byTarget[t.String()]; !ok {
			targets = append(targets, t)
		}
		byTarget[t.String()] = append(byTarget[t.String()], i)
	}
	sh := c.sh
	rn, cmd := start(sh, scrCompat, func(ctx context.Context, emit func(probe.Event)) (probe.Report, error) {
		return probe.Run(ctx, targets, sh.probeOpts(emit, refresh)...)
	})
	c.runs[rn.id] = &compatRun{run: rn, rows: byTarget}
	for _, i := range rows {
		r := c.rows[i]
		r.owner, r.state, r.res, r.err, r.exchanges = rn.id, rowQueued, nil, "", nil
		c.refreshRow(i)
	}
	return cmd
}

func (c *compatScreen) Update(msg tea.Msg) (screen, tea.Cmd) {
	cmd := c.update(msg)
	if c.detail != nil {
		c.detail.sync()
	}
	return c, cmd
}

func (c *compatScreen) update(msg tea.Msg) tea.Cmd {
	if c.detail != nil {
		switch msg.(type) {
		case tea.KeyPressMsg, tea.MouseMsg:
			return c.detail.update(msg)
		}
	}
	switch msg := msg.(type) {
	case eventMsg[probe.Event]:
		run := c.runs[msg.run]
		ev := msg.ev
		if run == nil {
			return nil
		}
		for _, i := range run.rows[ev.Target] {
			r := c.rows[i]
			if r.owner != msg.run {
				continue // probed again since: stale
			}
			switch ev.Kind {
			case probe.EventStarted:
				r.state = rowProbing
			case probe.EventExchange:
				if ev.Exchange != nil {
					r.exchanges = append(r.exchanges, *ev.Exchange)
				}
			case probe.EventFinished:
				r.state, r.res = rowDone, ev.Result
			}
			c.refreshRow(i)
		}
	case doneMsg[probe.Report]:
		run := c.runs[msg.run]
		if run == nil {
			return nil
		}
		delete(c.runs, msg.run)
		for _, idx := range run.rows {
			for _, i := range idx {
				r := c.rows[i]
				if r.owner != msg.run || r.res != nil {
					continue
				}
				r.state, r.err = rowError, "the probe ended without a result"
				if msg.err != nil {
					r.err = msg.err.Error()
				}
				if errors.Is(msg.err, context.Canceled) {
					r.state = rowStopped
				}
				c.refreshRow(i)
			}
		}
	case reprobeMsg:
		if msg.row >= 0 && msg.row < len(c.rows) {
			return c.probe([]int{msg.row}, true)
		}
	case targetsChangedMsg:
		c.started = false
		c.detail = nil
		c.resetRows()
	case tea.MouseWheelMsg:
		if msg.Button == tea.MouseWheelUp {
			c.tbl.move(-3)
		} else if msg.Button == tea.MouseWheelDown {
			c.tbl.move(3)
		}
	case tea.KeyPressMsg:
		k := c.sh.keys
		switch {
		case key.Matches(msg, k.Up):
			c.tbl.move(-1)
		case key.Matches(msg, k.Down):
			c.tbl.move(1)
		case key.Matches(msg, k.PageUp):
			c.tbl.move(-c.tbl.height)
		case key.Matches(msg, k.PageDown):
			c.tbl.move(c.tbl.height)
		case key.Matches(msg, k.Top):
			c.tbl.home()
		case key.Matches(msg, k.Bottom):
			c.tbl.end()
		case key.Matches(msg, k.ReprobeAll):
			c.started = true
			return c.probe(nil, true)
		case key.Matches(msg, k.Reprobe):
			if len(c.rows) > 0 {
				c.started = true
				return c.probe([]int{c.tbl.cursor}, true)
			}
		case key.Matches(msg, k.Detail):
			if len(c.rows) > 0 {
				c.openDetail(c.tbl.cursor)
			}
		}
	}
	return nil
}

func (c *compatScreen) running() int {
	n := 0
	for _, r := range c.rows {
		if r.state == rowQueued || r.state == rowProbing {
			n++
		}
	}
	return n
}

// back closes the exchange shown in full, then the detail (back on its
// row), else stops running probes.
func (c *compatScreen) back() (bool, tea.Cmd) {
	if c.detail != nil {
		if !c.detail.back() {
			c.detail = nil
		}
		return true, nil
	}
	if len(c.runs) == 0 {
		return false, nil
	}
	c.stop()
	return true, flash("probes stopped")
}

func (c *compatScreen) stop() {
	for _, r := range c.runs {
		r.stop()
	}
}

func (c *compatScreen) help() bindings {
	if c.detail != nil {
		return c.detail.help()
	}
	k := c.sh.keys
	short := []key.Binding{k.Reprobe, k.ReprobeAll, k.Detail}
	return bindings{short: short, full: [][]key.Binding{{k.Up, k.Down, k.PageUp, k.PageDown, k.Top, k.Bottom}, {k.Reprobe, k.ReprobeAll, k.Detail, k.Back}}}
}

func (c *compatScreen) View() string {
	if c.detail != nil {
		return c.detail.View()
	}
	st := c.sh.st
	if len(c.rows) == 0 {
		return "No registries to probe.\n\nGive targets on the Start screen (1, then e), or registries in the\nconfig file, or start the lab: refdoctor demo."
	}
	var b strings.Builder
	b.WriteString(c.summary())
	b.WriteByte('\n')
	b.WriteString(c.tbl.view(st))
	// Pad the table so the selection notes stay at the bottom.
	shown := min(len(c.rows), c.tbl.height)
	for i := shown; i < c.tbl.height; i++ {
		b.WriteByte('\n')
	}
	b.WriteString("\n\n")
	b.WriteString(c.selectionNote())
	return b.String()
}

func (c *compatScreen) summary() string {
	st := c.sh.st
	count := map[probe.Verdict]int{}
	diff := 0
	for _, r := range c.rows {
		if r.res != nil {
			count[r.res.ReferrersAPI]++
			if mismatch(r.res) {
				diff++
			}
		}
	}
	parts := []string{st.Header.Render(human.Count(len(c.rows), "registry"))}
	if n := c.running(); n > 0 {
		parts = append(parts, st.paint(toneRun, c.sh.frame+" probing "+strconv.Itoa(n)))
	}
	for _, v := range []probe.Verdict{probe.Supported, probe.Unsupported, probe.Unknown} {
		if count[v] > 0 {
			parts = append(parts, strconv.Itoa(count[v])+" "+st.word(string(v)))
		}
	}
	if diff > 0 {
		what := " differ from matrix (!)"
		if c.w < 100 {
			what = " differ (!)"
		}
		parts = append(parts, st.paint(toneMismatch, strconv.Itoa(diff)+what))
	}
	// The position tells that rows lie below (or above) the fold.
	pos := ""
	if len(c.rows) > c.tbl.height {
		pos = st.Label.Render(position(c.tbl.cursor, len(c.rows)))
	}
	return rightAlign(strings.Join(parts, " · "), pos, c.w)
}

// selectionNote says in two lines what the selected row means.
func (c *compatScreen) selectionNote() string {
	st := c.sh.st
	if c.tbl.cursor >= len(c.rows) {
		return ""
	}
	r := c.rows[c.tbl.cursor]
	first := st.Label.Render(r.target.String())
	var second string
	switch {
	case r.res != nil:
		if r.res.Expected != nil {
			first += st.Label.Render(" · matrix: " + r.res.Expected.Name + " " + r.res.Expected.ReferrersAPI)
		}
		if r.res.KindSource != "" {
			first += st.Label.Render(" · kind " + kindSourceWords(r.res.KindSource))
		}
		f := leadFinding(r.res.Findings)
		if f != nil {
			second = st.word(string(f.Severity)) + " " + string(f.Code) + ": " + c.sh.names(f.Summary)
		} else {
			second = st.word("ok") + " " + string(r.res.ReferrersReason)
		}
	case r.err != "":
		second = st.word("error") + " " + r.err
	default:
		second = st.Label.Render(r.state.String())
	}
	hint := st.Label.Render("enter: every exchange, cause and fix")
	if r.res != nil && r.res.Cached {
		hint = st.Label.Render(cachedWords(c.sh, *r.res) + "; r probes anew · enter: every exchange")
	}
	return trunc(first, c.w) + "\n" + trunc(second, c.w) + "\n" + trunc(hint, c.w)
}

// kindSourceWords says where a registry's kind came from.
func kindSourceWords(source string) string {
	if source == probe.KindFromConfig {
		return "from the config"
	}
	return "recognised from the host name"
}

// cachedWords says that a verdict came from the capability cache, how old
// it is and which command or screen probed it.
func cachedWords(sh *shared, r probe.Result) string {
	by := r.CachedBy
	if by == "" {
		by = "refdoctor"
	}
	return "verdict from the cache, probed " + probe.Age(sh.since(r.CachedAt)) + " ago by " + by
}

// leadFinding is the finding worth a line: the worst, the first of equals.
func leadFinding(fs []finding.Finding) *finding.Finding {
	worst := finding.Worst(fs)
	for i := range fs {
		if fs[i].Severity == worst {
			return &fs[i]
		}
	}
	return nil
}

// click selects the row under the mouse; a click on the selected row opens
// its detail.
func (c *compatScreen) click(x, y int) tea.Cmd {
	if c.detail != nil {
		return c.detail.click(x, y)
	}
	r := c.tbl.rowAt(y - 1)
	switch {
	case r < 0:
	case r == c.tbl.cursor:
		c.openDetail(r)
	default:
		c.tbl.selectRow(r)
	}
	return nil
}

// selectedFix is the fix of the finding selected in the detail; the
// table says how to get there.
func (c *compatScreen) selectedFix() (string, string) {
	if c.detail != nil {
		return c.detail.selectedFix()
	}
	if c.tbl.cursor >= len(c.rows) {
		return "", "no registry selected: nothing to copy"
	}
	switch r := c.rows[c.tbl.cursor]; {
	case r.res == nil && (r.state == rowQueued || r.state == rowProbing):
		return "", "no fix yet: the probe is still running"
	case r.res == nil || len(r.res.Findings) == 0:
		return "", "no findings for this registry, so no fix to copy"
	}
	fixes := 0
	for _, f := range c.rows[c.tbl.cursor].res.Findings {
		if f.Remedy != "" && !strings.HasPrefix(f.Remedy, "Nothing to fix") {
			fixes++
		}
	}
	if fixes == 0 {
		return "", "nothing to fix for this registry"
	}
	return "", "enter opens the registry's findings; ↓ past the exchanges selects one, then c copies its fix"
}

// selectedDigest is the digest the selected exchange names, in the
// detail.
func (c *compatScreen) selectedDigest() string {
	if c.detail != nil {
		return c.detail.selectedDigest()
	}
	return ""
}
