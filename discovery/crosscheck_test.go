package discovery_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/refdoctor/refdoctor/config"
	"github.com/refdoctor/refdoctor/discovery"
	"github.com/refdoctor/refdoctor/lab"
	"github.com/refdoctor/refdoctor/lab/labtest"
	"github.com/refdoctor/refdoctor/registry"
)

type pair struct{ digest, kind string }

func sortedPairs(ps []pair) []pair {
	sort.Slice(ps, func(i, j int) bool { return ps[i].digest+ps[i].kind < ps[j].digest+ps[j].kind })
	return ps
}

// TestCrossCheckWithOrasAndRegctl attaches referrers with oras and regctl
// and a cosign-style tag with crane, then requires refdoctor to report the
// same digests and artifact types as regctl and oras, on a registry with
// the referrers API, one without it, and distribution in its own process.
func TestCrossCheckWithOrasAndRegctl(t *testing.T) {
	t.Parallel()
	l := labtest.StartT(t, lab.Spec{Name: "oci11", Profile: lab.ProfileOCI11}, lab.Spec{Name: "ghcr", Profile: lab.ProfileFallback404})
	oci, _ := l.Get("oci11")
	ghcr, _ := l.Get("ghcr")
	regs := []struct {
		name, host string
		api        bool
		cfg        config.Config
	}{
		{"olareg with the API", oci.Host, true, l.Config()},
		{"olareg answering 404", ghcr.Host, false, l.Config()},
	}
	d := labtest.StartDistributionT(t)
	dcfg := config.Defaults()
	dcfg.Registries = []config.Registry{{Host: d.Host, PlainHTTP: true}}
	c, err := registry.New(dcfg, registry.WithoutDockerCreds())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lab.SeedInto(context.Background(), c, d.Host); err != nil {
		t.Fatalf("seed distribution: %v", err)
	}
	regs = append(regs, struct {
		name, host string
		api        bool
		cfg        config.Config
	}{"distribution process", d.Host, false, dcfg})

	for _, reg := range regs {
		t.Run(reg.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "sbom.json"), []byte(`{"bomFormat":"CycloneDX","specVersion":"1.5"}`), 0o600); err != nil {
				t.Fatal(err)
			}
			subject := reg.host + "/" + lab.SeedSingleRepository + ":" + lab.SeedTag
			spec := "v1.1-referrers-api"
			if !reg.api {
				spec = "v1.1-referrers-tag"
			}
			hostFlag := "reg=" + reg.host + ",tls=disabled"
			labtest.RunTool(t, dir, "oras", "attach", "--plain-http", "--distribution-spec", spec,
				"--artifact-type", "application/vnd.example.sbom.oras+json", subject, "sbom.json:application/json")
			labtest.RunTool(t, dir, "regctl", "--host", hostFlag, "artifact", "put", "--subject", subject,
				"--artifact-type", "application/vnd.example.signature.regctl", "--file", "sbom.json", "--file-media-type", "application/octet-stream")
			// A cosign-style signature: a manifest without subject, tagged sha256-<hex>.sig.
			sigSource := reg.host + "/" + lab.SeedSingleRepository + ":cosign-source"
			labtest.RunTool(t, dir, "regctl", "--host", hostFlag, "artifact", "put", sigSource,
				"--artifact-type", "application/vnd.dev.cosign.artifact.sig.v1+json", "--file", "sbom.json", "--file-media-type", "application/vnd.dev.cosign.simplesigning.v1+json")
			singleHex := strings.TrimPrefix(l.Seed.Single, "sha256:")
			labtest.RunTool(t, dir, "crane", "tag", "--insecure", sigSource, "sha256-"+singleHex+".sig")

			res, err := discovery.Discover(context.Background(), subject, discovery.WithConfig(reg.cfg),
				discovery.WithClientOpts(registry.WithoutDockerCreds()))
			if err != nil {
				t.Fatal(err)
			}
			var ours, ourCosign []pair
			for _, r := range res.Referrers {
				if r.Source == discovery.SourceCosignTag {
					ourCosign = append(ourCosign, pair{r.Digest, r.Tag})
				} else {
					ours = append(ours, pair{r.Digest, r.ArtifactType})
				}
			}
			wantMethod := discovery.MethodTags
			if reg.api {
				wantMethod = discovery.MethodAPI
			}
			if res.Method != wantMethod || res.Outcome != "ok" {
				t.Errorf("method %s outcome %s findings %v", res.Method, res.Outcome, codes(res.Findings))
			}

			var rl struct {
				Descriptors []struct {
					Digest       string            `json:"digest"`
					ArtifactType string            `json:"artifactType"`
					Annotations  map[string]string `json:"annotations"`
				} `json:"descriptors"`
			}
			if err := json.Unmarshal(labtest.RunTool(t, dir, "regctl", "--host", hostFlag, "artifact", "list", subject, "--format", "{{json .}}"), &rl); err != nil {
				t.Fatal(err)
			}
			var regctl []pair
			for _, d := range rl.Descriptors {
				regctl = append(regctl, pair{d.Digest, d.ArtifactType})
			}
			rl.Descriptors = nil
			if err := json.Unmarshal(labtest.RunTool(t, dir, "regctl", "--host", hostFlag, "artifact", "list", subject, "--digest-tags", "--format", "{{json .}}"), &rl); err != nil {
				t.Fatal(err)
			}
			var regctlCosign []pair
			for _, d := range rl.Descriptors {
				if tag := d.Annotations["org.opencontainers.image.ref.name"]; tag != "" {
					regctlCosign = append(regctlCosign, pair{d.Digest, tag})
				}
			}
			var od struct {
				Referrers []struct {
					Digest       string `json:"digest"`
					ArtifactType string `json:"artifactType"`
				} `json:"referrers"`
			}
			if err := json.Unmarshal(labtest.RunTool(t, dir, "oras", "discover", "--plain-http", "--distribution-spec", spec, "--format", "json", subject), &od); err != nil {
				t.Fatal(err)
			}
			var oras []pair
			for _, r := range od.Referrers {
				oras = append(oras, pair{r.Digest, r.ArtifactType})
			}
			if len(ours) != 2 {
				t.Errorf("refdoctor found %d referrers, want the 2 attached: %v", len(ours), ours)
			}
			if !slices.Equal(sortedPairs(ours), sortedPairs(regctl)) {
				t.Errorf("refdoctor %v\nregctl    %v", ours, regctl)
			}
			if !slices.Equal(sortedPairs(ours), sortedPairs(oras)) {
				t.Errorf("refdoctor %v\noras      %v", ours, oras)
			}
			if len(ourCosign) != 1 || !slices.Equal(sortedPairs(ourCosign), sortedPairs(regctlCosign)) {
				t.Errorf("cosign tags: refdoctor %v, regctl --digest-tags %v", ourCosign, regctlCosign)
			}
			t.Logf("%s: %s, %d referrers + %d cosign tags agree with regctl and oras", reg.name, res.Method, len(ours), len(ourCosign))
		})
	}
}
