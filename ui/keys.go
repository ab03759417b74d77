package ui

import "charm.land/bubbles/v2/key"

// keyMap holds every key binding of the TUI. Screens pick the bindings
// they use, and the same bindings feed the help line and the full help
// (?), so what the help says is what the keys do.
type keyMap struct {
	// Global.
	Quit    key.Binding
	Help    key.Binding
	Back    key.Binding
	NextTab key.Binding
	PrevTab key.Binding
	Jump    key.Binding
	// CopyDigest copies the selected digest (OSC 52).
	CopyDigest key.Binding
	// CopyFix copies the selected row's or finding's fix: its command
	// where it holds one (Referrers screen and its comparison).
	CopyFix key.Binding
	// SaveJSON writes the screen's result as the CLI's -o json document.
	SaveJSON key.Binding

	// Moving in lists, tables and text.
	Up       key.Binding
	Down     key.Binding
	PageUp   key.Binding
	PageDown key.Binding
	Top      key.Binding
	Bottom   key.Binding
	Open     key.Binding
	// OpenReferrer and OpenTag are enter where it shows a manifest.
	OpenReferrer key.Binding
	OpenTag      key.Binding

	// Start.
	Choose      key.Binding
	EditTargets key.Binding
	NextField   key.Binding
	PrevField   key.Binding
	Save        key.Binding
	Cancel      key.Binding

	// Runbook walkthrough: the steps are the list (Up, Down); [ and ]
	// pick a command, as they pick a registry elsewhere.
	RunStep     key.Binding
	RerunStep   key.Binding
	Steps       key.Binding
	NextCommand key.Binding
	PrevCommand key.Binding
	Copy        key.Binding

	// Compatibility table and registry detail.
	Reprobe      key.Binding
	ReprobeAll   key.Binding
	Detail       key.Binding
	OpenExchange key.Binding
	ResetBudget  key.Binding

	// Tags, referrers, logs: reload and switch registry.
	Reload       key.Binding
	Filter       key.Binding
	ClearFilter  key.Binding
	NextRegistry key.Binding
	PrevRegistry key.Binding
	// PickRegistry is [ and ] as one entry of a short help line.
	PickRegistry key.Binding
	// Repositories lists the registry's catalog to pick a repository.
	Repositories key.Binding
	// CompareSource shows the image against the source it was copied
	// from (Referrers screen; the runbook's referrer steps).
	CompareSource key.Binding

	// Bundle.
	PickFile   key.Binding
	Revalidate key.Binding
	SelectFile key.Binding
	FolderUp   key.Binding

	// Escalation.
	Collect key.Binding
}

func newKeyMap() keyMap {
	b := func(keys []string, helpKey, desc string) key.Binding {
		return key.NewBinding(key.WithKeys(keys...), key.WithHelp(helpKey, desc))
	}
	return keyMap{
		Quit:    b([]string{"q", "ctrl+c"}, "q", "quit"),
		Help:    b([]string{"?"}, "?", "help"),
		Back:    b([]string{"esc"}, "esc", "back/stop"),
		NextTab: b([]string{"tab"}, "tab", "next screen"),
		PrevTab: b([]string{"shift+tab"}, "shift+tab", "prev screen"),
		Jump:    b([]string{"1", "2", "3", "4", "5", "6", "7", "8", "9"}, "1-9", "screens"),

		CopyDigest: b([]string{"y"}, "y", "copy digest"),
		CopyFix:    b([]string{"c"}, "c", "copy fix"),
		SaveJSON:   b([]string{"w"}, "w", "write JSON"),

		Up:       b([]string{"k", "up"}, "↑/k", "up"),
		Down:     b([]string{"j", "down"}, "↓/j", "down"),
		PageUp:   b([]string{"pgup", "ctrl+u"}, "pgup", "page up"),
		PageDown: b([]string{"pgdown", "ctrl+d", "space"}, "pgdn", "page down"),
		Top:      b([]string{"g", "home"}, "g", "top"),
		Bottom:   b([]string{"G", "end"}, "G", "bottom"),
		Open:     b([]string{"enter"}, "enter", "open"),

		OpenReferrer: b([]string{"enter"}, "enter", "manifest"),
		OpenTag:      b([]string{"enter"}, "enter", "what it holds"),

		Choose:      b([]string{"enter"}, "enter", "walk from here"),
		EditTargets: b([]string{"e"}, "e", "edit targets"),
		NextField:   b([]string{"tab", "down"}, "tab", "next field"),
		PrevField:   b([]string{"shift+tab", "up"}, "shift+tab", "prev field"),
		Save:        b([]string{"enter"}, "enter", "save"),
		Cancel:      b([]string{"esc"}, "esc", "cancel"),

		RunStep:     b([]string{"r"}, "r", "run check"),
		RerunStep:   b([]string{"R"}, "R", "rerun"),
		Steps:       b([]string{"k", "up", "j", "down"}, "↑/↓", "step"),
		NextCommand: b([]string{"]"}, "]", "next command"),
		PrevCommand: b([]string{"["}, "[", "prev command"),
		Copy:        b([]string{"c"}, "c", "copy command"),

		Reprobe:    b([]string{"r"}, "r", "re-probe"),
		ReprobeAll: b([]string{"R"}, "R", "re-probe all"),
		Detail:     b([]string{"enter"}, "enter", "exchanges"),

		OpenExchange: b([]string{"enter"}, "enter", "headers/body"),
		ResetBudget:  b([]string{"R"}, "R", "reset lab budget, re-probe"),

		Reload:       b([]string{"r"}, "r", "reload"),
		Filter:       b([]string{"/"}, "/", "filter"),
		ClearFilter:  b([]string{"esc"}, "esc", "clear filter"),
		NextRegistry: b([]string{"]"}, "]", "next registry"),
		PrevRegistry: b([]string{"["}, "[", "prev registry"),
		PickRegistry: b([]string{"[", "]"}, "[/]", "prev/next registry"),
		Repositories: b([]string{"l"}, "l", "repositories"),

		CompareSource: b([]string{"s"}, "s", "compare with source"),

		PickFile:   b([]string{"o"}, "o", "open file"),
		Revalidate: b([]string{"r"}, "r", "validate again"),
		SelectFile: b([]string{"enter"}, "enter", "open"),
		FolderUp:   b([]string{"backspace", "left", "h"}, "⌫", "folder up"),

		Collect: b([]string{"d"}, "d", "collect diagnostics"),
	}
}

// bindings is a help.KeyMap built from a screen's bindings and the global
// ones.
type bindings struct {
	short []key.Binding
	full  [][]key.Binding
}

func (b bindings) ShortHelp() []key.Binding  { return b.short }
func (b bindings) FullHelp() [][]key.Binding { return b.full }
