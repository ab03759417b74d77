package mirror

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/refdoctor/refdoctor/bundle"
)

// importSpill keeps a copy of every blob validation hashes, in a private
// temporary directory (mode 0700 under TMPDIR), so that import uploads
// the blobs from plain files, which the kernel sends without copying,
// instead of inflating the archive a second time. The copies are written
// on a goroutine of their own while validation goes on, through
// spillBuffers buffers of spillBufferSize bytes (the memory bound), and
// only up to the room the directory's file system has to spare
// (spillRoom) and spillMaxFiles files: a blob that does not fit is read
// from the archive again.
// A copy is used only for a blob validation verified and the plan
// pushes, only if it holds the blob's whole size and its member was seen
// once; the registry checks every digest as it commits the upload. The
// directory is removed when the import ends.
type importSpill struct {
	dir  string
	room int64 // bytes it may still write

	free chan []byte
	work chan spillWork
	wg   sync.WaitGroup

	// Used only on the validating goroutine, then read after close.
	files  map[string]*spillFile // member path -> its copy
	cur    *spillFile
	buf    []byte
	closed bool
}

const (
	spillBuffers    = 4
	spillBufferSize = 1 << 20
	// spillMaxFiles bounds the copies (files, and their entries in
	// memory) however many members a bundle has; the blobs past it are
	// read from the archive again.
	spillMaxFiles = 20_000
)

// spillFile is the copy of one member. queued is set on the validating
// goroutine; written, err and f by the writer; both are read after close.
type spillFile struct {
	name    string
	size    int64
	queued  int64
	written int64
	dup     bool
	err     error
	f       *os.File
}

type spillWork struct {
	f   *spillFile
	b   []byte
	end bool // close the file after b
}

// newImportSpill makes the directory; room <= 0 means no copies.
func newImportSpill(room int64) (*importSpill, error) {
	if room <= 0 {
		return nil, nil
	}
	dir, err := os.MkdirTemp("", "refdoctor-import-")
	if err != nil {
		return nil, err
	}
	s := &importSpill{dir: dir, room: room, free: make(chan []byte, spillBuffers), work: make(chan spillWork, spillBuffers),
		files: map[string]*spillFile{}}
	for range spillBuffers {
		s.free <- make([]byte, 0, spillBufferSize)
	}
	s.wg.Go(s.writer)
	return s, nil
}

// open is bundle.WithMemberCopies' callback: a writer for the blob
// members that fit in the room left, nil for anything else.
func (s *importSpill) open(path string, size int64) io.Writer {
	s.endMember()
	if !strings.HasPrefix(path, bundle.BlobsDir) {
		return nil
	}
	if f, seen := s.files[path]; seen {
		f.dup = true // a second member of the same name: use neither
		return nil
	}
	if size > s.room || len(s.files) >= spillMaxFiles {
		return nil
	}
	s.room -= size
	s.cur = &spillFile{name: filepath.Join(s.dir, strconv.Itoa(len(s.files))), size: size}
	s.files[path] = s.cur
	return spillWriter{s}
}

type spillWriter struct{ s *importSpill }

func (w spillWriter) Write(p []byte) (int, error) {
	s := w.s
	f := s.cur
	if f == nil || f.queued+int64(len(p)) > f.size {
		return 0, fmt.Errorf("spill: more bytes than the member's size")
	}
	n := len(p)
	for len(p) > 0 {
		if s.buf == nil {
			s.buf = <-s.free
		}
		k := copy(s.buf[len(s.buf):cap(s.buf)], p)
		s.buf = s.buf[:len(s.buf)+k]
		p = p[k:]
		if len(s.buf) == cap(s.buf) {
			s.work <- spillWork{f: f, b: s.buf}
			s.buf = nil
		}
	}
	f.queued += int64(n)
	return n, nil
}

// endMember hands over what is buffered of the current member and has
// its file closed.
func (s *importSpill) endMember() {
	if s.cur == nil {
		return
	}
	b := s.buf
	if b == nil {
		b = <-s.free
	}
	s.work <- spillWork{f: s.cur, b: b, end: true}
	s.cur, s.buf = nil, nil
}

func (s *importSpill) writer() {
	for w := range s.work {
		f := w.f
		if f.err == nil && f.f == nil && (len(w.b) > 0 || (w.end && f.written == 0)) {
			f.f, f.err = os.OpenFile(f.name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		}
		if f.err == nil && f.f != nil && len(w.b) > 0 {
			n, err := f.f.Write(w.b)
			f.written += int64(n)
			f.err = err
		}
		if w.end && f.f != nil {
			if err := f.f.Close(); err != nil && f.err == nil {
				f.err = err
			}
			f.f = nil
		}
		s.free <- w.b[:0]
	}
}

// close waits for every copy to be written; validation has returned.
func (s *importSpill) close() {
	if s == nil || s.closed {
		return
	}
	s.closed = true
	s.endMember()
	close(s.work)
	s.wg.Wait()
}

// file is the copy of member path when it holds exactly size bytes.
func (s *importSpill) file(path string, size int64) (string, bool) {
	if s == nil || !s.closed {
		return "", false
	}
	f, ok := s.files[path]
	if !ok || f.dup || f.err != nil || f.queued != size || f.written != size {
		return "", false
	}
	return f.name, true
}

// remove deletes the directory and everything in it.
func (s *importSpill) remove() {
	if s == nil {
		return
	}
	s.close()
	_ = os.RemoveAll(s.dir)
}
