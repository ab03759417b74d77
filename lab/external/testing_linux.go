//go:build linux

package external

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"
)

// StartDistributionT runs docker-registry for one test and stops it when
// the test ends. Without the binary the test is skipped, except under CI,
// where a missing binary means .ci/run is broken.
func StartDistributionT(tb testing.TB) *Distribution {
	tb.Helper()
	if _, err := DistributionBinary(); err != nil {
		if !errors.Is(err, ErrDistributionMissing) || os.Getenv("CI") != "" {
			tb.Fatalf("docker-registry: %v (.ci/run installs it)", err)
		}
		tb.Skipf("skipping: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	d, err := StartDistribution(ctx, tb.TempDir())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = d.Close() })
	return d
}
