package bundle_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/refdoctor/refdoctor/bundle"
)

// handCheck is the by-hand verification docs/bundle-format.md gives, for
// operators without refdoctor at hand. The test keeps the document true.
const handCheck = `set -eu
tar -xzOf "$B" manifest.yaml | awk '
  /^  - \{path: / { gsub(/[{},]/, ""); print $7 "  " $3; next }
  /^ +path: referrers\// { p = $2 }
  /^ +sha256: / && p { print $2 "  " p; p = "" }' > SHA256SUMS
mkdir b && tar -xzf "$B" -C b
(cd b && sha256sum -c --quiet ../SHA256SUMS)
{ echo manifest.yaml; awk '{print $2}' SHA256SUMS; } | sort > listed
tar -tzf "$B" | grep -v '/$' | grep -vx manifest.yaml.sigstore.json | sort > members
diff listed members
`

func needTools(t *testing.T, tools ...string) {
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
}

func TestRunbookHandChecks(t *testing.T) {
	t.Parallel()
	needTools(t, "sh", "tar", "gzip", "sha256sum", "awk", "diff")
	run := func(dir, script string, env ...string) (string, error) {
		cmd := exec.Command("sh", "-c", script)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	f := newFixture(t)
	dir := t.TempDir()
	good := filepath.Join(dir, "good.tgz")
	if err := os.WriteFile(good, f.write(t), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := run(dir, handCheck, "B="+good); err != nil {
		t.Fatalf("hand check of a good bundle failed: %v\n%s", err, out)
	}
	// The runbook's own commands.
	ref := f.referrers[0]
	out, err := run(dir, `tar -xzf "$B" -O "$R" | sha256sum`, "B="+good, "R="+ref.path)
	if err != nil || !strings.HasPrefix(out, strings.TrimPrefix(ref.digest, "sha256:")+" ") {
		t.Errorf("runbook referrer checksum: %v %q", err, out)
	}
	out, err = run(dir, `tar -xzf "$B" -O manifest.yaml | grep -A5 "referrers:"`, "B="+good)
	if err != nil || !strings.Contains(out, "total: 3") {
		t.Errorf("runbook manifest grep: %v %q", err, out)
	}

	// A signed bundle: the signature is the one member manifest.yaml
	// cannot list, and the hand check knows it.
	signed := filepath.Join(t.TempDir(), "signed.tgz")
	if err := os.WriteFile(signed, f.writeSigned(t, []byte(`{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json"}`)), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := run(filepath.Dir(signed), handCheck, "B="+signed); err != nil {
		t.Errorf("hand check of a signed bundle failed: %v\n%s", err, out)
	}

	// A tampered bundle fails the hand check too.
	f.files[ref.path][40] ^= 1
	bad := filepath.Join(t.TempDir(), "bad.tgz")
	if err := os.WriteFile(bad, f.write(t), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := run(filepath.Dir(bad), handCheck, "B="+bad); err == nil {
		t.Errorf("hand check passed a tampered bundle:\n%s", out)
	}

	// Repacked by hand from the extracted tree ("./" names, directory
	// entries, manifest.yaml no longer first): still a valid bundle.
	re := filepath.Join(dir, "repacked.tgz")
	if out, err := run(dir, `tar -czf "$O" -C b .`, "O="+re); err != nil {
		t.Fatalf("repack: %v\n%s", err, out)
	}
	rep, err := bundle.ValidateFile(context.Background(), re, bundle.WithCheckReferrers(true))
	if err != nil || !rep.OK {
		t.Fatalf("repacked bundle: err %v, report %s", err, dump(rep))
	}
	s, err := bundle.Inspect(context.Background(), re)
	if err != nil || s.ReferrersTotal != 3 {
		t.Errorf("inspect repacked: %v %+v", err, s)
	}
}
