package lab

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/regclient/regclient/types/descriptor"
	"github.com/regclient/regclient/types/mediatype"
	v1 "github.com/regclient/regclient/types/oci/v1"
)

// This file plays the bad-day profiles: replies of the referrers endpoint
// that redirect, never finish, are huge, or mislabel what they list. Each
// starts from olareg's real reply (asked in process) and changes only what
// the profile is about.

// relocatedPrefix is where ProfileRedirect307 moved its API.
const relocatedPrefix = "/relocated"

// acr424Body is the error Azure Container Registry's cache rule for
// ghcr.io answers on /referrers (Azure/acr#891), for repository %s.
const acr424Body = `{"errors":[{"code":"UNKNOWN","message":"request to fetch referrers from source '%s' for cache rule 'ghcr-io' returned status code 303. CorrelationId:3f2c1d0e-7a9b-4c1d-8e2f-0a1b2c3d4e5f. For more information, please visit https://aka.ms/acr/cache"}]}` + "\n"

// redirect answers a referrers GET or HEAD of a redirecting profile.
func (l *layer) redirect(w http.ResponseWriter, r *http.Request) {
	switch l.profile {
	case ProfileRedirect307:
		http.Redirect(w, r, relocatedPrefix+r.URL.RequestURI(), http.StatusTemporaryRedirect)
	case ProfileRedirectCDN:
		http.Redirect(w, r, l.other.signedURL(r.URL), http.StatusTemporaryRedirect)
	case ProfileLogin302:
		http.Redirect(w, r, l.other.base+"/ServiceLogin?continue="+url.QueryEscape(l.base+r.URL.RequestURI()), http.StatusFound)
	case ProfileGHCR303:
		// GHCR's Location names the packages endpoint with the repository
		// and the digest path escaped, cut at the digest's colon.
		repo := repositoryOf(r.URL.Path)
		dig := r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]
		alg, _, _ := strings.Cut(dig, ":")
		http.Redirect(w, r, l.other.base+"/-/v2/packages/container/package/"+url.PathEscape(repo+"/referrers/"+alg), http.StatusSeeOther)
	default:
		http.NotFound(w, r)
	}
}

// relocated turns a GET or HEAD of /relocated/v2/... into the /v2/...
// request olareg serves; ok is false for any other request.
func relocated(r *http.Request) (*http.Request, bool) {
	if (r.Method != http.MethodGet && r.Method != http.MethodHead) || !strings.HasPrefix(r.URL.Path, relocatedPrefix+"/v2/") {
		return r, false
	}
	r = r.Clone(r.Context())
	r.URL.Path, r.URL.RawPath = strings.TrimPrefix(r.URL.Path, relocatedPrefix), ""
	r.RequestURI = r.URL.RequestURI()
	return r, true
}

// sixHourThrottle is Docker Hub with the pull budget spent: rate-limit
// headers on every reply and 429 with Retry-After: 21600 on every GET of
// a manifest or of referrers. It reports whether the request may go on.
func sixHourThrottle(w http.ResponseWriter, r *http.Request) bool {
	windowSeconds := int64(DefaultRateWindow / time.Second)
	h := w.Header()
	h.Set("RateLimit-Limit", fmt.Sprintf("%d;w=%d", rateLimitHeaderLimit, windowSeconds))
	h.Set("RateLimit-Remaining", fmt.Sprintf("0;w=%d", windowSeconds))
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		h.Set("Docker-RateLimit-Source", host)
	}
	if r.Method != http.MethodGet || !isPullPath(r.URL.Path) {
		return true
	}
	h.Set("Retry-After", fmt.Sprint(windowSeconds))
	h.Set("Docker-Distribution-API-Version", "registry/2.0")
	writeBody(w, r, http.StatusTooManyRequests, contentTypeJSON, tooManyBody)
	return false
}

// capture is olareg's own reply to r, asked in process.
func (l *layer) capture(r *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	l.next.ServeHTTP(rec, r)
	return rec
}

// writeReply sends status, the recorded headers (less those in drop) and
// body, with the body's own Content-Length.
func writeReply(w http.ResponseWriter, rec *httptest.ResponseRecorder, body []byte, drop ...string) {
	h := w.Header()
	for k, v := range rec.Header() {
		h[k] = v
	}
	for _, k := range drop {
		h.Del(k)
	}
	h.Set("Content-Length", fmt.Sprint(len(body)))
	w.WriteHeader(rec.Code)
	_, _ = w.Write(body)
}

// serveSlowBody sends olareg's reply headers at once and then its body
// badly: half of it and a stall (ProfileStalledBody), or one byte per
// trickle interval (ProfileTrickleBody). Either way the handler returns
// only when the body is done, the client has gone, or the lab closes.
func (l *layer) serveSlowBody(w http.ResponseWriter, r *http.Request) {
	rec := l.capture(r)
	body := rec.Body.Bytes()
	h := w.Header()
	for k, v := range rec.Header() {
		h[k] = v
	}
	h.Set("Content-Length", fmt.Sprint(len(body)))
	w.WriteHeader(rec.Code)
	rc := http.NewResponseController(w)
	if l.profile == ProfileStalledBody {
		_, _ = w.Write(body[:len(body)/2])
		_ = rc.Flush()
		select {
		case <-r.Context().Done():
		case <-l.life.Done():
		}
		return
	}
	for i := range body {
		if _, err := w.Write(body[i : i+1]); err != nil {
			return
		}
		if err := rc.Flush(); err != nil {
			return
		}
		if i+1 < len(body) && !l.pause(r.Context(), l.trickleEvery) {
			return
		}
	}
}

// pause waits d, or until the client goes or the lab closes; it reports
// whether d passed.
func (l *layer) pause(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	case <-l.life.Done():
		return false
	}
}

// withoutFilter drops the artifactType filter before olareg sees it, for
// the registries that ignore it.
func withoutFilter(r *http.Request) *http.Request {
	q := r.URL.Query()
	if !q.Has(artifactTypeParam) {
		return r
	}
	q.Del(artifactTypeParam)
	r = r.Clone(r.Context())
	r.URL.RawQuery = q.Encode()
	r.RequestURI = r.URL.RequestURI()
	return r
}

// serveRelabelled serves olareg's referrers reply with each descriptor
// changed by relabel, ignoring the artifactType filter as the registries
// that mislabel types do. A reply that is not a 200 index goes out as
// olareg sent it.
func (l *layer) serveRelabelled(w http.ResponseWriter, r *http.Request, relabel func(*descriptor.Descriptor)) {
	r = withoutFilter(r)
	rec := l.capture(r)
	var idx v1.Index
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &idx) != nil {
		writeReply(w, rec, rec.Body.Bytes())
		return
	}
	for i := range idx.Manifests {
		relabel(&idx.Manifests[i])
	}
	writeReply(w, rec, mustJSON(idx), filtersAppliedHeader)
}

// configMediaType is what go-containerregistry's registry lists as a
// referrer's artifactType: its manifest's config media type, read from
// olareg in process ("" for an index, which has no config).
func (l *layer) configMediaType(ctx context.Context, repo, dig string) string {
	rec := inProcess{h: l.next, repo: repo}.get(ctx, "/v2/"+repo+"/manifests/"+dig,
		mediatype.OCI1Manifest+", "+mediatype.OCI1ManifestList+", "+mediatype.Docker2Manifest+", "+mediatype.Docker2ManifestList)
	var m struct {
		Config *struct {
			MediaType string `json:"mediaType"`
		} `json:"config"`
	}
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &m) != nil || m.Config == nil {
		return ""
	}
	return m.Config.MediaType
}

// linkBackToFirstPage is ProfileLinkLoop's edit: on the last page of a
// paged referrers list (a request with olareg's page parameter whose reply
// has no Link), a Link back to the first page, the same request without
// olareg's cache and page parameters, relative as olareg's own links are.
func linkBackToFirstPage(r *http.Request) (replyEdit, bool) {
	q := r.URL.Query()
	if q.Get("page") == "" || q.Get("page") == "0" {
		return nil, false
	}
	q.Del("page")
	q.Del("cache")
	first := r.URL.Path
	if len(q) > 0 {
		first += "?" + q.Encode()
	}
	link := "<" + first + `>; rel="next"`
	return func(h http.Header, status int) {
		if status == http.StatusOK && h.Get("Link") == "" {
			h.Set("Link", link)
		}
	}, true
}

// hugeIndex is what ProfileHugeIndex adds to olareg's real reply for its
// subject: generated descriptors, marshalled once on first use.
type hugeIndex struct {
	subject string
	count   int
	once    sync.Once
	entries []generatedEntry
}

type generatedEntry struct {
	artifactType string
	raw          []byte
}

// generated are the descriptors huge-index appends: referrer manifests
// that were never pushed, each with its own digest, one of the seed's
// artifact types in turn, and the annotation dev.refdoctor.lab.generated.
func (h *hugeIndex) generated() []generatedEntry {
	h.once.Do(func() {
		types := []string{ArtifactTypeCycloneDX, ArtifactTypeNotary, ArtifactTypeInToto}
		created := seedCreated.Format(time.RFC3339)
		h.entries = make([]generatedEntry, h.count)
		for i := range h.entries {
			n := fmt.Sprintf("%05d", i)
			sum := sha256.Sum256([]byte("refdoctor lab generated referrer " + n + " of " + h.subject))
			d := descriptor.Descriptor{
				MediaType:    mediatype.OCI1Manifest,
				Digest:       digest.NewDigestFromBytes(digest.SHA256, sum[:]),
				Size:         int64(600 + i%200),
				ArtifactType: types[i%len(types)],
				Annotations:  map[string]string{annotationCreated: created, annotationGenerated: n},
			}
			h.entries[i] = generatedEntry{artifactType: d.ArtifactType, raw: mustJSON(d)}
		}
	})
	return h.entries
}

// serveHugeIndex answers a referrers GET of the huge subject: olareg's
// real reply with the generated descriptors appended (those of the
// requested artifactType only, when olareg applied that filter), as one
// valid index.
func (l *layer) serveHugeIndex(w http.ResponseWriter, r *http.Request) {
	filter := r.URL.Query().Get(artifactTypeParam)
	rec := l.capture(r)
	var real struct {
		Manifests []json.RawMessage `json:"manifests"`
	}
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &real) != nil {
		writeReply(w, rec, rec.Body.Bytes())
		return
	}
	filtered := filter != "" && rec.Header().Get(filtersAppliedHeader) != ""
	var b bytes.Buffer
	b.Grow(l.huge.count * 320)
	b.WriteString(`{"schemaVersion":2,"mediaType":"` + mediatype.OCI1ManifestList + `","manifests":[`)
	n := 0
	add := func(raw []byte) {
		if n > 0 {
			b.WriteByte(',')
		}
		b.Write(raw)
		n++
	}
	for _, m := range real.Manifests {
		add(m)
	}
	for _, e := range l.huge.generated() {
		if !filtered || e.artifactType == filter {
			add(e.raw)
		}
	}
	b.WriteString("]}")
	writeReply(w, rec, b.Bytes())
}

// isSubjectOf reports whether p is the referrers path of subject in the
// bad-day repository.
func isSubjectOf(p, subject string) bool {
	return subject != "" && repositoryOf(p) == BadDayRepository && strings.HasSuffix(p, "/referrers/"+subject)
}

// tracker counts the requests a registry is still serving, so that Close
// can wait for those it has told to stop (stalled and trickling bodies)
// before it frees olareg's store.
type tracker struct {
	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup
}

// enter registers a request; it is false once the registry is closing.
func (t *tracker) enter() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return false
	}
	t.wg.Add(1)
	return true
}

func (t *tracker) leave() { t.wg.Done() }

// closeAndWait refuses new requests and waits for those in flight.
func (t *tracker) closeAndWait() {
	t.mu.Lock()
	t.closed = true
	t.mu.Unlock()
	t.wg.Wait()
}
