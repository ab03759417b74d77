package bundle

import (
	"encoding/hex"
	"hash/maphash"
	"strings"
)

// The validator's per-member state is kept small and bounded: a bundle of
// a hundred thousand members must validate in a few tens of MiB, and a
// hostile one of millions of tiny members must stop at MaxMembers, not
// exhaust memory. Blob names are kept as their 32 digest bytes, other
// names are shared with the parsed manifest, and the names of members
// not listed are kept only as hashes.

// nameKind is what a name is in the archive.
type nameKind uint8

const (
	kindFile nameKind = 1 << iota
	kindDir
)

// clash is how a name meets an earlier one.
type clash int

const (
	clashNone      clash = iota
	clashDuplicate       // the same file name twice
	clashFileDir         // a file and a directory of the same name
	clashCase            // names that differ only in case
)

// nameIndex records every name in the archive (files, directories, and
// each file's parent directories) by the hash of its case-folded form,
// with the hash of its exact form, to find duplicates, file/directory
// collisions and names that collide on case-insensitive file systems.
type nameIndex struct {
	seed  maphash.Seed
	slots map[uint64]nameSlot
}

type nameSlot struct {
	exact uint64
	kinds nameKind
}

func newNameIndex(seed maphash.Seed) *nameIndex {
	return &nameIndex{seed: seed, slots: map[uint64]nameSlot{}}
}

func (ix *nameIndex) hashes(name string) (exact, folded uint64) {
	return maphash.String(ix.seed, name), foldHash(ix.seed, name)
}

// foldHash hashes name case-folded. Member names are ASCII (others are
// UnsafePath), so folding ASCII letters is folding.
func foldHash(seed maphash.Seed, name string) uint64 {
	var h maphash.Hash
	h.SetSeed(seed)
	var buf [64]byte
	for len(name) > 0 {
		n := copy(buf[:], name)
		for i := 0; i < n; i++ {
			if c := buf[i]; c >= 'A' && c <= 'Z' {
				buf[i] = c + 'a' - 'A'
			}
		}
		h.Write(buf[:n])
		name = name[n:]
	}
	return h.Sum64()
}

// add records name as kind and says how it clashes with what came before.
func (ix *nameIndex) add(name string, kind nameKind) clash {
	exact, folded := ix.hashes(name)
	s, ok := ix.slots[folded]
	if !ok {
		ix.slots[folded] = nameSlot{exact: exact, kinds: kind}
		return clashNone
	}
	if s.exact != exact {
		return clashCase
	}
	had := s.kinds
	s.kinds |= kind
	ix.slots[folded] = s
	switch {
	case had&kind == kindFile:
		return clashDuplicate
	case had != s.kinds:
		return clashFileDir
	}
	return clashNone
}

// hasFile reports whether name is in the archive as a file.
func (ix *nameIndex) hasFile(name string) bool {
	exact, folded := ix.hashes(name)
	s, ok := ix.slots[folded]
	return ok && s.exact == exact && s.kinds&kindFile != 0
}

// parents calls fn with each parent directory of a member name.
func parents(name string, fn func(dir string)) {
	for i := 0; i < len(name); i++ {
		if name[i] == '/' {
			fn(name[:i])
		}
	}
}

// listing is manifest.yaml's list of members, compact. Every listed path
// maps to an entry; entries record what the archive held for them.
type listing struct {
	blobs   map[[32]byte]int32
	others  map[string]int32
	fold    map[uint64]int32
	entries []listEntry
	seed    maphash.Seed
	// clashes are listed names that differ from an earlier one only in
	// case, reported once the manifest has parsed.
	clashes []string
	bytes   int64 // sum of listed sizes, saturating
}

type listEntry struct {
	size int64
	sum  [32]byte
	art  *Artifact // referrer entries: their listing (in the Manifest)
	path string    // empty for blobs, named by blob
	blob [32]byte

	seen  uint8 // times present, saturating
	state entryState
}

type entryState uint8

const (
	entryHashed  entryState = 1 << iota // read to the end and hashed
	entryMatched                        // size and sha256 equal the listing
	entryFlagged                        // a problem found in or about it
)

// verified: present once, read whole, equal to its listing, and nothing
// else found wrong with it.
func (e *listEntry) verified() bool {
	return e.seen == 1 && e.state&(entryHashed|entryMatched|entryFlagged) == entryHashed|entryMatched
}

func newListing(seed maphash.Seed) *listing {
	return &listing{blobs: map[[32]byte]int32{}, others: map[string]int32{}, fold: map[uint64]int32{}, seed: seed}
}

// blobKey returns the digest bytes of a blobs/sha256/<hex> name.
func blobKey(path string) ([32]byte, bool) {
	var k [32]byte
	h, ok := strings.CutPrefix(path, BlobsDir)
	if !ok || !validHex(h) {
		return k, false
	}
	_, err := hex.Decode(k[:], []byte(h))
	return k, err == nil
}

// add lists path; ok is false when it is listed already.
func (l *listing) add(path string, size int64, sumHex string, art *Artifact) bool {
	var e listEntry
	e.size, e.art = size, art
	if _, err := hex.Decode(e.sum[:], []byte(sumHex)); err != nil {
		return false // checked by the parser already
	}
	idx := int32(len(l.entries))
	if k, ok := blobKey(path); ok {
		if _, dup := l.blobs[k]; dup {
			return false
		}
		l.blobs[k] = idx
		e.blob = k
	} else {
		if _, dup := l.others[path]; dup {
			return false
		}
		l.others[path] = idx
		e.path = path
	}
	f := foldHash(l.seed, path)
	if _, clash := l.fold[f]; clash {
		if len(l.clashes) < MaxProblemsPerCode+1 {
			l.clashes = append(l.clashes, path)
		}
	} else {
		l.fold[f] = idx
	}
	l.entries = append(l.entries, e)
	l.bytes = satAdd(l.bytes, size)
	return true
}

func (l *listing) lookup(path string) (*listEntry, bool) {
	if k, ok := blobKey(path); ok {
		i, ok := l.blobs[k]
		if !ok {
			return nil, false
		}
		return &l.entries[i], true
	}
	i, ok := l.others[path]
	if !ok {
		return nil, false
	}
	return &l.entries[i], true
}

// lookupFold finds a listed path with the same case-folded name.
func (l *listing) lookupFold(name string) (*listEntry, string, bool) {
	i, ok := l.fold[foldHash(l.seed, name)]
	if !ok {
		return nil, "", false
	}
	return &l.entries[i], l.pathOf(i), true
}

// pathOf names entry i.
func (l *listing) pathOf(i int32) string {
	e := &l.entries[i]
	if e.path != "" {
		return e.path
	}
	return BlobsDir + hex.EncodeToString(e.blob[:])
}

// each calls fn for every listed path, in listing order.
func (l *listing) each(fn func(path string, e *listEntry)) {
	for i := range l.entries {
		fn(l.pathOf(int32(i)), &l.entries[i])
	}
}

// satAdd adds sizes without overflowing: a listing of sizes near 2^63
// must not wrap around to a small budget.
func satAdd(a, b int64) int64 {
	if b > 0 && a > 1<<63-1-b {
		return 1<<63 - 1
	}
	return a + b
}

func satMul(a, b int64) int64 {
	if a != 0 && b > (1<<63-1)/a {
		return 1<<63 - 1
	}
	return a * b
}
