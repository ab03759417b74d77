package ui

import (
	"sort"
	"strings"

	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/viewport"
	tea "charm.land/bubbletea/v2"

	"github.com/refdoctor/refdoctor/finding"
	"github.com/refdoctor/refdoctor/lab"
	"github.com/refdoctor/refdoctor/probe"
	"github.com/refdoctor/refdoctor/registry"
)

// newViewport returns a viewport driven by the TUI's own keys (the
// default ones would take letters that screens use).
func newViewport(sh *shared) viewport.Model {
	vp := viewport.New()
	k := sh.keys
	vp.KeyMap = viewport.KeyMap{
		Up:           k.Up,
		Down:         k.Down,
		PageUp:       k.PageUp,
		PageDown:     k.PageDown,
		HalfPageUp:   key.NewBinding(key.WithDisabled()),
		HalfPageDown: key.NewBinding(key.WithDisabled()),
		Left:         key.NewBinding(key.WithDisabled()),
		Right:        key.NewBinding(key.WithDisabled()),
	}
	vp.MouseWheelEnabled = true
	return vp
}

// scrollKeys moves a viewport for g/G; everything else the viewport does.
func scrollKeys(sh *shared, vp *viewport.Model, msg tea.Msg) tea.Cmd {
	if k, ok := msg.(tea.KeyPressMsg); ok {
		switch {
		case key.Matches(k, sh.keys.Top):
			vp.GotoTop()
			return nil
		case key.Matches(k, sh.keys.Bottom):
			vp.GotoBottom()
			return nil
		}
	}
	var cmd tea.Cmd
	*vp, cmd = vp.Update(msg)
	return cmd
}

// detailScreen shows one registry's probe in full: every HTTP exchange,
// the verdict with the reply that decided it, and the findings with cause
// and remedy. It reads the compatibility row live, so a re-probe (r)
// fills it in as it runs.
type detailScreen struct {
	sh     *shared
	compat *compatScreen
	row    int
	ver    int
	vp     viewport.Model
	w, h   int
}

func newDetailScreen(sh *shared, c *compatScreen, row int) *detailScreen {
	d := &detailScreen{sh: sh, compat: c, row: row, ver: -1, vp: newViewport(sh)}
	return d
}

func (d *detailScreen) SetSize(w, h int) {
	d.w, d.h = w, h
	d.vp.SetWidth(w)
	d.vp.SetHeight(max(1, h))
	d.ver = -1
	d.sync()
}

// sync rebuilds the content when the row changed.
func (d *detailScreen) sync() {
	if d.row >= len(d.compat.rows) {
		return
	}
	r := d.compat.rows[d.row]
	if r.ver == d.ver {
		return
	}
	d.ver = r.ver
	d.vp.SetContent(d.content(r))
}

func (d *detailScreen) capturing() bool   { return false }
func (d *detailScreen) activate() tea.Cmd { return nil }
func (d *detailScreen) stop()             {}
func (d *detailScreen) back() (bool, tea.Cmd) {
	return false, nil
}

func (d *detailScreen) help() bindings {
	k := d.sh.keys
	acts := []key.Binding{k.Reprobe}
	if d.budgetLab() != "" {
		acts = append(acts, k.ResetBudget)
	}
	return bindings{
		short: append(acts, k.Back),
		full:  [][]key.Binding{{k.Up, k.Down, k.PageUp, k.PageDown, k.Top, k.Bottom}, append(acts, k.Back)},
	}
}

// budgetLab is the name of the lab registry shown here when it has a
// Docker Hub-like pull budget that R can refill, else "".
func (d *detailScreen) budgetLab() string {
	l := d.sh.opts.Lab
	if l == nil || d.row >= len(d.compat.rows) {
		return ""
	}
	host := d.compat.rows[d.row].target.Host
	for _, r := range l.Registries {
		if r.Host == host && r.Profile == lab.ProfileRateLimit {
			return r.Name
		}
	}
	return ""
}

func (d *detailScreen) Update(msg tea.Msg) (screen, tea.Cmd) {
	if k, ok := msg.(tea.KeyPressMsg); ok && key.Matches(k, d.sh.keys.Reprobe) {
		row := d.row
		return d, func() tea.Msg { return reprobeMsg{row: row} }
	}
	if k, ok := msg.(tea.KeyPressMsg); ok && key.Matches(k, d.sh.keys.ResetBudget) {
		if name := d.budgetLab(); name != "" {
			row, l := d.row, d.sh.opts.Lab
			// The lab refills the budget as if its window had passed;
			// the re-probe shows the registry answering again.
			return d, func() tea.Msg {
				if err := l.ResetRateLimit(name); err != nil {
					return nil
				}
				return reprobeMsg{row: row}
			}
		}
	}
	d.sync()
	return d, scrollKeys(d.sh, &d.vp, msg)
}

func (d *detailScreen) View() string { return d.vp.View() }

func (d *detailScreen) content(r *compatRow) string {
	sh, st, w := d.sh, d.sh.st, d.w
	var lines []string
	add := func(s ...string) { lines = append(lines, s...) }
	title := st.Title.Render(sh.name(r.target.Host))
	if sh.name(r.target.Host) != r.target.Host {
		title += "  " + r.target.Host
	}
	add(trunc(title, w), trunc(st.Label.Render("target ")+r.target.String(), w))
	exchanges := r.exchanges
	res := r.res
	switch {
	case res == nil && r.err != "":
		add("", st.word("error")+" "+r.err)
	case res == nil:
		add("", st.word(r.state)+" "+st.Label.Render("(the exchanges below arrive as the probe runs)"))
	default:
		exchanges = res.Exchanges
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
		} else {
			add("  matrix: no row for this registry (kind " + res.Kind + ")")
		}
		version := res.DistributionAPIVersion
		if version == "" {
			version = "none"
		}
		add(wrapIndent("  ", "/v2/ "+itoa(int64(res.V2Status))+" · version header "+version+" · auth "+res.Auth+" · fallback tags "+res.FallbackTags+" · "+sh.ms(res.ProbeMS), w)...)
		if res.AuthError != "" {
			add(wrapIndent("  auth: ", res.AuthError, w)...)
		}
		if rl := res.RateLimit; rl != nil {
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
			add(wrapIndent("  rate limit: ", s, w)...)
		}
		if res.Error != "" {
			add(wrapIndent("  error: ", res.Error, w)...)
		}
	}
	add("", st.Header.Render("EXCHANGES ("+itoa(int64(len(exchanges)))+")")+st.Label.Render("  no secrets: tokens and Authorization are never recorded"))
	add(exchangeTable(sh, exchanges, decidingIndex(res, exchanges), w)...)
	if res != nil {
		add("", st.Header.Render("FINDINGS ("+itoa(int64(len(res.Findings)))+")"))
		if len(res.Findings) == 0 {
			add("  none")
		}
		add(findingLines(st, sh.runnableFindings(res.Findings), w)...)
		if len(res.Exchanges) > 0 {
			add("", st.Header.Render("REPLY HEADERS of the deciding exchange"))
			if dec := decidingExchange(res); dec != nil {
				keys := make([]string, 0, len(dec.Headers))
				for k := range dec.Headers {
					keys = append(keys, k)
				}
				sort.Strings(keys)
				for _, k := range keys {
					add(wrapIndent("  "+k+": ", dec.Headers[k], w)...)
				}
				if len(keys) == 0 {
					add("  none recorded")
				}
			}
		}
	}
	return strings.Join(lines, "\n")
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
	s += itoa(int64(ex.Status))
	if ex.ContentType != "" {
		s += " " + ex.ContentType
	}
	return s
}

// exchangeTable lays out exchanges in columns that fit w: the path is cut
// in the middle, where digests are least telling.
func exchangeTable(sh *shared, exs []registry.Exchange, decide, w int) []string {
	st := sh.st
	if len(exs) == 0 {
		return []string{"  none yet"}
	}
	const numW, methW, statW, msW = 3, 6, 6, 7
	ctW := 0
	if w >= 100 {
		ctW = 34
	} else if w >= 70 {
		ctW = 18
	}
	pathW := w - 2 - numW - 1 - methW - 1 - statW - 1 - msW - 1 - ctW - 2
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
	for i, ex := range exs {
		status := itoa(int64(ex.Status))
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
		if i == decide {
			mark = st.paint(toneAccent, "▶ ")
		}
		line := mark + pad(itoa(int64(i+1)), numW, true) + " " + pad(trunc(ex.Method, methW), methW, false) + " " +
			pad(truncMiddle(ex.Path, pathW), pathW, false) + " " + st.paint(tone, pad(status, statW, false)) + " "
		if ctW > 0 {
			line += pad(trunc(ex.ContentType, ctW), ctW, false) + " "
		}
		line += pad(sh.ms(ex.DurationMS), msW, true)
		out = append(out, line)
		if ex.Error != "" {
			out = append(out, wrapIndent("       ", ex.Error, w)...)
		}
	}
	if decide >= 0 {
		out = append(out, st.Label.Render("  ▶ the reply that decided the verdict"))
	}
	return out
}

// findingLines renders findings with cause, remedy and evidence.
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
