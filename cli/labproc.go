package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/refdoctor/refdoctor/lab/labinfo"
)

// The lab runs as a process of its own, refdoctor-lab (cmd/refdoctor-lab):
// the registry implementation it is built on costs every command that
// links it tens of milliseconds at start-up, and only `demo` needs it.

// labBinary is the lab program's name.
const labBinary = "refdoctor-lab"

// modulePath is refdoctor's module, to recognise its source tree.
const modulePath = "github.com/refdoctor/refdoctor"

// labProcess is a running refdoctor-lab: the document it printed, and its
// stdin, whose end stops it.
type labProcess struct {
	info   labinfo.Lab
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout *os.File
	out    *bufio.Reader
	mu     sync.Mutex // one command at a time
	done   chan struct{}
	werr   error
}

// findLab locates refdoctor-lab: next to this executable (as a release
// ships it), built from the source tree when refdoctor runs from one (go
// run . demo), else on PATH. The note says where it was looked for.
func findLab(ctx context.Context, status io.Writer) (string, error) {
	var looked []string
	if exe, err := os.Executable(); err == nil {
		if real, err := filepath.EvalSymlinks(exe); err == nil {
			exe = real
		}
		p := filepath.Join(filepath.Dir(exe), labBinary+exeSuffix())
		if isExecutable(p) {
			return p, nil
		}
		looked = append(looked, p)
	}
	if root := sourceTree(); root != "" {
		return buildLab(ctx, root, status)
	}
	looked = append(looked, "the source tree (not in one)")
	if p, err := exec.LookPath(labBinary); err == nil {
		return p, nil
	}
	looked = append(looked, "$PATH")
	return "", fmt.Errorf("%s not found (looked in %s): install it next to refdoctor, as the release archive ships it, or run refdoctor from its source tree (go run . demo), which builds it", labBinary, strings.Join(looked, ", "))
}

func exeSuffix() string {
	if filepath.Separator == '\\' {
		return ".exe"
	}
	return ""
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && (fi.Mode()&0o111 != 0 || exeSuffix() != "")
}

// sourceTree is the root of refdoctor's source tree around the working
// folder, or "".
func sourceTree() string {
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil {
			first, _, _ := strings.Cut(string(data), "\n")
			if strings.TrimSpace(first) == "module "+modulePath && isFile(filepath.Join(dir, "cmd", labBinary, "main.go")) {
				return dir
			}
			return "" // another module
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

func isFile(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}

// buildLab builds refdoctor-lab from the source tree at root into the
// user cache folder; the go command relinks it only when the source
// changed.
func buildLab(ctx context.Context, root string, status io.Writer) (string, error) {
	goCmd, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("refdoctor runs from its source tree (%s) but the go command is not on PATH to build %s: %w", root, labBinary, err)
	}
	dir, err := os.UserCacheDir()
	if err != nil {
		dir = os.TempDir()
	}
	dir = filepath.Join(dir, "refdoctor", "bin")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("build %s: %w", labBinary, err)
	}
	out := filepath.Join(dir, labBinary+exeSuffix())
	if status != nil {
		fmt.Fprintf(status, "refdoctor: building %s from %s (the first time takes a while)…\n", labBinary, root)
	}
	build := exec.CommandContext(ctx, goCmd, "build", "-o", out, "./cmd/"+labBinary)
	build.Dir = root
	var msg bytes.Buffer
	build.Stdout, build.Stderr = &msg, &msg
	if err := build.Run(); err != nil {
		return "", fmt.Errorf("build %s from %s: %v\n%s", labBinary, root, err, strings.TrimSpace(msg.String()))
	}
	return out, nil
}

// startLab starts refdoctor-lab and waits for the document it prints.
// The lab's own log goes to logTo. The process stops when Close is
// called, when refdoctor exits in any way (its stdin ends), or on a
// signal of its own.
func startLab(ctx context.Context, path string, bundles bool, logLevel string, logTo io.Writer) (*labProcess, error) {
	args := []string{"--log-level", logLevel}
	if bundles {
		args = append(args, "--bundles")
	}
	// Not CommandContext: the lab must get the chance to remove its
	// folder, which a kill would not give it. Close ends it.
	cmd := exec.Command(path, args...)
	cmd.Stderr = logTo
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	// A pipe of our own rather than StdoutPipe: Wait, running alongside,
	// must not close it under a reader.
	stdout, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	cmd.Stdout = w
	err = cmd.Start()
	w.Close()
	if err != nil {
		stdout.Close()
		return nil, fmt.Errorf("start %s: %w", path, err)
	}
	p := &labProcess{cmd: cmd, stdin: stdin, stdout: stdout, out: bufio.NewReader(stdout), done: make(chan struct{})}
	go func() { p.werr = cmd.Wait(); close(p.done) }()

	type first struct {
		line []byte
		err  error
	}
	got := make(chan first, 1)
	go func() {
		line, err := p.out.ReadBytes('\n')
		got <- first{line, err}
	}()
	var f first
	select {
	case f = <-got:
	case <-ctx.Done():
		p.Close()
		return nil, ctx.Err()
	}
	if f.err != nil {
		p.Close()
		return nil, fmt.Errorf("%s stopped before it was ready (%v): see its messages above or in the log", path, p.exitErr(f.err))
	}
	if err := json.Unmarshal(f.line, &p.info); err != nil {
		p.Close()
		return nil, fmt.Errorf("%s printed something refdoctor cannot read (%v): is it the refdoctor-lab of this refdoctor?", path, err)
	}
	if err := p.info.Check(); err != nil {
		p.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return p, nil
}

// exitErr prefers the process's exit status to a read error.
func (p *labProcess) exitErr(readErr error) error {
	select {
	case <-p.done:
		if p.werr != nil {
			return p.werr
		}
	case <-time.After(2 * time.Second):
	}
	return readErr
}

// ResetRateLimit refills the named registry's pull budget.
func (p *labProcess) ResetRateLimit(name string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, err := fmt.Fprintf(p.stdin, "reset-rate-limit %s\n", name); err != nil {
		return fmt.Errorf("the lab is gone: %w", err)
	}
	line, err := p.out.ReadBytes('\n')
	if err != nil {
		return fmt.Errorf("the lab did not answer: %w", err)
	}
	var r struct {
		OK    bool   `json:"ok"`
		Error string `json:"error"`
	}
	if err := json.Unmarshal(line, &r); err != nil {
		return fmt.Errorf("the lab answered %q: %w", strings.TrimSpace(string(line)), err)
	}
	if !r.OK {
		return errors.New(r.Error)
	}
	return nil
}

// Close stops the lab: the end of its stdin tells it to remove its folder
// and exit; one that does not within ten seconds is killed.
func (p *labProcess) Close() error {
	_ = p.stdin.Close()
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
		p.stdout.Close()
		return fmt.Errorf("%s did not stop within 10s and was killed; its folder %s may be left", labBinary, p.info.Dir)
	}
	p.stdout.Close()
	return nil
}
