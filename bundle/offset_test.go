package bundle_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/refdoctor/refdoctor/bundle"
	"github.com/refdoctor/refdoctor/internal/craft"
)

// offsetBundle writes craft.Valid() with every member in a gzip member of
// its own, except the image config, which shares the gzip member of the
// entry before it. change, when set, edits the members first.
func offsetBundle(t *testing.T, change func(m *craft.Member, pre *[]byte, empties *int)) (file string, b *craft.Bundle) {
	t.Helper()
	b = craft.Valid()
	config := "blobs/sha256/" + craft.Sum(b.Image.Config)
	var out, cur []byte
	flush := func() {
		if len(cur) > 0 {
			out = append(out, craft.Gzip(cur)...)
			cur = nil
		}
	}
	cur = append(cur, craft.File(bundle.ManifestPath, b.ManifestYAML())...)
	for i := range b.Members {
		m := &b.Members[i]
		var pre []byte
		empties := 0
		if change != nil {
			change(m, &pre, &empties)
		}
		// An extension header goes at the end of the gzip member before,
		// so that the member's own header starts a gzip member.
		cur = append(cur, pre...)
		if m.Name != config {
			flush()
		}
		out = append(out, bytes.Repeat(emptyGzip, empties)...)
		cur = append(cur, craft.File(m.Name, m.Data)...)
	}
	cur = append(cur, craft.EndOfArchive()...)
	flush()
	file = filepath.Join(t.TempDir(), "offsets.tgz")
	if err := os.WriteFile(file, out, 0o600); err != nil {
		t.Fatal(err)
	}
	return file, b
}

var (
	errFirst  = errors.New("first member read")
	emptyGzip = craft.Gzip(nil)
)

// firstMemberAt decompresses file from offset and returns the first
// regular member there.
func firstMemberAt(t *testing.T, file string, offset int64) (string, []byte) {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	var name string
	var data []byte
	err = bundle.EachMemberIn(context.Background(), f, func(n string, _ int64, r io.Reader) error {
		name = n
		data, err = io.ReadAll(r)
		if err != nil {
			return err
		}
		return errFirst
	})
	if !errors.Is(err, errFirst) {
		t.Fatalf("reading from offset %d: %v", offset, err)
	}
	return name, data
}

// TestVerifiedOffsetStartsItsMember: validation records, for each member
// whose tar header starts a gzip member, where that gzip member starts,
// and decompressing from there reads that very member first, byte for
// byte. A member inside another's gzip member, one behind a PAX header
// (a reader starting at its own header would miss the header), one that
// failed validation, and manifest.yaml have none. Empty gzip members
// before a member cost no memory: the offset skips them.
func TestVerifiedOffsetStartsItsMember(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	layerOf := func(b *craft.Bundle) string { return "blobs/sha256/" + craft.Sum(b.Image.Layer) }

	file, b := offsetBundle(t, nil)
	rep, err := bundle.ValidateFile(ctx, file)
	if err != nil || !rep.OK {
		t.Fatalf("validate: %v, %+v", err, rep.Errors)
	}
	config := "blobs/sha256/" + craft.Sum(b.Image.Config)
	if off, ok := rep.VerifiedOffset(bundle.ManifestPath); ok {
		t.Errorf("manifest.yaml has an offset (%d)", off)
	}
	for _, m := range b.Members {
		off, ok := rep.VerifiedOffset(m.Name)
		if m.Name == config {
			if ok {
				t.Errorf("%s shares a gzip member with the entry before it, yet has offset %d", m.Name, off)
			}
			continue
		}
		if !ok {
			t.Errorf("%s starts a gzip member, but has no offset", m.Name)
			continue
		}
		if name, data := firstMemberAt(t, file, off); name != m.Name || !bytes.Equal(data, m.Data) {
			t.Errorf("%s: from offset %d the first member is %s (%d bytes)", m.Name, off, name, len(data))
		}
	}

	for _, tc := range []struct {
		name   string
		change func(m *craft.Member, pre *[]byte, empties *int)
		want   bool // the layer has an offset
		ok     bool // the bundle validates
	}{
		{"behind a PAX header in the gzip member before", func(m *craft.Member, pre *[]byte, _ *int) {
			if m.Name == layerOf(b) {
				*pre = craft.PAXHeader('x', "mtime", "1700000000")
			}
		}, false, true},
		{"tampered", func(m *craft.Member, _ *[]byte, _ *int) {
			if m.Name == layerOf(b) {
				m.Data = append([]byte(nil), m.Data...)
				m.Data[0] ^= 1
			}
		}, false, false},
		{"after 20,000 empty gzip members", func(m *craft.Member, _ *[]byte, empties *int) {
			if m.Name == layerOf(b) {
				*empties = 20000
			}
		}, true, true},
	} {
		file, b := offsetBundle(t, tc.change)
		rep, err := bundle.ValidateFile(ctx, file)
		if err != nil || rep.OK != tc.ok {
			t.Fatalf("%s: validate: %v, OK %v, want %v: %+v", tc.name, err, rep.OK, tc.ok, rep.Errors)
		}
		layer := layerOf(b)
		off, ok := rep.VerifiedOffset(layer)
		if ok != tc.want {
			t.Errorf("%s: layer offset %d, %v; want an offset: %v", tc.name, off, ok, tc.want)
		}
		if ok {
			if name, _ := firstMemberAt(t, file, off); name != layer {
				t.Errorf("%s: from offset %d the first member is %s", tc.name, off, name)
			}
			if fi, _ := os.Stat(file); strings.Contains(tc.name, "empty") && off < fi.Size()/2 {
				t.Errorf("%s: offset %d does not skip the empty members (file %d bytes)", tc.name, off, fi.Size())
			}
		}
	}
}
