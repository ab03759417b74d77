package mirror_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/refdoctor/refdoctor/bundle"
	"github.com/refdoctor/refdoctor/config"
	"github.com/refdoctor/refdoctor/lab"
	"github.com/refdoctor/refdoctor/lab/labtest"
	"github.com/refdoctor/refdoctor/mirror"
	"github.com/refdoctor/refdoctor/registry"
)

// TestMain runs this test binary as an export to be killed when
// TestKilledExportLeavesNoStalePartials starts it so.
func TestMain(m *testing.M) {
	if host := os.Getenv("REFDOCTOR_EXPORT_HELPER_HOST"); host != "" {
		exportUntilKilled(host, os.Getenv("REFDOCTOR_EXPORT_HELPER_OUT"), os.Getenv("REFDOCTOR_EXPORT_HELPER_REF"))
	}
	os.Exit(m.Run())
}

// exportUntilKilled exports ref to out and stops for good once it has
// started writing.
func exportUntilKilled(host, out, ref string) {
	cfg := config.Defaults()
	cfg.SetHost(config.Registry{Host: host, PlainHTTP: true})
	_, err := mirror.Export(context.Background(), env(cfg, registry.WithoutDockerCreds()), out, []string{ref},
		mirror.ExportWithEvents(func(e mirror.ExportEvent) {
			if e.Kind == mirror.ExportMember {
				fmt.Println("WRITING")
				select {} // until killed
			}
		}))
	fmt.Fprintln(os.Stderr, "the export was not killed:", err)
	os.Exit(1)
}

// TestKilledExportLeavesNoStalePartials kills a real export process with
// SIGKILL while it writes, then exports the same file again: the killed
// export's partial file is removed, a partial file of a process that is
// still running is kept, and the new bundle is whole.
func TestKilledExportLeavesNoStalePartials(t *testing.T) {
	t.Parallel()
	l := labtest.StartT(t, lab.Spec{Name: "source", Profile: lab.ProfileOCI11})
	src, _ := l.Get("source")
	dir := t.TempDir()
	out := filepath.Join(dir, "app.tgz")
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "REFDOCTOR_EXPORT_HELPER_HOST="+src.Host, "REFDOCTOR_EXPORT_HELPER_OUT="+out,
		"REFDOCTOR_EXPORT_HELPER_REF="+l.Seed.Ref(src.Host))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	for sc.Scan() && sc.Text() != "WRITING" {
	}
	if err := cmd.Process.Kill(); err != nil { // SIGKILL: no cleanup can run
		t.Fatal(err)
	}
	_ = cmd.Wait()
	partials := func() []string {
		var names []string
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if strings.Contains(e.Name(), ".partial-") {
				names = append(names, e.Name())
			}
		}
		return names
	}
	left := partials()
	if len(left) != 1 || !strings.HasPrefix(left[0], ".app.tgz.partial-"+fmt.Sprint(cmd.Process.Pid)+"-") {
		t.Fatalf("the killed export left %v, want one partial file named after its process %d", left, cmd.Process.Pid)
	}
	// A partial file of a process that is alive (this test's parent) is
	// another export at work: kept.
	alive := filepath.Join(dir, fmt.Sprintf(".app.tgz.partial-%d-1", os.Getppid()))
	if err := os.WriteFile(alive, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	res := export(t, l, src.Host, out)
	if len(res.RemovedPartials) != 1 || filepath.Base(res.RemovedPartials[0]) != left[0] {
		t.Fatalf("removed %v, want %s", res.RemovedPartials, left[0])
	}
	if got := partials(); len(got) != 1 || got[0] != filepath.Base(alive) {
		t.Fatalf("partial files after the export: %v, want only the live one", got)
	}
	rep, err := bundle.ValidateFile(context.Background(), out, bundle.WithCheckReferrers(true))
	if err != nil || !rep.OK {
		t.Fatalf("the new bundle: %v %+v", err, rep.Errors)
	}
}
