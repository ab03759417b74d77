package bundle

import (
	"archive/tar"
	"bufio"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/refdoctor/refdoctor/finding"
)

// Summary is what Inspect tells about a bundle without verifying it.
type Summary struct {
	Path          string      `json:"path,omitempty"`
	FormatVersion int         `json:"format_version"`
	CreatedAt     time.Time   `json:"created_at"`
	Tool          Tool        `json:"tool"`
	Compression   Compression `json:"compression"`
	// ArchiveBytes is the compressed size of the file.
	ArchiveBytes int64 `json:"archive_bytes"`
	// ListedBytes sums the sizes manifest.yaml lists (uncompressed).
	ListedBytes int64 `json:"listed_bytes"`
	// FileCount is the number of members manifest.yaml lists, itself
	// included.
	FileCount      int               `json:"file_count"`
	Images         []Image           `json:"images"`
	ReferrersTotal int               `json:"referrers_total"`
	Subjects       []SubjectSummary  `json:"subjects"`
	Categories     []CategorySummary `json:"categories"`
	// ManifestFirst is true when manifest.yaml was the first member, so
	// only it was read. Otherwise Inspect scanned the archive to find it.
	ManifestFirst bool   `json:"manifest_first"`
	Note          string `json:"note,omitempty"`
	// Signature says whether the bundle is signed: whether the member
	// after manifest.yaml is its signature, and what that signature says
	// about itself. Nothing is verified (bundle validate --verify-key
	// does that).
	Signature SignatureSummary `json:"signature"`
}

// SignatureSummary is what Inspect tells about a bundle's signature,
// unverified.
type SignatureSummary struct {
	// Status is signed, unsigned, or unknown (the member after
	// manifest.yaml could not be read).
	Status string `json:"status"`
	// ManifestSHA256 is the hex SHA-256 of manifest.yaml as read.
	ManifestSHA256 string `json:"manifest_sha256"`
	// Size is the signature member's size.
	Size int64 `json:"size,omitempty"`
	// Info is what the signature says about itself: its key's fingerprint
	// and what it signs (only with a ManifestVerifier, which describes it).
	Info *SignatureInfo `json:"info,omitempty"`
	// ClaimsManifest tells whether the signature says it is for this
	// manifest.yaml (its message digest or statement subject is
	// manifest.yaml's SHA-256). It is a claim, not a verification.
	ClaimsManifest bool   `json:"claims_manifest"`
	Problem        string `json:"problem,omitempty"`
}

// SubjectSummary is one subject's referrers by category.
type SubjectSummary struct {
	Subject    string            `json:"subject"`
	Discovery  string            `json:"discovery"`
	Count      int               `json:"count"`
	Bytes      int64             `json:"bytes"`
	Categories []CategorySummary `json:"categories"`
}

// CategorySummary counts referrers of one category.
type CategorySummary struct {
	Category finding.Category `json:"category"`
	Count    int              `json:"count"`
	Bytes    int64            `json:"bytes"`
}

var categoryOrder = []finding.Category{finding.CategorySBOM, finding.CategorySignature, finding.CategoryAttestation, finding.CategoryVEX, finding.CategoryOther}

// Summary sums the manifest up, as Inspect shows it. Export uses it too,
// to print what it wrote.
func (m *Manifest) Summary() Summary {
	s := Summary{
		FormatVersion:  m.SchemaVersion,
		CreatedAt:      m.CreatedAt,
		Tool:           m.Tool,
		ListedBytes:    m.ListedBytes(),
		FileCount:      m.listedCount() + 1,
		Images:         slices.Clone(m.Images),
		ReferrersTotal: m.Referrers.Total,
		Subjects:       []SubjectSummary{},
	}
	if s.Images == nil {
		s.Images = []Image{}
	}
	all := map[finding.Category]*CategorySummary{}
	for _, e := range m.Referrers.Subjects {
		ss := SubjectSummary{Subject: e.Subject, Discovery: e.Discovery, Count: e.Count}
		per := map[finding.Category]*CategorySummary{}
		for _, a := range e.Artifacts {
			ss.Bytes += a.Size
			for _, tally := range []map[finding.Category]*CategorySummary{per, all} {
				c := tally[a.Category]
				if c == nil {
					c = &CategorySummary{Category: a.Category}
					tally[a.Category] = c
				}
				c.Count++
				c.Bytes += a.Size
			}
		}
		ss.Categories = orderCategories(per)
		s.Subjects = append(s.Subjects, ss)
	}
	slices.SortFunc(s.Subjects, func(a, b SubjectSummary) int { return cmp.Compare(a.Subject, b.Subject) })
	s.Categories = orderCategories(all)
	return s
}

func orderCategories(m map[finding.Category]*CategorySummary) []CategorySummary {
	out := []CategorySummary{}
	for _, c := range categoryOrder {
		if m[c] != nil {
			out = append(out, *m[c])
		}
	}
	return out
}

// Inspect summarizes the bundle at path from its manifest.yaml alone. When
// manifest.yaml is the first member, as refdoctor writes it, nothing past
// it is read; otherwise Inspect scans for it (decompressing, still in
// constant memory) and says so in the summary. Nothing is verified: that
// is Validate's job. Errors wrap ErrNotBundle, ErrNoManifest,
// ErrMalformedManifest or ErrUnsupportedVersion.
//
// Inspect also reads the member after manifest.yaml, to tell whether the
// bundle is signed; with WithSignatureVerifier it describes the signature
// (its key's fingerprint, what it signs), verifying nothing. Other
// options are ignored.
func Inspect(ctx context.Context, path string, opts ...Opt) (Summary, error) {
	f, err := os.Open(path)
	if err != nil {
		return Summary{}, fmt.Errorf("open bundle: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return Summary{}, fmt.Errorf("open bundle: %w", err)
	}
	if fi.IsDir() {
		return Summary{}, fmt.Errorf("open bundle %s: %w: a directory", path, ErrNotBundle)
	}
	s, err := InspectReader(ctx, f, opts...)
	s.Path = path
	if fi.Mode().IsRegular() {
		s.ArchiveBytes = fi.Size()
	}
	return s, err
}

// InspectReader is Inspect on a stream. Its memory is bounded like
// Validate's: manifest.yaml is decoded entry by entry and its files list
// is only counted.
func InspectReader(ctx context.Context, r io.Reader, opts ...Opt) (Summary, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	src := &countingReader{r: r}
	br := bufio.NewReaderSize(src, inputBuffer)
	comp, err := detectCompression(br)
	if err != nil {
		return Summary{}, err
	}
	dec, err := openDecompressor(br, comp, nil)
	if err != nil {
		return Summary{}, inspectFailure(comp, 0, err)
	}
	defer dec.release()
	// The scan fallback decompresses everything before manifest.yaml, so
	// the expansion-ratio bomb bound applies here too.
	mt := &meter{r: dec.r, check: func(n int64) error {
		if c := src.n.Load(); n > DefaultExpansionFloor && n/DefaultExpansionRatio > c {
			return ratioBomb(DefaultExpansionRatio, n, c, "expanding beyond the allowed ratio while looking for manifest.yaml")
		}
		return nil
	}}
	tr := tar.NewReader(mt)
	entries, files := 0, 0
	for {
		if err := ctx.Err(); err != nil {
			return Summary{}, err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			if entries == 0 {
				return Summary{}, fmt.Errorf("%w: the archive is empty", ErrNotBundle)
			}
			return Summary{}, fmt.Errorf("%w: scanned %d members", ErrNoManifest, entries)
		}
		if err != nil && !(errors.Is(err, tar.ErrInsecurePath) && hdr != nil) {
			return Summary{}, inspectFailure(comp, entries, err)
		}
		entries++
		if entries > DefaultMaxMembers {
			return Summary{}, fmt.Errorf("%w: no manifest.yaml among the first %d members (LimitExceeded)", ErrDamaged, DefaultMaxMembers)
		}
		if hdr.Typeflag == tar.TypeDir {
			continue // "./" and friends from a hand-made tar do not count
		}
		files++
		name := strings.TrimPrefix(hdr.Name, "./")
		if name != ManifestPath || hdr.Typeflag != tar.TypeReg {
			continue
		}
		if hdr.Size > DefaultManifestLimit {
			return Summary{}, fmt.Errorf("%s is %d bytes: %w (%w)", ManifestPath, hdr.Size, ErrManifestTooLarge, ErrMalformedManifest)
		}
		var listed, listedBytes int64
		sum := sha256.New()
		m, err := parseManifestFiles(io.TeeReader(tr, sum), DefaultManifestLimit, func(f FileEntry) error {
			listed++
			listedBytes = satAdd(listedBytes, f.Size)
			return nil
		})
		if err != nil {
			if !errors.Is(err, ErrMalformedManifest) && !errors.Is(err, ErrUnsupportedVersion) && !errors.Is(err, ErrNotBundle) {
				return Summary{}, inspectFailure(comp, entries, err)
			}
			return Summary{}, err
		}
		s := m.Summary()
		s.ListedBytes = satAdd(s.ListedBytes, listedBytes)
		s.FileCount += int(listed)
		s.Compression = comp
		s.ManifestFirst = files == 1
		if !s.ManifestFirst {
			s.Note = fmt.Sprintf("manifest.yaml is member %d, not the first: the archive was scanned to find it (refdoctor writes it first; was the bundle repacked?)", files)
		}
		if _, err := io.Copy(sum, tr); err != nil {
			return Summary{}, inspectFailure(comp, entries, err)
		}
		s.Signature = inspectSignature(tr, hex.EncodeToString(sum.Sum(nil)), o.signatures)
		return s, nil
	}
}

// inspectFailure classifies a read that failed before manifest.yaml was
// read, as Validate would: not a tar at all (ErrNotBundle), the reader
// failed (its error), or the archive is damaged or hostile (ErrDamaged).
func inspectFailure(comp Compression, entries int, err error) error {
	var se *sourceError
	switch {
	case errors.As(err, &se), errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	case entries == 0 && (errors.Is(err, tar.ErrHeader) || errors.Is(err, tar.ErrFieldTooLong)):
		return fmt.Errorf("%w: %s stream: %v", ErrNotBundle, comp, err)
	}
	code := finding.CorruptArchive
	if _, ok := isBomb(err); ok {
		code = finding.DecompressionBomb
	} else if errors.Is(err, io.ErrUnexpectedEOF) {
		code = finding.TruncatedArchive
	}
	return fmt.Errorf("%w (%s) after %d members: %v", ErrDamaged, code, entries, err)
}

// inspectSignature reads the member after manifest.yaml: the signature's
// place.
func inspectSignature(tr *tar.Reader, manifestSHA256 string, v ManifestVerifier) SignatureSummary {
	ss := SignatureSummary{Status: SignatureUnsigned, ManifestSHA256: manifestSHA256}
	var hdr *tar.Header
	var err error
	for {
		hdr, err = tr.Next()
		if err != nil || hdr.Typeflag != tar.TypeDir {
			break
		}
	}
	switch {
	case err == io.EOF:
		return ss
	case err != nil:
		ss.Status, ss.Problem = SignatureUnknown, "the member after manifest.yaml could not be read: "+clip(err.Error(), 200)
		return ss
	case strings.TrimPrefix(hdr.Name, "./") != SignatureMember:
		return ss
	}
	ss.Status, ss.Size = SignatureSigned, hdr.Size
	if hdr.Typeflag != tar.TypeReg || hdr.Size > MaxSignatureSize {
		ss.Problem = fmt.Sprintf("%s is not a regular file of at most %d bytes: not a signature", SignatureMember, MaxSignatureSize)
		return ss
	}
	data, err := io.ReadAll(io.LimitReader(tr, MaxSignatureSize))
	if err != nil {
		ss.Status, ss.Problem = SignatureUnknown, SignatureMember+" could not be read: "+clip(err.Error(), 200)
		return ss
	}
	info, problem := describeSignature(data, v)
	if problem != "" {
		ss.Problem = SignatureMember + " is not a Sigstore bundle: " + problem
		return ss
	}
	ss.Info = info
	if info != nil {
		ss.ClaimsManifest = info.ClaimsSHA256(manifestSHA256)
	}
	return ss
}
