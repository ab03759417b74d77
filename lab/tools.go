package lab

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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
