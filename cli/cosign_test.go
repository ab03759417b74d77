package cli_test

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/refdoctor/refdoctor/bundle/signing"
	"github.com/refdoctor/refdoctor/lab/labtest"
)

// The real cosign (tools/cosign/go.mod), offline: a signing config with no
// services and an empty trusted root, so that it neither uploads anything
// nor fetches its TUF root. .ci/run sets REFDOCTOR_COSIGN_UNAVAILABLE,
// with the reason, when cosign could not be built; the cross-checks then
// skip with it.
const (
	emptySigningConfig = `{"mediaType":"application/vnd.dev.sigstore.signingconfig.v0.2+json"}`
	emptyTrustedRoot   = `{"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1"}`
	cosignTestPassword = "refdoctor-cli-test-password"
)

type cosignRunner struct {
	path, dir string
	env       []string
}

func newCosign(t *testing.T) *cosignRunner {
	t.Helper()
	if why := os.Getenv("REFDOCTOR_COSIGN_UNAVAILABLE"); why != "" {
		t.Skipf("cosign cross-check skipped: cosign could not be built (%s)", why)
	}
	path, err := labtest.ReferenceTool("cosign")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("cosign missing in CI, and .ci/run did not say why: %v", err)
		}
		t.Skipf("cosign cross-check skipped: cosign not available: %v", err)
	}
	dir := t.TempDir()
	for name, content := range map[string]string{"signing-config.json": emptySigningConfig, "trusted-root.json": emptyTrustedRoot} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "COSIGN_") || strings.HasPrefix(name, "SIGSTORE_") || strings.HasPrefix(name, "TUF_") ||
			name == signing.EnvKeyPassword || name == "HOME" || name == "DOCKER_CONFIG" {
			continue
		}
		env = append(env, kv)
	}
	env = append(env, "HOME="+dir, "DOCKER_CONFIG="+dir, "TUF_ROOT="+filepath.Join(dir, "tuf"), "COSIGN_PASSWORD="+cosignTestPassword, "NO_COLOR=1")
	return &cosignRunner{path: path, dir: dir, env: env}
}

func (c *cosignRunner) run(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.path, args...)
	cmd.Dir, cmd.Env = c.dir, c.env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

func (c *cosignRunner) must(t *testing.T, args ...string) string {
	t.Helper()
	out, err := c.run(args...)
	if err != nil {
		t.Fatalf("cosign %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func (c *cosignRunner) file(name string) string { return filepath.Join(c.dir, name) }

// keyPair runs `cosign generate-key-pair` and returns PREFIX.key and
// PREFIX.pub.
func (c *cosignRunner) keyPair(t *testing.T, prefix string) (key, pub string) {
	t.Helper()
	c.must(t, "generate-key-pair", "--output-key-prefix", prefix)
	return c.file(prefix + ".key"), c.file(prefix + ".pub")
}

// offline are the flags that keep `cosign sign`, `sign-blob` and
// `attest-blob` away from Rekor, Fulcio and TUF.
func (c *cosignRunner) offline() []string {
	return []string{"--signing-config", c.file("signing-config.json"), "--trusted-root", c.file("trusted-root.json")}
}

// verifyBlob is `cosign verify-blob --insecure-ignore-tlog=true`.
func (c *cosignRunner) verifyBlob(pub, sig, file string) (string, error) {
	return c.run("verify-blob", "--key", pub, "--bundle", sig, "--insecure-ignore-tlog=true", file)
}

// fingerprintOf computes a public key file's fingerprint independently of
// refdoctor: the sha256 of the DER in its PEM block, as `openssl pkey
// -pubin -outform DER | sha256sum` prints it.
func fingerprintOf(t *testing.T, pubFile string) string {
	t.Helper()
	data, err := os.ReadFile(pubFile)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode(data)
	if b == nil {
		t.Fatalf("%s holds no PEM", pubFile)
	}
	sum := sha256.Sum256(b.Bytes)
	return hex.EncodeToString(sum[:])
}

func sha256File(t *testing.T, file string) string {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// tarMember is one member of a bundle read back with Go's archive/tar
// (independently of refdoctor's reader).
type tarMember struct {
	name string
	data []byte
}

func readMembers(t *testing.T, file string) []tarMember {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	var out []tarMember
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, tarMember{hdr.Name, data})
	}
}

func writeMembers(t *testing.T, file string, members []tarMember) {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, m := range members {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: m.name, Size: int64(len(m.data)), Mode: 0o644, Format: tar.FormatUSTAR}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(m.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// gnuTar runs GNU tar, the operator's tool.
func gnuTar(t *testing.T, args ...string) []byte {
	t.Helper()
	out, err := exec.Command("tar", args...).Output()
	if err != nil {
		t.Fatalf("tar %s: %v", strings.Join(args, " "), err)
	}
	return out
}
