// Package jsondoc writes refdoctor's JSON documents one way, so that a
// screen saved from the TUI is the same document as the command's
// -o json: two-space indent, one document, a final newline.
package jsondoc

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Encode writes v as one indented JSON document.
func Encode(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// WriteFile writes v to path atomically (a temporary file in the same
// folder, synced and renamed), mode 0600: a document may name internal
// hosts and repositories.
func WriteFile(path string, v any) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, ".refdoctor-*.json")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if err := Encode(tmp, v); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
