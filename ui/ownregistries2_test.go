package ui

import (
	"strings"
	"testing"

	"github.com/refdoctor/refdoctor/config"
	"github.com/refdoctor/refdoctor/lab"
	"github.com/refdoctor/refdoctor/lab/labtest"
	"github.com/refdoctor/refdoctor/probe"
)

// otherPathLab is a lab of two registries whose repositories differ: a holds
// the seed at demo/app, b (empty otherwise) a copy at mirror/app made by
// regctl (the image, its referrers and its cosign tags), as a mirror
// under another path holds it.
func otherPathLab(t *testing.T) (l *lab.Lab, a, b lab.Registry) {
	t.Helper()
	l = ownLab(t, lab.Spec{Name: "a", Profile: lab.ProfileOCI11}, lab.Spec{Name: "b", Profile: lab.ProfileOCI11, NoSeed: true})
	a, _ = l.Get("a")
	b, _ = l.Get("b")
	// One request at a time: olareg loses referrers pushed side by side
	// (see RegctlOneRequestAtATime), and b must hold all of a's.
	dir := t.TempDir()
	hosts := []string{a.Host, b.Host}
	labtest.RegctlOneRequestAtATime(t, dir, hosts, "image", "copy", "--referrers", a.Host+"/demo/app:v1", b.Host+"/mirror/app:v1")
	for _, tag := range l.Seed.CosignTags {
		labtest.RunTool(t, dir, "regctl", "image", "copy", a.Host+"/demo/app:"+tag, b.Host+"/mirror/app:"+tag)
	}
	return l, a, b
}

// TestSwitchRegistryUsesItsOwnRepository: with --registry HOST/REPO
// targets whose repositories differ, ] on Tags and Referrers opens the
// next registry's own repository (b has no demo/app: keeping the first
// registry's path would fail with NAME_UNKNOWN), and [ comes back.
func TestSwitchRegistryUsesItsOwnRepository(t *testing.T) {
	l, a, b := otherPathLab(t)
	h := newHarness(t, l, 120, 40, func(dir string, o *Options) {
		o.Targets = []probe.Target{{Host: a.Host, Repository: "demo/app"}, {Host: b.Host, Repository: "mirror/app"}}
		o.Image = a.Host + "/demo/app:v1"
		o.Repository = a.Host + "/demo/app"
	})
	h.keys("4")
	h.waitFor("a's fallback tags", func(v string) bool { return idle(v) && strings.Contains(v, "a demo/app · 3 tags for 1 subject") })
	h.keys("]")
	v := h.waitFor("b's fallback tags", func(v string) bool { return idle(v) && strings.Contains(v, "b mirror/app ·") })
	if !strings.Contains(v, "b mirror/app · 3 tags for 1 subject") || strings.Contains(v, "NAME_UNKNOWN") {
		t.Errorf("] did not list b's own repository:\n%s", v)
	}
	h.keys("[")
	h.waitFor("a again", func(v string) bool { return idle(v) && strings.Contains(v, "a demo/app · 3 tags") })

	h.keys("5")
	h.waitFor("a's referrers", func(v string) bool { return idle(v) && strings.Contains(v, "a 7 referrers · ok") })
	h.keys("]")
	v = h.waitFor("b's referrers", func(v string) bool { return idle(v) && strings.Contains(v, "mirror/app:v1") })
	if !strings.Contains(v, "b 7 referrers · ok") || strings.Contains(v, "NAME_UNKNOWN") {
		t.Errorf("] did not discover on b's own repository:\n%s", v)
	}
	h.keys("[")
	h.waitFor("a again", func(v string) bool {
		return idle(v) && strings.Contains(v, "demo/app:v1") && strings.Contains(v, "a 7 referrers · ok")
	})
}

// TestSwitchRegistryUsesConfigRepository: targets that are bare hosts
// take the repository from the config's [[registry]] entry, and a target
// with a digest is that image.
func TestSwitchRegistryUsesConfigRepository(t *testing.T) {
	l, a, b := otherPathLab(t)
	h := newHarness(t, l, 120, 40, func(dir string, o *Options) {
		for i := range o.Config.Registries {
			if o.Config.Registries[i].Host == b.Host {
				o.Config.Registries[i].Repository = "mirror/app"
			}
		}
		o.Targets = []probe.Target{{Host: a.Host}, {Host: b.Host}}
		o.Image = a.Host + "/demo/app@" + l.Seed.Index
		o.Repository = a.Host + "/demo/app"
	})
	h.keys("5")
	h.waitFor("a's referrers", func(v string) bool { return idle(v) && strings.Contains(v, "a 7 referrers · ok") })
	h.keys("]")
	v := h.waitFor("b's referrers", func(v string) bool { return idle(v) && strings.Contains(v, "mirror/app@") })
	if !strings.Contains(v, "b 7 referrers · ok") {
		t.Errorf("] did not use b's configured repository with the image's digest:\n%s", v)
	}
	h.keys("4")
	h.waitFor("a's fallback tags", func(v string) bool { return idle(v) && strings.Contains(v, "a demo/app · 3 tags") })
	h.keys("]")
	h.waitFor("b's fallback tags", func(v string) bool { return idle(v) && strings.Contains(v, "b mirror/app · 3 tags for 1 subject") })
}

// TestTargetsFormMarksPlainHTTP: a host added in the targets form is
// reached over TLS until the form marks it plain HTTP; then it answers.
func TestTargetsFormMarksPlainHTTP(t *testing.T) {
	l, a, b := otherPathLab(t)
	h := newHarness(t, l, 120, 40, func(dir string, o *Options) {
		o.Config.Registries = []config.Registry{{Host: a.Host, PlainHTTP: true}}
		o.Targets = []probe.Target{{Host: a.Host, Repository: "demo/app"}}
	})
	typeText := func(s string) {
		for _, r := range s {
			h.keys(string(r))
		}
	}
	h.keys("e")
	h.waitFor("the form", contains("Plain HTTP", "Insecure TLS"))
	typeText(b.Host + "/mirror/app ")
	h.keys("enter")
	h.waitFor("the form saved", func(v string) bool { return strings.Contains(v, "registries 2: b, a") })
	h.keys("3")
	h.waitFor("b probed over TLS", func(v string) bool {
		return idle(v) && strings.Contains(v, "2 registries") && strings.Count(v, "ok") >= 1
	})
	// b, a plain HTTP registry not marked so, fails over TLS.
	h.waitFor("b's note", contains(b.Host+"/mirror/app", "TLSPlainHTTPServer: b speaks plain HTTP, not HTTPS"))
	h.keys("1", "e", "tab")
	h.waitFor("the plain HTTP field", func(v string) bool { return strings.Contains(v, "› Plain HTTP") })
	typeText(b.Host + " ")
	h.keys("enter")
	h.waitFor("the form saved", contains("registries 2: b, a"))
	h.keys("3")
	v := h.waitFor("b over plain HTTP", func(v string) bool { return idle(v) && strings.Contains(v, "2 supported") })
	if strings.Contains(v, "TLSPlainHTTPServer") {
		t.Errorf("b still probed over TLS:\n%s", v)
	}
	// A host in both lists is refused, naming the fix.
	h.keys("1", "e", "tab", "tab")
	h.waitFor("the insecure field", contains("› Insecure TLS"))
	typeText(b.Host)
	h.keys("enter")
	h.waitFor("the refusal", contains("is in both Plain HTTP and Insecure TLS", "keep it in one"))
	h.keys("esc")
}
