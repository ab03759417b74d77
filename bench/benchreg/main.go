// Command benchreg runs the registries of bench/run.sh, each until it is
// sent SIGTERM or SIGINT:
//
//	benchreg source -dir D -info F [-size MiB] [-layers N] [-images N] [-referrers N]
//	    olareg (filesystem store under D) seeded with bench/big:v1, an OCI
//	    index whose linux/amd64 image holds SIZE MiB of incompressible
//	    layers, three referrers on the index and one on the image, and
//	    bench/many, IMAGES small images with REFERRERS referrers each.
//	benchreg olareg -dir D -info F
//	    an empty olareg (filesystem store under D): a fresh import target.
//	benchreg distribution -dir D -info F
//	    Debian's docker-registry (distribution v2.8, no referrers API) on
//	    a fresh store under D, started as the lab starts it.
//
// Once serving, each writes F, a JSON object with the registry's host and,
// for source, the large image's reference; source also writes D/refs.txt,
// the small images' references one per line. Content is pseudo-random from a fixed
// seed: the same digests every run, and nothing large ever in the
// repository.
package main

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/olareg/olareg"
	olaregconfig "github.com/olareg/olareg/config"
	"github.com/opencontainers/go-digest"
	"github.com/regclient/regclient/types/descriptor"
	"github.com/regclient/regclient/types/manifest"
	"github.com/regclient/regclient/types/mediatype"
	v1 "github.com/regclient/regclient/types/oci/v1"
	"github.com/regclient/regclient/types/platform"
	"github.com/regclient/regclient/types/ref"

	"github.com/refdoctor/refdoctor/config"
	"github.com/refdoctor/refdoctor/lab"
	"github.com/refdoctor/refdoctor/lab/external"
	"github.com/refdoctor/refdoctor/registry"
)

// Info is what benchreg writes to -info once it serves.
type Info struct {
	Host string `json:"host"`
	// Image is the large image (source only).
	Image string `json:"image,omitempty"`
	// ImageBytes is the sum of its layer sizes.
	ImageBytes int64 `json:"image_bytes,omitempty"`
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: benchreg source|olareg|distribution -dir D -info F [flags]")
		os.Exit(2)
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	dir := fs.String("dir", "", "store folder")
	info := fs.String("info", "", "file to write the registry's address into")
	sizeMiB := fs.Int64("size", 600, "large image: total layer size in MiB")
	layers := fs.Int("layers", 6, "large image: number of layers")
	images := fs.Int("images", 200, "small images in bench/many")
	referrers := fs.Int("referrers", 3, "referrers per small image")
	_ = fs.Parse(os.Args[2:])
	if *dir == "" || *info == "" {
		fs.Usage()
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	var err error
	switch os.Args[1] {
	case "source":
		err = runSource(ctx, *dir, *info, *sizeMiB<<20, *layers, *images, *referrers)
	case "olareg":
		err = runOlareg(ctx, *dir, *info)
	case "distribution":
		err = runDistribution(ctx, *dir, *info)
	default:
		err = fmt.Errorf("unknown mode %q: use source, olareg or distribution", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchreg:", err)
		os.Exit(1)
	}
}

// startOlareg serves olareg with a filesystem store under dir on a free
// loopback port.
func startOlareg(dir string) (string, func(), error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return "", nil, err
	}
	off := false
	srv := olareg.New(olaregconfig.Config{
		Storage: olaregconfig.ConfigStorage{StoreType: olaregconfig.StoreDir, RootDir: dir,
			GC: olaregconfig.ConfigGC{Frequency: -1, EmptyRepo: &off}},
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	return ln.Addr().String(), func() { _ = hs.Close(); _ = srv.Close() }, nil
}

func writeInfo(path string, v Info) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func runOlareg(ctx context.Context, dir, info string) error {
	host, stop, err := startOlareg(dir)
	if err != nil {
		return err
	}
	defer stop()
	if err := writeInfo(info, Info{Host: host}); err != nil {
		return err
	}
	<-ctx.Done()
	return nil
}

func runDistribution(ctx context.Context, dir, info string) error {
	d, err := external.StartDistribution(ctx, dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := writeInfo(info, Info{Host: d.Host}); err != nil {
		return err
	}
	<-ctx.Done()
	return nil
}

func runSource(ctx context.Context, dir, info string, size int64, layers, images, referrers int) error {
	if layers < 1 || size < int64(layers) {
		return errors.New("-size and -layers: at least one byte per layer")
	}
	host, stop, err := startOlareg(filepath.Join(dir, "store"))
	if err != nil {
		return err
	}
	defer stop()
	cfg := config.Defaults()
	cfg.SetHost(config.Registry{Host: host, PlainHTTP: true})
	c, err := registry.New(cfg, registry.WithoutDockerCreds(), registry.WithTimeout(5*time.Minute))
	if err != nil {
		return err
	}
	start := time.Now()
	big, total, err := seedBig(ctx, c, host, size, layers)
	if err != nil {
		return fmt.Errorf("seed bench/big: %w", err)
	}
	many, err := lab.SeedMany(ctx, c, host, "bench/many", images, referrers)
	if err != nil {
		return fmt.Errorf("seed bench/many: %w", err)
	}
	var refs strings.Builder
	for i := range many {
		fmt.Fprintf(&refs, "%s/bench/many:"+lab.SeedManyTagFormat+"\n", host, i)
	}
	if err := os.WriteFile(filepath.Join(dir, "refs.txt"), []byte(refs.String()), 0o600); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "benchreg: seeded %s (%d MiB) and %d small images in %s\n", big, total>>20, len(many), time.Since(start).Round(time.Millisecond))
	if err := writeInfo(info, Info{Host: host, Image: big, ImageBytes: total}); err != nil {
		return err
	}
	<-ctx.Done()
	return nil
}

// layerReader yields layer i's pseudo-random bytes.
func layerReader(i int, size int64) io.Reader {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], 0x5eed)
	binary.LittleEndian.PutUint64(key[8:], uint64(i))
	return io.LimitReader(rand.NewChaCha8(key), size)
}

// seedBig pushes bench/big:v1 unless the store already holds it.
func seedBig(ctx context.Context, c *registry.Client, host string, size int64, layers int) (string, int64, error) {
	r, err := ref.New(host + "/bench/big")
	if err != nil {
		return "", 0, err
	}
	var total int64
	var descs []descriptor.Descriptor
	buf := make([]byte, 1<<20)
	for i := range layers {
		n := size / int64(layers)
		if i == layers-1 {
			n = size - n*int64(layers-1)
		}
		h := sha256.New()
		if _, err := io.CopyBuffer(h, layerReader(i, n), buf); err != nil {
			return "", 0, err
		}
		d := descriptor.Descriptor{MediaType: mediatype.OCI1LayerGzip, Digest: digest.NewDigest(digest.SHA256, h), Size: n}
		if _, err := c.BlobHead(ctx, r, d); err != nil {
			if _, err := c.BlobPut(ctx, r, d, layerReader(i, n)); err != nil {
				return "", 0, fmt.Errorf("layer %d: %w", i, err)
			}
		}
		descs = append(descs, d)
		total += n
	}
	created := time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC)
	diffIDs := make([]digest.Digest, len(descs))
	for i, d := range descs {
		diffIDs[i] = d.Digest
	}
	cfgData, _ := json.Marshal(v1.Image{Created: &created, Platform: platform.Platform{OS: "linux", Architecture: "amd64"},
		RootFS: v1.RootFS{Type: "layers", DiffIDs: diffIDs}})
	cfg, err := putBlob(ctx, c, r, mediatype.OCI1ImageConfig, cfgData)
	if err != nil {
		return "", 0, err
	}
	img, err := putManifest(ctx, c, r, "", v1.Manifest{Versioned: v1.ManifestSchemaVersion, MediaType: mediatype.OCI1Manifest,
		Config: cfg, Layers: descs})
	if err != nil {
		return "", 0, err
	}
	img.Platform = &platform.Platform{OS: "linux", Architecture: "amd64"}
	idx, err := putManifest(ctx, c, r, "v1", v1.Index{Versioned: v1.IndexSchemaVersion, MediaType: mediatype.OCI1ManifestList,
		Manifests: []descriptor.Descriptor{img}})
	if err != nil {
		return "", 0, err
	}
	if _, err := putBlob(ctx, c, r, mediatype.OCI1Empty, descriptor.EmptyData); err != nil {
		return "", 0, err
	}
	for i, a := range []struct {
		subject      descriptor.Descriptor
		artifactType string
	}{
		{idx, lab.ArtifactTypeCycloneDX}, {idx, lab.ArtifactTypeNotary}, {idx, lab.ArtifactTypeInToto}, {img, lab.ArtifactTypeSPDX},
	} {
		payload := fmt.Appendf(nil, `{"bench":"refdoctor","referrer":%d,"artifactType":%q}`, i, a.artifactType)
		layer, err := putBlob(ctx, c, r, a.artifactType, payload)
		if err != nil {
			return "", 0, err
		}
		subject := descriptor.Descriptor{MediaType: a.subject.MediaType, Digest: a.subject.Digest, Size: a.subject.Size}
		if _, err := putManifest(ctx, c, r, "", v1.Manifest{Versioned: v1.ManifestSchemaVersion, MediaType: mediatype.OCI1Manifest,
			ArtifactType: a.artifactType,
			Config:       descriptor.Descriptor{MediaType: mediatype.OCI1Empty, Digest: descriptor.EmptyDigest, Size: int64(len(descriptor.EmptyData))},
			Layers:       []descriptor.Descriptor{layer}, Subject: &subject}); err != nil {
			return "", 0, err
		}
	}
	return r.SetTag("v1").CommonName(), total, nil
}

func putBlob(ctx context.Context, c *registry.Client, r ref.Ref, mt string, data []byte) (descriptor.Descriptor, error) {
	d := descriptor.Descriptor{MediaType: mt, Digest: digest.FromBytes(data), Size: int64(len(data))}
	_, err := c.BlobPut(ctx, r, d, strings.NewReader(string(data)))
	return d, err
}

func putManifest(ctx context.Context, c *registry.Client, r ref.Ref, tag string, orig any) (descriptor.Descriptor, error) {
	m, err := manifest.New(manifest.WithOrig(orig))
	if err != nil {
		return descriptor.Descriptor{}, err
	}
	d := m.GetDescriptor()
	if tag != "" {
		r = r.SetTag(tag)
	} else {
		r = r.SetDigest(d.Digest.String())
	}
	if err := c.ManifestPut(ctx, r, m); err != nil {
		return descriptor.Descriptor{}, fmt.Errorf("push manifest %s: %w", r.CommonName(), err)
	}
	return descriptor.Descriptor{MediaType: d.MediaType, Digest: d.Digest, Size: d.Size}, nil
}
