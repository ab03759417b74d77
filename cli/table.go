package cli

import (
	"io"
	"os"
	"strings"
	"unicode/utf8"

	"github.com/charmbracelet/x/term"
)

// Tables are sized to the terminal they are printed on: as wide as their
// values when the terminal has room, and only then cut, the flexible
// columns first, with "…". Output that is not a terminal (a pipe, a file,
// a script's buffer) gets every value whole: scripts grep them.

// termWidth is the width of the terminal w writes to, or 0 when w is not
// a terminal (no limit).
func termWidth(w io.Writer) int {
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(f.Fd()) {
		return 0
	}
	width, _, err := term.GetSize(f.Fd())
	if err != nil || width <= 0 {
		return 0
	}
	return width
}

// proseWidth is where prose wraps: the terminal's width, 80 elsewhere
// (wrapping loses no word).
func proseWidth(w io.Writer) int {
	if tw := termWidth(w); tw > 0 {
		return min(tw, 120)
	}
	return 80
}

// textWidth counts the cells of plain text (runes; refdoctor prints no
// wide characters in tables).
func textWidth(s string) int { return utf8.RuneCountInString(s) }

// cut shortens s to n cells with "…" at the end.
func cut(s string, n int) string {
	if textWidth(s) <= n {
		return s
	}
	if n <= 1 {
		return string([]rune(s)[:max(0, n)])
	}
	return string([]rune(s)[:n-1]) + "…"
}

// table is rows of columns printed aligned, two spaces apart, with an
// indent. The flex columns are the ones cut when the terminal is too
// narrow, in the order given.
type table struct {
	indent string
	head   []string
	rows   [][]string
	flex   []int
	// floor is the narrowest a flex column is cut to (default 8, or its
	// heading): a digest keeps sha256: and a dozen hex digits.
	floor map[int]int
	// gap is the spaces between columns (default 2).
	gap int
}

func (t *table) add(cells ...string) { t.rows = append(t.rows, cells) }

// write prints the table for w: whole values unless w is a terminal too
// narrow for them.
func (t *table) write(w io.Writer) {
	t.writeWidth(w, termWidth(w))
}

// writeWidth prints the table within width cells (0: no limit).
func (t *table) writeWidth(w io.Writer, width int) {
	gap := t.gap
	if gap <= 0 {
		gap = 2
	}
	cols := len(t.head)
	for _, r := range t.rows {
		cols = max(cols, len(r))
	}
	widths := make([]int, cols)
	measure := func(r []string) {
		for i, c := range r {
			widths[i] = max(widths[i], textWidth(c))
		}
	}
	measure(t.head)
	for _, r := range t.rows {
		measure(r)
	}
	if width > 0 {
		total := textWidth(t.indent) + gap*(cols-1)
		for _, n := range widths {
			total += n
		}
		for _, i := range t.flex {
			if total <= width || i >= cols {
				break
			}
			floor := max(8, textWidth(cell(t.head, i)), t.floor[i])
			shrink := min(total-width, widths[i]-floor)
			if shrink > 0 {
				widths[i] -= shrink
				total -= shrink
			}
		}
	}
	line := func(r []string) {
		var b strings.Builder
		b.WriteString(t.indent)
		for i := range cols {
			c := cut(cell(r, i), widths[i])
			b.WriteString(c)
			if i < cols-1 {
				b.WriteString(strings.Repeat(" ", widths[i]-textWidth(c)+gap))
			}
		}
		io.WriteString(w, strings.TrimRight(b.String(), " ")+"\n")
	}
	if len(t.head) > 0 {
		line(t.head)
	}
	for _, r := range t.rows {
		line(r)
	}
}

func cell(r []string, i int) string {
	if i < len(r) {
		return r[i]
	}
	return ""
}
