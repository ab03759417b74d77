package cli

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/refdoctor/refdoctor/bundle"
	"github.com/refdoctor/refdoctor/bundle/signing"
	"github.com/refdoctor/refdoctor/discovery"
)

// signingErr maps key and signature errors to exit codes: a key or
// signature file that cannot be used is bad input (2), a bundle that is
// already signed or does not validate is a failed check (1).
func signingErr(err error) error {
	switch {
	case errors.Is(err, signing.ErrBadKey), errors.Is(err, signing.ErrKeyPasswordMissing),
		errors.Is(err, signing.ErrNoVerifyKeys), errors.Is(err, signing.ErrNotSigstoreBundle), errors.Is(err, errSignatureFile):
		return &exitError{code: ExitUsage, err: err}
	case errors.Is(err, bundle.ErrAlreadySigned):
		return &exitError{code: ExitCheckFail, err: err}
	}
	return bundleErr(err)
}

var errSignatureFile = errors.New("unusable signature file")

// verifier is the set of public keys a bundle command verifies with:
// --verify-key, else the configuration's [bundle] verify_keys. Without
// either, the verifier only describes signatures. keySource says where
// the keys came from, for messages.
func (g *globals) verifier(flagKeys []string) (v *signing.Verifier, keySource string, err error) {
	paths, source := flagKeys, "--verify-key"
	if len(paths) == 0 && len(g.cfg.Bundle.VerifyKeys) > 0 {
		paths, source = g.cfg.Bundle.VerifyKeys, "[bundle] verify_keys in "+g.cfg.Path
	}
	if len(paths) == 0 {
		return signing.NewVerifier(), "", nil
	}
	v, err = signing.LoadVerifier(paths...)
	if err != nil {
		return nil, source, &exitError{code: ExitUsage, err: fmt.Errorf("%s: %w", source, err)}
	}
	return v, source, nil
}

func newBundleSignCmd(g *globals) *cobra.Command {
	var (
		file, keyFile, sigFile string
		verifyKeys             []string
		force                  bool
	)
	cmd := &cobra.Command{
		Use:   "sign --file F (--key KEY | --signature SIG.json)",
		Short: "Sign an existing bundle, or attach a signature made by cosign",
		Long: `Sign manifest.yaml (its exact bytes) and rewrite the bundle with the
signature as the member right after manifest.yaml (manifest.yaml.sigstore.json),
then write F.sigstore.json and update F.sha256.

--key KEY signs with a cosign key file (cosign generate-key-pair; password in
REFDOCTOR_KEY_PASSWORD or COSIGN_PASSWORD) or an unencrypted PKCS#8 PEM
(ECDSA P-256 or Ed25519). --signature SIG.json attaches a signature made
elsewhere, as your pipeline's

  tar -xzOf F manifest.yaml > manifest.yaml
  cosign sign-blob --key cosign.key --bundle SIG.json manifest.yaml

makes it (offline: add --signing-config and --trusted-root, see
docs/bundle-format.md section 10). A signature that does not claim this
manifest.yaml is refused; with --verify-key (or [bundle] verify_keys) it
must also verify.

The bundle is validated first and must be whole. An existing signature is
kept unless --force. The new bundle is written next to F and renamed over it
when whole: on any failure F stays as it was.

Exit codes: 0 signed; 1 the bundle does not validate, or is already signed
(without --force), or the signature does not verify; 2 a bad key,
signature file or bundle; 3 could not complete.`,
		Example: `  refdoctor bundle sign --file app.tgz --key cosign.key
  refdoctor bundle sign --file app.tgz --signature manifest.yaml.sigstore.json --verify-key cosign.pub`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if file == "" {
				return usageErr("--file is required")
			}
			if (keyFile == "") == (sigFile == "") {
				return usageErr("give one of --key KEY (sign) or --signature SIG.json (attach)")
			}
			g.boundMemory()
			var sign func([]byte) ([]byte, error)
			signedBy := ""
			if keyFile != "" {
				key, err := signing.LoadSigningKey(keyFile)
				if err != nil {
					return signingErr(err)
				}
				sign, signedBy = key.SignManifest, key.Fingerprint()
			} else {
				sig, err := readSignatureFile(sigFile)
				if err != nil {
					return signingErr(err)
				}
				info, err := signing.InspectSignature(sig)
				if err != nil {
					return signingErr(fmt.Errorf("%w: %s: %w", errSignatureFile, sigFile, err))
				}
				v, source, err := g.verifier(verifyKeys)
				if err != nil {
					return err
				}
				signedBy = info.KeyFingerprint
				sign = func(manifest []byte) ([]byte, error) {
					if !info.Claims(manifest) {
						return nil, &exitError{code: ExitCheckFail, err: fmt.Errorf("%s is not a signature of this bundle's manifest.yaml: it is for sha256 %s, manifest.yaml has sha256 %s; nothing was changed",
							sigFile, claimedDigest(info), sha256Hex(manifest))}
					}
					if v.CanVerify() {
						res, err := signing.VerifyManifest(manifest, sig, v.Keys())
						if err != nil {
							return nil, err
						}
						if !res.OK() {
							return nil, &exitError{code: ExitCheckFail, err: fmt.Errorf("%s does not verify with the keys of %s (%s): %s; nothing was changed", sigFile, source, res.Code, res.Message)}
						}
						signedBy = res.KeyFingerprint
					}
					return sig, nil
				}
			}
			res, err := bundle.AttachSignature(cmd.Context(), file, sign, force, bundle.WithSignatureVerifier(signing.NewVerifier()))
			if err != nil {
				var ee *exitError
				if errors.As(err, &ee) {
					return ee
				}
				if res.Validation != nil && len(res.Validation.Errors) > 0 && g.output != "json" {
					writeValidateTable(g.stderr, file, *res.Validation)
				}
				return signingErr(err)
			}
			if g.output == "json" {
				out := struct {
					bundle.AttachResult
					SignedBy string `json:"signed_by,omitempty"`
				}{res, signedBy}
				out.Validation = nil
				return g.writeJSON(out)
			}
			verb := "signed"
			if sigFile != "" {
				verb = "attached the signature " + sigFile + " to"
			}
			fmt.Fprintf(g.stdout, "%s %s (manifest.yaml sha256 %s)\n", verb, file, res.ManifestSHA256)
			if signedBy != "" {
				fmt.Fprintf(g.stdout, "key %s\n", signedBy)
			}
			if res.Replaced {
				fmt.Fprintln(g.stdout, "replaced the bundle's earlier signature (--force)")
			}
			fmt.Fprintf(g.stdout, "sha256 %s  (sidecars %s, %s)\n", res.Checksum, res.Sidecar, res.SignatureSidecar)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&file, "file", "", "bundle to sign (rewritten in place)")
	f.StringVar(&keyFile, "key", "", "private key to sign with (cosign key file or PKCS#8 PEM)")
	f.StringVar(&sigFile, "signature", "", "attach this Sigstore bundle (cosign sign-blob --bundle) instead of signing")
	f.StringArrayVar(&verifyKeys, "verify-key", nil, "with --signature: public key the signature must verify with (repeatable)")
	f.BoolVar(&force, "force", false, "replace the bundle's existing signature")
	return cmd
}

func readSignatureFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errSignatureFile, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, bundle.MaxSignatureSize+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", errSignatureFile, path, err)
	}
	if len(data) > bundle.MaxSignatureSize {
		return nil, fmt.Errorf("%w: %s is larger than %d bytes, not a signature", errSignatureFile, path, bundle.MaxSignatureSize)
	}
	return data, nil
}

func claimedDigest(i bundle.SignatureInfo) string {
	switch {
	case i.SignedSHA256 != "":
		return i.SignedSHA256
	case len(i.StatementSHA256) > 0:
		return strings.Join(i.StatementSHA256, ", ")
	}
	return "(none given)"
}

// describeSignatureReport is one line about a bundle's signature.
func describeSignatureReport(s bundle.SignatureReport) string {
	key := ""
	if s.KeyFingerprint != "" {
		key = "key " + s.KeyFingerprint
		if s.KeySource != "" {
			key += " (" + filepath.Base(s.KeySource) + ")"
		}
	}
	switch s.Status {
	case bundle.SignatureVerified:
		return "verified: signed by " + key
	case bundle.SignatureSigned:
		if key != "" {
			return "signed by " + key + ", not verified (no --verify-key)"
		}
		return "signed, not verified (no --verify-key)"
	case bundle.SignatureUnsigned:
		return "unsigned"
	case bundle.SignatureUnknown:
		return "unknown: " + s.Message
	}
	return fmt.Sprintf("FAILED (%s): %s", s.Code, s.Message)
}

// writeImageSignatures is the IMAGE SIGNATURES table of validate.
func writeImageSignatures(w io.Writer, reps []bundle.ImageSignatureReport) {
	if reps == nil {
		return
	}
	fmt.Fprintf(w, "\nIMAGE SIGNATURES (%d)\n", len(reps))
	t := &table{indent: "  ", head: []string{"STATUS", "SIGS", "KEY", "IMAGE"}, flex: []int{3}, floor: map[int]int{3: 24}}
	for _, r := range reps {
		name := r.Reference
		if name == "" {
			name = discovery.ShortDigest(r.Subject)
		}
		key := "-"
		if r.KeyFingerprint != "" {
			key = shortFingerprint(r.KeyFingerprint)
		}
		t.add(string(r.Status), strconv.Itoa(len(r.Signatures)), key, name)
	}
	t.write(w)
	for _, r := range reps {
		if r.Status == bundle.ImageSigValid || r.Status == bundle.ImageSigUnsigned {
			continue
		}
		fmt.Fprintf(w, "  %s %s:\n", r.Status, discovery.ShortDigest(r.Subject))
		writeWrapped(w, "      ", r.Message)
	}
}

func shortFingerprint(fp string) string {
	if len(fp) > 16 {
		return fp[:16]
	}
	return fp
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// writeInspectSignature is inspect's line about the signature.
func writeInspectSignature(w io.Writer, s bundle.SignatureSummary) {
	switch s.Status {
	case bundle.SignatureUnsigned:
		fmt.Fprintln(w, "unsigned (no manifest.yaml.sigstore.json after manifest.yaml)")
		return
	case bundle.SignatureUnknown:
		fmt.Fprintln(w, "signature: unknown: "+s.Problem)
		return
	}
	if s.Problem != "" || s.Info == nil {
		fmt.Fprintln(w, "signed, but "+s.Problem)
		return
	}
	by := "a certificate (keyless; refdoctor verifies against keys only)"
	if !s.Info.Certificate {
		by = "key " + s.Info.KeyFingerprint
		if s.Info.KeyFingerprint == "" {
			by = fmt.Sprintf("a key it does not name (hint %q)", s.Info.KeyHint)
		}
	}
	fmt.Fprintf(w, "signed by %s (%s, not verified: bundle validate --verify-key does)\n", by, s.Info.Content)
	if s.ClaimsManifest {
		fmt.Fprintf(w, "  signs manifest.yaml sha256 %s\n", s.ManifestSHA256)
	} else {
		fmt.Fprintf(w, "  signs sha256 %s, but manifest.yaml has sha256 %s: it changed after signing\n", claimedDigest(*s.Info), s.ManifestSHA256)
	}
}
