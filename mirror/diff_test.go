package mirror_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/refdoctor/refdoctor/config"
	"github.com/refdoctor/refdoctor/discovery"
	"github.com/refdoctor/refdoctor/finding"
	"github.com/refdoctor/refdoctor/internal/craft"
	"github.com/refdoctor/refdoctor/lab"
	"github.com/refdoctor/refdoctor/lab/labtest"
	"github.com/refdoctor/refdoctor/mirror"
	"github.com/refdoctor/refdoctor/registry"
)

// judgesNothing checks a diff against a source it could not read: partial,
// not the same, every bundled subject listed as not read, nothing added
// or removed, a DiffIncomplete finding per subject and no claim of change.
func judgesNothing(t *testing.T, res mirror.DiffResult, subjects []string) {
	t.Helper()
	if !res.Partial || res.Same {
		t.Fatalf("partial %v, same %v", res.Partial, res.Same)
	}
	for _, s := range res.Subjects {
		if len(s.Added)+len(s.Removed)+len(s.Replaced) > 0 {
			t.Fatalf("subject %s judged changed on an incomplete read: %+v", s.Subject, s)
		}
	}
	var unread []string
	for _, u := range res.Unread {
		unread = append(unread, u.Subject)
		if u.Error == "" {
			t.Errorf("subject %s: not read, and no reason given", u.Subject)
		}
	}
	for _, s := range subjects {
		if !slices.Contains(unread, s) {
			t.Errorf("subject %s is not listed as not read (unread: %v)", s, unread)
		}
	}
	n := 0
	for _, f := range res.Findings {
		switch f.Code {
		case finding.ReferrersChangedSinceExport:
			t.Errorf("a change is claimed: %s", f.Summary)
		case finding.DiffIncomplete:
			n++
		}
	}
	if n < len(subjects) {
		t.Errorf("%d DiffIncomplete findings for %d subjects not read", n, len(subjects))
	}
}

// TestDiffOfAnUnreadableSourceJudgesNothing: the lab's plain-HTTP
// registry diffed without --plain-http (the config does not name it), and
// a rate-limited registry whose budget is spent. Before, every referrer
// of the bundle was reported "removed since export".
func TestDiffOfAnUnreadableSourceJudgesNothing(t *testing.T) {
	t.Parallel()
	l := labtest.StartT(t, lab.Spec{Name: "source", Profile: lab.ProfileOCI11},
		lab.Spec{Name: "hub", Profile: lab.ProfileRateLimit, RateBudget: 0, RateWindow: time.Hour, NoSeed: true})
	src, _ := l.Get("source")
	hub, _ := l.Get("hub")
	file := filepath.Join(t.TempDir(), "app.tgz")
	export(t, l, src.Host, file)
	var subjects []string
	for s := range bundleReferrers(t, file) {
		subjects = append(subjects, s)
	}
	t.Run("plain HTTP without --plain-http", func(t *testing.T) {
		res, err := mirror.Diff(context.Background(), env(config.Defaults(), registry.WithoutDockerCreds()), file)
		if err != nil {
			t.Fatal(err)
		}
		judgesNothing(t, res, subjects)
	})
	t.Run("rate limit spent", func(t *testing.T) {
		b := craft.Valid()
		b.Reference = hub.Host + "/demo/app:v1"
		crafted := filepath.Join(t.TempDir(), "hub.tgz")
		if err := os.WriteFile(crafted, b.Tgz(), 0o600); err != nil {
			t.Fatal(err)
		}
		e := env(l.Config(), registry.WithoutDockerCreds())
		e.Discovery = []discovery.Opt{discovery.WithTimeout(3 * time.Second)}
		res, err := mirror.Diff(context.Background(), e, crafted)
		if err != nil {
			t.Fatal(err)
		}
		judgesNothing(t, res, []string{craft.Digest(b.Image.Manifest)})
	})
}

// TestDiffOfATamperedBundleSaysSo: the source serves what the tampered
// bundle's manifest.yaml lists, but the bundle's copy of one referrer does
// not match its listing. Diff must not call the two the same.
func TestDiffOfATamperedBundleSaysSo(t *testing.T) {
	t.Parallel()
	l := labtest.StartT(t, lab.Spec{Name: "source", Profile: lab.ProfileOCI11})
	src, _ := l.Get("source")
	dir := t.TempDir()
	good, tampered := filepath.Join(dir, "good.tgz"), filepath.Join(dir, "tampered.tgz")
	export(t, l, src.Host, good)
	if err := lab.TamperReferrer(good, tampered); err != nil {
		t.Fatal(err)
	}
	e := env(l.Config(), registry.WithoutDockerCreds())
	res, err := mirror.Diff(context.Background(), e, good)
	if err != nil || !res.Same || !res.BundleOK {
		t.Fatalf("a fresh, whole bundle: err %v same %v ok %v", err, res.Same, res.BundleOK)
	}
	res, err = mirror.Diff(context.Background(), e, tampered)
	if err != nil {
		t.Fatal(err)
	}
	if res.Same || res.BundleOK || len(res.BundleProblems) == 0 || res.BundleProblems[0].Code != finding.ReferrerChecksumMismatch {
		t.Fatalf("tampered: same %v, bundle ok %v, problems %+v", res.Same, res.BundleOK, res.BundleProblems)
	}
	damaged := 0
	for _, s := range res.Subjects {
		damaged += len(s.Damaged)
		if len(s.Added)+len(s.Removed)+len(s.Replaced) > 0 {
			t.Errorf("the source did not change, yet %s is reported changed", s.Subject)
		}
	}
	if damaged != 1 {
		t.Fatalf("%d referrers marked damaged in the bundle, want 1", damaged)
	}
}
