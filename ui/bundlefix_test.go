package ui

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/refdoctor/refdoctor/finding"
	"github.com/refdoctor/refdoctor/internal/craft"
)

// TestBundleScreenSaysWhatToDoPerCode: a whole bundle whose image
// manifest names its layers twice ("layers" and "Layers"). The Bundle
// screen says under the code what to do about it (do not import; report
// it to the publisher), not the advice for a bundle changed in transit
// (re-export and compare sha256sum), which would send the operator to
// export the same manifest again.
func TestBundleScreenSaysWhatToDoPerCode(t *testing.T) {
	l := sharedLab(t)
	path := filepath.Join(t.TempDir(), "ambiguous.tgz")
	if err := os.WriteFile(path, craft.ValidWith(craft.LayersTwice()).Tgz(), 0o600); err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, l, 120, 40, func(dir string, o *Options) { o.Bundle = path })
	h.keys("6")
	v := h.waitFor("the verdict", func(v string) bool { return idle(v) && strings.Contains(v, "do not import") })
	flat := strings.Join(strings.Fields(v), " ")
	for _, want := range []string{"fail AmbiguousDocument 1", finding.AmbiguousDocument.Remedy(), `the key "Layers"`} {
		if !strings.Contains(flat, want) {
			t.Errorf("the screen lacks %q:\n%s", want, v)
		}
	}
	if strings.Contains(flat, "compare sha256sum") {
		t.Errorf("the screen gives the advice for a bundle changed in transit:\n%s", v)
	}
}
