package ui

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/charmbracelet/x/exp/golden"

	"github.com/refdoctor/refdoctor/config"
	"github.com/refdoctor/refdoctor/lab"
	"github.com/refdoctor/refdoctor/lab/labtest"
)

// mirrorLab is a lab with the seeded image at "source" and a copy of it at
// "mirror" (no referrers API), made the way operators make one that loses
// referrers: crane copies the image alone, then regctl copies its
// CycloneDX SBOM, which writes the mirror's fallback index.
type mirrorLab struct {
	lab            *lab.Lab
	source, mirror string // image references
	closed         string // a host where nothing listens
}

var mirrors struct {
	once sync.Once
	ml   mirrorLab
	err  error
}

func sharedMirrorLab(t *testing.T) mirrorLab {
	t.Helper()
	mirrors.once.Do(func() {
		// The first test to ask starts the lab for all; TestMain closes
		// it (closeMirrorLab) before it looks for goroutines left behind.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		l, err := lab.Start(ctx, lab.WithSpecs(
			lab.Spec{Name: "source", Profile: lab.ProfileOCI11},
			lab.Spec{Name: "mirror", Profile: lab.ProfileFallback404, NoSeed: true}))
		if err != nil {
			mirrors.err = err
			return
		}
		src, _ := l.Get("source")
		dst, _ := l.Get("mirror")
		ml := mirrorLab{lab: l, source: l.Seed.Ref(src.Host), mirror: dst.Host + "/team/app:" + l.Seed.Tag}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			mirrors.err = err
			return
		}
		ml.closed = ln.Addr().String()
		_ = ln.Close()
		mirrors.ml = ml
	})
	if mirrors.err != nil {
		t.Fatalf("start the mirror lab: %v", mirrors.err)
	}
	ml := mirrors.ml
	copyOnce.Do(func() {
		src, _ := ml.lab.Get("source")
		dst, _ := ml.lab.Get("mirror")
		dir := t.TempDir()
		labtest.RunTool(t, dir, "crane", "copy", "--insecure", ml.source, ml.mirror)
		sbom := ""
		for _, r := range ml.lab.Seed.Referrers {
			if r.ArtifactType == "application/vnd.cyclonedx+json" {
				sbom = r.Digest
			}
		}
		repo := strings.TrimSuffix(ml.mirror, ":"+ml.lab.Seed.Tag)
		labtest.RunTool(t, dir, "regctl", "--host", "reg="+src.Host+",tls=disabled", "--host", "reg="+dst.Host+",tls=disabled",
			"image", "copy", src.Host+"/"+ml.lab.Seed.Repository+"@"+sbom, repo+"@"+sbom)
		copied = true
	})
	if !copied {
		t.Fatal("the copy to the mirror failed in an earlier test")
	}
	return ml
}

var (
	copyOnce sync.Once
	copied   bool
)

// closeMirrorLab closes the mirror lab, if a test started it.
func closeMirrorLab() {
	if mirrors.ml.lab != nil {
		_ = mirrors.ml.lab.Close()
	}
}

// mirrorOptions target the mirror's copy with its source.
func (ml mirrorLab) options(image string) func(dir string, o *Options) {
	return func(dir string, o *Options) {
		o.Image, o.Source = image, ml.source
		o.Config.SetHost(config.Registry{Host: ml.closed, PlainHTTP: true})
	}
}

// TestCompareView drives the Referrers screen's comparison (s) against a
// mirror that lost referrers, and against one that cannot be read, at
// 80x24 and 120x40, and compares the final view with its golden file.
func TestCompareView(t *testing.T) {
	ml := sharedMirrorLab(t)
	cases := []struct {
		name    string
		image   string
		drive   func(h *harness)
		checks  []string
		lacks   []string
		atLarge func(t *testing.T, v string)
	}{
		{
			name:  "missing",
			image: ml.mirror,
			drive: func(h *harness) {
				// The second row: the Notary signature, which the API
				// listed at the source and the mirror's index lacks.
				h.keys("j")
			},
			checks: []string{"compare 1 both · 6 missing · fail", "MISSING", "— missing",
				"signature", "cause:", "ReferrerMissingAtMirror", "fix:", "regctl image copy --referrers", "2/7"},
			lacks: []string{"could not tell", "unknown"},
			atLarge: func(t *testing.T, v string) {
				// Every row at once: 6 missing, the SBOM regctl copied at
				// both, found through the mirror's fallback index.
				if n := strings.Count(v, "MISSING "); n != 6 {
					t.Errorf("%d MISSING rows, want 6", n)
				}
				if !strings.Contains(v, "both      sbom        application/vnd.cyclonedx+json") || !strings.Contains(v, "tagidx") {
					t.Errorf("the copied SBOM is not shown at both sides, found by the fallback index")
				}
				if !strings.Contains(v, "tag schema (no referrers API)") {
					t.Errorf("the destination's method is not shown")
				}
			},
		},
		{
			name:  "unread",
			image: ml.closed + "/team/app:v1",
			drive: func(h *harness) {},
			checks: []string{"compare 0 both · 7 could not tell · incomplete", "unknown", "could not tell",
				"could not tell whether the destination holds it", "Connection refused"},
			lacks: []string{"MISSING", "— missing", "ReferrerMissingAtMirror"},
			atLarge: func(t *testing.T, v string) {
				if n := strings.Count(v, "api    could not tell") + strings.Count(v, "cosign could not tell"); n != 7 {
					t.Errorf("%d rows could not tell, want the source's 7", n)
				}
				if !strings.Contains(v, "ConnectionRefused") || !strings.Contains(v, "Nothing is called missing") {
					t.Errorf("the finding that says why is not shown")
				}
			},
		},
	}
	for _, tc := range cases {
		for _, sz := range sizes {
			t.Run(fmt.Sprintf("%s/%dx%d", tc.name, sz.w, sz.h), func(t *testing.T) {
				h := newHarness(t, ml.lab, sz.w, sz.h, ml.options(tc.image))
				h.keys("5")
				h.waitFor("the Referrers screen", contains("[5 Ref"))
				h.keys("s")
				h.waitFor("the comparison", func(v string) bool {
					return strings.Contains(v, "compare ") && (strings.Contains(v, " missing · ") || strings.Contains(v, "could not tell · "))
				})
				tc.drive(h)
				v := h.final()
				checkFrame(t, v, sz.w, sz.h)
				for _, want := range tc.checks {
					if !strings.Contains(v, want) {
						t.Errorf("the view lacks %q", want)
					}
				}
				for _, not := range tc.lacks {
					if strings.Contains(v, not) {
						t.Errorf("the view holds %q", not)
					}
				}
				if sz.h >= 40 {
					tc.atLarge(t, v)
				}
				if t.Failed() {
					t.Logf("the view:\n%s", v)
				}
				golden.RequireEqual(t, []byte(v))
			})
		}
	}
}

// TestCompareFromTheRunbook: the "No referrers found" and "Partial
// referrers" steps offer the comparison when a source is given (s opens
// it on the Referrers screen), and say how to give one when not.
func TestCompareFromTheRunbook(t *testing.T) {
	ml := sharedMirrorLab(t)
	h := newHarness(t, ml.lab, 120, 40, ml.options(ml.mirror))
	// The start list's second entry: no referrers discovered.
	h.keys("j", "enter")
	h.waitFor("the no-referrers step", contains("No referrers found for image", "COMPARE WITH THE SOURCE", "s shows"))
	h.keys("j")
	h.waitFor("the partial-referrers step", contains("Partial referrers", "COMPARE WITH THE SOURCE", "s shows", "s compare with source"))
	h.keys("s")
	v := h.waitFor("the comparison on the Referrers screen", contains("[5 Referrers]", "compare 1 both · 6 missing"))
	if !strings.Contains(v, "cause:") {
		t.Errorf("no cause under the cursor:\n%s", v)
	}
	// s again shows the tree; esc from the comparison too.
	h.keys("s")
	h.waitFor("the referrer tree", contains("REFERRERS ("))
	h.keys("s")
	h.waitFor("the comparison, kept", contains("compare 1 both · 6 missing"))
	h.keys("esc")
	h.waitFor("the referrer tree", contains("REFERRERS ("))

	// Without a source: the step says how to give one, s says so too.
	h2 := newHarness(t, ml.lab, 120, 40, func(dir string, o *Options) { o.Image = ml.mirror })
	h2.keys("j", "enter")
	h2.waitFor("the hint", contains("No referrers found for image", "COMPARE WITH THE SOURCE", "give the image it was copied from as Source"))
	h2.keys("s")
	h2.waitFor("the flash", contains("no source to compare with"))
	h2.keys("5")
	h2.waitFor("the Referrers screen", contains("REFERRERS ("))
	if v := h2.view(); strings.Contains(v, "s compare with source") {
		t.Errorf("the help offers a comparison without a source:\n%s", v)
	}
}

// TestCompareSourceFromTheForm: a source typed into the Start screen's
// form is what s compares with; a bad one is refused with the reason.
func TestCompareSourceFromTheForm(t *testing.T) {
	ml := sharedMirrorLab(t)
	h := newHarness(t, ml.lab, 120, 40, func(dir string, o *Options) { o.Image = ml.mirror })
	h.keys("e")
	h.waitFor("the form", contains("Source", "where the image was copied from"))
	h.keys("tab", "tab", "tab", "tab") // Registries, Plain HTTP, Insecure TLS, Image, Source
	for _, r := range "not a ref" {
		h.keys(string(r))
	}
	h.keys("enter")
	h.waitFor("the refusal", contains("source: "))
	for range "not a ref" {
		h.keys("backspace")
	}
	for _, r := range ml.source {
		h.keys(string(r))
	}
	h.keys("enter")
	h.waitFor("the targets", contains("source     "+ml.source))
	h.keys("5")
	h.waitFor("the Referrers screen", contains("s compare with source"))
	h.keys("s")
	// The view names lab hosts by their registry's name.
	h.waitFor("the comparison", contains("compare 1 both · 6 missing", "source      source demo/app:v1", "destination mirror team/app:v1"))
}
