package bundle_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/refdoctor/refdoctor/bench/benchgen"
	"github.com/refdoctor/refdoctor/bundle"
)

func randomBundle(tb testing.TB, comp bundle.Compression, mib int64) []byte {
	tb.Helper()
	var buf bytes.Buffer
	if _, err := benchgen.Write(&buf, benchgen.Config{Layers: 8, LayerSize: mib << 20 / 8, Compression: comp, Seed: 7}); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// validatePiped streams data to Validate through a pipe, as from a network
// or `cat`, and measures allocation and the peak of the live heap.
func validatePiped(tb testing.TB, data []byte) (rep bundle.Report, allocated, peakHeap uint64) {
	tb.Helper()
	pr, pw := io.Pipe()
	go func() {
		_, err := bytes.NewReader(data).WriteTo(pw)
		pw.CloseWithError(err)
	}()
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	var peak atomic.Uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	})
	rep, err := bundle.Validate(context.Background(), pr)
	close(stop)
	wg.Wait()
	pr.Close()
	if err != nil || !rep.OK {
		tb.Fatalf("err %v, report %s", err, dump(rep))
	}
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	p := peak.Load()
	if p < before.HeapInuse {
		p = before.HeapInuse
	}
	return rep, after.TotalAlloc - before.TotalAlloc, p - before.HeapInuse
}

// TestValidateConstantMemory: validating a 32 MiB bundle allocates far
// less than the bundle, so nothing is buffered whole. Not parallel: the
// allocation counters are process-wide. The strict numbers are in
// BenchmarkValidateMemory.
func TestValidateConstantMemory(t *testing.T) {
	data := randomBundle(t, bundle.CompressionGzip, 32)
	rep, allocated, peak := validatePiped(t, data)
	t.Logf("%d bytes checked: %.1f MiB allocated, heap peak +%.1f MiB", rep.BytesChecked, mib(allocated), mib(peak))
	if allocated > 16<<20 {
		t.Errorf("allocated %.1f MiB to validate a 32 MiB bundle", mib(allocated))
	}
}

func mib(n uint64) float64 { return float64(n) / (1 << 20) }

var (
	benchOnce sync.Once
	benchData map[bundle.Compression][]byte
)

func benchBundles(b *testing.B) map[bundle.Compression][]byte {
	benchOnce.Do(func() {
		benchData = map[bundle.Compression][]byte{
			bundle.CompressionGzip: randomBundle(b, bundle.CompressionGzip, 256),
			bundle.CompressionZstd: randomBundle(b, bundle.CompressionZstd, 256),
		}
	})
	return benchData
}

// BenchmarkValidate measures throughput on 256 MiB of incompressible
// layers; MB/s is per uncompressed byte. bench/validate.sh compares the
// 1 GiB case with tar | sha256sum.
func BenchmarkValidate(b *testing.B) {
	for _, comp := range []bundle.Compression{bundle.CompressionGzip, bundle.CompressionZstd} {
		b.Run(string(comp), func(b *testing.B) {
			data := benchBundles(b)[comp]
			var checked int64
			for b.Loop() {
				rep, err := bundle.Validate(context.Background(), bytes.NewReader(data), bundle.WithCheckReferrers(true))
				if err != nil || !rep.OK {
					b.Fatalf("err %v, report %s", err, dump(rep))
				}
				checked = rep.BytesChecked
			}
			b.SetBytes(checked)
		})
	}
}

// BenchmarkValidateMemory streams a 200 MiB bundle through a pipe and
// fails if validation allocates more than 16 MiB in total or grows the
// live heap by more than 24 MiB: memory must not depend on bundle size.
func BenchmarkValidateMemory(b *testing.B) {
	data := randomBundle(b, bundle.CompressionGzip, 200)
	b.ResetTimer()
	var allocated, peak uint64
	for b.Loop() {
		_, a, p := validatePiped(b, data)
		allocated, peak = max(allocated, a), max(peak, p)
	}
	b.ReportMetric(mib(allocated), "alloc-MiB/op")
	b.ReportMetric(mib(peak), "peak-heap-MiB")
	if allocated > 16<<20 || peak > 24<<20 {
		b.Fatalf("allocated %.1f MiB, heap peak +%.1f MiB for a 200 MiB bundle", mib(allocated), mib(peak))
	}
}

// BenchmarkValidateFileSecondReader validates a 256 MiB bundle of stored
// layers (each in a gzip member of its own, as export writes them) from
// a file, in one pass and with the second reader hashing every other
// layer (offload.go), back to back in each iteration, and reports the
// ratio of their times ("second/one"; below 1 is faster). On one CPU
// there is no second reader, and the ratio is about 1.
func BenchmarkValidateFileSecondReader(b *testing.B) {
	file := filepath.Join(b.TempDir(), "stored.tgz")
	f, err := os.Create(file)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := benchgen.Write(f, benchgen.Config{Layers: 8, LayerSize: 32 << 20, Stored: true, Seed: 7}); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	run := func(opts ...bundle.Opt) (time.Duration, int64) {
		start := time.Now()
		rep, err := bundle.ValidateFile(context.Background(), file, append([]bundle.Opt{bundle.WithCheckReferrers(true)}, opts...)...)
		if err != nil || !rep.OK {
			b.Fatalf("err %v, report %s", err, dump(rep))
		}
		return time.Since(start), rep.BytesChecked
	}
	var one, two time.Duration
	var checked int64
	for b.Loop() {
		d1, _ := run(bundle.WithSecondReader(nil))
		d2, n := run()
		one, two, checked = one+d1, two+d2, n
	}
	b.SetBytes(2 * checked)
	b.ReportMetric(float64(two)/float64(one), "second/one")
}
