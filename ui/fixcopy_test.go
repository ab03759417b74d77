package ui

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/refdoctor/refdoctor/finding"
	"github.com/refdoctor/refdoctor/lab"
)

// statusOf is the status line of a frame (above the key hints).
func statusOf(v string) string {
	lines := strings.Split(v, "\n")
	return strings.TrimRight(lines[len(lines)-2], " ")
}

// footerOf is the key hint line of a frame.
func footerOf(v string) string {
	lines := strings.Split(v, "\n")
	return lines[len(lines)-1]
}

// lineOf is the screen line (0 the tab bar) that holds every sub, -1 if
// none does.
func lineOf(v string, subs ...string) int {
	for i, l := range strings.Split(v, "\n") {
		if contains(subs...)(l) {
			return i
		}
	}
	return -1
}

// TestCopyFixInTheComparison: in the comparison, c puts the selected
// row's fix command on the clipboard, whole, with the pair's references
// in it, and the status line names it; a click on a row selects it, and c
// then copies that row's fix; a row without a fix says so and copies
// nothing.
func TestCopyFixInTheComparison(t *testing.T) {
	ml := sharedMirrorLab(t)
	missing := "regctl image copy --referrers " + ml.source + " " + ml.mirror
	cosign := "regctl image copy --digest-tags " + ml.source + " " + ml.mirror
	for _, sz := range sizes {
		t.Run(fmt.Sprintf("%dx%d", sz.w, sz.h), func(t *testing.T) {
			h := newHarness(t, ml.lab, sz.w, sz.h, func(dir string, o *Options) {
				ml.options(ml.mirror)(dir, o)
				o.Mouse = true
			})
			h.keys("5")
			h.waitFor("the Referrers screen", contains("[5 Ref"))
			h.keys("s")
			v := h.waitFor("the comparison", contains("compare 1 both · 6 missing"))
			if !strings.Contains(footerOf(v), "c copy fix") {
				t.Errorf("the key hints do not offer c: %q", footerOf(v))
			}

			// The second row: the Notary signature the mirror's index
			// lacks; its fix holds the copy command.
			h.keys("j", "c")
			v = h.waitFor("the copy named", func(v string) bool {
				return strings.HasPrefix(statusOf(v), "copied command: regctl image copy ")
			})
			if !strings.Contains(v, "2/7") || !strings.Contains(v, "ReferrerMissingAtMirror") {
				t.Errorf("c was not pressed on the missing signature:\n%s", v)
			}
			n := h.waitForCopy("the missing signature's fix", missing)
			status := statusOf(v)
			switch {
			case sz.w >= 120 && !strings.HasPrefix(status, "copied command: "+missing):
				t.Errorf("the status line does not name the whole command %q: %q", missing, status)
			case sz.w < 120 && (!strings.Contains(status, " … ") || !strings.HasSuffix(status, " "+ml.mirror)):
				t.Errorf("the status line is not shortened to both ends at %d columns: %q", sz.w, status)
			}
			checkFrame(t, normalize(v, ml.lab, h.dir), sz.w, sz.h)

			// A click on the fourth row (cosign's SPDX SBOM, on a cosign
			// tag the copy did not bring) selects it.
			v = h.view()
			y := lineOf(v, "MISSING", "sha256:b52b9b7eac4c")
			if y < 0 {
				t.Fatalf("no row of the SPDX SBOM on screen:\n%s", v)
			}
			h.tm.Send(tea.MouseClickMsg{Button: tea.MouseLeft, X: 8, Y: y})
			v = h.waitFor("the clicked row selected", contains("4/7", "sbom sha256:b52b9b7eac4c", "CosignTagNotCopied"))
			if l := strings.Split(v, "\n")[y]; !strings.HasPrefix(l, "› MISSING") {
				t.Errorf("the cursor is not on the clicked line: %q", l)
			}
			// A click on the column header selects nothing else.
			h.tm.Send(tea.MouseClickMsg{Button: tea.MouseLeft, X: 8, Y: lineOf(v, "STATE", "CATEGORY")})
			if v := h.view(); !strings.Contains(v, "4/7") {
				t.Errorf("a click on the header moved the selection:\n%s", v)
			}
			h.keys("c")
			h.waitFor("the clicked row's fix named", func(v string) bool {
				return strings.HasPrefix(statusOf(v), "copied command: regctl image copy ") && strings.Contains(v, "4/7")
			})
			n2 := h.waitForCopy("the clicked row's fix", cosign)
			if n2 != n+1 {
				t.Errorf("%d copies after two c presses, want %d", n2, n+1)
			}

			// The sixth row is at both sides: no fix, and c says so.
			h.keys("j", "j", "c")
			v = h.waitFor("no fix said", func(v string) bool {
				return strings.HasPrefix(statusOf(v), "no fix for this row: the referrer is at both sides")
			})
			if !strings.Contains(v, "6/7") {
				t.Errorf("not on the row at both sides:\n%s", v)
			}
			// y copies the digest next; the clipboard got nothing between.
			h.keys("y")
			sbom := ""
			for _, r := range ml.lab.Seed.Referrers {
				if r.ArtifactType == "application/vnd.cyclonedx+json" {
					sbom = r.Digest
				}
			}
			if n3 := h.waitForCopy("the digest", sbom); n3 != n2+1 {
				t.Errorf("c on a row without a fix copied something: %d copies, want %d", n3, n2+1)
			}

			// ? lists c, once.
			h.keys("?")
			v = h.waitFor("the full help", contains("Keys", "(esc or ? closes)"))
			lines := strings.Split(v, "\n")
			body := strings.Join(lines[:len(lines)-2], "\n")
			if n := len(regexp.MustCompile(`(?:^|\s)c +copy fix`).FindAllString(body, -1)); n != 1 {
				t.Errorf("the full help lists c copy fix %d times:\n%s", n, body)
			}
		})
	}
}

// TestCopyFixOnTheReferrersScreen: the cursor moves on from the last
// referrer to the findings; c copies the selected finding's fix (its text
// when it holds no command) and says on a referrer that it has none.
func TestCopyFixOnTheReferrersScreen(t *testing.T) {
	l := sharedLab(t)
	for _, sz := range sizes {
		t.Run(fmt.Sprintf("%dx%d", sz.w, sz.h), func(t *testing.T) {
			h := newHarness(t, l, sz.w, sz.h, nil)
			h.keys("5")
			v := h.waitFor("the referrers", func(v string) bool { return idle(v) && strings.Contains(v, "7 referrers · ok") })
			if !strings.Contains(footerOf(v), "c copy fix") {
				t.Errorf("the key hints do not offer c: %q", footerOf(v))
			}
			h.keys("c")
			h.waitFor("no fix on a referrer", func(v string) bool {
				return strings.HasPrefix(statusOf(v), "a referrer has no fix of its own: ↓ past the referrers selects a finding")
			})
			// Seven referrers, then the finding.
			h.keys("j", "j", "j", "j", "j", "j", "j")
			v = h.waitFor("the finding selected", contains("finding 1/1", "› info  ReferrersOnPlatforms"))
			// On a finding, c leads the key hints (enter and y are for
			// referrers).
			if f := footerOf(v); !strings.HasPrefix(f, "c copy fix • ") {
				t.Errorf("the key hints on a finding do not start with c: %q", f)
			}
			h.keys("j")
			if v := h.view(); !strings.Contains(v, "finding 1/1") {
				t.Errorf("the cursor went past the last finding:\n%s", v)
			}
			h.keys("c")
			fix := finding.ReferrersOnPlatforms.Remedy()
			v = h.waitFor("the copy named", func(v string) bool { return strings.HasPrefix(statusOf(v), "copied fix: Include them") })
			if sz.w >= 120 && !strings.HasPrefix(statusOf(v), "copied fix: "+fix) {
				t.Errorf("the status line does not name the fix: %q", statusOf(v))
			}
			h.waitForCopy("the finding's fix", fix)
			// At another size the selected finding stays in view.
			h.tm.Send(tea.WindowSizeMsg{Width: 80, Height: 20})
			h.waitFor("the finding at 80x20", func(v string) bool {
				return strings.Count(v, "\n") == 19 && strings.Contains(v, "› info  ReferrersOnPlatforms")
			})
			h.tm.Send(tea.WindowSizeMsg{Width: sz.w, Height: sz.h})
			// Back up to the referrers: the tree's position again.
			h.keys("k")
			h.waitFor("the last referrer", contains("7/7"))
		})
	}
}

// TestCommandIn: the command a fix holds is what c copies; a fix without
// one is copied as text.
func TestCommandIn(t *testing.T) {
	cases := []struct{ fix, want string }{
		{finding.ReferrerMissingAtMirror.Remedy(), "regctl image copy --referrers SOURCE DEST"},
		{finding.MirrorNoFallbackTag.Remedy(), "regctl image copy --referrers SOURCE DEST"},
		{finding.CosignTagNotCopied.Remedy(), "regctl image copy --digest-tags SOURCE DEST"},
		{finding.ImageNotFound.Remedy(), "refdoctor tags HOST/REPO"},
		{finding.CachedVerdict.Remedy(), "refdoctor cache clear HOST"},
		{finding.ReferrersEmptyObject.Remedy(), "refdoctor probe HOST/REPO@DIGEST"},
		{finding.AuthFailed.Remedy(), "docker login HOST"},
		{"Write the fallback index the copy did not write (copying again does not help: clients that trust the registry's OCI-Subject header write none, and skip manifests that are there): regctl index create 127.0.0.1:5000/team/app:sha256-abc --digest sha256:def. Better still, have the registry serve the referrers API it announces.",
			"regctl index create 127.0.0.1:5000/team/app:sha256-abc --digest sha256:def"},
		{finding.ReferrerRewritten.Remedy(), ""},
		{finding.FallbackIndexDuplicate.Remedy(), "refdoctor bundle import"},
		{"Re-attach with oras or regctl.", ""},
	}
	for _, tc := range cases {
		if got := commandIn(tc.fix); got != tc.want {
			t.Errorf("commandIn(%q) = %q, want %q", tc.fix, got, tc.want)
		}
	}
}

// TestShortCommand: the status line's command keeps whole words from both
// ends, fits the width, and is the command itself when it fits.
func TestShortCommand(t *testing.T) {
	cmd := "regctl image copy --referrers 127.0.0.1:34707/demo/app:v1 127.0.0.1:34707/team/app:v1"
	if got := shortCommand(cmd, len(cmd)); got != cmd {
		t.Errorf("a command that fits was shortened: %q", got)
	}
	words := map[string]bool{}
	for _, f := range strings.Fields(cmd) {
		words[f] = true
	}
	for _, w := range []int{40, 52, 64, 80} {
		got := shortCommand(cmd, w)
		if ansi.StringWidth(got) > w {
			t.Errorf("width %d: %q is %d wide", w, got, ansi.StringWidth(got))
		}
		if !strings.HasPrefix(got, "regctl ") || !strings.HasSuffix(got, " 127.0.0.1:34707/team/app:v1") || !strings.Contains(got, " … ") {
			t.Errorf("width %d: %q does not keep both ends", w, got)
		}
		for _, f := range strings.Fields(got) {
			if f != "…" && !words[f] {
				t.Errorf("width %d: %q cuts the word %q", w, got, f)
			}
		}
	}
}

var refused struct {
	once sync.Once
	lab  *lab.Lab
	err  error
}

// refusedLab is one lab of a registry that refuses every request without
// a login (its findings carry fixes with commands); TestMain closes it.
func refusedLab(t *testing.T) (*lab.Lab, string) {
	t.Helper()
	refused.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		refused.lab, refused.err = lab.Start(ctx, lab.WithSpecs(lab.Spec{Name: "auth-refuse", Profile: lab.ProfileAuthRefuse}))
	})
	if refused.err != nil {
		t.Fatalf("start lab: %v", refused.err)
	}
	reg, ok := refused.lab.Get("auth-refuse")
	if !ok {
		t.Fatal("no lab registry auth-refuse")
	}
	return refused.lab, reg.Host
}

func closeRefusedLab() {
	if refused.lab != nil {
		_ = refused.lab.Close()
	}
}

// TestCopyFixInARegistrysDetail: on the Registries screen c says how to
// reach a fix; in a registry's detail the cursor moves on from the last
// exchange to the findings, and c copies the selected finding's fix (the
// login command; a fix without a command as its text).
func TestCopyFixInARegistrysDetail(t *testing.T) {
	l, host := refusedLab(t)
	login := "docker login " + host
	refused := strings.ReplaceAll(finding.ReferrersAuthRefused.Remedy(), "docker login HOST", login)
	for _, sz := range sizes {
		t.Run(fmt.Sprintf("%dx%d", sz.w, sz.h), func(t *testing.T) {
			h := newHarness(t, l, sz.w, sz.h, nil)
			h.keys("3")
			h.waitFor("the probe", func(v string) bool { return idle(v) && strings.Contains(v, "incomplete") })
			h.keys("c")
			h.waitFor("the way to a fix said", func(v string) bool {
				return strings.HasPrefix(statusOf(v), "enter opens the registry's findings; ↓ past the exchanges selects one")
			})
			h.keys("enter")
			v := h.waitFor("the detail", contains("EXCHANGES ("))
			if !strings.Contains(footerOf(v), "c copy fix") {
				t.Errorf("the key hints do not offer c: %q", footerOf(v))
			}
			h.keys("c")
			h.waitFor("no fix on an exchange", func(v string) bool {
				return strings.HasPrefix(statusOf(v), "an exchange has no fix of its own: ↓ past the exchanges selects a finding")
			})
			n, err := strconv.Atoi(regexp.MustCompile(`EXCHANGES \((\d+)\)`).FindStringSubmatch(v)[1])
			if err != nil || n == 0 {
				t.Fatalf("no exchanges counted: %v\n%s", err, v)
			}
			for range n {
				h.keys("j")
			}
			v = h.waitFor("the first finding selected", contains("› error AuthFailed"))
			if f := footerOf(v); !strings.HasPrefix(f, "c copy fix • ") {
				t.Errorf("the key hints on a finding do not start with c: %q", f)
			}
			h.keys("c")
			h.waitFor("the command named", func(v string) bool { return strings.HasPrefix(statusOf(v), "copied command: "+login) })
			c1 := h.waitForCopy("the login command", login)
			// The second finding's fix holds no command of its own: c
			// copies its text, whole.
			h.keys("j", "j", "c")
			v = h.waitFor("the text named", func(v string) bool { return strings.HasPrefix(statusOf(v), "copied fix: Log in with pull access") })
			if !strings.Contains(v, "› info  ReferrersAuthRefused") {
				t.Errorf("the cursor is not on the last finding:\n%s", v)
			}
			if c2 := h.waitForCopy("the second finding's fix", refused); c2 != c1+1 {
				t.Errorf("%d copies after two c presses on findings, want %d", c2, c1+1)
			}
			// Back up past the findings: an exchange again, enter opens it.
			h.keys("k", "k", "enter")
			h.waitFor("the last exchange open", contains("exchange "+strconv.Itoa(n)+" of "+strconv.Itoa(n)))
			h.keys("c")
			h.waitFor("no fix in an exchange", func(v string) bool {
				return strings.HasPrefix(statusOf(v), "an exchange has no fix of its own: esc, then ↓")
			})
			// ? lists c, once.
			h.keys("esc", "?")
			v = h.waitFor("the full help", contains("Keys", "(esc or ? closes)"))
			lines := strings.Split(v, "\n")
			body := strings.Join(lines[:len(lines)-2], "\n")
			if k := len(regexp.MustCompile(`(?:^|\s)c +copy fix`).FindAllString(body, -1)); k != 1 {
				t.Errorf("the full help lists c copy fix %d times:\n%s", k, body)
			}
		})
	}
}

// TestCopyFixOnTheTagsScreen: a listing the registry refused has only its
// finding, which the cursor selects; c copies the login command; a
// filter hides the findings and c says so.
func TestCopyFixOnTheTagsScreen(t *testing.T) {
	l, host := refusedLab(t)
	login := "docker login " + host
	for _, sz := range sizes {
		t.Run(fmt.Sprintf("%dx%d", sz.w, sz.h), func(t *testing.T) {
			h := newHarness(t, l, sz.w, sz.h, nil)
			h.keys("4")
			v := h.waitFor("the refused listing", func(v string) bool { return idle(v) && strings.Contains(v, "FINDINGS") })
			if !strings.Contains(v, "› error AuthRefused") {
				t.Errorf("the finding is not selected:\n%s", v)
			}
			if f := footerOf(v); !strings.HasPrefix(f, "c copy fix • ") {
				t.Errorf("the key hints on a finding do not start with c: %q", f)
			}
			h.keys("k", "k", "c")
			v = h.waitFor("the command named", func(v string) bool { return strings.HasPrefix(statusOf(v), "copied command: "+login) })
			if !strings.Contains(v, "› error AuthRefused") {
				t.Errorf("k moved the cursor off the only row:\n%s", v)
			}
			n := h.waitForCopy("the login command", login)
			checkFrame(t, normalize(v, l, h.dir), sz.w, sz.h)
			// A filter hides the findings: c says so and copies nothing.
			h.keys("/", "x", "enter", "c")
			h.waitFor("the filter said", func(v string) bool {
				return strings.HasPrefix(statusOf(v), "the filter hides the findings: esc clears it")
			})
			h.keys("esc", "c")
			h.waitFor("the command named again", func(v string) bool {
				return strings.HasPrefix(statusOf(v), "copied command: "+login) && !strings.Contains(v, "/x")
			})
			if n2 := h.waitForCopy("the login command again", login); n2 != n+1 {
				t.Errorf("%d copies after two c presses, want %d", n2, n+1)
			}
		})
	}
}

// TestCopyFixOnTheTagsScreenWithTags: on a listing with tags, c on a tag
// says it has none and the key hints offer c only where there are
// findings.
func TestCopyFixOnTheTagsScreenWithTags(t *testing.T) {
	l := sharedLab(t)
	h := newHarness(t, l, 120, 40, nil)
	h.keys("4")
	v := h.waitFor("the listing", func(v string) bool { return idle(v) && strings.Contains(v, "tags for") })
	if strings.Contains(v, "FINDINGS") || strings.Contains(footerOf(v), "c copy fix") {
		t.Fatalf("the lab's listing has findings, or c is offered without them:\n%s", v)
	}
	h.keys("j", "c")
	h.waitFor("no findings said", func(v string) bool {
		return strings.HasPrefix(statusOf(v), "no findings here, so no fix to copy")
	})
	if got := h.clipboard(); len(got) != 0 {
		t.Errorf("c copied %q", got)
	}
}

// TestCopyFixInTheComparisonsFindings: the cursor moves on from the
// comparison's last row to the findings under the table (here: the
// destination refused the connection); c copies the selected finding's
// fix, which the detail under the list repeats.
func TestCopyFixInTheComparisonsFindings(t *testing.T) {
	ml := sharedMirrorLab(t)
	for _, sz := range sizes {
		t.Run(fmt.Sprintf("%dx%d", sz.w, sz.h), func(t *testing.T) {
			h := newHarness(t, ml.lab, sz.w, sz.h, ml.options(ml.closed+"/team/app:v1"))
			h.keys("5")
			h.waitFor("the Referrers screen", contains("[5 Ref"))
			h.keys("s")
			h.waitFor("the comparison", contains("compare 0 both · 7 could not tell · incomplete", "1/7"))
			// Seven rows, then the findings.
			h.keys("j", "j", "j", "j", "j", "j", "j")
			v := h.waitFor("the first finding selected", contains("finding 1/2", "› error ConnectionRefused"))
			if !strings.Contains(v, "fix: Check the host and port") {
				t.Errorf("the detail does not give the selected finding's fix:\n%s", v)
			}
			h.keys("c")
			fix := finding.ConnectionRefused.Remedy()
			h.waitFor("the copy named", func(v string) bool { return strings.HasPrefix(statusOf(v), "copied fix: "+fix) })
			n := h.waitForCopy("the finding's fix", fix)
			checkFrame(t, normalize(h.view(), ml.lab, h.dir), sz.w, sz.h)
			h.keys("j", "j", "c")
			v = h.waitFor("the last finding's copy named", func(v string) bool {
				return strings.HasPrefix(statusOf(v), "copied fix: Fix the failure named above")
			})
			if !strings.Contains(v, "finding 2/2") || !strings.Contains(v, "› error CompareIncomplete") {
				t.Errorf("the cursor is not on the last finding:\n%s", v)
			}
			if n2 := h.waitForCopy("the last finding's fix", finding.CompareIncomplete.Remedy()); n2 != n+1 {
				t.Errorf("%d copies after two c presses, want %d", n2, n+1)
			}
			// Back up to the rows: the last one, whose fix is its own.
			h.keys("k", "k", "c")
			h.waitFor("the last row's fix named", func(v string) bool {
				return strings.Contains(v, "7/7") && strings.HasPrefix(statusOf(v), "copied fix: Fix the failure named above and compare again")
			})
			h.waitForCopy("the last row's fix", finding.CompareIncomplete.Remedy())
		})
	}
}
