package bundle

import (
	"bytes"
	"cmp"
	"encoding/hex"
	"hash/maphash"
	"slices"
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

// hasBlob is hasFile of blobs/sha256/<hex>, without building the name
// (a lowercase name is its own case-folded form).
func (ix *nameIndex) hasBlob(hex string) bool {
	var h maphash.Hash
	h.SetSeed(ix.seed)
	h.WriteString(BlobsDir)
	h.WriteString(hex)
	exact := h.Sum64()
	s, ok := ix.slots[exact]
	return ok && s.exact == exact && s.kinds&kindFile != 0
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

// listing is manifest.yaml's list of members, compact: a hundred
// thousand listed blobs cost a few MiB. Blob entries are found by binary
// search over their digest bytes, the other paths by map (shared with
// the parsed manifest); case-folded names by binary search over hashes.
type listing struct {
	entries []listEntry
	// blobIdx orders the blob entries by name; blobName holds the name
	// of each blob entry whose listed sha256 is not its name (a damaged
	// listing, rare); every other blob is named by its sha256.
	blobIdx  []int32
	blobName map[int32][32]byte
	others   map[string]int32
	fold     []foldRef
	seed     maphash.Seed
	// clashes are listed names that differ from an earlier one only in
	// case, or are listed twice: found when the listing is sealed.
	clashes []string
	dups    []string
	bytes   int64 // sum of listed sizes, saturating
}

type foldRef struct {
	hash uint64
	idx  int32
}

type listEntry struct {
	size int64
	sum  [32]byte
	art  *Artifact // referrer entries: their listing (in the Manifest)
	path string    // empty for blobs
	// seek is the compressed offset of the gzip member this entry's
	// header starts, 0 when none does (see memberMarks).
	seek int64

	seen  uint8 // times present, saturating
	state entryState
}

type entryState uint8

const (
	entryHashed  entryState = 1 << iota // read to the end and hashed
	entryMatched                        // size and sha256 equal the listing
	entryFlagged                        // a problem about it: not its own content
	entryFlawed                         // a problem in its content (subject, references)
)

// verified: present once, read whole, equal to its listing, and nothing
// else found wrong with it or in it.
func (e *listEntry) verified() bool {
	return e.seen == 1 && e.state&(entryHashed|entryMatched|entryFlagged|entryFlawed) == entryHashed|entryMatched
}

// newListing makes a listing for about hint entries.
func newListing(seed maphash.Seed, hint int) *listing {
	return &listing{others: map[string]int32{}, blobName: map[int32][32]byte{}, seed: seed,
		entries: make([]listEntry, 0, hint), blobIdx: make([]int32, 0, hint), fold: make([]foldRef, 0, hint)}
}

// blobKey returns the digest bytes of a blobs/sha256/<hex> name.
func blobKey(path string) ([32]byte, bool) {
	h, ok := strings.CutPrefix(path, BlobsDir)
	if !ok {
		return [32]byte{}, false
	}
	return hexKey(h)
}

// digestKey returns the bytes of a sha256:<hex> digest.
func digestKey(d string) ([32]byte, bool) {
	h, ok := strings.CutPrefix(d, "sha256:")
	if !ok {
		return [32]byte{}, false
	}
	return hexKey(h)
}

// hexKey decodes 64 lowercase hex digits without allocating: it runs
// once for every descriptor of every index in a bundle.
func hexKey(h string) (k [32]byte, ok bool) {
	if !validHex(h) {
		return k, false
	}
	nib := func(c byte) byte {
		if c <= '9' {
			return c - '0'
		}
		return c - 'a' + 10
	}
	for i := range k {
		k[i] = nib(h[2*i])<<4 | nib(h[2*i+1])
	}
	return k, true
}

// add lists path; duplicates are found when the listing is sealed.
func (l *listing) add(path string, size int64, sumHex string, art *Artifact) {
	var e listEntry
	e.size, e.art = size, art
	e.sum, _ = hexKey(sumHex) // checked by the parser already
	idx := int32(len(l.entries))
	if k, ok := blobKey(path); ok {
		if k != e.sum {
			l.blobName[idx] = k
		}
		l.blobIdx = append(l.blobIdx, idx)
	} else {
		if _, dup := l.others[path]; dup {
			l.dups = append(l.dups, path)
		}
		l.others[path] = idx
		e.path = path
	}
	l.fold = append(l.fold, foldRef{foldHash(l.seed, path), idx})
	l.entries = append(l.entries, e)
	l.bytes = satAdd(l.bytes, size)
}

// blobOf is the name digest of blob entry i.
func (l *listing) blobOf(i int32) [32]byte {
	if k, ok := l.blobName[i]; ok {
		return k
	}
	return l.entries[i].sum
}

// seal sorts the indexes and finds paths listed twice and names that
// differ only in case.
func (l *listing) seal() {
	if cap(l.entries) > len(l.entries)+len(l.entries)/4+64 {
		l.entries = slices.Clone(l.entries)
		l.blobIdx = slices.Clone(l.blobIdx)
		l.fold = slices.Clone(l.fold)
	}
	slices.SortFunc(l.blobIdx, func(a, b int32) int {
		ka, kb := l.blobOf(a), l.blobOf(b)
		return bytes.Compare(ka[:], kb[:])
	})
	for i := 1; i < len(l.blobIdx); i++ {
		if l.blobOf(l.blobIdx[i]) == l.blobOf(l.blobIdx[i-1]) {
			l.dups = append(l.dups, l.pathOf(l.blobIdx[i]))
		}
	}
	slices.SortFunc(l.fold, func(a, b foldRef) int { return cmp.Or(cmp.Compare(a.hash, b.hash), cmp.Compare(a.idx, b.idx)) })
	for i := 1; i < len(l.fold); i++ {
		if l.fold[i].hash == l.fold[i-1].hash && len(l.clashes) <= MaxProblemsPerCode && l.pathOf(l.fold[i].idx) != l.pathOf(l.fold[i-1].idx) {
			l.clashes = append(l.clashes, l.pathOf(l.fold[i].idx))
		}
	}
}

func (l *listing) lookupBlob(k [32]byte) (int32, bool) {
	i, ok := slices.BinarySearchFunc(l.blobIdx, k, func(idx int32, k [32]byte) int {
		b := l.blobOf(idx)
		return bytes.Compare(b[:], k[:])
	})
	if !ok {
		return 0, false
	}
	return l.blobIdx[i], true
}

func (l *listing) lookup(path string) (*listEntry, bool) {
	if k, ok := blobKey(path); ok {
		i, ok := l.lookupBlob(k)
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
	h := foldHash(l.seed, name)
	i, ok := slices.BinarySearchFunc(l.fold, h, func(f foldRef, h uint64) int { return cmp.Compare(f.hash, h) })
	if !ok {
		return nil, "", false
	}
	idx := l.fold[i].idx
	return &l.entries[idx], l.pathOf(idx), true
}

// pathOf names entry i.
func (l *listing) pathOf(i int32) string {
	e := &l.entries[i]
	if e.path != "" {
		return e.path
	}
	k := l.blobOf(i)
	return BlobsDir + hex.EncodeToString(k[:])
}

// each calls fn for every listed entry, in listing order; pathOf names
// it.
func (l *listing) each(fn func(i int32, e *listEntry)) {
	for i := range l.entries {
		fn(int32(i), &l.entries[i])
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
