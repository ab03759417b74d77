package registry

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestFileBodyReachesNetHTTPUnwrapped: a FileBody that regclient wrapped
// in io.NopCloser goes to net/http as the FileBody itself (which lets the
// kernel send the file), the server receives exactly the file's bytes,
// and the file stays open for its owner; any other body is left as it is.
func TestFileBodyReachesNetHTTPUnwrapped(t *testing.T) {
	t.Parallel()
	want := bytes.Repeat([]byte("refdoctor blob "), 1<<14)
	path := filepath.Join(t.TempDir(), "blob")
	if err := os.WriteFile(path, want, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()

	var got []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, _ = io.ReadAll(r.Body)
		w.WriteHeader(http.StatusCreated)
	}))
	defer srv.Close()
	rec := NewRecorder(http.DefaultTransport)
	req, _ := http.NewRequest(http.MethodPut, srv.URL+"/v2/r/blobs/uploads/x", nil)
	req.Body, req.ContentLength = io.NopCloser(FileBody{File: f}), int64(len(want))
	if _, isFile := unwrapFileBody(req).Body.(FileBody); !isFile {
		t.Fatalf("the transport gets %T, want the FileBody itself", unwrapFileBody(req).Body)
	}
	resp, err := rec.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if !bytes.Equal(got, want) {
		t.Errorf("the registry received %d bytes, want the file's %d", len(got), len(want))
	}
	if _, err := f.Stat(); err != nil {
		t.Errorf("the upload closed its owner's file: %v", err)
	}

	other, _ := http.NewRequest(http.MethodPut, srv.URL, io.NopCloser(strings.NewReader("x")))
	if unwrapFileBody(other) != other {
		t.Error("a body that is not a FileBody was replaced")
	}
}
