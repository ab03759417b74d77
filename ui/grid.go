package ui

import (
	"strconv"
	"strings"

	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/x/ansi"
)

// Text helpers. Every screen lays text out to an exact width: long values
// are cut with an ellipsis, never wrapped into the next row.

// trunc cuts plain or styled text to w cells, ending in "…" when cut.
func trunc(s string, w int) string {
	if w <= 0 {
		return ""
	}
	if ansi.StringWidth(s) <= w {
		return s
	}
	return ansi.Truncate(s, w, "…")
}

// truncMiddle keeps both ends of long identifiers (digests, paths), where
// the end is as telling as the start.
func truncMiddle(s string, w int) string {
	n := ansi.StringWidth(s)
	if n <= w || w < 5 {
		return trunc(s, w)
	}
	keep := w - 1
	head := keep - keep/2
	tail := keep / 2
	return ansi.Cut(s, 0, head) + "…" + ansi.Cut(s, n-tail, n)
}

// pad fills plain text with spaces to w cells (left or right aligned).
func pad(s string, w int, right bool) string {
	n := ansi.StringWidth(s)
	if n >= w {
		return s
	}
	if right {
		return strings.Repeat(" ", w-n) + s
	}
	return s + strings.Repeat(" ", w-n)
}

// wrap word-wraps plain text to w cells, breaking long words.
func wrap(s string, w int) string {
	if w < 8 {
		w = 8
	}
	return lipgloss.Wrap(s, w, " /")
}

// wrapIndent wraps text under a label: the first line starts with label,
// the rest with as many spaces.
func wrapIndent(label, text string, w int) []string {
	lw := ansi.StringWidth(label)
	lines := strings.Split(wrap(text, w-lw), "\n")
	out := make([]string, len(lines))
	for i, l := range lines {
		if i == 0 {
			out[i] = label + l
		} else {
			out[i] = strings.Repeat(" ", lw) + l
		}
	}
	return out
}

// clipBlock makes s exactly h lines of at most w cells: the screen never
// scrolls or wraps whatever a component returns.
func clipBlock(s string, w, h int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > h {
		lines = lines[:h]
	}
	for i, l := range lines {
		if ansi.StringWidth(l) > w {
			lines[i] = ansi.Truncate(l, w, "")
		}
	}
	for len(lines) < h {
		lines = append(lines, "")
	}
	return strings.Join(lines, "\n")
}

// window returns the first visible index for a list of n items of which h
// fit, keeping cursor in view and moving the window as little as possible.
func window(cursor, offset, h, n int) int {
	if h <= 0 || n <= h {
		return 0
	}
	if cursor < offset {
		offset = cursor
	}
	if cursor >= offset+h {
		offset = cursor - h + 1
	}
	if offset > n-h {
		offset = n - h
	}
	if offset < 0 {
		offset = 0
	}
	return offset
}

func clamp(v, lo, hi int) int {
	if hi < lo {
		return lo
	}
	if v < lo {
		return lo
	}
	if v > hi {
		return hi
	}
	return v
}

// column describes one table column. Columns are dropped from the right
// end of the priority order when the terminal is narrow: prio 0 columns
// always stay.
type column struct {
	title string
	min   int // narrowest width worth showing
	max   int // widest width it takes (0: as wide as its content)
	prio  int
	right bool
}

// cell is one table value with the tone it is painted in.
type cell struct {
	text string
	tone tone
}

// table renders rows in a fixed-width grid and only the rows in view, so
// that a thousand registries draw as fast as ten.
type table struct {
	cols    []column
	rows    [][]cell
	natural []int // widest content per column, kept as rows change
	cursor  int
	offset  int
	width   int
	height  int // rows of data in view (the header takes one more line)
}

func newTable(cols []column) *table {
	t := &table{cols: cols, natural: make([]int, len(cols))}
	for i, c := range cols {
		t.natural[i] = ansi.StringWidth(c.title)
	}
	return t
}

// setRows replaces the data and measures it once.
func (t *table) setRows(rows [][]cell) {
	t.rows = rows
	for i, c := range t.cols {
		t.natural[i] = ansi.StringWidth(c.title)
	}
	for _, r := range rows {
		t.measure(r)
	}
	t.cursor = clamp(t.cursor, 0, len(rows)-1)
	t.follow()
}

// setRow replaces one row; widths only grow, so the layout does not jump
// while results arrive.
func (t *table) setRow(i int, r []cell) {
	if i < 0 || i >= len(t.rows) {
		return
	}
	t.rows[i] = r
	t.measure(r)
}

func (t *table) measure(r []cell) {
	for i := range t.cols {
		if i < len(r) {
			if w := ansi.StringWidth(r[i].text); w > t.natural[i] {
				t.natural[i] = w
			}
		}
	}
}

func (t *table) setSize(w, h int) {
	t.width, t.height = w, h-1
	if t.height < 1 {
		t.height = 1
	}
	t.follow()
}

func (t *table) move(delta int) {
	if len(t.rows) == 0 {
		return
	}
	t.cursor = clamp(t.cursor+delta, 0, len(t.rows)-1)
	t.follow()
}

func (t *table) home() { t.cursor = 0; t.follow() }
func (t *table) end()  { t.cursor = max(0, len(t.rows)-1); t.follow() }

// follow keeps the cursor in view (in Update: View changes nothing).
func (t *table) follow() { t.offset = window(t.cursor, t.offset, t.height, len(t.rows)) }

// rowAt is the row shown on line y of the table's view (0 is the
// header), or -1.
func (t *table) rowAt(y int) int {
	r := t.offset + y - 1
	if y < 1 || r >= len(t.rows) || r >= t.offset+t.height {
		return -1
	}
	return r
}

// select puts the cursor on row r.
func (t *table) selectRow(r int) {
	if r >= 0 && r < len(t.rows) {
		t.cursor = r
		t.follow()
	}
}

// layout decides each column's width; 0 hides a column.
func (t *table) layout() []int {
	const gap = 2
	avail := t.width - 3 // the cursor mark and the scrollbar
	widths := make([]int, len(t.cols))
	want := func(i int) int {
		w := t.natural[i]
		if c := t.cols[i]; c.max > 0 && w > c.max {
			w = c.max
		}
		if w < t.cols[i].min {
			w = t.cols[i].min
		}
		return w
	}
	// Show columns in priority order when their wanted width still fits;
	// prio 0 columns always show, at least at their minimum.
	maxPrio := 0
	for _, c := range t.cols {
		maxPrio = max(maxPrio, c.prio)
	}
	// The always-shown columns take their wanted width when all of them
	// fit so, else their minimum (and grow below).
	core, coreFits := 0, true
	for i, c := range t.cols {
		if c.prio == 0 {
			core += want(i) + gap
		}
	}
	if core-gap > avail {
		coreFits = false
	}
	used := 0
	for p := 0; p <= maxPrio; p++ {
		for i, c := range t.cols {
			if c.prio != p {
				continue
			}
			w := want(i)
			if p == 0 && !coreFits {
				w = c.min
			}
			need := w
			if used > 0 {
				need += gap
			}
			if p > 0 && used+need > avail {
				continue
			}
			widths[i] = w
			used += need
		}
	}
	// Give what is left to shown columns still short of their want, most
	// important first.
	for p := 0; p <= maxPrio; p++ {
		for i, c := range t.cols {
			if c.prio != p || widths[i] == 0 {
				continue
			}
			grow := min(want(i)-widths[i], avail-used)
			if grow > 0 {
				widths[i] += grow
				used += grow
			}
		}
	}
	return widths
}

// view renders the header and the rows in view.
func (t *table) view(st styles) string {
	widths := t.layout()
	var b strings.Builder
	b.Grow((t.height + 1) * (t.width + 16))
	b.WriteString("  ")
	first := true
	for i, c := range t.cols {
		if widths[i] == 0 {
			continue
		}
		if !first {
			b.WriteString("  ")
		}
		first = false
		b.WriteString(st.Header.Render(pad(trunc(c.title, widths[i]), widths[i], c.right)))
	}
	end := min(len(t.rows), t.offset+t.height)
	for r := t.offset; r < end; r++ {
		b.WriteByte('\n')
		row := t.rows[r]
		if r == t.cursor {
			b.WriteString(st.Cursor.Render("› "))
			b.WriteString(st.Selected.Render(t.line(row, widths, nil)))
			continue
		}
		b.WriteString("  ")
		b.WriteString(t.line(row, widths, &st))
	}
	bar := append([]string{" "}, scrollbar(st, len(t.rows), t.offset, t.height)...)
	return withScrollbar(b.String(), t.width-1, bar[:min(len(bar), end-t.offset+1)])
}

// line renders one row's cells at the given widths, painted when st is
// given (the selected row is drawn plain and reversed as a whole).
func (t *table) line(row []cell, widths []int, st *styles) string {
	var b strings.Builder
	first := true
	for i, c := range t.cols {
		if widths[i] == 0 {
			continue
		}
		if !first {
			b.WriteString("  ")
		}
		first = false
		var v cell
		if i < len(row) {
			v = row[i]
		}
		text := trunc(v.text, widths[i])
		gap := widths[i] - ansi.StringWidth(text)
		if st != nil {
			text = st.paint(v.tone, text)
		}
		if c.right {
			b.WriteString(strings.Repeat(" ", gap))
			b.WriteString(text)
		} else {
			b.WriteString(text)
			b.WriteString(strings.Repeat(" ", gap))
		}
	}
	return b.String()
}

// scrollbar is a column of h cells for a window of h lines at offset into
// total lines: a track with a thumb where the window is. It is blank when
// everything fits, so a bar means there is more.
func scrollbar(st styles, total, offset, h int) []string {
	out := make([]string, h)
	if h <= 0 || total <= h {
		for i := range out {
			out[i] = " "
		}
		return out
	}
	thumb := max(1, h*h/total)
	maxOff := total - h
	top := 0
	if maxOff > 0 {
		top = (h - thumb) * min(offset, maxOff) / maxOff
	}
	for i := range out {
		if i >= top && i < top+thumb {
			out[i] = st.Rule.Render("█")
		} else {
			out[i] = st.Rule.Render("│")
		}
	}
	return out
}

// withScrollbar puts the bar to the right of a block of w-wide lines.
func withScrollbar(block string, w int, bar []string) string {
	lines := strings.Split(block, "\n")
	for len(lines) < len(bar) {
		lines = append(lines, "")
	}
	for i, l := range lines {
		if i >= len(bar) {
			break
		}
		n := ansi.StringWidth(l)
		if n > w {
			l, n = ansi.Truncate(l, w, ""), w
		}
		lines[i] = l + strings.Repeat(" ", w-n) + bar[i]
	}
	return strings.Join(lines[:len(bar)], "\n")
}

// position says which part of a cut list or text is in view, "" when all
// of it is: "14/18" for a list with a cursor, "lines 1-20 of 57" for text.
func position(cursor, total int) string {
	if total <= 0 {
		return ""
	}
	return strconv.Itoa(cursor+1) + "/" + strconv.Itoa(total)
}

func linesPosition(offset, h, total int) string {
	if total <= h || h <= 0 {
		return ""
	}
	end := min(total, offset+h)
	return "lines " + strconv.Itoa(offset+1) + "-" + strconv.Itoa(end) + " of " + strconv.Itoa(total)
}

// rightAlign puts right at the end of a line of width w after left,
// cutting left first.
func rightAlign(left, right string, w int) string {
	if right == "" {
		return trunc(left, w)
	}
	rw := ansi.StringWidth(right)
	if rw+2 > w {
		return trunc(left, w)
	}
	left = trunc(left, w-rw-2)
	return left + strings.Repeat(" ", w-rw-ansi.StringWidth(left)) + right
}

// wrapHard wraps text that has no spaces worth breaking at (digests,
// hashes, paths) at exactly w cells, so every character stays on screen.
func wrapHard(s string, w int) []string {
	if w <= 0 {
		return []string{s}
	}
	var out []string
	for ansi.StringWidth(s) > w {
		out = append(out, ansi.Cut(s, 0, w))
		s = ansi.Cut(s, w, ansi.StringWidth(s))
	}
	return append(out, s)
}

// wrapHardIndent wraps a value under a label, hard, continuing lines
// indented to the label's width.
func wrapHardIndent(label, value string, w int) []string {
	lw := ansi.StringWidth(label)
	parts := wrapHard(value, max(8, w-lw))
	out := make([]string, len(parts))
	for i, p := range parts {
		if i == 0 {
			out[i] = label + p
		} else {
			out[i] = strings.Repeat(" ", lw) + p
		}
	}
	return out
}
