package registry

import (
	"io"
	"net/http"
	"os"
	"reflect"
	"slices"
)

// FileBody is an upload read from a file (bundle import's copies of the
// blobs it validated). regclient wraps every request body in io.NopCloser,
// which net/http does not look through for a file; refdoctor's transport
// hands a FileBody to net/http as it is, so that the kernel sends it
// (sendfile) instead of copying it through user space. Close leaves the
// file open: its owner closes it.
type FileBody struct{ *os.File }

// Close does nothing; the caller that opened the file closes it.
func (FileBody) Close() error { return nil }

var nopCloserTypes = []reflect.Type{
	reflect.TypeOf(io.NopCloser(nil)),
	reflect.TypeOf(io.NopCloser(struct {
		io.Reader
		io.WriterTo
	}{})),
}

// unwrapFileBody returns req with a FileBody body that io.NopCloser
// wrapped unwrapped, else req unchanged.
func unwrapFileBody(req *http.Request) *http.Request {
	if req.Body == nil || !slices.Contains(nopCloserTypes, reflect.TypeOf(req.Body)) {
		return req
	}
	fb, ok := reflect.ValueOf(req.Body).Field(0).Interface().(FileBody)
	if !ok {
		return req
	}
	out := req.Clone(req.Context())
	out.Body = fb
	return out
}
