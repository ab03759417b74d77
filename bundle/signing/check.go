package signing

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"sync"

	"github.com/refdoctor/refdoctor/bundle"
	"github.com/refdoctor/refdoctor/finding"
)

// maxSignatureDocuments bounds the signature manifests a Collector keeps:
// cosign's are under 2 KiB each, so this is many thousands of them.
const maxSignatureDocuments = 16 << 20

// ErrTooManySignatures: the bundle holds more signature manifests than a
// check keeps in memory; the check could not finish.
var ErrTooManySignatures = errors.New("too many signature manifests to check")

// Collector keeps, as validation passes them on (bundle.WithDocuments),
// the documents an image signature check needs: index.json, whose tagged
// entries name the legacy .sig manifests, and the signature manifests
// themselves. Everything else is dropped at once, so memory stays small.
type Collector struct {
	mu    sync.Mutex
	docs  map[string][]byte
	bytes int64
	over  bool
}

// NewCollector starts an empty Collector.
func NewCollector() *Collector { return &Collector{docs: map[string][]byte{}} }

// Document is the bundle.WithDocuments callback.
func (c *Collector) Document(path string, data []byte) {
	if path != bundle.IndexPath && bundle.ImageSignatureKind(data) == "" {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.docs[path]; ok {
		return
	}
	if c.bytes+int64(len(data)) > maxSignatureDocuments {
		c.over = true
		return
	}
	c.docs[path] = data
	c.bytes += int64(len(data))
}

func (c *Collector) get(path string) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	d, ok := c.docs[path]
	return d, ok
}

// CheckImageSignatures verifies every cosign signature that travels in the
// bundle at file against the image digest it claims, offline, with the
// Verifier's keys, and returns one verdict per image (bundle.Report's
// image_signatures): the images of manifest.yaml in their order, then any
// other manifest of the bundle that carries signatures (a platform
// manifest signed on its own).
//
// rep is the bundle's validation report and c the Collector that was
// passed to that validation (with bundle.WithDocuments and
// bundle.WithCheckReferrers, so that referrer files reach it): only members that passed their own checks
// (bundle.Report.Matches) are used. A signature manifest that did not
// pass is an invalid signature of its image. The verdicts do not depend
// on the bundle's own signature: an image signature is checked against
// the keys on its own, and validation reports the bundle's signature
// separately. The signature blobs (simple-signing payloads, Sigstore bundles)
// are read in a second pass over file, which must therefore be a regular
// file.
//
// The error is non-nil when there is no key (ErrNoVerifyKeys), the bundle
// has no readable manifest.yaml, the Collector was over its bound
// (ErrTooManySignatures), or file could not be read again: no verdict is
// then given.
func (v *Verifier) CheckImageSignatures(ctx context.Context, file string, rep bundle.Report, c *Collector) ([]bundle.ImageSignatureReport, error) {
	if !v.CanVerify() {
		return nil, ErrNoVerifyKeys
	}
	m := rep.Manifest()
	if m == nil {
		return nil, errors.New("check image signatures: the bundle has no readable manifest.yaml")
	}
	c.mu.Lock()
	over := c.over
	c.mu.Unlock()
	if over {
		return nil, fmt.Errorf("check image signatures: %w (more than %d bytes of them)", ErrTooManySignatures, maxSignatureDocuments)
	}
	type subjectSigs struct {
		reference string
		sigs      []bundle.SignatureManifest
		broken    []bundle.ImageSignatureCheck
	}
	subjects := map[string]*subjectSigs{}
	var order []string
	at := func(subject string) *subjectSigs {
		s, ok := subjects[subject]
		if !ok {
			s = &subjectSigs{}
			subjects[subject] = s
			order = append(order, subject)
		}
		return s
	}
	for _, img := range m.Images {
		if s := at(img.Digest); s.reference == "" {
			s.reference = img.Reference
		}
	}
	notPassed := func(format bundle.ImageSignatureFormat, digest, path string) bundle.ImageSignatureCheck {
		return bundle.ImageSignatureCheck{Format: format, Manifest: digest, Status: bundle.ImageSigInvalid, Code: finding.ImageSignatureInvalid,
			Message: "the signature manifest " + path + " did not pass validation, so it is not trusted (bundle validate lists why)"}
	}

	// Legacy signatures: index.json's cosign-style tags sha256-<hex>.sig.
	if raw, ok := c.get(bundle.IndexPath); ok && rep.Matches(bundle.IndexPath) {
		var idx struct {
			Manifests []struct {
				Digest      string            `json:"digest"`
				Annotations map[string]string `json:"annotations"`
			} `json:"manifests"`
		}
		if err := json.Unmarshal(raw, &idx); err == nil {
			for _, e := range idx.Manifests {
				subject, ok := bundle.SubjectOfCosignTag(e.Annotations[bundle.AnnotationRefName])
				if !ok {
					continue
				}
				path := bundle.BlobPath(e.Digest)
				doc, have := c.get(path)
				switch {
				case have && rep.Matches(path):
					at(subject).sigs = append(at(subject).sigs, bundle.SignatureManifest{Manifest: doc, Digest: e.Digest})
				case !rep.Matches(path):
					at(subject).broken = append(at(subject).broken, notPassed(bundle.FormatCosignLegacy, e.Digest, path))
				}
			}
		}
	}
	// cosign v3 signatures: Sigstore bundle referrers.
	for _, s := range m.Referrers.Subjects {
		for _, a := range s.Artifacts {
			// The referrer file is held only with --check-referrers; its
			// copy under blobs/ has the same bytes (both are named after
			// their digest), and validation passes it on too.
			doc, have := c.get(a.Path)
			if !have && rep.Matches(a.Path) {
				if blob := bundle.BlobPath(a.Digest); rep.Matches(blob) {
					doc, have = c.get(blob)
				}
			}
			switch {
			case have && rep.Matches(a.Path):
				at(s.Subject).sigs = append(at(s.Subject).sigs, bundle.SignatureManifest{Manifest: doc, Digest: a.Digest})
			case a.ArtifactType == bundle.SigstoreBundleMediaType &&
				(a.Annotations[finding.AnnotationSigstorePredicateType] == "" || a.Annotations[finding.AnnotationSigstorePredicateType] == finding.PredicateCosignSign):
				if rep.Matches(a.Path) {
					// Listed as a signature, intact, yet not collected:
					// the validation did not hold referrer files
					// (WithCheckReferrers). No verdict rather than a
					// wrong "unsigned".
					return nil, fmt.Errorf("check image signatures: the signature referrer %s was not collected: validate with referrer checks on", a.Path)
				}
				at(s.Subject).broken = append(at(s.Subject).broken, notPassed(bundle.FormatSigstoreBundle, a.Digest, a.Path))
			}
		}
	}

	var groups [][]bundle.SignatureManifest
	for _, s := range subjects {
		groups = append(groups, s.sigs)
	}
	blobs, err := readSignatureBlobs(ctx, file, wantedBlobs(groups))
	if err != nil {
		return nil, err
	}
	read := func(d string) ([]byte, error) {
		b, ok := blobs[d]
		if !ok {
			return nil, fmt.Errorf("blob %s: %w", d, fs.ErrNotExist)
		}
		return b, nil
	}
	var out []bundle.ImageSignatureReport
	for _, subject := range order {
		s := subjects[subject]
		if s.reference == "" && len(s.sigs) == 0 && len(s.broken) == 0 {
			continue
		}
		r, err := VerifyImageSignatures(subject, s.sigs, read, v.keys)
		if err != nil {
			return nil, err
		}
		if len(s.broken) > 0 {
			r.Signatures = append(r.Signatures, s.broken...)
			r.Summarize()
		}
		if s.reference == "" && len(r.Signatures) == 0 {
			continue // a referrer subject with no signature among its referrers
		}
		r.Reference = s.reference
		out = append(out, r)
	}
	return out, nil
}

// wantedBlobs lists the signature blobs the manifests reference: the
// simple-signing layers of legacy manifests, the Sigstore bundle layer of
// v3 referrers, each small enough to be a signature.
func wantedBlobs(groups [][]bundle.SignatureManifest) map[string]bool {
	want := map[string]bool{}
	for _, sigs := range groups {
		for _, s := range sigs {
			m, ok := bundle.ParseSigManifest(s.Manifest)
			if !ok {
				continue
			}
			kind := m.Kind()
			for _, l := range m.Layers {
				if l.Size < 0 || l.Size > bundle.MaxImageSignatureBlob || !strings.HasPrefix(l.Digest, "sha256:") || !isHex64(strings.TrimPrefix(l.Digest, "sha256:")) {
					continue
				}
				if (kind == bundle.FormatCosignLegacy && l.MediaType == bundle.MediaTypeCosignSimpleSigning) ||
					(kind == bundle.FormatSigstoreBundle && l.MediaType == bundle.SigstoreBundleMediaType) {
					want[l.Digest] = true
				}
			}
		}
	}
	return want
}

// readSignatureBlobs reads the wanted blobs from the bundle, each at most
// MaxImageSignatureBlob bytes (one more, so that a longer one shows).
func readSignatureBlobs(ctx context.Context, file string, want map[string]bool) (map[string][]byte, error) {
	got := map[string][]byte{}
	if len(want) == 0 {
		return got, nil
	}
	paths := map[string]string{}
	for d := range want {
		paths[bundle.BlobPath(d)] = d
	}
	errDone := errors.New("done")
	err := bundle.EachMember(ctx, file, func(name string, size int64, r io.Reader) error {
		d, ok := paths[name]
		if !ok {
			return nil
		}
		if _, seen := got[d]; seen {
			return nil
		}
		data, err := io.ReadAll(io.LimitReader(r, bundle.MaxImageSignatureBlob+1))
		if err != nil {
			return err
		}
		got[d] = data
		if len(got) == len(want) {
			return errDone
		}
		return nil
	})
	if err != nil && !errors.Is(err, errDone) {
		return nil, fmt.Errorf("check image signatures: read the signature blobs: %w", err)
	}
	return got, nil
}

// ValidateFile validates the bundle at path (bundle.ValidateFile, with
// opts) with v checking its signature, and, when checkImages is set, the
// cosign image signatures inside it against v's keys
// (CheckImageSignatures; referrer checks are then on). It is what `bundle
// validate --verify-key --check-signatures`, the runbook and the TUI run.
// checkImages without keys is ErrNoVerifyKeys. An error from the image
// check comes with the validation report.
func ValidateFile(ctx context.Context, path string, v *Verifier, checkImages bool, opts ...bundle.Opt) (bundle.Report, error) {
	if v == nil {
		v = NewVerifier()
	}
	if checkImages && !v.CanVerify() {
		return bundle.Report{Errors: []bundle.Problem{}}, ErrNoVerifyKeys
	}
	opts = append(opts, bundle.WithSignatureVerifier(v))
	var collect *Collector
	if checkImages {
		collect = NewCollector()
		opts = append(opts, bundle.WithDocuments(collect.Document), bundle.WithCheckReferrers(true))
	}
	rep, err := bundle.ValidateFile(ctx, path, opts...)
	if err != nil || collect == nil || rep.Unreadable() {
		return rep, err
	}
	reps, err := v.CheckImageSignatures(ctx, path, rep, collect)
	if err != nil {
		return rep, err
	}
	rep.SetImageSignatures(reps)
	return rep, nil
}
