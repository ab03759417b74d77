package bundle_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"reflect"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/refdoctor/refdoctor/bundle"
	"github.com/refdoctor/refdoctor/internal/craft"
)

// readerRule is how a tar reader other than Go's names members: GNU tar
// and Python's tarfile, as observed (see TestSmuggling, which asks them).
type readerRule int

const (
	gnuRule readerRule = iota
	pythonRule
)

// otherReaderNames names the members of a raw tar as GNU tar or Python
// would: a model written apart from the validator's header tracker, so
// that the fuzz target compares two readings. ok is false where the model
// cannot tell (damage, sparse files, header-only entries with data): the
// validator must refuse those anyway.
func otherReaderNames(raw []byte, rule readerRule) (names []string, ok bool) {
	var pax, global map[string]string
	var long string
	longSeen, zeros := false, 0
	for off := 0; off+512 <= len(raw); {
		blk := raw[off : off+512]
		off += 512
		if bytes.Equal(blk, make([]byte, 512)) {
			if zeros++; zeros == 2 {
				return names, true
			}
			continue
		}
		zeros = 0
		size, err := octal(blk[124:136])
		if err != nil || size < 0 || int64(off)+size > int64(len(raw)) {
			return names, false
		}
		data := raw[off : off+int(size)]
		next := off + int((size+511)/512*512)
		flag := blk[156]
		switch flag {
		case 'x', 'g':
			recs := map[string]string{}
			for rest := data; len(rest) > 0; {
				sp := bytes.IndexByte(rest, ' ')
				n, err := strconv.Atoi(string(rest[:max(sp, 0)]))
				if sp < 0 || err != nil || n <= sp || n > len(rest) {
					return names, false
				}
				k, v, _ := strings.Cut(strings.TrimSuffix(string(rest[sp+1:n]), "\n"), "=")
				recs[k] = v
				rest = rest[n:]
			}
			target := &pax
			if flag == 'g' {
				target = &global
			}
			if *target == nil {
				*target = map[string]string{}
			}
			for k, v := range recs {
				if _, had := (*target)[k]; had && rule == pythonRule && flag == 'x' {
					continue // Python applies the first of two PAX headers last
				}
				(*target)[k] = v
			}
			off = next
			continue
		case 'L':
			if !longSeen || rule == gnuRule {
				long = string(bytes.TrimRight(data, "\x00"))
			}
			longSeen = true
			off = next
			continue
		case 'K':
			off = next
			continue
		case 'S':
			return names, false
		}
		name := cstr(blk[0:100])
		if prefix := cstr(blk[345:500]); prefix != "" {
			ustar := string(blk[257:263]) == "ustar\x00" && string(blk[263:265]) == "00"
			if rule == pythonRule || ustar {
				name = prefix + "/" + name
			}
		}
		if longSeen {
			name = long
		}
		if p, ok := global["path"]; ok {
			name = p
		}
		if p, ok := pax["path"]; ok {
			name = p
		}
		if s, ok := pax["size"]; ok {
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil || int64(off)+n > int64(len(raw)) {
				return names, false
			}
			size, next = n, off+int((n+511)/512*512)
		}
		if flag == 0 && strings.HasSuffix(name, "/") {
			flag = '5'
		}
		if strings.IndexByte("123456", flag) >= 0 {
			if size > 0 {
				return names, false
			}
			next = off
		}
		names = append(names, strings.TrimSuffix(strings.TrimPrefix(name, "./"), "/"))
		off = next
		pax, long, longSeen = nil, "", false
	}
	return names, true
}

func octal(b []byte) (int64, error) {
	s := strings.Trim(string(b), " \x00")
	if s == "" {
		return 0, nil
	}
	return strconv.ParseInt(s, 8, 64)
}

func cstr(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

func goReaderNames(raw []byte) ([]string, bool) {
	var names []string
	tr := tar.NewReader(bytes.NewReader(raw))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return names, true
		}
		if err != nil {
			return names, false
		}
		if h.Typeflag != tar.TypeXGlobalHeader {
			names = append(names, strings.TrimSuffix(strings.TrimPrefix(h.Name, "./"), "/"))
		}
	}
}

// FuzzTarReadersAgree: whatever raw tar the fuzzer makes, if refdoctor
// calls the bundle whole, Go's reader, and GNU tar and Python as
// modelled, name the same members in the same order.
func FuzzTarReadersAgree(f *testing.F) {
	valid := craft.Valid()
	f.Add(valid.Tar())
	idx, _ := evilIndex(valid)
	name := "blobs/sha256/" + craft.Sum(idx)
	for _, raw := range [][]byte{
		append(craft.PAXHeader('x', "path", "index.json"), append(craft.LongName(name), craft.File("x", idx)...)...),
		append(craft.PAXHeader('g', "path", "index.json"), craft.File(name, idx)...),
		craft.Entry("layout/", 0, craft.File("index.json", idx), craft.V7()),
		craft.File("notes.txt", []byte("n"), craft.V7(), craft.Prefix("hidden")),
	} {
		b := craft.Valid()
		b.Members = append(b.Members, craft.Member{Name: name, Raw: raw})
		f.Add(b.Tar())
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		rep, err := bundle.Validate(ctx, bytes.NewReader(craft.Gzip(raw)), bundle.WithCheckReferrers(true), bundle.WithMaxArchiveSize(64<<20))
		if errors.Is(err, context.DeadlineExceeded) {
			t.Fatal("validation of a small input took 10 s")
		}
		if err != nil || !rep.OK {
			return
		}
		goNames, ok := goReaderNames(raw)
		if !ok {
			t.Fatal("refdoctor passed an archive Go's tar reader fails on")
		}
		for _, rule := range []readerRule{gnuRule, pythonRule} {
			other, ok := otherReaderNames(raw, rule)
			if !ok || !slices.Equal(other, goNames) {
				t.Fatalf("refdoctor passed an archive readers disagree on (rule %d, model ok %v):\ngo:    %q\nother: %q", rule, ok, goNames, other)
			}
		}
	})
}

// FuzzValidateMemory: validation's allocations stay proportional to its
// input. A decoder that expands a small input into a large structure
// (YAML aliases, a huge descriptor list held whole) fails it.
func FuzzValidateMemory(f *testing.F) {
	for _, s := range fuzzSeedsValidate(f) {
		f.Add(s)
	}
	f.Add(craft.Valid().Tgz())
	for _, c := range craft.HostileQuick() {
		if strings.HasPrefix(c.Name, "yaml-aliases") || c.Name == "yaml-16MiB-nested-flow" {
			var b bytes.Buffer
			if err := c.Write(&b); err == nil {
				f.Add(b.Bytes())
			}
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		rep, _ := bundle.Validate(ctx, bytes.NewReader(data), bundle.WithCheckReferrers(true), bundle.WithMaxArchiveSize(64<<20))
		runtime.ReadMemStats(&after)
		// A fixed cost (buffers, a 4 MiB document, a few MiB of a 16 MiB
		// manifest's garbage) plus a bounded cost per input byte.
		if alloc, limit := after.TotalAlloc-before.TotalAlloc, uint64(48<<20+4096*len(data)); alloc > limit {
			t.Fatalf("%d input bytes allocated %d bytes (limit %d); report %d problems", len(data), alloc, limit, len(rep.Errors))
		}
	})
}

const fuzzHead = "schemaVersion: 1\nkind: MirrorBundle\ncreatedAt: 2026-11-27T12:00:00Z\ntool: {name: refdoctor, version: v0.1.0}\n"

// FuzzFastEntry: manifest.yaml's files and artifacts entries in
// refdoctor's own layout are read without the YAML decoder. Each entry is
// parsed twice, once as written and once with a comment that sends it to
// the YAML decoder; both must give the same manifest, or both fail.
func FuzzFastEntry(f *testing.F) {
	h := strings.Repeat("ab", 32)
	f.Add("blobs/sha256/"+h, "12", h, "sha256:"+h, "application/vnd.cyclonedx+json", "application/vnd.oci.image.manifest.v1+json", "sbom", "referrers/sha256-"+h+"/sha256-"+h+".json")
	f.Add("oci-layout", "0", h, "sha256:"+h, "true", "null", "other", "x")
	f.Add("index.json", "007", strings.Repeat("1", 64), "sha256:"+strings.Repeat("1e", 32), "a:b", "a: b", "vex", "p # q")
	f.Fuzz(func(t *testing.T, path, size, sum, digest, artifactType, mediaType, category, apath string) {
		for _, v := range []string{path, size, sum, digest, artifactType, mediaType, category, apath} {
			if strings.ContainsAny(v, "\r\n") {
				return
			}
		}
		file := "  - {path: " + path + ", size: " + size + ", sha256: " + sum + "}"
		art := []string{"        - digest: " + digest, "          artifactType: " + artifactType, "          mediaType: " + mediaType,
			"          category: " + category, "          size: " + size, "          path: " + apath, "          sha256: " + sum, "          annotations: {}"}
		doc := func(comment bool) string {
			f, a := file, art
			if comment {
				f += " # slow"
				a = append(slices.Clone(art[:1]), append([]string{"          # slow"}, art[1:]...)...)
			}
			return fuzzHead + "referrers:\n  total: 1\n  subjects:\n    - subject: sha256:" + h + "\n      discovery: api\n      count: 1\n      artifacts:\n" +
				strings.Join(a, "\n") + "\nfiles:\n" + f + "\n"
		}
		fast, errFast := bundle.ParseManifest(strings.NewReader(doc(false)), 0)
		slow, errSlow := bundle.ParseManifest(strings.NewReader(doc(true)), 0)
		if (errFast == nil) != (errSlow == nil) {
			t.Fatalf("fast path err %v, YAML decoder err %v\n%s", errFast, errSlow, doc(false))
		}
		if errFast == nil && !reflect.DeepEqual(fast, slow) {
			t.Fatalf("fast path and YAML decoder disagree:\n%+v\n%+v\n%s", fast, slow, doc(false))
		}
	})
}
