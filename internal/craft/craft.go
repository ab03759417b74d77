// Package craft builds mirror bundles byte by byte for refdoctor's tests
// and benchmarks, independently of package bundle: manifest.yaml is
// written by hand with fmt, tar headers are raw 512-byte blocks with
// their checksums computed here, and compression uses the standard
// library. A bundle the validator accepts or refuses is then judged
// against what this package wrote, not against refdoctor's own writer.
//
// It imports nothing of refdoctor's.
package craft

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// Media and artifact types the crafted bundles use.
const (
	MediaIndex    = "application/vnd.oci.image.index.v1+json"
	MediaManifest = "application/vnd.oci.image.manifest.v1+json"
	MediaConfig   = "application/vnd.oci.image.config.v1+json"
	MediaLayer    = "application/vnd.oci.image.layer.v1.tar+gzip"
	MediaEmpty    = "application/vnd.oci.empty.v1+json"
	TypeSBOM      = "application/vnd.cyclonedx+json"
	TypeSignature = "application/vnd.dev.cosign.artifact.sig.v1+json"
)

// Sum is the sha256 of b in hex.
func Sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// Digest is "sha256:" + Sum(b).
func Digest(b []byte) string { return "sha256:" + Sum(b) }

// Desc is an OCI descriptor.
type Desc struct {
	MediaType    string            `json:"mediaType"`
	Digest       string            `json:"digest"`
	Size         int64             `json:"size"`
	ArtifactType string            `json:"artifactType,omitempty"`
	Annotations  map[string]string `json:"annotations,omitempty"`
}

// DescOf describes b.
func DescOf(mediaType string, b []byte) Desc {
	return Desc{MediaType: mediaType, Digest: Digest(b), Size: int64(len(b))}
}

// JSON marshals v (panicking on the impossible).
func JSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// Image is one image manifest with its config and one layer.
type Image struct {
	Manifest, Config, Layer []byte
}

// NewImage makes an image whose layer holds seed.
func NewImage(seed string) Image {
	cfg := JSON(map[string]any{"architecture": "amd64", "os": "linux", "rootfs": map[string]any{"type": "layers", "diff_ids": []string{Digest([]byte(seed))}}})
	layer := []byte("layer of " + seed)
	man := JSON(map[string]any{"schemaVersion": 2, "mediaType": MediaManifest,
		"config": DescOf(MediaConfig, cfg), "layers": []Desc{DescOf(MediaLayer, layer)}})
	return Image{Manifest: man, Config: cfg, Layer: layer}
}

// LayersTwice is an image whose manifest lists its layers twice, as
// "layers" (img.Layer, the layer a scanner that matches names exactly
// reads) and then "Layers" (served, the layer Go's decoder, which
// matches names in any case and keeps the last, reads). Both are blobs
// of the image: store served beside it.
func LayersTwice() (img Image, served []byte) {
	cfg := JSON(map[string]any{"architecture": "amd64", "os": "linux", "rootfs": map[string]any{"type": "layers", "diff_ids": []string{}}})
	scanned, served := []byte("the layer a scanner reads"), []byte("the layer a runtime unpacks")
	desc := func(mediaType string, b []byte) string { return string(JSON(DescOf(mediaType, b))) }
	man := []byte(`{"schemaVersion":2,"mediaType":"` + MediaManifest + `","config":` + desc(MediaConfig, cfg) +
		`,"layers":[` + desc(MediaLayer, scanned) + `],"Layers":[` + desc(MediaLayer, served) + `]}`)
	return Image{Manifest: man, Config: cfg, Layer: scanned}, served
}

// Referrer is an artifact manifest and its payload blob.
type Referrer struct {
	Subject      string
	ArtifactType string
	Category     string
	Manifest     []byte
	Payload      []byte
}

// NewReferrer makes an artifact of artifactType about subject.
func NewReferrer(subject Desc, artifactType, category, payload string) Referrer {
	p := []byte(payload)
	m := JSON(map[string]any{"schemaVersion": 2, "mediaType": MediaManifest, "artifactType": artifactType,
		"config": DescOf(MediaEmpty, []byte("{}")), "layers": []Desc{DescOf("application/octet-stream", p)},
		"subject": subject})
	return Referrer{Subject: subject.Digest, ArtifactType: artifactType, Category: category, Manifest: m, Payload: p}
}

// Member is one tar member: a regular file, unless Raw holds the whole
// entry (headers and data) as prebuilt blocks.
type Member struct {
	Name string
	Data []byte
	Raw  []byte
}

// Bundle is a mirror bundle in the making: members in archive order, and
// what manifest.yaml lists.
type Bundle struct {
	Reference string
	Image     Image
	Referrers []Referrer
	Index     []byte
	// Members in archive order; manifest.yaml is added first by Tar
	// unless Members holds one.
	Members []Member
	// Listed overrides what manifest.yaml lists for a path: its size and
	// sha256 (for tampering with the listing, not the member).
	Listed map[string]Listed
}

// Listed is a listing of one path.
type Listed struct {
	Size int64
	Sum  string
}

// Valid is a small, whole bundle: one image (manifest, config, layer),
// an SBOM and a signature referring to it, every referrer also stored as
// a blob, and index.json tagging the image v1.
func Valid() *Bundle { return ValidWith(NewImage("app v1")) }

// ValidWith is Valid around img, whose manifest may be written by hand;
// extra blobs are stored (and listed) beside the image's.
func ValidWith(img Image, extra ...[]byte) *Bundle {
	b := &Bundle{Reference: "registry.example/demo/app:v1", Image: img}
	subject := DescOf(MediaManifest, b.Image.Manifest)
	b.Referrers = []Referrer{
		NewReferrer(subject, TypeSBOM, "sbom", `{"bomFormat":"CycloneDX","specVersion":"1.5"}`),
		NewReferrer(subject, TypeSignature, "signature", `signature of app v1`),
	}
	b.Index = IndexJSON(b.Reference, "v1", b.Image.Manifest)
	b.Members = append(b.Members, Member{Name: "oci-layout", Data: []byte(`{"imageLayoutVersion":"1.0.0"}`)},
		Member{Name: "index.json", Data: b.Index})
	blobs := map[string][]byte{}
	for _, x := range append([][]byte{b.Image.Manifest, b.Image.Config, b.Image.Layer, []byte("{}")}, extra...) {
		blobs[Sum(x)] = x
	}
	for _, r := range b.Referrers {
		blobs[Sum(r.Manifest)] = r.Manifest
		blobs[Sum(r.Payload)] = r.Payload
	}
	var names []string
	for h := range blobs {
		names = append(names, h)
	}
	sort.Strings(names)
	for _, h := range names {
		b.Members = append(b.Members, Member{Name: "blobs/sha256/" + h, Data: blobs[h]})
	}
	for _, r := range b.Referrers {
		b.Members = append(b.Members, Member{Name: ReferrerPath(r.Subject, Digest(r.Manifest)), Data: r.Manifest})
	}
	return b
}

// IndexJSON is an OCI index tagging manifest as tag, with refdoctor's
// annotations.
func IndexJSON(reference, tag string, manifest []byte) []byte {
	d := DescOf(MediaManifest, manifest)
	d.Annotations = map[string]string{"org.opencontainers.image.ref.name": tag,
		"io.refdoctor.bundle.kind": "image", "io.refdoctor.bundle.reference": reference}
	return JSON(map[string]any{"schemaVersion": 2, "mediaType": MediaIndex, "manifests": []Desc{d}})
}

// ReferrerPath is where a referrer is filed.
func ReferrerPath(subject, referrer string) string {
	return "referrers/sha256-" + strings.TrimPrefix(subject, "sha256:") + "/sha256-" + strings.TrimPrefix(referrer, "sha256:") + ".json"
}

// Member returns the member named name, or nil.
func (b *Bundle) Member(name string) *Member {
	for i := range b.Members {
		if b.Members[i].Name == name {
			return &b.Members[i]
		}
	}
	return nil
}

// ManifestYAML writes manifest.yaml by hand: every regular member other
// than referrer files in files, the referrers under their subject.
func (b *Bundle) ManifestYAML() []byte {
	var y bytes.Buffer
	imgDigest := Digest(b.Image.Manifest)
	fmt.Fprintf(&y, "schemaVersion: 1\nkind: MirrorBundle\ncreatedAt: 2026-01-01T00:00:00Z\ntool: {name: craft, version: v0}\n")
	fmt.Fprintf(&y, "images:\n  - reference: %s\n    digest: %s\n    mediaType: %s\n", b.Reference, imgDigest, MediaManifest)
	listed := func(name string, data []byte) (int64, string) {
		if l, ok := b.Listed[name]; ok {
			return l.Size, l.Sum
		}
		return int64(len(data)), Sum(data)
	}
	bySubject := map[string][]Referrer{}
	var subjects []string
	for _, r := range b.Referrers {
		if bySubject[r.Subject] == nil {
			subjects = append(subjects, r.Subject)
		}
		bySubject[r.Subject] = append(bySubject[r.Subject], r)
	}
	fmt.Fprintf(&y, "referrers:\n  total: %d\n  subjects:\n", len(b.Referrers))
	for _, s := range subjects {
		fmt.Fprintf(&y, "    - subject: %s\n      discovery: api\n      count: %d\n      artifacts:\n", s, len(bySubject[s]))
		for _, r := range bySubject[s] {
			path := ReferrerPath(s, Digest(r.Manifest))
			size, sum := listed(path, r.Manifest)
			fmt.Fprintf(&y, "        - digest: %s\n          artifactType: %s\n          mediaType: %s\n          category: %s\n          size: %d\n          path: %s\n          sha256: %s\n          annotations: {}\n",
				Digest(r.Manifest), r.ArtifactType, MediaManifest, r.Category, size, path, sum)
		}
	}
	y.WriteString("files:\n")
	for _, m := range b.Members {
		if m.Name == "manifest.yaml" || strings.HasPrefix(m.Name, "referrers/") {
			continue
		}
		if _, ok := b.Listed[m.Name]; m.Raw != nil && !ok {
			continue // a hand-made entry, listed only if Listed says so
		}
		size, sum := listed(m.Name, m.Data)
		fmt.Fprintf(&y, "  - {path: %s, size: %d, sha256: %s}\n", m.Name, size, sum)
	}
	for name, l := range b.Listed {
		if b.Member(name) == nil && !strings.HasPrefix(name, "referrers/") {
			fmt.Fprintf(&y, "  - {path: %s, size: %d, sha256: %s}\n", name, l.Size, l.Sum)
		}
	}
	return y.Bytes()
}

// Tar writes the members as a USTAR archive, manifest.yaml first (unless
// the members hold one), then the end-of-archive blocks.
func (b *Bundle) Tar() []byte {
	var t bytes.Buffer
	if b.Member("manifest.yaml") == nil {
		t.Write(File("manifest.yaml", b.ManifestYAML()))
	}
	for _, m := range b.Members {
		if m.Raw != nil {
			t.Write(m.Raw)
			continue
		}
		t.Write(File(m.Name, m.Data))
	}
	t.Write(EndOfArchive())
	return t.Bytes()
}

// Tgz is Gzip(Tar()).
func (b *Bundle) Tgz() []byte { return Gzip(b.Tar()) }

// Gzip compresses b as one gzip member.
func Gzip(b []byte) []byte {
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	if _, err := zw.Write(b); err != nil {
		panic(err)
	}
	if err := zw.Close(); err != nil {
		panic(err)
	}
	return out.Bytes()
}

// Header options.
type HeaderOpt func(*header)

type header struct {
	magic, version string
	prefix         string
	mode           int64
}

// GNU writes the old GNU magic ("ustar  \x00").
func GNU() HeaderOpt { return func(h *header) { h.magic, h.version = "ustar ", " \x00" } }

// V7 writes no magic at all.
func V7() HeaderOpt {
	return func(h *header) { h.magic, h.version = "\x00\x00\x00\x00\x00\x00", "\x00\x00" }
}

// Prefix sets the USTAR prefix field (bytes 345-500).
func Prefix(p string) HeaderOpt { return func(h *header) { h.prefix = p } }

// Header is one raw 512-byte tar header block: name (at most 100 bytes),
// octal size, type flag, USTAR magic unless an option says otherwise,
// and its checksum.
func Header(name string, size int64, typeflag byte, opts ...HeaderOpt) []byte {
	h := header{magic: "ustar\x00", version: "00", mode: 0o644}
	for _, o := range opts {
		o(&h)
	}
	if len(name) > 100 && h.prefix == "" && h.magic == "ustar\x00" {
		// USTAR splits a long name at a slash: prefix (155) / name (100).
		if i := strings.LastIndex(name[:min(len(name), 156)], "/"); i > 0 && len(name)-i-1 <= 100 {
			h.prefix, name = name[:i], name[i+1:]
		}
	}
	b := make([]byte, 512)
	copy(b[0:100], name)
	copy(b[100:108], fmt.Sprintf("%07o\x00", h.mode))
	copy(b[108:116], "0000000\x00")
	copy(b[116:124], "0000000\x00")
	copy(b[124:136], fmt.Sprintf("%011o\x00", size))
	copy(b[136:148], fmt.Sprintf("%011o\x00", 946684800))
	b[156] = typeflag
	copy(b[257:263], h.magic)
	copy(b[263:265], h.version)
	copy(b[345:500], h.prefix)
	copy(b[148:156], "        ")
	sum := 0
	for _, c := range b {
		sum += int(c)
	}
	copy(b[148:156], fmt.Sprintf("%06o\x00 ", sum))
	return b
}

// Pad pads data to a whole number of blocks.
func Pad(data []byte) []byte {
	n := (len(data) + 511) / 512 * 512
	out := make([]byte, n)
	copy(out, data)
	return out
}

// File is a regular member: header and padded data.
func File(name string, data []byte, opts ...HeaderOpt) []byte {
	return append(Header(name, int64(len(data)), '0', opts...), Pad(data)...)
}

// Entry is a header of any type with data.
func Entry(name string, typeflag byte, data []byte, opts ...HeaderOpt) []byte {
	return append(Header(name, int64(len(data)), typeflag, opts...), Pad(data)...)
}

// PAX encodes PAX records, key=value pairs, with their length prefixes.
func PAX(kv ...string) []byte {
	var out []byte
	for i := 0; i+1 < len(kv); i += 2 {
		rec := " " + kv[i] + "=" + kv[i+1] + "\n"
		n := len(rec)
		for {
			l := len(fmt.Sprint(n)) + len(rec)
			if l == n {
				break
			}
			n = l
		}
		out = append(out, fmt.Sprint(n)+rec...)
	}
	return out
}

// PAXHeader is an extended header ('x', or 'g' for global) with records.
func PAXHeader(typeflag byte, kv ...string) []byte {
	return Entry("././@PaxHeader", typeflag, PAX(kv...))
}

// LongName is a GNU long-name entry ('L') for the next member.
func LongName(name string) []byte {
	return Entry("././@LongLink", 'L', append([]byte(name), 0), GNU())
}

// EndOfArchive is the two zero blocks that end a tar archive.
func EndOfArchive() []byte { return make([]byte, 1024) }
