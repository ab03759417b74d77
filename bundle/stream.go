package bundle

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
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
	// zstdMaxWindow bounds the zstd history buffer, which the decoder
	// holds whole: refdoctor writes 8 MiB windows, as the zstd tool does
	// up to level 19; the ultra levels and --long ask for more, and a
	// hostile frame for gigabytes. 8 MiB keeps validation under 64 MiB.
	zstdMaxWindow = 8 << 20
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
	case len(head) == 4 && head[0]&0xf0 == 0x50 && bytes.Equal(head[1:], []byte{0x2a, 0x4d, 0x18}):
		// A zstd skippable frame first, as pzstd writes its streams.
		return CompressionZstd, nil
	case bytes.HasPrefix(head, gzipMagic):
		return CompressionGzip, nil
	}
	if ustar, _ := br.Peek(262); len(ustar) == 262 && bytes.Equal(ustar[257:262], []byte("ustar")) {
		return "", fmt.Errorf("%w: this is an uncompressed tar; bundles are gzip or zstd compressed", ErrNotBundle)
	}
	return "", fmt.Errorf("%w: the input is neither gzip nor zstd compressed (starts with % x)", ErrNotBundle, head)
}

// decompressor is a bundle's decompressed stream.
type decompressor struct {
	r       io.Reader
	release func()
	// frames walks a zstd stream's frames, to find data hidden in
	// skippable frames (nil for gzip).
	frames *zstdFrames
}

// openDecompressor starts decompressing br. marks, when not nil, records
// where the gzip members start (see memberMarks).
func openDecompressor(br *bufio.Reader, c Compression, marks *memberMarks) (decompressor, error) {
	switch c {
	case CompressionGzip:
		g, err := newGzipMembers(br, marks)
		if err != nil {
			return decompressor{}, err
		}
		return decompressor{r: g, release: func() { _ = g.z.Close() }}, nil
	case CompressionZstd:
		// Concurrency 1 decodes synchronously: the overlap with hashing
		// comes from our own pump, and the decoder's memory stays one
		// window.
		frames := &zstdFrames{r: br}
		zr, err := zstd.NewReader(frames,
			zstd.WithDecoderConcurrency(1),
			zstd.WithDecoderLowmem(true),
			zstd.WithDecoderMaxWindow(zstdMaxWindow),
			zstd.WithDecoderMaxMemory(zstdMaxWindow))
		if err != nil {
			return decompressor{}, err
		}
		return decompressor{r: zr, release: zr.Close, frames: frames}, nil
	}
	return decompressor{}, fmt.Errorf("%w: unknown compression %q", ErrNotBundle, c)
}

// gzipMembers decompresses a gzip stream member by member, as gzip -d
// does. It reads each member's header itself, because Go's gzip readers
// refuse a file name or comment longer than 511 bytes, which gzip and tar
// accept; and it marks a failure in a later member with the offset in the
// decompressed stream where that member began, so that bytes appended
// after a complete archive are told apart from a truncated one.
type gzipMembers struct {
	br     *bufio.Reader
	marks  *memberMarks
	z      *gzip.Reader
	out    int64
	start  int64
	member int
	err    error
}

// laterMemberError is a failure in a gzip member after the first.
type laterMemberError struct {
	start int64 // decompressed bytes before the member began
	err   error
}

func (e *laterMemberError) Error() string {
	return fmt.Sprintf("gzip member starting after %d decompressed bytes: %v", e.start, e.err)
}
func (e *laterMemberError) Unwrap() error { return e.err }

// minimalGzipHeader stands in for a member's header, which gzipMembers
// has read and checked itself.
var minimalGzipHeader = []byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255}

func newGzipMembers(br *bufio.Reader, marks *memberMarks) (*gzipMembers, error) {
	g := &gzipMembers{br: br, marks: marks}
	if err := g.open(); err != nil {
		return nil, err
	}
	return g, nil
}

func (g *gzipMembers) open() error {
	if g.marks != nil {
		g.marks.add(g.marks.consumed()-int64(g.br.Buffered()), g.out)
	}
	if err := readGzipHeader(g.br); err != nil {
		return err
	}
	src := &headerThen{head: minimalGzipHeader, br: g.br}
	if g.z == nil {
		z, err := gzip.NewReader(src)
		if err != nil {
			return err
		}
		g.z = z
	} else if err := g.z.Reset(src); err != nil {
		return err
	}
	g.z.Multistream(false)
	return nil
}

func (g *gzipMembers) Read(p []byte) (int, error) {
	if g.err != nil {
		return 0, g.err
	}
	for {
		n, err := g.z.Read(p)
		g.out += int64(n)
		if err == io.EOF {
			// The member ended, its CRC and size checked. Another?
			if _, perr := g.br.Peek(1); perr != nil {
				g.err = perr
				return n, perr
			}
			g.member++
			g.start = g.out
			if oerr := g.open(); oerr != nil {
				g.err = &laterMemberError{start: g.start, err: oerr}
				return n, g.err
			}
			if n > 0 {
				return n, nil
			}
			continue
		}
		if err != nil {
			if g.member > 0 {
				err = &laterMemberError{start: g.start, err: err}
			}
			g.err = err
		}
		return n, err
	}
}

// memberMarks records where gzip members start, as pairs of offsets: in
// the compressed input and in the decompressed stream. Decompressing from
// a member's compressed offset yields exactly the decompressed stream from
// its decompressed offset on, so a member that starts a tar entry can be
// read again later without inflating what comes before it (import's
// archive readers do; see Report.VerifiedOffset).
//
// The decompressor goroutine adds marks as it opens members and the
// validator takes the one at each entry's header; marks it passes are
// dropped. Only marks on a tar block boundary are kept, one per offset,
// and at most maxMarks at a time: a stream of tiny or empty members costs
// no memory, only seek points.
type memberMarks struct {
	// consumed is how many compressed bytes the buffered reader has
	// taken from the input.
	consumed func() int64

	mu   sync.Mutex
	list []memberMark
	head int
}

type memberMark struct{ comp, out int64 }

// maxMarks bounds the marks held between two entries.
const maxMarks = 4096

func (m *memberMarks) add(comp, out int64) {
	if out%blockSize != 0 {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if n := len(m.list); n > m.head && m.list[n-1].out == out {
		// Members that decompress to nothing before this one: starting
		// here skips them and reads the same stream.
		m.list[n-1].comp = comp
		return
	}
	if len(m.list)-m.head >= maxMarks {
		return
	}
	if m.head > 0 && len(m.list) == cap(m.list) {
		m.list = append(m.list[:0], m.list[m.head:]...)
		m.head = 0
	}
	m.list = append(m.list, memberMark{comp: comp, out: out})
}

// at returns the compressed offset of the member that starts at
// decompressed offset out, if one does, and forgets every mark before it.
// Calls come in increasing out.
func (m *memberMarks) at(out int64) (int64, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for m.head < len(m.list) && m.list[m.head].out < out {
		m.head++
	}
	if m.head == len(m.list) {
		m.list, m.head = m.list[:0], 0
		return 0, false
	}
	if m.list[m.head].out == out {
		return m.list[m.head].comp, true
	}
	return 0, false
}

// headerThen feeds the decompressor a header, then the member's data;
// it is an io.ByteReader, so the decompressor reads exactly the member
// and no further.
type headerThen struct {
	head []byte
	br   *bufio.Reader
}

func (h *headerThen) Read(p []byte) (int, error) {
	if len(h.head) > 0 {
		n := copy(p, h.head)
		h.head = h.head[n:]
		return n, nil
	}
	return h.br.Read(p)
}

func (h *headerThen) ReadByte() (byte, error) {
	if len(h.head) > 0 {
		c := h.head[0]
		h.head = h.head[1:]
		return c, nil
	}
	return h.br.ReadByte()
}

// readGzipHeader reads and checks one member header (RFC 1952 2.3):
// extra field, name and comment of any length, header CRC when flagged.
func readGzipHeader(br *bufio.Reader) error {
	var h [10]byte
	if _, err := io.ReadFull(br, h[:]); err != nil {
		return noEOF(err)
	}
	if h[0] != 0x1f || h[1] != 0x8b || h[2] != 8 || h[3]>>5 != 0 {
		return gzip.ErrHeader
	}
	flg := h[3]
	crc := crc32.NewIEEE()
	crc.Write(h[:])
	if flg&0x04 != 0 { // FEXTRA
		var l [2]byte
		if _, err := io.ReadFull(br, l[:]); err != nil {
			return noEOF(err)
		}
		crc.Write(l[:])
		if _, err := io.CopyN(crc, br, int64(l[0])|int64(l[1])<<8); err != nil {
			return noEOF(err)
		}
	}
	for _, f := range []byte{0x08, 0x10} { // FNAME, FCOMMENT: NUL-terminated
		if flg&f == 0 {
			continue
		}
		for {
			frag, err := br.ReadSlice(0)
			crc.Write(frag)
			if errors.Is(err, bufio.ErrBufferFull) {
				continue
			}
			if err != nil {
				return noEOF(err)
			}
			break
		}
	}
	if flg&0x02 != 0 { // FHCRC
		var c [2]byte
		if _, err := io.ReadFull(br, c[:]); err != nil {
			return noEOF(err)
		}
		if uint16(c[0])|uint16(c[1])<<8 != uint16(crc.Sum32()) {
			return gzip.ErrHeader
		}
	}
	return nil
}

func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// zstdFrames walks the frames of a zstd stream as the decoder reads it,
// without decoding anything. Skippable frames are legal zstd that every
// decoder, and so tar, silently skips: data can hide in them. pzstd puts
// a 4-byte skippable frame before each data frame; any other skippable
// frame is reported as TrailingData.
type zstdFrames struct {
	r io.Reader

	state int
	need  int64 // bytes still wanted in this state
	buf   [8]byte
	have  int
	fhd   byte
	last  bool
	// pending is the size of a skippable frame whose successor is not
	// known yet (-1 when none), pendingAt its offset.
	pending, pendingAt int64
	started            bool
	off                int64

	// hidden counts skippable frames that are not pzstd's, and their
	// bytes; hiddenAt is the file offset of the first.
	hidden, hiddenBytes, hiddenAt int64
	stopped                       bool
}

const (
	zMagic = iota
	zSkipSize
	zSkipData
	zFHD
	zHeaderRest
	zBlockHeader
	zBlockData
	zChecksum
)

func (z *zstdFrames) Read(p []byte) (int, error) {
	n, err := z.r.Read(p)
	if n > 0 && !z.stopped {
		z.walk(p[:n])
	}
	if err == io.EOF && !z.stopped {
		z.endFrame(false)
	}
	return n, err
}

func (z *zstdFrames) walk(p []byte) {
	if !z.started {
		z.started, z.state, z.need, z.pending = true, zMagic, 4, -1
	}
	for len(p) > 0 && !z.stopped {
		switch z.state {
		case zSkipData, zBlockData:
			k := min(int64(len(p)), z.need)
			p, z.need, z.off = p[k:], z.need-k, z.off+k
			if z.need == 0 {
				z.advance()
			}
			continue
		}
		// Fixed-size fields are gathered in buf.
		k := min(len(p), int(z.need)-z.have)
		copy(z.buf[z.have:], p[:k])
		z.have += k
		p, z.off = p[k:], z.off+int64(k)
		if z.have == int(z.need) {
			z.field()
		}
	}
}

// field handles a completed fixed-size field.
func (z *zstdFrames) field() {
	b := z.buf[:z.have]
	z.have = 0
	switch z.state {
	case zMagic:
		m := uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
		switch {
		case m == 0xFD2FB528:
			z.endFrame(true)
			z.state, z.need = zFHD, 1
		case m&0xFFFFFFF0 == 0x184D2A50:
			z.endFrame(false)
			z.state, z.need = zSkipSize, 4
		default:
			z.stopped = true // not zstd: the decoder reports it
		}
	case zSkipSize:
		size := int64(uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24)
		// Remembered until the next frame says whether pzstd wrote it.
		z.pending, z.pendingAt = size, z.off-8
		z.state, z.need = zSkipData, size
		if size == 0 {
			z.advance()
		}
	case zFHD:
		z.fhd = b[0]
		fcs := [4]int64{0, 2, 4, 8}[z.fhd>>6]
		single := z.fhd>>5&1 == 1
		if z.fhd>>6 == 0 && single {
			fcs = 1
		}
		rest := fcs + [4]int64{0, 1, 2, 4}[z.fhd&3]
		if !single {
			rest++
		}
		z.state, z.need = zHeaderRest, rest
		if rest == 0 {
			z.state, z.need = zBlockHeader, 3
		}
	case zHeaderRest:
		z.state, z.need = zBlockHeader, 3
	case zBlockHeader:
		h := uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16
		z.last = h&1 == 1
		size := int64(h >> 3)
		switch (h >> 1) & 3 {
		case 1: // RLE
			size = 1
		case 3:
			z.stopped = true // reserved: the decoder reports it
			return
		}
		z.state, z.need = zBlockData, size
		if size == 0 {
			z.advance()
		}
	case zChecksum:
		z.state, z.need = zMagic, 4
	}
}

// advance moves past a completed variable-size field.
func (z *zstdFrames) advance() {
	switch z.state {
	case zSkipData:
		z.state, z.need = zMagic, 4
	case zBlockData:
		switch {
		case !z.last:
			z.state, z.need = zBlockHeader, 3
		case z.fhd>>2&1 == 1:
			z.state, z.need = zChecksum, 4
		default:
			z.state, z.need = zMagic, 4
		}
	}
}

// endFrame settles the pending skippable frame once the next frame (a
// data frame, or none) is known.
func (z *zstdFrames) endFrame(dataNext bool) {
	if z.pending < 0 {
		return
	}
	if !(dataNext && z.pending == 4) {
		if z.hidden == 0 {
			z.hiddenAt = z.pendingAt
		}
		z.hidden++
		z.hiddenBytes += z.pending
	}
	z.pending = -1
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

// Sniff tells, from its first bytes only, whether the file at path can be
// a bundle: a regular file (or pipe) that is gzip or zstd compressed. It
// reads at most 262 bytes, so a form can check a path before a full
// validation reads the whole bundle.
func Sniff(path string) (Compression, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("open bundle: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("open bundle: %w", err)
	}
	if fi.IsDir() {
		return "", fmt.Errorf("%w: %s is a folder; give the bundle file (.tgz or .tar.zst) inside it", ErrNotBundle, path)
	}
	if !fi.Mode().IsRegular() && fi.Mode()&os.ModeNamedPipe == 0 {
		return "", fmt.Errorf("%w: %s is not a regular file", ErrNotBundle, path)
	}
	return detectCompression(bufio.NewReaderSize(io.LimitReader(f, 262), 262))
}
