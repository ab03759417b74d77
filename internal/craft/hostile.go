package craft

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"

	"github.com/klauspost/compress/zstd"
)

// Case is one input of the memory suite: a bundle written as a stream
// (some are gigabytes uncompressed), and the problem code refdoctor must
// answer it with ("" for a whole bundle).
type Case struct {
	Name string
	Want string
	// Ext is the file extension to write the case under (.tgz if empty).
	Ext string
	// Write streams the .tgz to w.
	Write func(w io.Writer) error
}

// Stream writes tar members through gzip to w, at gzip's fastest level
// (the cases are large and repetitive).
type Stream struct {
	bw *bufio.Writer
	zw *gzip.Writer
	tw *tar.Writer
}

// NewStream starts a .tgz on w.
func NewStream(w io.Writer) *Stream {
	bw := bufio.NewWriterSize(w, 1<<20)
	zw, _ := gzip.NewWriterLevel(bw, gzip.BestSpeed)
	return &Stream{bw: bw, zw: zw, tw: tar.NewWriter(zw)}
}

// File adds a regular member.
func (s *Stream) File(name string, data []byte) error {
	if err := s.tw.WriteHeader(&tar.Header{Name: name, Size: int64(len(data)), Mode: 0o644, Typeflag: tar.TypeReg, Format: tar.FormatPAX}); err != nil {
		return err
	}
	_, err := s.tw.Write(data)
	return err
}

// FileFrom adds a regular member of size bytes read from r.
func (s *Stream) FileFrom(name string, size int64, r io.Reader) error {
	if err := s.tw.WriteHeader(&tar.Header{Name: name, Size: size, Mode: 0o644, Typeflag: tar.TypeReg, Format: tar.FormatPAX}); err != nil {
		return err
	}
	_, err := io.CopyN(s.tw, r, size)
	return err
}

// Close ends the archive.
func (s *Stream) Close() error {
	if err := s.tw.Close(); err != nil {
		return err
	}
	if err := s.zw.Close(); err != nil {
		return err
	}
	return s.bw.Flush()
}

const head = "schemaVersion: 1\nkind: MirrorBundle\ncreatedAt: 2026-01-01T00:00:00Z\ntool: {name: craft, version: v0}\n"

// repeatTo is prefix + unit repeated to about n bytes + suffix.
func repeatTo(prefix, unit, suffix string, n int) []byte {
	var b strings.Builder
	b.Grow(n + len(prefix) + len(suffix))
	b.WriteString(prefix)
	for b.Len()+len(unit)+len(suffix) <= n {
		b.WriteString(unit)
	}
	b.WriteString(suffix)
	return []byte(b.String())
}

// zeros reads as zero bytes.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// manifestOnly is a bundle holding only manifest.yaml, made when written.
func manifestOnly(y func() []byte) func(io.Writer) error {
	return func(w io.Writer) error {
		s := NewStream(w)
		if err := s.File("manifest.yaml", y()); err != nil {
			return err
		}
		return s.Close()
	}
}

// Hostile lists the inputs that exhausted memory before (issue 9) and
// the largest whole bundles the format allows, each as a stream.
func Hostile() []Case { return hostile(1) }

// HostileQuick is Hostile with the cases that take seconds to make and
// read scaled down by ten (same shapes, same answers), for unit tests.
func HostileQuick() []Case { return hostile(10) }

func hostile(div int) []Case {
	const mib = 1 << 20
	limit := 16*mib - 4096
	return []Case{
		{Name: "yaml-16MiB-tiny-nodes-flow", Want: "LimitExceeded",
			Write: manifestOnly(func() []byte { return repeatTo(head+"files: [", "a,", "a]\n", limit) })},
		{Name: "yaml-16MiB-tiny-nodes-block", Want: "MalformedManifest",
			Write: manifestOnly(func() []byte { return repeatTo(head+"files:\n", "- []\n", "", limit) })},
		{Name: "yaml-16MiB-nested-flow", Want: "LimitExceeded",
			Write: manifestOnly(func() []byte { return repeatTo(head+"tool: ", "[", "\n", limit) })},
		{Name: "yaml-3.9M-aliases", Want: "MalformedManifest",
			Write: manifestOnly(func() []byte { return repeatTo(head+"images: &a []\nfiles:\n", "- *a\n", "", limit) })},
		{Name: "yaml-aliases-in-one-entry", Want: "MalformedManifest",
			Write: manifestOnly(func() []byte { return repeatTo(head+"tool: {name: &n x, version: ", "*n", "}\n", MaxEntry-64) })},
		{Name: "yaml-16MiB-images", Want: "LimitExceeded",
			Write: func(w io.Writer) error {
				var y strings.Builder
				y.WriteString(head + "images:\n")
				for i := 0; y.Len() < limit-200; i++ {
					fmt.Fprintf(&y, "  - {reference: r.example/a:%d, digest: sha256:%064x, mediaType: m}\n", i, i)
				}
				return manifestOnly(func() []byte { return []byte(y.String()) })(w)
			}},
		{Name: "yaml-16MiB-artifacts", Want: "MissingFile",
			Write: func(w io.Writer) error {
				var y strings.Builder
				subject := fmt.Sprintf("sha256:%064x", 1)
				y.WriteString(head + "referrers:\n  total: 0\n  subjects:\n    - subject: " + subject + "\n      discovery: api\n      count: 0\n      artifacts:\n")
				for i := 0; y.Len() < limit-600; i++ {
					d := fmt.Sprintf("%064x", i+2)
					fmt.Fprintf(&y, "        - digest: sha256:%s\n          artifactType: application/vnd.cyclonedx+json\n          mediaType: application/vnd.oci.image.manifest.v1+json\n          category: sbom\n          size: 1\n          path: referrers/sha256-%064x/sha256-%s.json\n          sha256: %s\n          annotations: {}\n", d, 1, d, d)
				}
				return manifestOnly(func() []byte { return []byte(y.String()) })(w)
			}},
		{Name: "index-blobs-1.5M-descriptors", Want: "", Write: writeManyDescriptors(1_500_000 / div)},
		{Name: "blob-150k-invalid-digests", Want: "MissingBlob", Write: writeInvalidDigests(150_000)},
		{Name: "2M-tiny-members", Want: "DecompressionBomb", Write: writeTinyMembers(2_000_000, false)},
		{Name: "100k-listed-members-manifest-first", Want: "", Write: writeListedMembers(95_000/div, false)},
		{Name: "100k-listed-members-manifest-last", Want: "", Write: writeListedMembers(95_000/div, true)},
		{Name: "absent-listing-of-2^63-1-then-8GiB-of-zeros", Want: "DecompressionBomb", Write: writeBomb(1<<63-1, 8<<30)},
		{Name: "absent-listing-of-8GiB-then-8GiB-of-zeros", Want: "DecompressionBomb", Write: writeBomb(8<<30, 8<<30)},
		{Name: "zstd-8MiB-window", Ext: ".tar.zst", Want: "", Write: writeZstdWindow(8 << 20)},
		{Name: "zstd-32MiB-window", Ext: ".tar.zst", Want: "CorruptArchive", Write: writeZstdWindow(32 << 20)},
	}
}

// MaxEntry mirrors bundle.MaxManifestEntryBytes (craft imports nothing of
// refdoctor's).
const MaxEntry = 1 << 20

// writeManyDescriptors: a whole bundle whose index blobs list n
// descriptors in all (the same image manifest over and over, which is
// legal), about 4 MiB per blob.
func writeManyDescriptors(n int) func(io.Writer) error {
	return func(w io.Writer) error {
		b := Valid()
		d := DescOf(MediaManifest, b.Image.Manifest)
		entry := string(JSON(d))
		per := (4<<20 - 200) / (len(entry) + 1)
		var blobs [][]byte
		for left := n; left > 0; left -= per {
			k := min(per, left)
			var s strings.Builder
			s.WriteString(`{"schemaVersion":2,"mediaType":"` + MediaIndex + `","manifests":[`)
			for i := 0; i < k; i++ {
				if i > 0 {
					s.WriteByte(',')
				}
				s.WriteString(entry)
			}
			s.WriteString(`],"annotations":{"n":"` + fmt.Sprint(len(blobs)) + `"}}`)
			blobs = append(blobs, []byte(s.String()))
		}
		for _, x := range blobs {
			b.Members = append(b.Members, Member{Name: "blobs/sha256/" + Sum(x), Data: x})
		}
		return writeBundle(w, b)
	}
}

// writeInvalidDigests: one listed blob, a manifest whose n layers name
// digests no bundle can hold.
func writeInvalidDigests(n int) func(io.Writer) error {
	return func(w io.Writer) error {
		b := Valid()
		var s strings.Builder
		s.WriteString(`{"schemaVersion":2,"mediaType":"` + MediaManifest + `","config":` + string(JSON(DescOf(MediaConfig, b.Image.Config))) + `,"layers":[`)
		for i := 0; i < n; i++ {
			if i > 0 {
				s.WriteByte(',')
			}
			fmt.Fprintf(&s, `{"digest":"md5:%d"}`, i)
		}
		s.WriteString("]}")
		x := []byte(s.String())
		b.Members = append(b.Members, Member{Name: "blobs/sha256/" + Sum(x), Data: x})
		return writeBundle(w, b)
	}
}

// writeTinyMembers: a whole small bundle followed by n empty members.
func writeTinyMembers(n int, _ bool) func(io.Writer) error {
	return func(w io.Writer) error {
		b := Valid()
		s := NewStream(w)
		if err := s.File("manifest.yaml", b.ManifestYAML()); err != nil {
			return err
		}
		for _, m := range b.Members {
			if err := s.File(m.Name, m.Data); err != nil {
				return err
			}
		}
		for i := 0; i < n; i++ {
			if err := s.File(fmt.Sprintf("t/%07d", i), nil); err != nil {
				return err
			}
		}
		return s.Close()
	}
}

// writeListedMembers: a whole bundle of n small listed blobs, the most
// manifest.yaml's 16 MiB hold, with manifest.yaml first or last.
func writeListedMembers(n int, manifestLast bool) func(io.Writer) error {
	return func(w io.Writer) error {
		b := Valid()
		var extra []Member
		for i := 0; i < n; i++ {
			x := []byte(fmt.Sprint(i))
			extra = append(extra, Member{Name: "blobs/sha256/" + Sum(x), Data: x})
		}
		b.Members = append(b.Members, extra...)
		y := b.ManifestYAML()
		s := NewStream(w)
		if !manifestLast {
			if err := s.File("manifest.yaml", y); err != nil {
				return err
			}
		}
		for _, m := range b.Members {
			if err := s.File(m.Name, m.Data); err != nil {
				return err
			}
		}
		if manifestLast {
			if err := s.File("manifest.yaml", y); err != nil {
				return err
			}
		}
		return s.Close()
	}
}

// writeBomb: a whole small bundle whose manifest.yaml also lists an
// absent file of listedSize bytes, followed by an unlisted member of
// zeros of zeroSize bytes.
func writeBomb(listedSize, zeroSize int64) func(io.Writer) error {
	return func(w io.Writer) error {
		b := Valid()
		b.Listed = map[string]Listed{"absent.bin": {Size: listedSize, Sum: Sum(nil)}}
		s := NewStream(w)
		if err := s.File("manifest.yaml", b.ManifestYAML()); err != nil {
			return err
		}
		for _, m := range b.Members {
			if err := s.File(m.Name, m.Data); err != nil {
				return err
			}
		}
		if err := s.FileFrom("zeros.bin", zeroSize, zeros{}); err != nil {
			return err
		}
		return s.Close()
	}
}

func writeBundle(w io.Writer, b *Bundle) error {
	s := NewStream(w)
	if err := s.File("manifest.yaml", b.ManifestYAML()); err != nil {
		return err
	}
	for _, m := range b.Members {
		if err := s.File(m.Name, m.Data); err != nil {
			return err
		}
	}
	return s.Close()
}

// writeZstdWindow: a whole bundle with a layer of random bytes repeated
// once, the repeat half the window plus a little away, compressed as zstd
// with the given window (zstd --long and the ultra levels use large
// windows; the decoder must keep one window of history).
func writeZstdWindow(window int) func(io.Writer) error {
	return func(w io.Writer) error {
		b := Valid()
		half := window*3/4 + 4096
		layer := make([]byte, half)
		rng := rand.New(rand.NewPCG(1, 2))
		for i := 0; i+8 <= len(layer); i += 8 {
			binary.LittleEndian.PutUint64(layer[i:], rng.Uint64())
		}
		// The same bytes twice: only a window that spans them finds the
		// repeat, so the encoder uses it.
		layer = append(layer, layer...)
		b.Members = append(b.Members, Member{Name: "blobs/sha256/" + Sum(layer), Data: layer})
		var t bytes.Buffer
		t.Write(b.Tar())
		zw, err := zstd.NewWriter(w, zstd.WithWindowSize(window), zstd.WithEncoderLevel(zstd.SpeedFastest))
		if err != nil {
			return err
		}
		if _, err := zw.Write(t.Bytes()); err != nil {
			return err
		}
		return zw.Close()
	}
}
