package mirror_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/refdoctor/refdoctor/bundle"
	"github.com/refdoctor/refdoctor/config"
	"github.com/refdoctor/refdoctor/discovery"
	"github.com/refdoctor/refdoctor/finding"
	"github.com/refdoctor/refdoctor/lab"
	"github.com/refdoctor/refdoctor/lab/labtest"
	"github.com/refdoctor/refdoctor/mirror"
	"github.com/refdoctor/refdoctor/registry"
)

var fixedCreated = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

// env is the mirror environment of a test: a config and client settings.
func env(cfg config.Config, client ...registry.Opt) mirror.Env {
	return mirror.Env{Config: cfg, Client: client}
}

func withHosts(cfg config.Config, hosts ...string) config.Config {
	for _, h := range hosts {
		cfg.SetHost(config.Registry{Host: h, PlainHTTP: true})
	}
	return cfg
}

func export(t *testing.T, l *lab.Lab, host, out string, opts ...mirror.ExportOpt) mirror.ExportResult {
	t.Helper()
	res, err := mirror.Export(context.Background(), env(l.Config(), l.ClientOpts()...), out, []string{l.Seed.Ref(host)}, append([]mirror.ExportOpt{
		mirror.ExportWithCreatedAt(fixedCreated), mirror.ExportWithToolVersion("test")}, opts...)...)
	if err != nil {
		t.Fatalf("export: %v", err)
	}
	return res
}

// bundleReferrers lists the bundle's referrers per subject.
func bundleReferrers(t *testing.T, file string) map[string][]string {
	t.Helper()
	m, err := bundle.ReadManifest(context.Background(), file)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for _, s := range m.Referrers.Subjects {
		for _, a := range s.Artifacts {
			out[s.Subject] = append(out[s.Subject], a.Digest)
		}
		sort.Strings(out[s.Subject])
	}
	return out
}

// TestRoundTrip exports from a registry with the referrers API and imports
// into the docker-registry process (no API) and into an olareg with the
// API; then regctl and oras, on the target, must list exactly the
// bundle's referrers for every subject.
func TestRoundTrip(t *testing.T) {
	l := labtest.StartT(t, lab.Spec{Name: "source", Profile: lab.ProfileOCI11}, lab.Spec{Name: "target-api", Profile: lab.ProfileOCI11, NoSeed: true})
	src, _ := l.Get("source")
	tgtAPI, _ := l.Get("target-api")
	d := labtest.StartDistributionT(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "app.tgz")
	res := export(t, l, src.Host, file)
	if res.Referrers != 4 {
		t.Fatalf("exported %d referrers, want 4 (3 on the index, 1 on linux/amd64)", res.Referrers)
	}
	sidecar, err := os.ReadFile(file + ".sha256")
	if err != nil || string(sidecar) != res.Checksum+"  app.tgz\n" {
		t.Fatalf("sidecar %q, err %v", sidecar, err)
	}
	if out, err := exec.Command("sha256sum", "-c", "app.tgz.sha256").CombinedOutput(); err == nil {
		if !strings.Contains(string(out), "OK") {
			t.Fatalf("sha256sum -c: %s", out)
		}
	}
	want := bundleReferrers(t, file)

	for _, tc := range []struct {
		name, host string
		api        bool
	}{{"olareg with the API", tgtAPI.Host, true}, {"distribution without the API", d.Host, false}} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := withHosts(l.Config(), d.Host)
			imp, err := mirror.Import(context.Background(), env(cfg, registry.WithoutDockerCreds()), file, tc.host+"/mirror", mirror.ImportStrict(true))
			if err != nil {
				t.Fatalf("import: %v", err)
			}
			if !imp.OK || imp.Pushed == 0 {
				t.Fatalf("import not OK: pushed %d, findings %+v", imp.Pushed, imp.Findings)
			}
			for _, r := range imp.Reconcile {
				if r.Found != r.Expected || len(r.Missing) > 0 {
					t.Errorf("reconcile %s: %d of %d, missing %v", r.Subject, r.Found, r.Expected, r.Missing)
				}
			}
			spec := "v1.1-referrers-tag"
			if tc.api {
				spec = "v1.1-referrers-api"
			}
			hostFlag := "reg=" + tc.host + ",tls=disabled"
			for subject, digests := range want {
				target := tc.host + "/mirror/" + l.Seed.Repository + "@" + subject
				var rl struct {
					Descriptors []struct {
						Digest string `json:"digest"`
					} `json:"descriptors"`
				}
				if err := json.Unmarshal(labtest.RunTool(t, dir, "regctl", "--host", hostFlag, "artifact", "list", target, "--format", "{{json .}}"), &rl); err != nil {
					t.Fatal(err)
				}
				var got []string
				for _, x := range rl.Descriptors {
					got = append(got, x.Digest)
				}
				sort.Strings(got)
				if !slices.Equal(got, digests) {
					t.Errorf("regctl on the target lists %v for %s, the bundle %v", got, subject, digests)
				}
				var od struct {
					Referrers []struct {
						Digest string `json:"digest"`
					} `json:"referrers"`
				}
				if err := json.Unmarshal(labtest.RunTool(t, dir, "oras", "discover", "--plain-http", "--distribution-spec", spec, "--format", "json", target), &od); err != nil {
					t.Fatal(err)
				}
				got = got[:0]
				for _, x := range od.Referrers {
					got = append(got, x.Digest)
				}
				sort.Strings(got)
				if !slices.Equal(got, digests) {
					t.Errorf("oras on the target lists %v for %s, the bundle %v", got, subject, digests)
				}
			}
			// A second import finds everything there and pushes nothing.
			again, err := mirror.Import(context.Background(), env(cfg, registry.WithoutDockerCreds()), file, tc.host+"/mirror")
			if err != nil || !again.OK || again.Pushed != 0 {
				t.Fatalf("rerun: err %v ok %v pushed %d", err, again.OK, again.Pushed)
			}
		})
	}
}

// TestBundleIsAnOCILayout: regctl and oras read the images from the
// extracted bundle.
func TestBundleIsAnOCILayout(t *testing.T) {
	t.Parallel()
	l := labtest.StartT(t, lab.Spec{Name: "source", Profile: lab.ProfileOCI11})
	src, _ := l.Get("source")
	dir := t.TempDir()
	file := filepath.Join(dir, "app.tgz")
	export(t, l, src.Host, file)
	layout := filepath.Join(dir, "layout")
	if err := os.Mkdir(layout, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("tar", "-xzf", file, "-C", layout).CombinedOutput(); err != nil {
		t.Fatalf("tar: %v %s", err, out)
	}
	digest := strings.TrimSpace(string(labtest.RunTool(t, dir, "regctl", "image", "digest", "ocidir://"+layout+":"+l.Seed.Tag)))
	if digest != l.Seed.Index {
		t.Fatalf("regctl reads %q from the layout, want %s", digest, l.Seed.Index)
	}
	var idx struct {
		Manifests []struct {
			Digest string `json:"digest"`
		} `json:"manifests"`
	}
	if err := json.Unmarshal(labtest.RunTool(t, dir, "oras", "manifest", "fetch", "--oci-layout", layout+":"+l.Seed.Tag), &idx); err != nil {
		t.Fatal(err)
	}
	if len(idx.Manifests) != len(l.Seed.Platforms) {
		t.Fatalf("oras reads %d platform manifests from the layout, want %d", len(idx.Manifests), len(l.Seed.Platforms))
	}
	// regctl copies every platform out of the layout: every blob is there.
	labtest.RunTool(t, dir, "regctl", "image", "copy", "ocidir://"+layout+":"+l.Seed.Tag, "ocidir://"+filepath.Join(dir, "copy")+":"+l.Seed.Tag)
	copied := strings.TrimSpace(string(labtest.RunTool(t, dir, "regctl", "image", "digest", "ocidir://"+filepath.Join(dir, "copy")+":"+l.Seed.Tag)))
	if copied != l.Seed.Index {
		t.Fatalf("copy out of the layout has digest %q, want %s", copied, l.Seed.Index)
	}
}

// TestExportIsDeterministic: the same inputs give byte-identical bundles,
// in gzip and zstd, and both validate.
func TestExportIsDeterministic(t *testing.T) {
	t.Parallel()
	l := labtest.StartT(t, lab.Spec{Name: "source", Profile: lab.ProfileFallback404})
	src, _ := l.Get("source")
	dir := t.TempDir()
	for _, name := range []string{"a.tgz", "b.tgz", "a.tar.zst", "b.tar.zst"} {
		export(t, l, src.Host, filepath.Join(dir, name))
	}
	for _, pair := range [][2]string{{"a.tgz", "b.tgz"}, {"a.tar.zst", "b.tar.zst"}} {
		a, _ := os.ReadFile(filepath.Join(dir, pair[0]))
		b, _ := os.ReadFile(filepath.Join(dir, pair[1]))
		if len(a) == 0 || !bytes.Equal(a, b) {
			t.Errorf("%s and %s differ", pair[0], pair[1])
		}
		rep, err := bundle.ValidateFile(context.Background(), filepath.Join(dir, pair[0]), bundle.WithCheckReferrers(true))
		if err != nil || !rep.OK || rep.ReferrersChecked != 4 {
			t.Errorf("%s: validate err %v ok %v referrers %d problems %v", pair[0], err, rep.OK, rep.ReferrersChecked, rep.Errors)
		}
	}
	m, err := bundle.ReadManifest(context.Background(), filepath.Join(dir, "a.tgz"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range m.Referrers.Subjects {
		if s.Discovery != bundle.DiscoveryTags {
			t.Errorf("subject %s recorded discovery %q, want tags (the source has no API)", s.Subject, s.Discovery)
		}
	}
	if matches, _ := filepath.Glob(filepath.Join(dir, ".*partial*")); len(matches) > 0 {
		t.Errorf("temporary files left behind: %v", matches)
	}
}

// TestExportRefusesIncompleteDiscovery: a throttled registry produces no
// bundle at all, not one without its SBOMs.
func TestExportRefusesIncompleteDiscovery(t *testing.T) {
	t.Parallel()
	l := labtest.StartT(t, lab.Spec{Name: "hub", Profile: lab.ProfileRateLimit, RateBudget: 2})
	hub, _ := l.Get("hub")
	out := filepath.Join(t.TempDir(), "app.tgz")
	e := env(l.Config(), registry.WithoutDockerCreds())
	e.Discovery = []discovery.Opt{discovery.WithTimeout(3 * time.Second)}
	_, err := mirror.Export(context.Background(), e, out, []string{l.Seed.Ref(hub.Host)})
	if err == nil {
		t.Fatal("export of a throttled registry succeeded")
	}
	if entries, _ := os.ReadDir(filepath.Dir(out)); len(entries) != 0 {
		t.Fatalf("files left behind: %v", entries)
	}
}

// TestStrictImportOfTamperedBundlePushesNothing, and a dry run pushes
// nothing either.
func TestStrictImportOfTamperedBundlePushesNothing(t *testing.T) {
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
	before := l.Requests("target")
	_, err := mirror.Import(context.Background(), env(l.Config(), registry.WithoutDockerCreds()), tampered, tgt.Host, mirror.ImportStrict(true))
	if err == nil || !strings.Contains(err.Error(), "ReferrerChecksumMismatch") {
		t.Fatalf("strict import of a tampered bundle: %v", err)
	}
	if n := l.Requests("target"); n != before {
		t.Fatalf("strict import refused but sent %d requests to the target", n-before)
	}
	plan, err := mirror.Import(context.Background(), env(l.Config(), registry.WithoutDockerCreds()), good, tgt.Host, mirror.ImportDryRun(true))
	if err != nil || plan.Pushed == 0 || plan.Skipped != 0 {
		t.Fatalf("dry run: err %v, %d to push, %d there", err, plan.Pushed, plan.Skipped)
	}
	again, err := mirror.Import(context.Background(), env(l.Config(), registry.WithoutDockerCreds()), good, tgt.Host, mirror.ImportDryRun(true))
	if err != nil || again.Pushed != plan.Pushed {
		t.Fatalf("the dry run pushed something: second plan has %d to push, first %d", again.Pushed, plan.Pushed)
	}
}

// TestInterruptedImportCompletesOnRerun cancels an import part way into a
// registry without the API, then reruns it: every referrer arrives, and
// the fallback indexes hold each exactly once.
func TestInterruptedImportCompletesOnRerun(t *testing.T) {
	t.Parallel()
	l := labtest.StartT(t, lab.Spec{Name: "source", Profile: lab.ProfileOCI11}, lab.Spec{Name: "target", Profile: lab.ProfileFallback404, NoSeed: true})
	src, _ := l.Get("source")
	tgt, _ := l.Get("target")
	file := filepath.Join(t.TempDir(), "app.tgz")
	export(t, l, src.Host, file)
	ctx, cancel := context.WithCancel(context.Background())
	pushed := 0
	_, err := mirror.Import(ctx, env(l.Config(), registry.WithoutDockerCreds()), file, tgt.Host, mirror.ImportWithConcurrency(1),
		mirror.ImportWithEvents(func(e mirror.ImportEvent) {
			if e.Item != nil && e.Item.Action == "push" && e.Item.Kind == "referrer" {
				pushed++
				if pushed == 2 {
					cancel()
				}
			}
		}))
	cancel()
	if err == nil {
		t.Fatal("the canceled import reported success")
	}
	res, err := mirror.Import(context.Background(), env(l.Config(), registry.WithoutDockerCreds()), file, tgt.Host)
	if err != nil || !res.OK {
		t.Fatalf("rerun: err %v ok %v findings %+v", err, res.OK, res.Findings)
	}
	if res.Skipped == 0 {
		t.Error("the rerun skipped nothing: the first run's pushes were not reused")
	}
	for _, r := range res.Reconcile {
		if r.Found != r.Expected {
			t.Errorf("subject %s: %d of %d after rerun", r.Subject, r.Found, r.Expected)
		}
	}
	// No duplicates in the fallback indexes.
	tags, err := discovery.ListTags(context.Background(), tgt.Host+"/"+l.Seed.Repository, discovery.WithConfig(l.Config()),
		discovery.WithClientOpts(registry.WithoutDockerCreds()))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range tags.Subjects {
		res, err := discovery.Discover(context.Background(), tgt.Host+"/"+l.Seed.Repository+"@"+s.Subject,
			discovery.WithConfig(l.Config()), discovery.WithClientOpts(registry.WithoutDockerCreds()), discovery.WithMethod(discovery.MethodTags))
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for _, r := range res.Referrers {
			if r.Source == discovery.SourceTagIndex {
				if seen[r.Digest] {
					t.Errorf("subject %s: %s listed twice in its fallback index", s.Subject, r.Digest)
				}
				seen[r.Digest] = true
			}
		}
	}
}

// TestDiffSeesChangesSinceExport attaches a new SBOM after export and
// expects diff to report it.
func TestDiffSeesChangesSinceExport(t *testing.T) {
	t.Parallel()
	l := labtest.StartT(t, lab.Spec{Name: "source", Profile: lab.ProfileOCI11})
	src, _ := l.Get("source")
	file := filepath.Join(t.TempDir(), "app.tgz")
	export(t, l, src.Host, file)
	same, err := mirror.Diff(context.Background(), env(l.Config(), registry.WithoutDockerCreds()), file)
	if err != nil || !same.Same {
		t.Fatalf("fresh bundle differs: err %v, %+v", err, same.Findings)
	}
	added, err := lab.Attach(context.Background(), l, src.Host, l.Seed.Repository, l.Seed.Index, "application/vnd.openvex+json", []byte(`{"@context":"https://openvex.dev/ns"}`))
	if err != nil {
		t.Fatal(err)
	}
	diff, err := mirror.Diff(context.Background(), env(l.Config(), registry.WithoutDockerCreds()), file)
	if err != nil || diff.Same {
		t.Fatalf("diff after attaching: err %v same %v", err, diff.Same)
	}
	var found bool
	for _, s := range diff.Subjects {
		for _, a := range s.Added {
			if a.Digest == added && a.Category == finding.CategoryVEX {
				found = true
			}
		}
	}
	if !found {
		t.Fatalf("the attached VEX %s is not reported as added: %+v", added, diff.Subjects)
	}
}

// TestZstdBundleImports: a .tar.zst bundle validates and imports like a
// .tgz one.
func TestZstdBundleImports(t *testing.T) {
	t.Parallel()
	l := labtest.StartT(t, lab.Spec{Name: "source", Profile: lab.ProfileOCI11}, lab.Spec{Name: "target", Profile: lab.ProfileOCI11, NoSeed: true})
	src, _ := l.Get("source")
	tgt, _ := l.Get("target")
	file := filepath.Join(t.TempDir(), "app.tar.zst")
	if res := export(t, l, src.Host, file); res.Compression != bundle.CompressionZstd {
		t.Fatalf("compression %s for a .tar.zst name", res.Compression)
	}
	res, err := mirror.Import(context.Background(), env(l.Config(), l.ClientOpts()...), file, tgt.Host, mirror.ImportStrict(true))
	if err != nil || !res.OK || res.Validation == nil || res.Validation.Compression != bundle.CompressionZstd {
		t.Fatalf("zstd import: err %v ok %v findings %+v", err, res.OK, res.Findings)
	}
	for _, r := range res.Reconcile {
		if r.Found != r.Expected {
			t.Errorf("subject %s: %d of %d", r.Subject, r.Found, r.Expected)
		}
	}
}
