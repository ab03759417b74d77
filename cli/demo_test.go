package cli_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/refdoctor/refdoctor/lab/labinfo"
)

// binaries builds refdoctor and refdoctor-lab side by side, once per test
// run, as a release ships them.
var binaries struct {
	once sync.Once
	dir  string
	err  error
}

func buildBinaries(t *testing.T) string {
	t.Helper()
	binaries.once.Do(func() {
		dir, err := os.MkdirTemp("", "refdoctor-cli-bin-")
		if err != nil {
			binaries.err = err
			return
		}
		binaries.dir = dir
		for pkg, name := range map[string]string{".": "refdoctor", "./cmd/refdoctor-lab": "refdoctor-lab"} {
			build := exec.Command("go", "build", "-o", filepath.Join(dir, name), pkg)
			build.Dir = ".."
			if out, err := build.CombinedOutput(); err != nil {
				binaries.err = fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
				return
			}
		}
	})
	if binaries.err != nil {
		t.Fatal(binaries.err)
	}
	return binaries.dir
}

// serveDemo starts `refdoctor demo --serve` with its own temp folder and
// returns the process, the lab it printed and its stderr so far.
func serveDemo(t *testing.T, tmp string) (*exec.Cmd, labinfo.Lab, json.RawMessage, *strings.Builder) {
	t.Helper()
	bin := buildBinaries(t)
	cmd := exec.Command(filepath.Join(bin, "refdoctor"), "demo", "--serve")
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp, "XDG_CACHE_HOME="+filepath.Join(tmp, "cache"))
	// Its own process group: a signal for refdoctor reaches refdoctor
	// only, as kill(1) would send it, not the lab beside it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := &strings.Builder{}
	var mu sync.Mutex
	errPipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	stderrLine := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(errPipe)
		for sc.Scan() {
			mu.Lock()
			stderr.WriteString(sc.Text() + "\n")
			mu.Unlock()
			if strings.Contains(sc.Text(), "Ctrl+C stops it") {
				select {
				case stderrLine <- sc.Text():
				default:
				}
			}
		}
	}()
	var raw json.RawMessage
	dec := json.NewDecoder(stdout)
	done := make(chan error, 1)
	go func() { done <- dec.Decode(&raw) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("demo --serve printed no lab document: %v\nstderr:\n%s", err, stderr.String())
		}
	case <-time.After(3 * time.Minute):
		t.Fatalf("demo --serve printed nothing in 3 minutes; stderr:\n%s", stderr.String())
	}
	var info labinfo.Lab
	if err := json.Unmarshal(raw, &info); err != nil {
		t.Fatal(err)
	}
	select {
	case <-stderrLine:
	case <-time.After(30 * time.Second):
		t.Fatalf("no \"Ctrl+C stops it\" line on stderr:\n%s", stderr.String())
	}
	return cmd, info, raw, stderr
}

// labFolders lists the lab folders in tmp.
func labFolders(t *testing.T, tmp string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(tmp, "refdoctor-lab-*"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// waitGone waits until the lab's folder is gone from tmp and its first
// registry no longer accepts connections: the lab process has ended.
func waitGone(t *testing.T, tmp string, info labinfo.Lab) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		left := labFolders(t, tmp)
		conn, err := net.DialTimeout("tcp", info.Registries[0].Host, time.Second)
		if err == nil {
			conn.Close()
		}
		if len(left) == 0 && err != nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("30s after refdoctor ended: lab folders %v, registry %s still answers: %v", left, info.Registries[0].Host, err == nil)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestDemoServeCleansUpOnSignals sends each signal that closing a
// terminal, tmux or an init system sends to a real `refdoctor demo
// --serve`, and finds the lab's temp folder (its CA, its basic-auth file)
// gone and the lab stopped. SIGKILL cannot be caught by refdoctor: the lab
// notices its stdin end and cleans up by itself.
func TestDemoServeCleansUpOnSignals(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT, syscall.SIGKILL} {
		t.Run(sig.String(), func(t *testing.T) {
			tmp := t.TempDir()
			cmd, info, _, stderr := serveDemo(t, tmp)
			if got := labFolders(t, tmp); len(got) != 1 || got[0] != info.Dir {
				t.Fatalf("lab folders %v, want the one the document names, %s", got, info.Dir)
			}
			if _, err := os.Stat(filepath.Join(info.Dir, "lab-ca.pem")); err != nil {
				t.Fatalf("the lab CA is not where the lab folder is: %v", err)
			}
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			err := cmd.Wait()
			if sig != syscall.SIGKILL && err != nil {
				t.Errorf("refdoctor ended with %v after %v; stderr:\n%s", err, sig, stderr.String())
			}
			waitGone(t, tmp, info)
		})
	}
}

// TestDemoServeDocument checks what `demo --serve` prints for other tools:
// one JSON document with snake_case keys throughout, the logins of the
// registries behind one, the bundles, and a line on stderr saying how many
// registries serve and how to stop them.
func TestDemoServeDocument(t *testing.T) {
	tmp := t.TempDir()
	cmd, info, raw, stderr := serveDemo(t, tmp)
	defer func() { _ = cmd.Process.Signal(syscall.SIGTERM); _ = cmd.Wait() }()
	want := fmt.Sprintf("lab serving %d registries", len(info.Registries))
	if !strings.Contains(stderr.String(), want) {
		t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
	}
	logins := map[string]bool{}
	for _, r := range info.Registries {
		if r.Login != nil && r.Login.User != "" && r.Login.Password != "" {
			logins[r.Profile] = true
		}
	}
	for _, p := range []string{"basic-auth", "bearer-auth"} {
		if !logins[p] {
			t.Errorf("no login for the %s registry in the document", p)
		}
	}
	if info.Bundles == nil || info.Bundles.Good == "" || info.Seed.Index == "" || len(info.Seed.Referrers) == 0 {
		t.Errorf("document lacks bundles or seed: %+v", info)
	}
	// Every key, at every depth, is snake_case.
	var doc any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, e := range v {
				if strings.ToLower(k) != k {
					t.Errorf("key %s.%s is not snake_case", path, k)
				}
				walk(path+"."+k, e)
			}
		case []any:
			for _, e := range v {
				walk(path, e)
			}
		}
	}
	walk("", doc)
}

// TestSupportBundleGoesToTheWorkingFolder: without --out, diag collect
// writes refdoctor-support-<time>.tgz in the working folder and says so,
// the one rule every support bundle follows.
func TestSupportBundleGoesToTheWorkingFolder(t *testing.T) {
	bin := buildBinaries(t)
	dir := t.TempDir()
	cmd := exec.Command(filepath.Join(bin, "refdoctor"), "diag", "collect")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "XDG_CACHE_HOME="+filepath.Join(dir, "cache"), "HOME="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("diag collect: %v\n%s", err, out)
	}
	written, _ := filepath.Glob(filepath.Join(dir, "refdoctor-support-*.tgz"))
	if len(written) != 1 {
		t.Fatalf("support bundles in the working folder: %v\n%s", written, out)
	}
	if !strings.Contains(string(out), "wrote "+written[0]) {
		t.Errorf("the output does not name %s:\n%s", written[0], out)
	}
}
