// Package syncbuf is a buffer that several goroutines may write while
// another reads it: the log of a run that logs from many goroutines, as
// refdoctor's tests capture it.
package syncbuf

import (
	"strings"
	"sync"
)

// Buffer collects what is written to it; the zero value is ready.
type Buffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String is what was written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
