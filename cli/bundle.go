package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/refdoctor/refdoctor/bundle"
	"github.com/refdoctor/refdoctor/bundle/signing"
	"github.com/refdoctor/refdoctor/discovery"
	"github.com/refdoctor/refdoctor/finding"
	"github.com/refdoctor/refdoctor/internal/human"
	"github.com/refdoctor/refdoctor/mirror"
	"github.com/refdoctor/refdoctor/registry"
)

func newBundleCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bundle",
		Short: "Export, inspect, validate, import and diff air-gap mirror bundles",
		Long: `A mirror bundle is a gzip (or zstd) tar that is also an OCI image layout:
manifest.yaml lists every member with its size and sha256, referrers are kept
byte-identical under referrers/sha256-<subject>/. See docs/bundle-format.md.`,
	}
	cmd.AddCommand(newBundleExportCmd(g), newBundleInspectCmd(g), newBundleValidateCmd(g), newBundleSignCmd(g), newBundleImportCmd(g), newBundleDiffCmd(g))
	return cmd
}

func (g *globals) clientOpts() []registry.Opt {
	return []registry.Opt{registry.WithLogger(g.log), registry.WithUserAgent("refdoctor/" + version)}
}

// mirrorEnv is what export, import and diff need from the command line.
func (g *globals) mirrorEnv() mirror.Env {
	g.checkCache()
	return mirror.Env{Config: g.cfg, Client: g.clientOpts(), Discovery: g.discoveryOpts(false), Probe: g.probeOpts(), Log: g.log}
}

// bundleErr maps bundle engine errors to exit codes: unreadable or
// malformed input is 2, everything else could not complete (3).
func bundleErr(err error) error {
	switch {
	case errors.Is(err, bundle.ErrNotBundle), errors.Is(err, bundle.ErrMalformedManifest),
		errors.Is(err, bundle.ErrUnsupportedVersion), errors.Is(err, bundle.ErrNoManifest),
		errors.Is(err, os.ErrNotExist), errors.Is(err, discovery.ErrBadReference):
		return &exitError{code: ExitUsage, err: err}
	case errors.Is(err, mirror.ErrRefused), errors.Is(err, bundle.ErrDamaged), errors.Is(err, mirror.ErrAmbiguousManifest):
		return &exitError{code: ExitCheckFail, err: err}
	}
	return &exitError{code: ExitIncomplete, err: err}
}

// bundleMemoryLimit is the soft limit of the Go runtime's memory while
// refdoctor reads a bundle. The validator's live data stay under about
// 20 MiB for any input up to the format's limits (docs/bundle-format.md
// section 6); without a limit the garbage collector lets the heap grow to
// twice that before collecting, and parsing a large manifest.yaml makes
// much short-lived garbage. With it, peak RSS stays under 64 MiB.
const bundleMemoryLimit = 36 << 20

// boundMemory sets bundleMemoryLimit for the bundle commands, when
// refdoctor owns the process and the operator has not set GOMEMLIMIT.
func (g *globals) boundMemory() {
	if g.ownsProcess && os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(bundleMemoryLimit)
	}
}

// stderrIsTerminal decides whether to draw a progress bar.
func (g *globals) stderrIsTerminal() bool {
	f, ok := g.stderr.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// progress draws a one-line bar on a terminal, at most ten times a second.
type progress struct {
	w     io.Writer
	on    bool
	label string
	last  time.Time
}

func (p *progress) update(done, total int64) {
	if !p.on || total <= 0 || time.Since(p.last) < 100*time.Millisecond {
		return
	}
	p.last = time.Now()
	const width = 30
	frac := float64(done) / float64(total)
	if frac > 1 {
		frac = 1
	}
	filled := int(frac * width)
	fmt.Fprintf(p.w, "\r%s [%s%s] %3.0f%% %s/%s ", p.label, strings.Repeat("=", filled), strings.Repeat(" ", width-filled), frac*100, human.Size(done), human.Size(total))
}

func (p *progress) done() {
	if p.on {
		fmt.Fprintf(p.w, "\r%s\r", strings.Repeat(" ", 79))
	}
}

func newBundleExportCmd(g *globals) *cobra.Command {
	var (
		file         string
		depth        int
		compression  string
		created      string
		allowPartial bool
		elsewhere    string
		signKey      string
	)
	cmd := &cobra.Command{
		Use:         "export --file OUT.tgz REF...",
		Annotations: map[string]string{argsAnnotation: "images to export, HOST/REPO:TAG or HOST/REPO@sha256:DIGEST"},
		Short:       "Write a mirror bundle of images and all their referrers",
		Long: `Export images (every platform of an index), the referrers discovery finds
(SBOMs, signatures, attestations, VEX; --depth for referrers of referrers),
cosign-style tags and every blob into one bundle. The bundle is written to a
temporary name and renamed when whole, with an OUT.sha256 sidecar. The same
inputs give a byte-identical bundle (SOURCE_DATE_EPOCH or --created fixes
createdAt). An incomplete discovery (rate limit, refused login, timeout)
writes nothing unless --allow-partial.

--sign-key KEY signs manifest.yaml (its exact bytes) with a cosign key file
(password in REFDOCTOR_KEY_PASSWORD or COSIGN_PASSWORD) or an unencrypted
PKCS#8 PEM (ECDSA P-256 or Ed25519): the signature is the member right after
manifest.yaml and OUT.sigstore.json, which cosign verify-blob accepts. An
Ed25519 signature is deterministic, so the bundle stays byte-identical; an
ECDSA signature is not, so only its members are.`,
		Example: `  refdoctor bundle export --file app.tgz registry.example.com/team/app:1.2
  refdoctor bundle export --file app.tar.zst --depth 1 registry.example.com/team/app:1.2`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if file == "" {
				return usageErr("--file is required")
			}
			opts := []mirror.ExportOpt{mirror.ExportWithDepth(depth),
				mirror.ExportWithToolVersion(version), mirror.ExportAllowPartial(allowPartial)}
			switch compression {
			case "":
			case "gzip":
				opts = append(opts, mirror.ExportWithCompression(bundle.CompressionGzip))
			case "zstd":
				opts = append(opts, mirror.ExportWithCompression(bundle.CompressionZstd))
			default:
				return usageErr("--compression %q: use gzip or zstd", compression)
			}
			if created != "" {
				t, err := time.Parse(time.RFC3339, created)
				if err != nil {
					return usageErr("--created %q: use RFC 3339, e.g. 2026-11-27T12:00:00Z", created)
				}
				opts = append(opts, mirror.ExportWithCreatedAt(t))
			}
			if signKey != "" {
				key, err := signing.LoadSigningKey(signKey)
				if err != nil {
					return signingErr(err)
				}
				opts = append(opts, mirror.ExportWithSigner(key))
			}
			bar := &progress{w: g.stderr, on: g.stderrIsTerminal(), label: "export"}
			opts = append(opts, mirror.ExportWithEvents(func(e mirror.ExportEvent) { bar.update(e.BytesWritten, e.TotalBytes) }))
			env := g.mirrorEnv()
			dopts, err := referrersRepoOpts(elsewhere)
			if err != nil {
				return err
			}
			env.Discovery = append(env.Discovery, dopts...)
			res, err := mirror.Export(cmd.Context(), env, file, args, opts...)
			bar.done()
			if err != nil {
				if errors.Is(err, mirror.ErrIncompleteDiscovery) {
					writeFindings(g.stderr, res.Findings)
					return &exitError{code: ExitIncomplete, err: err}
				}
				return bundleErr(err)
			}
			if g.output == "json" {
				return g.writeJSON(res)
			}
			fmt.Fprintf(g.stdout, "wrote %s (%s, %s, %s, %s, %s)\n", res.Path, res.Compression, human.Count(len(res.Images), "image"), human.Count(res.Referrers, "referrer"), human.Count(res.Files, "file"), human.Size(res.Bytes))
			fmt.Fprintf(g.stdout, "sha256 %s  (sidecar %s)\n", res.Checksum, res.Sidecar)
			if res.SignedBy != "" {
				fmt.Fprintf(g.stdout, "signed by key %s  (signature %s)\n", res.SignedBy, res.SignatureSidecar)
			}
			for _, p := range res.RemovedPartials {
				fmt.Fprintf(g.stdout, "removed %s, left by an export that was killed before it finished\n", p)
			}
			writeFindings(g.stdout, res.Findings)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&file, "file", "", "bundle to write (.tgz, or .tar.zst for zstd)")
	f.IntVar(&depth, "depth", 1, "referrers of referrers to include, N levels down")
	f.StringVar(&compression, "compression", "", "gzip or zstd (default: from the file name)")
	f.StringVar(&created, "created", "", "createdAt to record (RFC 3339), for reproducible bundles")
	f.BoolVar(&allowPartial, "allow-partial", false, "write the bundle even when discovery was incomplete")
	f.StringVar(&signKey, "sign-key", "", "sign manifest.yaml with this private key (cosign key file or PKCS#8 PEM)")
	addReferrersRepoFlag(cmd, &elsewhere)
	return cmd
}

func newBundleInspectCmd(g *globals) *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "inspect --file F",
		Short: "Summarize a bundle from its manifest (no full read)",
		Long: `Read manifest.yaml (the first member, as refdoctor writes it) and summarize
the bundle: images, referrers per subject and category, sizes, and whether it
is signed (the member after manifest.yaml), by which key and for which
manifest.yaml. Nothing is verified: use bundle validate for that.

Exit codes: 0 summarized; 1 the archive is damaged or hostile before
manifest.yaml; 2 not a readable bundle; 3 the file could not be read.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if file == "" {
				return usageErr("--file is required")
			}
			g.boundMemory()
			s, err := bundle.Inspect(cmd.Context(), file, bundle.WithSignatureVerifier(signing.NewVerifier()))
			if err != nil {
				return bundleErr(err)
			}
			if g.output == "json" {
				return g.writeJSON(s)
			}
			fmt.Fprintf(g.stdout, "%s: bundle format v%d, %s, created %s by %s %s\n", file, s.FormatVersion, s.Compression, s.CreatedAt.Format(time.RFC3339), s.Tool.Name, s.Tool.Version)
			fmt.Fprintf(g.stdout, "%s, %s listed, %s on disk\n", human.Count(s.FileCount, "member"), human.Size(s.ListedBytes), human.Size(s.ArchiveBytes))
			writeInspectSignature(g.stdout, s.Signature)
			fmt.Fprintln(g.stdout, "\nIMAGES")
			for _, img := range s.Images {
				fmt.Fprintf(g.stdout, "  %s\n    %s\n", img.Reference, img.Digest)
			}
			fmt.Fprintf(g.stdout, "\nREFERRERS (%d)\n", s.ReferrersTotal)
			t := &table{indent: "  ", head: []string{"SUBJECT", "FOUND BY", "COUNT", "BY CATEGORY"}, flex: []int{0, 3}, floor: map[int]int{0: 19}}
			for _, sub := range s.Subjects {
				var cats []string
				for _, c := range sub.Categories {
					cats = append(cats, fmt.Sprintf("%s %d", c.Category, c.Count))
				}
				t.add(sub.Subject, sub.Discovery, strconv.Itoa(sub.Count), strings.Join(cats, ", "))
			}
			t.write(g.stdout)
			if s.Note != "" {
				fmt.Fprintln(g.stdout, "\nnote: "+s.Note)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&file, "file", "", "bundle to inspect")
	return cmd
}

func newBundleValidateCmd(g *globals) *cobra.Command {
	var (
		file            string
		checkReferrers  bool
		verifyKeys      []string
		requireSig      bool
		checkSignatures bool
	)
	cmd := &cobra.Command{
		Use:   "validate --file F [--check-referrers] [--verify-key PUB]... [--require-signature] [--check-signatures]",
		Short: "Verify every checksum of a bundle in one streaming pass",
		Long: `Read the bundle once, as a stream, in constant memory, extracting nothing:
every member listed and present, every size and sha256 equal, referrer file
names equal to their digests, counts equal, blobs referenced by manifests
present, and the archive free of unsafe paths, links, devices, duplicates and
decompression bombs. --check-referrers also parses every referrer and checks
that its subject is the folder's subject. Every problem is reported.

--verify-key PUB (repeatable; default [bundle] verify_keys) verifies the
bundle's signature, the member right after manifest.yaml, over
manifest.yaml's exact bytes: a missing, invalid or foreign signature fails
(SignatureMissing, SignatureInvalid, UnknownKey). --require-signature fails
an unsigned bundle. --check-signatures also verifies, offline, every cosign
signature that travels in the bundle (legacy .sig manifests and v3 Sigstore
bundle referrers) against the image it claims, and reports per image: valid
(with the key), unknown-key, invalid (a failure) or unsigned; it implies
--check-referrers.

Exit codes: 0 whole; 1 the bundle was read and is wrong (tampered, damaged,
hostile, past a limit, a signature that fails); 2 not a readable bundle (not gzip or zstd, no or a
malformed manifest.yaml, a newer format); 3 could not complete (the file
could not be read).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if file == "" {
				return usageErr("--file is required")
			}
			g.boundMemory()
			v, _, err := g.verifier(verifyKeys)
			if err != nil {
				return err
			}
			opts := []bundle.Opt{bundle.WithCheckReferrers(checkReferrers), bundle.WithRequireSignature(requireSig)}
			if checkSignatures {
				if !v.CanVerify() {
					return usageErr("--check-signatures needs a public key: pass --verify-key PUB or set [bundle] verify_keys")
				}
				if fi, err := os.Stat(file); err == nil && !fi.Mode().IsRegular() {
					return usageErr("--check-signatures reads the bundle twice: give a file, not a pipe")
				}
			}
			bar := &progress{w: g.stderr, on: g.stderrIsTerminal(), label: "validate"}
			rep, err := signing.ValidateFile(cmd.Context(), file, v, checkSignatures, append(opts,
				bundle.WithEvents(func(e bundle.Event) { bar.update(e.BytesRead, e.TotalBytes) }))...)
			bar.done()
			if err != nil && !errors.Is(err, bundle.ErrNotBundle) && !errors.Is(err, bundle.ErrUnsupportedVersion) {
				if rep.Manifest() != nil {
					// The bundle was read; the image check could not finish.
					return &exitError{code: ExitIncomplete, err: err}
				}
				return bundleErr(err)
			}
			if g.output == "json" {
				if werr := g.writeJSON(rep); werr != nil {
					return werr
				}
			} else {
				writeValidateTable(g.stdout, file, rep)
			}
			switch {
			case err != nil:
				if g.output != "json" {
					fmt.Fprintf(g.stderr, "refdoctor: %v\n", err)
				}
				return silentExit(ExitUsage)
			case rep.Unreadable():
				// Without a readable manifest.yaml nothing can be checked
				// against it: the file is not a usable bundle.
				return silentExit(ExitUsage)
			case !rep.OK:
				return silentExit(ExitCheckFail)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&file, "file", "", "bundle to validate")
	cmd.Flags().BoolVar(&checkReferrers, "check-referrers", false, "also parse every referrer and check its subject")
	cmd.Flags().StringArrayVar(&verifyKeys, "verify-key", nil, "public key (PEM, as cosign.pub) the bundle's signature must verify with; repeatable, any one suffices (default: [bundle] verify_keys)")
	cmd.Flags().BoolVar(&requireSig, "require-signature", false, "fail an unsigned bundle")
	cmd.Flags().BoolVar(&checkSignatures, "check-signatures", false, "also verify every cosign image signature in the bundle against the keys")
	return cmd
}

func writeValidateTable(w io.Writer, file string, rep bundle.Report) {
	verdict := "OK: the bundle is whole"
	if !rep.OK {
		verdict = "FAILED: " + human.Count(len(rep.Errors), "problem")
	}
	fmt.Fprintf(w, "%s: %s\n", file, verdict)
	fmt.Fprintf(w, "  %s, %s checked, %s checked, %d ms\n", human.Count(rep.FilesChecked, "file"), human.Size(rep.BytesChecked), human.Count(rep.ReferrersChecked, "referrer"), rep.DurationMS)
	fmt.Fprintf(w, "  signature: %s\n", describeSignatureReport(rep.Signature))
	if len(rep.Subjects) > 0 {
		fmt.Fprintln(w, "\nSUBJECTS")
		for _, s := range rep.Subjects {
			state := "ok"
			if s.Found != s.Expected {
				state = "MISMATCH"
			}
			fmt.Fprintf(w, "  %s  %-4s  %d of %d referrers intact  %s\n", discovery.ShortDigest(s.Subject), s.Discovery, s.Found, s.Expected, state)
		}
	}
	writeImageSignatures(w, rep.ImageSignatures)
	if len(rep.Errors) > 0 {
		fmt.Fprintln(w, "\nPROBLEMS")
		for _, p := range rep.Errors {
			fmt.Fprintf(w, "  %s  %s\n", p.Code, p.Path)
			if p.Expected != "" || p.Actual != "" {
				fmt.Fprintf(w, "      expected %s\n      actual   %s\n", p.Expected, p.Actual)
			}
			if p.Message != "" {
				writeWrapped(w, "      ", p.Message)
			}
		}
		// What to do, once per code: a changed member and an ambiguous
		// manifest call for different things.
		fmt.Fprintln(w, "\nWHAT TO DO")
		seen := map[finding.Code]bool{}
		for _, p := range rep.Errors {
			if fix := p.Code.Remedy(); fix != "" && !seen[p.Code] {
				seen[p.Code] = true
				fmt.Fprintf(w, "  %s\n", p.Code)
				writeWrapped(w, "      ", fix)
			}
		}
	}
	if !rep.Complete {
		fmt.Fprintln(w, "\nReading stopped early: members after the point above were not checked.")
	}
}

func newBundleImportCmd(g *globals) *cobra.Command {
	var (
		file, to    string
		strict, dry bool
		verifyKeys  []string
		requireSig  bool
	)
	cmd := &cobra.Command{
		Use:   "import --file F --to HOST[/PREFIX]",
		Short: "Push a bundle into a registry, then check every referrer arrived",
		Long: `Push blobs, then image manifests, then referrers, skipping what the target
has (one HEAD each) and checking every digest. On a target without the
referrers API the sha256-<hex> fallback index is merged, never overwritten.
A rerun after an interruption completes the job. Afterwards discovery runs on
the target and every subject's referrers are reconciled with the bundle.

Only what validation passes is pushed: a member whose checksum failed, a
referrer filed under the wrong subject, is never pushed from any copy, and
an image or referrer that needs one is not imported (listed under NOT
IMPORTED). A hostile archive, or a failed index.json or manifest.yaml,
imports nothing. --strict-referrer-validation pushes nothing if anything at
all is wrong. --dry-run prints the plan.

--verify-key PUB (repeatable; default [bundle] verify_keys) checks the
bundle's signature before anything else is trusted: a missing, invalid or
foreign signature imports nothing and sends nothing to the target, strict or
not. --require-signature refuses an unsigned bundle.

Exit codes: 0 imported and reconciled; 1 refused, something not imported, or
a referrer missing on the target; 2 not a readable bundle; 3 could not
complete.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if file == "" || to == "" {
				return usageErr("--file and --to are required")
			}
			g.boundMemory()
			v, _, err := g.verifier(verifyKeys)
			if err != nil {
				return err
			}
			res, err := mirror.Import(cmd.Context(), g.mirrorEnv(), file, to, mirror.ImportStrict(strict), mirror.ImportDryRun(dry),
				mirror.ImportWithConcurrency(g.cfg.Export.ReferrerDiscovery.MaxConcurrentDiscoveries),
				mirror.ImportWithSignatureVerifier(v), mirror.ImportRequireSignature(requireSig))
			if err != nil {
				if res.Validation != nil && g.output != "json" && len(res.Validation.Errors) > 0 {
					writeValidateTable(g.stderr, file, *res.Validation)
				}
				if g.output == "json" && errors.Is(err, mirror.ErrRefused) {
					_ = g.writeJSON(res)
				}
				return bundleErr(err)
			}
			if err := g.print(res, func(w io.Writer) { writeImportTable(w, res) }); err != nil {
				return err
			}
			if !res.OK {
				if finding.Worst(res.Findings) == finding.SeverityError && hasCode(res.Findings, finding.ReconcileIncomplete) {
					return silentExit(ExitIncomplete)
				}
				return silentExit(ExitCheckFail)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&file, "file", "", "bundle to import")
	f.StringVar(&to, "to", "", "target registry host, optionally with a repository prefix")
	f.BoolVar(&strict, "strict-referrer-validation", false, "validate the whole bundle first; push nothing if anything is wrong")
	f.BoolVar(&dry, "dry-run", false, "print what would be pushed and what exists; push nothing")
	f.StringArrayVar(&verifyKeys, "verify-key", nil, "public key the bundle's signature must verify with; repeatable (default: [bundle] verify_keys)")
	f.BoolVar(&requireSig, "require-signature", false, "refuse an unsigned bundle")
	return cmd
}

func hasCode(fs []finding.Finding, code finding.Code) bool {
	for _, f := range fs {
		if f.Code == code {
			return true
		}
	}
	return false
}

func writeImportTable(w io.Writer, res mirror.ImportResult) {
	mode := "imported"
	if res.DryRun {
		mode = "dry run: would import"
	}
	fmt.Fprintf(w, "%s %s into %s\n", mode, res.File, res.Target)
	push := "pushed"
	if res.DryRun {
		push = "to push"
	}
	fmt.Fprintf(w, "  %d %s (%s), %d already there, %d not imported\n", res.Pushed, push, human.Size(res.BytesPushed), res.Skipped, res.Refused)
	if v := res.Validation; v != nil && !v.OK {
		fmt.Fprintf(w, "  validation found %s: only what passed it was imported (refdoctor bundle validate --file %s lists them)\n", human.Count(len(v.Errors), "problem"), res.File)
	}
	if res.DryRun {
		// The destination and the digest whole, unless the terminal is too
		// narrow for them.
		fmt.Fprintln(w)
		t := &table{indent: "  ", head: []string{"ACTION", "KIND", "REPOSITORY", "DIGEST", "TAG", "WHY"}, flex: []int{3, 5, 2}, floor: map[int]int{3: 19, 2: 24}}
		for _, it := range res.Plan {
			t.add(it.Action, it.Kind, it.Repository, it.Digest, it.Tag, it.Reason)
		}
		t.write(w)
	} else if res.Refused > 0 {
		fmt.Fprintf(w, "\nNOT IMPORTED (%d)\n", res.Refused)
		for _, it := range res.Plan {
			if it.Action != "refused" {
				continue
			}
			what := it.Kind + " " + discovery.ShortDigest(it.Digest)
			if it.Tag != "" {
				what = "tag " + it.Tag
			}
			fmt.Fprintf(w, "  %s in %s: %s\n", what, it.Repository, it.Reason)
		}
	}
	if len(res.Reconcile) > 0 {
		fmt.Fprintln(w, "\nRECONCILE (target discovery vs what was imported)")
		for _, r := range res.Reconcile {
			state := "ok"
			if len(r.Missing) > 0 {
				state = fmt.Sprintf("MISSING %d", len(r.Missing))
			}
			refused := ""
			switch {
			case len(r.RefusedPresent) > 0:
				refused = fmt.Sprintf("; %d not imported, %d of them served by the target all the same", len(r.Refused), len(r.RefusedPresent))
			case len(r.Refused) > 0:
				refused = fmt.Sprintf("; %d not imported, absent from the target", len(r.Refused))
			}
			fmt.Fprintf(w, "  %s  %-4s  %d of %d imported referrers found  %s%s\n", discovery.ShortDigest(r.Subject), r.Method, r.Found, r.Expected, state, refused)
		}
	}
	writeFindings(w, res.Findings)
}

func newBundleDiffCmd(g *globals) *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "diff --file F",
		Short: "Compare a bundle with its live source registry",
		Long: `Discover the referrers of every exported image on its source registry now
and compare them with the bundle: referrers added, removed, or replaced by
another of the same artifact type since the export, and tags that moved.

The bundle is validated first (one streaming pass): what is compared is
manifest.yaml's listing, and a bundle whose members do not match it is
never reported the same as the source. A subject whose referrers could not
be read completely is listed under NOT READ, and nothing is judged added or
removed for it.

Exit codes: 0 same; 1 changed, or the bundle does not hold what it lists;
2 not a readable bundle; 3 the source could not be read completely.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if file == "" {
				return usageErr("--file is required")
			}
			res, err := mirror.Diff(cmd.Context(), g.mirrorEnv(), file)
			if err != nil {
				return bundleErr(err)
			}
			if err := g.print(res, func(w io.Writer) { writeDiffTable(w, res) }); err != nil {
				return err
			}
			switch {
			case res.Partial:
				return silentExit(ExitIncomplete)
			case !res.Same:
				return silentExit(ExitCheckFail)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&file, "file", "", "bundle to compare")
	return cmd
}

func writeDiffTable(w io.Writer, res mirror.DiffResult) {
	state := "the source still serves exactly what the bundle holds"
	switch {
	case res.Partial:
		state = fmt.Sprintf("INCOMPLETE: the source could not be read in full (%s not read); nothing is judged added or removed for them", human.Count(len(res.Unread), "subject"))
	case !res.BundleOK:
		state = fmt.Sprintf("the bundle does not hold what it lists (%s); compared below is what manifest.yaml lists", human.Count(len(res.BundleProblems), "problem"))
	case !res.Same:
		state = "the source changed since export"
	}
	fmt.Fprintf(w, "%s: %s\n", res.File, state)
	for _, img := range res.Images {
		moved := ""
		switch {
		case img.Moved:
			moved = "  MOVED to " + discovery.ShortDigest(img.LiveDigest)
		case img.Error != "":
			moved = "  NOT READ: " + img.Error
		}
		fmt.Fprintf(w, "  %s  %s%s\n", img.Reference, discovery.ShortDigest(img.BundleDigest), moved)
	}
	if len(res.Unread) > 0 {
		fmt.Fprintf(w, "\nNOT READ (%d)\n", len(res.Unread))
		for _, u := range res.Unread {
			fmt.Fprintf(w, "  %s  %s\n", discovery.ShortDigest(u.Subject), u.Error)
		}
	}
	for _, s := range res.Subjects {
		if len(s.Added)+len(s.Removed)+len(s.Replaced)+len(s.Damaged) == 0 {
			continue
		}
		fmt.Fprintf(w, "\nSUBJECT %s (%d unchanged)\n", s.Subject, s.Unchanged)
		t := &table{indent: "  ", flex: []int{2, 1}, floor: map[int]int{2: 19, 1: 24}}
		for _, a := range s.Added {
			t.add("+ "+string(a.Category), a.ArtifactType, a.Digest)
		}
		for _, r := range s.Removed {
			t.add("- "+string(r.Category), r.ArtifactType, r.Digest)
		}
		for _, r := range s.Replaced {
			t.add("~ "+string(r.Old.Category), r.Old.ArtifactType, r.Old.Digest+" -> "+r.New.Digest)
		}
		t.write(w)
		for _, d := range s.Damaged {
			fmt.Fprintf(w, "  ! damaged in the bundle %s (its copy does not match its listing)\n", discovery.ShortDigest(d))
		}
	}
	writeFindings(w, res.Findings)
}
