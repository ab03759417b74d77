package registry

import (
	"net/http"
	"strings"
	"testing"
)

// TestRequestHeadersHideCredentials: the recorded request headers say what
// was asked and that credentials were sent, never the credentials.
func TestRequestHeadersHideCredentials(t *testing.T) {
	req, err := http.NewRequest(http.MethodGet, "https://registry.example.com/v2/app/referrers/sha256:ab", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "application/vnd.oci.image.index.v1+json")
	req.Header.Set("Authorization", "Bearer s3cr3t-token")
	req.Header.Set("Cookie", "session=s3cr3t-cookie")
	h := requestHeaders(req)
	if h["Accept"] != "application/vnd.oci.image.index.v1+json" {
		t.Errorf("Accept = %q", h["Accept"])
	}
	if h["Authorization"] != "Bearer (credentials not shown)" {
		t.Errorf("Authorization = %q", h["Authorization"])
	}
	for k, v := range h {
		if strings.Contains(v, "s3cr3t") {
			t.Errorf("header %s leaks a secret: %q", k, v)
		}
	}
	if _, ok := h["Cookie"]; ok {
		t.Error("the cookie was recorded")
	}
}
