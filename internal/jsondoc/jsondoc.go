// Package jsondoc writes refdoctor's JSON documents one way, so that a
// screen saved from the TUI is the same document as the command's
// -o json: two-space indent, one document, a final newline.
package jsondoc

import (
	"encoding/json"
	"io"

	"github.com/refdoctor/refdoctor/internal/atomicfile"
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
	return atomicfile.Write(path, 0o600, func(w io.Writer) error { return Encode(w, v) })
}
