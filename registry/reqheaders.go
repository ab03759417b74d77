package registry

import (
	"net/http"
	"strings"
)

// recordedRequestHeaders are the request headers worth showing: what the
// client asked for and how. None carries a secret.
var recordedRequestHeaders = []string{"Accept", "User-Agent", "Range", "If-None-Match", "Content-Type", "Docker-Distribution-API-Version"}

// requestHeaders keeps the request headers worth showing. Of an
// Authorization header only the scheme is kept (Bearer, Basic), so that
// the operator sees that credentials were sent, never what they were.
func requestHeaders(req *http.Request) map[string]string {
	out := map[string]string{}
	for _, h := range recordedRequestHeaders {
		if vs := req.Header.Values(h); len(vs) > 0 {
			out[h] = strings.Join(vs, ", ")
		}
	}
	if a := req.Header.Get("Authorization"); a != "" {
		scheme, _, _ := strings.Cut(a, " ")
		out["Authorization"] = scheme + " (credentials not shown)"
	}
	if len(out) == 0 {
		return nil
	}
	return out
}
