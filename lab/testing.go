package lab

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// StartT starts a lab for one test or benchmark and closes it when that
// ends; a lab that cannot start fails the test.
func StartT(tb testing.TB, specs ...Spec) *Lab {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	l, err := Start(ctx, WithSpecs(specs...))
	if err != nil {
		tb.Fatalf("start lab: %v", err)
	}
	tb.Cleanup(func() { _ = l.Close() })
	return l
}

// RunTool runs an independent client (oras, regctl, crane) in dir, with
// HOME and DOCKER_CONFIG there so no machine setting leaks in, and returns
// its stdout. A missing client skips the test, except under CI, where it
// means .ci/run is broken.
func RunTool(tb testing.TB, dir, name string, args ...string) []byte {
	tb.Helper()
	path, err := ReferenceTool(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			tb.Fatalf("reference client %s missing in CI: %v", name, err)
		}
		tb.Skipf("reference client %s not available: %v", name, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "HOME="+dir, "DOCKER_CONFIG="+dir, "NO_COLOR=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		tb.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return out
}
