package ui

import (
	"image/color"

	"charm.land/bubbles/v2/help"
	"charm.land/bubbles/v2/textinput"
	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/colorprofile"
)

// tone is what a piece of text means; styles turn it into colour. Every
// tone is also carried by the words themselves (ok, warn, fail, "!"), so
// the screen reads the same without colour.
type tone int

const (
	toneNone tone = iota
	toneOK
	toneWarn
	toneFail
	toneRun
	toneDim
	toneAccent
	toneMismatch
	toneBold
)

// styles is the one place where the TUI's look is decided. It is rebuilt
// when the terminal reports its background (light or dark) or its colour
// profile; with NO_COLOR (profile Ascii) it holds no colour at all, and
// for a non-terminal (NoTTY, the golden tests) no attributes either.
type styles struct {
	dark    bool
	profile colorprofile.Profile

	Tab, TabActive, TabBar lipgloss.Style
	Title, Header, Rule    lipgloss.Style
	Selected, Cursor       lipgloss.Style
	Label, Code, Key       lipgloss.Style
	StatusBar, Flash       lipgloss.Style
	// Plain has no attributes: the base for library widgets' styles when
	// colour is off.
	Plain         lipgloss.Style
	tones         map[tone]lipgloss.Style
	Help          help.Styles
	Input         textinput.Styles
	ProgressFull  color.Color
	ProgressEmpty color.Color
}

// newStyles builds the palette for a background and a colour profile.
func newStyles(dark bool, profile colorprofile.Profile) styles {
	plain := lipgloss.NewStyle()
	s := styles{dark: dark, profile: profile, tones: map[tone]lipgloss.Style{}, Plain: plain}
	if profile == colorprofile.NoTTY {
		// Not a terminal: plain text only, so captures and goldens hold
		// no escape sequences.
		s.Tab, s.TabActive, s.TabBar = plain, plain, plain
		s.Title, s.Header, s.Rule = plain, plain, plain
		s.Selected, s.Cursor = plain, plain
		s.Label, s.Code, s.Key = plain, plain, plain
		s.StatusBar, s.Flash = plain, plain
		for _, t := range []tone{toneNone, toneOK, toneWarn, toneFail, toneRun, toneDim, toneAccent, toneMismatch, toneBold} {
			s.tones[t] = plain
		}
		s.Help = help.Styles{Ellipsis: plain, ShortKey: plain, ShortDesc: plain, ShortSeparator: plain, FullKey: plain, FullDesc: plain, FullSeparator: plain}
		s.ProgressFull, s.ProgressEmpty = lipgloss.NoColor{}, lipgloss.NoColor{}
		s.Input = plainInput()
		return s
	}
	noColor := profile == colorprofile.Ascii
	ld := lipgloss.LightDark(dark)
	fg := func(light, darkHex string) lipgloss.Style {
		if noColor {
			return plain
		}
		return plain.Foreground(ld(lipgloss.Color(light), lipgloss.Color(darkHex)))
	}
	accent := fg("#5A32C8", "#B9A6FF")
	dim := fg("#5F6B76", "#9AA4AE")

	s.TabBar = plain
	s.Tab = dim
	s.TabActive = accent.Bold(true).Reverse(true)
	s.Title = accent.Bold(true)
	s.Header = plain.Bold(true)
	s.Rule = dim
	s.Selected = plain.Reverse(true)
	s.Cursor = accent.Bold(true)
	s.Label = dim
	s.Code = fg("#0B5CAD", "#8CC8FF")
	s.Key = accent.Bold(true)
	s.StatusBar = dim
	s.Flash = accent.Bold(true)

	s.tones[toneNone] = plain
	s.tones[toneOK] = fg("#116329", "#5FD97A")
	s.tones[toneWarn] = fg("#8A5A00", "#F0C050")
	s.tones[toneFail] = fg("#B3261E", "#FF8A80").Bold(true)
	s.tones[toneRun] = fg("#0B5CAD", "#8CC8FF")
	s.tones[toneDim] = dim
	s.tones[toneAccent] = accent
	s.tones[toneMismatch] = fg("#B3261E", "#FF8A80").Bold(true)
	s.tones[toneBold] = plain.Bold(true)

	s.Help = help.DefaultStyles(dark)
	if noColor {
		s.Help = help.Styles{Ellipsis: plain, ShortKey: plain.Bold(true), ShortDesc: plain, ShortSeparator: plain, FullKey: plain.Bold(true), FullDesc: plain, FullSeparator: plain}
	}
	s.Help.ShortKey = s.Key
	s.Help.FullKey = s.Key
	s.Input = textinput.DefaultStyles(dark)
	s.Input.Cursor.Blink = false
	if noColor {
		s.Input = plainInput()
		s.ProgressFull, s.ProgressEmpty = lipgloss.NoColor{}, lipgloss.NoColor{}
	} else {
		s.ProgressFull = ld(lipgloss.Color("#5A32C8"), lipgloss.Color("#B9A6FF"))
		s.ProgressEmpty = ld(lipgloss.Color("#D0D7DE"), lipgloss.Color("#3A3F45"))
	}
	return s
}

// plainInput styles a text field without colour; the virtual cursor is
// drawn reversed, which needs none.
func plainInput() textinput.Styles {
	p := lipgloss.NewStyle()
	state := textinput.StyleState{Text: p, Placeholder: p, Suggestion: p, Prompt: p}
	return textinput.Styles{Focused: state, Blurred: state, Cursor: textinput.CursorStyle{Blink: false}}
}

// colour tells whether the styles may use colour at all.
func (s styles) colour() bool {
	return s.profile != colorprofile.NoTTY && s.profile != colorprofile.Ascii
}

// paint renders text in a tone.
func (s styles) paint(t tone, text string) string {
	if text == "" {
		return ""
	}
	st, ok := s.tones[t]
	if !ok || t == toneNone {
		return text
	}
	return st.Render(text)
}

// word renders a status word in the tone its meaning carries.
func (s styles) word(w string) string { return s.paint(toneOf(w), w) }

// toneOf maps the status words used across the engine to tones.
func toneOf(w string) tone {
	switch w {
	case "ok", "passed", "supported", "exists", "valid", "done", "written":
		return toneOK
	case "warn", "warned", "incomplete", "unknown", "rate-limited", "partial", "denied":
		return toneWarn
	case "fail", "failed", "error", "orphan", "ORPHAN", "invalid", "not-found":
		return toneFail
	case "running", "probing", "validating", "discovering", "listing", "collecting", "reading":
		return toneRun
	case "pending", "skipped", "not-checked", "cached", "-", "info":
		return toneDim
	case "unsupported":
		return toneWarn
	}
	return toneNone
}
