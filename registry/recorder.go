package registry

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Exchange is one HTTP request and its reply as refdoctor saw it on the
// wire. It never holds credentials: Authorization, cookies and token
// replies are not recorded, and query values that look like secrets are
// masked.
type Exchange struct {
	Method      string            `json:"method"`
	URL         string            `json:"url"`
	Path        string            `json:"path"`
	Status      int               `json:"status"`
	ContentType string            `json:"content_type,omitempty"`
	Headers     map[string]string `json:"headers,omitempty"`
	DurationMS  int64             `json:"duration_ms"`
	Error       string            `json:"error,omitempty"`
	// RequestHeaders are the request headers worth showing; of an
	// Authorization header only its scheme is kept.
	RequestHeaders map[string]string `json:"request_headers,omitempty"`
	// Body is the start of the reply body, kept only for the paths a
	// Recorder was told to capture (referrers and tag replies), never for
	// token endpoints.
	Body []byte `json:"-"`
	// Truncated is true when Body holds less than the whole reply.
	Truncated bool `json:"-"`
	// Err is the transport error, kept for classification (TLS, DNS).
	Err error `json:"-"`
	// Start is when the request was sent.
	Start time.Time `json:"-"`
}

// recordedHeaders are the reply headers worth keeping: none carries a secret.
var recordedHeaders = []string{
	"Content-Type", "Content-Length", "Docker-Distribution-API-Version",
	"OCI-Distribution-API-Version", "Docker-Content-Digest", "WWW-Authenticate",
	"OCI-Filters-Applied", "OCI-Subject", "Link", "Location", "Retry-After",
	"RateLimit-Limit", "RateLimit-Remaining", "Docker-RateLimit-Source",
	"X-RateLimit-Limit", "X-RateLimit-Remaining", "Server",
}

// secretQueryKeys are query parameters masked in recorded URLs.
var secretQueryKeys = []string{"token", "access_token", "password", "secret", "signature", "x-amz-signature", "x-amz-credential", "x-amz-security-token", "sig", "code"}

// maxCapture bounds the captured body of one reply.
const maxCapture = 4 << 20

// Recorder is an http.RoundTripper that records every exchange. It
// delegates to a per-host transport so that TLS settings still apply.
type Recorder struct {
	mu        sync.Mutex
	exchanges []Exchange
	hosts     map[string]http.RoundTripper
	fallback  http.RoundTripper
	capture   func(*http.Request) bool
	onRecord  func(Exchange)
	// forget drops exchanges once watchers have seen them: a long-lived
	// client (an export of thousands of images) must not keep every reply.
	forget bool
}

// NewRecorder returns a recorder over base (http.DefaultTransport if nil).
func NewRecorder(base http.RoundTripper) *Recorder {
	if base == nil {
		base = http.DefaultTransport
	}
	return &Recorder{fallback: base, hosts: map[string]http.RoundTripper{}, capture: defaultCapture}
}

// defaultCapture keeps bodies of /referrers/, /tags/list and error replies
// of registry API paths; token endpoints never match.
func defaultCapture(req *http.Request) bool {
	p := req.URL.Path
	if !strings.HasPrefix(p, "/v2/") {
		return false
	}
	return strings.Contains(p, "/referrers/") || strings.HasSuffix(p, "/tags/list") || p == "/v2/" || p == "/v2"
}

// SetHostTransport routes requests for host (host[:port]) to rt.
func (r *Recorder) SetHostTransport(host string, rt http.RoundTripper) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.hosts[host] = rt
}

// OnRecord calls fn for each exchange as it completes (for live logs).
func (r *Recorder) OnRecord(fn func(Exchange)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.onRecord = fn
}

// Exchanges returns a copy of everything recorded so far.
func (r *Recorder) Exchanges() []Exchange {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Exchange(nil), r.exchanges...)
}

// Len is the number of exchanges recorded so far.
func (r *Recorder) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.exchanges)
}

// RoundTrip implements http.RoundTripper.
func (r *Recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	rt, ok := r.hosts[req.URL.Host]
	if !ok {
		rt = r.fallback
	}
	capture := r.capture(req)
	r.mu.Unlock()

	ex := Exchange{Method: req.Method, URL: RedactURL(req.URL), Path: req.URL.Path, Start: time.Now(), RequestHeaders: requestHeaders(req)}
	resp, err := rt.RoundTrip(req)
	ex.DurationMS = time.Since(ex.Start).Milliseconds()
	if err != nil {
		ex.Err = err
		ex.Error = err.Error()
		r.add(ex)
		notifyWatchers(req.Context(), ex)
		return resp, err
	}
	ex.Status = resp.StatusCode
	ex.ContentType = resp.Header.Get("Content-Type")
	for _, h := range recordedHeaders {
		if v := resp.Header.Get(h); v != "" {
			if ex.Headers == nil {
				ex.Headers = map[string]string{}
			}
			ex.Headers[h] = v
		}
	}
	if capture && req.Method == http.MethodGet && resp.Body != nil {
		// Read the reply now so that classification sees it even when the
		// client closes an error reply unread; hand the client a copy.
		body, rerr := io.ReadAll(io.LimitReader(resp.Body, maxCapture+1))
		if len(body) > maxCapture {
			ex.Truncated = true
			ex.Body = body[:maxCapture]
			resp.Body = readCloser{io.MultiReader(bytes.NewReader(body), resp.Body), resp.Body}
		} else {
			ex.Body = body
			_ = resp.Body.Close()
			resp.Body = io.NopCloser(bytes.NewReader(body))
			if rerr != nil {
				resp.Body = readCloser{io.MultiReader(bytes.NewReader(body), errReader{rerr}), io.NopCloser(nil)}
			}
		}
	}
	r.add(ex)
	notifyWatchers(req.Context(), ex)
	return resp, nil
}

type watchKey struct{}

// WithWatcher returns a context whose requests, made by any client built
// here, are passed to fn once their reply headers arrive (or the transport
// fails). Callers use it to count a subject's requests or to stop a
// regclient call once the reply they need has been seen.
func WithWatcher(ctx context.Context, fn func(Exchange)) context.Context {
	prev, _ := ctx.Value(watchKey{}).([]func(Exchange))
	next := append(append([]func(Exchange){}, prev...), fn)
	return context.WithValue(ctx, watchKey{}, next)
}

func notifyWatchers(ctx context.Context, ex Exchange) {
	fns, _ := ctx.Value(watchKey{}).([]func(Exchange))
	for _, fn := range fns {
		fn(ex)
	}
}

func (r *Recorder) add(ex Exchange) {
	r.mu.Lock()
	if !r.forget {
		r.exchanges = append(r.exchanges, ex)
	}
	fn := r.onRecord
	r.mu.Unlock()
	if fn != nil {
		fn(ex)
	}
}

type readCloser struct {
	io.Reader
	c io.Closer
}

func (rc readCloser) Close() error {
	if rc.c == nil {
		return nil
	}
	return rc.c.Close()
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// RedactURL renders u without user info and with secret-looking query
// values masked.
func RedactURL(u *url.URL) string {
	c := *u
	c.User = nil
	q := c.Query()
	changed := false
	for k := range q {
		for _, s := range secretQueryKeys {
			if strings.EqualFold(k, s) {
				q.Set(k, "REDACTED")
				changed = true
			}
		}
	}
	if changed {
		c.RawQuery = q.Encode()
	}
	return c.String()
}

// tlsTransport clones the default transport with its own TLS settings.
func tlsTransport(tc *tls.Config) *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = tc
	return t
}
