package bundle

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// headerTracker is a second, independent reader of the tar stream: it sees
// every byte Go's archive/tar consumes (through a tee) and reads the raw
// header blocks itself. Tar readers do not agree on every construct the
// format allows: which of a PAX path and a GNU long name wins, whether a
// global header renames what follows, which extension header counts when
// there are two, whether a V7 directory carries data, whether the USTAR
// prefix field applies to a GNU or V7 header. An attacker who knows this
// can make GNU tar or Python extract an index.json that Go's reader, and
// so the validator, never saw. The tracker flags every such construct
// (AmbiguousMember) and cross-checks each name against Go's: a bundle is
// valid only if every common reader (Go, GNU tar, bsdtar, Python's
// tarfile) sees the same members.
//
// It frames the stream the way Go's reader does (data follows every
// header except header-only types), so it stays aligned with the entries
// tar.Reader returns; the validator takes one rawEntry per entry.
type headerTracker struct {
	blk  [blockSize]byte
	have int
	// skip is how many bytes of data (with padding) precede the next
	// header; keep is how many of them are collected for an extension
	// header.
	skip    int64
	keep    int64
	ext     byte
	extData []byte

	// Extension headers seen since the last entry.
	pax       map[string]string
	paxCount  int
	paxDup    []string
	long      string
	longCount int
	linkCount int

	zeros   int
	stopped bool
	queue   []rawEntry
	name    []byte

	// pos counts the bytes written so far; blkAt is where the header
	// block being collected began.
	pos   int64
	blkAt int64
}

const blockSize = 512

// maxExtensionSize bounds the PAX and GNU long-name data collected, as
// archive/tar does.
const maxExtensionSize = 1 << 20

// rawEntry is what the tracker read for one entry tar.Reader returns.
type rawEntry struct {
	// note marks a finding about extension headers that belongs to no
	// entry of tar.Reader's (one that precedes a global header, or the
	// end of the archive).
	note     bool
	typeflag byte
	// name is the member name under the reading every common reader
	// agrees on, when there is one: a PAX path, else a GNU long name,
	// else the USTAR prefix and name. It is the tracker's buffer, valid
	// until the tracker reads the next header.
	name []byte
	// ambiguous holds the reasons readers disagree about this entry.
	ambiguous []string
	// start is the offset in the tar stream of the entry's own header
	// block; plain says no extension header preceded it, so that a tar
	// reader starting at start reads the entry exactly as this one did.
	start int64
	plain bool
}

func (t *headerTracker) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 && !t.stopped {
		if t.skip > 0 {
			k := int64(len(p))
			if k > t.skip {
				k = t.skip
			}
			if t.keep > 0 {
				c := min(k, t.keep)
				t.extData = append(t.extData, p[:c]...)
				t.keep -= c
			}
			t.skip -= k
			t.pos += k
			p = p[k:]
			if t.skip == 0 && t.ext != 0 {
				t.extension()
			}
			continue
		}
		if t.have == 0 {
			t.blkAt = t.pos
		}
		c := copy(t.blk[t.have:], p)
		t.have += c
		t.pos += int64(c)
		p = p[c:]
		if t.have == blockSize {
			t.have = 0
			t.header()
		}
	}
	return n, nil
}

// take returns the entry tar.Reader has just returned, if the tracker
// has one (it stops at the end of the archive and at constructs it does
// not follow, which the validator reports on their own), and the notes
// queued before it.
func (t *headerTracker) take() (e rawEntry, notes []rawEntry, ok bool) {
	for len(t.queue) > 0 {
		e, t.queue = t.queue[0], t.queue[1:]
		if !e.note {
			return e, notes, true
		}
		notes = append(notes, e)
	}
	return rawEntry{}, notes, false
}

func (t *headerTracker) header() {
	b := t.blk[:]
	if bytes.Equal(b, zeroBlock[:]) {
		t.zeros++
		if t.zeros == 2 {
			t.stopped = true // end of archive; what follows is drained
			if t.ext != 0 || t.paxCount > 0 || t.longCount > 0 || t.linkCount > 0 {
				t.queue = append(t.queue, rawEntry{note: true, ambiguous: []string{"an extension header describes no member (the archive ends after it)"}})
			}
		}
		return
	}
	t.zeros = 0
	size, ok := parseTarNumber(b[124:136])
	if !ok || size < 0 {
		t.stopped = true // archive/tar refuses the header too
		return
	}
	flag := b[156]
	switch flag {
	case 'x', 'g', 'L', 'K':
		if size > maxExtensionSize {
			t.stopped = true // archive/tar refuses it
			return
		}
		if flag == 'g' && (t.paxCount > 0 || t.longCount > 0 || t.linkCount > 0) {
			// Go drops the pending extension headers; others apply
			// them to the global header or to the next member.
			t.queue = append(t.queue, rawEntry{note: true, ambiguous: []string{"an extension header is followed by a global header instead of its member"}})
			t.resetPending()
		}
		t.ext, t.keep, t.skip, t.extData = flag, size, roundBlock(size), t.extData[:0]
		if size == 0 {
			t.extension()
		}
		return
	case 'S':
		// Old GNU sparse members carry extra header blocks; the validator
		// refuses them (UnsupportedMember) and the tracker stops here.
		t.queue = append(t.queue, rawEntry{typeflag: flag})
		t.stopped = true
		return
	}
	e := rawEntry{typeflag: flag, start: t.blkAt,
		plain: t.ext == 0 && t.paxCount == 0 && t.longCount == 0 && t.linkCount == 0}
	magic, version := string(b[257:263]), string(b[263:265])
	ustar := magic == "ustar\x00" && version == "00"
	star := magic == "ustar\x00" && string(b[508:512]) == "tar\x00"
	name := append(t.name[:0], cBytes(b[0:100])...)
	prefix := cBytes(b[345:500])
	switch {
	case len(prefix) == 0:
	case ustar && !star:
		name = append(append(append(name[:0], prefix...), '/'), cBytes(b[0:100])...)
	default:
		// Python's tarfile applies the prefix field to every header, GNU
		// tar and bsdtar only to USTAR ones, Go to USTAR, STAR (shorter)
		// and some GNU ones.
		e.ambiguous = append(e.ambiguous, fmt.Sprintf("the USTAR prefix field %q is set in a header of another format; readers disagree on whether it is part of the name", clip(string(prefix), 100)))
	}
	if t.longCount > 1 {
		e.ambiguous = append(e.ambiguous, "two GNU long names precede one member; readers disagree on which applies")
	}
	if t.linkCount > 1 {
		e.ambiguous = append(e.ambiguous, "two GNU long link names precede one member; readers disagree on which applies")
	}
	if t.paxCount > 1 {
		e.ambiguous = append(e.ambiguous, "two PAX extended headers precede one member; readers disagree on which applies")
	}
	if len(t.paxDup) > 0 {
		e.ambiguous = append(e.ambiguous, fmt.Sprintf("a PAX header sets %s twice", strings.Join(t.paxDup, ", ")))
	}
	paxPath, hasPaxPath := t.pax["path"]
	if t.longCount > 0 && t.paxCount > 0 {
		e.ambiguous = append(e.ambiguous, fmt.Sprintf("a member has both a PAX header (path %q) and a GNU long name (%q): GNU tar and Python read one, Go and bsdtar the other", clip(paxPath, 100), clip(t.long, 100)))
	}
	switch {
	case hasPaxPath:
		name = append(name[:0], paxPath...)
	case t.longCount > 0:
		name = append(name[:0], t.long...)
	}
	t.name = name
	if s, ok := t.pax["size"]; ok {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil && n >= 0 {
			size = n
		}
	}
	if flag == '\x00' && bytes.HasSuffix(name, []byte("/")) {
		flag = '5' // a V7 directory
	}
	e.name = name
	switch flag {
	case '1', '2', '3', '4', '5', '6':
		if size > 0 {
			e.ambiguous = append(e.ambiguous, fmt.Sprintf("a %s entry declares %d bytes of data: GNU tar skips them for a V7 directory, other readers read them as the next header", describeType(flag), size))
		}
		t.skip = 0 // header only, as archive/tar reads it
	default:
		t.skip = roundBlock(size)
	}
	t.queue = append(t.queue, e)
	t.resetPending()
}

func (t *headerTracker) resetPending() {
	t.pax, t.paxCount, t.paxDup, t.long, t.longCount, t.linkCount = nil, 0, nil, "", 0, 0
}

// extension finishes an extension header's data.
func (t *headerTracker) extension() {
	flag, data := t.ext, t.extData
	t.ext = 0
	switch flag {
	case 'L':
		t.long = cString(data)
		t.longCount++
	case 'K':
		t.linkCount++
	case 'x':
		t.paxCount++
		recs, dup := parsePAXRecords(data)
		if t.pax == nil {
			t.pax = map[string]string{}
		}
		for k, v := range recs {
			t.pax[k] = v
		}
		t.paxDup = append(t.paxDup, dup...)
	case 'g':
		recs, _ := parsePAXRecords(data)
		var keys []string
		for _, k := range []string{"path", "linkpath", "size"} {
			if _, ok := recs[k]; ok {
				keys = append(keys, k)
			}
		}
		for k := range recs {
			if strings.HasPrefix(k, "GNU.sparse.") {
				keys = append(keys, k)
			}
		}
		t.name = append(t.name[:0], recs["path"]...)
		e := rawEntry{typeflag: 'g', name: t.name}
		if len(keys) > 0 {
			e.ambiguous = append(e.ambiguous, fmt.Sprintf("a PAX global header sets %s: GNU tar and Python apply it to the members that follow, Go and bsdtar do not", strings.Join(keys, ", ")))
		}
		t.queue = append(t.queue, e)
	}
}

// parsePAXRecords reads "len key=value\n" records; dup lists the keys
// that matter for names and sizes and appear more than once.
func parsePAXRecords(data []byte) (map[string]string, []string) {
	recs := map[string]string{}
	var dup []string
	for len(data) > 0 {
		sp := bytes.IndexByte(data, ' ')
		if sp <= 0 {
			break
		}
		n, err := strconv.Atoi(string(data[:sp]))
		if err != nil || n <= sp || n > len(data) {
			break
		}
		rec := data[sp+1 : n]
		data = data[n:]
		rec = bytes.TrimSuffix(rec, []byte("\n"))
		k, v, ok := bytes.Cut(rec, []byte("="))
		if !ok {
			continue
		}
		key := string(k)
		if _, seen := recs[key]; seen && (key == "path" || key == "linkpath" || key == "size") {
			dup = append(dup, key)
		}
		recs[key] = string(v)
	}
	return recs, dup
}

var zeroBlock [blockSize]byte

func roundBlock(n int64) int64 {
	return (n + blockSize - 1) / blockSize * blockSize
}

func cString(b []byte) string { return string(cBytes(b)) }

func cBytes(b []byte) []byte {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return b
}

// parseTarNumber reads a numeric header field: octal (space or NUL
// padded) or GNU base-256.
func parseTarNumber(b []byte) (int64, bool) {
	if len(b) > 0 && b[0]&0x80 != 0 {
		if b[0]&0x40 != 0 {
			return 0, false // negative
		}
		var n int64
		for i, c := range b {
			if i == 0 {
				c &= 0x7f
			}
			if n > (1<<63-1)>>8 {
				return 0, false
			}
			n = n<<8 | int64(c)
		}
		return n, true
	}
	s := strings.Trim(string(b), " \x00")
	if s == "" {
		return 0, true
	}
	n, err := strconv.ParseInt(s, 8, 64)
	return n, err == nil
}

func describeType(flag byte) string {
	switch flag {
	case '1':
		return "hard link"
	case '2':
		return "symbolic link"
	case '3':
		return "character device"
	case '4':
		return "block device"
	case '5':
		return "directory"
	case '6':
		return "FIFO"
	}
	return fmt.Sprintf("type %q", flag)
}
