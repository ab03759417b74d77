package mirror

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"sync"
	"sync/atomic"

	"github.com/refdoctor/refdoctor/registry"
)

// How an export reads ahead. The bundle's tar stream is written strictly
// in member order, while the next blobs download concurrently: the blob
// being written and up to concurrency-1 after it (--concurrency). What
// they download waits in memory, in 4 MiB chunks. ExportReadAheadBytes
// bounds all of export's buffers for blob and output bytes together:
// the output (exportSinkBytes, hashed and written on goroutines of their
// own), a window for the blob being written (exportStreamWindow), and
// the rest (aheadBudget) for the downloads ahead of the writer.
//
// A download never waits for the writer while it holds a connection
// except the one the writer is taking: regclient allows three requests
// per registry at a time, and downloads that sat on them waiting for
// budget would keep the writer's own blob from starting. So a blob ahead
// of the writer starts only with its whole size reserved from the budget
// (then it never waits), or, when it is larger than what is free, with
// spillLarge as an unlinked temporary file next to the output (disk, not
// memory: at most concurrency-1 blobs), or else once the writer reaches
// it, streaming through the window. Memory is thus bounded whatever the
// image size.
const (
	ExportReadAheadBytes = 64 << 20
	exportChunk          = 4 << 20
	exportSinkBytes      = sinkBuffers * exportChunk
	exportStreamWindow   = 2 * exportChunk
	aheadBudget          = ExportReadAheadBytes - exportSinkBytes - exportStreamWindow
	// exportSpillLarge: blobs ahead larger than the free budget wait for
	// the writer rather than going to disk. With bench/run.sh's 600 MiB
	// image (six 100 MiB layers) on two cores, three bench runs of each
	// (5-7 paired runs apiece), export took 1.23-1.32x regctl's time
	// spilling them and 1.00-1.04x waiting: the extra write and read
	// cost more than the overlap brought.
	exportSpillLarge = false
)

// chunks recycles full-size download chunks between the downloads and the
// writer, so that streaming gigabytes allocates a handful of buffers.
var chunks = sync.Pool{New: func() any { b := make([]byte, exportChunk); return &b }}

// memChunk is downloaded bytes waiting for the writer; budgeted says
// whether they count against the read-ahead budget (or the window of the
// blob being written).
type memChunk struct {
	b        []byte
	budgeted bool
}

// grant is how reserve made room for the next chunk of a download.
type grant int

const (
	grantBudget grant = iota // from the read-ahead budget (or the blob's reservation)
	grantWindow              // over budget, within the window of the blob being written
	grantSpill               // to the spill file
)

// readAhead downloads the blobs of an export, in the order the writer
// takes them. One mutex guards it and all its spools.
type readAhead struct {
	ctx         context.Context
	cancel      context.CancelCauseFunc
	c           *registry.Client
	blobs       []exportBlob
	concurrency int
	spillDir    string
	window      int64
	spillLarge  bool

	mu       sync.Mutex
	moved    *sync.Cond // the writer moved on, a download started, budget was freed
	budget   int64      // read-ahead bytes still free
	inMemory int64      // blob bytes held in memory (reserved or over budget)
	head     int        // the blob the writer takes next or is writing
	started  int        // blobs whose download has started
	spools   []*spool
	wg       sync.WaitGroup
	stats    readAheadStats
}

// readAheadLimits are the bounds of one export's read-ahead; tests shrink
// them to reach every path with small blobs.
type readAheadLimits struct {
	budget     int64 // aheadBudget
	window     int64 // exportStreamWindow
	spillLarge bool  // spill blobs ahead that do not fit in the budget
}

func defaultReadAheadLimits() readAheadLimits {
	return readAheadLimits{budget: aheadBudget, window: exportStreamWindow, spillLarge: exportSpillLarge}
}

// readAheadStats says which paths an export took.
type readAheadStats struct {
	spilled     int64 // bytes written to spill files
	overBudget  int64 // bytes the blob being written took beyond the budget
	waited      int   // blobs ahead too large for the budget that waited for the writer
	maxInMemory int64 // most blob bytes held in memory at once
}

// spool holds one blob between its download and the tar writer.
type spool struct {
	ra    *readAhead
	size  int64
	data  *sync.Cond // on ra.mu: bytes arrived or the download ended (the writer waits)
	space *sync.Cond // on ra.mu: the writer took bytes (the download of the blob being written waits)
	full  bool       // the download waits on space
	empty bool       // the writer waits on data

	head     bool       // the writer is on this blob
	chunks   []memChunk // unread chunks, in order
	buffered int64      // unread bytes in chunks
	held     int64      // read-ahead budget the unread chunks hold
	prepaid  int64      // budget reserved for bytes not read yet
	spilling bool       // the rest of the blob goes to file
	file     *os.File
	fileW    int64 // bytes written to file
	fileR    int64 // bytes taken from file
	done     bool  // the download ended (err says how)
	err      error
	closed   bool
}

func newReadAhead(ctx context.Context, c *registry.Client, blobs []exportBlob, concurrency int, spillDir string, lim readAheadLimits) *readAhead {
	ctx, cancel := context.WithCancelCause(ctx)
	ra := &readAhead{ctx: ctx, cancel: cancel, c: c, blobs: blobs, concurrency: max(1, concurrency),
		spillDir: spillDir, window: lim.window, spillLarge: lim.spillLarge, budget: lim.budget, spools: make([]*spool, len(blobs))}
	ra.moved = sync.NewCond(&ra.mu)
	// A stopped export wakes every waiter, so that nothing waits for a
	// download that will never finish.
	context.AfterFunc(ctx, func() {
		ra.mu.Lock()
		defer ra.mu.Unlock()
		ra.moved.Broadcast()
		for _, sp := range ra.spools {
			if sp != nil {
				sp.data.Broadcast()
				sp.space.Broadcast()
			}
		}
	})
	ra.wg.Go(ra.schedule)
	return ra
}

// schedule starts downloads in write order, at most concurrency blobs
// from the writer's position on. A blob ahead of the writer starts with
// its whole size reserved, or spilling, or waits until the writer
// reaches it (see ExportReadAheadBytes).
func (ra *readAhead) schedule() {
	for i, b := range ra.blobs {
		ra.mu.Lock()
		sp := &spool{ra: ra, size: b.desc.Size}
		sp.data, sp.space = sync.NewCond(&ra.mu), sync.NewCond(&ra.mu)
		// The last read asks for one byte more than the blob, to see EOF.
		need := b.desc.Size + 1
		waited := false
		for ra.ctx.Err() == nil {
			switch {
			case i >= ra.head+ra.concurrency:
			case i == ra.head:
				sp.head = true
			case need <= ra.budget:
				ra.budget -= need
				sp.prepaid = need
				ra.noteMemory(need)
			case ra.spillLarge:
				sp.spilling = true
			default:
				if !waited {
					waited = true
					ra.stats.waited++
				}
				ra.moved.Wait()
				continue
			}
			if i < ra.head+ra.concurrency {
				break
			}
			ra.moved.Wait()
		}
		if ra.ctx.Err() != nil {
			ra.mu.Unlock()
			return
		}
		ra.spools[i] = sp
		ra.started = i + 1
		ra.moved.Broadcast()
		ra.mu.Unlock()
		ra.wg.Go(func() { sp.fetch(ra.ctx, b) })
	}
}

// take returns blob i's spool once its download has started; the writer
// calls it in order, each after the previous blob is written.
func (ra *readAhead) take(i int) (*spool, error) {
	ra.mu.Lock()
	defer ra.mu.Unlock()
	ra.head = i
	if sp := ra.spools[i]; sp != nil {
		sp.head = true
	}
	ra.moved.Broadcast()
	for ra.started <= i && ra.ctx.Err() == nil {
		ra.moved.Wait()
	}
	if err := context.Cause(ra.ctx); err != nil {
		return nil, err
	}
	return ra.spools[i], nil
}

// close stops every download, waits for them and frees what they hold.
func (ra *readAhead) close() {
	ra.cancel(errors.New("export finished"))
	ra.wg.Wait()
	for _, sp := range ra.spools {
		if sp != nil {
			sp.release()
		}
	}
}

// fetch downloads b into the spool. regclient's blob reader checks the
// size and the digest when it reaches the end of the body, so the blob is
// read to EOF and a mismatch there fails the spool: every byte is hashed
// once, here, and the writer never finishes a member it cannot trust.
func (sp *spool) fetch(ctx context.Context, b exportBlob) {
	err := func() error {
		rdr, err := sp.ra.c.BlobGet(ctx, b.repo, b.desc)
		if err != nil {
			return fmt.Errorf("fetch blob %s: %w", b.desc.Digest, err)
		}
		defer rdr.Close()
		var got int64
		var spillBuf []byte
		for {
			// The last chunk is one byte longer than what is left, so
			// that the read reaching EOF (and regclient's check) lands in
			// it.
			want := min(exportChunk, max(b.desc.Size-got, 0)+1)
			g, err := sp.reserve(ctx, int64(want))
			if err != nil {
				return err
			}
			var buf []byte
			switch {
			case g == grantSpill:
				if spillBuf == nil {
					spillBuf = make([]byte, exportChunk)
				}
				buf = spillBuf[:want]
			case want == exportChunk:
				buf = *chunks.Get().(*[]byte)
			default:
				buf = make([]byte, want)
			}
			n, rerr := readChunk(rdr, buf)
			got += int64(n)
			if got > b.desc.Size {
				sp.unreserve(g, int64(want))
				return fmt.Errorf("blob %s: the registry served more than the %d bytes listed; refusing to write a corrupt bundle", b.desc.Digest, b.desc.Size)
			}
			if err := sp.push(g, buf[:n], int64(want)); err != nil {
				return err
			}
			if rerr == io.EOF {
				break
			}
			if rerr != nil {
				return fmt.Errorf("blob %s: %w; refusing to write a corrupt bundle", b.desc.Digest, rerr)
			}
		}
		if got != b.desc.Size {
			return fmt.Errorf("blob %s: the registry served %d of %d bytes; refusing to write a corrupt bundle", b.desc.Digest, got, b.desc.Size)
		}
		return nil
	}()
	sp.ra.mu.Lock()
	sp.done, sp.err = true, err
	sp.data.Broadcast()
	sp.ra.mu.Unlock()
	if err != nil {
		sp.ra.cancel(err)
	}
}

// readChunk fills buf from r or stops at the first error, which it returns
// unchanged: io.EOF exactly means a clean end, anything else (regclient's
// digest or size mismatch wraps io.EOF) is a failure.
func readChunk(r io.Reader, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := r.Read(buf[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// reserve makes room for the next n bytes before they are read: from
// the blob's reservation, or, for the blob being written, from the budget
// when it has room, else within the window, waiting only for the writer.
func (sp *spool) reserve(ctx context.Context, n int64) (grant, error) {
	ra := sp.ra
	ra.mu.Lock()
	defer ra.mu.Unlock()
	for {
		if err := context.Cause(ctx); err != nil {
			return grantSpill, err
		}
		switch {
		case sp.spilling:
			return grantSpill, nil
		case sp.prepaid >= n:
			sp.prepaid -= n
			sp.held += n
			return grantBudget, nil
		case ra.budget >= n:
			ra.budget -= n
			sp.held += n
			ra.noteMemory(n)
			return grantBudget, nil
		case sp.buffered == sp.held || sp.buffered-sp.held+n <= ra.window:
			// Over budget, but only the blob being written gets here
			// (the others have their reservation), and the writer takes
			// its bytes as fast as it writes; it may always hold one
			// chunk.
			ra.stats.overBudget += n
			ra.noteMemory(n)
			return grantWindow, nil
		}
		sp.full = true
		sp.space.Wait()
		sp.full = false
	}
}

// noteMemory records n more bytes held in memory; ra.mu is held.
func (ra *readAhead) noteMemory(n int64) {
	ra.inMemory += n
	ra.stats.maxInMemory = max(ra.stats.maxInMemory, ra.inMemory)
}

// unreserve gives back a reservation that was not used.
func (sp *spool) unreserve(g grant, n int64) {
	if g == grantSpill {
		return
	}
	sp.ra.mu.Lock()
	defer sp.ra.mu.Unlock()
	if g == grantBudget {
		sp.giveBack(n)
	}
	sp.ra.inMemory -= n
}

// giveBack returns n bytes of budget the spool holds; ra.mu is held.
func (sp *spool) giveBack(n int64) {
	if n <= 0 {
		return
	}
	sp.held -= n
	sp.ra.budget += n
	sp.ra.moved.Broadcast() // a blob waiting for room may fit now
}

// push hands over the bytes read into p, for which want bytes were
// reserved.
func (sp *spool) push(g grant, p []byte, want int64) error {
	ra := sp.ra
	if g != grantSpill {
		ra.mu.Lock()
		defer ra.mu.Unlock()
		// The last chunk is shorter than what was reserved.
		if g == grantBudget {
			sp.giveBack(want - int64(len(p)))
		}
		ra.inMemory -= want - int64(len(p))
		if len(p) > 0 {
			sp.chunks = append(sp.chunks, memChunk{b: p, budgeted: g == grantBudget})
			sp.buffered += int64(len(p))
			if sp.empty {
				sp.data.Signal()
			}
		}
		return nil
	}
	if len(p) == 0 {
		return nil
	}
	ra.mu.Lock()
	if sp.file == nil && !sp.closed {
		f, err := os.CreateTemp(ra.spillDir, ".refdoctor-export-spill-*")
		if err != nil {
			ra.mu.Unlock()
			return fmt.Errorf("read-ahead spill: %w (export needs room for up to --concurrency - 1 blobs next to the bundle)", err)
		}
		// Unlinked at once: the bytes live only while the export runs.
		_ = os.Remove(f.Name())
		sp.file = f
	}
	f := sp.file
	ra.mu.Unlock()
	if f == nil {
		return context.Cause(ra.ctx)
	}
	_, err := f.WriteAt(p, sp.fileW) // only this goroutine writes
	ra.mu.Lock()
	defer ra.mu.Unlock()
	if err != nil {
		return fmt.Errorf("read-ahead spill: %w", err)
	}
	sp.fileW += int64(len(p))
	ra.stats.spilled += int64(len(p))
	if sp.empty {
		sp.data.Signal()
	}
	return nil
}

// WriteTo hands the blob's bytes to w in order, waiting for the download
// as needed, without copying what is held in memory. It returns nil only
// once the download has ended and been verified, or else the download's
// error.
func (sp *spool) WriteTo(w io.Writer) (int64, error) {
	ra := sp.ra
	var total int64
	var fbuf []byte
	ra.mu.Lock()
	defer ra.mu.Unlock()
	for {
		switch {
		case len(sp.chunks) > 0:
			mc := sp.chunks[0]
			c := mc.b
			sp.chunks[0] = memChunk{}
			sp.chunks = sp.chunks[1:]
			ra.mu.Unlock()
			n, err := w.Write(c)
			ra.mu.Lock()
			sp.buffered -= int64(len(c))
			ra.inMemory -= int64(len(c))
			if mc.budgeted {
				sp.giveBack(int64(len(c)))
			}
			if sp.full {
				sp.space.Signal()
			}
			if len(c) == exportChunk {
				chunks.Put(&c)
			}
			total += int64(n)
			if err != nil {
				return total, err
			}
		case sp.fileR < sp.fileW:
			if fbuf == nil {
				fbuf = make([]byte, exportChunk)
			}
			want := min(int64(len(fbuf)), sp.fileW-sp.fileR)
			off, f := sp.fileR, sp.file
			ra.mu.Unlock()
			n, err := f.ReadAt(fbuf[:want], off)
			if err == nil || (errors.Is(err, io.EOF) && int64(n) == want) {
				n, err = w.Write(fbuf[:n])
			} else {
				err = fmt.Errorf("read-ahead spill: %w", err)
			}
			ra.mu.Lock()
			sp.fileR += int64(n)
			total += int64(n)
			if err != nil {
				return total, err
			}
		case sp.done:
			return total, sp.cause()
		default:
			if err := context.Cause(ra.ctx); err != nil {
				return total, err
			}
			sp.empty = true
			sp.data.Wait()
			sp.empty = false
		}
	}
}

// failure is the download's error if it has already failed.
func (sp *spool) failure() error {
	sp.ra.mu.Lock()
	defer sp.ra.mu.Unlock()
	return sp.cause()
}

// cause is the download's error; for a download stopped because another
// one failed, that failure, which is what the operator must hear about
// (not "context canceled" for an intact blob). Called with ra.mu held.
func (sp *spool) cause() error {
	if sp.err != nil && errors.Is(sp.err, context.Canceled) {
		if c := context.Cause(sp.ra.ctx); c != nil && !errors.Is(c, context.Canceled) {
			return c
		}
	}
	return sp.err
}

// release frees what the spool still holds: after its member is written,
// or when the export stops.
func (sp *spool) release() {
	sp.ra.mu.Lock()
	defer sp.ra.mu.Unlock()
	if sp.closed {
		return
	}
	sp.closed = true
	ra := sp.ra
	ra.budget += sp.held + sp.prepaid
	ra.inMemory -= sp.prepaid + sp.buffered
	sp.held, sp.prepaid = 0, 0
	ra.moved.Broadcast()
	for _, c := range sp.chunks {
		if len(c.b) == exportChunk {
			chunks.Put(&c.b)
		}
	}
	sp.chunks, sp.buffered = nil, 0
	if sp.file != nil {
		_ = sp.file.Close()
	}
	sp.data.Broadcast()
	sp.space.Broadcast()
}

// hashSink writes the compressed bundle to the file and hashes it for the
// .sha256 sidecar, each on a goroutine of its own, so that hashing and
// writing the output overlap with each other and with compressing it. It
// holds at most sinkBuffers buffers; each goes back to the free list once
// both goroutines are done with it.
type hashSink struct {
	dst    *os.File
	h      hash.Hash
	cur    *sinkBuf
	toFile chan *sinkBuf
	toHash chan *sinkBuf
	free   chan *sinkBuf
	wg     sync.WaitGroup
	err    error // the first write error; read after wg, or once bad is set
	bad    atomic.Bool
}

type sinkBuf struct {
	b    []byte
	refs atomic.Int32
}

const (
	sinkBuffers    = 4
	writebackEvery = 16 << 20
	// fileWriteSize is the size of each write to the bundle file. Larger
	// writes make Linux allocate larger page-cache folios, which right
	// after other large files were written costs two to three times the
	// system time (bench/run.sh, kernel 6.18, ext4): 4 MiB writes took
	// 0.9-1.6 s of system time for 600 MiB, 128 KiB writes 0.45 s.
	fileWriteSize = 128 << 10
)

func newHashSink(dst *os.File) *hashSink {
	s := &hashSink{dst: dst, h: sha256.New(), toFile: make(chan *sinkBuf, sinkBuffers), toHash: make(chan *sinkBuf, sinkBuffers),
		free: make(chan *sinkBuf, sinkBuffers)}
	for range sinkBuffers - 1 {
		s.free <- &sinkBuf{b: make([]byte, 0, exportChunk)}
	}
	s.cur = &sinkBuf{b: make([]byte, 0, exportChunk)}
	done := func(b *sinkBuf) {
		if b.refs.Add(-1) == 0 {
			b.b = b.b[:0]
			s.free <- b
		}
	}
	s.wg.Go(func() {
		var off, flushed int64
		for b := range s.toFile {
			if s.err == nil {
				var err error
				for p := b.b; len(p) > 0 && err == nil; {
					k := min(len(p), fileWriteSize)
					_, err = s.dst.Write(p[:k])
					p = p[k:]
				}
				if err != nil {
					s.err = err
					s.bad.Store(true)
				}
				off += int64(len(b.b))
				if off-flushed >= writebackEvery {
					startWriteback(s.dst, flushed, off-flushed)
					flushed = off
				}
			}
			done(b)
		}
	})
	s.wg.Go(func() {
		for b := range s.toHash {
			s.h.Write(b.b)
			done(b)
		}
	})
	return s
}

func (s *hashSink) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		if s.bad.Load() {
			return n, fmt.Errorf("write bundle: %w", s.err) // s.err is set before bad
		}
		b := s.cur.b
		k := copy(b[len(b):cap(b)], p)
		s.cur.b = b[:len(b)+k]
		p, n = p[k:], n+k
		if len(s.cur.b) == cap(s.cur.b) {
			s.send()
			s.cur = <-s.free
		}
	}
	return n, nil
}

func (s *hashSink) send() {
	s.cur.refs.Store(2)
	s.toFile <- s.cur
	s.toHash <- s.cur
}

// Close writes what is buffered, stops the goroutines and returns the
// sha256 of everything written.
func (s *hashSink) Close() (string, error) {
	if s.cur != nil && len(s.cur.b) > 0 {
		s.send()
	}
	s.cur = nil
	close(s.toFile)
	close(s.toHash)
	s.wg.Wait()
	if s.err != nil {
		return "", fmt.Errorf("write bundle: %w", s.err)
	}
	return hex.EncodeToString(s.h.Sum(nil)), nil
}
