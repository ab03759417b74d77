package ui

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	tea "charm.land/bubbletea/v2"

	"github.com/refdoctor/refdoctor/discovery"
	"github.com/refdoctor/refdoctor/finding"
	"github.com/refdoctor/refdoctor/internal/human"
	"github.com/refdoctor/refdoctor/mirror"
)

// The comparison is a mode of the Referrers screen: the image (a mirror's
// copy) against the source it was copied from, side by side, one line per
// referrer. Missing ones stand out, and the selected line's cause and fix
// are under the list. It runs when the operator gives a source (the Start
// screen's form, or --source) and presses s, or from the runbook's
// "no referrers" and "partial referrers" steps.

// compareMsg asks the Referrers screen to show the comparison (from the
// runbook walkthrough).
type compareMsg struct{}

// cmpRow is one line of the comparison: a referrer at one side or both.
type cmpRow struct {
	subject mirror.SubjectCompare
	state   string // both, missing, extra, rewritten, unknown
	ref     mirror.CompareReferrer
	missing *mirror.MissingReferrer
	// dest is the destination's digest of a rewritten referrer.
	dest string
	// seenAt is, for an unknown referrer, the side it was read at.
	seenAt string
}

// compareView is the comparison's state inside the Referrers screen.
type compareView struct {
	sh     *shared
	source string
	image  string
	job    job[discovery.Event, mirror.CompareResult]
	events int
	rows   []cmpRow
	// findings are the comparison's findings no row tells (under the
	// table); the cursor moves on from the last row to them, and c copies
	// the selected one's fix.
	findings []finding.Finding
	findLen  []int
	// rowAt is the first line of each row, then of each finding.
	rowAt []int
	sel   int
	pane  pane
	w, h  int
}

func newCompareView(sh *shared) *compareView {
	return &compareView{sh: sh, pane: newPane(sh)}
}

// detailHeight is the lines under the list for the selected row.
const compareDetailHeight = 7

func (c *compareView) setSize(w, h int) {
	c.w, c.h = w, h
	c.pane.setSize(w, max(1, h-1-compareDetailHeight))
	c.refresh()
	c.follow()
}

// follow scrolls the selected row (or the whole selected finding) into
// view.
func (c *compareView) follow() {
	if c.sel < len(c.rowAt) {
		end := c.rowAt[c.sel]
		if i := c.sel - len(c.rows); i >= 0 && i < len(c.findLen) {
			end += c.findLen[i] - 1
		}
		c.pane.show(c.rowAt[c.sel], end)
	}
}

// start compares the session's source and image.
func (c *compareView) start() tea.Cmd {
	c.source, c.image = c.sh.opts.Source, c.sh.opts.Image
	c.rows, c.sel, c.events = nil, 0, 0
	if c.source == "" || c.image == "" {
		c.job.reset()
		c.refresh()
		return nil
	}
	sh, src, img := c.sh, c.source, c.image
	cmd := c.job.start(sh, scrReferrers, func(ctx context.Context, emit func(discovery.Event)) (mirror.CompareResult, error) {
		env := mirror.Env{Config: sh.opts.Config, Client: sh.clientOpts(), Log: sh.log,
			Discovery: append(sh.discoveryOpts(), discovery.WithEvents(emit))}
		rep, err := mirror.Compare(ctx, env, []mirror.Pair{{Source: src, Destination: img}}, mirror.CompareWithPlatforms(true))
		if err != nil {
			return mirror.CompareResult{}, err
		}
		return rep.Results[0], nil
	})
	c.refresh()
	return cmd
}

func (c *compareView) event(msg eventMsg[discovery.Event]) {
	if c.job.event(msg) {
		c.events++
		c.refresh()
	}
}

func (c *compareView) done(msg doneMsg[mirror.CompareResult]) {
	if c.job.done(msg, false) {
		c.refresh()
	}
}

func (c *compareView) selectRow(i int) {
	if len(c.rows)+len(c.findings) == 0 {
		return
	}
	c.sel = clamp(i, 0, len(c.rows)+len(c.findings)-1)
	c.refresh()
	c.follow()
}

func (c *compareView) selectedDigest() string {
	if c.sel < len(c.rows) {
		return c.rows[c.sel].ref.Digest
	}
	return ""
}

// rowFix is the fix the row's detail shows ("" for a row with none),
// and what c copies.
func (c *compareView) rowFix(r cmpRow) string {
	switch r.state {
	case "missing":
		return c.sh.runnable(r.missing.Fix)
	case "rewritten":
		return finding.ReferrerRewritten.Remedy()
	case "unknown":
		return finding.CompareIncomplete.Remedy()
	}
	return ""
}

// selectedFix is the selected row's fix, or why it has none.
func (c *compareView) selectedFix() (string, string) {
	if i := c.sel - len(c.rows); i >= 0 && i < len(c.findings) {
		f := c.findings[i]
		if f.Remedy == "" || strings.HasPrefix(f.Remedy, "Nothing to fix") {
			return "", "nothing to fix for " + string(f.Code)
		}
		return f.Remedy, ""
	}
	if c.sel >= len(c.rows) {
		if c.job.running() {
			return "", "no fix yet: the comparison is still reading"
		}
		return "", "no row selected: nothing to copy"
	}
	r := c.rows[c.sel]
	if fix := c.rowFix(r); fix != "" {
		return fix, ""
	}
	if r.state == "extra" {
		return "", "no fix for this row: only at the destination, nothing to fix unless the mirror should be an exact copy"
	}
	return "", "no fix for this row: the referrer is at both sides"
}

// click selects the row under the mouse (y counts from the headline).
func (c *compareView) click(y int) {
	if y < 1 || y > c.pane.vp.Height() {
		return
	}
	line := c.pane.offset() + y - 1
	for i, at := range c.rowAt {
		end := at
		if f := i - len(c.rows); f >= 0 && f < len(c.findLen) {
			end += c.findLen[f] - 1
		}
		if line >= at && line <= end {
			c.selectRow(i)
			return
		}
	}
}

// flatten lists the rows subject by subject: missing first (what the
// operator came for), then rewritten, extra and at both.
func (c *compareView) flatten(res *mirror.CompareResult) {
	c.rows = c.rows[:0]
	if res == nil {
		return
	}
	for _, s := range res.Subjects {
		for i := range s.Missing {
			c.rows = append(c.rows, cmpRow{subject: s, state: "missing", ref: s.Missing[i].CompareReferrer, missing: &s.Missing[i]})
		}
		for _, x := range s.Rewritten {
			c.rows = append(c.rows, cmpRow{subject: s, state: "rewritten", ref: x.CompareReferrer, dest: x.DestinationDigest})
		}
		for _, x := range s.Extra {
			c.rows = append(c.rows, cmpRow{subject: s, state: "extra", ref: x})
		}
		for _, x := range s.Unknown {
			c.rows = append(c.rows, cmpRow{subject: s, state: "unknown", ref: x.CompareReferrer, seenAt: x.SeenAt})
		}
		for _, x := range s.Both {
			c.rows = append(c.rows, cmpRow{subject: s, state: "both", ref: x})
		}
	}
}

func (c *compareView) headline() string {
	st := c.sh.st
	head := st.Header.Render("compare") + " "
	switch c.job.state {
	case jobRunning:
		return head + st.paint(toneRun, c.sh.frame+" reading both sides: "+human.Count(c.events, "event"))
	case jobDone:
		r := c.job.res
		word := map[finding.Outcome]string{finding.OutcomeOK: "ok", finding.OutcomeWarn: "warn", finding.OutcomeFailed: "fail", finding.OutcomeIncomplete: "incomplete"}[r.Outcome]
		if !r.Complete {
			return head + fmt.Sprintf("%d both · %d could not tell · ", r.BothCount, r.Unknown) + st.word("incomplete")
		}
		parts := []string{fmt.Sprintf("%d both", r.BothCount)}
		if r.Missing > 0 {
			parts = append(parts, st.paint(toneFail, strconv.Itoa(r.Missing)+" missing"))
		}
		if r.Rewritten > 0 {
			parts = append(parts, st.paint(toneFail, strconv.Itoa(r.Rewritten)+" rewritten"))
		}
		if r.Extra > 0 {
			parts = append(parts, st.paint(toneWarn, strconv.Itoa(r.Extra)+" extra"))
		}
		return head + strings.Join(parts, " · ") + " · " + st.word(word)
	case jobFailed, jobStopped:
		return head + st.word(c.job.state.String())
	}
	return head
}

// stateWord is how a row's state reads, in the tone it carries.
func (c *compareView) stateWord(state string) string {
	st := c.sh.st
	switch state {
	case "missing":
		return st.paint(toneFail, "MISSING")
	case "rewritten":
		return st.paint(toneFail, "REWRITTEN")
	case "extra":
		return st.paint(toneWarn, "extra")
	case "unknown":
		return st.paint(toneWarn, "unknown")
	}
	return st.paint(toneOK, "both")
}

// refresh rebuilds the pane (in Update, never in View).
func (c *compareView) refresh() {
	st, w := c.sh.st, c.pane.width()
	var lines []string
	add := func(s ...string) { lines = append(lines, s...) }
	c.rowAt = c.rowAt[:0]
	c.findings, c.findLen = nil, c.findLen[:0]
	switch {
	case c.sh.opts.Source == "":
		c.rows = nil
		c.pane.setContent("No source to compare with.\n\nGive the image this one was copied from on the Start screen (1, then e:\nSource), or start with --source HOST/REPO:TAG. Then s compares the two.")
		return
	case c.sh.opts.Image == "":
		c.rows = nil
		c.pane.setContent("No image: give the mirror's copy as Image on the Start screen (1, then e).")
		return
	}
	res := c.job.res
	c.flatten(res)
	if res != nil {
		var rest []finding.Finding
		for _, f := range res.Findings {
			if !perRow[f.Code] {
				rest = append(rest, f)
			}
		}
		c.findings = c.sh.namedFindings(rest)
	}
	c.sel = clamp(c.sel, 0, len(c.rows)+len(c.findings)-1)
	// Each side: what was looked up, then (once read) its digest and how
	// its referrers were found.
	side := func(label, ref string, s *mirror.CompareSide) {
		add(wrapHardIndent(st.Label.Render(label), c.sh.displayRef(ref), w)...)
		if s == nil {
			return
		}
		how := map[discovery.Method]string{discovery.MethodAPI: "referrers API", discovery.MethodTags: "tag schema (no referrers API)"}[s.Method]
		text := discovery.ShortDigest(s.Digest) + " · " + how
		switch {
		case s.Complete && !s.Found:
			text = "the image is not there (404)"
		case !s.Complete && s.Digest == "":
			text = st.word("incomplete") + " not resolved"
		case !s.Complete:
			text = st.word("incomplete") + " " + text
		}
		if s.ReferrersRepository != "" {
			text += " · and " + s.ReferrersRepository
		}
		add(trunc(strings.Repeat(" ", 12)+text, w))
	}
	var srcSide, dstSide *mirror.CompareSide
	if res != nil {
		srcSide, dstSide = &res.Source, &res.Destination
	}
	side("source      ", c.source, srcSide)
	side("destination ", c.image, dstSide)
	switch {
	case res != nil:
		c.table(&lines, res, w)
		if !res.Complete {
			add("")
			for _, u := range res.Unread {
				add(wrapIndent(st.word("incomplete")+" ", "the "+u.Side+" was not read completely: "+c.sh.names(u.Error)+". Nothing is called missing.", w)...)
			}
		}
		if len(c.findings) > 0 {
			add("", st.Header.Render(fmt.Sprintf("FINDINGS (%d)", len(c.findings)))+st.Label.Render(findingsHint))
			for i, f := range c.findings {
				fl := findingRow(st, f, len(c.rows)+i == c.sel, w)
				c.rowAt = append(c.rowAt, len(lines))
				c.findLen = append(c.findLen, len(fl))
				add(fl...)
			}
		}
	case c.job.state == jobFailed:
		add("", st.word("error")+" "+c.job.err)
	case c.job.state == jobStopped:
		add("", "stopped; r compares again")
	}
	c.pane.setLines(lines)
}

// perRow are the codes each row's detail already tells.
var perRow = map[finding.Code]bool{
	finding.ReferrerMissingAtMirror: true, finding.ImageMissingAtMirror: true, finding.MirrorNoFallbackTag: true,
	finding.ReferrerSubjectRewritten: true, finding.CosignTagNotCopied: true, finding.ReferrerNotListed: true,
	finding.ReferrerInOtherRepository: true, finding.FallbackIndexMissingEntry: true,
	finding.ReferrerRewritten: true, finding.ReferrerExtraAtMirror: true,
}

// table draws the rows side by side, subject by subject: the state, the
// category, then the source's and the destination's digest with how each
// side found it; the artifact type where there is room.
func (c *compareView) table(lines *[]string, res *mirror.CompareResult, w int) {
	st := c.sh.st
	stateW, catW, digW := 9, 11, 19
	sideW := digW + 1 + 6
	typeW := w - 2 - stateW - catW - 2*sideW - 5
	showType := typeW >= 12
	if !showType {
		typeW = 0
	}
	head := "  " + pad("STATE", stateW, false) + " " + pad("CATEGORY", catW, false) + " "
	if showType {
		head += pad("ARTIFACT TYPE", typeW, false) + " "
	}
	head += pad("SOURCE", sideW, false) + " " + "DESTINATION"
	subject := ""
	for i, r := range c.rows {
		key := r.subject.Subject + "|" + r.subject.Platform + "|" + r.subject.DestinationSubject
		if key != subject {
			subject = key
			what := "image"
			switch {
			case r.subject.Platform != "":
				what = "platform " + r.subject.Platform
			case r.subject.Parent != "":
				what = "referrer of " + discovery.ShortDigest(r.subject.Parent)
			}
			title := "SUBJECT " + discovery.ShortDigest(r.subject.Subject) + " (" + what + ")"
			if r.subject.DestinationSubject != r.subject.Subject {
				dest := "none"
				if !res.Destination.Complete {
					dest = "not read"
				}
				if r.subject.DestinationSubject != "" {
					dest = discovery.ShortDigest(r.subject.DestinationSubject)
				}
				title += " · at the destination " + dest
			}
			*lines = append(*lines, "", trunc(st.Header.Render(title), w), trunc(st.Label.Render(head), w))
		}
		src := pad(discovery.ShortDigest(r.ref.Digest), digW, false) + " " + pad(short(r.ref.Source), 6, false)
		dst := ""
		switch r.state {
		case "both":
			dst = discovery.ShortDigest(r.ref.Digest) + " " + short(r.ref.DestinationSource)
		case "missing":
			dst = st.paint(toneFail, "— missing")
		case "rewritten":
			dst = discovery.ShortDigest(r.dest) + " " + st.paint(toneFail, "(other)")
		case "extra":
			src = pad("—", sideW, false)
			dst = discovery.ShortDigest(r.ref.Digest) + " " + short(r.ref.Source)
		case "unknown":
			dst = st.paint(toneWarn, "could not tell")
			if r.seenAt == "destination" {
				src = pad(st.paint(toneWarn, "could not tell"), sideW, false)
				dst = discovery.ShortDigest(r.ref.Digest) + " " + short(r.ref.Source)
			}
		}
		line := pad(c.stateWord(r.state), stateW, false) + " " + pad(trunc(string(r.ref.Category), catW), catW, false) + " "
		if showType {
			line += pad(trunc(r.ref.ArtifactType, typeW), typeW, false) + " "
		}
		line += src + " " + dst
		mark := "  "
		if i == c.sel {
			mark = st.Cursor.Render("› ")
			line = st.Selected.Render(line)
		}
		c.rowAt = append(c.rowAt, len(*lines))
		*lines = append(*lines, trunc(mark+line, w))
	}
	if len(c.rows) == 0 && res.Complete {
		*lines = append(*lines, "", "  no referrers at either side")
	}
}

// short is a source's name as the list shows it.
func short(s discovery.Source) string {
	switch s {
	case discovery.SourceTagIndex:
		return "tagidx"
	case discovery.SourceCosignTag:
		return "cosign"
	case discovery.SourceIndexAttestation:
		return "in-idx"
	}
	return string(s)
}

// detail is the selected row's cause and fix, under the list.
func (c *compareView) detail() []string {
	st, w := c.sh.st, c.w
	if i := c.sel - len(c.rows); i >= 0 && i < len(c.findings) {
		// A finding is in full above; its fix stays in view here.
		f := c.findings[i]
		out := []string{trunc(st.Header.Render("finding "+position(i, len(c.findings)))+"  "+st.word(string(f.Severity))+" "+string(f.Code), w)}
		if f.Remedy != "" {
			out = append(out, wrapIndent("fix: ", f.Remedy, w)...)
		}
		if len(out) > compareDetailHeight {
			out = out[:compareDetailHeight]
		}
		return out
	}
	if c.sel >= len(c.rows) {
		return nil
	}
	r := c.rows[c.sel]
	// The header names the cause's code, so that the cause and fix below
	// keep every line they need on a small terminal.
	head := st.Header.Render(string(r.ref.Category)+" "+discovery.ShortDigest(r.ref.Digest)) + "  "
	if r.state == "missing" {
		head += st.paint(toneFail, string(r.missing.CauseCode)) + "  "
	}
	out := []string{trunc(head+st.Label.Render(r.ref.ArtifactType), w)}
	switch r.state {
	case "missing":
		m := r.missing
		out = append(out, wrapIndent(st.word("fail")+" cause: ", c.sh.names(m.Cause), w)...)
		out = append(out, wrapIndent("     fix:   ", c.rowFix(r), w)...)
	case "rewritten":
		out = append(out, wrapIndent("cause: ", "the destination holds "+r.dest+" of the same artifact type on this subject: re-signed, re-generated or converted by the copy; verification against the source's digest fails.", w)...)
		out = append(out, wrapIndent("fix:   ", c.rowFix(r), w)...)
	case "extra":
		out = append(out, wrapIndent("", "Only at the destination: attached at the mirror, or deleted at the source since the copy.", w)...)
	case "unknown":
		other := "destination"
		if r.seenAt == "destination" {
			other = "source"
		}
		why := "it was not read completely"
		for _, u := range c.job.res.Unread {
			if u.Side == other {
				why = c.sh.names(u.Error)
			}
		}
		out = append(out, wrapIndent(st.word("incomplete")+" ", "could not tell whether the "+other+" holds it: "+why+". Nothing is called missing.", w)...)
		out = append(out, wrapIndent("     fix:   ", c.rowFix(r)+" r compares again.", w)...)
	default:
		found := "found by " + string(r.ref.Source) + " at the source, " + string(r.ref.DestinationSource) + " at the destination"
		if r.ref.Repository != "" {
			found += " (source: in " + r.ref.Repository + ")"
		}
		out = append(out, wrapIndent(st.word("ok")+" ", found, w)...)
	}
	if len(out) > compareDetailHeight {
		out = out[:compareDetailHeight]
	}
	return out
}

func (c *compareView) view() string {
	pos := ""
	switch {
	case c.sel >= len(c.rows) && len(c.findings) > 0:
		pos = "finding " + position(c.sel-len(c.rows), len(c.findings))
	case len(c.rows) > 0:
		pos = position(c.sel, len(c.rows))
	}
	if p := c.pane.position(); p != "" {
		if pos != "" {
			pos += " · "
		}
		pos += p
	}
	body := rightAlign(c.headline(), c.sh.st.Label.Render(pos), c.w) + "\n" + c.pane.view()
	return body + "\n" + clipBlock(strings.Join(c.detail(), "\n"), c.w, compareDetailHeight)
}

// compareLines is the runbook step's comparison in short: per subject
// its counts, and each missing or rewritten referrer with its cause code
// (s shows them side by side with cause and fix).
func compareLines(sh *shared, r *mirror.CompareResult, width int) []string {
	st := sh.st
	var out []string
	for _, s := range r.Subjects {
		what := "image"
		switch {
		case s.Platform != "":
			what = s.Platform
		case s.Parent != "":
			what = "referrer of " + discovery.ShortDigest(s.Parent)
		}
		counts := fmt.Sprintf("%d both", len(s.Both))
		if r.Complete {
			counts += fmt.Sprintf(", %d missing, %d extra, %d rewritten", len(s.Missing), len(s.Extra), len(s.Rewritten))
		} else {
			counts += fmt.Sprintf(", %d could not tell (%s)", len(s.Unknown), st.word("incomplete"))
		}
		out = append(out, trunc("    "+discovery.ShortDigest(s.Subject)+" ("+what+"): "+counts, width))
		for _, m := range s.Missing {
			out = append(out, trunc("      "+st.paint(toneFail, "MISSING")+" "+pad(string(m.Category), 11, false)+" "+discovery.ShortDigest(m.Digest)+"  "+string(m.CauseCode), width))
		}
		for _, x := range s.Rewritten {
			out = append(out, trunc("      "+st.paint(toneFail, "REWRITTEN")+" "+pad(string(x.Category), 11, false)+" "+discovery.ShortDigest(x.Digest)+" -> "+discovery.ShortDigest(x.DestinationDigest), width))
		}
	}
	return out
}
