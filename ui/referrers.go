package ui

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"

	"github.com/refdoctor/refdoctor/discovery"
	"github.com/refdoctor/refdoctor/finding"
	"github.com/refdoctor/refdoctor/internal/human"
	"github.com/refdoctor/refdoctor/mirror"
)

// chainLink is one step from the image to a referrer: the image itself,
// a platform manifest, or a referrer that has referrers of its own.
type chainLink struct {
	what   string // "image", "platform linux/amd64", "sbom", ...
	digest string
}

// refRow is one selectable referrer of the tree, with the chain of
// subjects that leads to it.
type refRow struct {
	ref   discovery.Referrer
	chain []chainLink
}

// referrersScreen discovers the referrers of the image (and of each of its
// platform manifests) and shows the tree: how each referrer was found
// (api, tag-index, cosign-tag, index-attestation), its category, artifact
// type, digest and size, and the findings (disagreements, platform
// hints). ↑/↓ select a referrer; enter shows its manifest, annotations
// and subject chain; esc returns to the same row.
type referrersScreen struct {
	sh        *shared
	image     string
	job       job[discovery.Event, discovery.Result]
	found     []discovery.Referrer // as they arrive
	exchanges int
	started   bool
	pane      pane
	rows      []refRow
	// findings are the result's findings as shown; the cursor moves on
	// from the last referrer to them, and c copies the selected one's fix.
	findings []finding.Finding
	findLen  []int // lines of each finding
	rowAt    []int // first content line of each row, then of each finding
	sel      int
	// open is the row shown in full (-1: the tree), with its manifest.
	open     int
	manifest job[none, discovery.Manifest]
	listOff  int // the tree's scroll position, restored on esc
	w, h     int
	// cmp is the comparison with the source (s), shown instead of the
	// tree while comparing is set.
	cmp       *compareView
	comparing bool
	// cat lists the registry's repositories to pick the image's from (l).
	cat *catalogPicker
}

func newReferrersScreen(sh *shared) *referrersScreen {
	return &referrersScreen{sh: sh, image: sh.opts.Image, pane: newPane(sh), open: -1, cmp: newCompareView(sh), cat: newCatalogPicker(sh, scrReferrers)}
}

func (r *referrersScreen) SetSize(w, h int) {
	r.w, r.h = w, h
	r.pane.setSize(w, max(1, h-1))
	r.cmp.setSize(w, h)
	r.cat.setSize(w, h)
	r.refresh()
	if r.open < 0 {
		// What was selected stays in view at the new size.
		r.follow()
	}
}

// compare shows the comparison with the source, starting it unless it
// already holds (or is reading) the current source and image.
func (r *referrersScreen) compare(again bool) tea.Cmd {
	r.comparing = true
	c := r.cmp
	if !again && c.source == r.sh.opts.Source && c.image == r.sh.opts.Image && c.job.state != jobIdle && c.job.state != jobStopped {
		c.refresh()
		return nil
	}
	return c.start()
}

// compareKey handles a key while the comparison is shown.
func (r *referrersScreen) compareKey(msg tea.KeyPressMsg) tea.Cmd {
	k := r.sh.keys
	switch {
	case key.Matches(msg, k.CompareSource):
		r.comparing = false
		r.refresh()
		return nil
	case key.Matches(msg, k.Reload):
		return r.compare(true)
	case key.Matches(msg, k.Up):
		r.cmp.selectRow(r.cmp.sel - 1)
		return nil
	case key.Matches(msg, k.Down):
		r.cmp.selectRow(r.cmp.sel + 1)
		return nil
	}
	return r.cmp.pane.update(msg)
}

func (r *referrersScreen) capturing() bool { return r.cat.capturing() }

func (r *referrersScreen) activate() tea.Cmd {
	if r.started {
		return nil
	}
	r.started = true
	return r.discover()
}

func (r *referrersScreen) discover() tea.Cmd {
	r.open = -1
	r.manifest.reset()
	if r.image == "" {
		r.job.reset()
		return nil
	}
	sh, image := r.sh, r.image
	cmd := r.job.start(sh, scrReferrers, func(ctx context.Context, emit func(discovery.Event)) (discovery.Result, error) {
		opts := append(sh.discoveryOpts(), discovery.WithPlatforms(true), discovery.WithEvents(emit))
		return discovery.Discover(ctx, image, opts...)
	})
	r.found, r.exchanges, r.sel = nil, 0, 0
	r.refresh()
	return cmd
}

// fetch reads the selected referrer's manifest from the registry.
func (r *referrersScreen) fetch() tea.Cmd {
	if r.sel >= len(r.rows) {
		return nil
	}
	ref, err := discovery.ParseReference(r.image)
	if err != nil {
		return nil
	}
	sh := r.sh
	target := ref.Registry + "/" + ref.Repository + "@" + r.rows[r.sel].ref.Digest
	return r.manifest.start(sh, scrReferrers, func(ctx context.Context, _ func(none)) (discovery.Manifest, error) {
		return discovery.FetchManifest(ctx, target, sh.discoveryOpts()...)
	})
}

func (r *referrersScreen) Update(msg tea.Msg) (screen, tea.Cmd) {
	switch msg := msg.(type) {
	case eventMsg[discovery.Event]:
		if !r.job.event(msg) {
			// Not the tree's discovery: perhaps the comparison's.
			r.cmp.event(msg)
			return r, nil
		}
		switch ev := msg.ev; ev.Kind {
		case discovery.EventReferrerFound:
			if ev.Referrer != nil {
				r.found = append(r.found, *ev.Referrer)
			}
		case discovery.EventExchange:
			r.exchanges++
		}
		r.refresh()
	case doneMsg[discovery.Result]:
		if r.job.done(msg, false) {
			r.refresh()
		}
	case doneMsg[discovery.Manifest]:
		if r.manifest.done(msg, false) {
			r.refresh()
		}
	case doneMsg[mirror.CompareResult]:
		r.cmp.done(msg)
	case compareMsg:
		return r, r.compare(false)
	case doneMsg[discovery.Catalog]:
		r.cat.update(msg)
	case targetsChangedMsg:
		r.cat.close()
		r.job.reset()
		r.manifest.reset()
		r.cmp.job.reset()
		r.image, r.started, r.open = r.sh.opts.Image, false, -1
		if r.comparing {
			// The comparison follows the new targets when it is shown.
			r.started = true
			return r, tea.Batch(r.discover(), r.compare(true))
		}
		r.refresh()
	case styleChangedMsg:
		r.cat.restyle()
		r.refresh()
		r.cmp.refresh()
	case tea.KeyPressMsg:
		k := r.sh.keys
		if r.cat.open {
			picked, cmd := r.cat.update(msg)
			if picked != "" {
				image, note := imageIn(picked, r.image)
				r.image = image
				return r, tea.Batch(r.discover(), flash(note))
			}
			return r, cmd
		}
		if r.comparing {
			return r, r.compareKey(msg)
		}
		switch {
		case key.Matches(msg, k.CompareSource):
			if r.sh.opts.Source == "" {
				return r, flash("no source to compare with: give one on the Start screen (1, then e)")
			}
			return r, r.compare(false)
		case key.Matches(msg, k.Reload):
			return r, r.discover()
		case key.Matches(msg, k.Repositories):
			host, _, _ := strings.Cut(r.image, "/")
			if host == "" {
				if hosts := r.sh.registryHosts(); len(hosts) > 0 {
					host = hosts[0]
				}
			}
			if host == "" {
				return r, flash("no registry to list: set one on the Start screen (1, then e)")
			}
			return r, r.cat.show(host)
		case key.Matches(msg, k.NextRegistry), key.Matches(msg, k.PrevRegistry):
			step := 1
			if key.Matches(msg, k.PrevRegistry) {
				step = -1
			}
			if next := nextHost(r.sh.registryHosts(), r.image, step); next != "" {
				r.image = r.sh.imageOn(next, r.image)
				return r, r.discover()
			}
			return r, nil
		case r.open < 0 && key.Matches(msg, k.Up):
			r.selectRow(r.sel - 1)
			return r, nil
		case r.open < 0 && key.Matches(msg, k.Down):
			r.selectRow(r.sel + 1)
			return r, nil
		case r.open < 0 && key.Matches(msg, k.Open):
			return r, r.openRow(r.sel)
		}
		return r, r.pane.update(msg)
	case tea.MouseMsg:
		if r.comparing {
			return r, r.cmp.pane.update(msg)
		}
		return r, r.pane.update(msg)
	}
	return r, nil
}

// openRow shows a referrer in full and fetches its manifest.
func (r *referrersScreen) openRow(i int) tea.Cmd {
	if i < 0 || i >= len(r.rows) {
		return nil
	}
	r.sel, r.open, r.listOff = i, i, r.pane.offset()
	cmd := r.fetch()
	r.refresh()
	r.pane.top()
	return cmd
}

// selectable is the number of places the cursor goes: the referrers,
// then the findings.
func (r *referrersScreen) selectable() int { return len(r.rows) + len(r.findings) }

func (r *referrersScreen) selectRow(i int) {
	if r.selectable() == 0 {
		return
	}
	r.sel = clamp(i, 0, r.selectable()-1)
	r.refresh()
	r.follow()
}

// follow scrolls the selected row (or the whole selected finding) into
// view.
func (r *referrersScreen) follow() {
	if r.sel < len(r.rowAt) {
		end := r.rowAt[r.sel]
		switch {
		case r.sel >= len(r.rows):
			end += r.findLen[r.sel-len(r.rows)] - 1
		case r.sel+1 < len(r.rowAt) && r.rowAt[r.sel+1]-1 < end+2:
			end = r.rowAt[r.sel+1] - 1
		}
		r.pane.show(r.rowAt[r.sel], end)
	}
}

// click selects the referrer or finding under the mouse; a click on the
// selected referrer opens it. In the comparison it selects the row.
func (r *referrersScreen) click(_, y int) tea.Cmd {
	if r.cat.open {
		return nil
	}
	if r.comparing {
		r.cmp.click(y)
		return nil
	}
	if r.open >= 0 || y < 1 {
		return nil
	}
	line := r.pane.offset() + y - 1
	for i := len(r.rowAt) - 1; i >= 0; i-- {
		if line >= r.rowAt[i] {
			if i == r.sel {
				return r.openRow(i)
			}
			r.selectRow(i)
			return nil
		}
	}
	return nil
}

func (r *referrersScreen) selectedDigest() string {
	switch {
	case r.cat.open:
		return ""
	case r.comparing:
		return r.cmp.selectedDigest()
	case r.sel < len(r.rows):
		return r.rows[r.sel].ref.Digest
	}
	return ""
}

// selectedFix is the selected finding's fix (or the comparison's row's),
// with its commands runnable as shown.
func (r *referrersScreen) selectedFix() (string, string) {
	switch {
	case r.cat.open:
		return "", "nothing to fix in the repository list"
	case r.comparing:
		return r.cmp.selectedFix()
	case r.open >= 0:
		return "", "a referrer has no fix of its own: esc, then ↓ past the referrers to a finding"
	case len(r.findings) == 0 && r.job.running():
		return "", "no fix yet: discovery is still running"
	case len(r.findings) == 0:
		return "", "no findings here, so no fix to copy"
	case r.sel < len(r.rows):
		return "", "a referrer has no fix of its own: ↓ past the referrers selects a finding"
	}
	f := r.findings[r.sel-len(r.rows)]
	if f.Remedy == "" || strings.HasPrefix(f.Remedy, "Nothing to fix") {
		return "", "nothing to fix for " + string(f.Code)
	}
	return f.Remedy, ""
}

// back closes the referrer shown in full (back on its row), else stops
// the discovery.
func (r *referrersScreen) back() (bool, tea.Cmd) {
	if r.cat.open {
		if !r.cat.clearFilter() {
			r.cat.close()
		}
		return true, nil
	}
	if r.comparing {
		if r.cmp.job.stop() {
			r.cmp.refresh()
			return true, flash("comparison stopped")
		}
		r.comparing = false
		r.refresh()
		return true, nil
	}
	if r.open >= 0 {
		r.open = -1
		r.manifest.stop()
		r.refresh()
		r.pane.vp.SetYOffset(r.listOff)
		r.follow()
		return true, nil
	}
	if !r.job.stop() {
		return false, nil
	}
	r.refresh()
	return true, flash("discovery stopped")
}

func (r *referrersScreen) stop() {
	r.cat.close()
	r.job.stop()
	r.manifest.stop()
	r.cmp.job.stop()
}

func (r *referrersScreen) help() bindings {
	k := r.sh.keys
	if r.cat.open {
		return r.cat.help()
	}
	if r.comparing {
		// ↑/↓ go without saying (as on the tree); c is what the rows are
		// for, so it comes first.
		return bindings{
			short: []key.Binding{k.CopyFix, k.CompareSource, k.Reload, k.CopyDigest, k.Back},
			full:  [][]key.Binding{{k.Up, k.Down, k.PageUp, k.PageDown, k.Top, k.Bottom}, {k.CopyFix, k.CompareSource, k.Reload, k.CopyDigest, k.SaveJSON, k.Back}},
		}
	}
	if r.open >= 0 {
		return bindings{short: []key.Binding{k.PageDown, k.PageUp, k.Back}, full: [][]key.Binding{{k.PageUp, k.PageDown, k.Top, k.Bottom}, {k.Back}}}
	}
	// c shows where there are findings to copy a fix from, first while
	// one is selected (enter and y are for referrers); [ and ] share one
	// entry so that l still fits at 120 columns.
	source := r.sh.opts.Source != ""
	var short []key.Binding
	if r.sel >= len(r.rows) && len(r.findings) > 0 {
		short = []key.Binding{k.CopyFix}
		if source {
			short = append(short, k.CompareSource)
		}
	} else {
		short = []key.Binding{k.OpenReferrer}
		if source {
			short = append(short, k.CompareSource)
		}
		short = append(short, k.CopyDigest)
		if len(r.findings) > 0 {
			short = append(short, k.CopyFix)
		}
	}
	short = append(short, k.PickRegistry, k.Repositories, k.Reload, k.SaveJSON)
	keys := []key.Binding{k.CopyDigest, k.CopyFix, k.Reload, k.PrevRegistry, k.NextRegistry, k.Repositories, k.SaveJSON, k.Back}
	if source {
		keys = append([]key.Binding{k.CompareSource}, keys...)
	}
	return bindings{
		short: short,
		full:  [][]key.Binding{{k.Up, k.Down, k.OpenReferrer, k.PageUp, k.PageDown, k.Top, k.Bottom}, keys},
	}
}

func (r *referrersScreen) View() string {
	if r.cat.open {
		return r.cat.view()
	}
	if r.comparing {
		return r.cmp.view()
	}
	// The position counts referrers, or findings once the cursor is on
	// them.
	pos := r.pane.position()
	item := ""
	switch {
	case r.open >= 0:
	case r.sel >= len(r.rows) && len(r.findings) > 0:
		item = "finding " + position(r.sel-len(r.rows), len(r.findings))
	case len(r.rows) > 0:
		item = position(r.sel, len(r.rows))
	}
	if item != "" && pos != "" {
		pos = item + " · " + pos
	} else if item != "" {
		pos = item
	}
	return rightAlign(r.headline(), r.sh.st.Label.Render(pos), r.w) + "\n" + r.pane.view()
}

func (r *referrersScreen) headline() string {
	st := r.sh.st
	if r.image == "" {
		return st.Header.Render("no image")
	}
	host, _, _ := strings.Cut(r.image, "/")
	head := st.Header.Render(r.sh.name(host)) + " "
	switch r.job.state {
	case jobRunning:
		return head + st.paint(toneRun, r.sh.frame+" discovering: "+strconv.Itoa(len(r.found))+" found, "+human.Count(r.exchanges, "request"))
	case jobDone:
		return head + human.Count(r.job.res.Count(), "referrer") + " · " + st.word(string(r.job.res.Outcome))
	case jobFailed, jobStopped:
		return head + st.word(r.job.state.String())
	}
	return head
}

// flatten lists the referrers in the order the tree shows them, each
// with the chain of subjects above it.
func (r *referrersScreen) flatten(res *discovery.Result) {
	r.rows = r.rows[:0]
	var walk func(rs []discovery.Referrer, chain []chainLink)
	walk = func(rs []discovery.Referrer, chain []chainLink) {
		for _, ref := range rs {
			r.rows = append(r.rows, refRow{ref: ref, chain: chain})
			if len(ref.Referrers) > 0 {
				walk(ref.Referrers, append(append([]chainLink{}, chain...), chainLink{what: string(ref.Category), digest: ref.Digest}))
			}
		}
	}
	if res == nil {
		walk(r.found, []chainLink{{what: "image"}})
		return
	}
	image := []chainLink{{what: "image " + res.Subject.MediaType, digest: res.Subject.Digest}}
	walk(res.Referrers, image)
	for _, p := range res.Platforms {
		walk(p.Referrers, append(append([]chainLink{}, image...), chainLink{what: "platform " + p.Platform, digest: p.Digest}))
	}
}

// refresh rebuilds the pane's text from the data (in Update, never in
// View).
func (r *referrersScreen) refresh() {
	if r.open >= 0 && r.open < len(r.rows) {
		r.pane.setLines(r.detailLines(r.rows[r.open]))
		return
	}
	r.open = -1
	st, w := r.sh.st, r.pane.width()
	var lines []string
	add := func(s ...string) { lines = append(lines, s...) }
	r.rowAt = r.rowAt[:0]
	if r.image == "" {
		r.rows, r.findings = nil, nil
		r.pane.setContent("No image to look at.\n\nSet one on the Start screen (1, then e): HOST/REPO:TAG or HOST/REPO@DIGEST,\nor press l to pick a repository from the registry's catalog (tag latest).")
		return
	}
	res := r.job.res
	r.flatten(res)
	r.findings, r.findLen = nil, r.findLen[:0]
	if res != nil {
		r.findings = r.sh.namedFindings(res.Findings)
	}
	r.sel = clamp(r.sel, 0, r.selectable()-1)
	row := 0
	incomplete := res != nil && res.Outcome == finding.OutcomeIncomplete
	tree := func(rs []discovery.Referrer) {
		var out []string
		out, row = referrerTree(st, rs, w, row, r.sel, len(lines), &r.rowAt, incomplete)
		add(out...)
	}
	add(wrapHardIndent(st.Label.Render("image    "), r.image, w)...)
	switch {
	case res != nil:
		if res.Subject.Digest != "" {
			add(wrapHardIndent(st.Label.Render("digest   "), res.Subject.Digest, w)...)
			add(trunc(st.Label.Render("type     ")+res.Subject.MediaType, w))
		}
		if res.Method != "" {
			how := map[discovery.Method]string{discovery.MethodAPI: "referrers API", discovery.MethodTags: "referrers tag schema"}[res.Method]
			add(trunc(st.Label.Render("method   ")+string(res.Method)+" ("+how+"), "+human.Count(res.Requests, "request"), w))
		}
		add("", st.Header.Render(fmt.Sprintf("REFERRERS (%d)", len(res.Referrers)))+st.Label.Render("  ↑/↓ select · enter shows the manifest"))
		tree(res.Referrers)
		for _, p := range res.Platforms {
			add("", st.Header.Render(fmt.Sprintf("PLATFORM %s %s (%d)", p.Platform, discovery.ShortDigest(p.Digest), len(p.Referrers))))
			tree(p.Referrers)
		}
		add("", st.Label.Render("sources: api = referrers API · tag-index = sha256-<hex> index tag ·"),
			st.Label.Render("cosign-tag = .sig/.att/.sbom tag · index-attestation = inside the index"))
		if len(r.findings) > 0 {
			add("", st.Header.Render(fmt.Sprintf("FINDINGS (%d)", len(r.findings)))+st.Label.Render(findingsHint))
			for i, f := range r.findings {
				fl := findingRow(st, f, len(r.rows)+i == r.sel, w)
				r.rowAt = append(r.rowAt, len(lines))
				r.findLen = append(r.findLen, len(fl))
				add(fl...)
			}
		}
		if res.Outcome == finding.OutcomeIncomplete {
			add("", st.word("incomplete")+": the list above is not the whole answer (see findings).")
		}
	case r.job.state == jobFailed:
		add("", st.word("error")+" "+r.job.err)
	default:
		if len(r.found) > 0 {
			add("", st.Header.Render(fmt.Sprintf("FOUND SO FAR (%d)", len(r.found))))
			tree(r.found)
		}
		if r.job.state == jobStopped {
			add("", "stopped; r discovers again")
		}
	}
	r.pane.setLines(lines)
}

// detailLines show one referrer in full: what it is, the chain of
// subjects it hangs from, its annotations, and its manifest as the
// registry serves it.
func (r *referrersScreen) detailLines(row refRow) []string {
	st, w := r.sh.st, r.pane.width()
	ref := row.ref
	var lines []string
	add := func(s ...string) { lines = append(lines, s...) }
	add(trunc(st.Title.Render(string(ref.Category))+"  "+ref.ArtifactType, w))
	add(st.Label.Render("esc returns to the list · y copies the digest"), "")
	add(wrapHardIndent(st.Label.Render("digest     "), ref.Digest, w)...)
	add(wrapHardIndent(st.Label.Render("media type "), ref.MediaType, w)...)
	add(trunc(st.Label.Render("size       ")+human.Size(ref.Size)+" ("+human.Count64(ref.Size, "byte")+")", w))
	found := string(ref.Source)
	if ref.Tag != "" {
		found += " (tag " + ref.Tag + ")"
	}
	add(wrapIndent(st.Label.Render("found by   "), found, w)...)

	add("", st.Header.Render("SUBJECT CHAIN")+st.Label.Render("  the image down to this referrer"))
	for i, c := range row.chain {
		lead := strings.Repeat("  ", i) + "└ "
		if i == 0 {
			lead = ""
		}
		what := c.what
		if i == 0 {
			what = "image " + r.image
		}
		add(wrapIndent("  "+lead, what, w)...)
		if c.digest != "" {
			add(wrapHardIndent("  "+strings.Repeat("  ", i+1)+"  ", c.digest, w)...)
		}
	}
	add(wrapIndent("  "+strings.Repeat("  ", len(row.chain))+"└ ", "this "+string(ref.Category)+", subject "+discovery.ShortDigest(ref.Subject), w)...)
	add(wrapHardIndent("  "+strings.Repeat("  ", len(row.chain)+1)+"  ", ref.Digest, w)...)

	add("", st.Header.Render(fmt.Sprintf("ANNOTATIONS (%d)", len(ref.Annotations))))
	if len(ref.Annotations) == 0 {
		add("  none")
	}
	keys := make([]string, 0, len(ref.Annotations))
	for k := range ref.Annotations {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		add(wrapHardIndent("  "+k+": ", ref.Annotations[k], w)...)
	}

	add("", st.Header.Render("MANIFEST")+st.Label.Render("  as the registry serves it"))
	switch m := r.manifest; {
	case m.running():
		add("  " + st.paint(toneRun, r.sh.frame+" fetching"))
	case m.state == jobFailed:
		add(wrapIndent("  "+st.word("error")+" ", m.err, w)...)
	case m.res != nil:
		if m.res.Digest != ref.Digest {
			add(wrapIndent("  "+st.word("warn")+" ", "the registry serves "+m.res.Digest+" for this digest", w)...)
		}
		add(jsonLines(m.res.Raw, w)...)
	}
	return lines
}

// jsonLines shows a JSON document indented, hard-wrapped to w.
func jsonLines(raw []byte, w int) []string {
	var buf bytes.Buffer
	text := string(raw)
	if json.Indent(&buf, raw, "", "  ") == nil {
		text = buf.String()
	}
	var out []string
	for _, l := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
		out = append(out, wrapHardIndent("  ", l, w)...)
	}
	return out
}

// referrerTree draws referrers as a tree with fixed columns that fit w:
// category, artifact type, size, how it was found; the digest follows on
// the same line when there is room and on the next one when not (it is
// never dropped). Row numbering starts at first; sel is marked, and the
// line of each row (offset by base) is appended to at. An empty list says
// "none" only when the read was complete.
func referrerTree(st styles, rs []discovery.Referrer, w, first, sel, base int, at *[]int, incomplete bool) ([]string, int) {
	if len(rs) == 0 {
		if incomplete {
			return []string{"  (none read: the lookup did not complete)"}, first
		}
		return []string{"  (none)"}, first
	}
	var out []string
	row := first
	var walk func(rs []discovery.Referrer, indent string)
	walk = func(rs []discovery.Referrer, indent string) {
		for i, ref := range rs {
			branch, next := "├── ", "│   "
			if i == len(rs)-1 {
				branch, next = "└── ", "    "
			}
			mark := "  "
			if row == sel {
				mark = st.Cursor.Render("› ")
			}
			prefix := indent + branch
			digestInline := w >= 100
			fixed := 2 + len([]rune(prefix)) + 12 + 7 + 18
			if digestInline {
				fixed += 20
			}
			typeW := max(8, w-fixed)
			line := prefix + pad(string(ref.Category), 11, false) + " " + pad(trunc(ref.ArtifactType, typeW), typeW, false) + " "
			if digestInline {
				line += pad(discovery.ShortDigest(ref.Digest), 19, false) + " "
			}
			line += pad(human.Size(ref.Size), 6, true) + " " + st.paint(toneAccent, string(ref.Source))
			if row == sel {
				line = st.Selected.Render(line)
			}
			*at = append(*at, base+len(out))
			out = append(out, mark+trunc(line, w-2))
			if !digestInline {
				out = append(out, trunc("  "+indent+next+"  "+st.Label.Render(discovery.ShortDigest(ref.Digest)), w))
			}
			row++
			walk(ref.Referrers, indent+next)
		}
	}
	walk(rs, "")
	return out, row
}

// referrerTreeLines is the tree without a selection (the runbook's
// discovery result).
func referrerTreeLines(st styles, rs []discovery.Referrer, w int, incomplete bool) []string {
	var at []int
	out, _ := referrerTree(st, rs, w, 0, -1, 0, &at, incomplete)
	return out
}

// imageIn is the image to look at in a picked repository (HOST/REPO):
// the current image's tag or digest there, else its latest tag, and a
// note saying which.
func imageIn(repo, cur string) (image, note string) {
	if r, err := discovery.ParseReference(cur); err == nil {
		if r.Digest != "" {
			return repo + "@" + r.Digest, "looking for " + discovery.ShortDigest(r.Digest) + " in " + repo
		}
		return repo + ":" + r.Tag, "looking at tag " + r.Tag + " in " + repo
	}
	return repo + ":latest", "looking at tag latest in " + repo + "; set another image on the Start screen (e)"
}
