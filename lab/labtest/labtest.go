// Package labtest holds the helpers tests across refdoctor use with the
// lab: a lab started for one test, the independent reference clients
// (oras, regctl, crane, cosign) and Debian's docker-registry as a process.
// It imports testing, execs `go tool` and starts processes, so only tests
// import it and the refdoctor binary never links it.
package labtest

import (
	"context"
	"testing"
	"time"

	"github.com/refdoctor/refdoctor/lab"
	"github.com/refdoctor/refdoctor/lab/external"
)

// StartT starts a lab for one test or benchmark and closes it when that
// ends; a lab that cannot start fails the test.
func StartT(tb testing.TB, specs ...lab.Spec) *lab.Lab {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	l, err := lab.Start(ctx, lab.WithSpecs(specs...))
	if err != nil {
		tb.Fatalf("start lab: %v", err)
	}
	tb.Cleanup(func() { _ = l.Close() })
	return l
}

// RunTool runs an independent client (oras, regctl, crane, cosign) in
// dir, with HOME and DOCKER_CONFIG there so no machine setting leaks in,
// and returns its stdout. A missing client skips the test, except under
// CI, where it means .ci/run is broken.
func RunTool(tb testing.TB, dir, name string, args ...string) []byte {
	tb.Helper()
	return external.RunTool(tb, dir, name, args...)
}

// ReferenceTool finds an independent client for cross-checks:
// $REFDOCTOR_TOOLS_BIN/NAME as .ci/run links them, else the one
// `go tool -n` builds from tools/go.mod.
func ReferenceTool(name string) (string, error) { return external.ReferenceTool(name) }

// RegctlOneRequestAtATime runs regctl against plain-HTTP hosts that get
// one request at a time (regctl registry set --req-concurrent 1): olareg
// v0.2.2 updates a subject's referrers list by read-modify-write without a
// lock, so referrers that regctl pushes side by side lose entries there.
// Tests that need a whole copy use this; compare finds such a lost entry
// (ReferrerNotListed) when regctl runs as it does by default.
func RegctlOneRequestAtATime(tb testing.TB, dir string, hosts []string, args ...string) []byte {
	tb.Helper()
	for _, h := range hosts {
		RunTool(tb, dir, "regctl", "registry", "set", "--tls", "disabled", "--req-concurrent", "1", "--skip-check", h)
	}
	return RunTool(tb, dir, "regctl", args...)
}
