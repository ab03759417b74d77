package ui

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/progress"
	tea "charm.land/bubbletea/v2"

	"github.com/refdoctor/refdoctor/bundle"
	"github.com/refdoctor/refdoctor/bundle/signing"
	"github.com/refdoctor/refdoctor/discovery"
	"github.com/refdoctor/refdoctor/finding"
	"github.com/refdoctor/refdoctor/internal/human"
)

// bundleScreen verifies a mirror bundle: pick a file (or take the one from
// the options), watch the stream being hashed, then read the result by
// problem code and by subject, each mismatch with expected and actual.
type bundleScreen struct {
	sh      *shared
	path    string
	job     job[bundle.Event, bundle.Report]
	picker  picker
	picking bool
	bar     progress.Model
	read    int64
	total   int64
	checked int64
	member  string
	probs   int
	started bool
	pane    pane
	w, h    int
}

func newBundleScreen(sh *shared) *bundleScreen {
	b := &bundleScreen{sh: sh, path: sh.opts.Bundle, pane: newPane(sh)}
	b.bar = progress.New(progress.WithFillCharacters('█', '░'), progress.WithoutPercentage())
	b.restyle()
	b.picker = newPicker(sh, "")
	return b
}

func (b *bundleScreen) restyle() {
	b.bar.FullColor, b.bar.EmptyColor = b.sh.st.ProgressFull, b.sh.st.ProgressEmpty
}

func (b *bundleScreen) SetSize(w, h int) {
	b.w, b.h = w, h
	b.bar.SetWidth(max(10, min(w-4, 72)))
	b.picker.setSize(w, max(3, h-3))
	b.pane.setSize(w, max(1, h-1))
	b.refresh()
}

func (b *bundleScreen) capturing() bool { return false }

func (b *bundleScreen) activate() tea.Cmd {
	if b.started {
		return nil
	}
	b.started = true
	if b.path != "" {
		return b.validate()
	}
	return b.openPicker()
}

// openPicker lists the bundle's folder, or the working folder.
func (b *bundleScreen) openPicker() tea.Cmd {
	dir := b.sh.opts.workDir
	if b.path != "" {
		dir = filepath.Dir(b.path)
	}
	b.picking = true
	b.picker.setSize(b.w, max(3, b.h-3))
	return b.picker.open(dir)
}

func (b *bundleScreen) validate() tea.Cmd {
	b.picking = false
	if b.path == "" {
		b.job.reset()
		return nil
	}
	path := b.path
	b.read, b.total, b.checked, b.member, b.probs = 0, 0, 0, "", 0
	cmd := b.job.start(b.sh, scrBundle, func(ctx context.Context, emit func(bundle.Event)) (bundle.Report, error) {
		// Member events come by the thousand: pass on at most one every
		// 50ms so the engine never waits for the screen.
		var last time.Time
		// With [bundle] verify_keys, the bundle's signature and the image
		// signatures inside it are verified too.
		keys := b.sh.opts.Config.Bundle.VerifyKeys
		v := signing.NewVerifier()
		if len(keys) > 0 {
			var err error
			if v, err = signing.LoadVerifier(keys...); err != nil {
				return bundle.Report{}, fmt.Errorf("[bundle] verify_keys: %w", err)
			}
		}
		rep, err := signing.ValidateFile(ctx, path, v, v.CanVerify(), bundle.WithCheckReferrers(true), bundle.WithEvents(func(ev bundle.Event) {
			if ev.Kind == bundle.EventMember || ev.Kind == bundle.EventProgress {
				if time.Since(last) < 50*time.Millisecond {
					return
				}
				last = time.Now()
			}
			emit(ev)
		}))
		return rep, err
	})
	b.refresh()
	return cmd
}

func (b *bundleScreen) Update(msg tea.Msg) (screen, tea.Cmd) {
	switch msg := msg.(type) {
	case eventMsg[bundle.Event]:
		if !b.job.event(msg) {
			return b, nil
		}
		ev := msg.ev
		if ev.BytesRead > b.read {
			b.read = ev.BytesRead
		}
		if ev.TotalBytes > 0 {
			b.total = ev.TotalBytes
		}
		if ev.BytesChecked > b.checked {
			b.checked = ev.BytesChecked
		}
		if ev.Path != "" {
			b.member = ev.Path
		}
		if ev.Kind == bundle.EventProblem {
			b.probs++
		}
		return b, nil
	case doneMsg[bundle.Report]:
		if b.job.done(msg, true) {
			b.refresh()
		}
		return b, nil
	case targetsChangedMsg:
		if b.sh.opts.Bundle != b.path {
			b.job.reset()
			b.path, b.started = b.sh.opts.Bundle, false
			b.refresh()
		}
		return b, nil
	case styleChangedMsg:
		b.restyle()
		b.refresh()
		return b, nil
	}
	if dr, ok := msg.(dirReadMsg); ok {
		_, cmd := b.picker.update(dr)
		return b, cmd
	}
	if b.picking {
		path, cmd := b.picker.update(msg)
		if path != "" {
			b.path = path
			return b, b.validate()
		}
		return b, cmd
	}
	if k, ok := msg.(tea.KeyPressMsg); ok {
		keys := b.sh.keys
		switch {
		case key.Matches(k, keys.PickFile):
			return b, b.openPicker()
		case key.Matches(k, keys.Revalidate):
			return b, b.validate()
		}
	}
	switch msg.(type) {
	case tea.KeyPressMsg, tea.MouseMsg:
		return b, b.pane.update(msg)
	}
	return b, nil
}

func (b *bundleScreen) back() (bool, tea.Cmd) {
	switch {
	case b.picking:
		b.picking = false
		return true, nil
	case b.job.stop():
		b.refresh()
		return true, flash("validation stopped")
	}
	return false, nil
}

func (b *bundleScreen) stop() { b.job.stop() }

func (b *bundleScreen) help() bindings {
	k := b.sh.keys
	if b.picking {
		return bindings{
			short: []key.Binding{k.Up, k.Down, k.SelectFile, k.FolderUp, k.Back},
			full:  [][]key.Binding{{k.Up, k.Down, k.PageUp, k.PageDown, k.Top, k.Bottom}, {k.SelectFile, k.FolderUp, k.Back}},
		}
	}
	return bindings{
		short: []key.Binding{k.PickFile, k.Revalidate},
		full:  [][]key.Binding{{k.Up, k.Down, k.PageUp, k.PageDown, k.Top, k.Bottom}, {k.PickFile, k.Revalidate, k.Back}},
	}
}

func (b *bundleScreen) View() string {
	st := b.sh.st
	if b.picking {
		head := st.Header.Render("Pick a bundle") + st.Label.Render("  "+b.picker.dir)
		pos := ""
		if len(b.picker.entries) > b.picker.h {
			pos = st.Label.Render(position(b.picker.cursor, len(b.picker.entries)))
		}
		return rightAlign(head, pos, b.w) + "\n" + st.Label.Render(trunc("enter opens a folder or validates a bundle · backspace goes up · esc closes", b.w)) + "\n\n" + b.picker.view()
	}
	switch b.job.state {
	case jobIdle:
		return "No bundle chosen.\n\nPress o to pick a mirror bundle (.tgz or .tar.zst) from a folder."
	case jobRunning:
		return b.progressView()
	}
	return rightAlign(b.headline(), st.Label.Render(b.pane.position()), b.w) + "\n" + b.pane.view()
}

func (b *bundleScreen) progressView() string {
	st := b.sh.st
	pct := 0.0
	if b.total > 0 {
		pct = float64(b.read) / float64(b.total)
	}
	lines := []string{
		trunc(st.Header.Render("Validating ")+b.path, b.w),
		"",
		st.paint(toneRun, b.sh.frame+" hashing the stream") + "  " + pad(strconv.Itoa(int(pct*100))+"%", 4, true),
		"  " + b.bar.ViewAs(pct),
		"",
		trunc("  read    "+human.Size(b.read)+" of "+human.Size(b.total)+" (compressed)", b.w),
		trunc("  hashed  "+human.Size(b.checked), b.w),
		trunc("  member  "+b.member, b.w),
	}
	if b.probs > 0 {
		lines = append(lines, "  "+st.word("fail")+" "+human.Count(b.probs, "problem")+" so far")
	}
	lines = append(lines, "", st.Label.Render("esc stops"))
	return strings.Join(lines, "\n")
}

func (b *bundleScreen) headline() string {
	st := b.sh.st
	name := filepath.Base(b.path)
	rep := b.job.res
	switch {
	case b.job.state == jobStopped:
		return st.Header.Render(name) + "  " + st.word("skipped") + " stopped; r validates again"
	case rep == nil:
		return st.Header.Render(name)
	case b.job.state == jobFailed:
		return st.Header.Render(name) + "  " + st.word("error") + " not a readable bundle"
	case rep.OK:
		return st.Header.Render(name) + "  " + st.word("ok") + " the bundle is whole"
	}
	return st.Header.Render(name) + "  " + st.word("fail") + " " + human.Count(len(rep.Errors), "problem") + ": do not import"
}

// subjectOf reads the subject digest from a referrers/sha256-<hex>/ path.
func subjectOf(path string) string {
	rest, ok := strings.CutPrefix(path, "referrers/")
	if !ok {
		return ""
	}
	dir, _, _ := strings.Cut(rest, "/")
	alg, hex, ok := strings.Cut(dir, "-")
	if !ok {
		return ""
	}
	return alg + ":" + hex
}

// refresh rebuilds the result text (in Update, never in View).
func (b *bundleScreen) refresh() {
	st, w := b.sh.st, b.pane.width()
	rep := b.job.res
	if rep == nil {
		b.pane.setContent("")
		if b.job.state == jobStopped {
			b.pane.setContent("\n  " + b.path)
		}
		return
	}
	var lines []string
	add := func(s ...string) { lines = append(lines, s...) }
	add(wrapHardIndent(st.Label.Render("file      "), b.path, w)...)
	if b.job.state == jobFailed {
		// The file could not be read as a bundle: say so, and nothing
		// that reads like a check passed.
		add(wrapIndent(st.word("error")+"     ", b.job.err, w)...)
		if rep.FilesChecked > 0 {
			add(wrapIndent(st.word("incomplete")+" ", "reading stopped after "+human.Count(rep.FilesChecked, "file")+"; the rest of the bundle was not checked.", w)...)
		} else {
			add(wrapIndent(st.Label.Render("          "), "nothing in it was checked.", w)...)
		}
		for _, p := range rep.Errors {
			if p.Message == b.job.err || strings.HasSuffix(b.job.err, p.Message) {
				add(trunc(st.Label.Render("code      ")+string(p.Code), w))
				continue
			}
			add(problemLines(st, []bundle.Problem{p}, w)...)
		}
		add("")
		add(wrapIndent("", st.Label.Render("o picks another file · e on the Start screen edits the bundle path · r reads it again"), w)...)
		b.pane.setContent(strings.Join(lines, "\n"))
		return
	}
	summary := human.Count(rep.FilesChecked, "file") + " · " + human.Size(rep.BytesChecked) + " hashed · " + human.Count(rep.ReferrersChecked, "referrer") + " checked"
	if rep.Compression != "" {
		summary += " · " + string(rep.Compression)
	}
	if rep.FormatVersion > 0 {
		summary += " · format " + strconv.Itoa(rep.FormatVersion)
	}
	add(trunc(st.Label.Render("checked   ")+summary, w))
	add(wrapIndent(st.Label.Render("signature ")+signatureWord(st, rep.Signature)+" ", signatureText(rep.Signature), w)...)
	if !rep.Complete {
		add(wrapIndent(st.word("incomplete")+" ", "reading stopped early: members after the point below were not checked.", w)...)
	}
	if len(rep.Errors) == 0 {
		add("")
		add(wrapIndent(st.word("ok")+" ", "every listed member is present, every size and sha256 matches, every referrer belongs to its subject.", w)...)
	} else {
		add("", st.Header.Render("BY CODE"))
		count := map[finding.Code]int{}
		var codes []string
		for _, p := range rep.Errors {
			if count[p.Code] == 0 {
				codes = append(codes, string(p.Code))
			}
			count[p.Code]++
		}
		sort.Strings(codes)
		for _, c := range codes {
			add("  " + st.word("fail") + " " + pad(c, 28, false) + " " + strconv.Itoa(count[finding.Code(c)]))
			// What to do about it, under it: a changed member and an
			// ambiguous manifest call for different things.
			if fix := finding.Code(c).Remedy(); fix != "" {
				add(wrapIndent("       ", st.Label.Render(fix), w)...)
			}
		}
	}
	bySubject := map[string][]bundle.Problem{}
	var other []bundle.Problem
	for _, p := range rep.Errors {
		if s := subjectOf(p.Path); s != "" {
			bySubject[s] = append(bySubject[s], p)
		} else {
			other = append(other, p)
		}
	}
	if len(rep.Subjects) > 0 || len(bySubject) > 0 {
		add("", st.Header.Render("BY SUBJECT"))
		seen := map[string]bool{}
		for _, s := range rep.Subjects {
			seen[s.Subject] = true
			state := "ok"
			if s.Found != s.Expected || len(bySubject[s.Subject]) > 0 {
				state = "fail"
			}
			add(trunc("  "+st.word(state)+" "+pad(discovery.ShortDigest(s.Subject), 19, false)+" "+pad(s.Discovery, 4, false)+"  "+
				strconv.Itoa(s.Expected)+" listed, "+strconv.Itoa(s.Found)+" intact", w))
			add(problemLines(st, bySubject[s.Subject], w)...)
		}
		var rest []string
		for s := range bySubject {
			if !seen[s] {
				rest = append(rest, s)
			}
		}
		sort.Strings(rest)
		for _, s := range rest {
			add("  " + st.word("fail") + " " + discovery.ShortDigest(s) + "  (not listed in manifest.yaml)")
			add(problemLines(st, bySubject[s], w)...)
		}
	}
	if rep.ImageSignatures != nil {
		add("", st.Header.Render("IMAGE SIGNATURES"))
		for _, img := range rep.ImageSignatures {
			name := img.Reference
			if name == "" {
				name = discovery.ShortDigest(img.Subject)
			}
			word := map[bundle.ImageSigStatus]string{bundle.ImageSigValid: "ok", bundle.ImageSigInvalid: "fail"}[img.Status]
			if word == "" {
				word = "warn"
			}
			key := ""
			if img.KeyFingerprint != "" {
				key = "key " + img.KeyFingerprint[:min(12, len(img.KeyFingerprint))]
			}
			add(trunc("  "+st.word(word)+strings.Repeat(" ", 5-len(word))+pad(string(img.Status), 12, false)+pad(key, 17, false)+" "+name, w))
			if img.Status != bundle.ImageSigValid && img.Status != bundle.ImageSigUnsigned {
				add(wrapIndent("        ", img.Message, w)...)
			}
		}
	}
	if len(other) > 0 {
		add("", st.Header.Render("OTHER MEMBERS"))
		add(problemLines(st, other, w)...)
	}
	if slices.ContainsFunc(rep.Errors, func(p bundle.Problem) bool { return slices.Contains(transitCodes, p.Code) }) {
		add("")
		add(wrapIndent("", st.Label.Render("A mismatch means the bundle changed after export (or in transit): re-export it from the source and compare sha256sum on both sides of the gap."), w)...)
	}
	b.pane.setContent(strings.Join(lines, "\n"))
}

// transitCodes are the problems of a bundle that changed after export or
// on its way: comparing sha256sum on both sides tells where.
var transitCodes = []finding.Code{finding.ReferrerChecksumMismatch, finding.FileChecksumMismatch, finding.SizeMismatch,
	finding.MissingFile, finding.TruncatedArchive, finding.CorruptArchive}

func problemLines(st styles, ps []bundle.Problem, w int) []string {
	var out []string
	for _, p := range ps {
		// The member, the expected and the actual hash are what the
		// operator compares: they wrap, never cut.
		out = append(out, "      "+st.paint(toneFail, string(p.Code)))
		out = append(out, wrapHardIndent("        member   ", p.Path, w)...)
		if p.Expected != "" || p.Actual != "" {
			out = append(out, wrapHardIndent("        expected ", p.Expected, w)...)
			for _, l := range wrapHardIndent("        actual   ", p.Actual, w) {
				out = append(out, st.paint(toneFail, l))
			}
		}
		if p.Message != "" {
			out = append(out, wrapIndent("        ", p.Message, w)...)
		}
	}
	return out
}

// click picks in the file picker.
func (b *bundleScreen) click(_, y int) tea.Cmd {
	if !b.picking || y < 3 {
		return nil
	}
	path, cmd := b.picker.click(y - 3)
	if path != "" {
		b.path = path
		return b.validate()
	}
	return cmd
}

// signatureWord is the status word of the bundle's signature.
func signatureWord(st styles, s bundle.SignatureReport) string {
	switch s.Status {
	case bundle.SignatureVerified:
		return st.word("ok")
	case bundle.SignatureFailed:
		return st.word("fail")
	case bundle.SignatureUnknown:
		return st.word("unknown")
	}
	return st.word("-")
}

// signatureText says what was found about the bundle's signature.
func signatureText(s bundle.SignatureReport) string {
	key := s.KeyFingerprint
	if len(key) > 16 {
		key = key[:16]
	}
	switch s.Status {
	case bundle.SignatureVerified:
		src := ""
		if s.KeySource != "" {
			src = " (" + filepath.Base(s.KeySource) + ")"
		}
		return "verified · signed by key " + key + src
	case bundle.SignatureSigned:
		if key != "" {
			return "signed by key " + key + ", not verified: set [bundle] verify_keys"
		}
		return "signed, not verified: set [bundle] verify_keys"
	case bundle.SignatureUnsigned:
		return "unsigned"
	}
	if s.Code != "" {
		return string(s.Code) + ": " + s.Message
	}
	return s.Message
}
