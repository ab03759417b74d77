package probe_test

import (
	"os"
	"strings"
	"testing"

	"github.com/refdoctor/refdoctor/finding"
	"github.com/refdoctor/refdoctor/lab"
	"github.com/refdoctor/refdoctor/lab/labtest"
	"github.com/refdoctor/refdoctor/probe"
)

// TestKnownBehaviourOfTheLab probes the lab registries that reproduce a
// dated fact of the matrix: each says which registry it behaves like and
// as of when, with the source, and none is called a mismatch with the
// matrix. Registries that reproduce no dated fact say nothing of the kind,
// and a cached verdict is recognised as well as a fresh one.
func TestKnownBehaviourOfTheLab(t *testing.T) {
	t.Parallel()
	l := labtest.StartT(t,
		lab.Spec{Name: "ecr", Profile: lab.ProfileECR2024},
		lab.Spec{Name: "ghcr303", Profile: lab.ProfileGHCR303},
		lab.Spec{Name: "acr424", Profile: lab.ProfileACR424},
		lab.Spec{Name: "login302", Profile: lab.ProfileLogin302},
		lab.Spec{Name: "gar2023", Profile: lab.ProfileHTML200},
		lab.Spec{Name: "hub6h", Profile: lab.ProfileThrottled6h},
		lab.Spec{Name: "arti", Profile: lab.ProfileArtifactory406},
		lab.Spec{Name: "harbor", Profile: lab.ProfileJSON200},
		lab.Spec{Name: "quay", Profile: lab.ProfileQuay400},
		lab.Spec{Name: "oci11", Profile: lab.ProfileOCI11},
		lab.Spec{Name: "ghcr404", Profile: lab.ProfileFallback404},
	)
	cfg := l.Config()
	cfg.Cache.Dir = t.TempDir()
	cache := probe.OpenCache(cfg)
	for _, tc := range []struct {
		reg, name, seen, source string
	}{
		{"ecr", "Amazon ECR", "as of 2024-06", "sigstore/sigstore-js#1183"},
		{"ghcr303", "GitHub Container Registry", "seen 2024-2026", "artifacthub/hub#4785"},
		{"acr424", "Azure Container Registry", "as of 2026-04", "Azure/acr#891"},
		{"login302", "Google Artifact Registry", "seen 2024-2026", "google/go-containerregistry#1968"},
		{"gar2023", "Google Artifact Registry", "seen 2024-2026", "oras-project/oras-go#633"},
		{"hub6h", "Docker Hub", "seen 2024-2026", "docker/hub-feedback#1907"},
		{"arti", "JFrog Artifactory", "seen 2024-2026", "google/go-containerregistry#1962"},
		{"harbor", "Harbor", "seen 2024-2026", "goharbor/harbor#19690"},
		{"quay", "Quay", "seen 2024-2026", "quay/quay#2597"},
		{"oci11", "", "", ""},
		{"ghcr404", "", "", ""},
	} {
		t.Run(tc.reg, func(t *testing.T) {
			t.Parallel()
			reg, _ := l.Get(tc.reg)
			target := reg.Host + "/" + l.Seed.Repository
			for _, pass := range []string{"fresh", "cached"} {
				r := probeOne(t, l, target, probe.WithConfig(cfg), probe.WithCache(cache))
				if pass == "cached" && !r.Cached {
					if r.ReferrersAPI == probe.Unknown {
						break // inconclusive verdicts are never cached
					}
					t.Fatalf("second probe not from the cache")
				}
				kb := findingOf(r, finding.KnownBehaviour)
				if mm := findingOf(r, finding.ExpectationMismatch); mm != nil {
					t.Errorf("%s: a dated known behaviour is called a mismatch: %s", pass, mm.Summary)
				}
				if pass == "cached" && tc.reg == "quay" {
					// Quay's 400 came before the probe asked again with a
					// real digest; the cache keeps the final verdict only.
					continue
				}
				if tc.name == "" {
					if kb != nil {
						t.Errorf("%s: known behaviour claimed for a registry that plays none: %s", pass, kb.Summary)
					}
					continue
				}
				if kb == nil {
					t.Fatalf("%s: no KnownBehaviour; findings %v", pass, codes(r.Findings))
				}
				if !strings.Contains(kb.Summary, "This matches the known behaviour of "+tc.name+" "+tc.seen) ||
					!strings.Contains(kb.Cause, tc.source) || kb.Remedy == "" || kb.Evidence == "" {
					t.Errorf("%s: %+v", pass, *kb)
				}
				if r.Expected == nil || r.Expected.KnownBehaviour == nil || !strings.Contains(r.Expected.KnownBehaviour.Source, tc.source) {
					t.Errorf("%s: expectation %+v", pass, r.Expected)
				}
			}
		})
	}
}

// TestRegistriesDocMatchesMatrix keeps docs/registries.md and the matrix
// in step: every dated fact and every since date, with its source, is on
// the page.
func TestRegistriesDocMatchesMatrix(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("../docs/registries.md")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(data), "\n")
	row := func(parts ...string) bool {
		for _, l := range lines {
			all := strings.HasPrefix(l, "|")
			for _, p := range parts {
				all = all && strings.Contains(l, p)
			}
			if all {
				return true
			}
		}
		return false
	}
	for _, k := range probe.DefaultMatrix().Kinds {
		if !row("(`" + k.Key + "`)") {
			t.Errorf("kind %s has no row in docs/registries.md", k.Key)
		}
		for _, s := range k.Sources {
			if !row("(`"+k.Key+"`)", k.Since, s) {
				t.Errorf("kind %s: since %s (%s) is not on the page", k.Key, k.Since, s)
			}
		}
		for _, q := range k.Quirks {
			if !row("| "+q.AsOf+" |", q.Source) {
				t.Errorf("kind %s: the fact of %s from %s is not on the page", k.Key, q.AsOf, q.Source)
			}
		}
	}
}

// TestMatrixRejectsUndatedFacts: a quirk needs a date and a source, and a
// match the probe can use.
func TestMatrixRejectsUndatedFacts(t *testing.T) {
	t.Parallel()
	head := "[[kind]]\nkey = \"x\"\nname = \"X\"\nreferrers_api = \"supported\"\nlast_seen = \"2026-01\"\n"
	for _, tc := range []struct{ name, toml, want string }{
		{"no date", head + "[[kind.quirk]]\nfact = \"f\"\nsource = \"s\"\n", "as_of"},
		{"bad date", head + "[[kind.quirk]]\nas_of = \"June 2024\"\nfact = \"f\"\nsource = \"s\"\n", "as_of"},
		{"no source", head + "[[kind.quirk]]\nas_of = \"2024-06\"\nfact = \"f\"\n", "source"},
		{"empty match", head + "[[kind.quirk]]\nas_of = \"2024-06\"\nfact = \"f\"\nsource = \"s\"\nmatch = {}\n", "empty match"},
		{"unknown reason", head + "[[kind.quirk]]\nas_of = \"2024-06\"\nfact = \"f\"\nsource = \"s\"\nmatch = { reason = \"Nope\" }\n", "no finding code"},
		{"since date without source", strings.Replace(head, "last_seen", "since = \"2024-06\"\nlast_seen", 1), "no sources"},
		{"unknown match key", head + "[[kind.quirk]]\nas_of = \"2024-06\"\nfact = \"f\"\nsource = \"s\"\nmatch = { stauts = 404 }\n", "unknown keys"},
	} {
		if _, err := probe.LoadMatrix([]byte(tc.toml)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v, want %q", tc.name, err, tc.want)
		}
	}
}
