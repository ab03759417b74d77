package lab

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/refdoctor/refdoctor/config"
	"github.com/refdoctor/refdoctor/registry"
)

// TestMain closes the shared lab after every test and then checks that
// nothing the lab started is still running.
func TestMain(m *testing.M) {
	code := m.Run()
	if shared.lab != nil {
		if err := shared.lab.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "close shared lab:", err)
			code = 1
		}
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goroutines left behind:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// testDelay keeps the slow registry slow enough to measure and fast
// enough for the suite.
const testDelay = 150 * time.Millisecond

// shared is one lab of every profile for the read-only tests; tests that
// spend budgets or count requests start their own.
var shared struct {
	once sync.Once
	lab  *Lab
	err  error
}

func sharedLab(t *testing.T) *Lab {
	t.Helper()
	shared.once.Do(func() {
		specs := DefaultSpecs()
		for i := range specs {
			switch specs[i].Profile {
			case ProfileSlow:
				specs[i].Delay = testDelay
			case ProfileRateLimit:
				// Read-only tests must never meet the 429; TestRateLimit
				// spends a budget of its own.
				specs[i].RateBudget = 100000
			}
		}
		shared.lab, shared.err = Start(context.Background(), WithSpecs(specs...))
	})
	if shared.err != nil {
		t.Fatalf("start shared lab: %v", shared.err)
	}
	return shared.lab
}

func mustGet(t *testing.T, l *Lab, name string) Registry {
	t.Helper()
	r, ok := l.Get(name)
	if !ok {
		t.Fatalf("lab has no registry %q", name)
	}
	return r
}

// httpClientFor is a plain net/http client that reaches r the way a
// careful operator would: trusting the lab CA for TLS registries, or
// skipping verification when insecure is set.
func httpClientFor(t *testing.T, r Registry, insecure bool) *http.Client {
	t.Helper()
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DisableKeepAlives = true
	if !r.PlainHTTP {
		tc := &tls.Config{MinVersion: tls.VersionTLS12}
		if insecure {
			tc.InsecureSkipVerify = true //#nosec G402 -- the test looks past the certificate fault on purpose
		} else {
			pool := x509.NewCertPool()
			pem, err := os.ReadFile(r.TLSCA)
			if err != nil {
				t.Fatalf("read lab CA: %v", err)
			}
			if !pool.AppendCertsFromPEM(pem) {
				t.Fatal("lab CA file holds no certificate")
			}
			tc.RootCAs = pool
		}
		tr.TLSClientConfig = tc
	}
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

func baseURL(r Registry) string {
	if r.PlainHTTP {
		return "http://" + r.Host
	}
	return "https://" + r.Host
}

type reply struct {
	status int
	header http.Header
	body   []byte
}

// get sends one GET (with the registry's login, if any: basic auth, or a
// token from the bearer-auth registry's token service) and reads the
// whole reply.
func get(t *testing.T, hc *http.Client, r Registry, path string, withLogin bool) reply {
	t.Helper()
	rep, err := tryGet(t.Context(), hc, r, path, withLogin)
	if err != nil {
		t.Fatalf("GET %s%s: %v", r.Host, path, err)
	}
	return rep
}

func tryGet(ctx context.Context, hc *http.Client, r Registry, path string, withLogin bool) (reply, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, baseURL(r)+path, nil)
	if err != nil {
		return reply{}, err
	}
	req.Header.Set("Accept", "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json")
	if withLogin && r.Login != nil {
		if usesBearer(r.Profile) {
			token, err := fetchToken(ctx, hc, r)
			if err != nil {
				return reply{}, err
			}
			req.Header.Set("Authorization", "Bearer "+token)
		} else {
			req.SetBasicAuth(r.Login.User, r.Login.Password)
		}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return reply{}, err
	}
	return reply{status: resp.StatusCode, header: resp.Header, body: body}, nil
}

// usesBearer reports whether a profile's login goes through the lab's
// bearer-token service (else it is HTTP basic auth).
func usesBearer(p Profile) bool { return p == ProfileBearer || p == ProfileRedirectCDN }

// fetchToken asks the bearer-auth registry's token service for a token
// with the lab login.
func fetchToken(ctx context.Context, hc *http.Client, r Registry) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, baseURL(r)+"/token?service=refdoctor-lab", nil)
	if err != nil {
		return "", err
	}
	req.SetBasicAuth(r.Login.User, r.Login.Password)
	resp, err := hc.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var tok struct {
		Token string `json:"token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || resp.StatusCode != http.StatusOK || tok.Token == "" {
		return "", fmt.Errorf("token: status %d, %v", resp.StatusCode, err)
	}
	return tok.Token, nil
}

// index is the part of an OCI index the tests look at.
type index struct {
	MediaType string `json:"mediaType"`
	Manifests []struct {
		MediaType    string            `json:"mediaType"`
		Digest       string            `json:"digest"`
		Size         int64             `json:"size"`
		ArtifactType string            `json:"artifactType"`
		Annotations  map[string]string `json:"annotations"`
	} `json:"manifests"`
}

func parseIndex(t *testing.T, b []byte) index {
	t.Helper()
	var i index
	if err := json.Unmarshal(b, &i); err != nil {
		t.Fatalf("reply is not an index: %v: %.200s", err, b)
	}
	return i
}

// checkReferrers asserts that got lists exactly want, with artifact types
// and sizes, in any order.
func checkReferrers(t *testing.T, got index, want []SeededReferrer) {
	t.Helper()
	if len(got.Manifests) != len(want) {
		t.Fatalf("index lists %d referrers, want %d: %+v", len(got.Manifests), len(want), got.Manifests)
	}
	byDigest := map[string]SeededReferrer{}
	for _, w := range want {
		byDigest[w.Digest] = w
	}
	for _, m := range got.Manifests {
		w, ok := byDigest[m.Digest]
		if !ok {
			t.Errorf("unexpected referrer %s (%s)", m.Digest, m.ArtifactType)
			continue
		}
		if m.ArtifactType != w.ArtifactType || m.Size != w.Size || m.MediaType != w.MediaType {
			t.Errorf("referrer %s: got %s/%d/%s, want %s/%d/%s", m.Digest, m.ArtifactType, m.Size, m.MediaType, w.ArtifactType, w.Size, w.MediaType)
		}
		if m.Annotations[annotationCreated] == "" {
			t.Errorf("referrer %s has no %s annotation in the index", m.Digest, annotationCreated)
		}
	}
}

// clientFor builds refdoctor's own regclient client for the lab, with the
// basic-auth login and, when insecure, TLS verification off for the TLS
// registries whose certificates are broken on purpose.
func clientFor(t *testing.T, l *Lab, insecure bool, opts ...registry.Opt) *registry.Client {
	t.Helper()
	cfg := l.Config()
	if insecure {
		var regs []config.Registry
		for _, r := range cfg.Registries {
			if !r.PlainHTTP {
				r.CAFile, r.InsecureSkipVerify = "", true
			}
			regs = append(regs, r)
		}
		cfg.Registries = regs
	}
	// Its own recorder keeps every exchange, so tests can read them back.
	opts = append([]registry.Opt{registry.WithoutDockerCreds(), registry.WithRetryLimit(1), registry.WithTimeout(5 * time.Second),
		registry.WithRecorder(registry.NewTimedRecorder(5 * time.Second))}, opts...)
	for _, r := range l.Registries {
		if r.Login != nil {
			opts = append(opts, registry.WithLogin(r.Host, r.Login.User, r.Login.Password))
		}
	}
	c, err := registry.New(cfg, opts...)
	if err != nil {
		t.Fatalf("registry client: %v", err)
	}
	return c
}
