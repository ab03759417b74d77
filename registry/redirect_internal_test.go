package registry

import (
	"errors"
	"net/http"
	"testing"
)

// TestCheckRedirect: a redirect keeps the first request's Authorization
// only on the same host and port; another port or name is another host
// (Go alone drops it only for another name). The eleventh redirect ends
// the request.
func TestCheckRedirect(t *testing.T) {
	t.Parallel()
	first, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1:5000/v2/app/referrers/sha256:abc", nil)
	first.Header.Set("Authorization", "Bearer registry-token")
	for _, tc := range []struct {
		to   string
		keep bool
	}{
		{"http://127.0.0.1:5000/relocated/v2/app/referrers/sha256:abc", true},
		{"http://127.0.0.1:5001/v2/app/referrers/sha256:abc", false},
		{"http://localhost:5000/v2/app/referrers/sha256:abc", false},
		{"http://cdn.example.com/blob?sig=x", false},
	} {
		next, _ := http.NewRequest(http.MethodGet, tc.to, nil)
		next.Header = first.Header.Clone() // as Go's client copies it
		if err := checkRedirect(next, []*http.Request{first}); err != nil {
			t.Fatal(err)
		}
		if got := next.Header.Get("Authorization") != ""; got != tc.keep {
			t.Errorf("redirect to %s: Authorization kept %v, want %v", tc.to, got, tc.keep)
		}
	}
	// A credential the new host asked for itself (set by regclient for
	// that host) is not the first request's and stays.
	own, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1:5001/v2/app/referrers/sha256:abc", nil)
	own.Header.Set("Authorization", "Bearer cdn-token")
	if err := checkRedirect(own, []*http.Request{first}); err != nil || own.Header.Get("Authorization") != "Bearer cdn-token" {
		t.Errorf("the new host's own credential was dropped: %v", err)
	}
	via := make([]*http.Request, MaxRedirects)
	for i := range via {
		via[i] = first
	}
	next, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1:5000/again", nil)
	if err := checkRedirect(next, via); !errors.Is(err, ErrTooManyRedirects) {
		t.Errorf("after %d redirects: %v", MaxRedirects, err)
	}
}
