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
	"time"

	"github.com/refdoctor/refdoctor/registry"
)

// How an export reads ahead. The bundle's tar stream is written strictly
// in member order, while the next blobs download concurrently: the blob
// being written and up to concurrency-1 after it (--concurrency). What
// they download waits in memory, in 4 MiB chunks. ExportReadAheadBytes
// bounds all of export's buffers for blob and output bytes together:
// the output (exportSinkBytes, hashed and written on goroutines of their
// own), a window for the blob being written (exportStreamWindow), and
// the rest (aheadBudget) for every download together, so that the blob
// being written never waits behind blobs further ahead. A download ahead
// of the writer that finds the budget spent pauses; if it has paused for
// exportSpillAfter, the rest of that blob spills to an unlinked
// temporary file next to the output, so that no connection sits idle
// long enough for a server or a proxy to drop it (each spilling download
// reads through one more chunk; disk holds at most concurrency-1 spilled
// blobs). Memory is thus bounded whatever the image size.
const (
	ExportReadAheadBytes = 64 << 20
	exportChunk          = 4 << 20
	exportSinkBytes      = sinkBuffers * exportChunk
	exportStreamWindow   = 2 * exportChunk
	aheadBudget          = ExportReadAheadBytes - exportSinkBytes - exportStreamWindow
	exportSpillAfter     = 5 * time.Second
	// roomWanted is how much budget must be free before paused downloads
	// resume (at most half the budget).
	roomWanted = 4 * exportChunk
)

// chunks recycles full-size download chunks between the downloads and the
// writer, so that streaming gigabytes allocates a handful of buffers.
var chunks = sync.Pool{New: func() any { b := make([]byte, exportChunk); return &b }}

// readAhead downloads the blobs of an export, in the order the writer
// takes them. One mutex guards it and all its spools.
type readAhead struct {
	ctx         context.Context
	cancel      context.CancelCauseFunc
	c           *registry.Client
	blobs       []exportBlob
	concurrency int
	spillDir    string
	spillAfter  time.Duration
	window      int64

	mu         sync.Mutex
	moved      *sync.Cond // the writer moved on, or a download started
	room       *sync.Cond // budget freed (to roomWanted or more), head moved, a pause timed out
	pausedN    int        // downloads waiting on room
	roomWanted int64      // free budget that wakes them
	budget     int64      // read-ahead bytes still free
	inMemory   int64      // blob bytes held in memory (reserved or over budget)
	head       int        // the blob the writer takes next or is writing
	started    int        // blobs whose download has started
	spools     []*spool
	wg         sync.WaitGroup
	stats      readAheadStats
}

// readAheadLimits are the bounds of one export's read-ahead; tests shrink
// them to reach every path with small blobs.
type readAheadLimits struct {
	budget     int64         // aheadBudget
	window     int64         // exportStreamWindow
	spillAfter time.Duration // exportSpillAfter
}

func defaultReadAheadLimits() readAheadLimits {
	return readAheadLimits{budget: aheadBudget, window: exportStreamWindow, spillAfter: exportSpillAfter}
}

// readAheadStats says which paths an export took.
type readAheadStats struct {
	spilled     int64 // bytes written to spill files
	overBudget  int64 // bytes the blob being written took beyond the budget
	paused      int   // times a download ahead waited for budget
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

	head     bool     // the writer is on this blob
	chunks   [][]byte // unread chunks, in order
	off      int      // bytes of chunks[0] already taken
	buffered int64    // unread bytes in chunks
	held     int64    // read-ahead budget the unread chunks hold
	spilling bool     // the rest of the blob goes to file
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
		spillDir: spillDir, spillAfter: lim.spillAfter, window: lim.window, budget: lim.budget, spools: make([]*spool, len(blobs))}
	ra.roomWanted = max(exportChunk, min(roomWanted, lim.budget/2))
	ra.moved = sync.NewCond(&ra.mu)
	ra.room = sync.NewCond(&ra.mu)
	// A stopped export wakes every waiter, so that nothing waits for a
	// download that will never finish.
	context.AfterFunc(ctx, func() {
		ra.mu.Lock()
		defer ra.mu.Unlock()
		ra.wakeAll()
	})
	ra.wg.Go(ra.schedule)
	return ra
}

// wakeAll wakes every waiter; ra.mu is held.
func (ra *readAhead) wakeAll() {
	ra.moved.Broadcast()
	ra.room.Broadcast()
	for _, sp := range ra.spools {
		if sp != nil {
			sp.data.Broadcast()
			sp.space.Broadcast()
		}
	}
}

// schedule starts downloads in write order, at most concurrency blobs
// from the writer's position on.
func (ra *readAhead) schedule() {
	for i, b := range ra.blobs {
		ra.mu.Lock()
		for i >= ra.head+ra.concurrency && ra.ctx.Err() == nil {
			ra.moved.Wait()
		}
		if ra.ctx.Err() != nil {
			ra.mu.Unlock()
			return
		}
		sp := &spool{ra: ra, size: b.desc.Size, head: i == ra.head}
		sp.data, sp.space = sync.NewCond(&ra.mu), sync.NewCond(&ra.mu)
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
	if ra.pausedN > 0 {
		ra.room.Broadcast() // the new head may go over budget now
	}
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
			spill, err := sp.reserve(ctx, int64(want))
			if err != nil {
				return err
			}
			var buf []byte
			switch {
			case spill:
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
				sp.unreserve(spill, int64(want))
				return fmt.Errorf("blob %s: the registry served more than the %d bytes listed; refusing to write a corrupt bundle", b.desc.Digest, b.desc.Size)
			}
			if err := sp.push(spill, buf[:n], int64(want)); err != nil {
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

// reserve makes room for the next n bytes before they are read: from the
// read-ahead budget, or, for the blob being written, within its own
// window once the budget is spent. A download ahead of the writer waits
// for budget; after spillAfter of waiting it spills (true) instead.
func (sp *spool) reserve(ctx context.Context, n int64) (spill bool, err error) {
	ra := sp.ra
	ra.mu.Lock()
	defer ra.mu.Unlock()
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	var waitedSince time.Time
	for {
		if err := context.Cause(ctx); err != nil {
			return false, err
		}
		switch {
		case sp.spilling:
			return true, nil
		case ra.budget >= n:
			ra.budget -= n
			sp.held += n
			ra.noteMemory(n)
			return false, nil
		case sp.head && (sp.buffered == sp.held || sp.buffered-sp.held+n <= ra.window):
			// Over budget, but the writer is taking this blob's bytes:
			// they leave as fast as it writes (and it may always hold
			// one chunk).
			ra.stats.overBudget += n
			ra.noteMemory(n)
			return false, nil
		case sp.head:
			sp.full = true
			sp.space.Wait()
			sp.full = false
			continue
		}
		if waitedSince.IsZero() {
			ra.stats.paused++
			waitedSince = time.Now()
			timer = time.AfterFunc(ra.spillAfter, func() {
				ra.mu.Lock()
				defer ra.mu.Unlock()
				ra.room.Broadcast()
			})
		} else if time.Since(waitedSince) >= ra.spillAfter {
			sp.spilling = true
			return true, nil
		}
		ra.pausedN++
		ra.room.Wait()
		ra.pausedN--
	}
}

// noteMemory records n more bytes held in memory; ra.mu is held.
func (ra *readAhead) noteMemory(n int64) {
	ra.inMemory += n
	ra.stats.maxInMemory = max(ra.stats.maxInMemory, ra.inMemory)
}

// unreserve gives back a reservation that was not used.
func (sp *spool) unreserve(spill bool, n int64) {
	if spill {
		return
	}
	sp.ra.mu.Lock()
	defer sp.ra.mu.Unlock()
	sp.giveBack(n)
	sp.ra.inMemory -= n
}

// giveBack returns up to n bytes of budget the spool holds; ra.mu is held.
func (sp *spool) giveBack(n int64) {
	g := min(n, sp.held)
	if g <= 0 {
		return
	}
	ra := sp.ra
	sp.held -= g
	before := ra.budget
	ra.budget += g
	// Paused downloads resume once a few chunks are free, not for every
	// chunk the writer takes.
	if ra.pausedN > 0 && ra.budget >= ra.roomWanted && before < ra.roomWanted {
		ra.room.Broadcast()
	}
}

// push hands over the bytes read into p, for which want bytes were
// reserved.
func (sp *spool) push(spill bool, p []byte, want int64) error {
	ra := sp.ra
	if !spill {
		ra.mu.Lock()
		defer ra.mu.Unlock()
		sp.giveBack(want - int64(len(p))) // the last chunk is shorter
		ra.inMemory -= want - int64(len(p))
		if len(p) > 0 {
			sp.chunks = append(sp.chunks, p)
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
			full := sp.chunks[0]
			c := full[sp.off:]
			sp.chunks[0] = nil
			sp.chunks = sp.chunks[1:]
			sp.off = 0
			ra.mu.Unlock()
			n, err := w.Write(c)
			ra.mu.Lock()
			sp.buffered -= int64(len(c))
			ra.inMemory -= int64(len(c))
			sp.giveBack(int64(len(c)))
			if sp.full {
				sp.space.Signal()
			}
			if len(full) == exportChunk {
				chunks.Put(&full)
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
			return total, sp.err
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
	sp.giveBack(sp.held)
	for _, c := range sp.chunks {
		if len(c) == exportChunk {
			chunks.Put(&c)
		}
	}
	sp.ra.inMemory -= sp.buffered
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
				if _, err := s.dst.Write(b.b); err != nil {
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
