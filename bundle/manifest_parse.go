package bundle

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/refdoctor/refdoctor/finding"
)

// Limits of the manifest.yaml decoder. YAML decoders build a tree of
// nodes far larger than the text (a few hundred bytes per node), so a
// manifest is never decoded whole: its block structure is read line by
// line, and each entry (one image, one file, one referrer artifact, one
// top-level value) is decoded on its own, within these bounds, before
// the YAML decoder sees it.
const (
	// MaxManifestEntryBytes bounds the text of one entry, and one line.
	MaxManifestEntryBytes = 1 << 20
	// MaxManifestEntryNodes bounds the YAML nodes of one entry (counted
	// conservatively before decoding: every indicator and every token).
	MaxManifestEntryNodes = 20000
	// MaxImages and MaxSubjects bound manifest.yaml's images and
	// referrer subjects (files and artifacts are bounded by its size and
	// kept compactly).
	MaxImages   = 10_000
	MaxSubjects = 50_000
)

// mline is one line of manifest.yaml.
type mline struct {
	num    int    // 1-based
	indent int    // leading spaces
	text   string // without the line break
}

func (l mline) blank() bool       { return l.indent >= len(l.text) }
func (l mline) comment() bool     { return !l.blank() && l.text[l.indent] == '#' }
func (l mline) significant() bool { return !l.blank() && !l.comment() }

// isItem: a block sequence entry, "- ..." or a lone "-".
func (l mline) isItem() bool {
	rest := l.text[l.indent:]
	return rest == "-" || strings.HasPrefix(rest, "- ")
}

// manifestParser reads manifest.yaml's block structure as refdoctor
// writes it (docs/bundle-format.md section 4): a block mapping at the top,
// images, files, referrers.subjects and each subject's artifacts as block
// sequences, referrers and each subject as block mappings. Everything
// below that level is ordinary YAML, decoded entry by entry.
type manifestParser struct {
	br     *bufio.Reader
	limit  int64
	read   int64
	num    int
	peeked *mline
	eof    bool
	err    error

	m      *Manifest
	onFile func(FileEntry) error
	// paths detects a path listed twice when the caller keeps no listing
	// of its own (onFile nil).
	paths    map[string]struct{}
	subjects map[string]struct{}
	// unknown is the first unknown top-level field; it is reported after
	// the version check, so that a newer format is UnsupportedVersion.
	unknown error
	// interned holds the few media and artifact types a manifest
	// repeats for every artifact.
	interned map[string]string
}

// compact shares the strings an artifact repeats: its types with the
// other artifacts', its sha256 with its digest. A manifest of tens of
// thousands of artifacts is held whole, so this halves what it costs.
func (p *manifestParser) compact(a *Artifact) {
	if p.interned == nil {
		p.interned = map[string]string{}
	}
	intern := func(s string) string {
		if len(p.interned) > 1000 {
			return s
		}
		if t, ok := p.interned[s]; ok {
			return t
		}
		t := strings.Clone(s)
		p.interned[t] = t
		return t
	}
	a.ArtifactType, a.MediaType = intern(a.ArtifactType), intern(a.MediaType)
	a.Category = finding.Category(intern(string(a.Category)))
	if a.Digest[len("sha256:"):] == a.SHA256 {
		a.SHA256 = a.Digest[len("sha256:"):]
	}
	if len(p.interned) > 1000 {
		a.ArtifactType, a.MediaType = strings.Clone(a.ArtifactType), strings.Clone(a.MediaType)
	}
}

func newManifestParser(r io.Reader, limit int64, onFile func(FileEntry) error) *manifestParser {
	if limit <= 0 {
		limit = DefaultManifestLimit
	}
	p := &manifestParser{br: bufio.NewReaderSize(r, 64<<10), limit: limit, m: &Manifest{}, onFile: onFile,
		subjects: map[string]struct{}{}}
	if onFile == nil {
		p.paths = map[string]struct{}{}
	}
	return p
}

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformedManifest, fmt.Sprintf(format, args...))
}

func overLimit(format string, args ...any) error {
	return fmt.Errorf("%w (%w): %s", ErrManifestTooLarge, ErrMalformedManifest, fmt.Sprintf(format, args...))
}

func (p *manifestParser) readLine() (mline, bool) {
	var buf []byte
	for {
		frag, err := p.br.ReadSlice('\n')
		if buf == nil && err == nil {
			// The common case: a whole line in the reader's buffer.
			p.read += int64(len(frag))
			if p.read > p.limit {
				p.err = overLimit("%s is larger than %d bytes", ManifestPath, p.limit)
				return mline{}, false
			}
			buf = frag
			break
		}
		p.read += int64(len(frag))
		if p.read > p.limit {
			p.err = overLimit("%s is larger than %d bytes", ManifestPath, p.limit)
			return mline{}, false
		}
		if len(buf)+len(frag) > MaxManifestEntryBytes {
			p.err = overLimit("line %d is longer than %d bytes", p.num+1, MaxManifestEntryBytes)
			return mline{}, false
		}
		buf = append(buf, frag...)
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err == io.EOF {
			if len(buf) == 0 {
				p.eof = true
				return mline{}, false
			}
			break
		}
		if err != nil {
			p.err = fmt.Errorf("read %s: %w", ManifestPath, err)
			return mline{}, false
		}
		break
	}
	p.num++
	buf = bytes.TrimSuffix(buf, []byte("\n"))
	buf = bytes.TrimSuffix(buf, []byte("\r"))
	if p.num == 1 {
		buf = bytes.TrimPrefix(buf, []byte("\xef\xbb\xbf"))
	}
	l := mline{num: p.num, text: string(buf)}
	for l.indent < len(l.text) && l.text[l.indent] == ' ' {
		l.indent++
	}
	if l.indent < len(l.text) && l.text[l.indent] == '\t' && strings.TrimSpace(l.text) != "" {
		p.err = malformed("line %d: a tab indents the line; YAML indents with spaces", l.num)
		return mline{}, false
	}
	return l, true
}

func (p *manifestParser) peek() (mline, bool) {
	if p.peeked != nil {
		return *p.peeked, true
	}
	if p.err != nil || p.eof {
		return mline{}, false
	}
	l, ok := p.readLine()
	if !ok {
		return mline{}, false
	}
	p.peeked = &l
	return l, true
}

func (p *manifestParser) next() (mline, bool) {
	l, ok := p.peek()
	p.peeked = nil
	return l, ok
}

// peekSignificant skips blank and comment lines.
func (p *manifestParser) peekSignificant() (mline, bool) {
	for {
		l, ok := p.peek()
		if !ok || l.significant() {
			return l, ok
		}
		p.next()
	}
}

// keyRE is a plain mapping key: refdoctor's field names.
var keyRE = regexp.MustCompile(`^([A-Za-z][A-Za-z0-9_]*):(?:$|[ \t](.*)$)`)

// splitKey takes "key: rest" apart; rest is "" for a block value or a
// trailing comment.
func splitKey(content string) (key, rest string, ok bool) {
	m := keyRE.FindStringSubmatch(content)
	if m == nil {
		return "", "", false
	}
	rest = strings.TrimSpace(m[2])
	if strings.HasPrefix(rest, "#") {
		rest = ""
	}
	return m[1], rest, true
}

func isDocStart(s string) bool { return s == "---" || strings.HasPrefix(s, "--- ") }
func isDocEnd(s string) bool   { return s == "..." || strings.HasPrefix(s, "... ") }

func (p *manifestParser) parse() (*Manifest, error) {
	first := true
	seen := map[string]bool{}
	for {
		l, ok := p.peekSignificant()
		if !ok {
			break
		}
		if first && strings.HasPrefix(l.text, "%") {
			return nil, malformed("line %d: YAML directives are not allowed in %s", l.num, ManifestPath)
		}
		if first && isDocStart(l.text) {
			first = false
			p.next()
			if rest := strings.TrimSpace(strings.TrimPrefix(l.text, "---")); rest != "" && !strings.HasPrefix(rest, "#") {
				return nil, malformed("line %d: %s must be a block mapping, one field per line", l.num, ManifestPath)
			}
			continue
		}
		first = false
		if isDocStart(l.text) {
			return nil, malformed("%s holds more than one YAML document (line %d)", ManifestPath, l.num)
		}
		if isDocEnd(l.text) {
			p.next()
			if l, ok := p.peekSignificant(); ok {
				return nil, malformed("%s holds more than one YAML document (line %d)", ManifestPath, l.num)
			}
			break
		}
		if l.indent != 0 {
			return nil, malformed("line %d: unexpected indentation; top-level fields start in the first column", l.num)
		}
		key, rest, ok := splitKey(l.text)
		if !ok {
			return nil, malformed("line %d: expected a top-level field (name: value), as refdoctor writes %s", l.num, ManifestPath)
		}
		p.next()
		if seen[key] {
			return nil, malformed("line %d: mapping key %q already defined", l.num, key)
		}
		seen[key] = true
		if err := p.topField(key, rest, l); err != nil {
			return nil, err
		}
		if key == "schemaVersion" && p.m.SchemaVersion != 0 && p.m.SchemaVersion != FormatVersion {
			return nil, fmt.Errorf("%w: schemaVersion %d (this refdoctor reads %d)", ErrUnsupportedVersion, p.m.SchemaVersion, FormatVersion)
		}
	}
	if p.err != nil {
		return nil, p.err
	}
	if first {
		return nil, malformed("%s is empty", ManifestPath)
	}
	m := p.m
	switch {
	case m.SchemaVersion == 0 && p.unknown == nil:
		return nil, malformed("schemaVersion is missing")
	case m.SchemaVersion != FormatVersion && m.SchemaVersion != 0:
		return nil, fmt.Errorf("%w: schemaVersion %d (this refdoctor reads %d)", ErrUnsupportedVersion, m.SchemaVersion, FormatVersion)
	case p.unknown != nil:
		return nil, p.unknown
	}
	if err := m.checkHead(); err != nil {
		return nil, err
	}
	return m, nil
}

func (p *manifestParser) topField(key, rest string, l mline) error {
	m := p.m
	switch key {
	case "schemaVersion":
		return decodeInto(p, &m.SchemaVersion, 0, l, rest)
	case "kind":
		return decodeInto(p, &m.Kind, 0, l, rest)
	case "createdAt":
		return decodeInto(p, &m.CreatedAt, 0, l, rest)
	case "tool":
		return decodeInto(p, &m.Tool, 0, l, rest)
	case "images":
		return seq(p, 0, l, rest, func(img Image, line int) error {
			if len(m.Images) >= MaxImages {
				return overLimit("line %d: more than %d images", line, MaxImages)
			}
			if err := img.check(len(m.Images)); err != nil {
				return lineErr(err, line)
			}
			m.Images = append(m.Images, img)
			return nil
		})
	case "files":
		return seq(p, 0, l, rest, func(f FileEntry, line int) error { return p.file(f, line) })
	case "referrers":
		if rest != "" {
			var r Referrers
			if err := decodeInto(p, &r, 0, l, rest); err != nil {
				return err
			}
			m.Referrers.Total = r.Total
			for _, s := range r.Subjects {
				if err := p.subject(s, l.num); err != nil {
					return err
				}
			}
			return nil
		}
		return p.referrers()
	}
	if p.unknown == nil {
		p.unknown = malformed("line %d: field %s not found in type bundle.Manifest", l.num, key)
	}
	p.skipValue(0)
	return nil
}

// skipValue passes over the value of a field at indent (an unknown one).
func (p *manifestParser) skipValue(indent int) {
	for {
		l, ok := p.peek()
		if !ok || (l.significant() && l.indent <= indent && !(l.indent == indent && l.isItem())) {
			return
		}
		p.next()
	}
}

func (p *manifestParser) file(f FileEntry, line int) error {
	if err := f.check(); err != nil {
		return lineErr(err, line)
	}
	if p.onFile != nil {
		return p.onFile(f)
	}
	if err := p.listPath(f.Path, line); err != nil {
		return err
	}
	p.m.Files = append(p.m.Files, f)
	return nil
}

func (p *manifestParser) listPath(path string, line int) error {
	if p.paths == nil {
		return nil
	}
	if _, dup := p.paths[path]; dup {
		return malformed("line %d: path %s is listed twice", line, path)
	}
	p.paths[path] = struct{}{}
	return nil
}

// referrers reads the referrers mapping: total and subjects.
func (p *manifestParser) referrers() error {
	l, ok := p.peekSignificant()
	if !ok || l.indent == 0 {
		return p.err // referrers: with no value
	}
	return p.mapping(l.indent, nil, map[string]func(mline, string) error{
		"total": func(l mline, rest string) error { return decodeInto(p, &p.m.Referrers.Total, l.indent, l, rest) },
		"subjects": func(l mline, rest string) error {
			if rest != "" {
				var ss []SubjectEntry
				if err := decodeInto(p, &ss, l.indent, l, rest); err != nil {
					return err
				}
				for _, s := range ss {
					if err := p.subject(s, l.num); err != nil {
						return err
					}
				}
				return nil
			}
			return p.subjectList(l.indent)
		},
	})
}

// subjectList reads the block sequence of subjects, each a mapping whose
// artifacts are read entry by entry.
func (p *manifestParser) subjectList(parent int) error {
	si := -1
	for {
		l, ok := p.peekSignificant()
		if !ok {
			return p.err
		}
		if si == -1 {
			if l.indent < parent || !l.isItem() && l.indent <= parent {
				return nil
			}
			if !l.isItem() {
				return malformed("line %d: expected a subject entry (- subject: ...)", l.num)
			}
			si = l.indent
		}
		switch {
		case l.indent < si:
			return nil
		case l.indent > si:
			return malformed("line %d: unexpected indentation", l.num)
		case !l.isItem():
			if si == parent {
				return nil
			}
			return malformed("line %d: expected a subject entry (- subject: ...)", l.num)
		}
		p.next()
		// "- key: value" opens a mapping at the column after "- ".
		rest := l.text[l.indent+1:]
		ki := l.indent + 1 + len(rest) - len(strings.TrimLeft(rest, " "))
		var s SubjectEntry
		var first *mline
		if strings.TrimSpace(rest) != "" {
			first = &mline{num: l.num, indent: ki, text: strings.Repeat(" ", ki) + l.text[ki:]}
		} else if n, ok := p.peekSignificant(); ok && n.indent > si {
			ki = n.indent
		} else {
			return malformed("line %d: empty subject entry", l.num)
		}
		artifactsLine := l.num
		err := p.mapping(ki, first, map[string]func(mline, string) error{
			"subject":   func(l mline, rest string) error { return decodeInto(p, &s.Subject, ki, l, rest) },
			"discovery": func(l mline, rest string) error { return decodeInto(p, &s.Discovery, ki, l, rest) },
			"count":     func(l mline, rest string) error { return decodeInto(p, &s.Count, ki, l, rest) },
			"artifacts": func(l mline, rest string) error {
				artifactsLine = l.num
				return seq(p, ki, l, rest, func(a Artifact, line int) error {
					if err := a.check(len(s.Artifacts)); err != nil {
						return lineErr(err, line)
					}
					p.compact(&a)
					if err := p.listPath(a.Path, line); err != nil {
						return err
					}
					s.Artifacts = append(s.Artifacts, a)
					return nil
				})
			},
		})
		if err != nil {
			return err
		}
		if err := p.subjectHead(s, artifactsLine); err != nil {
			return err
		}
		p.m.Referrers.Subjects = append(p.m.Referrers.Subjects, s)
	}
}

// subject checks and keeps a subject decoded in one piece (flow style).
func (p *manifestParser) subject(s SubjectEntry, line int) error {
	for i, a := range s.Artifacts {
		if err := a.check(i); err != nil {
			return lineErr(err, line)
		}
		if err := p.listPath(a.Path, line); err != nil {
			return err
		}
	}
	if err := p.subjectHead(s, line); err != nil {
		return err
	}
	p.m.Referrers.Subjects = append(p.m.Referrers.Subjects, s)
	return nil
}

func (p *manifestParser) subjectHead(s SubjectEntry, line int) error {
	if len(p.subjects) >= MaxSubjects {
		return overLimit("line %d: more than %d referrer subjects", line, MaxSubjects)
	}
	if err := s.check(); err != nil {
		return lineErr(err, line)
	}
	if _, dup := p.subjects[s.Subject]; dup {
		return malformed("line %d: subject %s is listed twice", line, s.Subject)
	}
	p.subjects[s.Subject] = struct{}{}
	return nil
}

// mapping reads a block mapping whose keys sit at indent; first, when not
// nil, is its first line (the rest of a "- key: value" line).
func (p *manifestParser) mapping(indent int, first *mline, fields map[string]func(mline, string) error) error {
	seen := map[string]bool{}
	handle := func(l mline) error {
		key, rest, ok := splitKey(l.text[l.indent:])
		if !ok {
			return malformed("line %d: expected a field (name: value)", l.num)
		}
		if seen[key] {
			return malformed("line %d: mapping key %q already defined", l.num, key)
		}
		seen[key] = true
		h, ok := fields[key]
		if !ok {
			return malformed("line %d: field %s is not part of the format", l.num, key)
		}
		return h(l, rest)
	}
	if first != nil {
		if err := handle(*first); err != nil {
			return err
		}
	}
	for {
		l, ok := p.peekSignificant()
		if !ok {
			return p.err
		}
		if l.indent < indent {
			return nil
		}
		if l.indent > indent {
			return malformed("line %d: unexpected indentation", l.num)
		}
		p.next()
		if err := handle(l); err != nil {
			return err
		}
	}
}

// valueLines collects the continuation lines of a value (a field's, or a
// sequence entry's) whose key or dash is at column parent: every line
// indented deeper, blank lines included; a line (a comment too) at parent
// or less ends it.
func (p *manifestParser) valueLines(parent int) ([]mline, error) {
	var out []mline
	size := 0
	for {
		l, ok := p.peek()
		if !ok {
			return out, p.err
		}
		if !l.blank() && l.indent <= parent {
			return out, nil
		}
		p.next()
		size += len(l.text) + 1
		if size > MaxManifestEntryBytes {
			return nil, overLimit("line %d: one entry is longer than %d bytes", l.num, MaxManifestEntryBytes)
		}
		out = append(out, l)
	}
}

// decodeInto decodes the value of the field on line l (inline rest and
// the more deeply indented lines after it) into v.
func decodeInto[T any](p *manifestParser, v *T, parent int, l mline, rest string) error {
	more, err := p.valueLines(parent)
	if err != nil {
		return err
	}
	var b bytes.Buffer
	b.WriteString(rest)
	for _, m := range more {
		b.WriteByte('\n')
		b.WriteString(m.text)
	}
	return decodeEntry(b.Bytes(), l.num, v)
}

// seq reads a sequence value: a flow sequence on the key's line, or a
// block sequence, entry by entry, each decoded on its own.
func seq[T any](p *manifestParser, parent int, l mline, rest string, each func(T, int) error) error {
	if rest != "" {
		var all []T
		if err := decodeInto(p, &all, parent, l, rest); err != nil {
			return err
		}
		for _, v := range all {
			if err := each(v, l.num); err != nil {
				return err
			}
		}
		return nil
	}
	si := -1
	for {
		l, ok := p.peekSignificant()
		if !ok {
			return p.err
		}
		if si == -1 {
			if l.indent < parent || (l.indent == parent && !l.isItem()) {
				return nil // no entries: the value is null
			}
			if !l.isItem() {
				return malformed("line %d: expected a list entry (- ...)", l.num)
			}
			si = l.indent
		}
		switch {
		case l.indent < si:
			return nil
		case l.indent > si:
			return malformed("line %d: unexpected indentation", l.num)
		case !l.isItem():
			if si == parent {
				return nil
			}
			return malformed("line %d: expected a list entry (- ...)", l.num)
		}
		p.next()
		var v T
		if ok, err := fastEntry(l.text[l.indent+1:], &v); err != nil {
			return lineErr(err, l.num)
		} else if !ok {
			more, err := p.valueLines(si)
			if err != nil {
				return err
			}
			if a, isArtifact := any(&v).(*Artifact); isArtifact && fastArtifact(l.text[si+1:], more, si+2, a) {
				if err := each(v, l.num); err != nil {
					return err
				}
				continue
			}
			// The entry without its "-": the same node, now the document.
			var b bytes.Buffer
			b.WriteString(strings.Repeat(" ", si+1))
			b.WriteString(l.text[si+1:])
			for _, m := range more {
				b.WriteByte('\n')
				b.WriteString(m.text)
			}
			if err := decodeEntry(b.Bytes(), l.num, &v); err != nil {
				return err
			}
		}
		if err := each(v, l.num); err != nil {
			return err
		}
	}
}

var yamlLineRE = regexp.MustCompile(`line (\d+)`)

// decodeEntry decodes one entry of at most MaxManifestEntryBytes and
// MaxManifestEntryNodes into v, strictly: no anchors, aliases or tags, no
// unknown fields, no duplicate keys. first is the manifest line the text
// starts on, for error messages.
func decodeEntry[T any](text []byte, first int, v *T) error {
	if len(text) > MaxManifestEntryBytes {
		return overLimit("line %d: one entry is longer than %d bytes", first, MaxManifestEntryBytes)
	}
	if n := yamlNodeBound(text); n > MaxManifestEntryNodes {
		return overLimit("line %d: one entry has up to %d YAML nodes, more than the %d allowed", first, n, MaxManifestEntryNodes)
	}
	var doc yaml.Node
	err := func() (err error) {
		// The decoder is third-party code fed hostile input; a panic in
		// it must become a malformed manifest, not a crashed validator.
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("YAML decoder failed: %v", r)
			}
		}()
		if err := yaml.Unmarshal(text, &doc); err != nil {
			return err
		}
		if doc.Kind == 0 {
			return nil // empty: null
		}
		if err := checkNode(&doc, reflect.TypeOf(v).Elem()); err != nil {
			return err
		}
		return doc.Decode(v)
	}()
	if err != nil {
		msg := err.Error()
		// Errors count lines from the entry; the operator needs the line
		// in manifest.yaml.
		msg = yamlLineRE.ReplaceAllStringFunc(msg, func(s string) string {
			n, _ := strconv.Atoi(strings.TrimPrefix(s, "line "))
			return "line " + strconv.Itoa(n+first-1)
		})
		if i := strings.Index(msg, "\n"); i >= 0 {
			rest := strings.Count(msg[i:], "\n")
			msg = msg[:i] + fmt.Sprintf(" (and %d more)", rest)
		}
		return malformed("%s", clip(strings.TrimPrefix(msg, "yaml: "), maxMessageBytes))
	}
	return nil
}

// yamlNodeBound is an upper bound on the nodes a YAML decoder builds from
// text: every node starts at an indicator or a token, and an indicator
// may add one implicit empty node.
func yamlNodeBound(text []byte) int {
	n, inToken := 1, false
	for _, c := range text {
		switch c {
		case ' ', '\t', '\r', '\n':
			inToken = false
		case '-', ':', ',', '?', '[', ']', '{', '}':
			n += 2
			inToken = false
		default:
			if !inToken {
				n++
				inToken = true
			}
		}
	}
	return n
}

var timeType = reflect.TypeOf(time.Time{})

// checkNode refuses what the format does not use and would let a small
// text stand for a large value (anchors and aliases), or change what a
// value means (tags), and every field t does not have.
func checkNode(n *yaml.Node, t reflect.Type) error {
	if n.Anchor != "" || n.Kind == yaml.AliasNode {
		return fmt.Errorf("line %d: anchors and aliases are not allowed in %s", n.Line, ManifestPath)
	}
	if n.Style&yaml.TaggedStyle != 0 {
		return fmt.Errorf("line %d: YAML tags are not allowed in %s", n.Line, ManifestPath)
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			if err := checkNode(c, t); err != nil {
				return err
			}
		}
	case yaml.SequenceNode:
		if t.Kind() != reflect.Slice {
			return nil // the decoder reports the type error
		}
		for _, c := range n.Content {
			if err := checkNode(c, t.Elem()); err != nil {
				return err
			}
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			if err := checkNode(k, reflect.TypeOf("")); err != nil {
				return err
			}
			switch {
			case t.Kind() == reflect.Map:
				if err := checkNode(val, t.Elem()); err != nil {
					return err
				}
			case t.Kind() == reflect.Struct && t != timeType:
				f, ok := yamlField(t, k.Value)
				if !ok {
					return fmt.Errorf("line %d: field %s not found in type %s", k.Line, k.Value, t)
				}
				if err := checkNode(val, f.Type); err != nil {
					return err
				}
			default:
				if err := checkNode(val, reflect.TypeOf("")); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func yamlField(t reflect.Type, name string) (reflect.StructField, bool) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if tag == name || (tag == "" && strings.EqualFold(f.Name, name)) {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// fastEntry decodes a files entry in exactly the form refdoctor writes
// ("{path: P, size: N, sha256: H}" with a plain path), without the YAML
// decoder: a hundred thousand of them would otherwise dominate the time
// to read a manifest. Anything else is left to the decoder (ok false).
// The test FuzzFastEntry checks that both read every such line alike.
func fastEntry[T any](rest string, v *T) (bool, error) {
	fe, isFile := any(v).(*FileEntry)
	if !isFile {
		return false, nil
	}
	s, ok := strings.CutPrefix(rest, " {path: ")
	if !ok {
		return false, nil
	}
	path, s, ok := strings.Cut(s, ", size: ")
	if !ok || !plainPath(path) {
		return false, nil
	}
	size, s, ok := strings.Cut(s, ", sha256: ")
	if !ok || !plainInt(size) {
		return false, nil
	}
	sum, ok := strings.CutSuffix(s, "}")
	if !ok || !validHex(sum) || !strings.ContainsAny(sum, "abcdef") {
		return false, nil
	}
	n, err := strconv.ParseInt(size, 10, 64)
	if err != nil {
		return false, nil
	}
	*fe = FileEntry{Path: path, Size: n, SHA256: sum}
	return true, nil
}

// artifactKeys are an artifact's fields in the order refdoctor writes
// them.
var artifactKeys = []string{"digest", "artifactType", "mediaType", "category", "size", "path", "sha256", "annotations"}

// fastArtifact decodes an artifacts entry in exactly the form refdoctor
// writes when it has no annotations (eight lines, "annotations: {}"),
// without the YAML decoder, whose per-entry cost dominates a manifest of
// tens of thousands of artifacts. Anything else is left to the decoder.
// FuzzFastEntry checks that both read every such entry alike.
func fastArtifact(first string, more []mline, indent int, a *Artifact) bool {
	if len(more) != len(artifactKeys)-1 || !strings.HasPrefix(first, " ") {
		return false
	}
	vals := make([]string, 0, len(artifactKeys))
	for i, key := range artifactKeys {
		line := first[1:]
		if i > 0 {
			l := more[i-1]
			if l.indent != indent {
				return false
			}
			line = l.text[indent:]
		}
		v, ok := strings.CutPrefix(line, key+": ")
		if !ok {
			return false
		}
		vals = append(vals, v)
	}
	if vals[7] != "{}" || !plainInt(vals[4]) || !validHex(vals[6]) || !strings.ContainsAny(vals[6], "abcdf") {
		return false
	}
	for _, i := range []int{0, 1, 2, 3, 5} {
		if !plainString(vals[i]) {
			return false
		}
	}
	size, err := strconv.ParseInt(vals[4], 10, 64)
	if err != nil {
		return false
	}
	// Copies, so that the artifact does not keep its lines alive; the
	// repeated types are shared by compact.
	*a = Artifact{Digest: strings.Clone(vals[0]), ArtifactType: vals[1], MediaType: vals[2], Category: finding.Category(vals[3]),
		Size: size, Path: strings.Clone(vals[5]), SHA256: strings.Clone(vals[6]), Annotations: map[string]string{}}
	return true
}

// plainString: a value YAML reads as the same string, plain: a letter
// first, then letters, digits and . _ / - : + only (no space, so no ": "
// or " #"), and no YAML keyword.
func plainString(s string) bool {
	if s == "" || !(s[0] >= 'a' && s[0] <= 'z' || s[0] >= 'A' && s[0] <= 'Z') {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("._/-:+", c) >= 0) {
			return false
		}
	}
	switch strings.ToLower(s) {
	case "true", "false", "null", "yes", "no", "on", "off", "y", "n":
		return false
	}
	return true
}

// plainPath: a path YAML reads as the same string, plain: a letter
// first, then letters, digits and . _ / - only, and at least one of
// . / - so that it is no YAML keyword (true, null, ...).
func plainPath(s string) bool {
	if s == "" || !(s[0] >= 'a' && s[0] <= 'z' || s[0] >= 'A' && s[0] <= 'Z') {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '/' || c == '-') {
			return false
		}
	}
	return strings.ContainsAny(s, "./-")
}

// plainInt: a decimal YAML reads as that integer (no sign, no leading
// zero, no underscore).
func plainInt(s string) bool {
	if s == "" || len(s) > 18 || (len(s) > 1 && s[0] == '0') {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func lineErr(err error, line int) error {
	return fmt.Errorf("line %d: %w", line, err)
}
