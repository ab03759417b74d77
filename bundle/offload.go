package bundle

import (
	"archive/tar"
	"bufio"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
)

// Hashing is what bounds validation: one SHA-256 pass over every byte,
// on one core, while the other inflates. ValidateFile has a second way to
// the bytes of a member that starts a gzip member of its own (a seek
// point, see memberMarks): a second reader of the same open file that
// decompresses from there. For every other large such member, that
// reader hashes it on another core while the validator reads on past it
// (inflating without hashing, which costs about a quarter as much) and
// hashes the next one itself. One second reader at a time, always every
// other large member, and its result is taken before the next one starts
// or the scan ends: the report holds what a single pass finds, the same
// problems and counts, though a problem about an offloaded member may be
// listed after problems about members that follow it.
//
// Both readers read the same bytes of the same open file: the validator's
// pass checks the gzip member's CRC, the second reader its content. A
// second reader that does not find the member where the first did (the
// file changed while it was read) fails the validation as a read error.

// defaultOffloadMin is the smallest member a second reader hashes: below
// it, starting one costs more than it saves.
const defaultOffloadMin = 16 << 20

// offload is one member hashed by the second reader.
type offload struct {
	name string
	ent  *listEntry
	size int64
	sum  [32]byte
	err  error
	done chan struct{}
}

// canOffload reports whether the second reader takes the member: a
// listed member seen once, starting a gzip member, hashed only (not
// held), large, and every other one of those.
func (v *validator) canOffload(ent *listEntry, size int64, mode holdMode) bool {
	if v.file == nil || ent == nil || ent.seen != 1 || ent.seek <= 0 || mode != holdNone || size < v.o.offloadMin {
		return false
	}
	// The first of them, the third, and so on: the second reader starts
	// as early as it can, and the validator hashes the last one while it
	// finishes the one before.
	v.offloadable++
	return v.offloadable%2 == 1
}

// startOffload hands the member to the second reader, once the one
// before is taken in, and reads past its data. A failure to read past it
// is returned as is, for readFailure; the member is then left unhashed,
// as a single pass leaves it.
func (v *validator) startOffload(tr *tar.Reader, name string, ent *listEntry, size int64) error {
	if err := v.takeOffload(); err != nil {
		return err
	}
	o := &offload{name: name, ent: ent, size: size, done: make(chan struct{})}
	v.pending = o
	ctx, cancel := context.WithCancel(v.ctx)
	v.cancelOffload = cancel
	if v.offloadBuf == nil {
		v.offloadBuf = make([]byte, copyBuffer)
		v.offloadIn = bufio.NewReaderSize(nil, inputBuffer)
	}
	if v.o.offloaded != nil {
		*v.o.offloaded++
	}
	go v.hashAt(ctx, o, ent.seek)
	// Read past the data, as tar.Reader would on the next header, but in
	// steps that report progress.
	for {
		if err := v.ctx.Err(); err != nil {
			v.stopOffload()
			return err
		}
		n, err := tr.Read(v.hashBuf)
		// Counted as read, as a single pass counts what it hashed.
		v.rep.BytesChecked += int64(n)
		if n > 0 && v.meter.n-v.lastProgress >= progressStep {
			v.lastProgress = v.meter.n
			v.emit(Event{Kind: EventProgress, Path: name})
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			v.stopOffload()
			return err
		}
	}
}

// takeOffload waits for the member the second reader has, if any, and
// records its result as the validator would have.
func (v *validator) takeOffload() error {
	o := v.pending
	if o == nil {
		return nil
	}
	<-o.done
	v.pending = nil
	v.cancelOffload()
	if o.err != nil {
		if err := v.ctx.Err(); err != nil {
			return err
		}
		// A read error, not the bundle's fault as such (exit 3).
		return &sourceError{fmt.Errorf("%s, read a second time from where validation found it: %w; the file changed while it was validated: validate it again once nothing writes to it", o.name, o.err)}
	}
	v.checkListed(o.name, o.ent, o.size, o.sum)
	v.rep.FilesChecked++
	return nil
}

// stopOffload ends the second reader without taking its result, when the
// validation stops early.
func (v *validator) stopOffload() {
	if o := v.pending; o != nil {
		v.cancelOffload()
		<-o.done
		v.pending = nil
	}
}

// hashAt reads the member o from the gzip member starting at offset of
// the validator's file and hashes its data.
func (v *validator) hashAt(ctx context.Context, o *offload, offset int64) {
	defer close(o.done)
	o.err = func() error {
		br := v.offloadIn
		br.Reset(io.NewSectionReader(v.file, offset, 1<<62))
		comp, err := detectCompression(br)
		if err != nil {
			return err
		}
		if comp != CompressionGzip {
			return errors.New("not a gzip member")
		}
		dec, err := openDecompressor(br, comp, nil)
		if err != nil {
			return err
		}
		defer dec.release()
		tr := tar.NewReader(dec.r)
		hdr, err := tr.Next()
		if err != nil {
			return err
		}
		if name := strings.TrimPrefix(hdr.Name, "./"); hdr.Typeflag != tar.TypeReg || name != o.name || hdr.Size != o.size {
			return fmt.Errorf("found %q (%d bytes) instead", name, hdr.Size)
		}
		h := sha256.New()
		var n int64
		for n < o.size {
			if err := ctx.Err(); err != nil {
				return err
			}
			k, err := tr.Read(v.offloadBuf)
			h.Write(v.offloadBuf[:k])
			n += int64(k)
			if err == io.EOF {
				break
			}
			if err != nil {
				return err
			}
		}
		if n != o.size {
			return fmt.Errorf("%d of %d bytes", n, o.size)
		}
		h.Sum(o.sum[:0])
		return nil
	}()
}

// offloading reports whether a second reader can help at all: it needs a
// second core.
func offloading() bool { return runtime.GOMAXPROCS(0) > 1 }
