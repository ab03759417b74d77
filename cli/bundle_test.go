package cli_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/refdoctor/refdoctor/finding"
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
	code, out, errOut = run(t, "--config", cfg, "bundle", "import", "--file", good, "--to", tgt.Host)
	if code != 0 || !strings.Contains(out, "RECONCILE") || strings.Contains(out, "MISSING") {
		t.Fatalf("import: exit %d %s %s", code, out, errOut)
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
