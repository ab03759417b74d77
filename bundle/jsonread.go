package bundle

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"hash/maphash"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// A manifest is pushed as the bytes validation read, and every reader past
// the gap parses those bytes again: registries, runtimes, scanners, policy
// engines, in Go and in other languages. JSON leaves room for them to read
// one document two ways, and validation checks what Go reads, so a
// document they could read differently is refused (AmbiguousDocument):
//
//   - a key twice in one object: Go's decoder keeps the last, others the
//     first, some refuse the document;
//   - a field name in another case ("Layers", or "layerſ" with the long s):
//     Go's decoder matches names in any case, readers that match exactly
//     ignore it, so they read other layers, another digest;
//   - a key that is not valid UTF-8 (Go reads U+FFFD, others the bytes or
//     nothing);
//   - both a manifest and an index: "manifests" beside "layers" or
//     "config", or a mediaType its fields contradict; readers that go by
//     the fields and readers that go by mediaType read different images
//     (CVE-2021-41190, GHSA-77vh-xpmg-72qh; image-spec 1.0.2 asks readers
//     to refuse such documents);
//   - a document other readers take for a manifest or index (schemaVersion
//     2 and a manifest mediaType or shape) that Go's decoder refuses, such
//     as a size written 1e3: validation could not check what it references.

// DocumentAmbiguity says how JSON readers could read data, a manifest or
// index, differently (see above), or "" when they cannot or data is not
// one: an image config or an SBOM is content, not judged here.
func DocumentAmbiguity(data []byte) string {
	_, _, parsed := scanOCIDocument(data, nil)
	return ambiguity(data, parsed)
}

// ambiguity is DocumentAmbiguity for a document Go's decoder read as a
// manifest or index (parsed) or not.
func ambiguity(data []byte, parsed bool) string {
	rd := readDocument(data)
	switch {
	case !parsed && !rd.looksOCI:
		return ""
	case rd.why == "" && !parsed:
		var d OCIDocument
		err := json.Unmarshal(data, &d)
		if err == nil {
			err = fmt.Errorf("it does not read as one")
		}
		return fmt.Sprintf("other readers take it for an OCI manifest or index (schemaVersion 2 and a manifest mediaType or shape), but Go's JSON decoder refuses it (%v), so what it references was not checked", err)
	}
	return rd.why
}

// The fields of the image spec's structs, by the object they are in; Go's
// decoder reads these names in any case.
var (
	documentFields   = []string{"schemaVersion", "mediaType", "artifactType", "config", "layers", "manifests", "subject", "annotations"}
	descriptorFields = []string{"mediaType", "digest", "size", "urls", "annotations", "data", "platform", "artifactType"}
	platformFields   = []string{"architecture", "os", "os.version", "os.features", "variant", "features"}
)

// objectKind is what an object is read as.
type objectKind uint8

const (
	kindValue      objectKind = iota // read by nobody field by field
	kindDocument                     // the manifest or index
	kindDescriptor                   // config, subject, layers[i], manifests[i]
	kindPlatform                     // a descriptor's platform
	kindMap                          // annotations: any key, each once
)

func (k objectKind) fields() []string {
	switch k {
	case kindDocument:
		return documentFields
	case kindDescriptor:
		return descriptorFields
	case kindPlatform:
		return platformFields
	}
	return nil
}

// child is the kind of the value of field (as Go names it) in an object of
// kind k; list says it is an array of objects of that kind.
func (k objectKind) child(field string) (kind objectKind, list bool) {
	switch {
	case field == "annotations" && (k == kindDocument || k == kindDescriptor):
		return kindMap, false
	case k == kindDocument && (field == "config" || field == "subject"):
		return kindDescriptor, false
	case k == kindDocument && (field == "layers" || field == "manifests"):
		return kindDescriptor, true
	case k == kindDescriptor && field == "platform":
		return kindPlatform, false
	}
	return kindValue, false
}

// maxJSONDepth is the nesting Go's decoder accepts.
const maxJSONDepth = 10000

// documentReading is what reading a document key by key found.
type documentReading struct {
	// why is the first way readers could read the document differently,
	// "" when there is none.
	why string
	// looksOCI: a reader that takes any occurrence of a field could read
	// the document as an OCI manifest or index.
	looksOCI bool
}

// readDocument reads data as every JSON reader might. A document that is
// not JSON at all, or not an object, reads as no document.
func readDocument(data []byte) documentReading {
	r := jsonReader{data: data, seed: maphash.MakeSeed()}
	r.skipBlank()
	if r.pos >= len(r.data) || r.data[r.pos] != '{' {
		return documentReading{}
	}
	r.value(kindDocument, false)
	if r.bad {
		return documentReading{}
	}
	r.skipBlank()
	if r.pos != len(r.data) && r.why == "" {
		r.why = "another JSON value follows the document; readers that read a stream take it as a second document"
	}
	t := r.top
	hasIndexFields := t.manifests
	hasManifestFields := t.layers || t.config
	untyped := len(t.mediaTypes) == 0 || slices.Contains(t.mediaTypes, "") // mediaType is optional: the shape decides
	looks := t.schemaV2 && (t.manifestType || (untyped && (t.manifests || (t.config && t.layers))))
	if looks && r.why == "" {
		switch {
		case hasIndexFields && hasManifestFields:
			r.why = fmt.Sprintf("it has %q beside %s, so it is both an index and an image manifest: readers that go by its fields and readers that go by its mediaType read different images (CVE-2021-41190)",
				"manifests", quoteFields(t.layers, t.config))
		case len(t.mediaTypes) > 0 && hasManifestFields && isIndexMediaType(t.mediaTypes[0]):
			r.why = fmt.Sprintf("its mediaType %s is an index, yet it has %s: readers that go by its fields read an image manifest (CVE-2021-41190)",
				t.mediaTypes[0], quoteFields(t.layers, t.config))
		case len(t.mediaTypes) > 0 && hasIndexFields && isImageManifestMediaType(t.mediaTypes[0]):
			r.why = fmt.Sprintf("its mediaType %s is an image manifest, yet it has %q: readers that go by its fields read an index (CVE-2021-41190)",
				t.mediaTypes[0], "manifests")
		}
	}
	return documentReading{why: r.why, looksOCI: looks}
}

func quoteFields(layers, config bool) string {
	switch {
	case layers && config:
		return `"layers" and "config"`
	case layers:
		return `"layers"`
	}
	return `"config"`
}

func isIndexMediaType(mt string) bool {
	return mt == mediaTypeOCIIndex || mt == mediaTypeDockerManifestList
}

func isImageManifestMediaType(mt string) bool {
	return mt == mediaTypeOCIManifest || mt == mediaTypeDockerManifest
}

// topFields is what the document's own object says, every occurrence of a
// field counted, whatever its case.
type topFields struct {
	schemaV2                  bool
	manifestType              bool
	mediaTypes                []string
	config, layers, manifests bool
}

// pathStep is one step from the document to the object being read: an
// index, or a key (where its raw bytes are, decoded only for a note).
type pathStep struct {
	index      int // -1 for a key
	start, end int32
}

// jsonReader walks a document once. It does not validate JSON beyond what
// it needs to find keys and values (Go's decoder has the last word on
// syntax); on anything it cannot read it sets bad.
type jsonReader struct {
	data  []byte
	pos   int
	bad   bool
	why   string
	depth int
	path  []pathStep
	keys  [][]keyRef // per depth, reused: the keys of the object open there
	seed  maphash.Seed
	top   topFields
}

// keyRef is a key of the object being read: its hash and where its raw
// bytes are, so that a repeat can be told without holding the keys (an
// object of annotations may hold hundreds of thousands).
type keyRef struct {
	hash       uint64
	start, end int32
}

// maxKeyShown is how much of a key a note quotes.
const maxKeyShown = 120

func (r *jsonReader) skipBlank() {
	for r.pos < len(r.data) {
		switch r.data[r.pos] {
		case ' ', '\t', '\r', '\n':
			r.pos++
		default:
			return
		}
	}
}

// note keeps the first disagreement.
func (r *jsonReader) note(format string, args ...any) {
	if r.why == "" {
		r.why = fmt.Sprintf(format, args...)
	}
}

// where names the object being read, for notes: "the document",
// "layers[2]", "manifests[0].platform".
func (r *jsonReader) where() string {
	if len(r.path) == 0 {
		return "the document"
	}
	var b strings.Builder
	for i, s := range r.path {
		if s.index >= 0 {
			fmt.Fprintf(&b, "[%d]", s.index)
			continue
		}
		var key string
		_ = json.Unmarshal(r.data[s.start:s.end], &key)
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(clip(key, maxKeyShown))
	}
	return b.String()
}

// value reads one value; an object is read as kind, an array's objects as
// kind when list says the array holds them.
func (r *jsonReader) value(kind objectKind, list bool) (raw []byte) {
	r.skipBlank()
	if r.pos >= len(r.data) || r.bad {
		r.bad = true
		return nil
	}
	start := r.pos
	switch c := r.data[r.pos]; c {
	case '{':
		if !list {
			r.object(kind)
		} else {
			r.object(kindValue)
		}
	case '[':
		if list {
			r.array(kind)
		} else {
			r.array(kindValue)
		}
	case '"':
		r.str()
	default:
		for r.pos < len(r.data) {
			switch r.data[r.pos] {
			case ',', '}', ']', ' ', '\t', '\r', '\n':
				return r.data[start:r.pos]
			}
			r.pos++
		}
	}
	if r.bad {
		return nil
	}
	return r.data[start:r.pos]
}

// str reads a string and returns its raw bytes, quotes included.
func (r *jsonReader) str() []byte {
	start := r.pos
	r.pos++ // the opening quote
	for r.pos < len(r.data) {
		i := bytes.IndexAny(r.data[r.pos:], `"\\`)
		if i < 0 {
			break
		}
		r.pos += i
		if r.data[r.pos] == '\\' {
			r.pos += 2
			continue
		}
		r.pos++
		return r.data[start:r.pos]
	}
	r.pos = len(r.data)
	r.bad = true
	return nil
}

func (r *jsonReader) enter() bool {
	r.depth++
	if r.depth > maxJSONDepth {
		r.bad = true
		return false
	}
	for len(r.keys) < r.depth {
		r.keys = append(r.keys, nil)
	}
	r.keys[r.depth-1] = r.keys[r.depth-1][:0]
	return true
}

// next reads what follows a member of an array or object: a comma (true:
// another member follows) or the closing byte (false, and so for anything
// else, which sets bad).
func (r *jsonReader) next(closing byte) bool {
	r.skipBlank()
	switch {
	case r.pos >= len(r.data):
		r.bad = true
	case r.data[r.pos] == ',':
		r.pos++
		return true
	case r.data[r.pos] == closing:
		r.pos++
	default:
		r.bad = true
	}
	return false
}

func (r *jsonReader) array(kind objectKind) {
	r.pos++ // [
	if !r.enter() {
		return
	}
	defer func() { r.depth-- }()
	for i := 0; ; i++ {
		r.skipBlank()
		if r.pos < len(r.data) && r.data[r.pos] == ']' && i == 0 {
			r.pos++
			return
		}
		r.path = append(r.path, pathStep{index: i})
		r.value(kind, false)
		r.path = r.path[:len(r.path)-1]
		if r.bad {
			return
		}
		if !r.next(']') {
			return
		}
	}
}

func (r *jsonReader) object(kind objectKind) {
	r.pos++ // {
	if !r.enter() {
		return
	}
	level := r.depth - 1
	defer func() { r.depth-- }()
	fields := kind.fields()
	for i := 0; ; i++ {
		r.skipBlank()
		if r.pos >= len(r.data) {
			r.bad = true
			return
		}
		if r.data[r.pos] == '}' && i == 0 {
			r.pos++
			return
		}
		if r.data[r.pos] != '"' {
			r.bad = true
			return
		}
		start := r.pos
		rawKey := r.str()
		if r.bad {
			return
		}
		key, plain, ok := r.decodeKey(rawKey)
		if !ok {
			return
		}
		ref := keyRef{start: int32(start), end: int32(r.pos)}
		if plain {
			key := rawKey[1 : len(rawKey)-1]
			ref.hash = maphash.Bytes(r.seed, key)
		} else {
			ref.hash = maphash.String(r.seed, key)
		}
		r.addKey(level, ref)
		field := ""
		for _, f := range fields {
			if (plain && string(rawKey[1:len(rawKey)-1]) == f) || (!plain && key == f) {
				field = f
				break
			}
		}
		if field == "" && fields != nil {
			if plain {
				key = string(rawKey[1 : len(rawKey)-1])
			}
			for _, f := range fields {
				if strings.EqualFold(f, key) {
					field = f
					r.note("the key %q in %s is read as %q by Go's JSON decoder, which matches names in any case, and ignored by readers that match names exactly",
						clip(key, maxKeyShown), r.where(), f)
					break
				}
			}
		}
		r.skipBlank()
		if r.pos >= len(r.data) || r.data[r.pos] != ':' {
			r.bad = true
			return
		}
		r.pos++
		child, list := kind.child(field)
		r.path = append(r.path, pathStep{index: -1, start: ref.start, end: ref.end})
		raw := r.value(child, list)
		r.path = r.path[:len(r.path)-1]
		if r.bad {
			return
		}
		if kind == kindDocument && level == 0 {
			r.topField(field, raw)
		}
		if !r.next('}') {
			r.checkRepeats(level)
			return
		}
	}
}

// addKey records a key of the object open at level; a short list is
// checked for a repeat at once, a long one when the object ends.
func (r *jsonReader) addKey(level int, ref keyRef) {
	const listMax = 32
	keys := r.keys[level]
	if len(keys) < listMax {
		for _, k := range keys {
			if k.hash == ref.hash && r.sameKey(k, ref) {
				r.noteRepeat(ref)
				break
			}
		}
	}
	r.keys[level] = append(keys, ref)
}

// checkRepeats finds a repeated key among the many of a long object, by
// sorting their hashes.
func (r *jsonReader) checkRepeats(level int) {
	keys := r.keys[level]
	if len(keys) <= 32 || r.why != "" {
		return
	}
	slices.SortFunc(keys, func(a, b keyRef) int { return cmp.Compare(a.hash, b.hash) })
	for i := 1; i < len(keys); i++ {
		if keys[i].hash == keys[i-1].hash && r.sameKey(keys[i], keys[i-1]) {
			r.noteRepeat(keys[i])
			return
		}
	}
}

// sameKey tells two keys with one hash apart by what Go's decoder reads.
func (r *jsonReader) sameKey(a, b keyRef) bool {
	var ka, kb string
	if json.Unmarshal(r.data[a.start:a.end], &ka) != nil || json.Unmarshal(r.data[b.start:b.end], &kb) != nil {
		return false
	}
	return ka == kb
}

func (r *jsonReader) noteRepeat(k keyRef) {
	var key string
	_ = json.Unmarshal(r.data[k.start:k.end], &key)
	r.note("the key %q appears twice in %s: readers differ on which one counts (Go's decoder keeps the last, others the first, some refuse the document)",
		clip(key, maxKeyShown), r.where())
}

// decodeKey reads a key as Go's decoder does (escapes resolved) and notes
// a key other readers read otherwise. A plain key (no escape, ASCII) is
// its raw bytes: plain is true and key is left empty, so that the many
// keys of a large index cost no allocation.
func (r *jsonReader) decodeKey(raw []byte) (key string, plain, ok bool) {
	inner := raw[1 : len(raw)-1]
	if bytes.IndexByte(inner, '\\') < 0 && isASCII(inner) {
		return "", true, true
	}
	if !utf8.Valid(inner) {
		r.note("a key in %s is not valid UTF-8: Go's decoder reads U+FFFD in its place, other readers the bytes or nothing", r.where())
	}
	var decoded string // its own variable: &decoded escapes, and only this path pays for it
	if err := json.Unmarshal(raw, &decoded); err != nil {
		r.bad = true
		return "", false, false
	}
	key = decoded
	if strings.ContainsRune(key, utf8.RuneError) && !bytes.Contains(inner, []byte("\uFFFD")) &&
		!bytes.Contains(bytes.ToLower(inner), []byte(`\ufffd`)) {
		r.note("a key in %s holds an escape that is not a character (a lone surrogate): Go's decoder reads U+FFFD in its place, other readers refuse it", r.where())
	}
	return key, false, true
}

// topField records a field of the document's own object.
func (r *jsonReader) topField(field string, raw []byte) {
	null := string(raw) == "null"
	switch field {
	case "schemaVersion":
		if f, err := strconv.ParseFloat(string(raw), 64); err == nil && f == 2 {
			r.top.schemaV2 = true
		}
	case "mediaType":
		var mt string
		if json.Unmarshal(raw, &mt) == nil {
			r.top.mediaTypes = append(r.top.mediaTypes, mt)
			if isManifestMediaType(mt) {
				r.top.manifestType = true
			}
		}
	case "config":
		r.top.config = r.top.config || !null
	case "layers":
		r.top.layers = r.top.layers || !null
	case "manifests":
		r.top.manifests = r.top.manifests || !null
	}
}

func isASCII(b []byte) bool {
	for _, c := range b {
		if c >= utf8.RuneSelf {
			return false
		}
	}
	return true
}
