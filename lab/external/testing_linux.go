//go:build linux

package external

import (
	"context"
	"crypto/rand"
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

// StartDistributionWithLoginT runs docker-registry behind htpasswd basic
// auth for one test, with a fresh login (user and password), and stops it
// when the test ends.
func StartDistributionWithLoginT(tb testing.TB) (d *Distribution, user, password string) {
	tb.Helper()
	if _, err := DistributionBinary(); err != nil {
		if !errors.Is(err, ErrDistributionMissing) || os.Getenv("CI") != "" {
			tb.Fatalf("docker-registry: %v (.ci/run installs it)", err)
		}
		tb.Skipf("skipping: %v", err)
	}
	user, password = "lab-"+rand.Text()[:6], rand.Text()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	d, err := StartDistributionWithLogin(ctx, tb.TempDir(), user, password)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = d.Close() })
	return d, user, password
}
