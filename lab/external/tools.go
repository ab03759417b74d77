// Package external runs, for tests, what lives outside refdoctor's
// process: the independent reference clients (oras, regctl, crane,
// cosign), built by `go tool` from tools/go.mod, and Debian's
// docker-registry (distribution v2.8) as a real registry process. It
// imports testing and is imported only by tests: the refdoctor binary
// never links it. Tests elsewhere reach it through lab/labtest; the lab's
// own tests, which lab/labtest cannot serve (it imports lab), use it
// directly.
package external

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// ReferenceTool finds an independent client (oras, regctl, crane, or
// cosign) for cross-checks: $REFDOCTOR_TOOLS_BIN/NAME as .ci/run links
// them, else the one `go tool -n` builds from tools/go.mod (cosign: from
// tools/cosign/go.mod, a module of its own because it is large).
func ReferenceTool(name string) (string, error) {
	if dir := os.Getenv("REFDOCTOR_TOOLS_BIN"); dir != "" {
		p := filepath.Join(dir, name)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	modfile := os.Getenv("REFDOCTOR_TOOLS_MODFILE")
	if modfile == "" {
		var err error
		if modfile, err = findToolsModfile(); err != nil {
			return "", err
		}
	}
	if name == "cosign" {
		modfile = filepath.Join(filepath.Dir(modfile), "cosign", "go.mod")
	}
	out, err := exec.Command("go", "tool", "-modfile="+modfile, "-n", name).Output()
	if err != nil {
		return "", fmt.Errorf("build %s from %s: %w (run ./.ci/run, or go tool -modfile=%s -n %s)", name, modfile, err, modfile, name)
	}
	return strings.TrimSpace(string(out)), nil
}

func findToolsModfile() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		p := filepath.Join(dir, "tools", "go.mod")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("tools/go.mod not found above the working directory")
		}
		dir = parent
	}
}

// RunTool runs an independent client (oras, regctl, crane, cosign) in
// dir, with HOME and DOCKER_CONFIG there so no machine setting leaks in,
// and returns its stdout. A missing client skips the test, except under
// CI, where it means .ci/run is broken.
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
