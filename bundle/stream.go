package bundle

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"sync"
	"sync/atomic"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// Stream tuning. The ring holds pumpBuffers chunks of pumpChunk bytes
// between the decompressor goroutine and the hashing goroutine: enough for
// one side never to wait on the other for long, small enough for memory
// to stay a few MiB whatever the bundle's size.
const (
	inputBuffer = 256 << 10
	pumpChunk   = 1 << 20
	pumpBuffers = 4
	copyBuffer  = 256 << 10
	// zstdMaxWindow bounds the zstd history buffer; refdoctor writes 8 MiB
	// windows, and a hostile frame asking for gigabytes is refused.
	zstdMaxWindow = 32 << 20
)

var (
	gzipMagic = []byte{0x1f, 0x8b}
	zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}
)

// sourceError marks a failure of the caller's reader (a disk error, a
// closed pipe): the tool could not read, which is not the bundle's fault.
type sourceError struct{ err error }

func (e *sourceError) Error() string { return "read bundle: " + e.err.Error() }
func (e *sourceError) Unwrap() error { return e.err }

// countingReader counts compressed bytes for progress and for the
// expansion-ratio bomb check; the decompressor goroutine writes the count
// and the validator reads it, hence the atomic.
type countingReader struct {
	r io.Reader
	n atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	if err != nil && err != io.EOF {
		err = &sourceError{err}
	}
	return n, err
}

// detectCompression looks at magic bytes only: operators rename files, and
// a ".tgz" that is really zstd must still be read.
func detectCompression(br *bufio.Reader) (Compression, error) {
	head, err := br.Peek(4)
	if len(head) == 0 {
		if err != nil && err != io.EOF {
			return "", &sourceError{err}
		}
		return "", fmt.Errorf("%w: the input is empty", ErrNotBundle)
	}
	switch {
	case bytes.HasPrefix(head, zstdMagic):
		return CompressionZstd, nil
	case bytes.HasPrefix(head, gzipMagic):
		return CompressionGzip, nil
	}
	if ustar, _ := br.Peek(262); len(ustar) == 262 && bytes.Equal(ustar[257:262], []byte("ustar")) {
		return "", fmt.Errorf("%w: this is an uncompressed tar; bundles are gzip or zstd compressed", ErrNotBundle)
	}
	return "", fmt.Errorf("%w: the input is neither gzip nor zstd compressed (starts with % x)", ErrNotBundle, head)
}

// openDecompressor returns the decompressed stream and a function that
// releases the decoder.
func openDecompressor(br *bufio.Reader, c Compression) (io.Reader, func(), error) {
	switch c {
	case CompressionGzip:
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, nil, err
		}
		return zr, func() { _ = zr.Close() }, nil
	case CompressionZstd:
		// Concurrency 1 decodes synchronously: the overlap with hashing
		// comes from our own pump, and the decoder's memory stays one
		// window.
		zr, err := zstd.NewReader(br,
			zstd.WithDecoderConcurrency(1),
			zstd.WithDecoderLowmem(true),
			zstd.WithDecoderMaxWindow(zstdMaxWindow),
			zstd.WithDecoderMaxMemory(zstdMaxWindow))
		if err != nil {
			return nil, nil, err
		}
		return zr, zr.Close, nil
	}
	return nil, nil, fmt.Errorf("%w: unknown compression %q", ErrNotBundle, c)
}

// pump runs the decompressor on its own goroutine and hands filled chunks
// to the reading side through a bounded ring, so that inflating and
// hashing proceed on two cores at once with memory fixed at
// pumpBuffers*pumpChunk.
type pump struct {
	ctx      context.Context
	free     chan []byte
	full     chan pumpChunkMsg
	done     chan struct{}
	finished chan struct{}
	cur      pumpChunkMsg
	off      int
	stopped  atomic.Bool
	// all is every buffer the producer took from chunkPool; only the
	// producer touches it until finished is closed.
	all [][]byte
}

type pumpChunkMsg struct {
	data []byte
	err  error
}

// chunkPool recycles pump buffers across validations: a service or a fuzz
// loop validating many small bundles should not allocate megabytes each
// time.
var chunkPool = sync.Pool{New: func() any {
	b := make([]byte, pumpChunk)
	return &b
}}

// startPump takes ownership of src: release is called on the pump's own
// goroutine once it stops reading, so that a decoder is never closed under
// a Read still running (which happens when a canceled validation returns
// without waiting).
func startPump(ctx context.Context, src io.Reader, release func()) *pump {
	p := &pump{
		ctx:      ctx,
		free:     make(chan []byte, pumpBuffers),
		full:     make(chan pumpChunkMsg, pumpBuffers),
		done:     make(chan struct{}),
		finished: make(chan struct{}),
	}
	go p.run(src, release)
	return p
}

// buffer returns a free buffer, taking a new one from the pool only while
// fewer than pumpBuffers are in use: a small bundle never needs the whole
// ring.
func (p *pump) buffer() ([]byte, bool) {
	select {
	case b := <-p.free:
		return b, true
	default:
	}
	if len(p.all) < pumpBuffers {
		b := *chunkPool.Get().(*[]byte)
		p.all = append(p.all, b)
		return b, true
	}
	select {
	case b := <-p.free:
		return b, true
	case <-p.done:
		return nil, false
	}
}

func (p *pump) run(src io.Reader, release func()) {
	defer close(p.finished)
	defer release()
	defer func() {
		// A panic in a decoder must not take the process down: it becomes
		// a read error on the consuming side.
		if r := recover(); r != nil {
			err := fmt.Errorf("decompressor panicked: %v\n%s", r, debug.Stack())
			select {
			case p.full <- pumpChunkMsg{err: err}:
			case <-p.done:
			}
		}
	}()
	for {
		buf, ok := p.buffer()
		if !ok {
			return
		}
		n, err := fill(src, buf)
		select {
		case p.full <- pumpChunkMsg{data: buf[:n], err: err}:
		case <-p.done:
			return
		}
		if err != nil {
			return
		}
	}
}

// fill reads until buf is full or src fails; unlike io.ReadFull it passes
// the decoder's own error through untouched, so that a truncated stream
// stays distinguishable from a clean end.
func fill(src io.Reader, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := src.Read(buf[n:])
		n += m
		if err != nil {
			return n, err
		}
		if m == 0 {
			// A reader that returns 0, nil forever would spin; give the
			// consumer what there is and come back.
			return n, nil
		}
	}
	return n, nil
}

func (p *pump) Read(b []byte) (int, error) {
	for p.off == len(p.cur.data) {
		if p.cur.err != nil {
			return 0, p.cur.err
		}
		if p.cur.data != nil {
			p.free <- p.cur.data[:cap(p.cur.data)]
		}
		select {
		case c := <-p.full:
			p.cur, p.off = c, 0
		case <-p.ctx.Done():
			p.cur = pumpChunkMsg{err: p.ctx.Err()}
			return 0, p.cur.err
		}
	}
	n := copy(b, p.cur.data[p.off:])
	p.off += n
	return n, nil
}

// stop ends the decompressor goroutine. It waits for it unless the context
// is canceled: a caller's reader that blocks forever must not hang a
// canceled validation; that goroutine then ends at its next Read, and its
// buffers are left to the garbage collector rather than recycled under it.
func (p *pump) stop() {
	if p.stopped.Swap(true) {
		return
	}
	close(p.done)
	if p.ctx.Err() != nil {
		return
	}
	<-p.finished
	for _, b := range p.all {
		chunkPool.Put(&b)
	}
	p.all = nil
}

// meter counts decompressed bytes and enforces the expansion budget on
// every read, so a bomb is stopped by the byte that crosses the line.
type meter struct {
	r     io.Reader
	n     int64
	check func(n int64) error
	err   error
}

func (m *meter) Read(p []byte) (int, error) {
	if m.err != nil {
		return 0, m.err
	}
	n, err := m.r.Read(p)
	m.n += int64(n)
	if n > 0 && m.check != nil {
		if cerr := m.check(m.n); cerr != nil {
			m.err = cerr
			return n, cerr
		}
	}
	return n, err
}

// bombError is how the meter stops a read.
type bombError struct {
	expected, actual string
	why              string
}

func (e *bombError) Error() string {
	return fmt.Sprintf("decompression bomb: %s (expected %s, got %s)", e.why, e.expected, e.actual)
}

func budgetBomb(limit int64, why string) *bombError {
	return &bombError{expected: fmt.Sprintf("at most %d bytes decompressed", limit),
		actual: fmt.Sprintf("more than %d", limit), why: why}
}

func ratioBomb(ratio, decompressed, compressed int64, why string) *bombError {
	return &bombError{expected: fmt.Sprintf("at most %d:1 expansion", ratio),
		actual: fmt.Sprintf("%d bytes from %d compressed", decompressed, compressed), why: why}
}

// isBomb reports whether err is the meter stopping a decompression bomb.
func isBomb(err error) (*bombError, bool) {
	var b *bombError
	ok := errors.As(err, &b)
	return b, ok
}
