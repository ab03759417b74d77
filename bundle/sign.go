package bundle

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"

	"github.com/refdoctor/refdoctor/finding"
	"github.com/refdoctor/refdoctor/internal/atomicfile"
)

// ErrAlreadySigned refuses to replace a bundle's signature unless asked
// (`bundle sign --force`).
var ErrAlreadySigned = errors.New("the bundle is already signed")

// AttachResult says what AttachSignature wrote.
type AttachResult struct {
	Path string `json:"path"`
	// Checksum is the new bundle's sha256, as its .sha256 sidecar holds it.
	Checksum string `json:"sha256"`
	Sidecar  string `json:"sidecar"`
	// SignatureSidecar is OUT.sigstore.json, a copy of the signature member.
	SignatureSidecar string `json:"signature_sidecar"`
	// ManifestSHA256 is the hex SHA-256 of the manifest.yaml signed.
	ManifestSHA256 string `json:"manifest_sha256"`
	// Replaced tells whether an earlier signature was dropped.
	Replaced bool `json:"replaced"`
	// Validation is the report of the validation that came first.
	Validation *Report `json:"validation,omitempty"`
}

// AttachSignature signs the bundle at file, or attaches a signature made
// elsewhere: sign receives manifest.yaml's exact bytes and returns the
// signature member (SignManifest of package bundle/signing, or a `cosign
// sign-blob --bundle` file it has checked claims these bytes). The bundle
// is rewritten with manifest.yaml first and the signature right after it,
// every other member unchanged and in its order, with the same
// compression (from the first stored layer on, the file is copied as it
// is: see rewriteSigned); then the .sigstore.json and .sha256 sidecars
// are written.
//
// The bundle is validated first (referrers included) and must be whole: a
// bundle that does not validate is not signed (ErrDamaged, with the report
// in the result). One already signed is refused (ErrAlreadySigned) unless
// replace is set, which drops its signature member(s), misplaced ones
// included. While rewriting, every member is hashed again against the
// listing validation checked, so a file that changes in between is not
// signed. The new bundle is written to a temporary file next to file and
// renamed over it only when whole: on any failure the original stays as it
// was. The sidecars are written (each atomically) after the rename.
//
// opts go to the validation; WithSignatureVerifier lets the refusal of a
// signed bundle name the key that signed it.
func AttachSignature(ctx context.Context, file string, sign func(manifestYAML []byte) ([]byte, error), replace bool, opts ...Opt) (AttachResult, error) {
	res := AttachResult{Path: file, Sidecar: file + ".sha256", SignatureSidecar: SignatureSidecarPath(file)}
	fi, err := os.Stat(file)
	if err != nil {
		return res, fmt.Errorf("open bundle: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return res, fmt.Errorf("open bundle %s: %w: not a regular file", file, ErrNotBundle)
	}
	rep, err := ValidateFile(ctx, file, append(opts, WithCheckReferrers(true))...)
	res.Validation = &rep
	if err != nil {
		return res, err
	}
	if rep.Unreadable() {
		return res, fmt.Errorf("%w: %s", ErrMalformedManifest, rep.Errors[0])
	}
	if p := signBlockers(rep, replace); p != nil {
		return res, fmt.Errorf("%w: the bundle does not validate (%s; bundle validate --file %s lists every problem): refusing to sign it", ErrDamaged, p, file)
	}
	if rep.Signature.Signed && !replace {
		return res, fmt.Errorf("%w (by %s): pass --force to replace its signature", ErrAlreadySigned, orUnknownKey(rep.Signature.KeyFingerprint))
	}
	res.Replaced = rep.Signature.Signed

	yml, err := readManifestBytes(ctx, file)
	if err != nil {
		return res, err
	}
	sum := sha256.Sum256(yml)
	if !rep.sigSumOK || sum != rep.manifestSum {
		return res, fmt.Errorf("%w: %s changed since it was validated; nothing was signed", ErrDamaged, file)
	}
	res.ManifestSHA256 = hex.EncodeToString(sum[:])
	sig, err := sign(yml)
	if err != nil {
		return res, err
	}
	if len(sig) > MaxSignatureSize {
		return res, fmt.Errorf("the signature is %d bytes, more than the %d a signature member may be", len(sig), MaxSignatureSize)
	}
	if _, problem := describeSignature(sig, nil); problem != "" {
		return res, fmt.Errorf("the signature is not a Sigstore bundle: %s", problem)
	}

	checksum, err := rewriteSigned(ctx, file, fi, rep, yml, sig)
	if err != nil {
		return res, err
	}
	res.Checksum = checksum
	if err := WriteFileAtomic(res.SignatureSidecar, sig); err != nil {
		return res, fmt.Errorf("write %s: %w", res.SignatureSidecar, err)
	}
	if err := WriteFileAtomic(res.Sidecar, []byte(checksum+"  "+filepath.Base(file)+"\n")); err != nil {
		return res, fmt.Errorf("write %s: %w", res.Sidecar, err)
	}
	return res, nil
}

// signBlockers is the first problem that keeps a bundle from being
// signed; with replace, problems of the signature member itself (which is
// dropped) do not count.
func signBlockers(rep Report, replace bool) *Problem {
	for _, p := range rep.Errors {
		if replace && p.Path == SignatureMember && (p.Code == finding.SignatureInvalid || p.Code == finding.DuplicateMember) {
			continue
		}
		return &p
	}
	if !rep.Complete {
		return &Problem{Code: finding.TruncatedArchive, Message: "reading stopped early"}
	}
	return nil
}

func orUnknownKey(fp string) string {
	if fp == "" {
		return "a key the signature does not name"
	}
	return "key " + fp
}

// readManifestBytes reads manifest.yaml's exact bytes.
func readManifestBytes(ctx context.Context, file string) ([]byte, error) {
	var yml []byte
	err := EachMember(ctx, file, func(name string, size int64, r io.Reader) error {
		if name != ManifestPath {
			return nil
		}
		if size > DefaultManifestLimit {
			return fmt.Errorf("%w: %s is %d bytes", ErrManifestTooLarge, ManifestPath, size)
		}
		var err error
		if yml, err = io.ReadAll(io.LimitReader(r, size)); err != nil {
			return err
		}
		return errStopReading
	})
	if err != nil && !errors.Is(err, errStopReading) {
		return nil, err
	}
	if yml == nil {
		return nil, ErrNoManifest
	}
	return yml, nil
}

// rewriteSigned writes the signed bundle next to file and renames it over
// file; it returns the new file's sha256.
//
// A gzip bundle with a seek point (a member whose tar header starts a
// gzip member of its own, see Report.VerifiedOffset; export gives every
// stored layer one) is not rewritten whole: the members before the first
// seek point are written again after manifest.yaml and the signature, and
// the file from the seek point on is copied as it is, gzip member by gzip
// member. That is what export --sign-key writes, layers stay stored, and
// nothing is compressed again. The members copied are still inflated and
// hashed against the listing as they go by.
func rewriteSigned(ctx context.Context, file string, fi os.FileInfo, rep Report, yml, sig []byte) (string, error) {
	tmp, err := os.CreateTemp(filepath.Dir(file), "."+filepath.Base(file)+".partial-"+strconv.Itoa(os.Getpid())+"-*")
	if err != nil {
		return "", fmt.Errorf("create the signed bundle: %w", err)
	}
	keep := false
	defer func() {
		if !keep {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	h := sha256.New()
	bw := bufio.NewWriterSize(io.MultiWriter(tmp, h), 1<<20)
	w := NewWriter(bw, rep.Compression, WithModTime(rep.manifest.CreatedAt))
	if err := w.AddFile(ManifestPath, yml); err != nil {
		return "", err
	}
	if err := w.AddFile(SignatureMember, sig); err != nil {
		return "", err
	}
	var splice int64
	if rep.Compression == CompressionGzip && len(rep.Errors) == 0 {
		rep.lst.each(func(_ int32, e *listEntry) {
			if e.seek > 0 && e.verified() && (splice == 0 || e.seek < splice) {
				splice = e.seek
			}
		})
	}
	copied := map[string]bool{}
	// member checks one member of the original against what validation
	// read and passes its data to add (nil: check only).
	member := func(name string, size int64, r io.Reader, add func(io.Reader) error) error {
		switch {
		case name == ManifestPath || name == SignatureMember:
			return fmt.Errorf("%w: %s is not where validation read it (the file changed while it was being signed)", ErrDamaged, name)
		case copied[name]:
			return fmt.Errorf("%w: %s appears twice", ErrDamaged, name)
		}
		e, ok := rep.lst.lookup(name)
		if !ok || e.size != size {
			return fmt.Errorf("%w: %s is not what validation checked (the file changed while it was being signed)", ErrDamaged, name)
		}
		copied[name] = true
		mh := sha256.New()
		src := io.TeeReader(r, mh)
		if add != nil {
			if err := add(src); err != nil {
				return err
			}
		} else if _, err := io.Copy(io.Discard, src); err != nil {
			return err
		}
		var got [32]byte
		mh.Sum(got[:0])
		if got != e.sum {
			return fmt.Errorf("%w: %s changed while the bundle was being signed", ErrDamaged, name)
		}
		return nil
	}
	err = EachMember(ctx, file, func(name string, size int64, r io.Reader) error {
		switch {
		case name == ManifestPath:
			// Checked below against what was signed.
			got, err := io.ReadAll(io.LimitReader(r, size))
			if err != nil {
				return err
			}
			if !bytes.Equal(got, yml) {
				return fmt.Errorf("%w: %s changed while it was being signed", ErrDamaged, ManifestPath)
			}
			return nil
		case name == SignatureMember:
			return nil
		}
		if e, ok := rep.lst.lookup(name); ok && splice > 0 && e.seek == splice {
			return errSplice
		}
		return member(name, size, r, func(src io.Reader) error { return w.AddFileFrom(name, size, src) })
	})
	switch {
	case errors.Is(err, errSplice):
		if err := w.closePrefix(); err != nil {
			return "", err
		}
		if err := copyFrom(ctx, file, fi, splice, bw, member); err != nil {
			return "", err
		}
	case err != nil:
		return "", err
	default:
		if err := w.Close(); err != nil {
			return "", err
		}
	}
	if err := bw.Flush(); err != nil {
		return "", err
	}
	if err := tmp.Sync(); err != nil {
		return "", err
	}
	if err := tmp.Close(); err != nil {
		return "", err
	}
	if err := os.Chmod(tmp.Name(), fi.Mode().Perm()); err != nil {
		return "", err
	}
	if err := os.Rename(tmp.Name(), file); err != nil {
		return "", fmt.Errorf("move the signed bundle into place: %w", err)
	}
	keep = true
	return hex.EncodeToString(h.Sum(nil)), nil
}

// errSplice stops the rewrite at the first seek point.
var errSplice = errors.New("splice")

// copyFrom copies file from offset to its end into out, as it is, while
// a second goroutine inflates the copy and passes every member in it to
// check. The file must be the one validation read (same file, size and
// modification time).
func copyFrom(ctx context.Context, file string, fi os.FileInfo, offset int64, out io.Writer,
	check func(name string, size int64, r io.Reader, add func(io.Reader) error) error) error {
	f, err := os.Open(file)
	if err != nil {
		return fmt.Errorf("open bundle: %w", err)
	}
	defer f.Close()
	now, err := f.Stat()
	if err != nil {
		return fmt.Errorf("open bundle: %w", err)
	}
	if !os.SameFile(now, fi) || now.Size() != fi.Size() || !now.ModTime().Equal(fi.ModTime()) {
		return fmt.Errorf("%w: %s changed while it was being signed", ErrDamaged, file)
	}
	pr, pw := io.Pipe()
	checked := make(chan error, 1)
	go func() {
		err := EachMemberIn(ctx, pr, func(name string, size int64, r io.Reader) error {
			return check(name, size, r, nil)
		})
		if err == nil {
			// What follows the end of the archive: gzip trailers.
			_, err = io.Copy(io.Discard, pr)
		}
		pr.CloseWithError(err)
		checked <- err
	}()
	_, err = io.Copy(io.MultiWriter(out, pw), io.NewSectionReader(f, offset, fi.Size()-offset))
	pw.CloseWithError(err)
	if cerr := <-checked; cerr != nil {
		if errors.Is(cerr, ErrDamaged) || ctx.Err() != nil {
			return cerr
		}
		// It validated: a stream that no longer reads is a changed file.
		return fmt.Errorf("%w: %s changed while it was being signed: %v", ErrDamaged, file, cerr)
	}
	return err
}

// WriteFileAtomic writes data to a temporary file next to path, syncs it
// and renames it over path, so that path holds either its old content or
// data, never part of it. The file is mode 0644, as export writes its
// sidecars.
func WriteFileAtomic(path string, data []byte) error {
	return atomicfile.WriteBytes(path, 0o644, data)
}
