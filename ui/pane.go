package ui

import (
	"strings"

	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/viewport"
	tea "charm.land/bubbletea/v2"
)

// pane is text taller than its space: a viewport driven by the TUI's own
// keys, with a scrollbar in its last column whenever the text is cut, so
// the operator always sees that there is more.
type pane struct {
	sh    *shared
	vp    viewport.Model
	lines int
}

func newPane(sh *shared) pane {
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
	return pane{sh: sh, vp: vp}
}

// setSize gives the pane w columns (one of them the scrollbar's) and h
// lines.
func (p *pane) setSize(w, h int) {
	p.vp.SetWidth(max(1, w-1))
	p.vp.SetHeight(max(1, h))
}

// width is what the text may take: the pane less its scrollbar.
func (p *pane) width() int { return max(20, p.vp.Width()) }

func (p *pane) setContent(s string) {
	p.vp.SetContent(s)
	p.lines = strings.Count(s, "\n") + 1
}

func (p *pane) setLines(lines []string) { p.setContent(strings.Join(lines, "\n")) }

// update scrolls for the moving keys (g and G too) and the wheel.
func (p *pane) update(msg tea.Msg) tea.Cmd {
	if k, ok := msg.(tea.KeyPressMsg); ok {
		switch {
		case key.Matches(k, p.sh.keys.Top):
			p.vp.GotoTop()
			return nil
		case key.Matches(k, p.sh.keys.Bottom):
			p.vp.GotoBottom()
			return nil
		}
	}
	var cmd tea.Cmd
	p.vp, cmd = p.vp.Update(msg)
	return cmd
}

// show scrolls as little as needed to bring lines from..to into view.
func (p *pane) show(from, to int) {
	off, h := p.vp.YOffset(), p.vp.Height()
	switch {
	case from < off:
		p.vp.SetYOffset(from)
	case to >= off+h:
		p.vp.SetYOffset(max(from, to-h+1))
	}
}

func (p *pane) top() { p.vp.GotoTop() }

// offset is the first line in view.
func (p *pane) offset() int { return p.vp.YOffset() }

func (p *pane) view() string {
	return withScrollbar(p.vp.View(), p.vp.Width(), scrollbar(p.sh.st, p.lines, p.vp.YOffset(), p.vp.Height()))
}

// position is "lines 1-20 of 57" when the text is cut, else "".
func (p *pane) position() string { return linesPosition(p.vp.YOffset(), p.vp.Height(), p.lines) }
