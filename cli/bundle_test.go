package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/refdoctor/refdoctor/finding"
	"github.com/refdoctor/refdoctor/internal/craft"
	"github.com/refdoctor/refdoctor/lab"
	"github.com/refdoctor/refdoctor/lab/labtest"
)

// TestBundleCommands walks export, inspect, validate (good, tampered, not
// a bundle), import --dry-run, import and diff through the command line,
// checking the exit codes scripts rely on.
func TestBundleCommands(t *testing.T) {
	t.Parallel()
	l := labtest.StartT(t, lab.Spec{Name: "source", Profile: lab.ProfileOCI11}, lab.Spec{Name: "target", Profile: lab.ProfileFallback404, NoSeed: true})
	src, _ := l.Get("source")
	tgt, _ := l.Get("target")
	dir := t.TempDir()
	cfg := writeFile(t, dir, "c.toml", fmt.Sprintf("[cache]\ndir = %q\n[[registry]]\nhost = %q\nplain_http = true\n[[registry]]\nhost = %q\nplain_http = true\n", filepath.Join(dir, "cache"), src.Host, tgt.Host))
	good := filepath.Join(dir, "app.tgz")

	code, out, errOut := run(t, "--config", cfg, "bundle", "export", "--file", good, "--created", "2026-11-27T12:00:00Z", l.Seed.Ref(src.Host))
	if code != 0 || !strings.Contains(out, "4 referrers") {
		t.Fatalf("export: exit %d\n%s%s", code, out, errOut)
	}
	exported := out
	code, out, _ = run(t, "-o", "json", "bundle", "inspect", "--file", good)
	var summary struct {
		ReferrersTotal int `json:"referrers_total"`
		Images         []struct {
			Digest string `json:"digest"`
		} `json:"images"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &summary) != nil || summary.ReferrersTotal != 4 || summary.Images[0].Digest != l.Seed.Index {
		t.Fatalf("inspect: exit %d %s", code, out)
	}

	code, out, _ = run(t, "-o", "json", "bundle", "validate", "--file", good, "--check-referrers")
	var rep struct {
		OK               bool `json:"ok"`
		FilesChecked     int  `json:"files_checked"`
		BytesChecked     int  `json:"bytes_checked"`
		ReferrersChecked int  `json:"referrers_checked"`
		Errors           []struct {
			Code, Path, Expected, Actual, Message string
		} `json:"errors"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &rep) != nil || !rep.OK || rep.ReferrersChecked != 4 || rep.FilesChecked == 0 || rep.BytesChecked == 0 {
		t.Fatalf("validate good: exit %d %s", code, out)
	}
	if want := fmt.Sprintf(" %d files, ", rep.FilesChecked); !strings.Contains(exported, want) {
		t.Errorf("export and validate count the bundle's files differently: validate checked %d, export said %q", rep.FilesChecked, exported)
	}
	tampered := filepath.Join(dir, "tampered.tgz")
	if err := lab.TamperReferrer(good, tampered); err != nil {
		t.Fatal(err)
	}
	code, out, _ = run(t, "-o", "json", "bundle", "validate", "--file", tampered, "--check-referrers")
	rep.Errors = nil
	if code != 1 || json.Unmarshal([]byte(out), &rep) != nil || rep.OK || len(rep.Errors) == 0 || rep.Errors[0].Code != string(finding.ReferrerChecksumMismatch) ||
		rep.Errors[0].Expected == rep.Errors[0].Actual || !strings.HasPrefix(rep.Errors[0].Path, "referrers/") {
		t.Fatalf("validate tampered: exit %d %s", code, out)
	}
	code, out, _ = run(t, "bundle", "validate", "--file", tampered)
	if code != 1 || !strings.Contains(out, "ReferrerChecksumMismatch") || !strings.Contains(out, "expected") {
		t.Fatalf("validate tampered (table): exit %d %s", code, out)
	}
	// What to do is said once per code, after the problems.
	if _, todo, ok := strings.Cut(out, "\nWHAT TO DO\n"); !ok || strings.Join(strings.Fields(todo), " ") != "ReferrerChecksumMismatch "+finding.ReferrerChecksumMismatch.Remedy() {
		t.Fatalf("validate tampered (table) does not say what to do once:\n%s", out)
	}
	notBundle := writeFile(t, dir, "notes.txt", "not a bundle")
	if code, _, errOut = run(t, "bundle", "validate", "--file", notBundle); code != 2 || !strings.Contains(errOut, "neither gzip nor zstd") {
		t.Fatalf("validate a text file: exit %d %s", code, errOut)
	}
	if code, _, errOut = run(t, "bundle", "validate", "--file", filepath.Join(dir, "missing.tgz")); code != 2 {
		t.Fatalf("validate a missing file: exit %d %s", code, errOut)
	}

	code, out, errOut = run(t, "--config", cfg, "bundle", "import", "--file", tampered, "--to", tgt.Host, "--strict-referrer-validation")
	if code != 1 || !strings.Contains(errOut, "nothing was pushed") {
		t.Fatalf("strict import of the tampered bundle: exit %d %s %s", code, out, errOut)
	}
	code, out, errOut = run(t, "--config", cfg, "bundle", "import", "--file", good, "--to", tgt.Host, "--dry-run")
	if code != 0 || !strings.Contains(out, "dry run") || !strings.Contains(out, "push") {
		t.Fatalf("dry run: exit %d %s %s", code, out, errOut)
	}
	plan := regexp.MustCompile(`(\d+) to push \(([^)]+)\)`).FindStringSubmatch(out)
	// The plan's destinations whole: the target and the repository.
	if plan == nil || !strings.Contains(out, tgt.Host+"/"+l.Seed.Repository) {
		t.Fatalf("dry run lacks its count or a whole destination:\n%s", out)
	}
	code, out, errOut = run(t, "--config", cfg, "bundle", "import", "--file", good, "--to", tgt.Host)
	if code != 0 || !strings.Contains(out, "RECONCILE") || strings.Contains(out, "MISSING") {
		t.Fatalf("import: exit %d %s %s", code, out, errOut)
	}
	// What the dry run said it would push is what the import pushed,
	// count and bytes.
	if done := regexp.MustCompile(`(\d+) pushed \(([^)]+)\)`).FindStringSubmatch(out); done == nil || done[1] != plan[1] || done[2] != plan[2] || plan[2] == "0B" {
		t.Errorf("dry run said %v, the import did %v:\n%s", plan, done, out)
	}

	if code, out, errOut = run(t, "--config", cfg, "bundle", "diff", "--file", good); code != 0 {
		t.Fatalf("diff of a fresh bundle: exit %d %s %s", code, out, errOut)
	}
	if _, err := lab.Attach(context.Background(), l, src.Host, l.Seed.Repository, l.Seed.Index, "application/vnd.openvex+json", []byte("{}")); err != nil {
		t.Fatal(err)
	}
	if code, out, _ = run(t, "--config", cfg, "bundle", "diff", "--file", good); code != 1 || !strings.Contains(out, "+ vex") {
		t.Fatalf("diff after a new VEX: exit %d %s", code, out)
	}
	if _, err := os.Stat(good + ".sha256"); err != nil {
		t.Fatal("no sidecar")
	}
}

// TestValidateHostileFixtures runs the committed hostile archives through
// the command line: each is refused with its own code, nothing is written
// next to it, and a manifest that cannot be read is exit 2.
func TestValidateHostileFixtures(t *testing.T) {
	t.Parallel()
	want := map[string]struct {
		code int
		err  string
	}{
		"absolute-path.tgz":      {1, "UnsafePath"},
		"dotdot.tgz":             {1, "UnsafePath"},
		"symlink.tgz":            {1, "LinkMember"},
		"hardlink.tgz":           {1, "LinkMember"},
		"chardev.tgz":            {1, "DeviceMember"},
		"fifo.tgz":               {1, "DeviceMember"},
		"duplicate.tgz":          {1, "DuplicateMember"},
		"larger-than-listed.tgz": {1, "SizeMismatch"},
		"bomb.tgz":               {1, "DecompressionBomb"},
		"truncated.tgz":          {1, "TruncatedArchive"},
		"invalid-yaml.tgz":       {2, "MalformedManifest"},
		"unknown-field.tgz":      {2, "MalformedManifest"},
	}
	dir := filepath.Join("..", "bundle", "testdata", "hostile")
	for name, w := range want {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			before, _ := os.ReadDir(dir)
			code, out, errOut := run(t, "-o", "json", "bundle", "validate", "--file", filepath.Join(dir, name), "--check-referrers")
			if code != w.code || !strings.Contains(out, `"code": "`+w.err+`"`) {
				t.Fatalf("exit %d (want %d), output lacks %s:\n%s%s", code, w.code, w.err, out, errOut)
			}
			if after, _ := os.ReadDir(dir); len(after) != len(before) {
				t.Fatal("validation wrote into the fixture folder")
			}
		})
	}
}

// TestImportSummaryAgreesWithDetail: a non-strict import of a tampered
// bundle. Every summary line agrees with the lines under it: the counts
// with the plan, "not imported" with the NOT IMPORTED list and the
// findings, reconciliation with what was imported (the refused referrer
// is counted as refused and absent, not as found or missing); exit 1.
func TestImportSummaryAgreesWithDetail(t *testing.T) {
	t.Parallel()
	l := labtest.StartT(t, lab.Spec{Name: "source", Profile: lab.ProfileOCI11}, lab.Spec{Name: "target", Profile: lab.ProfileOCI11, NoSeed: true})
	src, _ := l.Get("source")
	tgt, _ := l.Get("target")
	dir := t.TempDir()
	cfg := writeFile(t, dir, "c.toml", fmt.Sprintf("[cache]\ndir = %q\n[[registry]]\nhost = %q\nplain_http = true\n[[registry]]\nhost = %q\nplain_http = true\n", filepath.Join(dir, "cache"), src.Host, tgt.Host))
	good, tampered := filepath.Join(dir, "app.tgz"), filepath.Join(dir, "tampered.tgz")
	if code, out, errOut := run(t, "--config", cfg, "bundle", "export", "--file", good, l.Seed.Ref(src.Host)); code != 0 {
		t.Fatalf("export: exit %d\n%s%s", code, out, errOut)
	}
	if err := lab.TamperReferrer(good, tampered); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := run(t, "--config", cfg, "bundle", "import", "--file", tampered, "--to", tgt.Host)
	if code != 1 {
		t.Fatalf("import of a tampered bundle: exit %d\n%s%s", code, out, errOut)
	}
	t.Log(out)
	if !strings.Contains(out, ", 1 not imported\n") || !strings.Contains(out, "NOT IMPORTED (1)\n  referrer ") {
		t.Fatalf("summary or NOT IMPORTED list wrong:\n%s", out)
	}
	if strings.Count(out, "error NotImported") != 1 || strings.Count(out, "1 not imported, absent from the target") != 1 {
		t.Fatalf("the not-imported referrer is not reported once as refused and absent:\n%s", out)
	}
	if strings.Contains(out, "MISSING") {
		t.Fatalf("reconciliation calls the refused referrer missing:\n%s", out)
	}
	// The JSON's counts agree with its plan.
	code, out, _ = run(t, "--config", cfg, "-o", "json", "bundle", "import", "--file", tampered, "--to", tgt.Host)
	var res struct {
		Pushed, Skipped, Refused int
		Plan                     []struct{ Action string }
	}
	if code != 1 || json.Unmarshal([]byte(out), &res) != nil {
		t.Fatalf("json import: exit %d %s", code, out)
	}
	n := map[string]int{}
	for _, it := range res.Plan {
		n[it.Action]++
	}
	if n["push"] != res.Pushed || n["skip"] != res.Skipped || n["refused"] != res.Refused || res.Refused != 1 || res.Pushed != 0 {
		t.Fatalf("second import: counts %d/%d/%d, plan %v", res.Pushed, res.Skipped, res.Refused, n)
	}
}

// TestExitCodesAgree: one rule for validate, inspect and import. Input
// that is not a readable bundle (not a bundle, a malformed or newer
// manifest.yaml) is 2; a bundle that was read and is wrong (damaged,
// tampered, hostile) is 1. Inspect reads only manifest.yaml, so damage
// after it is not its to see (0). Import refuses these bundles before any
// request, so its target need not exist.
func TestExitCodesAgree(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	withManifest := func(y string) []byte {
		b := craft.Valid()
		b.Members = append([]craft.Member{{Name: "manifest.yaml", Data: []byte(y)}}, b.Members...)
		return b.Tgz()
	}
	valid := craft.Valid()
	big := craft.Valid() // an incompressible blob after manifest.yaml, to cut into
	noise := make([]byte, 256<<10)
	for i := range noise {
		noise[i] = byte(i*7919 + i/251*31)
	}
	big.Members = append(big.Members, craft.Member{Name: "blobs/sha256/" + craft.Sum(noise), Data: noise})
	good := big.Tgz()
	tampered := craft.Valid()
	ref := &tampered.Members[len(tampered.Members)-1]
	tampered.Listed = map[string]craft.Listed{ref.Name: {Size: int64(len(ref.Data)), Sum: craft.Sum(ref.Data)}}
	ref.Data = bytes.ToUpper(ref.Data)
	var bomb bytes.Buffer // 300 MiB of zeros before manifest.yaml
	s := craft.NewStream(&bomb)
	if err := s.FileFrom("zeros", 300<<20, zeroReader{}); err != nil {
		t.Fatal(err)
	}
	if err := s.File("manifest.yaml", valid.ManifestYAML()); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name                     string
		file                     string
		validate, inspect, imprt int
	}{
		{"not a bundle", write("notes.txt", []byte("not a bundle")), 2, 2, 2},
		{"malformed manifest.yaml", write("malformed.tgz", withManifest("kind: [\n")), 2, 2, 2},
		{"newer schemaVersion", write("newer.tgz", withManifest("schemaVersion: 2\nkind: MirrorBundle\n")), 2, 2, 2},
		{"truncated after manifest.yaml", write("truncated.tgz", good[:len(good)*3/4]), 1, 0, 1},
		{"decompression bomb before manifest.yaml", write("bomb.tgz", bomb.Bytes()), 1, 1, 1},
		{"tampered referrer", write("tampered.tgz", tampered.Tgz()), 1, 0, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			for _, cmd := range []struct {
				args []string
				want int
			}{
				{[]string{"bundle", "validate", "--file", c.file}, c.validate},
				{[]string{"bundle", "inspect", "--file", c.file}, c.inspect},
				{[]string{"bundle", "import", "--strict-referrer-validation", "--file", c.file, "--to", "127.0.0.1:1"}, c.imprt},
			} {
				if code, out, errOut := run(t, cmd.args...); code != cmd.want {
					t.Errorf("%s: exit %d, want %d\n%s%s", cmd.args[1], code, cmd.want, out, errOut)
				}
			}
		})
	}
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// TestImportWithUnwritableCache: an air-gapped import host whose home
// (and so the capability cache) cannot be written. The import succeeds,
// and says nothing about the cache above debug level.
func TestImportWithUnwritableCache(t *testing.T) {
	t.Parallel()
	l := labtest.StartT(t, lab.Spec{Name: "source", Profile: lab.ProfileOCI11}, lab.Spec{Name: "target", Profile: lab.ProfileFallback404, NoSeed: true})
	src, _ := l.Get("source")
	tgt, _ := l.Get("target")
	dir := t.TempDir()
	// A file where the cache folder's parent should be: not writable,
	// even for root.
	blocked := writeFile(t, dir, "home", "a file, not a folder")
	cfg := writeFile(t, dir, "c.toml", fmt.Sprintf("[cache]\ndir = %q\n[[registry]]\nhost = %q\nplain_http = true\n[[registry]]\nhost = %q\nplain_http = true\n",
		filepath.Join(blocked, ".cache", "refdoctor"), src.Host, tgt.Host))
	good := filepath.Join(dir, "app.tgz")
	if code, out, errOut := run(t, "--config", cfg, "bundle", "export", "--file", good, l.Seed.Ref(src.Host)); code != 0 {
		t.Fatalf("export: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut := run(t, "--config", cfg, "--log-level", "info", "bundle", "import", "--file", good, "--to", tgt.Host)
	if code != 0 || strings.Contains(errOut, "cache") {
		t.Fatalf("import with an unwritable cache: exit %d\n%s%s", code, out, errOut)
	}
	_, _, errOut = run(t, "--config", cfg, "--log-level", "debug", "bundle", "import", "--dry-run", "--file", good, "--to", tgt.Host)
	if !strings.Contains(errOut, "level=DEBUG msg=\"capability cache not used") {
		t.Fatalf("no debug line about the cache:\n%s", errOut)
	}
}

// TestDiffSaysWhatItCouldNotRead: bundle diff of the tampered bundle does
// not say the source serves exactly what the bundle holds (exit 1), and a
// diff against a source it cannot read (plain HTTP without --plain-http)
// lists nothing as removed, names the subjects not read, and exits 3.
func TestDiffSaysWhatItCouldNotRead(t *testing.T) {
	t.Parallel()
	l := labtest.StartT(t, lab.Spec{Name: "source", Profile: lab.ProfileOCI11})
	src, _ := l.Get("source")
	dir := t.TempDir()
	plain := writeFile(t, dir, "plain.toml", fmt.Sprintf("[cache]\ndir = %q\n[[registry]]\nhost = %q\nplain_http = true\n", filepath.Join(dir, "cache"), src.Host))
	tls := writeFile(t, dir, "tls.toml", fmt.Sprintf("[cache]\ndir = %q\n", filepath.Join(dir, "cache2")))
	good, tampered := filepath.Join(dir, "app.tgz"), filepath.Join(dir, "tampered.tgz")
	if code, out, errOut := run(t, "--config", plain, "bundle", "export", "--file", good, l.Seed.Ref(src.Host)); code != 0 {
		t.Fatalf("export: exit %d\n%s%s", code, out, errOut)
	}
	if err := lab.TamperReferrer(good, tampered); err != nil {
		t.Fatal(err)
	}
	code, out, _ := run(t, "--config", plain, "bundle", "diff", "--file", tampered)
	if code != 1 || strings.Contains(out, "exactly") || !strings.Contains(out, "does not hold what it lists") || !strings.Contains(out, "! damaged in the bundle") {
		t.Fatalf("diff of the tampered bundle: exit %d\n%s", code, out)
	}
	code, out, _ = run(t, "--config", tls, "bundle", "diff", "--file", good)
	if code != 3 || !strings.Contains(out, "INCOMPLETE") || !strings.Contains(out, "NOT READ (2)") || strings.Contains(out, "  - ") {
		t.Fatalf("diff against a source read over the wrong transport: exit %d\n%s", code, out)
	}
}
