package bundle

import (
	"fmt"
	"strings"
	"testing"
)

// TestReadDocument: the ways a manifest reads differently that the
// bundle-level test does not build one by one, and documents that read
// the same everywhere.
func TestReadDocument(t *testing.T) {
	desc := `{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:` + strings.Repeat("a", 64) + `","size":1}`
	manifest := func(rest string) string {
		return `{"schemaVersion":2,"mediaType":"` + mediaTypeOCIManifest + `","config":` + desc + `,"layers":[` + desc + `]` + rest + `}`
	}
	var many strings.Builder
	for i := range 200 {
		fmt.Fprintf(&many, `"k%d":"v",`, i)
	}
	cases := []struct {
		name, doc string
		want      string // "" reads the same everywhere
		looksOCI  bool
	}{
		{"a plain manifest", manifest(""), "", true},
		{"a plain index", `{"schemaVersion":2,"mediaType":"` + mediaTypeOCIIndex + `","manifests":[{"mediaType":"` + mediaTypeOCIManifest + `","digest":"sha256:` + strings.Repeat("b", 64) + `","size":2,"platform":{"architecture":"arm64","os":"linux","os.version":"1"}}]}`, "", true},
		{"an index without mediaType", `{"schemaVersion":2,"manifests":[]}`, "", true},
		{"an image config", `{"architecture":"amd64","architecture":"arm64"}`, `the key "architecture" appears twice in the document`, false},
		{"a platform field in another case", `{"schemaVersion":2,"mediaType":"` + mediaTypeOCIIndex + `","manifests":[{"mediaType":"m","digest":"d","size":2,"platform":{"Architecture":"arm64","architecture":"amd64","os":"linux"}}]}`,
			`the key "Architecture" in manifests[0].platform is read as "architecture"`, true},
		{"many annotations, one twice", manifest(`,"annotations":{` + many.String() + `"k7":"w"}`), `the key "k7" appears twice in annotations`, true},
		{"a key that is not UTF-8", manifest(`,"annotations":{"a` + "\xff" + `":"x"}`), "in annotations is not valid UTF-8", true},
		{"a lone surrogate", manifest(`,"annotations":{"a\ud800":"x"}`), "lone surrogate", true},
		{"U+FFFD written out is a character", manifest(`,"annotations":{"a\ufffd":"x","b` + "\uFFFD" + `":"y"}`), "", true},
		{"a second document after it", manifest("") + `{"schemaVersion":2}`, "another JSON value follows the document", true},
		{"an index mediaType with layers", `{"schemaVersion":2,"mediaType":"` + mediaTypeOCIIndex + `","manifests":[],"layers":[` + desc + `]}`, `"manifests" beside "layers"`, true},
		{"an index mediaType with config only", `{"schemaVersion":2,"mediaType":"` + mediaTypeOCIIndex + `","config":` + desc + `}`, "is an index, yet it has \"config\"", true},
		{"a manifest mediaType with manifests", `{"schemaVersion":2,"mediaType":"` + mediaTypeOCIManifest + `","manifests":[]}`, "is an image manifest, yet it has \"manifests\"", true},
		{"null manifests is no manifests", manifest(`,"manifests":null`), "", true},
		{"schemaVersion 2.0", `{"schemaVersion":2.0,"mediaType":"` + mediaTypeOCIManifest + `","config":` + desc + `,"layers":[]}`, "", true},
		{"schemaVersion 1", `{"schemaVersion":1,"name":"x","fsLayers":[]}`, "", false},
		{"an SBOM", `{"bomFormat":"CycloneDX","specVersion":"1.5","components":[{"name":"a"},{"name":"b"}]}`, "", false},
		{"not JSON", `{"schemaVersion":2,`, "", false},
		{"an array", `[1,2]`, "", false},
		{"too deep for Go", `{"x":` + strings.Repeat("[", maxJSONDepth+1) + strings.Repeat("]", maxJSONDepth+1) + `}`, "", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := readDocument([]byte(tc.doc))
			if tc.want == "" && got.why != "" {
				t.Errorf("reads differently: %s", got.why)
			}
			if tc.want != "" && !strings.Contains(got.why, tc.want) {
				t.Errorf("why %q, want it to contain %q", got.why, tc.want)
			}
			if got.looksOCI != tc.looksOCI {
				t.Errorf("looksOCI %v, want %v", got.looksOCI, tc.looksOCI)
			}
		})
	}
}

// FuzzReadDocument: any bytes are read without a panic or a hang; only an
// object is a document; whatever Go's decoder reads as an OCI manifest or
// index, the key-by-key reading sees as one too.
func FuzzReadDocument(f *testing.F) {
	f.Add([]byte(`{"schemaVersion":2,"mediaType":"` + mediaTypeOCIManifest + `","config":{"digest":"d","size":1},"layers":[]}`))
	f.Add([]byte(`{"schemaVersion":2,"manifests":[{"platform":{"os":"linux"}}],"annotations":{"a":"b"}}`))
	f.Add([]byte(`{"a\u006c":[1,{"b":"\ud800"}],"Layers":null}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := readDocument(data)
		if c, ok := firstNonBlank(data); (!ok || c != '{') && (r.why != "" || r.looksOCI) {
			t.Fatalf("a non-object was read as a document: %+v", r)
		}
		if d, _, ok := scanOCIDocument(data, nil); ok && !r.looksOCI {
			t.Fatalf("Go reads an OCI document (%+v) that the key-by-key reading does not see", d)
		}
	})
}

// BenchmarkReadDocument: an index of 20,000 descriptors (about 4 MiB,
// the most a held document can be) read key by key, beside the scan that
// checks its references (which validation runs on it anyway): the key by
// key reading must not be what a large index costs.
func BenchmarkReadDocument(b *testing.B) {
	var doc strings.Builder
	doc.WriteString(`{"schemaVersion":2,"mediaType":"` + mediaTypeOCIIndex + `","manifests":[`)
	for i := range 20000 {
		if i > 0 {
			doc.WriteByte(',')
		}
		fmt.Fprintf(&doc, `{"mediaType":"%s","digest":"sha256:%064x","size":%d,"platform":{"architecture":"amd64","os":"linux"},"annotations":{"org.opencontainers.image.ref.name":"v%d"}}`,
			mediaTypeOCIManifest, i, i, i)
	}
	doc.WriteString(`]}`)
	data := []byte(doc.String())
	b.Run("scanOCIDocument", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			scanOCIDocument(data, func(OCIDescriptor) {})
		}
	})
	b.Run("readDocument", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			if r := readDocument(data); r.why != "" || !r.looksOCI {
				b.Fatal(r.why)
			}
		}
	})
}
