package bundle_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/refdoctor/refdoctor/bundle"
	"github.com/refdoctor/refdoctor/finding"
	"github.com/refdoctor/refdoctor/internal/craft"
)

// The bundles in this file are written byte by byte by internal/craft:
// raw tar header blocks, a hand-written manifest.yaml, the standard
// library's gzip. None of refdoctor's writer is involved.

// writeCrafted writes data to a file for the tar tools, and to
// $REFDOCTOR_CRAFT_DIR as well when set, so that the same bundles can be
// run through another refdoctor build by hand.
func writeCrafted(t *testing.T, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if dir := os.Getenv("REFDOCTOR_CRAFT_DIR"); dir != "" {
		if err := os.WriteFile(filepath.Join(dir, strings.ReplaceAll(t.Name(), "/", "_")+"-"+name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return path
}

// readerViews lists the member names each common tar reader sees in a
// .tgz: Go's archive/tar, GNU tar, bsdtar and Python's tarfile. A reader
// that is not installed is left out, and the test says so.
func readerViews(t *testing.T, path string) map[string][]string {
	t.Helper()
	views := map[string][]string{"go": goNames(t, path)}
	run := func(reader string, args ...string) {
		if _, err := exec.LookPath(args[0]); err != nil {
			t.Logf("%s is not installed: its view is not compared", args[0])
			return
		}
		out, _ := exec.Command(args[0], args[1:]...).Output() // a reader that errors still lists what it read
		var names []string
		for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if l != "" {
				names = append(names, l)
			}
		}
		views[reader] = names
	}
	run("gnu", "tar", "-tzf", path)
	run("bsdtar", "bsdtar", "-tzf", path)
	run("python", "python3", "-c", "import sys,tarfile\nwith tarfile.open(sys.argv[1]) as t:\n  for m in t: print(m.name + ('/' if m.isdir() else ''))", path)
	return views
}

func goNames(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return names
		}
		if err != nil {
			return append(names, "error: "+err.Error())
		}
		if h.Typeflag == tar.TypeXGlobalHeader {
			continue
		}
		names = append(names, h.Name)
	}
}

// disagree reports whether some reader's view differs from Go's, and logs
// every view.
func disagree(t *testing.T, views map[string][]string) bool {
	t.Helper()
	differ := false
	for reader, names := range views {
		t.Logf("%-6s sees %q", reader, names)
		if reader != "go" && !slices.Equal(names, views["go"]) {
			differ = true
		}
	}
	return differ
}

func problemCodes(rep bundle.Report) []finding.Code {
	var out []finding.Code
	for _, p := range rep.Errors {
		if !slices.Contains(out, p.Code) {
			out = append(out, p.Code)
		}
	}
	slices.Sort(out)
	return out
}

// evilIndex is what the attacker wants extracted as index.json: v1
// pointing at their own image, whose blobs they ship as listed blobs.
func evilIndex(b *craft.Bundle) (index []byte, blobs []craft.Member) {
	evil := craft.NewImage("attacker's image")
	for _, x := range [][]byte{evil.Manifest, evil.Config, evil.Layer} {
		blobs = append(blobs, craft.Member{Name: "blobs/sha256/" + craft.Sum(x), Data: x})
	}
	return craft.IndexJSON(b.Reference, "v1", evil.Manifest), blobs
}

func TestValidateCraftedBundleIsWhole(t *testing.T) {
	t.Parallel()
	b := craft.Valid()
	path := writeCrafted(t, "valid.tgz", b.Tgz())
	for _, check := range []bool{false, true} {
		rep, err := bundle.ValidateFile(context.Background(), path, bundle.WithCheckReferrers(check))
		if err != nil || !rep.OK {
			t.Fatalf("the crafted bundle does not validate (check-referrers=%v): %v %s", check, err, dump(rep))
		}
		if rep.ReferrersChecked != 2 || !rep.Verified(bundle.IndexPath) || !rep.Verified(bundle.ManifestPath) {
			t.Fatalf("report: %+v", rep)
		}
	}
	if views := readerViews(t, path); disagree(t, views) {
		t.Fatal("readers disagree on a plain USTAR bundle")
	}
}

// TestSmuggling: each archive holds a member whose name tar readers read
// differently. Every one is otherwise a whole bundle, so the only problem
// refdoctor may report is AmbiguousMember (before, it reported nothing
// and validate exited 0). The test shows the disagreement is real by
// asking GNU tar, bsdtar and Python what they see.
func TestSmuggling(t *testing.T) {
	t.Parallel()
	type attack struct {
		name string
		// build appends the hostile entries to a valid bundle.
		build func(b *craft.Bundle)
		// extracted, when set, is checked after tar -xzf: GNU tar writes
		// the attacker's index.json.
		extractsEvil bool
	}
	attacks := []attack{
		{name: "PAX path then GNU long name", extractsEvil: true, build: func(b *craft.Bundle) {
			idx, blobs := evilIndex(b)
			b.Members = append(b.Members, blobs...)
			name := "blobs/sha256/" + craft.Sum(idx)
			raw := append(craft.PAXHeader('x', "path", "index.json"), craft.LongName(name)...)
			raw = append(raw, craft.File("x", idx)...)
			// Listed under the name Go reads: checksums all match.
			b.Listed = map[string]craft.Listed{name: {Size: int64(len(idx)), Sum: craft.Sum(idx)}}
			b.Members = append(b.Members, craft.Member{Name: name, Raw: raw})
		}},
		{name: "GNU long name then PAX path", extractsEvil: true, build: func(b *craft.Bundle) {
			idx, blobs := evilIndex(b)
			b.Members = append(b.Members, blobs...)
			name := "blobs/sha256/" + craft.Sum(idx)
			raw := append(craft.LongName(name), craft.PAXHeader('x', "path", "index.json")...)
			raw = append(raw, craft.File("x", idx)...)
			b.Listed = map[string]craft.Listed{name: {Size: int64(len(idx)), Sum: craft.Sum(idx)}}
			b.Members = append(b.Members, craft.Member{Name: name, Raw: raw})
		}},
		{name: "PAX global header renames the last member", extractsEvil: true, build: func(b *craft.Bundle) {
			idx, blobs := evilIndex(b)
			b.Members = append(b.Members, blobs...)
			name := "blobs/sha256/" + craft.Sum(idx)
			raw := append(craft.PAXHeader('g', "path", "index.json"), craft.File(name, idx)...)
			b.Listed = map[string]craft.Listed{name: {Size: int64(len(idx)), Sum: craft.Sum(idx)}}
			b.Members = append(b.Members, craft.Member{Name: name, Raw: raw})
		}},
		{name: "V7 directory carrying data", build: func(b *craft.Bundle) {
			// GNU tar skips the directory's "data", which holds the
			// index.json Go reads: GNU tar extracts no index.json.
			idx := b.Member("index.json")
			inner := craft.File("index.json", idx.Data)
			*idx = craft.Member{Name: "index.json", Data: idx.Data,
				Raw: craft.Entry("layout/", 0, inner, craft.V7())}
			b.Listed = map[string]craft.Listed{"index.json": {Size: int64(len(idx.Data)), Sum: craft.Sum(idx.Data)}}
		}},
		{name: "two PAX headers", build: func(b *craft.Bundle) {
			idx, blobs := evilIndex(b)
			b.Members = append(b.Members, blobs...)
			name := "blobs/sha256/" + craft.Sum(idx)
			raw := append(craft.PAXHeader('x', "path", "index.json"), craft.PAXHeader('x', "path", name)...)
			raw = append(raw, craft.File("x", idx)...)
			b.Listed = map[string]craft.Listed{name: {Size: int64(len(idx)), Sum: craft.Sum(idx)}}
			b.Members = append(b.Members, craft.Member{Name: name, Raw: raw})
		}},
		{name: "two GNU long names", build: func(b *craft.Bundle) {
			idx, blobs := evilIndex(b)
			b.Members = append(b.Members, blobs...)
			name := "blobs/sha256/" + craft.Sum(idx)
			raw := append(craft.LongName("index.json"), craft.LongName(name)...)
			raw = append(raw, craft.File("x", idx)...)
			b.Listed = map[string]craft.Listed{name: {Size: int64(len(idx)), Sum: craft.Sum(idx)}}
			b.Members = append(b.Members, craft.Member{Name: name, Raw: raw})
		}},
		{name: "USTAR prefix in a V7 header", build: func(b *craft.Bundle) {
			data := []byte("notes")
			b.Listed = map[string]craft.Listed{"notes.txt": {Size: int64(len(data)), Sum: craft.Sum(data)}}
			b.Members = append(b.Members, craft.Member{Name: "notes.txt", Raw: craft.File("notes.txt", data, craft.V7(), craft.Prefix("hidden"))})
		}},
	}
	for _, a := range attacks {
		t.Run(a.name, func(t *testing.T) {
			t.Parallel()
			b := craft.Valid()
			a.build(b)
			path := writeCrafted(t, "smuggle.tgz", b.Tgz())
			if !disagree(t, readerViews(t, path)) {
				t.Fatal("every reader sees the same members: the crafted archive smuggles nothing")
			}
			rep, err := bundle.ValidateFile(context.Background(), path, bundle.WithCheckReferrers(true))
			if err != nil {
				t.Fatal(err)
			}
			if rep.OK || !slices.Equal(problemCodes(rep), []finding.Code{finding.AmbiguousMember}) {
				t.Fatalf("want exactly AmbiguousMember, got %v:\n%s", problemCodes(rep), dump(rep))
			}
			if a.extractsEvil {
				dir := t.TempDir()
				if out, err := exec.Command("tar", "-xzf", path, "-C", dir).CombinedOutput(); err != nil {
					t.Logf("tar -xzf: %v %s", err, out)
				}
				got, _ := os.ReadFile(filepath.Join(dir, "index.json"))
				want, _ := evilIndex(craft.Valid())
				if !bytes.Equal(got, want) {
					t.Fatalf("GNU tar did not extract the attacker's index.json: the attack is not what this test claims:\n%s", got)
				}
				t.Log("GNU tar -xzf wrote the attacker's index.json; refdoctor reports AmbiguousMember")
			}
		})
	}
}

// TestCollisions: names that unpack onto each other. The listing matches
// every member, so before refdoctor reported nothing.
func TestCollisions(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		build func(b *craft.Bundle)
		want  finding.Code
	}{
		{"directory entry after the file of the same name", func(b *craft.Bundle) {
			// GNU tar replaces the file oci-layout with a directory.
			b.Members = append(b.Members, craft.Member{Name: "oci-layout/", Raw: craft.Entry("oci-layout/", '5', nil)})
		}, finding.MemberCollision},
		{"file under a listed file's name", func(b *craft.Bundle) {
			data := []byte("x")
			b.Members = append(b.Members, craft.Member{Name: "oci-layout/x", Data: data})
		}, finding.MemberCollision},
		{"INDEX.JSON next to index.json", func(b *craft.Bundle) {
			idx, _ := evilIndex(b)
			b.Members = append(b.Members, craft.Member{Name: "INDEX.JSON", Data: idx})
		}, finding.CaseCollision},
		{"Manifest.yaml next to manifest.yaml", func(b *craft.Bundle) {
			b.Members = append(b.Members, craft.Member{Name: "Manifest.yaml", Data: []byte("schemaVersion: 1\n")})
		}, finding.CaseCollision},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			b := craft.Valid()
			c.build(b)
			path := writeCrafted(t, "collide.tgz", b.Tgz())
			rep, err := bundle.ValidateFile(context.Background(), path, bundle.WithCheckReferrers(true))
			if err != nil {
				t.Fatal(err)
			}
			if rep.OK || !slices.Contains(problemCodes(rep), c.want) {
				t.Fatalf("want %s, got %v:\n%s", c.want, problemCodes(rep), dump(rep))
			}
			// Everything else about the bundle is right: the listing
			// matches, so the collision is the one problem.
			if got := problemCodes(rep); len(got) != 1 {
				t.Errorf("more than the collision reported: %v\n%s", got, dump(rep))
			}
			dir := t.TempDir()
			out, err := exec.Command("tar", "-xzf", path, "-C", dir).CombinedOutput()
			t.Logf("GNU tar -xzf: err %v %s", err, out)
			if c.want == finding.MemberCollision && err == nil {
				if fi, err := os.Stat(filepath.Join(dir, "oci-layout")); err != nil || !fi.IsDir() {
					t.Fatalf("GNU tar kept the file oci-layout (%v): the collision is not what this test claims", err)
				}
				t.Log("GNU tar -xzf replaced the file oci-layout with a directory")
			}
		})
	}
}
