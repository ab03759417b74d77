package ui

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"charm.land/bubbles/v2/filepicker"
	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/progress"
	"charm.land/bubbles/v2/viewport"
	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"

	"github.com/refdoctor/refdoctor/bundle"
	"github.com/refdoctor/refdoctor/bundle/signing"
	"github.com/refdoctor/refdoctor/discovery"
	"github.com/refdoctor/refdoctor/finding"
)

// bundleScreen verifies a mirror bundle: pick a file (or take the one from
// the options), watch the stream being hashed, then read the result by
// problem code and by subject, each mismatch with expected and actual.
type bundleScreen struct {
	sh      *shared
	path    string
	state   string // idle, picking, validating, done, error, stopped
	err     string
	picker  filepicker.Model
	picking bool
	bar     progress.Model
	read    int64
	total   int64
	checked int64
	member  string
	probs   int
	rep     *bundle.Report
	cur     run
	started bool
	vp      viewport.Model
	w, h    int
}

func newBundleScreen(sh *shared) *bundleScreen {
	b := &bundleScreen{sh: sh, path: sh.opts.Bundle, state: "idle", vp: newViewport(sh)}
	b.bar = progress.New(progress.WithFillCharacters('█', '░'), progress.WithoutPercentage())
	b.restyle()
	b.picker = b.newPicker()
	return b
}

func (b *bundleScreen) newPicker() filepicker.Model {
	p := filepicker.New()
	p.AutoHeight = false
	p.ShowPermissions = false
	p.Cursor = "›"
	// Bundles only: gzip or zstd tars (validation still sniffs the bytes).
	p.AllowedTypes = []string{".tgz", ".gz", ".zst", ".tzst"}
	p.KeyMap.Back = key.NewBinding(key.WithKeys("h", "backspace", "left"), key.WithHelp("h", "up a folder"))
	dir := b.sh.opts.workDir
	if b.path != "" {
		dir = filepath.Dir(b.path)
	}
	if dir != "" {
		p.CurrentDirectory = dir
	}
	p.SetHeight(max(3, b.h-3))
	p.Styles = b.pickerStyles()
	return p
}

func (b *bundleScreen) pickerStyles() filepicker.Styles {
	st := b.sh.st
	if !st.colour() {
		plain := st.Plain
		s := filepicker.Styles{DisabledCursor: plain, Cursor: st.Cursor, Symlink: plain, Directory: st.Header, File: plain,
			DisabledFile: st.Label, Permission: plain, Selected: st.Selected, DisabledSelected: st.Label,
			FileSize: plain.Width(7).Align(lipgloss.Right), EmptyDirectory: plain.PaddingLeft(2).SetString("This folder is empty.")}
		return s
	}
	s := filepicker.DefaultStyles()
	s.Cursor, s.Selected, s.Directory = st.Cursor, st.Selected, st.tones[toneAccent]
	return s
}

func (b *bundleScreen) restyle() {
	b.bar.FullColor, b.bar.EmptyColor = b.sh.st.ProgressFull, b.sh.st.ProgressEmpty
}

func (b *bundleScreen) SetSize(w, h int) {
	b.w, b.h = w, h
	b.bar.SetWidth(max(10, min(w-4, 72)))
	b.picker.SetHeight(max(3, h-3))
	b.vp.SetWidth(w)
	b.vp.SetHeight(max(1, h-1))
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

func (b *bundleScreen) openPicker() tea.Cmd {
	b.picker = b.newPicker()
	b.picking = true
	return b.picker.Init()
}

func (b *bundleScreen) validate() tea.Cmd {
	b.cur.stop()
	b.picking = false
	if b.path == "" {
		return nil
	}
	path := b.path
	b.state, b.err, b.rep, b.read, b.total, b.checked, b.member, b.probs = "validating", "", nil, 0, 0, 0, "", 0
	var cmd tea.Cmd
	b.cur, cmd = b.sh.start(scrBundle, func(ctx context.Context, emit func(any)) (any, error) {
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
	case eventMsg:
		if msg.run != b.cur.id {
			return b, nil
		}
		if ev, ok := msg.ev.(bundle.Event); ok {
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
		}
		return b, nil
	case doneMsg:
		if msg.run != b.cur.id {
			return b, nil
		}
		b.cur = run{}
		rep, _ := msg.val.(bundle.Report)
		switch {
		case errors.Is(msg.err, context.Canceled):
			b.state = "stopped"
		case msg.err != nil:
			b.state, b.err, b.rep = "error", msg.err.Error(), &rep
		default:
			b.state, b.rep = "done", &rep
		}
		b.refresh()
		return b, nil
	case targetsChangedMsg:
		if b.sh.opts.Bundle != b.path {
			b.stop()
			b.path, b.started, b.rep, b.state = b.sh.opts.Bundle, false, nil, "idle"
			b.refresh()
		}
		return b, nil
	case styleChangedMsg:
		b.restyle()
		b.picker.Styles = b.pickerStyles()
		b.refresh()
		return b, nil
	}
	if b.picking {
		var cmd tea.Cmd
		b.picker, cmd = b.picker.Update(msg)
		if ok, path := b.picker.DidSelectFile(msg); ok {
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
		return b, scrollKeys(b.sh, &b.vp, msg)
	}
	return b, nil
}

func (b *bundleScreen) back() (bool, tea.Cmd) {
	switch {
	case b.picking:
		b.picking = false
		return true, nil
	case b.cur.cancel != nil:
		b.stop()
		b.state = "stopped"
		b.refresh()
		return true, flash("validation stopped")
	}
	return false, nil
}

func (b *bundleScreen) stop() {
	b.cur.stop()
	b.cur = run{}
}

func (b *bundleScreen) help() bindings {
	k := b.sh.keys
	if b.picking {
		pk := b.picker.KeyMap
		return bindings{
			short: []key.Binding{k.SelectFile, pk.Down, pk.Up, pk.Back, k.Back},
			full:  [][]key.Binding{{pk.Up, pk.Down, pk.PageUp, pk.PageDown, pk.GoToTop, pk.GoToLast}, {pk.Open, pk.Back, k.SelectFile, k.Back}},
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
		head := st.Header.Render("Pick a bundle") + st.Label.Render("  "+b.picker.CurrentDirectory)
		return trunc(head, b.w) + "\n" + st.Label.Render(trunc("enter validates a file, l/h enter and leave folders, esc closes", b.w)) + "\n\n" + b.picker.View()
	}
	switch b.state {
	case "idle":
		return "No bundle chosen.\n\nPress o to pick a mirror bundle (.tgz or .tar.zst) from a folder."
	case "validating":
		return b.progressView()
	}
	return trunc(b.headline(), b.w) + "\n" + b.vp.View()
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
		st.paint(toneRun, b.sh.frame+" hashing the stream") + "  " + pad(itoa(int64(pct*100))+"%", 4, true),
		"  " + b.bar.ViewAs(pct),
		"",
		trunc("  read    "+humanSize(b.read)+" of "+humanSize(b.total)+" (compressed)", b.w),
		trunc("  hashed  "+humanSize(b.checked), b.w),
		trunc("  member  "+b.member, b.w),
	}
	if b.probs > 0 {
		lines = append(lines, "  "+st.word("fail")+" "+itoa(int64(b.probs))+" problems so far")
	}
	lines = append(lines, "", st.Label.Render("esc stops"))
	return strings.Join(lines, "\n")
}

func (b *bundleScreen) headline() string {
	st := b.sh.st
	name := filepath.Base(b.path)
	switch {
	case b.state == "stopped":
		return st.Header.Render(name) + "  " + st.word("skipped") + " stopped; r validates again"
	case b.rep == nil:
		return st.Header.Render(name)
	case b.rep.OK:
		return st.Header.Render(name) + "  " + st.word("ok") + " the bundle is whole"
	case b.state == "error":
		return st.Header.Render(name) + "  " + st.word("error") + " not a readable bundle"
	}
	n := len(b.rep.Errors)
	what := " problems"
	if n == 1 {
		what = " problem"
	}
	return st.Header.Render(name) + "  " + st.word("fail") + " " + itoa(int64(n)) + what + ": do not import"
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
	st, w := b.sh.st, max(b.w, 20)
	rep := b.rep
	if rep == nil {
		b.vp.SetContent("")
		if b.state == "stopped" {
			b.vp.SetContent("\n  " + b.path)
		}
		return
	}
	var lines []string
	add := func(s ...string) { lines = append(lines, s...) }
	add(trunc(st.Label.Render("file      ")+b.path, w))
	if b.err != "" {
		add(wrapIndent(st.word("error")+"     ", b.err, w)...)
	}
	summary := itoa(int64(rep.FilesChecked)) + " files · " + humanSize(rep.BytesChecked) + " hashed · " + itoa(int64(rep.ReferrersChecked)) + " referrers checked"
	if rep.Compression != "" {
		summary += " · " + string(rep.Compression)
	}
	if rep.FormatVersion > 0 {
		summary += " · format " + itoa(int64(rep.FormatVersion))
	}
	add(trunc(st.Label.Render("checked   ")+summary, w))
	add(wrapIndent(st.Label.Render("signature ")+signatureWord(st, rep.Signature)+" ", signatureText(rep.Signature), w)...)
	if !rep.Complete {
		add(wrapIndent(st.word("incomplete")+" ", "reading stopped early: members after the point below were not checked.", w)...)
	}
	if len(rep.Errors) == 0 {
		add("", st.word("ok")+" every listed member is present, every size and sha256 matches, every referrer belongs to its subject.")
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
			add("  " + st.word("fail") + " " + pad(c, 28, false) + " " + itoa(int64(count[finding.Code(c)])))
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
				itoa(int64(s.Expected))+" listed, "+itoa(int64(s.Found))+" intact", w))
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
	if len(rep.Errors) > 0 {
		add("", st.Label.Render("A mismatch means the bundle changed after export (or in transit): re-export"),
			st.Label.Render("it from the source and compare sha256sum on both sides of the gap."))
	}
	b.vp.SetContent(strings.Join(lines, "\n"))
}

func problemLines(st styles, ps []bundle.Problem, w int) []string {
	var out []string
	for _, p := range ps {
		out = append(out, "      "+st.paint(toneFail, string(p.Code))+" "+truncMiddle(p.Path, max(10, w-8-len(p.Code))))
		if p.Expected != "" || p.Actual != "" {
			out = append(out, trunc("        expected "+p.Expected, w), trunc("        actual   "+st.paint(toneFail, p.Actual), w))
		}
		if p.Message != "" {
			out = append(out, wrapIndent("        ", p.Message, w)...)
		}
	}
	return out
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
