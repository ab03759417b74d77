package cli_test

import (
	"strings"
	"testing"

	"github.com/refdoctor/refdoctor/lab"
	"github.com/refdoctor/refdoctor/lab/labtest"
)

// TestTagsFailedListing: a listing that failed leads with why, never with
// "0 referrer tags for 0 subjects".
func TestTagsFailedListing(t *testing.T) {
	t.Parallel()
	l := labtest.StartT(t, lab.Spec{Name: "refuse", Profile: lab.ProfileAuthRefuse})
	reg, _ := l.Get("refuse")
	code, out, errOut := run(t, append(labArgs(t, l), "tags", reg.Host+"/demo/app")...)
	first, _, _ := strings.Cut(out, "\n")
	if code == 0 || strings.Contains(out, "0 referrer tags") || !strings.Contains(first, "could not be read") {
		t.Fatalf("exit %d, first line %q\n%s%s", code, first, out, errOut)
	}
}
