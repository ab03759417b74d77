package ui

import (
	"strings"

	tea "charm.land/bubbletea/v2"

	"github.com/refdoctor/refdoctor/config"
)

// savedConfigMsg says how saving the edited registries to the config
// file went.
type savedConfigMsg struct {
	path string
	n    int
	err  error
}

// registriesToSave is the config's [[registry]] list as the session's
// targets make it: one entry per target host, keeping what the config
// says of the host (CA, expected kind, flags) and taking the target's
// repository where it names one. Entries keep the config's order (the
// file is edited in place) and new hosts follow, as they are written.
func (sh *shared) registriesToSave() []config.Registry {
	repo := map[string]string{}
	var hosts []string
	for _, t := range sh.opts.Targets {
		if _, ok := repo[t.Host]; !ok {
			hosts = append(hosts, t.Host)
			repo[t.Host] = ""
		}
		if t.Repository != "" && repo[t.Host] == "" {
			repo[t.Host] = t.Repository
		}
	}
	var out []config.Registry
	done := map[string]bool{}
	add := func(r config.Registry) {
		if rp := repo[r.Host]; rp != "" {
			r.Repository = rp
		}
		done[r.Host] = true
		out = append(out, r)
	}
	for _, r := range sh.opts.Config.Registries {
		if _, targeted := repo[r.Host]; targeted && !done[r.Host] {
			add(r)
		}
	}
	for _, h := range hosts {
		if !done[h] {
			add(config.Registry{Host: h})
		}
	}
	return out
}

// registriesDropped lists the hosts of the config's [[registry]] entries
// that saving regs would remove, so that the question says so.
func (sh *shared) registriesDropped(regs []config.Registry) []string {
	kept := map[string]bool{}
	for _, r := range regs {
		kept[r.Host] = true
	}
	var gone []string
	for _, r := range sh.opts.Config.Registries {
		if !kept[r.Host] {
			gone = append(gone, r.Host)
			kept[r.Host] = true
		}
	}
	return gone
}

// configPath is the file the registries are saved to: the one the
// session read, else the default one.
func (sh *shared) configPath() string {
	if sh.opts.Config.Path != "" {
		return sh.opts.Config.Path
	}
	return config.DefaultPath()
}

// quitKey answers the question asked on quit after the targets were
// edited: y saves them to the config file and quits, n quits, esc stays.
func (m *model) quitKey(msg tea.KeyPressMsg) tea.Cmd {
	switch msg.String() {
	case "y", "Y":
		if m.quitSaving {
			return nil
		}
		m.quitSaving, m.quitErr = true, ""
		path, regs := m.sh.configPath(), m.sh.registriesToSave()
		return func() tea.Msg {
			return savedConfigMsg{path: path, n: len(regs), err: config.SaveRegistries(path, regs)}
		}
	case "n", "N":
		return tea.Quit
	case "esc":
		if !m.quitSaving {
			m.quitAsk, m.quitErr = false, ""
		}
	}
	return nil
}

// savedConfig quits once the registries are saved, or shows why not.
func (m *model) savedConfig(msg savedConfigMsg) tea.Cmd {
	m.quitSaving = false
	if msg.err != nil {
		m.quitErr = msg.err.Error()
		return nil
	}
	m.sh.savedTo = msg.path
	return tea.Quit
}

// quitView asks whether to keep the edited registries.
func (m *model) quitView() string {
	st, w := m.sh.st, m.width
	path := m.sh.configPath()
	regs := m.sh.registriesToSave()
	lines := []string{st.Title.Render("Save the registries?"), ""}
	lines = append(lines, wrapIndent("", "You edited the targets in this session. Save them as the [[registry]] list of "+path+"? Comments, other settings and what the form does not edit (CA files, expected kinds) are kept.", w)...)
	lines = append(lines, "")
	for _, r := range regs {
		var what []string
		if r.Repository != "" {
			what = append(what, "repository "+r.Repository)
		}
		if r.PlainHTTP {
			what = append(what, "plain HTTP")
		}
		if r.InsecureSkipVerify {
			what = append(what, "insecure TLS")
		}
		if r.Expected != "" {
			what = append(what, "expected "+r.Expected)
		}
		lines = append(lines, trunc("  "+r.Host+st.Label.Render("  "+strings.Join(what, " · ")), w))
	}
	if len(regs) == 0 {
		lines = append(lines, "  (no registry: the file's [[registry]] list is emptied)")
	}
	if gone := m.sh.registriesDropped(regs); len(gone) > 0 {
		lines = append(lines, "")
		lines = append(lines, wrapIndent(st.word("warn")+" removed from the file: ", strings.Join(gone, ", ")+
			" (in the file, no longer among the targets; n quits and keeps the file as it is)", w)...)
	}
	lines = append(lines, "")
	switch {
	case m.quitSaving:
		lines = append(lines, st.Label.Render("saving…"))
	case m.quitErr != "":
		lines = append(lines, wrapIndent(st.word("error")+" not saved: ", m.quitErr, w)...)
		lines = append(lines, "", st.Label.Render("y tries again · n quits without saving · esc stays"))
	default:
		lines = append(lines, st.Label.Render("y saves and quits · n quits without saving · esc stays"))
	}
	return strings.Join(lines, "\n")
}
