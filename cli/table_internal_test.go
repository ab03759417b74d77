package cli

import (
	"bytes"
	"strings"
	"testing"
)

// TestTableFitsTheTerminal: in a terminal too narrow for every value the
// flexible columns are cut (digest first, type next) and every line fits;
// in one wide enough, and when the output is not a terminal (width 0),
// every value is printed whole.
func TestTableFitsTheTerminal(t *testing.T) {
	digest := "sha256:" + strings.Repeat("8f", 32)
	typ := "application/vnd.dev.cosign.simplesigning.v1+json"
	build := func() *table {
		tb := &table{indent: "  ", head: []string{"CATEGORY", "TYPE", "DIGEST", "SIZE", "SOURCE"}, flex: []int{2, 1}, floor: map[int]int{2: 19, 1: 24}}
		tb.add("└── signature", typ, digest, "534B", "cosign-tag")
		return tb
	}
	for _, width := range []int{0, 200} {
		var b bytes.Buffer
		build().writeWidth(&b, width)
		if !strings.Contains(b.String(), typ) || !strings.Contains(b.String(), digest) {
			t.Errorf("width %d cut a value:\n%s", width, b.String())
		}
	}
	var b bytes.Buffer
	build().writeWidth(&b, 80)
	for _, line := range strings.Split(strings.TrimRight(b.String(), "\n"), "\n") {
		if n := textWidth(line); n > 80 {
			t.Errorf("line of %d cells in 80: %q", n, line)
		}
	}
	if strings.Contains(b.String(), digest) || !strings.Contains(b.String(), "sha256:8f8f8f8f8f8…") || !strings.Contains(b.String(), "cosign-tag") {
		t.Errorf("at 80 columns the digest is not the column cut first:\n%s", b.String())
	}
}
