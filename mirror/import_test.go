package mirror_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/regclient/regclient/types/ref"

	"github.com/refdoctor/refdoctor/bundle"
	"github.com/refdoctor/refdoctor/finding"
	"github.com/refdoctor/refdoctor/internal/craft"
	"github.com/refdoctor/refdoctor/lab"
	"github.com/refdoctor/refdoctor/lab/labtest"
	"github.com/refdoctor/refdoctor/mirror"
	"github.com/refdoctor/refdoctor/registry"
)

// target answers what a registry serves, asked with refdoctor's registry
// client and cross-checked with regctl.
type target struct {
	t    *testing.T
	l    *lab.Lab
	host string
	dir  string
	c    *registry.Client
}

func newTarget(t *testing.T, l *lab.Lab, host string) *target {
	t.Helper()
	c, err := registry.New(l.Config(), registry.WithoutDockerCreds())
	if err != nil {
		t.Fatal(err)
	}
	return &target{t: t, l: l, host: host, dir: t.TempDir(), c: c}
}

// serves reports whether the target has repo@digest or repo:tag, by HEAD
// with refdoctor's client and by regctl manifest head; the two must agree.
func (tg *target) serves(repo, reference string) bool {
	tg.t.Helper()
	sep := ":"
	if strings.HasPrefix(reference, "sha256:") {
		sep = "@"
	}
	name := tg.host + "/" + repo + sep + reference
	r, err := ref.New(name)
	if err != nil {
		tg.t.Fatal(err)
	}
	_, err = tg.c.ManifestHead(context.Background(), r)
	ours := err == nil
	path, terr := labtest.ReferenceTool("regctl")
	if terr != nil {
		tg.t.Skipf("regctl not available: %v", terr)
	}
	cmd := exec.Command(path, "--host", "reg="+tg.host+",tls=disabled", "manifest", "head", name)
	cmd.Env = append(os.Environ(), "HOME="+tg.dir, "DOCKER_CONFIG="+tg.dir)
	theirs := cmd.Run() == nil
	if ours != theirs {
		tg.t.Fatalf("%s: refdoctor's HEAD says served=%v, regctl %v", name, ours, theirs)
	}
	return ours
}

// referrers lists the referrers of repo@subject, by regctl artifact list.
func (tg *target) referrers(repo, subject string) []string {
	tg.t.Helper()
	var rl struct {
		Descriptors []struct {
			Digest string `json:"digest"`
		} `json:"descriptors"`
	}
	out := labtest.RunTool(tg.t, tg.dir, "regctl", "--host", "reg="+tg.host+",tls=disabled", "artifact", "list", tg.host+"/"+repo+"@"+subject, "--format", "{{json .}}")
	if err := json.Unmarshal(out, &rl); err != nil {
		tg.t.Fatal(err)
	}
	var got []string
	for _, d := range rl.Descriptors {
		got = append(got, d.Digest)
	}
	return got
}

func notImported(res mirror.ImportResult) []string {
	var out []string
	for _, f := range res.Findings {
		if f.Code == finding.NotImported && f.Severity == finding.SeverityError {
			out = append(out, f.Evidence)
		}
	}
	return out
}

// countActions checks the summary counts against the plan's items.
func countActions(t *testing.T, res mirror.ImportResult) {
	t.Helper()
	n := map[string]int{}
	for _, it := range res.Plan {
		n[it.Action]++
	}
	if n["push"] != res.Pushed || n["skip"] != res.Skipped || n["refused"] != res.Refused {
		t.Fatalf("summary (%d pushed, %d there, %d refused) disagrees with the plan %v", res.Pushed, res.Skipped, res.Refused, n)
	}
}

// TestImportOfTamperedBundlePushesNothingFlagged: the lab's tampered
// bundle, imported without --strict-referrer-validation. The referrer
// reported "not imported" must not be on the target, not even from the
// intact copy of it among the blobs; the rest is imported; every summary
// count agrees with the plan, and reconciliation says the refused
// referrer is absent.
func TestImportOfTamperedBundlePushesNothingFlagged(t *testing.T) {
	t.Parallel()
	l := labtest.StartT(t, lab.Spec{Name: "source", Profile: lab.ProfileOCI11}, lab.Spec{Name: "target", Profile: lab.ProfileOCI11, NoSeed: true})
	src, _ := l.Get("source")
	tgt, _ := l.Get("target")
	dir := t.TempDir()
	good := filepath.Join(dir, "good.tgz")
	export(t, l, src.Host, good)
	tampered := filepath.Join(dir, "tampered.tgz")
	if err := lab.TamperReferrer(good, tampered); err != nil {
		t.Fatal(err)
	}
	rep, err := bundle.ValidateFile(context.Background(), tampered, bundle.WithCheckReferrers(true))
	if err != nil || rep.OK {
		t.Fatalf("the tampered bundle validates: %v", err)
	}
	var bad string
	for _, p := range rep.Errors {
		if p.Code == finding.ReferrerChecksumMismatch {
			_, bad, _ = bundle.SplitReferrerPath(p.Path)
		}
	}
	if bad == "" {
		t.Fatalf("no ReferrerChecksumMismatch: %+v", rep.Errors)
	}
	res, err := mirror.Import(context.Background(), env(l.Config(), registry.WithoutDockerCreds()), tampered, tgt.Host)
	if err != nil {
		t.Fatalf("non-strict import: %v", err)
	}
	if res.OK || !slices.Equal(notImported(res), []string{bad}) {
		t.Fatalf("not imported %v, want exactly %s (ok %v)", notImported(res), bad, res.OK)
	}
	countActions(t, res)
	tg := newTarget(t, l, tgt.Host)
	repo := l.Seed.Repository
	if tg.serves(repo, bad) {
		t.Fatalf("the target serves %s, which import reported as not imported", bad)
	}
	if !tg.serves(repo, l.Seed.Tag) || !tg.serves(repo, l.Seed.Index) {
		t.Fatal("the intact image was not imported")
	}
	m := rep.Manifest()
	for _, s := range m.Referrers.Subjects {
		listed := tg.referrers(repo, s.Subject)
		if slices.Contains(listed, bad) {
			t.Fatalf("the target lists %s as a referrer of %s", bad, s.Subject)
		}
		for _, a := range s.Artifacts {
			if a.Digest != bad && !slices.Contains(listed, a.Digest) {
				t.Errorf("intact referrer %s of %s was not imported", a.Digest, s.Subject)
			}
		}
	}
	refused := 0
	for _, r := range res.Reconcile {
		if r.Found != r.Expected || len(r.Missing) != 0 || len(r.RefusedPresent) != 0 {
			t.Errorf("reconcile %s: %d of %d, missing %v, refused but present %v", r.Subject, r.Found, r.Expected, r.Missing, r.RefusedPresent)
		}
		refused += len(r.Refused)
	}
	if refused != 1 {
		t.Errorf("reconcile counts %d refused referrers, want 1", refused)
	}
}

// swappedIndex is a bundle whose index.json was replaced after export by
// one tagging v1 as the attacker's image, shipped in the bundle too.
func swappedIndex() (*craft.Bundle, craft.Image) {
	b := craft.Valid()
	evil := craft.NewImage("attacker's image")
	idx := b.Member("index.json")
	b.Listed = map[string]craft.Listed{"index.json": {Size: int64(len(idx.Data)), Sum: craft.Sum(idx.Data)}}
	idx.Data = craft.IndexJSON(b.Reference, "v1", evil.Manifest)
	for _, x := range [][]byte{evil.Manifest, evil.Config, evil.Layer} {
		b.Members = append(b.Members, craft.Member{Name: "blobs/sha256/" + craft.Sum(x), Data: x})
	}
	return b, evil
}

// TestImportRefusesWhenIndexOrManifestFailed: a document that failed its
// checksum never decides what is pushed or tagged. With index.json or
// manifest.yaml failed, nothing is imported, strict or not, and the
// target receives no request at all.
func TestImportRefusesWhenIndexOrManifestFailed(t *testing.T) {
	t.Parallel()
	l := labtest.StartT(t, lab.Spec{Name: "target", Profile: lab.ProfileOCI11, NoSeed: true})
	tgt, _ := l.Get("target")
	inconsistent := craft.Valid()
	// manifest.yaml disagrees with itself: the subject's count is wrong.
	y := strings.Replace(string(inconsistent.ManifestYAML()), "count: 2", "count: 3", 1)
	inconsistent.Members = append([]craft.Member{{Name: "manifest.yaml", Data: []byte(y)}}, inconsistent.Members...)
	swapped, evil := swappedIndex()
	for name, b := range map[string]*craft.Bundle{"index.json swapped": swapped, "manifest.yaml inconsistent": inconsistent} {
		t.Run(name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "b.tgz")
			if err := os.WriteFile(file, b.Tgz(), 0o600); err != nil {
				t.Fatal(err)
			}
			for _, strict := range []bool{false, true} {
				before := l.Requests("target")
				res, err := mirror.Import(context.Background(), env(l.Config(), registry.WithoutDockerCreds()), file, tgt.Host, mirror.ImportStrict(strict))
				if !errors.Is(err, mirror.ErrRefused) {
					t.Fatalf("strict=%v: import did not refuse: %v (pushed %d)", strict, err, res.Pushed)
				}
				if n := l.Requests("target"); n != before {
					t.Fatalf("strict=%v: refused, but %d requests reached the target", strict, n-before)
				}
			}
			tg := newTarget(t, l, tgt.Host)
			for _, ref := range []string{"v1", craft.Digest(evil.Manifest), craft.Digest(b.Image.Manifest)} {
				if tg.serves("demo/app", ref) {
					t.Fatalf("the target serves demo/app %s after a refused import", ref)
				}
			}
		})
	}
}

// TestImportNeverPushesUnderTheWrongSubject: a referrer filed (and
// listed, checksums right) under image v1 whose subject field names image
// v2. Validation reports SubjectMismatch; import pushes the rest and
// never this referrer, under either subject.
func TestImportNeverPushesUnderTheWrongSubject(t *testing.T) {
	t.Parallel()
	l := labtest.StartT(t, lab.Spec{Name: "target", Profile: lab.ProfileOCI11, NoSeed: true})
	tgt, _ := l.Get("target")
	b := craft.Valid()
	v2 := craft.NewImage("app v2")
	v1 := craft.DescOf(craft.MediaManifest, b.Image.Manifest)
	misfiled := craft.NewReferrer(craft.DescOf(craft.MediaManifest, v2.Manifest), craft.TypeSBOM, "sbom", `{"bomFormat":"CycloneDX","about":"v2"}`)
	misfiled.Subject = v1.Digest // filed and listed under v1
	b.Referrers = append(b.Referrers, misfiled)
	d1, d2 := v1, craft.DescOf(craft.MediaManifest, v2.Manifest)
	d1.Annotations = map[string]string{"org.opencontainers.image.ref.name": "v1", "io.refdoctor.bundle.kind": "image", "io.refdoctor.bundle.reference": "registry.example/demo/app:v1"}
	d2.Annotations = map[string]string{"org.opencontainers.image.ref.name": "v2", "io.refdoctor.bundle.kind": "image", "io.refdoctor.bundle.reference": "registry.example/demo/app:v2"}
	b.Member("index.json").Data = craft.JSON(map[string]any{"schemaVersion": 2, "mediaType": craft.MediaIndex, "manifests": []craft.Desc{d1, d2}})
	for _, x := range [][]byte{v2.Manifest, v2.Config, v2.Layer, misfiled.Manifest, misfiled.Payload} {
		b.Members = append(b.Members, craft.Member{Name: "blobs/sha256/" + craft.Sum(x), Data: x})
	}
	bad := craft.Digest(misfiled.Manifest)
	b.Members = append(b.Members, craft.Member{Name: craft.ReferrerPath(v1.Digest, bad), Data: misfiled.Manifest})
	file := filepath.Join(t.TempDir(), "b.tgz")
	if err := os.WriteFile(file, b.Tgz(), 0o600); err != nil {
		t.Fatal(err)
	}
	rep, err := bundle.ValidateFile(context.Background(), file, bundle.WithCheckReferrers(true))
	if err != nil || !slices.ContainsFunc(rep.Errors, func(p bundle.Problem) bool { return p.Code == finding.SubjectMismatch }) {
		t.Fatalf("validation did not report SubjectMismatch: %v %+v", err, rep.Errors)
	}
	res, err := mirror.Import(context.Background(), env(l.Config(), registry.WithoutDockerCreds()), file, tgt.Host)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(notImported(res), []string{bad}) {
		t.Fatalf("not imported %v, want %s", notImported(res), bad)
	}
	countActions(t, res)
	tg := newTarget(t, l, tgt.Host)
	if tg.serves("demo/app", bad) {
		t.Fatal("the misfiled referrer was pushed")
	}
	if !tg.serves("demo/app", "v1") || !tg.serves("demo/app", "v2") {
		t.Fatal("the images were not imported")
	}
	for _, subject := range []string{v1.Digest, d2.Digest} {
		if got := tg.referrers("demo/app", subject); slices.Contains(got, bad) {
			t.Fatalf("the misfiled referrer is listed under %s", subject)
		}
	}
	if got := tg.referrers("demo/app", v1.Digest); len(got) != 2 {
		t.Fatalf("v1's intact referrers on the target: %v, want 2", got)
	}
}

// TestImportDoesNotPushAnAmbiguousManifest: a whole bundle (every member
// listed and intact) whose image manifest names its layers twice, once
// as "layers" and once as "Layers": Go's decoder (the registry, the
// runtime) reads the second list, readers that match names exactly the
// first. Validation calls it AmbiguousDocument; import pushes neither
// the manifest nor its tag nor its referrers nor its blobs, strict or
// not, and a strict import sends the target nothing.
func TestImportDoesNotPushAnAmbiguousManifest(t *testing.T) {
	t.Parallel()
	l := labtest.StartT(t, lab.Spec{Name: "target", Profile: lab.ProfileOCI11, NoSeed: true})
	tgt, _ := l.Get("target")
	img, served := craft.LayersTwice()
	manifest := img.Manifest
	b := craft.ValidWith(img, served)
	file := filepath.Join(t.TempDir(), "ambiguous.tgz")
	if err := os.WriteFile(file, b.Tgz(), 0o600); err != nil {
		t.Fatal(err)
	}
	before := l.Requests("target")
	if _, err := mirror.Import(context.Background(), env(l.Config(), registry.WithoutDockerCreds()), file, tgt.Host, mirror.ImportStrict(true)); !errors.Is(err, mirror.ErrRefused) {
		t.Fatalf("strict import did not refuse: %v", err)
	}
	if n := l.Requests("target"); n != before {
		t.Fatalf("strict import refused, but %d requests reached the target", n-before)
	}
	res, err := mirror.Import(context.Background(), env(l.Config(), registry.WithoutDockerCreds()), file, tgt.Host)
	if err != nil || res.Pushed != 0 {
		// The bundle holds this image alone: nothing of it is pushed.
		t.Fatalf("non-strict import: err %v, pushed %d", err, res.Pushed)
	}
	if res.OK || !slices.Contains(notImported(res), craft.Digest(manifest)) {
		t.Fatalf("the ambiguous manifest is not among those not imported: %v (ok %v)", notImported(res), res.OK)
	}
	tg := newTarget(t, l, tgt.Host)
	for _, ref := range []string{"v1", craft.Digest(manifest), craft.Digest(b.Referrers[0].Manifest)} {
		if tg.serves("demo/app", ref) {
			t.Errorf("the target serves demo/app %s", ref)
		}
	}
}
