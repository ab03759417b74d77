package bundle_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/refdoctor/refdoctor/bundle"
	"github.com/refdoctor/refdoctor/finding"
)

func validate(t testing.TB, data []byte, opts ...bundle.Opt) (bundle.Report, error) {
	t.Helper()
	return bundle.Validate(context.Background(), bytes.NewReader(data), opts...)
}

func codes(rep bundle.Report) []finding.Code {
	var out []finding.Code
	for _, p := range rep.Errors {
		out = append(out, p.Code)
	}
	slices.Sort(out)
	return out
}

func dump(rep bundle.Report) string {
	b, _ := json.MarshalIndent(rep.Errors, "", "  ")
	return string(b)
}

func TestValidateGoodBundle(t *testing.T) {
	t.Parallel()
	for _, comp := range []bundle.Compression{bundle.CompressionGzip, bundle.CompressionZstd} {
		for _, at := range []int{0, 4, -1} {
			for _, check := range []bool{false, true} {
				t.Run(fmt.Sprintf("%s/manifest-at-%d/check-referrers=%v", comp, at, check), func(t *testing.T) {
					t.Parallel()
					f := newFixture(t)
					f.compression, f.manifestAt = comp, at
					data := f.write(t)
					rep, err := validate(t, data, bundle.WithCheckReferrers(check))
					if err != nil {
						t.Fatal(err)
					}
					if !rep.OK || len(rep.Errors) != 0 || !rep.Complete {
						t.Fatalf("good bundle not OK: %s", dump(rep))
					}
					if rep.Compression != comp || rep.FormatVersion != 1 || rep.ManifestFirst != (at == 0) {
						t.Errorf("report header wrong: %+v", rep)
					}
					if want := len(f.files); rep.FilesChecked != want {
						t.Errorf("files_checked = %d, want %d", rep.FilesChecked, want)
					}
					if rep.ReferrersChecked != 3 {
						t.Errorf("referrers_checked = %d, want 3", rep.ReferrersChecked)
					}
					var total int64
					for _, b := range f.files {
						total += int64(len(b))
					}
					if rep.BytesChecked != total {
						t.Errorf("bytes_checked = %d, want %d", rep.BytesChecked, total)
					}
					if len(rep.Subjects) != 2 || rep.Subjects[0].Found != rep.Subjects[0].Expected {
						t.Errorf("subjects = %+v", rep.Subjects)
					}
				})
			}
		}
	}
}

func TestReportJSONContract(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.files[f.firstLayer()][10] ^= 0xff
	rep, err := validate(t, f.write(t))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"ok", "files_checked", "bytes_checked", "referrers_checked", "errors"} {
		if _, ok := doc[k]; !ok {
			t.Errorf("report JSON lacks %q: %s", k, raw)
		}
	}
	errs := doc["errors"].([]any)
	if len(errs) != 1 {
		t.Fatalf("errors = %s", raw)
	}
	for _, k := range []string{"code", "path", "expected", "actual", "message"} {
		if _, ok := errs[0].(map[string]any)[k]; !ok {
			t.Errorf("error JSON lacks %q: %s", k, raw)
		}
	}
	// A clean report still has "errors": [], never null: scripts index it.
	rep, _ = validate(t, newFixture(t).write(t))
	raw, _ = json.Marshal(rep)
	if !bytes.Contains(raw, []byte(`"errors":[]`)) {
		t.Errorf("clean report: %s", raw)
	}
}

// TestTamper changes one thing in a good bundle and expects exactly the one
// code that names it, with and without --check-referrers unless noted.
func TestTamper(t *testing.T) {
	t.Parallel()
	type tc struct {
		name  string
		opts  []fixtureOpt
		edit  func(f *fixture) []byte // returns the archive
		want  []finding.Code
		check *bool // only with this --check-referrers setting
	}
	yes, no := true, false
	tcs := []tc{
		{name: "referrer byte changed", want: []finding.Code{finding.ReferrerChecksumMismatch}, edit: func(f *fixture) []byte {
			f.files[f.referrers[0].path][40] ^= 0x01
			return f.write(t)
		}},
		{name: "layer byte changed", want: []finding.Code{finding.FileChecksumMismatch}, edit: func(f *fixture) []byte {
			f.files[f.firstLayer()][100] ^= 0x01
			return f.write(t)
		}},
		{name: "manifest blob byte changed", want: []finding.Code{finding.FileChecksumMismatch}, edit: func(f *fixture) []byte {
			f.files[bundle.BlobPath(f.amd64)][5] ^= 0x01
			return f.write(t)
		}},
		{name: "index.json changed", want: []finding.Code{finding.SizeMismatch}, edit: func(f *fixture) []byte {
			f.files[bundle.IndexPath] = []byte(`{"schemaVersion":2,"manifests":[]}`)
			return f.write(t)
		}},
		{name: "file removed", want: []finding.Code{finding.MissingFile}, edit: func(f *fixture) []byte {
			delete(f.files, f.firstLayer())
			return f.write(t)
		}},
		{name: "referrer file removed", want: []finding.Code{finding.MissingFile}, edit: func(f *fixture) []byte {
			delete(f.files, f.referrers[2].path)
			return f.write(t)
		}},
		{name: "file added", want: []finding.Code{finding.UnlistedFile}, edit: func(f *fixture) []byte {
			f.files["blobs/sha256/"+sha([]byte("x"))] = []byte("x")
			f.order = append(f.order, "blobs/sha256/"+sha([]byte("x")))
			return f.write(t)
		}},
		{name: "referrer added", want: []finding.Code{finding.UnlistedFile}, edit: func(f *fixture) []byte {
			p := bundle.ReferrerPath(f.index, dig([]byte("{}")))
			f.files[p] = []byte("{}")
			f.order = append(f.order, p)
			return f.write(t)
		}},
		{name: "count altered", want: []finding.Code{finding.ReferrerCountMismatch}, edit: func(f *fixture) []byte {
			f.manifest.Referrers.Subjects[0].Count++
			return f.write(t)
		}},
		{name: "total altered", want: []finding.Code{finding.ReferrerCountMismatch}, edit: func(f *fixture) []byte {
			f.manifest.Referrers.Total = 7
			return f.write(t)
		}},
		{name: "subject edited in manifest.yaml", want: []finding.Code{finding.SubjectMismatch, finding.SubjectMismatch}, edit: func(f *fixture) []byte {
			f.manifest.Referrers.Subjects[0].Subject = f.arm64
			return f.write(t)
		}},
		{name: "referrer subject is another digest", opts: []fixtureOpt{withWrongSubject()}, check: &yes,
			want: []finding.Code{finding.SubjectMismatch}, edit: func(f *fixture) []byte { return f.write(t) }},
		{name: "referrer subject not checked without the flag", opts: []fixtureOpt{withWrongSubject()}, check: &no,
			want: nil, edit: func(f *fixture) []byte { return f.write(t) }},
		{name: "referrer renamed", want: []finding.Code{finding.ReferrerNameMismatch}, edit: func(f *fixture) []byte {
			a := &f.manifest.Referrers.Subjects[0].Artifacts[0]
			a.Digest = dig([]byte("other"))
			return f.write(t)
		}},
		{name: "listed size altered", want: []finding.Code{finding.SizeMismatch}, edit: func(f *fixture) []byte {
			for i := range f.manifest.Files {
				if f.manifest.Files[i].Path == f.firstLayer() {
					f.manifest.Files[i].Size += 10
				}
			}
			return f.write(t)
		}},
		{name: "listed checksum altered", want: []finding.Code{finding.FileChecksumMismatch}, edit: func(f *fixture) []byte {
			f.manifest.Files[3].SHA256 = sha([]byte("nope"))
			return f.write(t)
		}},
		{name: "blob absent and unlisted", want: []finding.Code{finding.MissingBlob}, edit: func(f *fixture) []byte {
			delete(f.files, f.firstLayer())
			f.relist()
			return f.write(t)
		}},
		{name: "referrer payload absent and unlisted", check: &yes, want: []finding.Code{finding.MissingBlob}, edit: func(f *fixture) []byte {
			delete(f.files, bundle.BlobPath(dig([]byte(`{"bomFormat":"CycloneDX","specVersion":"1.5","components":[]}`))))
			f.relist()
			return f.write(t)
		}},
		{name: "image missing from index.json", want: []finding.Code{finding.IndexMismatch}, edit: func(f *fixture) []byte {
			f.manifest.Images[0].Digest = f.amd64
			return f.write(t)
		}},
		{name: "category altered", check: &yes, want: []finding.Code{finding.ReferrerMetadataMismatch}, edit: func(f *fixture) []byte {
			f.manifest.Referrers.Subjects[1].Artifacts[0].ArtifactType = "application/spdx+json"
			return f.write(t)
		}},
		{name: "duplicate member", want: []finding.Code{finding.DuplicateMember}, edit: func(f *fixture) []byte {
			f.order = append(f.order, f.firstLayer())
			return writeDuplicate(t, f)
		}},
	}
	for _, c := range tcs {
		for _, check := range []bool{false, true} {
			if c.check != nil && *c.check != check {
				continue
			}
			t.Run(fmt.Sprintf("%s/check-referrers=%v", c.name, check), func(t *testing.T) {
				t.Parallel()
				f := newFixture(t, c.opts...)
				data := c.edit(f)
				rep, err := validate(t, data, bundle.WithCheckReferrers(check))
				if err != nil {
					t.Fatalf("error %v; report %s", err, dump(rep))
				}
				if got := codes(rep); !slices.Equal(got, c.want) {
					t.Fatalf("codes = %v, want %v\n%s", got, c.want, dump(rep))
				}
				if rep.OK != (len(c.want) == 0) {
					t.Errorf("ok = %v", rep.OK)
				}
				if !rep.Complete {
					t.Errorf("complete = false")
				}
			})
		}
	}
}

// writeDuplicate writes the fixture with its last member name repeated,
// which Writer itself refuses to do.
func writeDuplicate(t testing.TB, f *fixture) []byte {
	t.Helper()
	entries := []rawEntry{{name: bundle.ManifestPath, data: f.manifestYAML(t)}}
	for _, p := range f.order {
		entries = append(entries, rawEntry{name: p, data: f.files[p]})
	}
	return rawTarGz(t, entries)
}

func TestSubjectsSummary(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	delete(f.files, f.referrers[0].path)
	rep, _ := validate(t, f.write(t))
	for _, s := range rep.Subjects {
		if s.Subject == f.index && (s.Expected != 2 || s.Found != 1) {
			t.Errorf("index subject = %+v", s)
		}
		if s.Subject == f.amd64 && (s.Expected != 1 || s.Found != 1) {
			t.Errorf("amd64 subject = %+v", s)
		}
	}
}

func TestValidateEvents(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	data := f.write(t)
	var kinds []bundle.EventKind
	var members []string
	var last bundle.Event
	_, err := validate(t, data, bundle.WithTotalBytes(int64(len(data))), bundle.WithEvents(func(e bundle.Event) {
		kinds = append(kinds, e.Kind)
		if e.Kind == bundle.EventMember {
			members = append(members, e.Path)
		}
		if e.BytesRead < last.BytesRead {
			t.Errorf("bytes_read went back: %d < %d", e.BytesRead, last.BytesRead)
		}
		last = e
	}))
	if err != nil {
		t.Fatal(err)
	}
	if kinds[0] != bundle.EventStarted || kinds[len(kinds)-1] != bundle.EventFinished {
		t.Errorf("event kinds = %v", kinds)
	}
	if len(members) != len(f.files)+1 || members[0] != bundle.ManifestPath {
		t.Errorf("member events = %v", members)
	}
	if last.TotalBytes != int64(len(data)) || last.BytesRead != int64(len(data)) || last.Report == nil || !last.Report.OK {
		t.Errorf("final event = %+v", last)
	}
}

func TestValidateFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := filepath.Join(dir, "bundle.tgz")
	data := newFixture(t).write(t)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	var total int64
	rep, err := bundle.ValidateFile(context.Background(), p, bundle.WithEvents(func(e bundle.Event) { total = e.TotalBytes }))
	if err != nil || !rep.OK {
		t.Fatalf("err %v, report %s", err, dump(rep))
	}
	if total != int64(len(data)) || rep.ArchiveBytes != int64(len(data)) {
		t.Errorf("total bytes %d, archive bytes %d, want %d", total, rep.ArchiveBytes, len(data))
	}
	if _, err := bundle.ValidateFile(context.Background(), filepath.Join(dir, "absent.tgz")); err == nil {
		t.Error("absent file validated")
	}
	if _, err := bundle.ValidateFile(context.Background(), dir); !errors.Is(err, bundle.ErrNotBundle) {
		t.Errorf("directory: %v", err)
	}
}

func TestValidateNotABundle(t *testing.T) {
	t.Parallel()
	tarOf := func(entries ...rawEntry) []byte { return rawTar(t, entries) }
	tcs := map[string][]byte{
		"empty":            nil,
		"text":             []byte("hello, this is not a bundle\n"),
		"uncompressed tar": tarOf(rawEntry{name: bundle.ManifestPath, data: []byte("x")}),
		"gzip of text":     gz(t, []byte(strings.Repeat("not a tar ", 200))),
		"tar of other":     gz(t, tarOf(rawEntry{name: "README", data: []byte("hi")})),
		"empty tar":        gz(t, tarOf()),
		"wrong kind": gz(t, tarOf(rawEntry{name: bundle.ManifestPath, data: []byte(
			"schemaVersion: 1\nkind: SupportBundle\ncreatedAt: 2026-01-01T00:00:00Z\ntool: {name: x, version: y}\n")})),
	}
	for name, data := range tcs {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			rep, err := validate(t, data)
			if !errors.Is(err, bundle.ErrNotBundle) {
				t.Fatalf("err = %v, want ErrNotBundle; report %s", err, dump(rep))
			}
			if rep.OK || !slices.Contains(codes(rep), finding.NotABundle) {
				t.Errorf("report = %s", dump(rep))
			}
		})
	}
	t.Run("newer format", func(t *testing.T) {
		t.Parallel()
		data := gz(t, tarOf(rawEntry{name: bundle.ManifestPath, data: []byte(
			"schemaVersion: 2\nkind: MirrorBundle\ncreatedAt: 2026-01-01T00:00:00Z\ntool: {name: x, version: y}\n")}))
		rep, err := validate(t, data)
		if !errors.Is(err, bundle.ErrUnsupportedVersion) || !slices.Equal(codes(rep), []finding.Code{finding.UnsupportedVersion}) {
			t.Fatalf("err %v, report %s", err, dump(rep))
		}
	})
	t.Run("layout without manifest", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t)
		var entries []rawEntry
		for _, p := range f.order {
			entries = append(entries, rawEntry{name: p, data: f.files[p]})
		}
		rep, err := validate(t, rawTarGz(t, entries))
		if err != nil || !slices.Equal(codes(rep), []finding.Code{finding.MissingManifest}) {
			t.Fatalf("err %v, report %s", err, dump(rep))
		}
	})
}

func TestValidateCanceled(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := bundle.Validate(ctx, bytes.NewReader(newFixture(t).write(t)))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
}

func TestValidateReaderError(t *testing.T) {
	t.Parallel()
	data := newFixture(t).write(t)
	boom := errors.New("disk on fire")
	r := &failingReader{data: data[:len(data)/2], err: boom}
	_, err := bundle.Validate(context.Background(), r)
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want the reader's error", err)
	}
}

type failingReader struct {
	data []byte
	err  error
}

func (r *failingReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, r.err
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}
