package registry_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/refdoctor/refdoctor/config"
	"github.com/refdoctor/refdoctor/registry"
	"github.com/regclient/regclient/types/ref"
)

func TestRecorderKeepsNoSecrets(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Set-Cookie", "session=cookie-secret")
		w.Header().Set("Content-Type", "application/json")
		if strings.HasPrefix(r.URL.Path, "/token") {
			io.WriteString(w, `{"token":"token-secret"}`)
			return
		}
		io.WriteString(w, `{"tags":[]}`)
	}))
	defer srv.Close()
	rec := registry.NewRecorder(nil)
	var watched []string
	ctx := registry.WithWatcher(context.Background(), func(ex registry.Exchange) { watched = append(watched, ex.Path) })
	hc := &http.Client{Transport: rec}
	for _, u := range []string{
		strings.Replace(srv.URL, "http://", "http://user:password-secret@", 1) + "/token?scope=repository:x:pull&password=query-secret",
		srv.URL + "/v2/demo/tags/list",
	} {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		req.Header.Set("Authorization", "Bearer header-secret")
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if len(body) == 0 {
			t.Fatal("the client got no body after recording")
		}
	}
	exs := rec.Exchanges()
	if len(exs) != 2 || len(watched) != 2 {
		t.Fatalf("recorded %d, watched %d", len(exs), len(watched))
	}
	for _, ex := range exs {
		all := ex.URL + string(ex.Body) + ex.ContentType
		for k, v := range ex.Headers {
			all += k + v
		}
		for _, secret := range []string{"password-secret", "query-secret", "header-secret", "cookie-secret", "token-secret"} {
			if strings.Contains(all, secret) {
				t.Errorf("exchange %s keeps %s", ex.Path, secret)
			}
		}
	}
	if string(exs[1].Body) != `{"tags":[]}` || exs[1].Status != 200 {
		t.Errorf("tag list body not captured: %q", exs[1].Body)
	}
	if exs[0].Body != nil {
		t.Error("a token reply body was captured")
	}
}

// TestClientRecorderForgets: a client's own recorder passes exchanges to
// watchers but keeps none, so a long export does not hold every reply.
func TestClientRecorderForgets(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{}`)
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	cfg := config.Defaults()
	cfg.Registries = []config.Registry{{Host: host, PlainHTTP: true}}
	c, err := registry.New(cfg, registry.WithoutDockerCreds())
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	ctx := registry.WithWatcher(context.Background(), func(registry.Exchange) { seen++ })
	r, _ := ref.NewHost(host)
	if _, err := c.Ping(ctx, r); err != nil {
		t.Fatal(err)
	}
	if seen == 0 || c.Recorder.Len() != 0 {
		t.Fatalf("watcher saw %d, recorder kept %d", seen, c.Recorder.Len())
	}
}
