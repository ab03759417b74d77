package lab

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// layer is the behaviour layer in front of one olareg: it reproduces a
// vendor's reply where that vendor differs from a conforming registry and
// hands every other request to olareg untouched. It also counts requests.
type layer struct {
	profile  Profile
	next     http.Handler
	base     string // scheme://host of this registry, for the token realm
	delay    time.Duration
	rate     *rateLimiter
	log      *slog.Logger
	requests atomic.Int64
}

func newLayer(s Spec, next http.Handler, base string, log *slog.Logger) *layer {
	l := &layer{profile: s.Profile, next: next, base: base, delay: s.Delay, log: log}
	if s.Profile == ProfileRateLimit {
		l.rate = &rateLimiter{budget: s.RateBudget, window: s.RateWindow, start: time.Now()}
	}
	return l
}

// Content types and bodies of the vendor replies.
const (
	contentTypeJSON = "application/json"
	contentTypeHTML = "text/html; charset=utf-8"

	artifactory406Body = `{"errors":[{"status":406,"message":"Not Acceptable"}]}` + "\n"
	notImpl501Body     = `{"errors":[{"code":"UNSUPPORTED","message":"the referrers API is not implemented by this registry","detail":null}]}` + "\n"
	unauthorizedBody   = `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required","detail":null}]}` + "\n"
	tokenRefusedBody   = `{"errors":[{"code":"UNAUTHORIZED","message":"the token service refuses this request: access denied","detail":null}],"details":"incorrect username or password"}` + "\n"
	tooManyBody        = `{"errors":[{"code":"TOOMANYREQUESTS","message":"You have reached your unauthenticated pull rate limit. https://www.docker.com/increase-rate-limit"}]}` + "\n"

	// loginPageHTML stands for the sign-in redirect that Google Artifact
	// Registry served on /referrers in 2023: a 200 that is not an index.
	loginPageHTML = `<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>Sign in - Accounts</title></head>
<body>
<form method="post" action="/signin/v2/identifier">
<h1>Sign in</h1>
<p>to continue to Artifact Registry</p>
<label for="identifier">Email or phone</label>
<input type="email" id="identifier" name="identifier">
<button type="submit">Next</button>
</form>
</body>
</html>
`

	labTokenService = "refdoctor-lab"
)

func (l *layer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	l.requests.Add(1)
	switch l.profile {
	case ProfileSlow:
		if !sleepCtx(r.Context(), l.delay) {
			return // the client gave up; nobody reads a reply
		}
	case ProfileAuthRefuse:
		l.refuseAuth(w, r)
		return
	case ProfileRateLimit:
		if !l.rate.admit(w, r) {
			return
		}
	}
	if isReferrersPath(r.URL.Path) && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		switch l.profile {
		case ProfileFallback404:
			// distribution's router: the version header, then Go's NotFound.
			w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
			http.NotFound(w, r)
			return
		case ProfileArtifactory406:
			writeBody(w, r, http.StatusNotAcceptable, contentTypeJSON, artifactory406Body)
			return
		case ProfileHTML200:
			writeBody(w, r, http.StatusOK, contentTypeHTML, loginPageHTML)
			return
		case ProfileNotImpl501:
			writeBody(w, r, http.StatusNotImplemented, contentTypeJSON, notImpl501Body)
			return
		case ProfileJSON200:
			w = &contentTypeRewriter{ResponseWriter: w, contentType: contentTypeJSON}
		}
	}
	l.next.ServeHTTP(w, r)
}

// isReferrersPath matches /v2/<name>/referrers/<digest>.
func isReferrersPath(p string) bool {
	segs := strings.Split(strings.Trim(p, "/"), "/")
	return len(segs) >= 4 && segs[0] == "v2" && segs[len(segs)-2] == "referrers" && segs[len(segs)-1] != ""
}

// repositoryOf extracts <name> from a /v2/<name>/<route>/... path, or ""
// for the ping and unknown paths.
func repositoryOf(p string) string {
	segs := strings.Split(strings.Trim(p, "/"), "/")
	if len(segs) < 3 || segs[0] != "v2" {
		return ""
	}
	for i := len(segs) - 2; i >= 2; i-- {
		switch segs[i] {
		case "manifests", "blobs", "tags", "referrers":
			return strings.Join(segs[1:i], "/")
		}
	}
	return ""
}

func writeBody(w http.ResponseWriter, r *http.Request, status int, contentType, body string) {
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Length", fmt.Sprint(len(body)))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write([]byte(body))
	}
}

// refuseAuth plays a registry whose token service turns everyone away.
// The challenge is well formed, so a client does the whole bearer dance
// and gets an authentication error, never a 404.
func (l *layer) refuseAuth(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/token" {
		writeBody(w, r, http.StatusUnauthorized, contentTypeJSON, tokenRefusedBody)
		return
	}
	if r.URL.Path != "/v2" && !strings.HasPrefix(r.URL.Path, "/v2/") {
		http.NotFound(w, r)
		return
	}
	challenge := fmt.Sprintf("Bearer realm=%q,service=%q", l.base+"/token", labTokenService)
	if repo := repositoryOf(r.URL.Path); repo != "" {
		actions := "pull"
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			actions = "pull,push"
		}
		challenge += fmt.Sprintf(",scope=%q", "repository:"+repo+":"+actions)
	}
	w.Header().Set("WWW-Authenticate", challenge)
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	writeBody(w, r, http.StatusUnauthorized, contentTypeJSON, unauthorizedBody)
}

// sleepCtx waits d or until ctx ends; it reports whether d passed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// contentTypeRewriter relabels a reply, as Harbor 2.8-2.9 did with the
// referrers index, leaving status and body alone.
type contentTypeRewriter struct {
	http.ResponseWriter
	contentType string
	wrote       bool
}

func (c *contentTypeRewriter) WriteHeader(status int) {
	if !c.wrote {
		c.wrote = true
		c.Header().Set("Content-Type", c.contentType)
	}
	c.ResponseWriter.WriteHeader(status)
}

func (c *contentTypeRewriter) Write(b []byte) (int, error) {
	if !c.wrote {
		c.WriteHeader(http.StatusOK)
	}
	return c.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the real writer.
func (c *contentTypeRewriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }

// rateLimiter is a Docker Hub style pull budget: every GET of a manifest
// or of referrers spends one pull; the budget refills when the window
// ends.
type rateLimiter struct {
	mu     sync.Mutex
	budget int
	window time.Duration
	start  time.Time
	used   int
}

// rateLimitHeaderLimit is what Docker Hub advertises to anonymous pulls;
// a smaller lab budget shows as pulls already spent, as on a shared IP.
const rateLimitHeaderLimit = 100

// admit sets the rate-limit headers and either lets the request through
// or answers 429 itself.
func (rl *rateLimiter) admit(w http.ResponseWriter, r *http.Request) bool {
	counted := r.Method == http.MethodGet && isPullPath(r.URL.Path)
	now := time.Now()
	rl.mu.Lock()
	if now.Sub(rl.start) >= rl.window {
		rl.start, rl.used = now, 0
	}
	allowed := true
	if counted {
		if rl.used >= rl.budget {
			allowed = false
		} else {
			rl.used++
		}
	}
	remaining := rl.budget - rl.used
	left := rl.start.Add(rl.window).Sub(now)
	rl.mu.Unlock()

	windowSeconds := int64(rl.window / time.Second)
	h := w.Header()
	h.Set("RateLimit-Limit", fmt.Sprintf("%d;w=%d", max(rateLimitHeaderLimit, rl.budget), windowSeconds))
	h.Set("RateLimit-Remaining", fmt.Sprintf("%d;w=%d", remaining, windowSeconds))
	source := r.RemoteAddr
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		source = host
	}
	h.Set("Docker-RateLimit-Source", source)
	if allowed {
		return true
	}
	h.Set("Retry-After", fmt.Sprint(max(1, int64(math.Ceil(left.Seconds())))))
	h.Set("Docker-Distribution-API-Version", "registry/2.0")
	writeBody(w, r, http.StatusTooManyRequests, contentTypeJSON, tooManyBody)
	return false
}

// isPullPath matches the routes Docker Hub charges: manifests, and here
// referrers too.
func isPullPath(p string) bool {
	if isReferrersPath(p) {
		return true
	}
	segs := strings.Split(strings.Trim(p, "/"), "/")
	return len(segs) >= 4 && segs[0] == "v2" && segs[len(segs)-2] == "manifests"
}
