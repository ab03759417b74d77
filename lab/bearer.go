package lab

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"time"
)

// tokenLifetime is how long a token of the bearer-auth registry lasts, as
// on Docker Hub's token service.
const tokenLifetime = 300 * time.Second

const tokenDeniedBody = `{"errors":[{"code":"UNAUTHORIZED","message":"access to the requested resource is not authorized","detail":null}],"details":"incorrect username or password"}` + "\n"

// tokenService is the bearer-token flow of ProfileBearer, played by the
// layer in front of an olareg without auth of its own: /token issues an
// opaque token for the lab login and nobody else, and a /v2/ request
// passes through only with a token it issued that has not expired.
//
// olareg's own opaque-token support does not fit: it hands anonymous
// callers a token, refuses a wrong login with 403 rather than 401, and
// reports expires_in in nanoseconds.
type tokenService struct {
	login *Login
	base  string

	mu     sync.Mutex
	valid  map[string]time.Time // token -> expiry
	issued []string
}

func newTokenService(login *Login, base string) *tokenService {
	return &tokenService{login: login, base: base, valid: map[string]time.Time{}}
}

// admit serves /token itself, challenges /v2/ requests without a valid
// token, and reports whether the request may go on to olareg.
func (ts *tokenService) admit(w http.ResponseWriter, r *http.Request) bool {
	if r.URL.Path == "/token" {
		ts.serveToken(w, r)
		return false
	}
	if !isV2Path(r.URL.Path) {
		http.NotFound(w, r)
		return false
	}
	if ts.accepts(r.Header.Get("Authorization")) {
		return true
	}
	bearerChallenge(w, r, ts.base)
	return false
}

// accepts reports whether an Authorization header carries a token this
// service issued and that is still valid.
func (ts *tokenService) accepts(authz string) bool {
	scheme, token, ok := strings.Cut(authz, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return false
	}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	exp, ok := ts.valid[token]
	return ok && time.Now().Before(exp)
}

// serveToken is the token endpoint: GET with HTTP basic auth, as docker
// and regclient ask, or POST with an OAuth2 password grant.
func (ts *tokenService) serveToken(w http.ResponseWriter, r *http.Request) {
	var user, pass string
	switch r.Method {
	case http.MethodGet:
		user, pass, _ = r.BasicAuth()
	case http.MethodPost:
		if err := r.ParseForm(); err != nil || r.PostForm.Get("grant_type") != "password" {
			writeBody(w, r, http.StatusBadRequest, contentTypeJSON, `{"error":"unsupported_grant_type"}`+"\n")
			return
		}
		user, pass = r.PostForm.Get("username"), r.PostForm.Get("password")
	default:
		w.Header().Set("Allow", "GET, POST")
		writeBody(w, r, http.StatusMethodNotAllowed, contentTypeJSON, `{"error":"method not allowed"}`+"\n")
		return
	}
	if !ts.loginMatches(user, pass) {
		writeBody(w, r, http.StatusUnauthorized, contentTypeJSON, tokenDeniedBody)
		return
	}
	token, err := newToken()
	if err != nil {
		http.Error(w, "token generation failed", http.StatusInternalServerError)
		return
	}
	now := time.Now()
	ts.mu.Lock()
	for t, exp := range ts.valid {
		if !now.Before(exp) {
			delete(ts.valid, t)
		}
	}
	ts.valid[token] = now.Add(tokenLifetime)
	ts.issued = append(ts.issued, token)
	ts.mu.Unlock()
	body, err := json.Marshal(struct {
		Token       string `json:"token"`
		AccessToken string `json:"access_token"` //#nosec G117 -- the lab's token endpoint hands out tokens by design
		ExpiresIn   int64  `json:"expires_in"`
		IssuedAt    string `json:"issued_at"`
	}{token, token, int64(tokenLifetime / time.Second), now.UTC().Format(time.RFC3339)})
	if err != nil {
		http.Error(w, "token encoding failed", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeBody(w, r, http.StatusOK, contentTypeJSON, string(body)+"\n")
}

// loginMatches compares in constant time; anonymous never matches.
func (ts *tokenService) loginMatches(user, pass string) bool {
	if ts.login == nil || user == "" || pass == "" {
		return false
	}
	u := subtle.ConstantTimeCompare([]byte(user), []byte(ts.login.User))
	p := subtle.ConstantTimeCompare([]byte(pass), []byte(ts.login.Password))
	return u&p == 1
}

func (ts *tokenService) issuedTokens() []string {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return append([]string(nil), ts.issued...)
}

// newToken is an opaque random token.
func newToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}
