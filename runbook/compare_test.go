package runbook_test

import (
	"net"
	"strings"
	"testing"

	"github.com/refdoctor/refdoctor/finding"
	"github.com/refdoctor/refdoctor/lab"
	"github.com/refdoctor/refdoctor/lab/labtest"
	"github.com/refdoctor/refdoctor/runbook"
)

// TestCompareStep: the "no referrers" and "partial referrers" steps lead
// to the compare step; it is skipped without a source, fails naming the
// missing referrers after an image-only copy, passes after a copy with
// referrers, and is incomplete (nothing missing) when the mirror cannot be
// reached. Its commands carry both references.
func TestCompareStep(t *testing.T) {
	t.Parallel()
	l := labtest.StartT(t, lab.Spec{Name: "source", Profile: lab.ProfileOCI11}, lab.Spec{Name: "mirror", Profile: lab.ProfileOCI11, NoSeed: true})
	src, _ := l.Get("source")
	dst, _ := l.Get("mirror")
	b := mustLoad(t)
	for _, id := range []string{"issue-no-referrers", "issue-partial-referrers"} {
		s, _ := b.Step(id)
		found := false
		for _, n := range s.Next {
			found = found || n == "compare-with-source"
		}
		if !found {
			t.Errorf("step %s does not lead to compare-with-source: %v", id, s.Next)
		}
	}
	source := l.Seed.Ref(src.Host)
	dir := t.TempDir()
	labtest.RunTool(t, dir, "crane", "copy", "--insecure", source, dst.Host+"/bare/app:"+l.Seed.Tag)
	labtest.RegctlOneRequestAtATime(t, dir, []string{src.Host, dst.Host}, "image", "copy", "--referrers", "--digest-tags", source, dst.Host+"/full/app:"+l.Seed.Tag)

	res := labEngine(t, l, runbook.Targets{Image: dst.Host + "/bare/app:" + l.Seed.Tag}).Run(t.Context(), "compare-with-source", nil)
	if res.Status != runbook.StatusSkipped || !strings.Contains(res.Summary, "--source") {
		t.Errorf("without a source: %s %q", res.Status, res.Summary)
	}

	bare := labEngine(t, l, runbook.Targets{Image: dst.Host + "/bare/app:" + l.Seed.Tag, Source: source})
	res = bare.Run(t.Context(), "compare-with-source", nil)
	if res.Status != runbook.StatusFailed || res.Incomplete || res.Compare == nil || res.Compare.Missing != 7 || !hasCode(res.Findings, finding.CosignTagNotCopied) {
		t.Fatalf("after an image-only copy: %s incomplete %v %q", res.Status, res.Incomplete, res.Summary)
	}
	step, _ := b.Step("compare-with-source")
	cmds, err := step.Render(bare.Targets())
	if err != nil || !strings.Contains(cmds[0].Text, "compare --platforms "+source+" "+dst.Host+"/bare/app:"+l.Seed.Tag) ||
		!strings.Contains(cmds[0].Text, "--plain-http "+src.Host) || !strings.Contains(cmds[0].Text, "--plain-http "+dst.Host) {
		t.Errorf("commands %v %v", cmds, err)
	}

	res = labEngine(t, l, runbook.Targets{Image: dst.Host + "/full/app:" + l.Seed.Tag, Source: source}).Run(t.Context(), "compare-with-source", nil)
	if res.Status != runbook.StatusPassed || res.Compare == nil || !res.Compare.Same {
		t.Fatalf("after a copy with referrers: %s %q", res.Status, res.Summary)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	res = labEngine(t, l, runbook.Targets{Image: closed + "/gone/app:v1", Source: source, PlainHTTP: []string{closed}}).Run(t.Context(), "compare-with-source", nil)
	if res.Status != runbook.StatusFailed || !res.Incomplete || res.Compare == nil || res.Compare.Missing != 0 || !strings.Contains(res.Summary, "destination") {
		t.Fatalf("unreachable mirror: %s incomplete %v %q", res.Status, res.Incomplete, res.Summary)
	}
}
