package ui

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/charmbracelet/x/exp/teatest/v2"

	"github.com/refdoctor/refdoctor/config"
	"github.com/refdoctor/refdoctor/discovery"
	"github.com/refdoctor/refdoctor/finding"
	"github.com/refdoctor/refdoctor/internal/jsondoc"
	"github.com/refdoctor/refdoctor/lab/labtest"
	"github.com/refdoctor/refdoctor/probe"
	"github.com/refdoctor/refdoctor/registry"
)

// savedFile waits for the one file s wrote in dir with the screen's name.
func savedFile(t *testing.T, h *harness, dir, screen string) []byte {
	t.Helper()
	h.waitFor("the saved path", contains("saved "+filepath.Join(dir, "refdoctor-"+screen+"-")))
	m, _ := filepath.Glob(filepath.Join(dir, "refdoctor-"+screen+"-*.json"))
	if len(m) != 1 {
		t.Fatalf("%d files saved for %s: %v", len(m), screen, m)
	}
	data, err := os.ReadFile(m[0])
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(m[0]); fi.Mode().Perm() != 0o600 {
		t.Errorf("the saved document is mode %v, want 0600", fi.Mode().Perm())
	}
	return data
}

// TestSaveScreenAsJSON: s writes the screen's result to a file in the
// working folder and says where: on Tags the very document the engine
// behind `refdoctor tags -o json` gives, encoded the same way; on
// Referrers and Registries the CLI's document types, read back strictly.
// A screen with no result yet saves nothing and says why.
func TestSaveScreenAsJSON(t *testing.T) {
	l := sharedLab(t)
	var o Options
	h := newHarness(t, l, 200, 40, func(dir string, opts *Options) {
		opts.workDir = dir
		o = *opts
	})
	dir := h.dir
	h.keys("4")
	h.waitFor("the tag listing", func(v string) bool { return idle(v) && strings.Contains(v, "tags for") })
	h.keys("w")
	got := savedFile(t, h, dir, "tags")
	want, err := discovery.ListTags(context.Background(), o.Repository, discovery.WithConfig(o.Config), discovery.WithClientOpts(o.ClientOpts...))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := jsondoc.Encode(&buf, want); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, buf.Bytes()) {
		t.Errorf("the saved Tags document differs from refdoctor tags -o json:\n%s\nwant:\n%s", got, buf.Bytes())
	}

	h.keys("5")
	v := h.waitFor("the referrers", func(v string) bool { return idle(v) && strings.Contains(v, "referrers ·") })
	h.keys("w")
	var res discovery.Result
	dec := json.NewDecoder(bytes.NewReader(savedFile(t, h, dir, "referrers")))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&res); err != nil {
		t.Fatalf("the saved Referrers document is not refdoctor discover's: %v", err)
	}
	if res.Subject.Digest != l.Seed.Index || !strings.Contains(v, " "+strconv.Itoa(res.Count())+" referrers · ") {
		t.Errorf("saved discovery of %s with %d referrers, the screen shows the index %s:\n%s", res.Subject.Digest, res.Count(), l.Seed.Index, v)
	}

	h.keys("3")
	h.waitFor("every verdict", func(v string) bool { return idle(v) && strings.Contains(v, "unsupported!") })
	h.keys("w")
	var rep probe.Report
	dec = json.NewDecoder(bytes.NewReader(savedFile(t, h, dir, "registries")))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rep); err != nil {
		t.Fatalf("the saved Registries document is not refdoctor probe's: %v", err)
	}
	if len(rep.Registries) != len(o.Targets) {
		t.Errorf("saved %d registries, the table has %d", len(rep.Registries), len(o.Targets))
	}

	h.keys("6")
	h.waitFor("the bundle picker", contains("Pick a bundle"))
	h.keys("w")
	h.waitFor("the refusal", contains("not saved: no finished validation yet"))
	h.keys("1", "w")
	h.waitFor("the refusal", contains("nothing to save as JSON on this screen"))
}

// TestCopyDigestOnTagsAndReferrers: y copies the selected tag's and the
// selected referrer's digest, and both screens' help line shows y.
func TestCopyDigestOnTagsAndReferrers(t *testing.T) {
	l := sharedLab(t)
	var o Options
	h := newHarness(t, l, 120, 40, func(dir string, opts *Options) { o = *opts })
	tags, err := discovery.ListTags(context.Background(), o.Repository, discovery.WithConfig(o.Config), discovery.WithClientOpts(o.ClientOpts...))
	if err != nil || len(tags.Subjects) == 0 || len(tags.Subjects[0].Tags) == 0 {
		t.Fatalf("no tags to copy from: %v %+v", err, tags)
	}
	h.keys("4")
	v := h.waitFor("the tag listing", func(v string) bool { return idle(v) && strings.Contains(v, "tags for") })
	if !strings.Contains(v, "y copy digest") {
		t.Errorf("the Tags help line lacks y:\n%s", v)
	}
	h.keys("j", "y") // the first tag under the subject
	h.waitFor("the tag's digest copied", contains("copied "+tags.Subjects[0].Tags[0].Digest))
	h.keys("5")
	v = h.waitFor("the referrers", func(v string) bool { return idle(v) && strings.Contains(v, "referrers ·") })
	if !strings.Contains(v, "y copy digest") {
		t.Errorf("the Referrers help line lacks y:\n%s", v)
	}
	h.keys("y")
	h.waitFor("a seeded referrer's digest copied", func(v string) bool {
		for _, r := range l.Seed.Referrers {
			if strings.Contains(v, "copied "+r.Digest) {
				return true
			}
		}
		return false
	})
}

// TestCatalogPicker: l lists the registry's repositories (docker-registry
// gives its catalog; the copies in it are regctl's); / narrows the names
// to those holding what is typed; enter on one lists its tags, or on
// Referrers looks at the image's tag there.
// docker-registry behind htpasswd refuses the catalog without a login:
// the screen says so and what to do, and lists nothing.
func TestCatalogPicker(t *testing.T) {
	l := sharedLab(t)
	oci, _ := l.Get("oci11")
	d := labtest.StartDistributionT(t)
	hosts := []string{"--host", "reg=" + oci.Host + ",tls=disabled", "--host", "reg=" + d.Host + ",tls=disabled"}
	labtest.RunTool(t, t.TempDir(), "regctl", append(hosts, "image", "copy", "--referrers", oci.Host+"/demo/app:v1", d.Host+"/demo/app:v1")...)
	labtest.RunTool(t, t.TempDir(), "regctl", append(hosts, "image", "copy", oci.Host+"/demo/single:v1", d.Host+"/team/single:v1")...)
	h := newHarness(t, l, 120, 40, func(dir string, o *Options) {
		o.Config.Registries = append(o.Config.Registries, config.Registry{Host: d.Host, PlainHTTP: true})
		o.Targets = []probe.Target{{Host: d.Host, Repository: "demo/app"}}
		o.Repository, o.Image = d.Host+"/demo/app", d.Host+"/demo/app:v1"
		o.ClientOpts = append(o.ClientOpts, registry.WithoutDockerCreds())
	})
	h.keys("4")
	h.waitFor("the tag listing", func(v string) bool { return idle(v) && strings.Contains(v, "demo/app · ") })
	h.keys("l")
	v := h.waitFor("the catalog", func(v string) bool {
		return idle(v) && strings.Contains(v, "Repositories on") && strings.Contains(v, "team/single")
	})
	if !strings.Contains(v, "2 repositories · 1 request") || !strings.Contains(v, "› demo/app") || strings.Contains(v, "not every one") {
		t.Errorf("the catalog is not docker-registry's two repositories, complete:\n%s", v)
	}
	// / filters the names as they are typed (any case); esc drops the
	// filter before it closes the picker.
	h.keys("/", "S", "i", "n")
	v = h.waitFor("the filtered catalog", contains("/Sin", "1 of 2", "› team/single"))
	if strings.Contains(v, "demo/app") {
		t.Errorf("the filter keeps demo/app:\n%s", v)
	}
	h.keys("esc")
	h.waitFor("the filter dropped", contains("› demo/app", "team/single", "/ filters"))
	h.keys("/", "x", "y", "z", "enter")
	h.waitFor("no match", contains(`no repository holds "xyz"`, `filter "xyz": 0 of 2`))
	h.keys("esc")
	h.waitFor("the filter cleared, the picker open", contains("› demo/app", "/ filters"))
	h.keys("/", "s", "i", "n", "g", "enter")
	h.waitFor("the filter kept", contains(`filter "sing": 1 of 2`, "› team/single"))
	h.keys("enter")
	h.waitFor("team/single's tags", func(v string) bool { return idle(v) && strings.Contains(v, "team/single · 0 tags") })
	h.keys("5")
	h.waitFor("the referrers", func(v string) bool { return idle(v) && strings.Contains(v, "referrers ·") })
	h.keys("l")
	h.waitFor("the catalog", func(v string) bool { return idle(v) && strings.Contains(v, "› demo/app") })
	h.keys("j", "enter")
	h.waitFor("team/single:v1's referrers", func(v string) bool {
		return idle(v) && strings.Contains(v, "/team/single:v1") && strings.Contains(v, "0 referrers · ")
	})

	dl, _ := labtest.StartDistributionWithLoginT(t)
	h2 := newHarness(t, l, 120, 40, func(dir string, o *Options) {
		o.Config.Registries = []config.Registry{{Host: dl.Host, PlainHTTP: true}}
		o.Targets = []probe.Target{{Host: dl.Host}}
		o.Repository, o.Image = "", ""
		o.ClientOpts = []registry.Opt{registry.WithoutDockerCreds()}
	})
	h2.keys("4")
	h2.waitFor("the hint", contains("Press l to pick one from"))
	h2.keys("l")
	v = h2.waitFor("the refusal", func(v string) bool { return idle(v) && strings.Contains(v, string(finding.CatalogUnavailable)) })
	if !strings.Contains(v, "HTTP 401 on /v2/_catalog") || !strings.Contains(v, "type the repository instead") || strings.Contains(v, "enter picks") {
		t.Errorf("the refused catalog is not said plainly:\n%s", v)
	}
	h2.keys("esc")
	h2.waitFor("the Tags screen again", contains("No repository to list"))
}

// TestQuitOffersToSaveTargets: after the targets form changed the
// registries, q asks whether to save them to the config file, naming the
// entries of the file that saving removes; y writes them as its
// [[registry]] list, keeping the file's comments and other settings, and
// quits.
func TestQuitOffersToSaveTargets(t *testing.T) {
	l := sharedLab(t)
	b, _ := l.Get("ghcr-like")
	cfgPath := filepath.Join(t.TempDir(), "config.toml")
	orig := "# our registries, kept by hand\n[cache]\ncapabilities_ttl = \"1h\" # an hour is enough\n\n[[registry]]\nhost = \"" + b.Host + "\"\nplain_http = true\nexpected = \"olareg\" # the lab's\n"
	orig += "\n[[registry]]\nhost = \"old-mirror.example:5000\" # not among the session's targets\n"
	if err := os.WriteFile(cfgPath, []byte(orig), 0o600); err != nil {
		t.Fatal(err)
	}
	loaded, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := l.Get("oci11")
	h := newHarness(t, l, 120, 40, func(dir string, o *Options) {
		o.Config.Path = cfgPath
		o.Config.Registries = loaded.Registries
		o.Targets = []probe.Target{{Host: b.Host}}
	})
	h.keys("e")
	h.waitFor("the form", contains("› Registries"))
	for _, r := range a.Host + "/demo/app " {
		h.keys(string(r))
	}
	h.keys("tab")
	for _, r := range a.Host + " " {
		h.keys(string(r))
	}
	h.keys("enter")
	h.waitFor("the targets saved", contains("registries 2:"))
	h.keys("q")
	v := h.waitFor("the question", contains("Save the registries?", "config.toml?", "y saves and quits"))
	if !strings.Contains(v, a.Host) || !strings.Contains(v, "repository demo/app · plain HTTP") {
		t.Errorf("the question does not show what would be written:\n%s", v)
	}
	if !strings.Contains(v, "removed from the file: old-mirror.example:5000") {
		t.Errorf("the question does not say that saving removes the file's old-mirror.example:5000 entry:\n%s", v)
	}
	h.keys("y")
	h.tm.WaitFinished(t, teatest.WithFinalTimeout(20*time.Second))
	data, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, keep := range []string{"# our registries, kept by hand", "capabilities_ttl = \"1h\" # an hour is enough", "expected = \"olareg\" # the lab's"} {
		if !strings.Contains(string(data), keep) {
			t.Errorf("saving lost %q:\n%s", keep, data)
		}
	}
	saved, err := config.Load(cfgPath)
	if err != nil {
		t.Fatalf("the saved file does not load: %v\n%s", err, data)
	}
	// The file's entry stays where it was; the new host follows it.
	want := []config.Registry{
		{Host: b.Host, PlainHTTP: true, Expected: "olareg"},
		{Host: a.Host, PlainHTTP: true, Repository: "demo/app"},
	}
	if len(saved.Registries) != 2 || saved.Registries[0] != want[0] || saved.Registries[1] != want[1] {
		t.Errorf("saved registries %+v, want %+v\n%s", saved.Registries, want, data)
	}
}

// TestQuitWithoutEditsAsksNothing: the targets form saved unchanged is no
// edit; q quits at once and the config file is not touched.
func TestQuitWithoutEditsAsksNothing(t *testing.T) {
	l := sharedLab(t)
	cfgPath := filepath.Join(t.TempDir(), "config.toml")
	h := newHarness(t, l, 120, 40, func(dir string, o *Options) {
		o.Config.Path = cfgPath
		o.Config.Registries = nil // the targets' hosts are in no config entry
	})
	h.keys("e")
	h.waitFor("the form", contains("› Registries"))
	h.keys("enter")
	h.waitFor("the targets saved", contains("targets saved"))
	h.keys("q")
	h.tm.WaitFinished(t, teatest.WithFinalTimeout(20*time.Second))
	if _, err := os.Stat(cfgPath); !os.IsNotExist(err) {
		t.Errorf("quitting without edits touched %s: %v", cfgPath, err)
	}
}
