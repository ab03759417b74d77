package ui

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/colorprofile"
	"github.com/charmbracelet/x/ansi"
	"go.uber.org/goleak"

	"github.com/refdoctor/refdoctor/lab"
	"github.com/refdoctor/refdoctor/lab/labtest"
	"github.com/refdoctor/refdoctor/telemetry"
)

// titleOf is the tab bar, the first line of a frame.
func titleOf(v string) string { return strings.SplitN(v, "\n", 2)[0] }

// TestKeyNavigation walks every screen by number, by tab and shift+tab,
// opens and closes the detail and the full help, and goes back with esc.
func TestKeyNavigation(t *testing.T) {
	l := sharedLab(t)
	h := newHarness(t, l, 120, 40, nil)
	marks := map[string]string{
		"1": "What do you see?",
		"2": "DIAGNOSE",
		"3": "REFERRERS API",
		"4": "tags for",
		"5": "image ",
		"6": "Pick a bundle",
		"7": "No export log given",
		"8": "This session's counters",
		"9": "Escalation",
	}
	for _, k := range []string{"1", "2", "3", "4", "5", "6", "7", "8", "9"} {
		h.keys(k)
		h.waitFor("screen "+k, contains(marks[k]))
	}
	// tab wraps from the last screen to the first, shift+tab back.
	h.keys("tab")
	h.waitFor("Start after tab", contains(marks["1"]))
	h.keys("shift+tab")
	h.waitFor("Support after shift+tab", contains(marks["9"]))
	h.keys("tab", "tab", "tab")
	h.waitFor("Registries after three tabs", contains(marks["3"]))
	h.waitFor("every verdict", func(v string) bool { return idle(v) && strings.Contains(v, "unsupported!") })
	h.keys("j", "enter")
	h.waitFor("the detail", contains("VERDICT", "EXCHANGES"))
	h.keys("esc")
	h.waitFor("the table again", contains("REFERRERS API"))
	h.keys("?")
	h.waitFor("the full help", contains("Keys", "re-probe all"))
	h.keys("?")
	h.waitFor("the table after help", contains("REFERRERS API"))
	// esc with nothing open or running stays where it is.
	h.keys("esc")
	if v := h.waitFor("the table after esc", contains("REFERRERS API")); !strings.Contains(titleOf(v), "[3 Registries]") {
		t.Errorf("esc left the Registries screen: %q", titleOf(v))
	}
	h.keys("1")
	h.waitFor("Start", contains(marks["1"]))
	// Start: a symptom leads to its step in the walkthrough.
	h.keys("j", "enter")
	h.waitFor("the step of the first symptom", contains("No referrers found for image", "ISSUES"))
	// The runbook screen's keys: ↓/↑ move between steps, ] picks the next
	// command, c copies it.
	h.keys("j", "k", "]", "c")
	h.waitFor("the copy confirmation", contains("copied:"))
	// esc on the runbook with nothing running stays on the runbook.
	h.keys("esc")
	if v := h.view(); !strings.Contains(titleOf(v), "[2 Runbook]") {
		t.Errorf("esc left the runbook: %q", titleOf(v))
	}
	v := h.final()
	if !strings.Contains(titleOf(v), "[2 Runbook]") {
		t.Errorf("tab bar %q", titleOf(v))
	}
}

// TestResize lays every screen out at sizes from 80x24 up and back, and
// checks that every frame is exactly the window.
func TestResize(t *testing.T) {
	l := sharedLab(t)
	h := newHarness(t, l, 80, 24, nil)
	h.keys("3")
	h.waitFor("every verdict", func(v string) bool { return idle(v) && strings.Contains(v, "unsupported!") })
	for _, k := range []string{"1", "2", "3", "4", "5", "6", "7", "8", "9"} {
		h.keys(k)
		for _, sz := range [][2]int{{80, 24}, {200, 60}, {100, 30}, {133, 41}, {80, 24}} {
			h.tm.Send(tea.WindowSizeMsg{Width: sz[0], Height: sz[1]})
			v := h.waitFor("the new size", func(v string) bool {
				lines := strings.Split(v, "\n")
				return len(lines) == sz[1] && strings.Count(lines[1], "─") == sz[0]
			})
			checkFrame(t, normalize(v, l, ""), sz[0], sz[1])
		}
	}
}

// TestProbeFinishesElsewhere starts the probes, leaves for another screen
// while a slow registry still answers, and finds the verdicts there on
// return, without a new probe.
func TestProbeFinishesElsewhere(t *testing.T) {
	l := labtest.StartT(t, lab.Spec{Name: "oci11", Profile: lab.ProfileOCI11}, lab.Spec{Name: "slow", Profile: lab.ProfileSlow, Delay: 300 * time.Millisecond})
	h := newHarness(t, l, 100, 30, nil)
	h.keys("3")
	h.waitFor("the slow probe running", contains("probing"))
	h.keys("8")
	h.waitFor("the metrics screen", contains("This session's counters"))
	// The status line says when the last run ends.
	h.waitFor("the probe to end while away", func(v string) bool { return !strings.Contains(v, "running") })
	before := l.Requests("slow")
	h.keys("3")
	v := h.waitFor("the registries", contains("REFERRERS API"))
	if strings.Contains(v, "probing") || strings.Count(v, "supported") < 2 {
		t.Fatalf("verdicts missing on return:\n%s", v)
	}
	time.Sleep(200 * time.Millisecond)
	if after := l.Requests("slow"); after != before {
		t.Errorf("coming back probed again (%d -> %d requests)", before, after)
	}
}

// TestQuitMidProbe quits while a slow registry is still being probed and
// checks, with goleak, that Run leaves no goroutine behind.
func TestQuitMidProbe(t *testing.T) {
	before := goleak.IgnoreCurrent()
	l, err := lab.Start(context.Background(), lab.WithSpecs(lab.Spec{Name: "slow", Profile: lab.ProfileSlow, Delay: 2 * time.Second}))
	if err != nil {
		t.Fatal(err)
	}
	in, keys := io.Pipe()
	done := make(chan error, 1)
	go func() {
		o := labOptions(l)
		o.Metrics, o.Input, o.Output, o.Version = telemetry.NewMetrics(), in, io.Discard, "test"
		done <- Run(context.Background(), o)
	}()
	if _, err := keys.Write([]byte("3")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for l.Requests("slow") == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the probe never reached the registry")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := keys.Write([]byte("q")); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return after q")
	}
	_ = keys.Close()
	_ = l.Close()
	goleak.VerifyNone(t, append(leakOptions(), before)...)
}

// TestNoColor checks that styles for NO_COLOR (the Ascii profile) carry
// no colour, and that light and dark palettes both render.
func TestNoColor(t *testing.T) {
	for _, tc := range []struct {
		profile colorprofile.Profile
		dark    bool
		colour  bool
	}{
		{colorprofile.Ascii, true, false},
		{colorprofile.NoTTY, false, false},
		{colorprofile.TrueColor, true, true},
		{colorprofile.TrueColor, false, true},
		{colorprofile.ANSI256, false, true},
	} {
		st := newStyles(tc.dark, tc.profile)
		out := st.word("failed") + st.word("passed") + st.paint(toneMismatch, "unsupported!") + st.Title.Render("x") + st.Label.Render("y")
		if got := colourSGR.MatchString(out); got != tc.colour {
			t.Errorf("profile %v dark %v: colour %v, want %v (%q)", tc.profile, tc.dark, got, tc.colour, out)
		}
		if plain := ansi.Strip(out); !strings.Contains(plain, "failed") || !strings.Contains(plain, "unsupported!") {
			t.Errorf("status words must stay as text: %q", out)
		}
	}
}

// TestSupportBundle collects a support bundle from the escalation screen
// and finds it written where the options say.
func TestSupportBundle(t *testing.T) {
	l := sharedLab(t)
	h := newHarness(t, l, 100, 30, nil)
	h.keys("9", "d")
	v := h.waitFor("the support bundle", contains("written"))
	if !strings.Contains(v, "support.tgz") || !strings.Contains(v, "probe.json") {
		t.Errorf("the screen does not show what was written:\n%s", v)
	}
	if _, err := os.Stat(filepath.Join(h.dir, "support.tgz")); err != nil {
		t.Errorf("support bundle not written: %v", err)
	}
}

// TestEscStopsWork leaves a screen with esc while its discovery still
// waits on a slow registry: the run is canceled and says so.
func TestEscStopsWork(t *testing.T) {
	l := labtest.StartT(t, lab.Spec{Name: "slow", Profile: lab.ProfileSlow, Delay: 2 * time.Second})
	h := newHarness(t, l, 100, 30, nil)
	h.keys("5")
	h.waitFor("discovery running", contains("discovering"))
	h.keys("esc")
	h.waitFor("the stopped discovery", func(v string) bool { return strings.Contains(v, "stopped") && !strings.Contains(v, "running") })
}

// TestEnginePanicRecovered: a panic in an engine goroutine ends the run
// with an error message instead of killing the program.
func TestEnginePanicRecovered(t *testing.T) {
	o := Options{Version: "test"}.resolve()
	sh := newShared(context.Background(), &o)
	defer sh.cancel()
	_, cmd := start(sh, scrTags, func(context.Context, func(none)) (int, error) { panic("boom") })
	msgs := drain(cmd)
	var done *doneMsg[int]
	for _, m := range msgs {
		if d, ok := m.(doneMsg[int]); ok {
			done = &d
		}
	}
	if done == nil || done.err == nil || !strings.Contains(done.err.Error(), "boom") {
		t.Fatalf("no error from the panicking run: %#v", msgs)
	}
	sh.wg.Wait()
}

// drain runs a command (and the pumps it re-arms) until its channel closes.
func drain(cmd tea.Cmd) []tea.Msg {
	var out []tea.Msg
	queue := []tea.Cmd{cmd}
	for len(queue) > 0 {
		c := queue[0]
		queue = queue[1:]
		if c == nil {
			continue
		}
		switch m := c().(type) {
		case tea.BatchMsg:
			queue = append(queue, m...)
		case pumpMsg:
			out = append(out, m.msg)
			queue = append(queue, pump(m.ch))
		case nil:
		default:
			out = append(out, m)
		}
	}
	return out
}

// TestReferrerDrillDown opens a referrer: its subject chain leads from the
// image's digest down to it, its manifest is the one the registry serves
// (its subject is the image), and esc returns to the same row.
func TestReferrerDrillDown(t *testing.T) {
	l := sharedLab(t)
	h := newHarness(t, l, 160, 80, nil)
	oci, _ := l.Get("oci11")
	h.keys("5")
	h.waitFor("the referrers", func(v string) bool {
		return idle(v) && strings.Contains(v, "referrers ·") && strings.Contains(v, "1/7")
	})
	h.keys("j", "enter")
	v := h.waitFor("the manifest", func(v string) bool { return idle(v) && strings.Contains(v, `"schemaVersion"`) })
	for _, want := range []string{"SUBJECT CHAIN", "image " + l.Seed.Ref(oci.Host), l.Seed.Index, `"subject"`, "ANNOTATIONS", "esc returns"} {
		if !strings.Contains(v, want) {
			t.Errorf("the referrer view lacks %q:\n%s", want, v)
		}
	}
	// The manifest names the image as its subject.
	if i := strings.Index(v, `"subject"`); i < 0 || !strings.Contains(v[i:], l.Seed.Index) {
		t.Errorf("the manifest's subject is not the image %s", l.Seed.Index)
	}
	h.keys("esc")
	h.waitFor("the tree, same row", contains("REFERRERS (", "2/7"))
}

// TestTagDrillDown opens a fallback tag: it holds an index listing the
// subject's referrers; esc returns to the same row.
func TestTagDrillDown(t *testing.T) {
	l := sharedLab(t)
	h := newHarness(t, l, 160, 80, nil)
	h.keys("4")
	h.waitFor("the listing", func(v string) bool { return idle(v) && strings.Contains(v, "tags for") })
	h.keys("j", "enter")
	v := h.waitFor("what the tag holds", func(v string) bool { return idle(v) && strings.Contains(v, `"manifests"`) })
	n := len(l.Seed.ReferrersOf(l.Seed.Index))
	for _, want := range []string{"index tag", "points to", "application/vnd.oci.image.index.v1+json", fmt.Sprintf("ENTRIES (%d)", n)} {
		if !strings.Contains(v, want) {
			t.Errorf("the tag view lacks %q:\n%s", want, v)
		}
	}
	h.keys("esc")
	v = h.waitFor("the listing again", contains("KIND", "→ HOLDS"))
	if !strings.Contains(v, "› ") || !strings.Contains(strings.Split(v, "› ")[1], "index") {
		t.Errorf("esc did not return to the index tag's row:\n%s", v)
	}
}

// TestBundlePicker lists only folders (marked with /) and bundles, never
// the CA, the YAML or the checksum sidecars beside them; enter opens a
// folder, backspace comes back, and enter on a bundle validates it.
func TestBundlePicker(t *testing.T) {
	l := sharedLab(t)
	h := newHarness(t, l, 100, 30, func(dir string, o *Options) {
		good, _ := bundles(t, dir)
		for _, f := range []string{"lab-ca.pem", "manifest.yaml", "good.tgz.sha256", "notes.txt"} {
			if err := os.WriteFile(filepath.Join(dir, f), []byte("x"), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.MkdirAll(filepath.Join(dir, "older"), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(good, filepath.Join(dir, "older", "good.tar.gz")); err != nil {
			t.Fatal(err)
		}
		o.workDir = dir
	})
	h.keys("6")
	v := h.waitFor("the picker", contains("Pick a bundle", "tampered.tgz"))
	for _, want := range []string{"older/", "../", "tampered.tgz"} {
		if !strings.Contains(v, want) {
			t.Errorf("the picker lacks %q:\n%s", want, v)
		}
	}
	for _, not := range []string{"lab-ca.pem", "manifest.yaml", ".sha256", "notes.txt"} {
		if strings.Contains(v, not) {
			t.Errorf("the picker offers %q:\n%s", not, v)
		}
	}
	size := regexp.MustCompile(`\d(\.\d)?[BKMG]\b`)
	for _, line := range strings.Split(v, "\n") {
		if strings.Contains(line, "older/") && size.MatchString(line) {
			t.Errorf("a folder shows a size: %q", line)
		}
		if strings.Contains(line, "tampered.tgz") && !size.MatchString(line) {
			t.Errorf("a bundle shows no size: %q", line)
		}
	}
	h.keys("j", "enter") // into older/
	h.waitFor("the folder", contains("good.tar.gz", "older"))
	h.keys("backspace")
	h.waitFor("back up", contains("tampered.tgz"))
	h.keys("G", "enter")
	h.waitFor("the tampered bundle validated", func(v string) bool { return idle(v) && strings.Contains(v, "do not import") })
}

// TestMouse: mouse capture is off unless asked for (the terminal's own
// selection then copies a digest anywhere); with it, a click on a tab
// switches to it, a click on a row selects it and a second click opens
// it, and y copies the selected digest.
func TestMouse(t *testing.T) {
	l := sharedLab(t)
	if m := newModel(context.Background(), testOptions(t, l, t.TempDir()).resolve()); m.View().MouseMode != tea.MouseModeNone {
		t.Errorf("mouse capture is on by default")
	}
	h := newHarness(t, l, 120, 40, func(dir string, o *Options) { o.Mouse = true })
	v := h.view()
	x := strings.Index(titleOf(v), "3 Registries")
	if x < 0 {
		t.Fatalf("no Registries tab:\n%s", titleOf(v))
	}
	click := func(x, y int) {
		h.tm.Send(tea.MouseClickMsg{Button: tea.MouseLeft, X: x, Y: y})
	}
	click(x+2, 0)
	h.waitFor("every verdict", func(v string) bool { return idle(v) && strings.Contains(v, "unsupported!") })
	// Body line 0 is the summary, 1 the header: the second row is on
	// screen line 2+2+1.
	click(10, 5)
	h.waitFor("the second row selected", contains("› ghcr-like"))
	click(10, 5)
	h.waitFor("its detail", contains("VERDICT", "EXCHANGES"))
	// In the detail, the selected exchange's digest is what y copies.
	h.keys("j", "j", "y")
	h.waitFor("the copy", contains("copied sha256:"))
}

// TestFooterAndHelp: at 80 columns every screen's footer still ends in
// "? help • q quit", and each screen's full help lists every key once
// (esc had been listed twice).
func TestFooterAndHelp(t *testing.T) {
	l := sharedLab(t)
	h := newHarness(t, l, 80, 24, nil)
	for _, k := range []string{"1", "2", "3", "4", "5", "6", "7", "8", "9"} {
		h.keys(k)
		v := h.waitFor("screen "+k, func(v string) bool { return strings.Contains(titleOf(v), "["+k+" ") })
		lines := strings.Split(v, "\n")
		if footer := lines[len(lines)-1]; !strings.HasSuffix(strings.TrimRight(footer, " "), "? help • q quit") {
			t.Errorf("screen %s: footer %q does not end in q quit", k, footer)
		}
		h.keys("?")
		v = h.waitFor("the help of screen "+k, contains("Keys", "(esc or ? closes)"))
		body := strings.SplitN(v, "(esc or ? closes)", 2)[1]
		seen := map[string]int{}
		for _, f := range regexp.MustCompile(`(?m)(?:^|\s{2,})(\S+) `).FindAllStringSubmatch(body, -1) {
			seen[f[1]]++
		}
		if seen["esc"] != 1 || seen["q"] != 1 {
			t.Errorf("screen %s: esc listed %d times, q %d times:\n%s", k, seen["esc"], seen["q"], body)
		}
		h.keys("?")
	}
}
