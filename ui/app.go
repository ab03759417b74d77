package ui

import (
	"context"
	"strconv"
	"strings"
	"time"

	"charm.land/bubbles/v2/help"
	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/spinner"
	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/colorprofile"
	"github.com/charmbracelet/x/ansi"

	"github.com/refdoctor/refdoctor/internal/human"
)

// screenID names a screen; messages from engine runs carry the id of the
// screen that started them.
type screenID int

const (
	scrStart screenID = iota
	scrRunbook
	scrCompat
	scrTags
	scrReferrers
	scrBundle
	scrLogs
	scrMetrics
	scrSupport
	numTabs
)

// tabNames are the long and short labels of the tabs.
var tabNames = [numTabs][2]string{
	{"Start", "Start"},
	{"Runbook", "Book"},
	{"Registries", "Regs"},
	{"Tags", "Tags"},
	{"Referrers", "Refs"},
	{"Bundle", "Bundle"},
	{"Logs", "Logs"},
	{"Metrics", "Metrics"},
	{"Support", "Support"},
}

// screen is one component of the TUI. Only the root sees the window size;
// it gives each screen its body size with SetSize.
type screen interface {
	Update(tea.Msg) (screen, tea.Cmd)
	View() string
	SetSize(w, h int)
	// help lists the screen's own key bindings (short line, full groups).
	help() bindings
	// capturing is true while a text field has the keyboard.
	capturing() bool
	// activate is called each time the screen is shown; it may start work
	// the first time.
	activate() tea.Cmd
	// back handles esc: it closes what is open (a drill-down, a filter)
	// or stops the screen's work, and reports whether esc was used.
	back() (bool, tea.Cmd)
	// stop cancels everything the screen runs.
	stop()
}

// clicker is a screen that takes mouse clicks at body coordinates.
type clicker interface {
	click(x, y int) tea.Cmd
}

// digester is a screen with a selected digest that y copies.
type digester interface {
	selectedDigest() string
}

// fixer is a screen whose selected row or finding may carry a fix that c
// copies; when it has none, why says so.
type fixer interface {
	selectedFix() (fix, why string)
}

// Messages between screens.
type (
	// gotoStepMsg opens the walkthrough at a step ("" = the first).
	gotoStepMsg struct{ step string }
	// targetsChangedMsg tells every screen that the operator edited the
	// targets.
	targetsChangedMsg struct{}
	// flashMsg shows a short message in the status line.
	flashMsg struct{ text string }
	// flashExpiredMsg clears a flash message if it is still the same one.
	flashExpiredMsg struct{ id int }
	// styleChangedMsg tells screens that keep styled sub-components to
	// pick up the new styles.
	styleChangedMsg struct{}
	// metricsRefreshMsg asks the metrics screen to read the counters again.
	metricsRefreshMsg struct{}
)

func flash(text string) tea.Cmd { return func() tea.Msg { return flashMsg{text: text} } }

// model is the root of the TUI: tabs, the status and help lines, and the
// routing of messages to screens.
type model struct {
	sh      *shared
	screens [numTabs]screen
	active  screenID

	width, height int
	dark          bool
	profile       colorprofile.Profile
	help          help.Model
	fullHelp      bool

	flash   string
	flashID int
	seen    [numTabs]bool

	// quitAsk is set while quitting asks whether to save the edited
	// registries to the config file; quitSaving while that is written.
	quitAsk    bool
	quitSaving bool
	quitErr    string
}

func newModel(ctx context.Context, o Options) *model {
	sh := newShared(ctx, &o)
	m := &model{sh: sh, dark: true, profile: colorprofile.NoTTY, help: help.New()}
	m.screens[scrStart] = newStartScreen(sh)
	m.screens[scrRunbook] = newWalkScreen(sh)
	m.screens[scrCompat] = newCompatScreen(sh)
	m.screens[scrTags] = newTagsScreen(sh)
	m.screens[scrReferrers] = newReferrersScreen(sh)
	m.screens[scrBundle] = newBundleScreen(sh)
	m.screens[scrLogs] = newLogsScreen(sh)
	m.screens[scrMetrics] = newMetricsScreen(sh)
	m.screens[scrSupport] = newSupportScreen(sh)
	m.restyle()
	return m
}

// shutdown cancels every run and waits for the engine goroutines, so that
// nothing the session started outlives it.
func (m *model) shutdown() {
	for _, s := range m.screens {
		s.stop()
	}
	m.sh.cancel()
	done := make(chan struct{})
	go func() { m.sh.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		m.sh.log.Warn("engine goroutines still running 10s after quit")
	}
}

func (m *model) Init() tea.Cmd {
	m.seen[scrStart] = true
	cmds := []tea.Cmd{tea.RequestBackgroundColor, m.screens[scrStart].activate()}
	if m.sh.opts.ProbeOnStart {
		// Probe every registry at once: the compatibility table is ready
		// when the operator opens it, and the session log holds the probe
		// lines the first runbook step reads back.
		m.seen[scrCompat] = true
		cmds = append(cmds, m.screens[scrCompat].activate())
	}
	return tea.Batch(cmds...)
}

// restyleAll rebuilds the styles and tells every screen.
func (m *model) restyleAll() tea.Cmd {
	m.restyle()
	var cmds []tea.Cmd
	for _, s := range m.screens {
		_, cmd := s.Update(styleChangedMsg{})
		cmds = append(cmds, cmd)
	}
	return tea.Batch(cmds...)
}

func (m *model) restyle() {
	m.sh.st = newStyles(m.dark, m.profile)
	m.help.Styles = m.sh.st.Help
	m.sh.spin.Style = m.sh.st.tones[toneRun]
}

// bodyHeight is what the screens get: the window less the tab bar, the
// rule, the status line and the help line.
func (m *model) bodyHeight() int { return max(1, m.height-4) }

func (m *model) layout() {
	h := m.bodyHeight()
	for _, s := range m.screens {
		s.SetSize(m.width, h)
	}
	m.help.SetWidth(m.width)
}

// current is the screen on display.
func (m *model) current() screen { return m.screens[m.active] }

func (m *model) switchTo(id screenID) tea.Cmd {
	if id < 0 || id >= numTabs {
		return nil
	}
	m.active = id
	m.fullHelp = false
	m.seen[id] = true
	return m.screens[id].activate()
}

func (m *model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
		m.layout()
		return m, nil
	case tea.BackgroundColorMsg:
		m.dark = msg.IsDark()
		return m, m.restyleAll()
	case tea.ColorProfileMsg:
		m.profile = msg.Profile
		return m, m.restyleAll()
	case spinner.TickMsg:
		if m.sh.busy.Load() == 0 {
			m.sh.ticking = false
			return m, nil
		}
		var cmd tea.Cmd
		m.sh.spin, cmd = m.sh.spin.Update(msg)
		m.sh.frame = m.sh.spin.View()
		return m, cmd
	case pumpMsg:
		m2, cmd := m.Update(msg.msg)
		return m2, tea.Batch(cmd, pump(msg.ch))
	case finishedMsg:
		m.sh.busy.Add(-1)
		cmd := m.route(msg.target(), msg)
		// Finished work changes the session's counters.
		_, mcmd := m.screens[scrMetrics].Update(metricsRefreshMsg{})
		return m, tea.Batch(cmd, mcmd)
	case routedMsg:
		return m, m.route(msg.target(), msg)
	case flashMsg:
		m.flashID++
		m.flash = msg.text
		id := m.flashID
		return m, m.sh.after(4*time.Second, flashExpiredMsg{id: id})
	case flashExpiredMsg:
		if msg.id == m.flashID {
			m.flash = ""
		}
		return m, nil
	case gotoStepMsg:
		cmd := m.switchTo(scrRunbook)
		_, c2 := m.screens[scrRunbook].Update(msg)
		return m, tea.Batch(cmd, c2)
	case compareMsg:
		cmd := m.switchTo(scrReferrers)
		_, c2 := m.screens[scrReferrers].Update(msg)
		return m, tea.Batch(cmd, c2)
	case targetsChangedMsg:
		var cmds []tea.Cmd
		for i, s := range m.screens {
			_, cmd := s.Update(msg)
			cmds = append(cmds, cmd)
			if m.seen[i] && screenID(i) == m.active {
				cmds = append(cmds, s.activate())
			}
		}
		return m, tea.Batch(cmds...)
	case savedConfigMsg:
		return m, m.savedConfig(msg)
	case tea.KeyPressMsg:
		return m, m.key(msg)
	case tea.MouseClickMsg:
		return m, m.click(msg.Mouse())
	case tea.MouseMsg:
		_, cmd := m.current().Update(msg)
		return m, cmd
	}
	// Anything else (a folder listing for the bundle picker, a tick) goes
	// to every screen; each keeps what is addressed to it.
	var cmds []tea.Cmd
	for _, s := range m.screens {
		_, cmd := s.Update(msg)
		cmds = append(cmds, cmd)
	}
	return m, tea.Batch(cmds...)
}

// route hands a run's message to the screen that started it, shown or not:
// a probe that finishes while another screen is up is there on return.
func (m *model) route(to screenID, msg tea.Msg) tea.Cmd {
	if to < 0 || to >= numTabs {
		return nil
	}
	_, cmd := m.screens[to].Update(msg)
	return cmd
}

func (m *model) key(msg tea.KeyPressMsg) tea.Cmd {
	k := m.sh.keys
	cur := m.current()
	if msg.String() == "ctrl+c" {
		return tea.Quit
	}
	if m.quitAsk {
		return m.quitKey(msg)
	}
	if cur.capturing() {
		_, cmd := cur.Update(msg)
		return cmd
	}
	switch {
	case key.Matches(msg, k.Quit):
		if m.sh.targetsEdited {
			m.quitAsk = true
			return nil
		}
		return tea.Quit
	case key.Matches(msg, k.Help):
		m.fullHelp = !m.fullHelp
		return nil
	case m.fullHelp && key.Matches(msg, k.Back):
		m.fullHelp = false
		return nil
	case key.Matches(msg, k.Back):
		// esc closes or stops what the screen has open or running, and
		// otherwise stays: the tabs are one key away (1-9).
		if used, cmd := cur.back(); used {
			return cmd
		}
		return nil
	case key.Matches(msg, k.NextTab):
		return m.switchTo((m.active + 1) % numTabs)
	case key.Matches(msg, k.PrevTab):
		return m.switchTo((m.active + numTabs - 1) % numTabs)
	case key.Matches(msg, k.Jump):
		return m.switchTo(screenID(msg.String()[0] - '1'))
	case key.Matches(msg, k.SaveJSON):
		return m.saveDocument()
	case key.Matches(msg, k.CopyDigest):
		if d, ok := cur.(digester); ok {
			if digest := d.selectedDigest(); digest != "" {
				return copyText(digest, "copied "+digest)
			}
		}
		return flash("nothing selected to copy here")
	case key.Matches(msg, k.CopyFix):
		// Screens that are no fixer keep c for themselves (the runbook
		// copies its selected command).
		if f, ok := cur.(fixer); ok {
			return m.copyFix(f)
		}
	}
	_, cmd := cur.Update(msg)
	return cmd
}

// copyText puts text on the terminal's clipboard (OSC 52) and says what
// in the status line: the one way every key copies.
func copyText(text, said string) tea.Cmd {
	return tea.Batch(tea.SetClipboard(text), flash(said))
}

// copyFix copies the selected fix: the command in it where it holds one,
// else its text. The status line names what was copied, shortened to its
// width (a command keeps both ends, which tell most); the clipboard gets
// all of it.
func (m *model) copyFix(f fixer) tea.Cmd {
	fix, why := f.selectedFix()
	if fix == "" {
		return flash(why)
	}
	if cmd := commandIn(fix); cmd != "" {
		return copyText(cmd, "copied command: "+shortCommand(cmd, max(20, m.width-len("copied command: "))))
	}
	return copyText(fix, "copied fix: "+trunc(fix, max(20, m.width-len("copied fix: "))))
}

// click switches tabs from the tab bar and hands clicks in the body to
// the screen (with Options.Mouse).
func (m *model) click(ms tea.Mouse) tea.Cmd {
	if ms.Button != tea.MouseLeft {
		return nil
	}
	if ms.Y == 0 {
		for _, t := range m.tabLayout().tabs {
			if ms.X >= t.x && ms.X < t.x+t.w {
				return m.switchTo(t.id)
			}
		}
		return nil
	}
	y := ms.Y - 2
	if m.fullHelp || y < 0 || y >= m.bodyHeight() {
		return nil
	}
	if c, ok := m.current().(clicker); ok {
		return c.click(ms.X, y)
	}
	return nil
}

func (m *model) View() tea.View {
	v := tea.NewView(m.render())
	v.AltScreen = true
	if m.sh.opts.Mouse {
		v.MouseMode = tea.MouseModeCellMotion
	}
	v.WindowTitle = "refdoctor"
	return v
}

// render draws the whole window: exactly height lines of at most width
// cells, whatever the screens return.
func (m *model) render() string {
	if m.width <= 0 || m.height <= 0 {
		return ""
	}
	st := m.sh.st
	var b strings.Builder
	b.WriteString(m.tabBar())
	b.WriteByte('\n')
	b.WriteString(st.Rule.Render(strings.Repeat("─", m.width)))
	b.WriteByte('\n')
	cur := m.current()
	var body string
	switch {
	case m.quitAsk:
		body = m.quitView()
	case m.fullHelp:
		body = m.fullHelpView(cur)
	default:
		body = cur.View()
	}
	b.WriteString(clipBlock(body, m.width, m.bodyHeight()))
	b.WriteByte('\n')
	b.WriteString(m.statusLine())
	b.WriteByte('\n')
	b.WriteString(m.footer(cur))
	return clipBlock(b.String(), m.width, m.height)
}

// tabSpot is where one tab sits in the tab bar.
type tabSpot struct {
	id    screenID
	label string
	x, w  int
}

// tabBarLayout is the tab bar in the widest form that fits.
type tabBarLayout struct {
	title string
	gap   string
	tabs  []tabSpot
}

// tabLayout lays out every screen with its number key, in the widest form
// that fits (the same layout draws the bar and maps clicks).
func (m *model) tabLayout() tabBarLayout {
	title := "refdoctor " + m.sh.opts.Version + "  "
	// The active tab is bracketed: visible without colour too.
	label := func(i int, form int) string {
		l := strconv.Itoa(i + 1)
		if form < 2 || screenID(i) == m.active {
			l += " " + tabNames[i][min(form, 1)]
		}
		if screenID(i) == m.active {
			l = "[" + l + "]"
		}
		return l
	}
	var out tabBarLayout
	for _, try := range []struct {
		form  int
		title bool
		gap   string
	}{{0, true, "  "}, {0, false, "  "}, {1, true, "  "}, {1, false, "  "}, {1, false, " "}, {2, false, " "}} {
		out = tabBarLayout{gap: try.gap}
		x := 0
		if try.title {
			out.title = title
			x = ansi.StringWidth(title)
		}
		for i := 0; i < int(numTabs); i++ {
			if i > 0 {
				x += len(try.gap)
			}
			l := label(i, try.form)
			w := ansi.StringWidth(l)
			out.tabs = append(out.tabs, tabSpot{id: screenID(i), label: l, x: x, w: w})
			x += w
		}
		if x <= m.width || try.form == 2 {
			return out
		}
	}
	return out
}

func (m *model) tabBar() string {
	st := m.sh.st
	l := m.tabLayout()
	var b strings.Builder
	if l.title != "" {
		b.WriteString(st.Title.Render(l.title))
	}
	for i, t := range l.tabs {
		if i > 0 {
			b.WriteString(l.gap)
		}
		if t.id == m.active {
			b.WriteString(st.TabActive.Render(t.label))
		} else {
			b.WriteString(st.Tab.Render(t.label))
		}
	}
	return b.String()
}

// statusLine shows a flash message or what is running, and the version.
func (m *model) statusLine() string {
	st := m.sh.st
	left := ""
	switch {
	case m.flash != "":
		left = st.Flash.Render(m.flash)
	case m.sh.busy.Load() > 0:
		n := int(m.sh.busy.Load())
		left = st.paint(toneRun, m.sh.frame+" "+strconv.Itoa(n)+" "+human.Plural(n, "check")+" running")
	}
	right := st.StatusBar.Render("refdoctor " + m.sh.opts.Version)
	gap := m.width - ansi.StringWidth(left) - ansi.StringWidth(right)
	if gap < 1 {
		return trunc(left, m.width)
	}
	return left + strings.Repeat(" ", gap) + right
}

// footer is the screen's keys, as many as fit, then always "? help" and
// "q quit": the way out is on screen at any width.
func (m *model) footer(cur screen) string {
	k := m.sh.keys
	if m.quitAsk {
		return trunc(m.help.ShortHelpView([]key.Binding{
			key.NewBinding(key.WithKeys("y"), key.WithHelp("y", "save and quit")),
			key.NewBinding(key.WithKeys("n"), key.WithHelp("n", "quit, not saving")),
			key.NewBinding(key.WithKeys("esc"), key.WithHelp("esc", "stay"))}), m.width)
	}
	if cur.capturing() {
		return trunc(m.help.ShortHelpView(cur.help().short), m.width)
	}
	tail := m.help.ShortHelpView([]key.Binding{k.Help, k.Quit})
	keys := cur.help().short
	for n := len(keys); n >= 0; n-- {
		head := ""
		if n > 0 {
			head = m.help.ShortHelpView(append(append([]key.Binding{}, keys[:n]...), k.Jump)) + m.sh.st.Help.ShortSeparator.Render(" • ")
		}
		if line := head + tail; ansi.StringWidth(line) <= m.width {
			return line
		}
	}
	return trunc(tail, m.width)
}

func (m *model) globalKeys() []key.Binding {
	k := m.sh.keys
	return []key.Binding{k.Jump, k.NextTab, k.PrevTab, k.Back, k.CopyDigest, k.SaveJSON, k.Help, k.Quit}
}

// fullHelpView lists the screen's keys and the global ones, each key once.
func (m *model) fullHelpView(cur screen) string {
	seen := map[string]bool{}
	var groups [][]key.Binding
	for _, g := range append(append([][]key.Binding{}, cur.help().full...), m.globalKeys()) {
		var out []key.Binding
		for _, b := range g {
			// One line per key: the screen's meaning of esc wins over the
			// general one.
			id := b.Help().Key
			if seen[id] || !b.Enabled() {
				continue
			}
			seen[id] = true
			out = append(out, b)
		}
		if len(out) > 0 {
			groups = append(groups, out)
		}
	}
	title := m.sh.st.Title.Render("Keys") + "  (esc or ? closes)"
	return title + "\n\n" + m.help.FullHelpView(groups)
}
