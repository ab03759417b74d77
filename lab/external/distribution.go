//go:build linux

package external

// This file runs a second, independent registry implementation next to the
// in-process olareg registries: Debian's docker-registry, which is the CNCF
// distribution v2.8 server. It has no referrers API and answers
// /v2/<name>/referrers/<digest> with the Go mux's plain-text 404, which is
// exactly the "OCI 1.0, tag fallback only" registry most air-gapped sites
// still run. It is a real process, so tests see its real replies rather than
// anyone's idea of them.

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"
)

// DistributionDefaultPath is where Debian's docker-registry package installs
// the server.
const DistributionDefaultPath = "/usr/bin/docker-registry"

// ErrDistributionMissing means the docker-registry binary is not installed.
// Tests use it to tell "not installed" (skip, or fail in CI) from "installed
// but broken" (always fail).
var ErrDistributionMissing = errors.New(`docker-registry (distribution v2) is not installed: install it with "apt-get install docker-registry"`)

const (
	// distributionStartTimeout bounds the wait for the "listening on" log
	// line; the server is up in well under a second on a healthy machine.
	distributionStartTimeout = 15 * time.Second
	// distributionStopGrace is how long SIGTERM gets before SIGKILL.
	distributionStopGrace = 5 * time.Second
	// distributionOutputLines is how much of the server's output is kept
	// for error messages and RecentOutput.
	distributionOutputLines = 200
)

// distributionListening matches distribution's startup line, for example
//
//	time="..." level=info msg="listening on 127.0.0.1:40601" go.version=go1.19.8 instance.id=... version=2.8.2+ds1
//
// (with ", tls" after the address when TLS is configured, which the lab
// never does).
var distributionListening = regexp.MustCompile(`listening on (\S+?:\d+)`)

// Distribution is Debian's docker-registry (distribution v2.8) running as a
// child process, in its own process group, on 127.0.0.1 with filesystem
// storage under Dir/data.
type Distribution struct {
	// Host is 127.0.0.1:PORT, the address the server reported itself.
	Host string
	// Dir holds the server's config file and its storage (Dir/data).
	Dir string
	// ConfigPath is the YAML config the server was started with.
	ConfigPath string
	// PID is the server's process id (and process group id).
	PID int

	cmd     *exec.Cmd
	output  *distributionOutput
	exited  chan struct{} // closed once cmd.Wait has returned
	waitErr error         // cmd.Wait's result, readable once exited is closed
	drained chan struct{} // closed once the output reader has stopped
	pipe    *os.File      // read end of the server's stdout+stderr

	closeOnce sync.Once
	closeErr  error
	tempDir   bool // Dir was made by StartDistribution and is removed by Close
}

// DistributionBinary returns the path of the docker-registry binary: the one
// in PATH, else Debian's /usr/bin/docker-registry. The error wraps
// ErrDistributionMissing when neither exists.
func DistributionBinary() (string, error) {
	if p, err := exec.LookPath("docker-registry"); err == nil {
		return p, nil
	}
	if fi, err := os.Stat(DistributionDefaultPath); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
		return DistributionDefaultPath, nil
	}
	return "", fmt.Errorf("no docker-registry in PATH or at %s: %w", DistributionDefaultPath, ErrDistributionMissing)
}

// StartDistribution writes a config into dir, starts docker-registry on
// 127.0.0.1 with a free port and returns once the server has said where it
// listens. ctx bounds the start only (at most 15 s); the server then runs
// until Close. An empty dir means a fresh temporary directory that Close
// removes. extraConfig is YAML appended to the config (top-level sections
// such as auth).
//
// The server's output is read for as long as it runs, so it can never block
// on a full pipe; the last lines are kept for RecentOutput and for errors.
func StartDistribution(ctx context.Context, dir string, extraConfig ...string) (_ *Distribution, err error) {
	bin, err := DistributionBinary()
	if err != nil {
		return nil, err
	}
	d := &Distribution{
		Dir:     dir,
		output:  &distributionOutput{},
		exited:  make(chan struct{}),
		drained: make(chan struct{}),
	}
	if d.Dir == "" {
		if d.Dir, err = os.MkdirTemp("", "refdoctor-distribution-"); err != nil {
			return nil, fmt.Errorf("distribution: temp dir: %w", err)
		}
		d.tempDir = true
		defer func() {
			if err != nil {
				_ = os.RemoveAll(d.Dir)
			}
		}()
	}
	if d.Dir, err = filepath.Abs(d.Dir); err != nil {
		return nil, fmt.Errorf("distribution: %w", err)
	}
	if d.ConfigPath, err = writeDistributionConfig(d.Dir, extraConfig...); err != nil {
		return nil, err
	}

	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("distribution: output pipe: %w", err)
	}
	cmd := exec.Command(bin, "serve", d.ConfigPath)
	cmd.Dir = d.Dir
	cmd.Env = distributionEnv(os.Environ())
	cmd.Stdin = nil // /dev/null
	// One pipe for both streams: the "listening on" line is on stderr, the
	// access log on stdout, and *os.File outputs need no copying goroutines.
	cmd.Stdout, cmd.Stderr = w, w
	cmd.SysProcAttr = &syscall.SysProcAttr{
		// Its own group, so a terminal's Ctrl-C reaches the test binary or
		// the demo, which then stops it in order, and Close can signal it
		// and anything it may spawn together.
		Setpgid: true,
		// If the test binary dies (a panic, a go test timeout) the server
		// must not outlive it and hold the machine's ports and CI's clock.
		// Linux sends this when the thread that forked dies; Go keeps its
		// threads for the process's life unless a goroutine exits while
		// locked to one, which nothing here does.
		Pdeathsig: syscall.SIGKILL,
	}
	if err := cmd.Start(); err != nil {
		r.Close()
		w.Close()
		return nil, fmt.Errorf("distribution: start %s: %w", bin, err)
	}
	w.Close() // the child holds its own copy; EOF on r now means it is gone
	d.cmd, d.pipe, d.PID = cmd, r, cmd.Process.Pid

	go func() {
		d.waitErr = cmd.Wait()
		close(d.exited)
	}()
	listening := make(chan string, 1)
	go d.readOutput(r, listening)

	startCtx, cancel := context.WithTimeout(ctx, distributionStartTimeout)
	defer cancel()
	select {
	case host := <-listening:
		d.Host = host
		return d, nil
	case <-d.exited:
		d.stopAndReap()
		return nil, fmt.Errorf("distribution: %s exited before listening (%v); output:\n%s", bin, d.waitErr, d.output.String())
	case <-startCtx.Done():
		d.stopAndReap()
		cause := startCtx.Err()
		if ctx.Err() == nil {
			cause = fmt.Errorf("no %q log line within %s", "listening on", distributionStartTimeout)
		}
		return nil, fmt.Errorf("distribution: start %s: %w; output:\n%s", bin, cause, d.output.String())
	}
}

// Close stops the server: SIGTERM to its process group, SIGKILL after 5 s,
// then waits for it and for its output to drain. It is safe to call more
// than once and from several goroutines; every call returns the first
// call's result. The error is non-nil only when the server had died on its
// own before Close, which a test should hear about.
func (d *Distribution) Close() error {
	if d == nil || d.cmd == nil {
		return nil
	}
	d.closeOnce.Do(func() {
		select {
		case <-d.exited:
			d.closeErr = fmt.Errorf("distribution on %s had exited before Close: %v; output:\n%s", d.Host, d.waitErr, d.output.String())
		default:
		}
		d.stopAndReap()
		if d.tempDir {
			if err := os.RemoveAll(d.Dir); err != nil && d.closeErr == nil {
				d.closeErr = fmt.Errorf("distribution: remove %s: %w", d.Dir, err)
			}
		}
	})
	return d.closeErr
}

// URL is the server's base URL (plain HTTP).
func (d *Distribution) URL() string { return "http://" + d.Host }

// RecentOutput is the tail of the server's log (stderr) and access log
// (stdout), for test failure messages.
func (d *Distribution) RecentOutput() string { return d.output.String() }

// stopAndReap signals the group, escalates, and waits for the process and
// the output reader. Signals go out only while the process is unreaped, so
// its PID, and so its group id, cannot have been reused.
func (d *Distribution) stopAndReap() {
	d.signalGroup(syscall.SIGTERM)
	select {
	case <-d.exited:
	case <-time.After(distributionStopGrace):
		d.signalGroup(syscall.SIGKILL)
		<-d.exited
	}
	// The leader is gone; something it spawned could still hold the pipe's
	// write end, so stop waiting for EOF after a moment.
	select {
	case <-d.drained:
	case <-time.After(2 * time.Second):
		d.signalGroup(syscall.SIGKILL)
		_ = d.pipe.Close()
		<-d.drained
	}
	_ = d.pipe.Close()
}

func (d *Distribution) signalGroup(sig syscall.Signal) {
	select {
	case <-d.exited:
		// Reaped: the group may hold nothing of ours any more. A member
		// other than the leader could still be alive, but the leader's id
		// is free for reuse, so do not guess.
		return
	default:
	}
	if err := syscall.Kill(-d.PID, sig); err != nil {
		_ = d.cmd.Process.Signal(sig)
	}
}

// readOutput keeps reading the server's output until EOF, remembers the
// recent lines, and reports the first "listening on" address.
func (d *Distribution) readOutput(r io.Reader, listening chan<- string) {
	defer close(d.drained)
	br := bufio.NewReaderSize(r, 64<<10)
	found := false
	for {
		line, err := br.ReadString('\n')
		if line != "" {
			line = strings.TrimRight(line, "\r\n")
			d.output.add(line)
			if !found {
				if m := distributionListening.FindStringSubmatch(line); m != nil {
					if host, ok := distributionLoopbackHost(m[1]); ok {
						found = true
						listening <- host
					}
				}
			}
		}
		if err != nil {
			return
		}
	}
}

// distributionLoopbackHost checks that addr is host:port with a real port
// and returns it in the form refdoctor's config expects.
func distributionLoopbackHost(addr string) (string, bool) {
	host, port, err := net.SplitHostPort(strings.TrimSuffix(addr, ","))
	if err != nil || port == "" || port == "0" {
		return "", false
	}
	if host == "" || host == "::" || host == "0.0.0.0" {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port), true
}

// writeDistributionConfig writes dir/config.yml and makes dir/data. Paths are
// written as JSON strings, which are valid YAML double-quoted scalars, so no
// directory name can break the file.
func writeDistributionConfig(dir string, extraConfig ...string) (string, error) {
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(data, 0o755); err != nil {
		return "", fmt.Errorf("distribution: storage dir: %w", err)
	}
	root, err := json.Marshal(data)
	if err != nil {
		return "", fmt.Errorf("distribution: %w", err)
	}
	// A fixed secret silences the "No HTTP secret provided" warning; the
	// text formatter pins the log line format readOutput parses.
	cfg := fmt.Sprintf(`version: 0.1
log:
  level: info
  formatter: text
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:0
  secret: %q
`, root, rand.Text()) + strings.Join(extraConfig, "")
	path := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		return "", fmt.Errorf("distribution: write config: %w", err)
	}
	return path, nil
}

// distributionEnv drops REGISTRY_* variables: distribution lets them
// override any config key (REGISTRY_HTTP_ADDR, REGISTRY_STORAGE...), and a
// stray one from the operator's shell must not move the lab's server.
func distributionEnv(env []string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		if strings.HasPrefix(kv, "REGISTRY_") {
			continue
		}
		out = append(out, kv)
	}
	return out
}

// distributionOutput is a bounded tail of the server's output.
type distributionOutput struct {
	mu    sync.Mutex
	lines []string
}

func (o *distributionOutput) add(line string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.lines) == distributionOutputLines {
		copy(o.lines, o.lines[1:])
		o.lines = o.lines[:len(o.lines)-1]
	}
	o.lines = append(o.lines, line)
}

func (o *distributionOutput) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return strings.Join(o.lines, "\n")
}
