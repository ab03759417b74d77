//go:build linux

package labtest

import (
	"testing"

	"github.com/refdoctor/refdoctor/lab"
	"github.com/refdoctor/refdoctor/lab/external"
)

// Distribution is Debian's docker-registry (distribution v2.8) running as
// a process: a second, independent registry implementation without the
// referrers API.
type Distribution = external.Distribution

// StartDistributionT runs docker-registry for one test and stops it when
// the test ends. Without the binary the test is skipped, except under CI,
// where a missing binary means .ci/run is broken.
func StartDistributionT(tb testing.TB) *Distribution {
	tb.Helper()
	return external.StartDistributionT(tb)
}

// StartDistributionWithLoginT runs docker-registry behind htpasswd basic
// auth, with a fresh login, for one test.
func StartDistributionWithLoginT(tb testing.TB) (*Distribution, lab.Login) {
	tb.Helper()
	d, user, password := external.StartDistributionWithLoginT(tb)
	return d, lab.Login{User: user, Password: password}
}
