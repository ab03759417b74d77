package mirror

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// An export writes OUT to a hidden temporary file next to it and renames
// it into place when whole. A killed export (SIGKILL, power loss) leaves
// that file behind, hundreds of MB perhaps. Its name carries the
// exporter's process id, ".OUT.partial-PID-RANDOM", so the next export of
// the same OUT removes the partial files whose process is gone.

// partialPrefix is the start of the temporary names for out.
func partialPrefix(out string) string { return "." + filepath.Base(out) + ".partial-" }

// createPartial creates the temporary file for out.
func createPartial(out string) (*os.File, error) {
	return os.CreateTemp(filepath.Dir(out), partialPrefix(out)+strconv.Itoa(os.Getpid())+"-*")
}

// staleAge is how old a partial file without a process id (written by an
// older refdoctor) must be to count as abandoned.
const staleAge = time.Hour

// removeStalePartials removes the partial files of out left by exports
// that are no longer running, and returns their names.
func removeStalePartials(out string) []string {
	dir, prefix := filepath.Dir(out), partialPrefix(out)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var removed []string
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), prefix)
		if !ok || !e.Type().IsRegular() {
			continue
		}
		pidText, _, hasPID := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidText)
		switch {
		case hasPID && err == nil && pid > 0:
			if pid == os.Getpid() || processAlive(pid) {
				continue // an export running now
			}
		default:
			info, err := e.Info()
			if err != nil || time.Since(info.ModTime()) < staleAge {
				continue
			}
		}
		path := filepath.Join(dir, e.Name())
		if os.Remove(path) == nil {
			removed = append(removed, path)
		}
	}
	return removed
}
