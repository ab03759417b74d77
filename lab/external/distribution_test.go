//go:build linux

package external

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// requireDistribution skips when docker-registry is not installed, except
// in CI, where a missing binary is a broken .ci/run and must fail.
func requireDistribution(t *testing.T) {
	t.Helper()
	if _, err := DistributionBinary(); err != nil {
		if !errors.Is(err, ErrDistributionMissing) {
			t.Fatalf("look for docker-registry: %v", err)
		}
		if os.Getenv("CI") != "" {
			t.Fatalf("CI is set and %v (.ci/run should have installed it)", err)
		}
		t.Skipf("skipping: %v", err)
	}
}

// distributionGet sends one request without keep-alive, so the test leaves
// no idle connection (and no goroutine) behind for TestMain's leak check.
func distributionGet(t *testing.T, method, url string, body []byte) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, url, err)
	}
	return resp, b
}

func TestDistribution(t *testing.T) {
	t.Parallel()
	requireDistribution(t)

	dir := t.TempDir()
	d, err := StartDistribution(t.Context(), dir)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() { _ = d.Close() })
	defer func() {
		if t.Failed() {
			t.Logf("docker-registry output:\n%s", d.RecentOutput())
		}
	}()

	host, port, err := net.SplitHostPort(d.Host)
	if err != nil || host != "127.0.0.1" || port == "0" {
		t.Fatalf("Host = %q, want 127.0.0.1:PORT", d.Host)
	}
	if d.Dir != dir || d.ConfigPath != filepath.Join(dir, "config.yml") {
		t.Errorf("Dir, ConfigPath = %q, %q; want %q and its config.yml", d.Dir, d.ConfigPath, dir)
	}
	if pgid, err := syscall.Getpgid(d.PID); err != nil || pgid != d.PID {
		t.Errorf("process group of %d = %d (%v), want its own", d.PID, pgid, err)
	}

	t.Run("v2 ping", func(t *testing.T) {
		resp, body := distributionGet(t, http.MethodGet, d.URL()+"/v2/", nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /v2/ = %d %q, want 200", resp.StatusCode, body)
		}
		if got := resp.Header.Get("Docker-Distribution-API-Version"); got != "registry/2.0" {
			t.Errorf("Docker-Distribution-API-Version = %q, want registry/2.0", got)
		}
	})

	t.Run("no referrers API", func(t *testing.T) {
		// distribution v2.8 has no route for /referrers: the mux's own
		// plain-text 404, not a registry JSON error. This is the reply that
		// must classify as "unsupported, use the tag fallback".
		resp, body := distributionGet(t, http.MethodGet, d.URL()+"/v2/x/referrers/sha256:"+strings.Repeat("0", 64), nil)
		if resp.StatusCode != http.StatusNotFound {
			t.Fatalf("GET referrers = %d %q, want 404", resp.StatusCode, body)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "text/plain; charset=utf-8" {
			t.Errorf("Content-Type = %q, want text/plain; charset=utf-8", ct)
		}
		if string(body) != "404 page not found\n" {
			t.Errorf("body = %q, want %q", body, "404 page not found\n")
		}
	})

	t.Run("filesystem storage in Dir", func(t *testing.T) {
		blob := []byte("refdoctor distribution storage check\n")
		sum := sha256.Sum256(blob)
		hexSum := hex.EncodeToString(sum[:])
		// distribution v2.8 ignores ?digest= on the POST (202, a session),
		// so finish with the PUT, as clients do.
		resp, body := distributionGet(t, http.MethodPost, d.URL()+"/v2/lab/check/blobs/uploads/", nil)
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("start upload = %d %q, want 202", resp.StatusCode, body)
		}
		loc, err := resp.Location()
		if err != nil {
			t.Fatalf("upload Location: %v", err)
		}
		q := loc.Query()
		q.Set("digest", "sha256:"+hexSum)
		loc.RawQuery = q.Encode()
		resp, body = distributionGet(t, http.MethodPut, loc.String(), blob)
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("finish upload = %d %q, want 201", resp.StatusCode, body)
		}
		stored := filepath.Join(dir, "data", "docker", "registry", "v2", "blobs", "sha256", hexSum[:2], hexSum, "data")
		got, err := os.ReadFile(stored)
		if err != nil {
			t.Fatalf("blob not stored under Dir/data: %v", err)
		}
		if !bytes.Equal(got, blob) {
			t.Errorf("stored blob = %q, want %q", got, blob)
		}
		resp, _ = distributionGet(t, http.MethodDelete, d.URL()+"/v2/lab/check/blobs/sha256:"+hexSum, nil)
		if resp.StatusCode != http.StatusAccepted {
			t.Errorf("DELETE blob = %d, want 202 (storage delete enabled)", resp.StatusCode)
		}
	})

	if t.Failed() {
		return
	}
	start := time.Now()
	if err := d.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	t.Logf("Close took %s", time.Since(start).Round(time.Millisecond))
	if err := d.Close(); err != nil {
		t.Errorf("second close: %v", err)
	}
	if err := syscall.Kill(d.PID, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("process %d after Close: kill(0) = %v, want ESRCH", d.PID, err)
	}
	if c, err := net.DialTimeout("tcp", d.Host, time.Second); err == nil {
		c.Close()
		t.Errorf("%s still answers after Close", d.Host)
	}
}

func TestDistributionTempDir(t *testing.T) {
	t.Parallel()
	requireDistribution(t)

	d, err := StartDistribution(t.Context(), "")
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	if _, err := os.Stat(d.ConfigPath); err != nil {
		t.Fatalf("config: %v", err)
	}
	if err := d.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if _, err := os.Stat(d.Dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temp dir %s left after Close: %v", d.Dir, err)
	}
}

func TestDistributionStartHonoursContext(t *testing.T) {
	t.Parallel()
	requireDistribution(t)

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	d, err := StartDistribution(ctx, t.TempDir())
	if err == nil {
		// The server can win the race against an already-cancelled
		// context only if it printed its line first; either way nothing
		// may be left running.
		_ = d.Close()
		t.Skip("server was up before the cancelled context was seen")
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}

func TestDistributionConfigEnvIgnored(t *testing.T) {
	// Not parallel: it sets an environment variable for the whole process.
	requireDistribution(t)
	t.Setenv("REGISTRY_HTTP_ADDR", "127.0.0.1:1")

	d, err := StartDistribution(t.Context(), t.TempDir())
	if err != nil {
		t.Fatalf("start with a stray REGISTRY_HTTP_ADDR: %v", err)
	}
	defer d.Close()
	if strings.HasSuffix(d.Host, ":1") {
		t.Errorf("Host = %s: REGISTRY_HTTP_ADDR leaked into the server", d.Host)
	}
}
