package mirror

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/olareg/olareg"
	olaregconfig "github.com/olareg/olareg/config"
	"github.com/opencontainers/go-digest"
	"github.com/regclient/regclient/types/descriptor"
	"github.com/regclient/regclient/types/manifest"
	"github.com/regclient/regclient/types/mediatype"
	v1 "github.com/regclient/regclient/types/oci/v1"
	"github.com/regclient/regclient/types/ref"

	"github.com/refdoctor/refdoctor/bundle"
	"github.com/refdoctor/refdoctor/config"
	"github.com/refdoctor/refdoctor/registry"
)

// exportSource is an in-memory olareg behind a layer that can damage the
// bytes of one blob as it is served: a registry (or a proxy in front of
// one) returning content that does not match its digest.
type exportSource struct {
	host string
	cfg  config.Config

	mu       sync.Mutex
	damage   string // digest whose GET is damaged
	truncate bool   // end the body half way instead of flipping a byte
	stall    string // digest whose GET sends half its body, then waits for the client to go
}

func startExportSource(t *testing.T) *exportSource {
	t.Helper()
	ola := olareg.New(olaregconfig.Config{Storage: olaregconfig.ConfigStorage{StoreType: olaregconfig.StoreMem}})
	s := &exportSource{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		damage, truncate, stall := s.damage, s.truncate, s.stall
		s.mu.Unlock()

		if stall != "" && r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/blobs/"+stall) {
			body := serveHeaders(ola, w, r)
			_, _ = w.Write(body[:len(body)/2])
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
			case <-time.After(gateWait):
			}
			return
		}
		if damage == "" || r.Method != http.MethodGet || !strings.HasSuffix(r.URL.Path, "/blobs/"+damage) {
			ola.ServeHTTP(w, r)
			return
		}
		body := serveHeaders(ola, w, r)
		if truncate {
			// The connection ends after half of the announced body.
			_, _ = w.Write(body[:len(body)/2])
			return
		}
		if len(body) > 0 {
			body[len(body)/2] ^= 0x01
		}
		_, _ = w.Write(body)
	}))
	t.Cleanup(func() { srv.Close(); _ = ola.Close() })
	s.host = strings.TrimPrefix(srv.URL, "http://")
	s.cfg = config.Defaults()
	s.cfg.SetHost(config.Registry{Host: s.host, PlainHTTP: true})
	return s
}

// serveHeaders has olareg answer r and sends its status and headers, the
// whole body's length announced; the caller sends the body, or part of it.
func serveHeaders(ola http.Handler, w http.ResponseWriter, r *http.Request) []byte {
	rec := httptest.NewRecorder()
	ola.ServeHTTP(rec, r)
	body := rec.Body.Bytes()
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.Header().Set("Content-Length", fmt.Sprint(len(body)))
	w.WriteHeader(rec.Code)
	return body
}

func (s *exportSource) setStall(d string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stall = d
}

func (s *exportSource) setDamage(d string, truncate bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.damage, s.truncate = d, truncate
}

func (s *exportSource) env() Env {
	return Env{Config: s.cfg, Client: []registry.Opt{registry.WithoutDockerCreds()}}
}

// pushBigImage pushes HOST/bench/app:v1 with incompressible layers of the
// given sizes and an SBOM and a signature referrer, and returns the
// digests of every blob that is not a manifest, in the order export
// writes them (by digest).
func pushBigImage(t *testing.T, s *exportSource, sizes []int) []string {
	t.Helper()
	ctx := context.Background()
	c, err := registry.New(s.cfg, registry.WithoutDockerCreds())
	if err != nil {
		t.Fatal(err)
	}
	r, err := ref.New(s.host + "/bench/app")
	if err != nil {
		t.Fatal(err)
	}
	var blobs []string
	put := func(mt string, data []byte) descriptor.Descriptor {
		d := descriptor.Descriptor{MediaType: mt, Digest: digest.FromBytes(data), Size: int64(len(data))}
		if _, err := c.BlobPut(ctx, r, d, bytes.NewReader(data)); err != nil {
			t.Fatalf("push blob: %v", err)
		}
		if !slices.Contains(blobs, d.Digest.String()) {
			blobs = append(blobs, d.Digest.String())
		}
		return d
	}
	putManifest := func(tag string, orig any) descriptor.Descriptor {
		m, err := manifest.New(manifest.WithOrig(orig))
		if err != nil {
			t.Fatal(err)
		}
		d := m.GetDescriptor()
		target := r.SetDigest(d.Digest.String())
		if tag != "" {
			target = r.SetTag(tag)
		}
		if err := c.ManifestPut(ctx, target, m); err != nil {
			t.Fatalf("push manifest: %v", err)
		}
		return descriptor.Descriptor{MediaType: d.MediaType, Digest: d.Digest, Size: d.Size}
	}
	var layers []descriptor.Descriptor
	for i, n := range sizes {
		var key [32]byte
		binary.LittleEndian.PutUint64(key[:], uint64(i+1))
		data := make([]byte, n)
		_, _ = rand.NewChaCha8(key).Read(data)
		layers = append(layers, put(mediatype.OCI1LayerGzip, data))
	}
	cfg := put(mediatype.OCI1ImageConfig, []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers"}}`))
	img := putManifest("v1", v1.Manifest{Versioned: v1.ManifestSchemaVersion, MediaType: mediatype.OCI1Manifest, Config: cfg, Layers: layers})
	put(mediatype.OCI1Empty, descriptor.EmptyData)
	for _, at := range []string{"application/vnd.cyclonedx+json", "application/vnd.cncf.notary.signature"} {
		l := put(at, fmt.Appendf(nil, `{"artifactType":%q}`, at))
		putManifest("", v1.Manifest{Versioned: v1.ManifestSchemaVersion, MediaType: mediatype.OCI1Manifest, ArtifactType: at,
			Config: descriptor.Descriptor{MediaType: mediatype.OCI1Empty, Digest: descriptor.EmptyDigest, Size: int64(len(descriptor.EmptyData))},
			Layers: []descriptor.Descriptor{l}, Subject: &img})
	}
	slices.Sort(blobs)
	return blobs
}

// Layer sizes that cross chunk boundaries, with an empty and a one-byte
// layer among them.
var bigLayerSizes = []int{3<<20 + 5, 0, 5 << 20, 1, 2<<20 - 1, exportChunk, 2*exportChunk + 3}

// TestExportBytesDoNotDependOnReadAhead: the bundle is byte-identical
// whether blobs download one at a time, all ahead into memory, with a
// budget so small that large blobs wait for the writer, or with those
// spilled to disk; its sidecar is the sha256 of the file as sha256sum
// computes it; and memory stays within the budget plus the window of the
// blob being written.
func TestExportBytesDoNotDependOnReadAhead(t *testing.T) {
	t.Parallel()
	s := startExportSource(t)
	pushBigImage(t, s, bigLayerSizes)
	dir := t.TempDir()
	created := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	tiny := readAheadLimits{budget: exportChunk, window: exportChunk}
	cases := []struct {
		name        string
		concurrency int
		limits      readAheadLimits
		check       func(t *testing.T, st readAheadStats)
	}{
		{"one at a time", 1, defaultReadAheadLimits(), func(t *testing.T, st readAheadStats) {
			if st.spilled != 0 || st.waited != 0 {
				t.Errorf("one download at a time waited or spilled: %+v", st)
			}
		}},
		{"ahead in memory", 8, defaultReadAheadLimits(), func(t *testing.T, st readAheadStats) {
			if st.spilled != 0 || st.waited != 0 || st.overBudget != 0 {
				t.Errorf("the layers fit in the %d MiB budget, yet a download waited, spilled or went over: %+v", aheadBudget>>20, st)
			}
		}},
		{"large blobs wait for the writer", 8, tiny, func(t *testing.T, st readAheadStats) {
			if st.waited == 0 || st.spilled != 0 || st.overBudget == 0 {
				t.Errorf("with a one-chunk budget no large blob waited, or one spilled: %+v", st)
			}
		}},
		{"large blobs spilled", 8, readAheadLimits{budget: exportChunk, window: exportChunk, spillLarge: true}, func(t *testing.T, st readAheadStats) {
			if st.spilled == 0 || st.waited != 0 {
				t.Errorf("with a one-chunk budget and spilling on, nothing spilled or a blob waited: %+v", st)
			}
		}},
	}
	var want []byte
	for i, tc := range cases {
		for run := range 2 {
			out := filepath.Join(dir, fmt.Sprintf("b%d-%d.tgz", i, run))
			var st readAheadStats
			res, err := Export(context.Background(), s.env(), out, []string{s.host + "/bench/app:v1"},
				ExportWithCreatedAt(created), ExportWithToolVersion("test"), ExportWithConcurrency(tc.concurrency),
				func(o *exportOptions) { o.readAhead = tc.limits; o.stats = &st })
			if err != nil {
				t.Fatalf("%s: export: %v", tc.name, err)
			}
			got, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			if want == nil {
				want = got
				rep, err := bundle.ValidateFile(context.Background(), out, bundle.WithCheckReferrers(true))
				if err != nil || !rep.OK || rep.ReferrersChecked != 2 {
					t.Fatalf("the bundle does not validate: %v %+v", err, rep.Errors)
				}
			} else if !bytes.Equal(got, want) {
				t.Errorf("%s, run %d: the bundle differs from the first one (%d vs %d bytes)", tc.name, run+1, len(got), len(want))
			}
			sum := sha256.Sum256(got)
			if res.Checksum != hex.EncodeToString(sum[:]) {
				t.Errorf("%s: reported checksum %s, the file hashes to %x", tc.name, res.Checksum, sum)
			}
			cmd := exec.Command("sha256sum", "-c", filepath.Base(out)+".sha256")
			cmd.Dir = dir
			if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "OK") {
				t.Errorf("%s: sha256sum -c: %v %s", tc.name, err, out)
			}
			tc.check(t, st)
			if lim := tc.limits; st.maxInMemory > lim.budget+lim.window {
				t.Errorf("%s: held %d bytes of blobs in memory, over the budget %d plus the window %d", tc.name, st.maxInMemory, lim.budget, lim.window)
			}
		}
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".*")); len(left) > 0 {
		t.Errorf("temporary or spill files left behind: %v", left)
	}
}

// TestExportNamesTheBlobThatFailed: while the writer waits for a blob
// whose download stalls, a blob downloaded ahead turns out damaged; the
// export stops and says which blob was damaged and why, not that the
// stalled download was canceled because of it.
func TestExportNamesTheBlobThatFailed(t *testing.T) {
	t.Parallel()
	s := startExportSource(t)
	blobs := slices.DeleteFunc(pushBigImage(t, s, bigLayerSizes), func(d string) bool { return d == digest.FromBytes(nil).String() })
	first, last := blobs[0], blobs[len(blobs)-1]
	s.setStall(first)
	s.setDamage(last, false)
	out := filepath.Join(t.TempDir(), "app.tgz")
	// Every blob within reach of the read-ahead.
	_, err := Export(context.Background(), s.env(), out, []string{s.host + "/bench/app:v1"}, ExportWithConcurrency(64))
	if err == nil {
		t.Fatal("export of a damaged blob succeeded")
	}
	if !strings.Contains(err.Error(), last) || !strings.Contains(err.Error(), "digest mismatch") || strings.Contains(err.Error(), "canceled") {
		t.Errorf("error %q does not name the damaged blob %s and the digest mismatch (or blames the cancellation)", err, last)
	}
}

// TestExportRefusesDamagedBlob: a blob whose bytes do not match its
// digest, or whose body ends early, stops the export, whether it is the
// blob being written or one downloaded ahead (into memory, or with a
// budget so small that downloads ahead spill to disk); nothing is left
// behind.
func TestExportRefusesDamagedBlob(t *testing.T) {
	t.Parallel()
	s := startExportSource(t)
	// The empty layer cannot be damaged: skip it.
	blobs := slices.DeleteFunc(pushBigImage(t, s, bigLayerSizes), func(d string) bool { return d == digest.FromBytes(nil).String() })
	first, last := blobs[0], blobs[len(blobs)-1]
	spill := readAheadLimits{budget: exportChunk, window: exportChunk, spillLarge: true}
	for _, tc := range []struct {
		name        string
		blob        string
		truncate    bool
		concurrency int
		limits      readAheadLimits
		want        string
	}{
		{"flipped byte, one at a time", first, false, 1, defaultReadAheadLimits(), "digest mismatch"},
		{"flipped byte, being written", first, false, 8, defaultReadAheadLimits(), "digest mismatch"},
		{"flipped byte, ahead in memory", last, false, 8, defaultReadAheadLimits(), "digest mismatch"},
		{"flipped byte, ahead with spilling", last, false, 8, spill, "digest mismatch"},
		{"cut short, being written", first, true, 8, defaultReadAheadLimits(), "unexpected EOF"},
		{"cut short, ahead with spilling", last, true, 8, spill, "unexpected EOF"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s.setDamage(tc.blob, tc.truncate)
			defer s.setDamage("", false)
			dir := t.TempDir()
			out := filepath.Join(dir, "app.tgz")
			_, err := Export(context.Background(), s.env(), out, []string{s.host + "/bench/app:v1"}, ExportWithConcurrency(tc.concurrency),
				func(o *exportOptions) { o.readAhead = tc.limits })
			if err == nil {
				t.Fatal("export of a damaged blob succeeded")
			}
			t.Logf("export: %v", err)
			if !strings.Contains(err.Error(), tc.blob) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "refusing to write a corrupt bundle") {
				t.Errorf("error %q does not name the blob %s, %q and the refusal", err, tc.blob, tc.want)
			}
			entries, _ := os.ReadDir(dir)
			if len(entries) != 0 {
				var names []string
				for _, e := range entries {
					names = append(names, e.Name())
				}
				t.Errorf("files left behind: %v", names)
			}
		})
	}
}

// TestHashSinkMatchesSha256sum: the sidecar hash is computed as the file
// is written, across buffer boundaries and odd write sizes.
func TestHashSinkMatchesSha256sum(t *testing.T) {
	t.Parallel()
	f, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := newHashSink(f)
	var key [32]byte
	src := rand.NewChaCha8(key)
	for _, n := range []int{1, exportChunk - 1, 2, 3 * exportChunk, 0, 12345, sinkBuffers*exportChunk + 7} {
		buf := make([]byte, n)
		_, _ = src.Read(buf)
		if _, err := s.Write(buf); err != nil {
			t.Fatal(err)
		}
	}
	sum, err := s.Close()
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("sha256sum", f.Name()).Output()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Fields(string(out))[0]; got != sum {
		t.Fatalf("sink says %s, sha256sum says %s", sum, got)
	}
	if _, err := io.Copy(io.Discard, f); err != nil {
		t.Fatal(err)
	}
}
