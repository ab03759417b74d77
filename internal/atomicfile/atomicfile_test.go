package atomicfile_test

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/refdoctor/refdoctor/internal/atomicfile"
)

// TestWriteIsAllOrNothing: a write that fails half way leaves the old
// file as it was and nothing else in the folder; one that succeeds
// replaces it whole, with the mode asked for.
func TestWriteIsAllOrNothing(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "metrics.prom")
	if err := os.WriteFile(path, []byte("old\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := atomicfile.Write(path, 0o644, func(w io.Writer) error {
		if _, err := w.Write([]byte("half of the new")); err != nil {
			return err
		}
		return errors.New("the disk is full")
	})
	if err == nil {
		t.Fatalf("a failing fill: %v", err)
	}
	if got, _ := os.ReadFile(path); string(got) != "old\n" {
		t.Errorf("a failed write changed the file: %q", got)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("a failed write left %d files behind", len(entries)-1)
	}
	if err := atomicfile.WriteBytes(path, 0o644, []byte("new\n")); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(path)
	if got, _ := os.ReadFile(path); string(got) != "new\n" || fi.Mode().Perm() != 0o644 {
		t.Errorf("after a write: %q, mode %v", got, fi.Mode().Perm())
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("a write left %d temporary files", len(entries)-1)
	}
}
