package bundle

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// Compression is how a bundle's tar stream is compressed. Readers detect it
// from the first bytes, never from the file name.
type Compression string

// Supported compressions.
const (
	CompressionGzip Compression = "gzip"
	CompressionZstd Compression = "zstd"
)

// DefaultModTime is the modification time of every member refdoctor
// writes: fixed, so that exporting the same content twice yields the same
// bytes and the same bundle checksum.
var DefaultModTime = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// WriterOpt configures a Writer.
type WriterOpt func(*writerOptions)

type writerOptions struct {
	modTime time.Time
	level   int
}

// WithModTime stamps every member with t instead of DefaultModTime; export
// may pass the manifest's createdAt.
func WithModTime(t time.Time) WriterOpt { return func(o *writerOptions) { o.modTime = t } }

// WithLevel sets the gzip level (1-9; gzip.DefaultCompression otherwise).
// For zstd, 1 is fastest and 9 smallest.
func WithLevel(level int) WriterOpt { return func(o *writerOptions) { o.level = level } }

// Writer writes a bundle's tar stream with deterministic headers: regular
// files only, mode 0644, uid and gid 0, no user or group names, one fixed
// mtime, USTAR format unless a name or size needs PAX. Order is the
// caller's job (see Manifest.MemberOrder); Writer refuses unsafe and
// duplicate names so that it can never produce what Validate rejects.
type Writer struct {
	comp    io.WriteCloser
	tw      *tar.Writer
	modTime time.Time
	seen    map[string]bool
	err     error

	// gzip: the stream written to, the level of the current member, the
	// level asked for the next members (SetMemberLevel), and what the tar
	// writer writes through (the current member).
	dst       io.Writer
	level     int
	nextLevel int
	into      *switchWriter
	// used says the current gzip member holds an entry already.
	used bool
}

// Member levels for SetMemberLevel.
const (
	LevelDefault = gzip.DefaultCompression
	LevelStored  = gzip.NoCompression
)

// switchWriter passes writes to w, which SetMemberLevel replaces.
type switchWriter struct{ w io.Writer }

func (s *switchWriter) Write(p []byte) (int, error) { return s.w.Write(p) }

// NewWriter starts a bundle on w. Close must be called to finish the
// compressed stream; it does not close w.
func NewWriter(w io.Writer, compression Compression, opts ...WriterOpt) *Writer {
	o := writerOptions{modTime: DefaultModTime, level: -1}
	for _, opt := range opts {
		opt(&o)
	}
	bw := &Writer{modTime: o.modTime.UTC().Truncate(time.Second), seen: make(map[string]bool)}
	switch compression {
	case CompressionGzip:
		level := o.level
		if level < gzip.HuffmanOnly || level > gzip.BestCompression {
			level = gzip.DefaultCompression
		}
		zw, err := gzip.NewWriterLevel(w, level)
		if err != nil {
			bw.err = fmt.Errorf("bundle writer: %w", err)
			return bw
		}
		bw.comp, bw.dst, bw.level, bw.nextLevel = zw, w, level, level
	case CompressionZstd:
		level := zstd.SpeedDefault
		if o.level > 0 {
			level = zstd.EncoderLevelFromZstd(o.level)
		}
		// One encoder goroutine: the export is bound by the network, and a
		// single goroutine keeps the output and memory use predictable.
		zw, err := zstd.NewWriter(w, zstd.WithEncoderLevel(level), zstd.WithEncoderConcurrency(1))
		if err != nil {
			bw.err = fmt.Errorf("bundle writer: %w", err)
			return bw
		}
		bw.comp = zw
	default:
		bw.err = fmt.Errorf("bundle writer: unknown compression %q", compression)
		return bw
	}
	bw.into = &switchWriter{w: bw.comp}
	bw.tw = tar.NewWriter(bw.into)
	return bw
}

// SetMemberLevel sets the gzip level of the members added from now on
// (gzip.NoCompression stores them, for content that is compressed
// already; gzip.DefaultCompression is NewWriter's). A member whose level
// differs from the one before it, and every stored member, starts a new
// gzip member of the stream, which every gzip reader inflates as part of
// one stream (gzip -d, Go, Python, refdoctor). The tar stream is the same
// whatever the levels; the compressed bytes depend only on the members
// and their levels. zstd ignores it.
func (w *Writer) SetMemberLevel(level int) error {
	if w.err != nil {
		return w.err
	}
	if w.dst == nil {
		return nil
	}
	if level < gzip.HuffmanOnly || level > gzip.BestCompression {
		return fmt.Errorf("bundle writer: gzip level %d out of range", level)
	}
	w.nextLevel = level
	return nil
}

// startLevel starts a new gzip member when the next member's level
// differs from the current one, and for every stored member: each blob
// that is compressed already gets a gzip member of its own, which a
// reader can start decompressing at (import does, see
// Report.VerifiedOffset). The tar padding of the member before goes into
// the gzip member it belongs to.
func (w *Writer) startLevel() error {
	if w.dst == nil {
		return nil
	}
	if w.nextLevel == w.level && (w.level != LevelStored || !w.used) {
		w.used = true
		return nil
	}
	if err := w.tw.Flush(); err != nil {
		return err
	}
	if err := w.comp.Close(); err != nil {
		return err
	}
	zw, err := gzip.NewWriterLevel(w.dst, w.nextLevel)
	if err != nil {
		return err
	}
	w.comp, w.into.w, w.level, w.used = zw, zw, w.nextLevel, true
	return nil
}

// AddFile writes one member holding data.
func (w *Writer) AddFile(path string, data []byte) error {
	return w.add(path, int64(len(data)), func(dst io.Writer) (int64, error) {
		n, err := dst.Write(data)
		return int64(n), err
	})
}

// AddFileFrom writes one member of exactly size bytes read from r; a short
// r is an error (the member would be corrupt), bytes beyond size are not
// read.
func (w *Writer) AddFileFrom(path string, size int64, r io.Reader) error {
	return w.add(path, size, func(dst io.Writer) (int64, error) {
		n, err := io.CopyN(dst, r, size)
		if errors.Is(err, io.EOF) {
			err = fmt.Errorf("source ended after %d of %d bytes: %w", n, size, io.ErrUnexpectedEOF)
		}
		return n, err
	})
}

// AddFileTo writes one member of exactly size bytes that fill writes into
// the member; fill writing fewer or more bytes is an error. It lets a
// source that holds its bytes in buffers hand them over without another
// copy.
func (w *Writer) AddFileTo(path string, size int64, fill func(io.Writer) (int64, error)) error {
	return w.add(path, size, fill)
}

func (w *Writer) add(name string, size int64, body func(io.Writer) (int64, error)) error {
	if w.err != nil {
		return w.err
	}
	if reason := unsafePathReason(name); reason != "" {
		return fmt.Errorf("bundle writer: member %q: %s", name, reason)
	}
	if w.seen[name] {
		return fmt.Errorf("bundle writer: member %q written twice", name)
	}
	if size < 0 {
		return fmt.Errorf("bundle writer: member %q: negative size", name)
	}
	w.seen[name] = true
	if err := w.startLevel(); err != nil {
		w.err = fmt.Errorf("bundle writer: %s: %w", name, err)
		return w.err
	}
	hdr := &tar.Header{
		Typeflag: tar.TypeReg,
		Name:     name,
		Size:     size,
		Mode:     0o644,
		ModTime:  w.modTime,
		Format:   tar.FormatUSTAR,
	}
	if err := w.tw.WriteHeader(hdr); err != nil {
		// USTAR holds names up to 255 bytes and sizes below 8 GiB; beyond
		// that PAX records are the portable way out.
		hdr.Format = tar.FormatPAX
		if err2 := w.tw.WriteHeader(hdr); err2 != nil {
			w.err = fmt.Errorf("bundle writer: header of %s: %w", name, err2)
			return w.err
		}
	}
	n, err := body(w.tw)
	if err != nil {
		w.err = fmt.Errorf("bundle writer: %s: %w", name, err)
		return w.err
	}
	if n != size {
		w.err = fmt.Errorf("bundle writer: %s: wrote %d of %d bytes", name, n, size)
		return w.err
	}
	return nil
}

// closePrefix ends the gzip stream after the members added so far,
// without the tar end-of-archive marker, so that the caller can append
// the rest of another archive as it is: whole gzip members, from a member
// start validation found (bundle sign). It ends the current gzip member
// just as a change of level does, so the bytes are those the writer makes
// when the members that follow are added to it.
func (w *Writer) closePrefix() error {
	if w.tw != nil && w.err == nil && w.dst == nil {
		return errors.New("bundle writer: only a gzip stream can be continued")
	}
	return w.end(func() error { return w.tw.Flush() })
}

// Close ends the tar stream and the compressed stream.
func (w *Writer) Close() error { return w.end(func() error { return w.tw.Close() }) }

// end finishes the tar stream with finish (Close writes the end-of-archive
// marker, Flush only the padding of the last member), then the compressed
// stream.
func (w *Writer) end(finish func() error) error {
	if w.tw == nil {
		return w.err
	}
	if w.err != nil {
		_ = w.comp.Close()
		return w.err
	}
	if err := finish(); err != nil {
		w.err = fmt.Errorf("bundle writer: %w", err)
		_ = w.comp.Close()
		return w.err
	}
	if err := w.comp.Close(); err != nil {
		w.err = fmt.Errorf("bundle writer: %w", err)
		return w.err
	}
	w.err = errors.New("bundle writer: closed")
	return nil
}
