package mirror

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/regclient/regclient/types/descriptor"
	"github.com/regclient/regclient/types/manifest"
	"github.com/regclient/regclient/types/ref"

	"github.com/refdoctor/refdoctor/bundle"
	"github.com/refdoctor/refdoctor/discovery"
	"github.com/refdoctor/refdoctor/finding"
	"github.com/refdoctor/refdoctor/registry"
)

// ErrIncompleteDiscovery refuses an export whose referrers could not all
// be listed: a bundle that silently lacks SBOMs is what refdoctor exists
// to prevent.
var ErrIncompleteDiscovery = errors.New("referrer discovery did not complete")

// ErrAmbiguousManifest refuses an export holding a manifest that JSON
// readers could read differently (bundle.DocumentAmbiguity): the bundle
// would fail validation on the far side, after the carry. It is a
// problem found, not an incomplete read.
var ErrAmbiguousManifest = errors.New("ambiguous manifest")

// ExportEventKind names export progress.
type ExportEventKind string

const (
	ExportDiscovered ExportEventKind = "discovered"
	ExportPlanned    ExportEventKind = "planned"
	ExportMember     ExportEventKind = "member"
	ExportBytes      ExportEventKind = "bytes"
	ExportDone       ExportEventKind = "done"
)

// ExportEvent reports export progress: BytesWritten of TotalBytes
// (uncompressed member bytes) once the plan is known.
type ExportEvent struct {
	Kind         ExportEventKind `json:"kind"`
	Path         string          `json:"path,omitempty"`
	BytesWritten int64           `json:"bytes_written"`
	TotalBytes   int64           `json:"total_bytes"`
	Reference    string          `json:"reference,omitempty"`
}

// ExportResult says what was written.
type ExportResult struct {
	Path        string             `json:"path"`
	Checksum    string             `json:"sha256"`
	Sidecar     string             `json:"sidecar"`
	Compression bundle.Compression `json:"compression"`
	Images      []bundle.Image     `json:"images"`
	Referrers   int                `json:"referrers"`
	// Files counts the members manifest.yaml lists (manifest.yaml itself
	// aside), as bundle validate's files_checked does; Bytes is their size.
	Files     int                `json:"files"`
	Bytes     int64              `json:"bytes"`
	Discovery []discovery.Result `json:"discovery"`
	Findings  []finding.Finding  `json:"findings"`
	// RemovedPartials are the temporary files of earlier exports of the
	// same file that were killed before they finished.
	RemovedPartials []string `json:"removed_partials,omitempty"`
	// SignatureSidecar is OUT.sigstore.json and SignedBy the signing key's
	// fingerprint, when the bundle was signed (ExportWithSigner).
	SignatureSidecar string `json:"signature_sidecar,omitempty"`
	SignedBy         string `json:"signed_by,omitempty"`
}

type exportOptions struct {
	depth        int
	concurrency  int
	readAhead    readAheadLimits
	stats        *readAheadStats // tests: which read-ahead paths ran
	compression  bundle.Compression
	createdAt    time.Time
	toolVersion  string
	events       func(ExportEvent)
	allowPartial bool
	signer       bundle.ManifestSigner
}

// ExportOpt configures one Export.
type ExportOpt func(*exportOptions)

// ExportWithDepth also exports referrers of referrers, n levels down.
func ExportWithDepth(n int) ExportOpt { return func(o *exportOptions) { o.depth = n } }

// ExportWithConcurrency bounds how many blobs download at once (the one
// being written and those read ahead); the default is the configuration's
// max_concurrent_discoveries (--concurrency). The bundle's bytes do not
// depend on it.
func ExportWithConcurrency(n int) ExportOpt { return func(o *exportOptions) { o.concurrency = n } }

// ExportWithCompression picks gzip (.tgz, the default) or zstd (.tar.zst).
func ExportWithCompression(c bundle.Compression) ExportOpt {
	return func(o *exportOptions) { o.compression = c }
}

// ExportWithCreatedAt fixes createdAt (and every member's mtime) so the
// same inputs give a byte-identical bundle; default SOURCE_DATE_EPOCH, else
// now.
func ExportWithCreatedAt(t time.Time) ExportOpt { return func(o *exportOptions) { o.createdAt = t } }

// ExportWithToolVersion records refdoctor's version in manifest.yaml.
func ExportWithToolVersion(v string) ExportOpt { return func(o *exportOptions) { o.toolVersion = v } }

// ExportWithEvents receives progress.
func ExportWithEvents(fn func(ExportEvent)) ExportOpt {
	return func(o *exportOptions) { o.events = fn }
}

// ExportWithSigner signs manifest.yaml's exact bytes with s (package
// bundle/signing's SigningKey) and writes the signature as the member right
// after manifest.yaml (bundle.SignatureMember) and next to the bundle as
// OUT.sigstore.json. Signing happens before anything is written, so a key
// that cannot sign leaves nothing behind.
func ExportWithSigner(s bundle.ManifestSigner) ExportOpt {
	return func(o *exportOptions) { o.signer = s }
}

// ExportAllowPartial writes a bundle even when discovery was incomplete;
// the findings say what may be missing.
func ExportAllowPartial(b bool) ExportOpt { return func(o *exportOptions) { o.allowPartial = b } }

// plan is everything a bundle will hold, gathered before anything is
// written so that manifest.yaml, which lists every checksum, goes first.
type plan struct {
	manifests map[string][]byte               // digest -> raw manifest, byte-identical
	blobs     map[string]exportBlob           // digest -> where to fetch it
	referrers map[string][]discovery.Referrer // subject -> referrers with a subject field
	methods   map[string]discovery.Method     // subject -> how its referrers were found
	index     []descriptor.Descriptor
	images    []bundle.Image
}

type exportBlob struct {
	repo ref.Ref
	desc descriptor.Descriptor
}

// Export writes a mirror bundle of refs: every platform of each image,
// the referrers discovery finds (with depth), cosign-style tags, and every
// blob, with manifest.yaml first. The file appears under out only when
// complete (written to a temporary name, synced and renamed), with an
// OUT.sha256 sidecar in sha256sum format.
func Export(ctx context.Context, env Env, out string, refs []string, opts ...ExportOpt) (ExportResult, error) {
	env = env.withDefaults()
	o := exportOptions{toolVersion: "dev", readAhead: defaultReadAheadLimits()}
	for _, opt := range opts {
		opt(&o)
	}
	if o.compression == "" {
		o.compression = bundle.CompressionForPath(out)
	}
	if o.createdAt.IsZero() {
		o.createdAt = sourceDateEpoch()
	}
	if o.concurrency < 1 {
		o.concurrency = max(1, env.Config.Export.ReferrerDiscovery.MaxConcurrentDiscoveries)
	}
	res := ExportResult{Path: out, Compression: o.compression, Findings: []finding.Finding{}}
	if len(refs) == 0 {
		return res, errors.New("nothing to export: give at least one image reference")
	}
	c, err := env.client()
	if err != nil {
		return res, err
	}
	rep, err := discovery.DiscoverMany(ctx, refs, env.discoveryOpts(discovery.WithPlatforms(true), discovery.WithDepth(o.depth))...)
	if err != nil {
		return res, err
	}
	res.Discovery = rep.Results
	for _, r := range rep.Results {
		o.emit(ExportEvent{Kind: ExportDiscovered, Reference: r.Subject.Reference})
		res.Findings = append(res.Findings, r.Findings...)
		if r.Partial || r.Error != "" {
			if !o.allowPartial {
				return res, fmt.Errorf("%w for %s: %s (nothing was written; fix the cause, or pass --allow-partial to export what was found)", ErrIncompleteDiscovery, r.Subject.Reference, r.Error)
			}
		}
	}
	p, err := gather(ctx, c, rep.Results)
	if err != nil {
		return res, err
	}
	m, err := p.bundleManifest(o)
	if err != nil {
		return res, err
	}
	if probs := m.Consistency(); len(probs) > 0 {
		return res, fmt.Errorf("internal error: the bundle manifest disagrees with itself: %s", probs[0])
	}
	stale := append(removeStalePartials(out), removeStalePartials(out+".sha256")...)
	for _, p := range append(stale, removeStalePartials(bundle.SignatureSidecarPath(out))...) {
		env.Log.Info("removed a partial file left by an interrupted export", "path", p)
		res.RemovedPartials = append(res.RemovedPartials, p)
	}
	res.Images = m.Images
	res.Referrers = m.Referrers.Total
	res.Files = len(m.MemberOrder()) - 1 // manifest.yaml lists the others
	res.Bytes = m.ListedBytes()
	o.emit(ExportEvent{Kind: ExportPlanned, TotalBytes: res.Bytes})
	sum, err := p.write(ctx, c, env.Log, out, m, o)
	if err != nil {
		return res, err
	}
	res.Checksum = sum
	res.Sidecar = out + ".sha256"
	if o.signer != nil {
		res.SignatureSidecar, res.SignedBy = bundle.SignatureSidecarPath(out), o.signer.Fingerprint()
	}
	o.emit(ExportEvent{Kind: ExportDone, BytesWritten: res.Bytes, TotalBytes: res.Bytes})
	return res, nil
}

func (o *exportOptions) emit(e ExportEvent) {
	if o.events != nil {
		o.events(e)
	}
}

func sourceDateEpoch() time.Time {
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return time.Unix(n, 0).UTC()
		}
	}
	return time.Now().UTC().Truncate(time.Second)
}

// gather fetches every manifest (raw) and lists every blob of the images
// and their referrers.
func gather(ctx context.Context, c *registry.Client, results []discovery.Result) (*plan, error) {
	p := &plan{manifests: map[string][]byte{}, blobs: map[string]exportBlob{},
		referrers: map[string][]discovery.Referrer{}, methods: map[string]discovery.Method{}}
	for _, r := range results {
		if r.Subject.Digest == "" {
			continue
		}
		src, err := ref.New(r.Subject.Reference)
		if err != nil {
			return nil, err
		}
		repo := src.SetTag("")
		if err := p.walk(ctx, c, repo, r.Subject.Digest); err != nil {
			return nil, err
		}
		name := r.Subject.Reference
		p.images = append(p.images, bundle.Image{Reference: name, Digest: r.Subject.Digest, MediaType: r.Subject.MediaType})
		ann := map[string]string{bundle.AnnotationKind: "image", bundle.AnnotationReference: name}
		if src.Tag != "" && src.Digest == "" {
			ann[bundle.AnnotationRefName] = src.Tag
		}
		p.index = append(p.index, descriptor.Descriptor{MediaType: r.Subject.MediaType, Digest: mustDigest(r.Subject.Digest),
			Size: int64(len(p.manifests[r.Subject.Digest])), Annotations: ann})
		var add func(subject string, rs []discovery.Referrer) error
		add = func(subject string, rs []discovery.Referrer) error {
			for _, rf := range rs {
				rrepo, err := referrerRepo(repo, rf)
				if err != nil {
					return err
				}
				if err := p.walk(ctx, c, rrepo, rf.Digest); err != nil {
					return err
				}
				switch rf.Source {
				case discovery.SourceAPI, discovery.SourceTagIndex:
					if !slices.ContainsFunc(p.referrers[subject], func(x discovery.Referrer) bool { return x.Digest == rf.Digest }) {
						p.referrers[subject] = append(p.referrers[subject], rf)
					}
					p.methods[subject] = r.Method
				case discovery.SourceCosignTag:
					p.index = append(p.index, descriptor.Descriptor{MediaType: rf.MediaType, Digest: mustDigest(rf.Digest),
						Size: int64(len(p.manifests[rf.Digest])),
						Annotations: map[string]string{bundle.AnnotationRefName: rf.Tag, bundle.AnnotationKind: "cosign-tag",
							bundle.AnnotationReference: rrepo.SetTag(rf.Tag).CommonName()}})
				}
				if err := add(rf.Digest, rf.Referrers); err != nil {
					return err
				}
			}
			return nil
		}
		if err := add(r.Subject.Digest, r.Referrers); err != nil {
			return nil, err
		}
		for _, pl := range r.Platforms {
			if err := add(pl.Digest, pl.Referrers); err != nil {
				return nil, err
			}
		}
	}
	slices.SortStableFunc(p.index, func(a, b descriptor.Descriptor) int {
		return strings.Compare(a.Annotations[bundle.AnnotationReference], b.Annotations[bundle.AnnotationReference])
	})
	return p, nil
}

func mustDigest(s string) digest.Digest { return digest.Digest(s) }

// referrerRepo is where a referrer's manifest and blobs are fetched from:
// the referrers repository discovery found it in, else the image's own.
func referrerRepo(image ref.Ref, rf discovery.Referrer) (ref.Ref, error) {
	if rf.Repository == "" {
		return image, nil
	}
	r, err := ref.New(rf.Repository)
	if err != nil {
		return image, fmt.Errorf("referrer %s: repository %q: %w", rf.Digest, rf.Repository, err)
	}
	return r.SetTag(""), nil
}

// walk fetches a manifest and everything it references, recursively.
func (p *plan) walk(ctx context.Context, c *registry.Client, repo ref.Ref, digest string) error {
	if _, ok := p.manifests[digest]; ok {
		return nil
	}
	m, err := c.ManifestGet(ctx, repo.SetDigest(digest))
	if err != nil {
		return fmt.Errorf("fetch manifest %s@%s: %w", repo.CommonName(), digest, err)
	}
	raw, err := m.RawBody()
	if err != nil {
		return err
	}
	if got := sha256Digest(raw); got != digest {
		return fmt.Errorf("manifest %s@%s: the registry served content with digest %s; refusing to export it", repo.CommonName(), digest, got)
	}
	// Validation on the far side refuses such a manifest; say so now,
	// before the bundle is carried across.
	if why := bundle.DocumentAmbiguity(raw); why != "" {
		return fmt.Errorf("%w: %s@%s: %s. A bundle holding it fails validation (AmbiguousDocument) and is not imported, so refdoctor does not export it; report it to the image's publisher, or export the other images without it",
			ErrAmbiguousManifest, repo.CommonName(), digest, why)
	}
	p.manifests[digest] = raw
	if idx, ok := m.(manifest.Indexer); ok {
		list, err := idx.GetManifestList()
		if err != nil {
			return err
		}
		for _, d := range list {
			if err := p.walk(ctx, c, repo, d.Digest.String()); err != nil {
				return err
			}
		}
	}
	if img, ok := m.(manifest.Imager); ok {
		if cfg, err := img.GetConfig(); err == nil && cfg.Digest != "" {
			p.addBlob(repo, cfg)
		}
		layers, _ := img.GetLayers()
		for _, l := range layers {
			p.addBlob(repo, l)
		}
	}
	return nil
}

func (p *plan) addBlob(repo ref.Ref, d descriptor.Descriptor) {
	if _, ok := p.blobs[d.Digest.String()]; !ok {
		p.blobs[d.Digest.String()] = exportBlob{repo: repo, desc: d}
	}
}

func (p *plan) bundleManifest(o exportOptions) (*bundle.Manifest, error) {
	m := &bundle.Manifest{SchemaVersion: bundle.FormatVersion, Kind: bundle.ManifestKind, CreatedAt: o.createdAt.UTC(),
		Tool: bundle.Tool{Name: "refdoctor", Version: o.toolVersion}, Images: p.images, Files: []bundle.FileEntry{}}
	layout := []byte(`{"imageLayoutVersion":"1.0.0"}`)
	idx, err := p.indexJSON()
	if err != nil {
		return nil, err
	}
	m.Files = append(m.Files, fileEntry(bundle.LayoutPath, layout), fileEntry(bundle.IndexPath, idx))
	for d, raw := range p.manifests {
		m.Files = append(m.Files, bundle.FileEntry{Path: bundle.BlobPath(d), Size: int64(len(raw)), SHA256: strings.TrimPrefix(d, "sha256:")})
	}
	for d, b := range p.blobs {
		if _, isManifest := p.manifests[d]; isManifest {
			continue
		}
		if !strings.HasPrefix(d, "sha256:") || b.desc.Digest.Validate() != nil {
			return nil, fmt.Errorf("blob %q: only valid sha256 digests can be bundled", d)
		}
		m.Files = append(m.Files, bundle.FileEntry{Path: bundle.BlobPath(d), Size: b.desc.Size, SHA256: strings.TrimPrefix(d, "sha256:")})
	}
	for subject, rs := range p.referrers {
		method := bundle.DiscoveryAPI
		if p.methods[subject] == discovery.MethodTags {
			method = bundle.DiscoveryTags
		}
		s := bundle.SubjectEntry{Subject: subject, Discovery: method}
		for _, r := range rs {
			raw := p.manifests[r.Digest]
			ann := r.Annotations
			if ann == nil {
				ann = map[string]string{}
			}
			s.Artifacts = append(s.Artifacts, bundle.Artifact{Digest: r.Digest, ArtifactType: r.ArtifactType, MediaType: r.MediaType,
				Category: finding.Categorize(r.ArtifactType, ann), Size: int64(len(raw)), Path: bundle.ReferrerPath(subject, r.Digest),
				SHA256: strings.TrimPrefix(r.Digest, "sha256:"), Annotations: ann})
		}
		s.Count = len(s.Artifacts)
		m.Referrers.Total += s.Count
		m.Referrers.Subjects = append(m.Referrers.Subjects, s)
	}
	return m, nil
}

func (p *plan) indexJSON() ([]byte, error) {
	idx := struct {
		SchemaVersion int                     `json:"schemaVersion"`
		MediaType     string                  `json:"mediaType"`
		Manifests     []descriptor.Descriptor `json:"manifests"`
	}{2, "application/vnd.oci.image.index.v1+json", p.index}
	return json.Marshal(idx)
}

func fileEntry(path string, data []byte) bundle.FileEntry {
	sum := sha256.Sum256(data)
	return bundle.FileEntry{Path: path, Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:])}
}

func sha256Digest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// write streams the members into a temporary file next to out and renames
// it into place once it is whole. Blobs download ahead of the writer
// (readAhead); the tar stream itself is written strictly in MemberOrder,
// so the bytes depend only on the content, never on timing or
// concurrency. The file's sha256 for the sidecar is computed as it is
// written (hashSink), never by reading the file back.
func (p *plan) write(ctx context.Context, c *registry.Client, log *slog.Logger, out string, m *bundle.Manifest, o exportOptions) (string, error) {
	yml, err := m.Marshal()
	if err != nil {
		return "", err
	}
	var sig []byte
	if o.signer != nil {
		if sig, err = o.signer.SignManifest(yml); err != nil {
			return "", fmt.Errorf("sign %s: %w", bundle.ManifestPath, err)
		}
	}
	idx, _ := p.indexJSON()
	tmp, err := createPartial(out)
	if err != nil {
		return "", fmt.Errorf("create bundle: %w", err)
	}
	keep := false
	defer func() {
		if !keep {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	order := m.MemberOrder()
	var fetch []exportBlob
	for _, path := range order {
		if d, ok := blobDigest(path); ok {
			if _, isManifest := p.manifests[d]; !isManifest {
				fetch = append(fetch, p.blobs[d])
			}
		}
	}
	ra := newReadAhead(ctx, c, fetch, o.concurrency, filepath.Dir(tmp.Name()), o.readAhead)
	defer func() {
		ra.close()
		ra.mu.Lock()
		st := ra.stats
		ra.mu.Unlock()
		if o.stats != nil {
			*o.stats = st
		}
		log.Debug("export read-ahead", "blobs", len(fetch), "concurrency", o.concurrency, "waited", st.waited,
			"spilled_bytes", st.spilled, "over_budget_bytes", st.overBudget, "max_in_memory_bytes", st.maxInMemory)
	}()
	sink := newHashSink(tmp)
	sinkOpen := true
	defer func() {
		if sinkOpen {
			_, _ = sink.Close()
		}
	}()
	w := bundle.NewWriter(sink, o.compression, bundle.WithModTime(m.CreatedAt))
	var written atomic.Int64
	next := 0
	for _, path := range order {
		if err := ctx.Err(); err != nil {
			return "", err
		}
		o.emit(ExportEvent{Kind: ExportMember, Path: path, BytesWritten: written.Load(), TotalBytes: m.ListedBytes()})
		var data []byte
		switch {
		case path == bundle.ManifestPath:
			data = yml
		case path == bundle.LayoutPath:
			data = []byte(`{"imageLayoutVersion":"1.0.0"}`)
		case path == bundle.IndexPath:
			data = idx
		case strings.HasPrefix(path, bundle.ReferrersDir):
			_, referrer, _ := bundle.SplitReferrerPath(path)
			data = p.manifests[referrer]
		case strings.HasPrefix(path, bundle.BlobsDir):
			digest, _ := blobDigest(path)
			if raw, ok := p.manifests[digest]; ok {
				data = raw
				break
			}
			sp, err := ra.take(next)
			if err != nil {
				return "", err
			}
			b := fetch[next]
			next++
			if err := w.SetMemberLevel(blobLevel(b.desc.MediaType)); err != nil {
				return "", err
			}
			if err := copyBlob(w, path, b, sp, &written, o); err != nil {
				return "", err
			}
			sp.release()
			continue
		default:
			return "", fmt.Errorf("internal error: no content for %s", path)
		}
		if data == nil {
			return "", fmt.Errorf("internal error: no content for %s", path)
		}
		if err := w.SetMemberLevel(bundle.LevelDefault); err != nil {
			return "", err
		}
		if err := w.AddFile(path, data); err != nil {
			return "", err
		}
		if path != bundle.ManifestPath {
			written.Add(int64(len(data)))
		} else if sig != nil {
			// The signature directly follows manifest.yaml, so that a
			// streaming reader checks it before trusting anything else.
			if err := w.AddFile(bundle.SignatureMember, sig); err != nil {
				return "", err
			}
		}
	}
	if err := w.Close(); err != nil {
		return "", err
	}
	sinkOpen = false
	checksum, err := sink.Close()
	if err != nil {
		return "", err
	}
	syncStart := time.Now()
	if err := tmp.Sync(); err != nil {
		return "", err
	}
	log.Debug("export wrote the bundle", "sync_ms", time.Since(syncStart).Milliseconds())
	if err := tmp.Close(); err != nil {
		return "", err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return "", err
	}
	if err := os.Rename(tmp.Name(), out); err != nil {
		return "", fmt.Errorf("move bundle into place: %w", err)
	}
	keep = true
	// The signature sidecar goes first: once the .sha256 sidecar names the
	// new bundle, its signature is there too. An unsigned export removes
	// the signature of an earlier bundle of the same name, which no longer
	// matches.
	sigSidecar := bundle.SignatureSidecarPath(out)
	if sig != nil {
		if err := writeFileAtomic(sigSidecar, sig); err != nil {
			return checksum, err
		}
	} else if err := os.Remove(sigSidecar); err != nil && !errors.Is(err, os.ErrNotExist) {
		return checksum, fmt.Errorf("remove the signature of an earlier bundle: %w", err)
	}
	sidecar := checksum + "  " + filepath.Base(out) + "\n"
	if err := writeFileAtomic(out+".sha256", []byte(sidecar)); err != nil {
		return checksum, err
	}
	return checksum, nil
}

// blobLevel is the gzip level of a blob member: stored when its media
// type says it is compressed already (a +gzip or +zstd layer, Docker's
// tar.gzip), where deflate finds nothing to gain and only costs time;
// the default level for everything else. It depends only on the media
// type the image's manifest gives, so the same inputs give the same bytes.
func blobLevel(mediaType string) int {
	if strings.HasSuffix(mediaType, "gzip") || strings.HasSuffix(mediaType, "zstd") {
		return bundle.LevelStored
	}
	return bundle.LevelDefault
}

// blobDigest is the digest a blobs/sha256/<hex> member holds.
func blobDigest(path string) (string, bool) {
	hex, ok := strings.CutPrefix(path, bundle.BlobsDir)
	if !ok {
		return "", false
	}
	return "sha256:" + hex, true
}

// copyBlob writes one downloaded blob as a member. The download checks
// the bytes against the digest (regclient verifies as it reads to the
// end); the spool's WriteTo returns only once that check has passed, and
// a mismatch aborts the export before the next member.
func copyBlob(w *bundle.Writer, path string, b exportBlob, sp *spool, written *atomic.Int64, o exportOptions) error {
	pw := &progressWriter{n: written, emit: func(n int64) {
		o.emit(ExportEvent{Kind: ExportBytes, Path: path, BytesWritten: n})
	}}
	err := w.AddFileTo(path, b.desc.Size, func(dst io.Writer) (int64, error) {
		pw.w = dst
		return sp.WriteTo(pw)
	})
	if err != nil {
		if ferr := sp.failure(); ferr != nil {
			return ferr
		}
		return fmt.Errorf("blob %s: %w", b.desc.Digest, err)
	}
	return nil
}

// progressWriter counts what reaches the bundle and reports it every
// 4 MiB.
type progressWriter struct {
	w    io.Writer
	n    *atomic.Int64
	last int64
	emit func(int64)
}

func (p *progressWriter) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	total := p.n.Add(int64(n))
	if total-p.last >= 4<<20 {
		p.last = total
		p.emit(total)
	}
	return n, err
}

func writeFileAtomic(path string, data []byte) error {
	tmp, err := createPartial(path)
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
