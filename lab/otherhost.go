package lab

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"sync/atomic"
)

// otherHost is the second listener of a registry whose redirects leave
// its host. It is reached by the name localhost while the registry is
// 127.0.0.1: another host name, as a CDN's or a sign-in page's is, so
// that clients apply their cross-host rules (Go's client, and regclient
// and oras with it, drop Authorization on a redirect to another host name,
// but not to another port of the same one). It counts what it is sent.
type otherHost struct {
	profile  Profile
	base     string // http://localhost:PORT
	key      []byte // signs the CDN URLs of ProfileRedirectCDN
	next     http.Handler
	inflight *tracker

	requests          atomic.Int64
	withAuthorization atomic.Int64
}

// signatureParam carries the CDN URL's signature, as a presigned URL's
// query does.
const signatureParam = "lab-signature"

func newOtherHost(p Profile, port string, next http.Handler, inflight *tracker) (*otherHost, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("lab: signing key: %w", err)
	}
	return &otherHost{profile: p, base: "http://localhost:" + port, key: key, next: next, inflight: inflight}, nil
}

func (o *otherHost) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	o.requests.Add(1)
	if r.Header.Get("Authorization") != "" {
		o.withAuthorization.Add(1)
	}
	if !o.inflight.enter() {
		http.Error(w, "the lab is closing", http.StatusServiceUnavailable)
		return
	}
	defer o.inflight.leave()
	switch o.profile {
	case ProfileRedirectCDN:
		o.serveSigned(w, r)
	case ProfileLogin302:
		// accounts.google.com's sign-in page: 200 and HTML, whatever was
		// asked.
		writeBody(w, r, http.StatusOK, contentTypeHTML, loginPageHTML)
	case ProfileGHCR303:
		// github.com's packages endpoint, rate-limited for everyone.
		writeBody(w, r, http.StatusTooManyRequests, "text/plain; charset=utf-8", "Too Many Requests\n")
	default:
		http.NotFound(w, r)
	}
}

// sign is the signature of a CDN path.
func (o *otherHost) sign(path string) string {
	m := hmac.New(sha256.New, o.key)
	m.Write([]byte(path))
	return hex.EncodeToString(m.Sum(nil))
}

// signedURL is where ProfileRedirectCDN sends a referrers request: the
// same path and query on the CDN host, plus a signature of the path (not
// the query, so that olareg's relative Link headers keep working there).
func (o *otherHost) signedURL(u *url.URL) string {
	q := u.Query()
	q.Set(signatureParam, o.sign(u.Path))
	return o.base + u.EscapedPath() + "?" + q.Encode()
}

// serveSigned is the CDN: a GET or HEAD of a referrers path with a valid
// signature is served olareg's reply, without any login; anything else is
// refused as a CDN refuses an unsigned URL.
func (o *otherHost) serveSigned(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	sig := q.Get(signatureParam)
	if (r.Method != http.MethodGet && r.Method != http.MethodHead) || !isReferrersPath(r.URL.Path) ||
		!hmac.Equal([]byte(sig), []byte(o.sign(r.URL.Path))) {
		writeBody(w, r, http.StatusForbidden, "application/xml", cdnDeniedBody)
		return
	}
	q.Del(signatureParam)
	r = r.Clone(r.Context())
	r.URL.RawQuery = q.Encode()
	r.RequestURI = r.URL.RequestURI()
	o.next.ServeHTTP(w, r)
}

// cdnDeniedBody is the refusal of an unsigned or tampered CDN URL, in the
// style of an object store behind a CDN.
const cdnDeniedBody = `<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>AccessDenied</Code><Message>Request has expired or its signature does not match</Message></Error>
`
