package registry

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/refdoctor/refdoctor/config"
)

// Exchange is one HTTP request and its reply as refdoctor saw it on the
// wire. It never holds credentials: Authorization, cookies and token
// replies are not recorded, and query values that look like secrets are
// masked. A redirect is one exchange per hop: each hop after the first
// names the URL it was redirected from and the path the client asked for.
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
	// RedirectedFrom is the URL whose redirect led to this request.
	RedirectedFrom string `json:"redirected_from,omitempty"`
	// RequestedPath is the path of the first request of a redirect chain:
	// the path the client asked for (equal to Path without a redirect).
	RequestedPath string `json:"requested_path,omitempty"`
	// Size is how many body bytes were read for a captured reply.
	Size int64 `json:"size,omitempty"`
	// TooLarge is true when a captured reply was larger than the
	// recorder's reply cap; Body then holds nothing and the client got an
	// error instead of the reply.
	TooLarge bool `json:"too_large,omitempty"`
	// BodyError is why reading a captured reply's body failed (a stall
	// past the timeout, a reset connection): the reply is incomplete.
	BodyError string `json:"body_error,omitempty"`
	// Body is the whole reply body, kept only for the paths a Recorder was
	// told to capture (referrers, tag lists and /v2/ replies, and the
	// replies their redirects lead to), never for token endpoints.
	Body []byte `json:"-"`
	// Err is the transport error, kept for classification (TLS, DNS).
	Err error `json:"-"`
	// BodyErr is the error that ended reading the body early.
	BodyErr error `json:"-"`
	// Start is when the request was sent.
	Start time.Time `json:"-"`
}

// Complete reports whether the exchange ended with a whole reply: no
// transport error, no body cut short, nothing over the reply cap.
func (ex Exchange) Complete() bool {
	return ex.Err == nil && ex.BodyErr == nil && !ex.TooLarge
}

// IsRedirect reports whether the reply sends the client on to another
// URL (a 3xx with a Location).
func (ex Exchange) IsRedirect() bool {
	return ex.Status >= 300 && ex.Status < 400 && ex.Headers["Location"] != ""
}

// Requested is the path the client asked for, before any redirect.
func (ex Exchange) Requested() string {
	if ex.RequestedPath != "" {
		return ex.RequestedPath
	}
	return ex.Path
}

// recordedHeaders are the reply headers worth keeping: none carries a secret.
var recordedHeaders = []string{
	"Content-Type", "Content-Length", "Docker-Distribution-API-Version",
	"OCI-Distribution-API-Version", "Docker-Content-Digest", "WWW-Authenticate",
	"OCI-Filters-Applied", "OCI-Subject", "Link", "Location", "Retry-After",
	"RateLimit-Limit", "RateLimit-Remaining", "Docker-RateLimit-Source",
	"X-RateLimit-Limit", "X-RateLimit-Remaining", "Server",
	"RateLimit-Reset", "X-RateLimit-Reset", "RateLimit", "RateLimit-Policy",
}

// secretQueryKeys are query parameters masked in recorded URLs.
var secretQueryKeys = []string{"token", "access_token", "password", "secret", "signature", "x-amz-signature", "x-amz-credential", "x-amz-security-token", "sig", "code"}

// DefaultMaxReplySize bounds one captured reply (a referrers page, a tag
// list, a /v2/ answer) unless the configuration or WithMaxReplySize says
// otherwise: generous enough for a single referrers page of 100,000
// descriptors, small enough that a hostile endless body cannot exhaust
// memory.
const DefaultMaxReplySize = int64(config.DefaultMaxReplySize)

// ErrReplyTooLarge is what a client reading a captured reply gets when the
// reply is larger than the recorder's cap.
var ErrReplyTooLarge = errors.New("reply larger than the reply size cap")

// Recorder is an http.RoundTripper that records every exchange. It
// delegates to a per-host transport so that TLS settings still apply.
type Recorder struct {
	mu        sync.Mutex
	exchanges []Exchange
	hosts     map[string]http.RoundTripper
	fallback  http.RoundTripper
	capture   func(*http.Request) bool
	onRecord  func(Exchange)
	maxReply  int64
	// forget drops exchanges once watchers have seen them: a long-lived
	// client (an export of thousands of images) must not keep every reply.
	forget bool
}

// NewRecorder returns a recorder over base (http.DefaultTransport if nil).
func NewRecorder(base http.RoundTripper) *Recorder {
	if base == nil {
		base = http.DefaultTransport
	}
	return &Recorder{fallback: base, hosts: map[string]http.RoundTripper{}, capture: defaultCapture, maxReply: DefaultMaxReplySize}
}

// SetMaxReplySize bounds every captured reply body; n <= 0 keeps the
// default.
func (r *Recorder) SetMaxReplySize(n int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if n <= 0 {
		n = DefaultMaxReplySize
	}
	r.maxReply = n
}

// MaxReplySize is the cap in force.
func (r *Recorder) MaxReplySize() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.maxReply
}

// defaultCapture keeps bodies of /referrers/, /tags/list and /v2/ replies,
// and of every hop of a redirect chain that started at one of them (a
// CDN's or a login page's reply is the reply to the referrers request);
// token endpoints never match.
func defaultCapture(req *http.Request) bool {
	p := firstRequest(req).URL.Path
	if !strings.HasPrefix(p, "/v2/") && p != "/v2" {
		return false
	}
	return strings.Contains(p, "/referrers/") || strings.HasSuffix(p, "/tags/list") || p == "/v2/" || p == "/v2"
}

// firstRequest walks a redirected request back to the one the client sent.
func firstRequest(req *http.Request) *http.Request {
	for req.Response != nil && req.Response.Request != nil {
		req = req.Response.Request
	}
	return req
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

// RoundTrip implements http.RoundTripper. A captured reply is read whole
// (up to the reply cap) before the exchange is recorded, so that watchers
// and classification see exactly what the registry sent, and whether it
// arrived complete.
func (r *Recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	rt, ok := r.hosts[req.URL.Host]
	if !ok {
		rt = r.fallback
	}
	capture := r.capture(req)
	limit := r.maxReply
	r.mu.Unlock()

	ex := Exchange{Method: req.Method, URL: RedactURL(req.URL), Path: req.URL.Path, Start: time.Now(), RequestHeaders: requestHeaders(req)}
	if req.Response != nil && req.Response.Request != nil {
		ex.RedirectedFrom = RedactURL(req.Response.Request.URL)
		ex.RequestedPath = firstRequest(req).URL.Path
	}
	resp, err := rt.RoundTrip(req)
	if err != nil {
		ex.DurationMS = time.Since(ex.Start).Milliseconds()
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
		r.captureBody(&ex, resp, limit)
	}
	ex.DurationMS = time.Since(ex.Start).Milliseconds()
	r.add(ex)
	notifyWatchers(req.Context(), ex)
	return resp, nil
}

// captureBody reads the reply now, so that classification sees it even
// when the client closes an error reply unread, and hands the client the
// same bytes. A body over limit is not kept: the client gets
// ErrReplyTooLarge. A body that fails part way (a stall past the
// deadline, a reset) is kept as far as it came, with the error, and the
// client gets the same error after those bytes.
func (r *Recorder) captureBody(ex *Exchange, resp *http.Response, limit int64) {
	if resp.ContentLength > limit {
		ex.TooLarge = true
		ex.Size = resp.ContentLength
		_ = resp.Body.Close()
		resp.Body = io.NopCloser(errReader{fmt.Errorf("%w: %d bytes announced, cap %d", ErrReplyTooLarge, resp.ContentLength, limit)})
		return
	}
	body, rerr := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	_ = resp.Body.Close()
	ex.Size = int64(len(body))
	if int64(len(body)) > limit {
		ex.TooLarge = true
		resp.Body = io.NopCloser(errReader{fmt.Errorf("%w: more than %d bytes", ErrReplyTooLarge, limit)})
		return
	}
	ex.Body = body
	if rerr != nil {
		ex.BodyErr = rerr
		ex.BodyError = rerr.Error()
		resp.Body = io.NopCloser(io.MultiReader(bytes.NewReader(body), errReader{rerr}))
		return
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
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
