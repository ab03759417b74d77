package bundle_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/refdoctor/refdoctor/bundle"
	"github.com/refdoctor/refdoctor/finding"
	"github.com/refdoctor/refdoctor/internal/craft"
)

// goReading is what Go's decoder (registries, runtimes, refdoctor) reads
// of a manifest; exactReading what a reader that matches names exactly
// and keeps the first of two keys reads (Python's json keeps the last,
// Rust's serde refuses a second key, streaming readers see the first).
type descView struct {
	Digest string `json:"digest"`
}

func goReading(t *testing.T, raw []byte) (config string, layers []string) {
	t.Helper()
	var m struct {
		Config descView   `json:"config"`
		Layers []descView `json:"layers"`
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("Go's decoder refuses the crafted manifest: %v", err)
	}
	for _, l := range m.Layers {
		layers = append(layers, l.Digest)
	}
	return m.Config.Digest, layers
}

// exactReading walks the document key by key, exact names, first wins.
func exactReading(t *testing.T, raw []byte) (config string, layers []string) {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	first := func(dec *json.Decoder, want string) (json.RawMessage, bool) {
		var found json.RawMessage
		ok := false
		if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
			t.Fatalf("not an object: %v", err)
		}
		for dec.More() {
			tok, _ := dec.Token()
			var v json.RawMessage
			if err := dec.Decode(&v); err != nil {
				t.Fatal(err)
			}
			if tok == want && !ok {
				found, ok = v, true
			}
		}
		dec.Token()
		return found, ok
	}
	if c, ok := first(dec, "config"); ok {
		d, _ := first(json.NewDecoder(strings.NewReader(string(c))), "digest")
		json.Unmarshal(d, &config)
	}
	dec = json.NewDecoder(strings.NewReader(string(raw)))
	if l, ok := first(dec, "layers"); ok {
		var list []json.RawMessage
		json.Unmarshal(l, &list)
		for _, e := range list {
			d, _ := first(json.NewDecoder(strings.NewReader(string(e))), "digest")
			var s string
			json.Unmarshal(d, &s)
			layers = append(layers, s)
		}
	}
	return config, layers
}

func descJSON(mediaType string, b []byte) string {
	return fmt.Sprintf(`{"mediaType":%q,"digest":%q,"size":%d}`, mediaType, craft.Digest(b), len(b))
}

// TestAmbiguousManifests: each bundle is whole (every member listed and
// intact, every blob its manifest references as Go reads it present), and
// its image manifest reads one way to Go's decoder and another way to
// other JSON readers. Before, validate passed them (exit 0) and import
// pushed the manifest; now each is AmbiguousDocument, naming the key,
// and the manifest is not trusted (import refuses the image).
func TestAmbiguousManifests(t *testing.T) {
	t.Parallel()
	cfg := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)
	scanned := []byte("the layer the scanner was shown")
	served := []byte("the layer the runtime unpacks")
	header := fmt.Sprintf(`"schemaVersion":2,"mediaType":%q`, craft.MediaManifest)
	cfgDesc := descJSON(craft.MediaConfig, cfg)
	cases := []struct {
		name     string
		manifest string
		extra    [][]byte // stored besides the config and the first layer
		want     []string // in the message
		differ   bool     // Go and an exact, first-wins reader read other blobs
	}{
		{
			name:     "a field name in another case",
			manifest: `{` + header + `,"config":` + cfgDesc + `,"layers":[` + descJSON(craft.MediaLayer, scanned) + `],"Layers":[` + descJSON(craft.MediaLayer, served) + `]}`,
			extra:    [][]byte{served},
			want:     []string{`"Layers"`, `read as "layers"`, "the document"},
			differ:   true,
		},
		{
			name:     "the long s folds to s in Go's decoder",
			manifest: `{` + header + `,"config":` + cfgDesc + `,"layers":[` + descJSON(craft.MediaLayer, scanned) + `],"layer\u017f":[` + descJSON(craft.MediaLayer, served) + `]}`,
			extra:    [][]byte{served},
			want:     []string{`"layerſ"`, `read as "layers"`},
			differ:   true,
		},
		{
			// The blob the first digest names is not in the bundle at all:
			// validation checked only the digest Go reads.
			name:     "a digest twice in one descriptor",
			manifest: `{` + header + `,"config":` + cfgDesc + `,"layers":[{"mediaType":"` + craft.MediaLayer + `","digest":"` + craft.Digest([]byte("absent from the bundle")) + `","digest":"` + craft.Digest(scanned) + `","size":` + fmt.Sprint(len(scanned)) + `}]}`,
			want:     []string{`the key "digest" appears twice in layers[0]`},
			differ:   true,
		},
		{
			name:     "an escaped key is the same key",
			manifest: `{` + header + `,"config":` + cfgDesc + `,"layers":[` + descJSON(craft.MediaLayer, served) + `],"\u006cayers":[` + descJSON(craft.MediaLayer, scanned) + `]}`,
			extra:    [][]byte{served},
			want:     []string{`the key "layers" appears twice in the document`},
			differ:   true,
		},
		{
			name:     "both an image manifest and an index",
			manifest: `{"schemaVersion":2,"config":` + cfgDesc + `,"layers":[` + descJSON(craft.MediaLayer, scanned) + `],"manifests":[` + descJSON(craft.MediaManifest, served) + `]}`,
			extra:    [][]byte{served},
			want:     []string{`"manifests" beside "layers" and "config"`, "CVE-2021-41190"},
		},
		{
			name:     "a size Go's decoder refuses",
			manifest: `{` + header + `,"config":` + cfgDesc + `,"layers":[{"mediaType":"` + craft.MediaLayer + `","digest":"` + craft.Digest(served) + `","size":1e3}]}`,
			want:     []string{"Go's JSON decoder refuses it", "not checked"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			raw := []byte(tc.manifest)
			if tc.differ {
				gc, gl := goReading(t, raw)
				ec, el := exactReading(t, raw)
				if gc == ec && slices.Equal(gl, el) {
					t.Fatalf("the readers agree (config %s, layers %v): the case shows nothing", gc, gl)
				}
				t.Logf("Go reads layers %v, an exact first-wins reader %v", gl, el)
			}
			img := craft.Image{Manifest: raw, Config: cfg, Layer: scanned}
			manifestPath := "blobs/sha256/" + craft.Sum(raw)
			// manifest.yaml first, as refdoctor writes it, and last, when
			// what is found before it is kept and judged on its arrival.
			for _, last := range []bool{false, true} {
				b := craft.ValidWith(img, tc.extra...)
				if last {
					b.Members = append(b.Members, craft.Member{Name: "manifest.yaml", Data: b.ManifestYAML()})
				}
				path := writeCrafted(t, fmt.Sprintf("ambiguous-manifest-last-%v.tgz", last), b.Tgz())
				rep, err := bundle.ValidateFile(context.Background(), path, bundle.WithCheckReferrers(true))
				if err != nil {
					t.Fatal(err)
				}
				if rep.OK || !slices.Equal(problemCodes(rep), []finding.Code{finding.AmbiguousDocument}) {
					t.Fatalf("manifest.yaml last %v: want exactly AmbiguousDocument, got %v:\n%s", last, problemCodes(rep), dump(rep))
				}
				p := rep.Errors[0]
				if p.Path != manifestPath {
					t.Errorf("manifest.yaml last %v: problem names %s, want the manifest %s", last, p.Path, manifestPath)
				}
				for _, w := range tc.want {
					if !strings.Contains(p.Message, w) {
						t.Errorf("manifest.yaml last %v: message %q lacks %q", last, p.Message, w)
					}
				}
				if rep.Verified(manifestPath) {
					t.Errorf("manifest.yaml last %v: the ambiguous manifest is still trusted for import", last)
				}
				if !rep.Verified(bundle.IndexPath) || !rep.Verified("blobs/sha256/"+craft.Sum(cfg)) {
					t.Errorf("manifest.yaml last %v: members that are not ambiguous lost their trust", last)
				}
			}
		})
	}
}

// TestUnambiguousDocumentsPass: JSON that only looks odd is not refused:
// annotation keys that differ only in case (a map: every reader keeps
// both), an image config with a key twice (content, not a manifest:
// validation makes no claim about it), fields the image spec does not
// name, and an index (index.json) with its platform fields.
func TestUnambiguousDocumentsPass(t *testing.T) {
	t.Parallel()
	cfg := []byte(`{"architecture":"amd64","architecture":"arm64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)
	layer := []byte("layer")
	manifest := []byte(`{"schemaVersion":2,"mediaType":"` + craft.MediaManifest + `","config":` + descJSON(craft.MediaConfig, cfg) +
		`,"layers":[` + descJSON(craft.MediaLayer, layer) + `],` +
		`"annotations":{"org.example.Team":"a","org.example.team":"b"},"x-vendor":{"Layers":1,"layers":2}}`)
	b := craft.ValidWith(craft.Image{Manifest: manifest, Config: cfg, Layer: layer})
	rep, err := bundle.ValidateFile(context.Background(), writeCrafted(t, "plain.tgz", b.Tgz()), bundle.WithCheckReferrers(true))
	if err != nil || !rep.OK {
		t.Fatalf("a bundle nobody reads two ways fails: %v\n%s", err, dump(rep))
	}
}
