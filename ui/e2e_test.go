package ui

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/refdoctor/refdoctor/lab"
)

// tmuxSession runs a command in a private tmux server (its own socket, so
// nothing else's sessions are touched) at a fixed size.
type tmuxSession struct {
	t      *testing.T
	socket string
}

func (s *tmuxSession) tmux(args ...string) (string, error) {
	out, err := exec.Command("tmux", append([]string{"-L", s.socket}, args...)...).CombinedOutput()
	return string(out), err
}

func (s *tmuxSession) send(keys ...string) {
	s.t.Helper()
	for _, k := range keys {
		if out, err := s.tmux("send-keys", "-t", "e2e", k); err != nil {
			s.t.Fatalf("send-keys %s: %v %s", k, err, out)
		}
		// tmux would read esc followed by a key as alt+key.
		time.Sleep(150 * time.Millisecond)
	}
}

func (s *tmuxSession) capture() string {
	out, _ := s.tmux("capture-pane", "-p", "-t", "e2e")
	return out
}

func (s *tmuxSession) waitFor(what string, cond func(string) bool, timeout time.Duration) string {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	var screen string
	for time.Now().Before(deadline) {
		screen = s.capture()
		if cond(screen) {
			return screen
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.t.Fatalf("waiting for %s; the screen:\n%s", what, screen)
	return screen
}

func needTmux(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("tmux"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("tmux is not installed; CI must install it (.ci/run does)")
		}
		t.Skip("tmux is not installed: skipping the end-to-end test in a real terminal (apt-get install tmux)")
	}
}

// buildRefdoctor builds refdoctor and its lab side by side into dir/bin,
// as a release ships them, and returns refdoctor's path.
func buildRefdoctor(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "bin", "refdoctor")
	for pkg, out := range map[string]string{".": bin, "./cmd/refdoctor-lab": filepath.Join(dir, "bin", "refdoctor-lab")} {
		build := exec.Command("go", "build", "-o", out, pkg)
		build.Dir = ".."
		if msg, err := build.CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", pkg, err, msg)
		}
	}
	return bin
}

// TestEndToEndTmux80x24 runs the demo in an 80x24 terminal: every screen
// keeps "q quit" in its footer, the Registries table says how far down the
// cursor is, and closing the terminal (tmux kills the session: SIGHUP)
// leaves no lab folder behind.
func TestEndToEndTmux80x24(t *testing.T) {
	needTmux(t)
	dir := t.TempDir()
	bin := buildRefdoctor(t, dir)
	tmp := filepath.Join(dir, "tmp")
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		t.Fatal(err)
	}
	s := &tmuxSession{t: t, socket: fmt.Sprintf("refdoctor-e2e80-%d", os.Getpid())}
	t.Cleanup(func() { _, _ = s.tmux("kill-server") })
	script := fmt.Sprintf("TMPDIR=%s XDG_CACHE_HOME=%s %s --timeout 10s demo", tmp, filepath.Join(dir, "cache"), bin)
	if out, err := s.tmux("new-session", "-d", "-s", "e2e", "-x", "80", "-y", "24", script); err != nil {
		t.Fatalf("tmux new-session: %v %s", err, out)
	}
	s.waitFor("the start screen", func(v string) bool { return strings.Contains(v, "What do you see?") }, 60*time.Second)
	labs, _ := filepath.Glob(filepath.Join(tmp, "refdoctor-lab-*"))
	if len(labs) != 1 {
		t.Fatalf("lab folders while the demo runs: %v", labs)
	}
	for _, k := range []string{"1", "2", "3", "4", "5", "6", "7", "8", "9"} {
		s.send(k)
		screen := s.waitFor("screen "+k, func(v string) bool { return strings.Contains(v, "["+k+" ") }, 30*time.Second)
		lines := strings.Split(strings.TrimRight(screen, "\n"), "\n")
		if last := strings.TrimRight(lines[len(lines)-1], " "); !strings.HasSuffix(last, "q quit") {
			t.Errorf("screen %s at 80 columns: footer %q lacks q quit", k, last)
		}
	}
	s.send("3")
	s.waitFor("the position in the Registries table", func(v string) bool {
		return strings.Contains(v, fmt.Sprintf("1/%d", len(lab.DefaultSpecs())))
	}, 30*time.Second)
	if out, err := s.tmux("kill-session", "-t", "e2e"); err != nil {
		t.Fatalf("kill-session: %v %s", err, out)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		labs, _ := filepath.Glob(filepath.Join(tmp, "refdoctor-lab-*"))
		if len(labs) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("30s after the terminal closed, the lab folder is still there: %v", labs)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestEndToEndTmux runs the built binary's `refdoctor demo` in a real
// terminal (tmux) and walks to the compatibility table until every row has
// a verdict, to the bundle screen, and through one runbook step; then it
// quits and checks the program ended cleanly.
func TestEndToEndTmux(t *testing.T) {
	needTmux(t)
	dir := t.TempDir()
	bin := buildRefdoctor(t, dir)
	s := &tmuxSession{t: t, socket: fmt.Sprintf("refdoctor-e2e-%d", os.Getpid())}
	t.Cleanup(func() { _, _ = s.tmux("kill-server") })
	cache := filepath.Join(dir, "cache")
	// The lab's stalled and trickling registries hold a probe until its
	// timeout (the discovery timeout, 120 s by default, in the TUI): a
	// short one lets every row reach its verdict in the test's time.
	script := fmt.Sprintf("XDG_CACHE_HOME=%s %s --timeout 10s demo; echo \"refdoctor exited $?\"; sleep 60", cache, bin)
	if out, err := s.tmux("new-session", "-d", "-s", "e2e", "-x", "120", "-y", "40", script); err != nil {
		t.Fatalf("tmux new-session: %v %s", err, out)
	}

	s.waitFor("the start screen", func(v string) bool { return strings.Contains(v, "What do you see?") }, 60*time.Second)

	s.send("3")
	screen := s.waitFor("every registry's verdict", func(v string) bool {
		return strings.Contains(v, fmt.Sprintf("%d registries", len(lab.DefaultSpecs()))) && strings.Contains(v, "unsupported!") &&
			!strings.Contains(v, "probing") && !strings.Contains(v, "queued")
	}, 90*time.Second)
	for _, want := range []string{"[3 Registries]", "REFERRERS API", "oci11", "ghcr-like", "supported", "incomplete", "differ from matrix"} {
		if !strings.Contains(screen, want) {
			t.Errorf("compatibility table lacks %q:\n%s", want, screen)
		}
	}

	// The demo opens the bundle screen on the lab's good bundle; the
	// tampered one sits beside it.
	s.send("6")
	screen = s.waitFor("the good bundle verified", func(v string) bool { return strings.Contains(v, "the bundle is whole") }, 30*time.Second)
	if !strings.Contains(screen, "[6 Bundle]") || !strings.Contains(screen, "good.tgz") {
		t.Errorf("bundle screen:\n%s", screen)
	}
	s.send("o")
	s.waitFor("the file picker", func(v string) bool {
		return strings.Contains(v, "Pick a bundle") && strings.Contains(v, "tampered.tgz")
	}, 30*time.Second)
	s.send("G", "Enter")
	screen = s.waitFor("the tampered bundle caught", func(v string) bool { return strings.Contains(v, "ReferrerChecksumMismatch") }, 30*time.Second)
	for _, want := range []string{"tampered.tgz", "expected", "actual", "do not import"} {
		if !strings.Contains(screen, want) {
			t.Errorf("tampered bundle result lacks %q:\n%s", want, screen)
		}
	}

	s.send("2", "j", "j", "j", "j") // Test fallback tag discovery
	s.waitFor("the fallback tag step", func(v string) bool { return strings.Contains(v, "Test fallback tag discovery  pending") }, 30*time.Second)
	s.send("r")
	done := regexp.MustCompile(`Test fallback tag discovery  (passed|warned|failed)`)
	screen = s.waitFor("the step's result", done.MatchString, 60*time.Second)
	for _, want := range []string{"CHECK", "referrer tags for", "THE OLDER RUNBOOK IS WRONG HERE"} {
		if !strings.Contains(screen, want) {
			t.Errorf("runbook step lacks %q:\n%s", want, screen)
		}
	}

	s.send("q")
	s.waitFor("a clean exit", func(v string) bool { return strings.Contains(v, "refdoctor exited 0") }, 30*time.Second)
}
