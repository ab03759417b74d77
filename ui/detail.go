package ui

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"

	"github.com/refdoctor/refdoctor/finding"
	"github.com/refdoctor/refdoctor/internal/human"
	"github.com/refdoctor/refdoctor/probe"
	"github.com/refdoctor/refdoctor/registry"
)

// detailScreen shows one registry's probe in full: the verdict with the
// reply that decided it, every HTTP exchange (↑/↓ select one, enter shows
// its request and reply headers and the start of its body), and the
// findings with cause and remedy. It reads the compatibility row live, so
// a re-probe (r) fills it in as it runs. It lives inside the
// compatibility screen: esc returns to the row it was opened from.
type detailScreen struct {
	sh     *shared
	compat *compatScreen
	row    int
	ver    int
	pane   pane
	// sel is the selected exchange, or past them the selected finding
	// (c copies its fix); exAt is the content line of each exchange, then
	// of each finding, findLen the lines of each finding.
	sel      int
	exAt     []int
	findLen  []int
	findings []finding.Finding
	// open is the exchange shown in full, -1 for none.
	open int
	w, h int
}

func newDetailScreen(sh *shared, c *compatScreen, row int) *detailScreen {
	return &detailScreen{sh: sh, compat: c, row: row, ver: -1, pane: newPane(sh), open: -1}
}

func (d *detailScreen) SetSize(w, h int) {
	d.w, d.h = w, h
	d.pane.setSize(w, h)
	d.ver = -1
	d.sync()
}

func (d *detailScreen) rowData() *compatRow {
	if d.row < 0 || d.row >= len(d.compat.rows) {
		return nil
	}
	return d.compat.rows[d.row]
}

// exchanges are the row's exchanges: the result's once it has one.
func (r *compatRow) allExchanges() []registry.Exchange {
	if r.res != nil {
		return r.res.Exchanges
	}
	return r.exchanges
}

// sync rebuilds the content when the row changed.
func (d *detailScreen) sync() {
	r := d.rowData()
	if r == nil || r.ver == d.ver {
		return
	}
	d.ver = r.ver
	n := len(r.allExchanges())
	d.sel = clamp(d.sel, 0, n+len(resFindings(r))-1)
	if d.open >= n {
		d.open = -1
	}
	d.render()
}

func (d *detailScreen) render() {
	r := d.rowData()
	if r == nil {
		return
	}
	if d.open >= 0 {
		d.pane.setLines(d.exchangeView(r, d.open))
		return
	}
	d.pane.setLines(d.content(r))
}

// resFindings are a row's findings once it has a result.
func resFindings(r *compatRow) []finding.Finding {
	if r.res == nil {
		return nil
	}
	return r.res.Findings
}

// selectedFix is the selected finding's fix, with its commands runnable
// as shown.
func (d *detailScreen) selectedFix() (string, string) {
	r := d.rowData()
	if r == nil {
		return "", "no registry selected: nothing to copy"
	}
	n := len(r.allExchanges())
	switch {
	case d.open >= 0:
		return "", "an exchange has no fix of its own: esc, then ↓ past the exchanges to a finding"
	case r.res == nil && (r.state == rowQueued || r.state == rowProbing):
		return "", "no fix yet: the probe is still running"
	case len(d.findings) == 0:
		return "", "no findings here, so no fix to copy"
	case d.sel < n:
		return "", "an exchange has no fix of its own: ↓ past the exchanges selects a finding"
	}
	f := d.findings[d.sel-n]
	if f.Remedy == "" || strings.HasPrefix(f.Remedy, "Nothing to fix") {
		return "", "nothing to fix for " + string(f.Code)
	}
	return f.Remedy, ""
}

// onFinding tells whether the cursor is on a finding.
func (d *detailScreen) onFinding() bool {
	r := d.rowData()
	return r != nil && d.open < 0 && len(d.findings) > 0 && d.sel >= len(r.allExchanges())
}

// back closes the exchange view; the detail itself is closed by the
// compatibility screen.
func (d *detailScreen) back() bool {
	if d.open >= 0 {
		d.open = -1
		d.render()
		d.follow()
		return true
	}
	return false
}

// refill is what refills this registry's pull budget, if the session
// has one for it (the lab's Docker Hub-like registry).
func (d *detailScreen) refill() func(context.Context) error {
	r := d.rowData()
	if r == nil {
		return nil
	}
	return d.sh.opts.RefillBudget[r.target.Host]
}

func (d *detailScreen) help() bindings {
	k := d.sh.keys
	acts := []key.Binding{k.Reprobe}
	if d.refill() != nil {
		acts = append(acts, k.ResetBudget)
	}
	if d.open >= 0 {
		return bindings{
			short: append([]key.Binding{k.PageDown, k.Back}, acts...),
			full:  [][]key.Binding{{k.PageUp, k.PageDown, k.Top, k.Bottom}, append([]key.Binding{k.Back}, acts...)},
		}
	}
	// c shows where there are findings to copy a fix from, first while
	// one is selected (enter is for exchanges).
	short := append([]key.Binding{k.Up, k.Down, k.OpenExchange}, append(acts, k.Back)...)
	switch {
	case d.onFinding():
		short = append([]key.Binding{k.CopyFix}, append(acts, k.Back)...)
	case len(d.findings) > 0:
		// ↑/↓ go without saying (as on the Referrers screen), so that c
		// fits at 80 columns.
		short = append([]key.Binding{k.OpenExchange, k.CopyFix}, append(acts, k.Back)...)
	}
	return bindings{
		short: short,
		full:  [][]key.Binding{{k.Up, k.Down, k.OpenExchange, k.PageUp, k.PageDown, k.Top, k.Bottom}, append(append([]key.Binding{k.CopyFix}, acts...), k.Back)},
	}
}

// update takes the detail's keys; a re-probe goes through the table.
func (d *detailScreen) update(msg tea.Msg) tea.Cmd {
	k := d.sh.keys
	if km, ok := msg.(tea.KeyPressMsg); ok {
		switch {
		case key.Matches(km, k.ResetBudget) && d.refill() != nil:
			refill, row := d.refill(), d.row
			// The lab refills the budget as if its window had passed; the
			// re-probe shows the registry answering again.
			return func() tea.Msg {
				ctx, cancel := context.WithTimeout(context.Background(), reprobeRefillTimeout)
				defer cancel()
				if err := refill(ctx); err != nil {
					return flashMsg{text: "could not refill the budget: " + err.Error()}
				}
				return reprobeMsg{row: row}
			}
		case key.Matches(km, k.Reprobe):
			return d.compat.probe([]int{d.row}, true)
		case d.open < 0 && key.Matches(km, k.Up):
			d.selectExchange(d.sel - 1)
			return nil
		case d.open < 0 && key.Matches(km, k.Down):
			d.selectExchange(d.sel + 1)
			return nil
		case d.open < 0 && key.Matches(km, k.OpenExchange):
			if r := d.rowData(); r != nil && d.sel < len(r.allExchanges()) {
				d.open = d.sel
				d.render()
				d.pane.top()
			}
			return nil
		}
	}
	return d.pane.update(msg)
}

// click selects the exchange on line y; a click on the selected one opens
// it.
func (d *detailScreen) click(_, y int) tea.Cmd {
	if d.open >= 0 {
		return nil
	}
	line := d.pane.offset() + y
	exchanges := len(d.exAt) - len(d.findLen)
	for i, at := range d.exAt {
		next := at + 1
		switch {
		case i >= exchanges:
			next = at + d.findLen[i-exchanges]
		case i+1 < len(d.exAt):
			next = d.exAt[i+1]
		}
		if line >= at && line < next {
			if i == d.sel && i < exchanges {
				d.open = i
				d.render()
				d.pane.top()
				return nil
			}
			d.selectExchange(i)
			return nil
		}
	}
	return nil
}

func (d *detailScreen) selectExchange(i int) {
	r := d.rowData()
	if r == nil {
		return
	}
	d.sel = clamp(i, 0, len(r.allExchanges())+len(d.findings)-1)
	d.render()
	d.follow()
}

// follow scrolls the selected exchange (or the whole selected finding)
// into view.
func (d *detailScreen) follow() {
	if d.sel < len(d.exAt) {
		end := d.exAt[d.sel]
		exchanges := len(d.exAt) - len(d.findLen)
		switch {
		case d.sel >= exchanges:
			end += d.findLen[d.sel-exchanges] - 1
		case d.sel+1 < exchanges:
			end = d.exAt[d.sel+1] - 1
		}
		d.pane.show(d.exAt[d.sel], end)
	}
}

func (d *detailScreen) View() string { return d.pane.view() }

// selectedDigest is the digest the selected exchange asked for or got.
func (d *detailScreen) selectedDigest() string {
	r := d.rowData()
	if r == nil {
		return ""
	}
	exs := r.allExchanges()
	if d.sel >= len(exs) {
		return ""
	}
	ex := exs[d.sel]
	if dg := ex.Headers["Docker-Content-Digest"]; dg != "" {
		return dg
	}
	return digestIn(ex.Path)
}

// digestIn finds a sha256 digest in a path.
func digestIn(path string) string {
	i := strings.Index(path, "sha256:")
	if i < 0 || len(path) < i+7+64 {
		return ""
	}
	return path[i : i+7+64]
}

func (d *detailScreen) content(r *compatRow) []string {
	sh, st, w := d.sh, d.sh.st, d.pane.width()
	var lines []string
	add := func(s ...string) { lines = append(lines, s...) }
	title := st.Title.Render(sh.name(r.target.Host))
	if sh.name(r.target.Host) != r.target.Host {
		title += "  " + r.target.Host
	}
	add(trunc(title, w))
	add(wrapHardIndent(st.Label.Render("target "), r.target.String(), w)...)
	exchanges := r.allExchanges()
	res := r.res
	switch {
	case res == nil && r.err != "":
		add("", st.word("error")+" "+r.err)
	case res == nil:
		add("", st.word(r.state.String())+" "+st.Label.Render("(the exchanges below arrive as the probe runs)"))
	default:
		verdict := string(res.ReferrersAPI)
		tone := toneOf(verdict)
		if mismatch(res) {
			verdict += "!"
			tone = toneMismatch
		}
		add("", st.Header.Render("VERDICT")+"  "+st.paint(tone, verdict)+"  "+string(res.ReferrersReason)+"  "+st.word(string(res.Outcome())))
		if dec := decidingExchange(res); dec != nil {
			add(wrapIndent("  deciding reply: ", exchangeLine(*dec), w)...)
		}
		if res.Expected != nil {
			e := res.Expected
			m := "matrix: " + e.Name + " " + e.ReferrersAPI
			if e.Since != "" {
				m += " since " + e.Since
			}
			m += " (last seen " + e.LastSeen + ")"
			if mismatch(res) {
				m += "  ! differs from what was observed"
			}
			add(wrapIndent("  ", m, w)...)
			add("  kind " + res.Kind + ", " + kindSourceWords(res.KindSource))
		} else {
			add("  matrix: no row for this registry (kind " + res.Kind + ")")
		}
		version := res.DistributionAPIVersion
		if version == "" {
			version = "none"
		}
		add(wrapIndent("  ", "/v2/ "+strconv.Itoa(res.V2Status)+" · version header "+version+" · auth "+res.Auth+" · fallback tags "+res.FallbackTags, w)...)
		if res.Cached {
			add(wrapIndent("  ", cachedWords(sh, *res)+" (it took "+sh.ms(res.ProbeMS)+" then); r probes anew", w)...)
		} else {
			add("  probe took " + sh.ms(res.ProbeMS))
		}
		if res.AuthError != "" {
			add(wrapIndent("  auth: ", res.AuthError, w)...)
		}
		if rl := res.RateLimit; rl != nil {
			add(wrapIndent("  rate limit: ", rateLimitLine(rl), w)...)
		}
		if res.Error != "" {
			add(wrapIndent("  error: ", res.Error, w)...)
		}
	}
	add("", st.Header.Render("EXCHANGES ("+strconv.Itoa(len(exchanges))+")")+st.Label.Render("  ↑/↓ select · enter shows headers and body"))
	table, at := exchangeTable(sh, exchanges, decidingIndex(res, exchanges), d.sel, w)
	d.exAt = d.exAt[:0]
	for _, a := range at {
		d.exAt = append(d.exAt, len(lines)+a)
	}
	if len(exchanges) == 0 && res != nil && res.Cached {
		table = wrapIndent("  ", "none sent: the verdict came from the capability cache; r probes anew and records every exchange.", w)
	}
	add(table...)
	d.findings, d.findLen = nil, d.findLen[:0]
	if res != nil {
		d.findings = sh.runnableFindings(res.Findings)
		head := st.Header.Render("FINDINGS (" + strconv.Itoa(len(res.Findings)) + ")")
		if len(res.Findings) > 0 {
			head += st.Label.Render(findingsHint)
		}
		add("", head)
		if len(res.Findings) == 0 {
			add("  none")
		}
		for i, f := range d.findings {
			fl := findingRow(st, f, len(exchanges)+i == d.sel, w)
			d.exAt = append(d.exAt, len(lines))
			d.findLen = append(d.findLen, len(fl))
			add(fl...)
		}
	}
	return lines
}

// rateLimitLine says what the rate-limit headers said.
func rateLimitLine(rl *probe.RateLimit) string {
	s := "limit " + rl.Limit + ", remaining " + rl.Remaining
	if rl.Source != "" {
		s += ", source " + rl.Source
	}
	switch {
	case rl.Throttled && !rl.RetryAt.IsZero():
		s += ", THROTTLED (429) until " + rl.RetryAt.Format("2006-01-02 15:04:05Z")
	case rl.Throttled:
		s += ", THROTTLED (429)"
	case rl.Low:
		s += ", LOW: few requests left before 429s"
	}
	return s
}

// exchangeView is one exchange in full: the request with its headers, the
// reply with its headers, and the first lines of the body.
func (d *detailScreen) exchangeView(r *compatRow, i int) []string {
	sh, st, w := d.sh, d.sh.st, d.pane.width()
	exs := r.allExchanges()
	if i >= len(exs) {
		return nil
	}
	ex := exs[i]
	var lines []string
	add := func(s ...string) { lines = append(lines, s...) }
	add(trunc(st.Title.Render(sh.name(r.target.Host))+st.Label.Render("  exchange "+strconv.Itoa(i+1)+" of "+strconv.Itoa(len(exs))+" · esc returns to the list"), w))
	add("", st.Header.Render("REQUEST"))
	add(wrapHardIndent("  ", ex.Method+" "+ex.URL, w)...)
	add(headerLines(ex.RequestHeaders, w, "  (no request headers recorded)")...)
	add("", st.Header.Render("REPLY")+st.Label.Render(" in "+sh.ms(ex.DurationMS)))
	if ex.Error != "" {
		add(wrapIndent("  "+st.word("error")+" ", ex.Error, w)...)
	} else {
		add("  " + strconv.Itoa(ex.Status) + " " + statusText(ex.Status))
	}
	add(headerLines(ex.Headers, w, "  (no reply headers recorded)")...)
	body, note := bodyStart(ex)
	add("", st.Header.Render("BODY")+st.Label.Render(note))
	for _, l := range body {
		add(wrapHardIndent("  ", l, w)...)
	}
	add("", st.Label.Render("  no secrets: Authorization, cookies and token replies are never recorded"))
	return lines
}

// bodyLines is how much of a body the exchange view shows.
const bodyLines = 40

// bodyStart is the first lines of a recorded reply body (JSON indented so
// that a one-line index reads as lines), and a note saying how much that
// is.
func bodyStart(ex registry.Exchange) ([]string, string) {
	if len(ex.Body) == 0 {
		if ex.TooLarge {
			return nil, "  " + human.Size(ex.Size) + ", over the reply size cap: not kept"
		}
		if ex.Method == http.MethodHead {
			return nil, "  none: a HEAD reply has no body"
		}
		return []string{"  (not recorded: refdoctor keeps the bodies of /v2/, referrers and tag-list replies)"}, ""
	}
	text := string(ex.Body)
	var buf bytes.Buffer
	if json.Indent(&buf, ex.Body, "", "  ") == nil {
		text = buf.String()
	}
	lines := strings.Split(strings.TrimRight(strings.ReplaceAll(text, "\t", "  "), "\n"), "\n")
	note := "  " + human.Size(int64(len(ex.Body)))
	switch {
	case ex.TooLarge:
		note += ", over the reply size cap: not kept"
	case ex.BodyError != "":
		note += ", cut short: " + ex.BodyError
	}
	if len(lines) > bodyLines {
		note += ", first " + strconv.Itoa(bodyLines) + " of " + human.Count(len(lines), "line")
		lines = lines[:bodyLines]
	}
	return lines, note
}

// statusText names an HTTP status.
func statusText(code int) string { return http.StatusText(code) }

// headerLines lists headers sorted by name, values wrapped.
func headerLines(h map[string]string, w int, empty string) []string {
	if len(h) == 0 {
		return []string{empty}
	}
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out []string
	for _, k := range keys {
		out = append(out, wrapHardIndent("  "+k+": ", h[k], w)...)
	}
	return out
}

// decidingExchange is the last reply of the referrers endpoint: the one the
// verdict rests on.
func decidingExchange(res *probe.Result) *registry.Exchange {
	if res == nil {
		return nil
	}
	i := decidingIndex(res, res.Exchanges)
	if i < 0 {
		return nil
	}
	return &res.Exchanges[i]
}

func decidingIndex(res *probe.Result, exs []registry.Exchange) int {
	if res == nil {
		return -1
	}
	for i := len(exs) - 1; i >= 0; i-- {
		if strings.Contains(exs[i].Path, "/referrers/") && exs[i].Status == res.ReferrersStatus {
			return i
		}
	}
	return -1
}

func exchangeLine(ex registry.Exchange) string {
	s := ex.Method + " " + ex.Path + " -> "
	if ex.Error != "" {
		return s + "error: " + ex.Error
	}
	s += strconv.Itoa(ex.Status)
	if ex.ContentType != "" {
		s += " " + ex.ContentType
	}
	return s
}

// exchangeTable lays out exchanges in columns that fit w; a path longer
// than its column continues on the lines below (never cut: the digest at
// its end is what tells two requests apart). It returns the lines and the
// first line of each exchange.
func exchangeTable(sh *shared, exs []registry.Exchange, decide, sel, w int) ([]string, []int) {
	st := sh.st
	if len(exs) == 0 {
		return []string{"  none yet"}, nil
	}
	const numW, methW, statW, msW = 3, 6, 6, 8
	ctW := 0
	if w >= 100 {
		ctW = 34
	} else if w >= 70 {
		ctW = 18
	}
	pathW := w - 2 - numW - 1 - methW - 1 - statW - 1 - msW - 1 - ctW
	if ctW > 0 {
		pathW--
	}
	pathW = max(pathW, 10)
	head := "  " + pad("#", numW, true) + " " + pad("METHOD", methW, false) + " " + pad("PATH", pathW, false) + " " + pad("STATUS", statW, false) + " "
	if ctW > 0 {
		head += pad("CONTENT TYPE", ctW, false) + " "
	}
	head += pad("TIME", msW, true)
	out := []string{st.Header.Render(head)}
	var at []int
	for i, ex := range exs {
		at = append(at, len(out))
		status := strconv.Itoa(ex.Status)
		tone := toneNone
		switch {
		case ex.Error != "":
			status, tone = "error", toneFail
		case ex.Status >= 500, ex.Status == 429:
			tone = toneFail
		case ex.Status >= 400:
			tone = toneWarn
		case ex.Status >= 200 && ex.Status < 300:
			tone = toneOK
		}
		mark := "  "
		switch {
		case i == sel:
			mark = st.Cursor.Render("› ")
		case i == decide:
			mark = st.paint(toneAccent, "▶ ")
		}
		parts := wrapHard(ex.Path, pathW)
		num := strconv.Itoa(i + 1)
		line := pad(num, numW, true) + " " + pad(trunc(ex.Method, methW), methW, false) + " " +
			pad(parts[0], pathW, false) + " " + st.paint(tone, pad(status, statW, false)) + " "
		if ctW > 0 {
			line += pad(trunc(ex.ContentType, ctW), ctW, false) + " "
		}
		line += pad(sh.ms(ex.DurationMS), msW, true)
		if i == sel {
			line = st.Selected.Render(line)
		}
		out = append(out, mark+line)
		indent := strings.Repeat(" ", 2+numW+1+methW+1)
		for _, p := range parts[1:] {
			out = append(out, indent+p)
		}
		if ex.Error != "" {
			out = append(out, wrapIndent(indent, ex.Error, w)...)
		}
	}
	if decide >= 0 {
		out = append(out, st.Label.Render("  ▶ the reply that decided the verdict"))
	}
	return out, at
}

// findingLines renders findings with cause, remedy and evidence.
// findingsHint follows a FINDINGS title whose findings the cursor walks.
const findingsHint = "  ↑/↓ select · c copies the fix"

// findingRow is findingLines for one finding of a list the cursor walks,
// marked when the cursor is on it.
func findingRow(st styles, f finding.Finding, selected bool, w int) []string {
	fl := findingLines(st, []finding.Finding{f}, w)
	if selected {
		fl[0] = st.Cursor.Render("› ") + st.Selected.Render(strings.TrimPrefix(fl[0], "  "))
	}
	return fl
}

func findingLines(st styles, fs []finding.Finding, w int) []string {
	var out []string
	for _, f := range fs {
		sev := pad(string(f.Severity), 5, false)
		out = append(out, wrapIndent("  "+st.word(string(f.Severity))+strings.Repeat(" ", len(sev)-len(f.Severity))+" ", string(f.Code)+": "+f.Summary, w)...)
		if f.Cause != "" {
			out = append(out, wrapIndent("        cause: ", f.Cause, w)...)
		}
		if f.Remedy != "" {
			out = append(out, wrapIndent("        fix:   ", f.Remedy, w)...)
		}
		if f.Evidence != "" {
			out = append(out, wrapIndent("        seen:  ", f.Evidence, w)...)
		}
	}
	return out
}
