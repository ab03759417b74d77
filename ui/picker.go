package ui

import (
	"os"
	"path/filepath"
	"sort"
	"strings"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"

	"github.com/refdoctor/refdoctor/internal/human"
)

// bundleSuffixes are the file names the picker offers: gzip and zstd
// tars (validation still reads the bytes to tell).
var bundleSuffixes = []string{".tgz", ".tar.gz", ".tar.zst", ".tzst"}

// isBundleName tells whether a file name looks like a mirror bundle.
func isBundleName(name string) bool {
	lower := strings.ToLower(name)
	for _, s := range bundleSuffixes {
		if strings.HasSuffix(lower, s) {
			return true
		}
	}
	return false
}

// pickerEntry is one line of the picker: a folder or a bundle.
type pickerEntry struct {
	name string
	dir  bool
	size int64
}

// dirReadMsg is a folder's listing for the picker, read in a tea.Cmd
// (Update never touches the file system).
type dirReadMsg struct {
	dir     string
	entries []pickerEntry
	err     error
}

// readDir lists the folders and the bundles of dir, folders first.
func readDir(dir string) tea.Cmd {
	return func() tea.Msg {
		des, err := os.ReadDir(dir)
		if err != nil {
			return dirReadMsg{dir: dir, err: err}
		}
		var out []pickerEntry
		for _, de := range des {
			name := de.Name()
			if strings.HasPrefix(name, ".") {
				continue
			}
			info, err := os.Stat(filepath.Join(dir, name)) // follows links to folders
			if err != nil {
				continue
			}
			switch {
			case info.IsDir():
				out = append(out, pickerEntry{name: name, dir: true})
			case info.Mode().IsRegular() && isBundleName(name):
				out = append(out, pickerEntry{name: name, size: info.Size()})
			}
		}
		sort.SliceStable(out, func(i, j int) bool {
			if out[i].dir != out[j].dir {
				return out[i].dir
			}
			return out[i].name < out[j].name
		})
		if parent := filepath.Dir(dir); parent != dir {
			out = append([]pickerEntry{{name: "..", dir: true}}, out...)
		}
		return dirReadMsg{dir: dir, entries: out}
	}
}

// picker chooses a bundle: it lists only folders (marked with /) and
// files named like bundles, with their sizes.
type picker struct {
	sh      *shared
	dir     string
	entries []pickerEntry
	loaded  bool
	err     string
	cursor  int
	offset  int
	w, h    int
}

func newPicker(sh *shared, dir string) picker { return picker{sh: sh, dir: dir} }

func (p *picker) open(dir string) tea.Cmd {
	p.dir, p.loaded, p.err, p.cursor, p.offset = dir, false, "", 0, 0
	return readDir(dir)
}

func (p *picker) setSize(w, h int) {
	p.w, p.h = w, max(1, h)
	p.follow()
}

func (p *picker) follow() { p.offset = window(p.cursor, p.offset, p.h, len(p.entries)) }

// update moves, opens folders and returns the chosen bundle's path.
func (p *picker) update(msg tea.Msg) (string, tea.Cmd) {
	switch msg := msg.(type) {
	case dirReadMsg:
		if msg.dir != p.dir {
			return "", nil
		}
		p.loaded, p.entries, p.err = true, msg.entries, ""
		if msg.err != nil {
			p.err = msg.err.Error()
		}
		p.cursor = clamp(p.cursor, 0, len(p.entries)-1)
		p.follow()
	case tea.KeyPressMsg:
		k := p.sh.keys
		switch {
		case key.Matches(msg, k.Up):
			p.cursor = clamp(p.cursor-1, 0, len(p.entries)-1)
		case key.Matches(msg, k.Down):
			p.cursor = clamp(p.cursor+1, 0, len(p.entries)-1)
		case key.Matches(msg, k.PageUp):
			p.cursor = clamp(p.cursor-p.h, 0, len(p.entries)-1)
		case key.Matches(msg, k.PageDown):
			p.cursor = clamp(p.cursor+p.h, 0, len(p.entries)-1)
		case key.Matches(msg, k.Top):
			p.cursor = 0
		case key.Matches(msg, k.Bottom):
			p.cursor = max(0, len(p.entries)-1)
		case key.Matches(msg, k.FolderUp):
			return "", p.open(filepath.Dir(p.dir))
		case key.Matches(msg, k.SelectFile):
			return p.choose(p.cursor)
		}
		p.follow()
	}
	return "", nil
}

// choose opens a folder or returns a bundle's path.
func (p *picker) choose(i int) (string, tea.Cmd) {
	if i < 0 || i >= len(p.entries) {
		return "", nil
	}
	e := p.entries[i]
	if e.dir {
		if e.name == ".." {
			return "", p.open(filepath.Dir(p.dir))
		}
		return "", p.open(filepath.Join(p.dir, e.name))
	}
	return filepath.Join(p.dir, e.name), nil
}

// click selects the line under the mouse; a click on the selected one
// opens it.
func (p *picker) click(y int) (string, tea.Cmd) {
	i := p.offset + y
	if i < 0 || i >= len(p.entries) {
		return "", nil
	}
	if i == p.cursor {
		return p.choose(i)
	}
	p.cursor = i
	p.follow()
	return "", nil
}

func (p *picker) view() string {
	st := p.sh.st
	switch {
	case !p.loaded:
		return "  reading the folder…"
	case p.err != "":
		return wrap("  "+st.word("error")+" "+p.err, p.w)
	case len(p.entries) == 0 || (len(p.entries) == 1 && p.entries[0].name == ".."):
		if len(p.entries) == 0 {
			return "  No folders and no bundles (.tgz, .tar.zst) here."
		}
	}
	var b strings.Builder
	end := min(len(p.entries), p.offset+p.h)
	for i := p.offset; i < end; i++ {
		e := p.entries[i]
		mark := "  "
		if i == p.cursor {
			mark = st.Cursor.Render("› ")
		}
		var line string
		if e.dir {
			line = st.Header.Render(e.name + "/")
		} else {
			line = pad(trunc(e.name, max(10, p.w-12)), max(10, p.w-12), false) + pad(human.Size(e.size), 7, true)
		}
		if i == p.cursor {
			line = st.Selected.Render(line)
		}
		if i > p.offset {
			b.WriteByte('\n')
		}
		b.WriteString(mark + line)
	}
	if len(p.entries) == 1 {
		b.WriteString("\n\n  No bundles (.tgz, .tar.zst) in this folder.")
	}
	return b.String()
}
