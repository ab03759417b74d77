package bundle

import (
	"archive/tar"
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// Annotations refdoctor writes into index.json (section 3 of
// docs/bundle-format.md).
const (
	// AnnotationRefName is the OCI layout's tag annotation.
	AnnotationRefName = "org.opencontainers.image.ref.name"
	// AnnotationKind tells an image from a cosign-style tag in index.json.
	AnnotationKind = "io.refdoctor.bundle.kind"
	// AnnotationReference is the full source reference of an entry.
	AnnotationReference = "io.refdoctor.bundle.reference"
)

// CompressionForPath picks zstd for .tar.zst / .tzst names, gzip otherwise.
// Only writers use it: readers detect the compression from the bytes.
func CompressionForPath(p string) Compression {
	if strings.HasSuffix(p, ".zst") || strings.HasSuffix(p, ".tzst") {
		return CompressionZstd
	}
	return CompressionGzip
}

// EachMember streams the regular members of the bundle at file to fn, in
// archive order. It checks nothing: callers validate first (Validate) and
// use this only to read what validation accepted. It still skips anything
// that is not a plain file with a safe name. fn may stop the walk by
// returning an error, which EachMember returns.
func EachMember(ctx context.Context, file string, fn func(name string, size int64, r io.Reader) error) error {
	f, err := os.Open(file)
	if err != nil {
		return fmt.Errorf("open bundle: %w", err)
	}
	defer f.Close()
	return EachMemberIn(ctx, f, fn)
}

// EachMemberIn is EachMember on an archive already open, so that a caller
// can check which file it reads before reading it.
func EachMemberIn(ctx context.Context, archive io.Reader, fn func(name string, size int64, r io.Reader) error) error {
	br := bufio.NewReaderSize(archive, inputBuffer)
	comp, err := detectCompression(br)
	if err != nil {
		return err
	}
	dec, err := openDecompressor(br, comp, nil)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrNotBundle, err)
	}
	defer dec.release()
	tr := tar.NewReader(dec.r)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read bundle: %w", err)
		}
		name := strings.TrimPrefix(hdr.Name, "./")
		if hdr.Typeflag != tar.TypeReg || unsafePathReason(name) != "" {
			continue
		}
		if err := fn(name, hdr.Size, tr); err != nil {
			return err
		}
	}
}

var errStopReading = errors.New("stop")

// ReadManifest reads manifest.yaml from the bundle at file, stopping as
// soon as it has it (refdoctor writes it first). It verifies nothing else.
func ReadManifest(ctx context.Context, file string) (*Manifest, error) {
	var m *Manifest
	err := EachMember(ctx, file, func(name string, size int64, r io.Reader) error {
		if name != ManifestPath {
			return nil
		}
		var err error
		if m, err = ParseManifest(r, DefaultManifestLimit); err != nil {
			return err
		}
		return errStopReading
	})
	if err != nil && !errors.Is(err, errStopReading) {
		return nil, err
	}
	if m == nil {
		return nil, ErrNoManifest
	}
	return m, nil
}
