package mirror

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/olareg/olareg"
	olaregconfig "github.com/olareg/olareg/config"

	"github.com/refdoctor/refdoctor/config"
	"github.com/refdoctor/refdoctor/internal/syncbuf"
	"github.com/refdoctor/refdoctor/registry"
)

// uploadTarget is an in-memory olareg that counts blob uploads (the PUT
// that carries a blob's bytes and digest) and how many are in flight at
// once. With gate > 1, an upload waits until gate uploads are in flight
// (or gateWait has passed, which only a failing test reaches), so that
// side-by-side uploads are seen by counting, not by timing.
type uploadTarget struct {
	host string

	mu       sync.Mutex
	cond     *sync.Cond
	gate     int
	inFlight int
	maxIn    int
	puts     map[string]int // digest -> uploads
}

const gateWait = 30 * time.Second

func startUploadTarget(t *testing.T, gate int) *uploadTarget {
	t.Helper()
	ola := olareg.New(olaregconfig.Config{Storage: olaregconfig.ConfigStorage{StoreType: olaregconfig.StoreMem}})
	u := &uploadTarget{gate: gate, puts: map[string]int{}}
	u.cond = sync.NewCond(&u.mu)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d := r.URL.Query().Get("digest")
		if r.Method != http.MethodPut || !strings.Contains(r.URL.Path, "/blobs/uploads/") || d == "" {
			ola.ServeHTTP(w, r)
			return
		}
		u.mu.Lock()
		u.inFlight++
		u.maxIn = max(u.maxIn, u.inFlight)
		u.puts[d]++
		u.cond.Broadcast()
		deadline := time.Now().Add(gateWait)
		for u.inFlight < u.gate && time.Now().Before(deadline) {
			timer := time.AfterFunc(time.Until(deadline), func() { u.mu.Lock(); u.cond.Broadcast(); u.mu.Unlock() })
			u.cond.Wait()
			timer.Stop()
		}
		u.gate = 0 // the first meeting is enough; later uploads run freely
		u.cond.Broadcast()
		u.mu.Unlock()
		ola.ServeHTTP(w, r)
		u.mu.Lock()
		u.inFlight--
		u.mu.Unlock()
	}))
	t.Cleanup(func() { srv.Close(); _ = ola.Close() })
	u.host = strings.TrimPrefix(srv.URL, "http://")
	return u
}

func (u *uploadTarget) counts() (maxIn int, puts map[string]int) {
	u.mu.Lock()
	defer u.mu.Unlock()
	out := map[string]int{}
	for k, v := range u.puts {
		out[k] = v
	}
	return u.maxIn, out
}

// exportBig writes a bundle of pushBigImage's image and returns its path
// and the blobs (not manifests) it holds.
func exportBig(t *testing.T) (string, []string) {
	t.Helper()
	s := startExportSource(t)
	blobs := pushBigImage(t, s, bigLayerSizes)
	file := filepath.Join(t.TempDir(), "big.tgz")
	if _, err := Export(context.Background(), s.env(), file, []string{s.host + "/bench/app:v1"}); err != nil {
		t.Fatal(err)
	}
	return file, blobs
}

func importEnv(hosts ...string) Env {
	cfg := config.Defaults()
	for _, h := range hosts {
		cfg.SetHost(config.Registry{Host: h, PlainHTTP: true})
	}
	return Env{Config: cfg, Client: []registry.Opt{registry.WithoutDockerCreds()}}
}

// TestImportUploadsBlobsSideBySide: with --concurrency above 1, blobs
// upload at the same time (the target sees two uploads in flight), every
// blob is uploaded exactly once, and the import reconciles; with 1, never
// more than one upload is in flight.
func TestImportUploadsBlobsSideBySide(t *testing.T) {
	t.Parallel()
	file, blobs := exportBig(t)
	for _, tc := range []struct {
		concurrency, gate, wantMax int
	}{{4, 2, 2}, {1, 0, 1}} {
		tg := startUploadTarget(t, tc.gate)
		res, err := Import(context.Background(), importEnv(tg.host), file, tg.host+"/mirror", ImportWithConcurrency(tc.concurrency))
		if err != nil || !res.OK {
			t.Fatalf("concurrency %d: import: %v, findings %+v", tc.concurrency, err, res.Findings)
		}
		maxIn, puts := tg.counts()
		if tc.wantMax > 1 && maxIn < tc.wantMax {
			t.Errorf("concurrency %d: at most %d upload(s) in flight, want %d side by side", tc.concurrency, maxIn, tc.wantMax)
		}
		if tc.wantMax == 1 && maxIn != 1 {
			t.Errorf("concurrency 1: %d uploads in flight at once", maxIn)
		}
		for _, d := range blobs {
			if puts[d] != 1 {
				t.Errorf("concurrency %d: blob %s uploaded %d times, want once", tc.concurrency, d, puts[d])
			}
		}
		for _, r := range res.Reconcile {
			if r.Found != r.Expected {
				t.Errorf("concurrency %d: reconcile %s: %d of %d", tc.concurrency, r.Subject, r.Found, r.Expected)
			}
		}
	}
}

// TestImportRefusesAnArchiveChangedAfterValidation: the blobs are read a
// second time to push them, from the file validation read; a bundle
// touched in between pushes no blob.
func TestImportRefusesAnArchiveChangedAfterValidation(t *testing.T) {
	t.Parallel()
	file, _ := exportBig(t)
	tg := startUploadTarget(t, 0)
	_, err := Import(context.Background(), importEnv(tg.host), file, tg.host, ImportWithEvents(func(e ImportEvent) {
		if e.Kind == "planned" {
			later := time.Now().Add(time.Hour)
			if err := os.Chtimes(file, later, later); err != nil {
				t.Error(err)
			}
		}
	}))
	if err == nil || !strings.Contains(err.Error(), "changed while it was imported") {
		t.Fatalf("import of a bundle changed after validation: %v", err)
	}
	if _, puts := tg.counts(); len(puts) != 0 {
		t.Errorf("blobs uploaded from a changed bundle: %v", puts)
	}
}

// TestReaderStartsSplitTheArchiveEvenly: the readers of the archive start
// at runs of about equal bytes, the first at the beginning, never two at
// the same blob, never more readers than blobs, and, when some blobs can
// be sought, only at those.
func TestReaderStartsSplitTheArchiveEvenly(t *testing.T) {
	t.Parallel()
	// A negative size is a blob a reader can seek to (blobJob.seek).
	jobs := func(sizes ...int64) []*blobJob {
		var out []*blobJob
		for i, n := range sizes {
			j := &blobJob{digest: fmt.Sprintf("b%d", i+1), size: n}
			if n < 0 {
				j.size, j.seek = -n, int64(i+1)
			}
			out = append(out, j)
		}
		return out
	}
	for _, tc := range []struct {
		name    string
		sizes   []int64
		readers int
		want    []string
	}{
		{"six equal layers, three readers", []int64{100, 100, 100, 100, 100, 100}, 3, []string{"", "b3", "b5"}},
		{"small config first", []int64{1, 100, 100, 100}, 3, []string{"", "b3", "b4"}},
		{"one large layer", []int64{1, 600, 1}, 3, []string{""}},
		{"two large layers", []int64{1, 300, 300, 1}, 3, []string{"", "b3"}},
		{"more readers than blobs", []int64{5, 5}, 4, []string{"", "b2"}},
		{"one reader", []int64{100, 100}, 1, []string{""}},
		{"small blobs that cannot be sought after the large ones", []int64{-100, -100, 1, -100, -100, 1, -100, -100}, 3, []string{"", "b4", "b7"}},
		{"the share reached at a blob that cannot be sought", []int64{-100, -100, 1, 1, -100, -100, -100, -100}, 3, []string{"", "b5", "b7"}},
		{"nothing left to seek to", []int64{-300, 1, 200, 100}, 3, []string{""}},
	} {
		if got := readerStarts(jobs(tc.sizes...), tc.readers); !slices.Equal(got, tc.want) {
			t.Errorf("%s: starts %q, want %q", tc.name, got, tc.want)
		}
	}
}

// TestImportReadersStartAtTheirBlobs: export gives every layer (already
// compressed) a gzip member of its own, validation records where each
// starts, and the push readers start decompressing there: side by side,
// the readers read the archive about once in all, not once per reader up
// to its start. A zstd bundle has no such offsets: its readers inflate up
// to their blobs, and every blob is still pushed exactly once.
func TestImportReadersStartAtTheirBlobs(t *testing.T) {
	t.Parallel()
	s := startExportSource(t)
	blobs := pushBigImage(t, s, bigLayerSizes)
	for _, name := range []string{"big.tgz", "big.tar.zst"} {
		file := filepath.Join(t.TempDir(), name)
		if _, err := Export(context.Background(), s.env(), file, []string{s.host + "/bench/app:v1"}); err != nil {
			t.Fatal(err)
		}
		tg := startUploadTarget(t, 0)
		var logs syncbuf.Buffer
		env := importEnv(tg.host)
		env.Log = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		res, err := Import(context.Background(), env, file, tg.host+"/mirror", ImportWithConcurrency(4))
		if err != nil || !res.OK {
			t.Fatalf("%s: import: %v, findings %+v", name, err, res.Findings)
		}
		_, puts := tg.counts()
		for _, d := range blobs {
			if puts[d] != 1 {
				t.Errorf("%s: blob %s uploaded %d times, want once", name, d, puts[d])
			}
		}
		var line struct {
			Size int64 `json:"archive_bytes"`
			Read int64 `json:"archive_read"`
		}
		for l := range strings.SplitSeq(logs.String(), "\n") {
			if strings.Contains(l, `"msg":"import pushed the blobs"`) {
				if err := json.Unmarshal([]byte(l), &line); err != nil {
					t.Fatal(err)
				}
			}
		}
		if line.Size == 0 || line.Read == 0 {
			t.Fatalf("%s: no archive_bytes and archive_read in the debug log:\n%s", name, logs.String())
		}
		// Each reader buffers up to 256 KiB past what it needs, at each
		// start: a few MiB over the archive, far below the 1.6 archives
		// three readers read when each inflates up to its start.
		if strings.HasSuffix(name, ".tgz") && float64(line.Read) > 1.15*float64(line.Size) {
			t.Errorf("%s: the readers read %d bytes of a %d-byte archive, want about one archive", name, line.Read, line.Size)
		}
		t.Logf("%s: the readers read %d bytes of a %d-byte archive", name, line.Read, line.Size)
	}
}
