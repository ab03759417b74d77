package bundle_test

import (
	"context"
	"io"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/refdoctor/refdoctor/bundle"
	"github.com/refdoctor/refdoctor/finding"
	"github.com/refdoctor/refdoctor/internal/craft"
)

// validateStream validates what c writes, through a pipe: the cases that
// expand to gigabytes are never made whole, since reading stops early.
func validateStream(c craft.Case, opts ...bundle.Opt) (bundle.Report, error) {
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(c.Write(pw)) }()
	defer pr.CloseWithError(io.ErrClosedPipe)
	return bundle.Validate(context.Background(), pr, opts...)
}

// TestHostileInputsAreBounded runs every input of the memory suite (the
// ones that took gigabytes before: 16 MiB of tiny YAML nodes, millions of
// aliases, 1.5 M descriptors, 150,000 invalid digests in one blob, 2 M
// tiny members, a listing that switched the bomb guard off; and the
// largest whole bundles) through Validate and Inspect. Each gets its
// answer, and the report stays small: each cause once, with a count.
// bench/memory.sh measures the peak RSS of the same inputs at full size.
func TestHostileInputsAreBounded(t *testing.T) {
	t.Parallel()
	for _, c := range craft.HostileQuick() {
		t.Run(c.Name, func(t *testing.T) {
			t.Parallel()
			rep, err := validateStream(c, bundle.WithCheckReferrers(true))
			codes := problemCodes(rep)
			switch {
			case c.Want == "" && (err != nil || !rep.OK):
				t.Fatalf("a whole bundle did not validate: %v %s", err, dump(rep))
			case c.Want != "" && !slices.Contains(codes, finding.Code(c.Want)):
				t.Fatalf("want %s, got %v (err %v)", c.Want, codes, err)
			}
			if len(rep.Errors) > len(codes)*(bundle.MaxProblemsPerCode+1) {
				t.Fatalf("%d problems for %d codes: not folded", len(rep.Errors), len(codes))
			}
			for _, p := range rep.Errors {
				if len(p.Message) > 1200 || len(p.Path) > 300 || len(p.Actual) > 300 || len(p.More) > 5 {
					t.Fatalf("problem not clipped: %d-byte message, %d-byte path", len(p.Message), len(p.Path))
				}
			}
			if c.Name == "blob-150k-invalid-digests" {
				i := slices.IndexFunc(rep.Errors, func(p bundle.Problem) bool { return p.Code == finding.MissingBlob })
				if p := rep.Errors[i]; p.Count != 150_000 || len(p.More) != 5 || !strings.HasPrefix(p.Actual, "md5:") {
					t.Fatalf("150,000 invalid digests: %+v", p)
				}
			}
			// A manifest.yaml past its limits or malformed is not a
			// readable bundle (exit 2); everything else was read (exit 1).
			unreadable := c.Want == "MalformedManifest" || (c.Want == "LimitExceeded" && strings.HasPrefix(c.Name, "yaml"))
			if rep.Unreadable() != unreadable {
				t.Errorf("Unreadable() = %v for %v", rep.Unreadable(), codes)
			}
		})
	}
}

// BenchmarkHostile reports, for each input of the memory suite at full
// size, the peak heap (sampled every millisecond) and the bytes allocated
// while validating it. bench/memory.sh measures the binary's peak RSS.
func BenchmarkHostile(b *testing.B) {
	for _, c := range craft.Hostile() {
		b.Run(c.Name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				runtime.GC()
				var before runtime.MemStats
				runtime.ReadMemStats(&before)
				var peak uint64
				done := make(chan struct{})
				go func() {
					var ms runtime.MemStats
					for {
						select {
						case <-done:
							return
						case <-time.After(time.Millisecond):
						}
						runtime.ReadMemStats(&ms)
						peak = max(peak, ms.HeapInuse)
					}
				}()
				rep, err := validateStream(c, bundle.WithCheckReferrers(true))
				close(done)
				var after runtime.MemStats
				runtime.ReadMemStats(&after)
				b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
				b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/(1<<20), "alloc-MiB")
				if c.Want != "" && !slices.Contains(problemCodes(rep), finding.Code(c.Want)) {
					b.Fatalf("want %s, got %v (%v)", c.Want, problemCodes(rep), err)
				}
			}
		})
	}
}
