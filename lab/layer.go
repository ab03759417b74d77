package lab

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/regclient/regclient/types/descriptor"
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
	tokens   *tokenService // ProfileBearer only
	log      *slog.Logger
	requests atomic.Int64

	// The spec knobs, applied to GET /v2/<name>/referrers/<digest> only.
	ignoreFilter bool
	linkLoop     bool
	throttle     int64
	throttled    atomic.Int64 // referrers GETs seen, for throttle
	budgetAfter  int64
	budgetSeen   atomic.Int64 // referrers GETs seen, for budgetAfter

	// life ends when the lab closes: stalled and trickling replies stop
	// then, and Close waits for them through inflight.
	life     context.Context
	inflight tracker
	// web serves the not-a-registry profiles instead of olareg.
	web http.Handler
	// other is the second host of the redirecting profiles.
	other *otherHost
	// trickleEvery is ProfileTrickleBody's pause between bytes.
	trickleEvery time.Duration
	// huge is ProfileHugeIndex's generated part.
	huge *hugeIndex
	// badDay, when set, hands olareg the bad-day repository (once, before
	// the first request that names it or lists repositories).
	badDay func() error
}

func newLayer(s Spec, next http.Handler, base string, login *Login, log *slog.Logger, life context.Context) *layer {
	l := &layer{
		profile: s.Profile, next: next, base: base, delay: s.Delay, log: log,
		ignoreFilter: s.IgnoreArtifactTypeFilter, linkLoop: s.LinkLoop, throttle: int64(s.Throttle429),
		budgetAfter: int64(s.BudgetAfter),
		life:        life, trickleEvery: s.TrickleInterval,
	}
	switch s.Profile {
	case ProfileRateLimit:
		l.rate = &rateLimiter{budget: s.RateBudget, window: s.RateWindow, start: time.Now()}
	case ProfileBearer, ProfileRedirectCDN:
		l.tokens = newTokenService(login, base)
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
	quayUnknownBody    = `{"errors":[{"code":"MANIFEST_INVALID","detail":{},"message":"unknown subject"}]}` + "\n"
	harborEmptyBody    = `{}`

	contentTypeOCIIndex = "application/vnd.oci.image.index.v1+json"

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
	if !l.inflight.enter() {
		http.Error(w, "the lab is closing", http.StatusServiceUnavailable)
		return
	}
	defer l.inflight.leave()
	if l.web != nil {
		l.web.ServeHTTP(w, r)
		return
	}
	if l.badDay != nil && (repositoryOf(r.URL.Path) == BadDayRepository || r.URL.Path == "/v2/_catalog") {
		if err := l.badDay(); err != nil {
			l.log.Error("lab registry could not load its bad-day repository", "err", err)
			http.Error(w, "lab registry could not load "+BadDayRepository+": "+err.Error(), http.StatusInternalServerError)
			return
		}
	}
	switch l.profile {
	case ProfileSlow:
		if !l.pause(r.Context(), l.delay) {
			// The client gave up or the lab is closing: no reply at all,
			// not an empty 200.
			panic(http.ErrAbortHandler)
		}
	case ProfileAuthRefuse:
		l.refuseAuth(w, r)
		return
	case ProfileRateLimit:
		if !l.rate.admit(w, r) {
			return
		}
	case ProfileBearer, ProfileRedirectCDN:
		if !l.tokens.admit(w, r) {
			return
		}
	case ProfileGitLab:
		r = gitLabTagQuirk(r)
	case ProfileThrottled6h:
		if !sixHourThrottle(w, r) {
			return
		}
	case ProfileRedirect307:
		if moved, ok := relocated(r); ok {
			l.next.ServeHTTP(w, moved)
			return
		}
	}
	if isReferrersPath(r.URL.Path) && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		if r.Method == http.MethodGet && l.throttle > 0 && l.throttled.Add(1) <= l.throttle {
			writeThrottled(w, r)
			return
		}
		if r.Method == http.MethodGet && l.budgetAfter > 0 && l.budgetSeen.Add(1) > l.budgetAfter {
			writeBudgetSpent(w, r)
			return
		}
		switch l.profile {
		case ProfileFallback404, ProfileGitLab, ProfileMislabelledFallback:
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
			w = &replyEditor{ResponseWriter: w, edits: []replyEdit{func(h http.Header, _ int) {
				h.Set("Content-Type", contentTypeJSON)
			}}}
		case ProfileQuay400:
			if !l.manifestExists(r) {
				writeBody(w, r, http.StatusBadRequest, contentTypeJSON, quayUnknownBody)
				return
			}
		case ProfileHarbor210:
			if !l.manifestExists(r) {
				writeBody(w, r, http.StatusOK, contentTypeOCIIndex, harborEmptyBody)
				return
			}
		case ProfileRedirect307, ProfileRedirectCDN, ProfileLogin302, ProfileGHCR303:
			l.redirect(w, r)
			return
		case ProfileECR2024:
			w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
			http.NotFound(w, r)
			return
		case ProfileACR424:
			writeBody(w, r, http.StatusFailedDependency, contentTypeJSON, fmt.Sprintf(acr424Body, repositoryOf(r.URL.Path)))
			return
		}
		if r.Method == http.MethodGet {
			w, r = l.referrersKnobs(w, r)
			switch l.profile {
			case ProfileStalledBody, ProfileTrickleBody:
				l.serveSlowBody(w, r)
				return
			case ProfileHugeIndex:
				if isSubjectOf(r.URL.Path, l.huge.subject) {
					l.serveHugeIndex(w, r)
					return
				}
			case ProfileNoArtifactType:
				l.serveRelabelled(w, r, func(d *descriptor.Descriptor) { d.ArtifactType = "" })
				return
			case ProfileMislabelledTypes:
				repo := repositoryOf(r.URL.Path)
				l.serveRelabelled(w, r, func(d *descriptor.Descriptor) {
					d.ArtifactType = l.configMediaType(r.Context(), repo, d.Digest.String())
				})
				return
			case ProfileLinkLoop:
				// Decided before olareg, which rewrites r.URL for its own
				// next link.
				if edit, ok := linkBackToFirstPage(r); ok {
					w = &replyEditor{ResponseWriter: w, edits: []replyEdit{edit}}
				}
			}
		}
	}
	l.next.ServeHTTP(w, r)
}

// manifestExists asks olareg, in process and without the network, whether
// the subject of a /v2/<name>/referrers/<digest> request is a manifest in
// that repository, with a HEAD of /v2/<name>/manifests/<digest>.
func (l *layer) manifestExists(r *http.Request) bool {
	repo := repositoryOf(r.URL.Path)
	dig := r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]
	if repo == "" || dig == "" {
		return false
	}
	head := r.Clone(r.Context())
	head.Method = http.MethodHead
	head.URL = &url.URL{Path: "/v2/" + repo + "/manifests/" + dig}
	head.RequestURI = head.URL.RequestURI()
	head.Body, head.ContentLength = http.NoBody, 0
	// The referrers request accepts an index only; the subject may be any
	// manifest, and olareg would hide one of another type behind a 404.
	head.Header.Del("Accept")
	rec := httptest.NewRecorder()
	l.next.ServeHTTP(rec, head)
	return rec.Code == http.StatusOK
}

// referrersKnobs applies the spec knobs to a referrers GET: it drops the
// artifactType filter before olareg sees it and edits the reply headers.
func (l *layer) referrersKnobs(w http.ResponseWriter, r *http.Request) (http.ResponseWriter, *http.Request) {
	var edits []replyEdit
	if l.linkLoop {
		// The link the client asked for, filter and all: relative, as
		// olareg's own pagination links are.
		self := "<" + r.URL.RequestURI() + `>; rel="next"`
		edits = append(edits, func(h http.Header, status int) {
			if status >= 200 && status < 300 {
				h.Set("Link", self)
			}
		})
	}
	if l.ignoreFilter {
		if q := r.URL.Query(); q.Has(artifactTypeParam) {
			q.Del(artifactTypeParam)
			r = r.Clone(r.Context())
			r.URL.RawQuery = q.Encode()
			r.RequestURI = r.URL.RequestURI()
		}
		edits = append(edits, func(h http.Header, _ int) { h.Del(filtersAppliedHeader) })
	}
	if len(edits) > 0 {
		w = &replyEditor{ResponseWriter: w, edits: edits}
	}
	return w, r
}

// The referrers filter of the distribution spec.
const (
	artifactTypeParam    = "artifactType"
	filtersAppliedHeader = "OCI-Filters-Applied"
)

// writeThrottled is Docker Hub's 429 with a one-second Retry-After: the
// rate limit of Spec.Throttle429, which clears after a few requests.
func writeThrottled(w http.ResponseWriter, r *http.Request) { write429(w, r, "1") }

// writeBudgetSpent is Spec.BudgetAfter's 429: the budget is spent and
// the registry answers again in an hour.
func writeBudgetSpent(w http.ResponseWriter, r *http.Request) { write429(w, r, "3600") }

func write429(w http.ResponseWriter, r *http.Request, retryAfter string) {
	windowSeconds := int64(DefaultRateWindow / time.Second)
	h := w.Header()
	h.Set("Retry-After", retryAfter)
	h.Set("RateLimit-Limit", fmt.Sprintf("%d;w=%d", rateLimitHeaderLimit, windowSeconds))
	h.Set("RateLimit-Remaining", fmt.Sprintf("0;w=%d", windowSeconds))
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		h.Set("Docker-RateLimit-Source", host)
	}
	h.Set("Docker-Distribution-API-Version", "registry/2.0")
	writeBody(w, r, http.StatusTooManyRequests, contentTypeJSON, tooManyBody)
}

// gitLabTagQuirk plays GitLab's handling of a referrers-schema tag: a GET
// or HEAD of /v2/<name>/manifests/sha256-<hex> is served the manifest
// sha256:<hex>, so the fallback index the tag holds is never seen. Other
// requests come back unchanged.
func gitLabTagQuirk(r *http.Request) *http.Request {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return r
	}
	segs := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	if len(segs) < 4 || segs[0] != "v2" || segs[len(segs)-2] != "manifests" {
		return r
	}
	alg, hex, ok := strings.Cut(segs[len(segs)-1], "-")
	if !ok || !isDigestHex(alg, hex) {
		return r
	}
	segs[len(segs)-1] = alg + ":" + hex
	r = r.Clone(r.Context())
	r.URL.Path, r.URL.RawPath = "/"+strings.Join(segs, "/"), ""
	r.RequestURI = r.URL.RequestURI()
	return r
}

// isDigestHex reports whether alg and hex form a sha256 or sha512 digest
// with lower-case hex of the right length.
func isDigestHex(alg, hex string) bool {
	want := map[string]int{"sha256": 64, "sha512": 128}[alg]
	if want == 0 || len(hex) != want {
		return false
	}
	for _, c := range hex {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
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
	if !isV2Path(r.URL.Path) {
		http.NotFound(w, r)
		return
	}
	bearerChallenge(w, r, l.base)
}

// isV2Path matches /v2 and everything under /v2/.
func isV2Path(p string) bool { return p == "/v2" || strings.HasPrefix(p, "/v2/") }

// bearerChallenge answers 401 with the lab token service's challenge,
// scoped to the repository on repository routes.
func bearerChallenge(w http.ResponseWriter, r *http.Request, base string) {
	challenge := fmt.Sprintf("Bearer realm=%q,service=%q", base+"/token", labTokenService)
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

// replyEdit changes the headers of a reply just before they go out.
type replyEdit func(h http.Header, status int)

// replyEditor edits olareg's reply headers (relabelling the index as
// Harbor 2.8-2.9 did, dropping OCI-Filters-Applied, pointing Link back at
// the same page), leaving status and body alone.
type replyEditor struct {
	http.ResponseWriter
	edits []replyEdit
	wrote bool
}

func (e *replyEditor) WriteHeader(status int) {
	if !e.wrote {
		e.wrote = true
		for _, edit := range e.edits {
			edit(e.Header(), status)
		}
	}
	e.ResponseWriter.WriteHeader(status)
}

func (e *replyEditor) Write(b []byte) (int, error) {
	if !e.wrote {
		e.WriteHeader(http.StatusOK)
	}
	return e.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the real writer.
func (e *replyEditor) Unwrap() http.ResponseWriter { return e.ResponseWriter }

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

// reset refills the budget and starts a new window.
func (rl *rateLimiter) reset() {
	rl.mu.Lock()
	defer rl.mu.Unlock()
	rl.start, rl.used = time.Now(), 0
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
