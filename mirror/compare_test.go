//go:build linux

package mirror_test

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/regclient/regclient/types/manifest"
	"github.com/regclient/regclient/types/ref"

	"github.com/refdoctor/refdoctor/discovery"
	"github.com/refdoctor/refdoctor/finding"
	"github.com/refdoctor/refdoctor/lab"
	"github.com/refdoctor/refdoctor/lab/labtest"
	"github.com/refdoctor/refdoctor/mirror"
	"github.com/refdoctor/refdoctor/registry"
)

func compare(t *testing.T, e mirror.Env, src, dst string, opts ...mirror.CompareOpt) mirror.CompareResult {
	t.Helper()
	rep, err := mirror.Compare(t.Context(), e, []mirror.Pair{{Source: src, Destination: dst}}, opts...)
	if err != nil {
		t.Fatalf("compare %s %s: %v", src, dst, err)
	}
	return rep.Results[0]
}

// causes maps each missing referrer's digest to its cause code.
func causes(r mirror.CompareResult) map[string]finding.Code {
	out := map[string]finding.Code{}
	for _, s := range r.Subjects {
		for _, m := range s.Missing {
			out[m.Digest] = m.CauseCode
		}
	}
	return out
}

func bothDigests(r mirror.CompareResult, subject string) []string {
	var out []string
	for _, s := range r.Subjects {
		if s.Subject == subject {
			for _, b := range s.Both {
				out = append(out, b.Digest)
			}
		}
	}
	sort.Strings(out)
	return out
}

// regctlList lists subject's referrers at host with regctl, as a check
// independent of refdoctor's discovery.
func regctlList(t *testing.T, dir, host, subject string) []string {
	t.Helper()
	var rl struct {
		Descriptors []struct {
			Digest string `json:"digest"`
		} `json:"descriptors"`
	}
	out := labtest.RunTool(t, dir, "regctl", "--host", "reg="+host+",tls=disabled", "artifact", "list", subject, "--format", "{{json .}}")
	if err := json.Unmarshal(out, &rl); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range rl.Descriptors {
		got = append(got, d.Digest)
	}
	sort.Strings(got)
	return got
}

// TestCompareFindsWhatTheCopyDropped copies the lab's image with crane
// (no referrers) to an olareg with the referrers API and to docker-registry
// (none: fallback tags), then one referrer with regctl, then everything
// with regctl: compare names every missing referrer with the cause the
// destination shows, and finds nothing missing at the end, as regctl on
// the destination agrees.
func TestCompareFindsWhatTheCopyDropped(t *testing.T) {
	t.Parallel()
	l := labtest.StartT(t, lab.Spec{Name: "source", Profile: lab.ProfileOCI11}, lab.Spec{Name: "mirror-api", Profile: lab.ProfileOCI11, NoSeed: true})
	d := labtest.StartDistributionT(t)
	src, _ := l.Get("source")
	withAPI, _ := l.Get("mirror-api")
	cfg := withHosts(l.Config(), d.Host)
	e := env(cfg, append(l.ClientOpts(), registry.WithoutDockerCreds())...)
	c, err := registry.New(cfg, registry.WithoutDockerCreds())
	if err != nil {
		t.Fatal(err)
	}
	seed := l.Seed
	amd64 := seed.Platforms["linux/amd64"]
	var sbom, notary, intoto string
	for _, r := range seed.ReferrersOf(seed.Index) {
		switch r.ArtifactType {
		case lab.ArtifactTypeCycloneDX:
			sbom = r.Digest
		case lab.ArtifactTypeNotary:
			notary = r.Digest
		case lab.ArtifactTypeInToto:
			intoto = r.Digest
		}
	}
	for _, tc := range []struct {
		name, host string
		api        bool
	}{{"olareg with the API", withAPI.Host, true}, {"docker-registry without the API", d.Host, false}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			dest := tc.host + "/mirror/app"
			srcRef := seed.Ref(src.Host)
			labtest.RunTool(t, dir, "crane", "copy", "--insecure", srcRef, dest+":"+seed.Tag)

			res := compare(t, e, srcRef, dest, mirror.CompareWithPlatforms(true))
			noListing := finding.ReferrerMissingAtMirror
			if !tc.api {
				noListing = finding.MirrorNoFallbackTag
			}
			want := map[string]finding.Code{sbom: noListing, notary: noListing, intoto: noListing}
			for _, r := range seed.ReferrersOf(amd64) {
				want[r.Digest] = noListing
			}
			srcRes, err := discovery.Discover(t.Context(), srcRef, discovery.WithConfig(cfg), discovery.WithClientOpts(l.ClientOpts()...))
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range srcRes.Referrers {
				if r.Source == discovery.SourceCosignTag {
					want[r.Digest] = finding.CosignTagNotCopied
				}
			}
			if len(want) != 7 {
				t.Fatalf("the seed changed: %d referrers", len(want))
			}
			if got := causes(res); !mapsEqual(got, want) {
				t.Errorf("after crane copy: causes\n got %v\nwant %v", got, want)
			}
			if res.Outcome != finding.OutcomeFailed || res.Same || !res.Complete || res.Missing != 7 || res.BothCount != 0 {
				t.Errorf("after crane copy: outcome %s same %v complete %v missing %d both %d", res.Outcome, res.Same, res.Complete, res.Missing, res.BothCount)
			}
			for _, s := range res.Subjects {
				for _, m := range s.Missing {
					if m.Fix == "" || m.Cause == "" || !strings.Contains(m.Fix+m.Cause, "") {
						t.Errorf("%s: no cause or fix", m.Digest)
					}
					if m.CauseCode == finding.MirrorNoFallbackTag && !strings.Contains(m.Fix, "regctl image copy --referrers "+srcRef+" "+dest+":"+seed.Tag) {
						t.Errorf("the fix is not runnable as written: %s", m.Fix)
					}
				}
			}

			// One referrer copied by digest with regctl: it is at both
			// sides, found through the destination's own method.
			labtest.RunTool(t, dir, "regctl", "--host", "reg="+src.Host+",tls=disabled", "--host", "reg="+tc.host+",tls=disabled",
				"image", "copy", src.Host+"/"+seed.Repository+"@"+sbom, dest+"@"+sbom)
			res = compare(t, e, srcRef, dest, mirror.CompareWithPlatforms(true))
			if got := bothDigests(res, seed.Index); !slices.Equal(got, []string{sbom}) {
				t.Fatalf("after copying one referrer: both %v, want %s", got, sbom)
			}
			wantSource := discovery.SourceAPI
			if !tc.api {
				wantSource = discovery.SourceTagIndex
			}
			for _, s := range res.Subjects {
				for _, b := range s.Both {
					if b.DestinationSource != wantSource {
						t.Errorf("found at the destination by %s, want %s", b.DestinationSource, wantSource)
					}
				}
			}
			delete(want, sbom)
			// Without the API the index now exists, and lacks the others.
			want[notary], want[intoto] = finding.ReferrerMissingAtMirror, finding.ReferrerMissingAtMirror
			if got := causes(res); !mapsEqual(got, want) {
				t.Errorf("after copying one referrer: causes\n got %v\nwant %v", got, want)
			}

			if !tc.api {
				// A lost update: the notary signature is pushed (regctl adds
				// it to the index), then a writer that had read the index
				// before puts back its own copy without it.
				repo, _ := ref.New(dest)
				before := fallbackIndexOf(t, c, repo, seed.Index)
				labtest.RunTool(t, dir, "regctl", "--host", "reg="+src.Host+",tls=disabled", "--host", "reg="+tc.host+",tls=disabled",
					"image", "copy", src.Host+"/"+seed.Repository+"@"+notary, dest+"@"+notary)
				putIndex(t, c, repo.SetTag("sha256-"+strings.TrimPrefix(seed.Index, "sha256:")), before)
				res = compare(t, e, srcRef, dest, mirror.CompareWithPlatforms(true))
				want[notary] = finding.FallbackIndexMissingEntry
				if got := causes(res); !mapsEqual(got, want) {
					t.Errorf("after a lost update: causes\n got %v\nwant %v", got, want)
				}
				for _, s := range res.Subjects {
					for _, m := range s.Missing {
						if m.Digest == notary && !m.PresentByDigest {
							t.Errorf("the lost entry's manifest is at the destination: %+v", m)
						}
					}
				}
			}

			// Everything, with regctl: referrers and cosign's tags.
			copyAll := []string{"image", "copy", "--referrers", "--digest-tags", srcRef, dest + ":" + seed.Tag}
			labtest.RegctlOneRequestAtATime(t, dir, []string{src.Host, tc.host}, copyAll...)
			res = compare(t, e, srcRef, dest, mirror.CompareWithPlatforms(true))
			if !tc.api {
				// regctl skips the referrer the destination already has, so
				// the lost index entry stays lost: compare still says so,
				// and its fix (--force-recursive) repairs it.
				if got := causes(res); !mapsEqual(got, map[string]finding.Code{notary: finding.FallbackIndexMissingEntry}) {
					t.Fatalf("after a plain regctl copy: causes %v", got)
				}
				for _, s := range res.Subjects {
					for _, m := range s.Missing {
						if !strings.Contains(m.Fix, "--force-recursive") {
							t.Errorf("fix %q", m.Fix)
						}
					}
				}
				labtest.RegctlOneRequestAtATime(t, dir, []string{src.Host, tc.host}, append(copyAll[:len(copyAll)-2:len(copyAll)-2], "--force-recursive", srcRef, dest+":"+seed.Tag)...)
				res = compare(t, e, srcRef, dest, mirror.CompareWithPlatforms(true))
			}
			if !res.Same || res.Outcome != finding.OutcomeOK || res.Missing+res.Extra+res.Rewritten != 0 || res.BothCount != 7 {
				t.Fatalf("after regctl image copy --referrers --digest-tags: same %v outcome %s missing %d extra %d both %d\n%v",
					res.Same, res.Outcome, res.Missing, res.Extra, res.BothCount, res.Findings)
			}
			// regctl, on the destination, lists the OCI referrers compare
			// found at both sides.
			for _, subject := range []string{seed.Index, amd64} {
				var oci []string
				for _, s := range res.Subjects {
					if s.Subject != subject {
						continue
					}
					for _, b := range s.Both {
						if b.DestinationSource == discovery.SourceAPI || b.DestinationSource == discovery.SourceTagIndex {
							oci = append(oci, b.Digest)
						}
					}
				}
				sort.Strings(oci)
				if got := regctlList(t, dir, tc.host, dest+"@"+subject); !slices.Equal(got, oci) {
					t.Errorf("%s: regctl lists %v at the destination, compare %v", subject, got, oci)
				}
			}
		})
	}
}

func mapsEqual[K comparable, V comparable](a, b map[K]V) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func fallbackIndexOf(t *testing.T, c *registry.Client, repo ref.Ref, subject string) manifest.Manifest {
	t.Helper()
	m, err := c.ManifestGet(t.Context(), repo.SetTag("sha256-"+strings.TrimPrefix(subject, "sha256:")))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func putIndex(t *testing.T, c *registry.Client, r ref.Ref, m manifest.Manifest) {
	t.Helper()
	if err := c.ManifestPut(t.Context(), r, m); err != nil {
		t.Fatal(err)
	}
}

// closedAddress is a loopback address nothing listens on.
func closedAddress(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// TestCompareOfAnUnreadSideListsNothingMissing: a destination that is not
// there, one that throttles for six hours, a pull-through cache that
// answers 424, and a source that cannot be reached: each is incomplete,
// names the side not read, and calls nothing missing, extra or rewritten.
func TestCompareOfAnUnreadSideListsNothingMissing(t *testing.T) {
	t.Parallel()
	l := labtest.StartT(t, lab.Spec{Name: "source", Profile: lab.ProfileOCI11},
		lab.Spec{Name: "hub6h", Profile: lab.ProfileThrottled6h}, lab.Spec{Name: "acr424", Profile: lab.ProfileACR424})
	src, _ := l.Get("source")
	hub, _ := l.Get("hub6h")
	acr, _ := l.Get("acr424")
	closed := closedAddress(t)
	cfg := withHosts(l.Config(), closed)
	cfg.Export.ReferrerDiscovery.TimeoutSeconds = 20
	e := env(cfg, l.ClientOpts()...)
	for _, tc := range []struct {
		name, src, dst, side string
		code                 finding.Code
	}{
		{"destination refuses connections", l.Seed.Ref(src.Host), closed + "/mirror/app", "destination", finding.ConnectionRefused},
		{"destination throttled for six hours", l.Seed.Ref(src.Host), hub.Host + "/" + l.Seed.Repository, "destination", finding.RateLimited},
		{"destination is a cache without referrers", l.Seed.Ref(src.Host), acr.Host + "/" + l.Seed.Repository, "destination", finding.MirrorCacheNoReferrers},
		{"source refuses connections", closed + "/demo/app:v1", src.Host + "/" + l.Seed.Repository, "source", finding.ConnectionRefused},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			res := compare(t, e, tc.src, tc.dst, mirror.CompareWithPlatforms(true))
			if res.Outcome != finding.OutcomeIncomplete || res.Complete || res.Same {
				t.Fatalf("outcome %s complete %v same %v", res.Outcome, res.Complete, res.Same)
			}
			if res.Missing+res.Extra+res.Rewritten != 0 {
				t.Fatalf("judged on an incomplete read: %d missing, %d extra, %d rewritten", res.Missing, res.Extra, res.Rewritten)
			}
			for _, s := range res.Subjects {
				if len(s.Missing)+len(s.Extra)+len(s.Rewritten) > 0 {
					t.Fatalf("subject %s judged: %+v", s.Subject, s)
				}
			}
			// What was read at the other side is listed as unknown, with
			// the side it was read at: the seed's 4 OCI referrers and 3
			// cosign-tag ones at the source.
			seen := map[string]int{}
			for _, s := range res.Subjects {
				for _, u := range s.Unknown {
					seen[u.SeenAt]++
				}
			}
			if tc.side == "destination" && (seen["source"]+res.BothCount != 7 || seen["destination"] != 0 || res.Unknown != seen["source"]) {
				t.Errorf("unknown %v (count %d), %d at both: want the source's 7 referrers told apart, none called missing", seen, res.Unknown, res.BothCount)
			}
			if tc.side == "source" && (seen["destination"] != 7 || seen["source"] != 0) {
				t.Errorf("unknown %v: want the destination's 7 referrers, read there, as unknown", seen)
			}
			if len(res.Unread) != 1 || res.Unread[0].Side != tc.side || res.Unread[0].Error == "" {
				t.Fatalf("unread %+v, want the %s named with a reason", res.Unread, tc.side)
			}
			got := map[finding.Code]bool{}
			for _, f := range res.Findings {
				got[f.Code] = true
				if f.Code == finding.ReferrerMissingAtMirror || f.Code == finding.ImageMissingAtMirror {
					t.Errorf("a missing-referrer finding on an incomplete read: %s", f.Summary)
				}
			}
			if !got[finding.CompareIncomplete] || !got[tc.code] {
				t.Errorf("findings %v, want CompareIncomplete and %s", res.Findings, tc.code)
			}
		})
	}
}

// TestComparePlatformOnlyCopy: crane copies one platform; the index's
// referrers are missing because the destination holds another subject
// digest (said as a platform-only copy), and the platform's own referrer
// is compared against the manifest the destination holds.
func TestComparePlatformOnlyCopy(t *testing.T) {
	t.Parallel()
	l := labtest.StartT(t, lab.Spec{Name: "source", Profile: lab.ProfileOCI11})
	d := labtest.StartDistributionT(t)
	src, _ := l.Get("source")
	e := env(withHosts(l.Config(), d.Host), append(l.ClientOpts(), registry.WithoutDockerCreds())...)
	dest := d.Host + "/mirror/amd64"
	labtest.RunTool(t, t.TempDir(), "crane", "copy", "--insecure", "--platform", "linux/amd64", l.Seed.Ref(src.Host), dest+":"+l.Seed.Tag)
	res := compare(t, e, l.Seed.Ref(src.Host), dest, mirror.CompareWithPlatforms(true))
	amd64 := l.Seed.Platforms["linux/amd64"]
	if res.Destination.Digest != amd64 || res.Outcome != finding.OutcomeFailed {
		t.Fatalf("destination %s outcome %s", res.Destination.Digest, res.Outcome)
	}
	var sawIndex, sawPlatform bool
	for _, s := range res.Subjects {
		switch s.Subject {
		case l.Seed.Index:
			sawIndex = true
			if s.DestinationSubject != amd64 || len(s.Missing) != 6 {
				t.Errorf("index: destination subject %s, %d missing", s.DestinationSubject, len(s.Missing))
			}
			for _, m := range s.Missing {
				if m.CauseCode != finding.ReferrerSubjectRewritten || !strings.Contains(m.Cause, "platform-only copy") || !strings.Contains(m.Cause, "linux/amd64") {
					t.Errorf("index referrer %s: %s %s", m.Digest, m.CauseCode, m.Cause)
				}
			}
		case amd64:
			sawPlatform = true
			if s.Platform != "linux/amd64" || s.DestinationSubject != amd64 || len(s.Missing) != 1 || s.Missing[0].CauseCode != finding.MirrorNoFallbackTag {
				t.Errorf("platform: %+v", s)
			}
		}
		if len(s.Extra) > 0 {
			t.Errorf("%s: extras %v", s.Subject, s.Extra)
		}
	}
	if !sawIndex || !sawPlatform {
		t.Fatalf("subjects %+v", res.Subjects)
	}
}

// TestCompareDepth: a signature on the source's SBOM is compared as a
// referrer of a referrer; at a destination without the SBOM it is missing
// because its subject is.
func TestCompareDepth(t *testing.T) {
	t.Parallel()
	l := labtest.StartT(t, lab.Spec{Name: "source", Profile: lab.ProfileOCI11}, lab.Spec{Name: "mirror", Profile: lab.ProfileOCI11, NoSeed: true})
	src, _ := l.Get("source")
	dst, _ := l.Get("mirror")
	var sbom string
	for _, r := range l.Seed.ReferrersOf(l.Seed.Index) {
		if r.ArtifactType == lab.ArtifactTypeCycloneDX {
			sbom = r.Digest
		}
	}
	sig, err := lab.Attach(t.Context(), l, src.Host, l.Seed.Repository, sbom, lab.ArtifactTypeNotary, []byte("signature of the sbom"))
	if err != nil {
		t.Fatal(err)
	}
	e := env(l.Config(), l.ClientOpts()...)
	labtest.RunTool(t, t.TempDir(), "crane", "copy", "--insecure", l.Seed.Ref(src.Host), dst.Host+"/mirror/app:"+l.Seed.Tag)
	res := compare(t, e, l.Seed.Ref(src.Host), dst.Host+"/mirror/app", mirror.CompareWithDepth(1))
	found := false
	for _, s := range res.Subjects {
		if s.Subject != sbom {
			continue
		}
		found = true
		if s.Parent != l.Seed.Index || len(s.Missing) != 1 || s.Missing[0].Digest != sig || !strings.Contains(s.Missing[0].Cause, "its subject") {
			t.Errorf("referrer of a referrer: %+v", s)
		}
	}
	if !found {
		t.Fatalf("no subject entry for the SBOM: %+v", res.Subjects)
	}
	without := compare(t, e, l.Seed.Ref(src.Host), dst.Host+"/mirror/app")
	if _, ok := causes(without)[sig]; ok {
		t.Errorf("without --depth the referrer of a referrer is compared")
	}
}

// cosignSign signs image with the real cosign, offline, keeping the
// signatures in repo (COSIGN_REPOSITORY): one OCI 1.1 referrer (cosign
// v3's default) and one legacy sha256-<hex>.sig tag.
func cosignSign(t *testing.T, image, repo string) {
	t.Helper()
	if why := os.Getenv("REFDOCTOR_COSIGN_UNAVAILABLE"); why != "" {
		t.Skipf("cosign could not be built: %s", why)
	}
	path, err := labtest.ReferenceTool("cosign")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("cosign missing in CI: %v", err)
		}
		t.Skipf("cosign not available: %v", err)
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "sc.json"), []byte(`{"mediaType":"application/vnd.dev.sigstore.signingconfig.v0.2+json"}`), 0o600)
	os.WriteFile(filepath.Join(dir, "tr.json"), []byte(`{"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1"}`), 0o600)
	var envv []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "COSIGN_") || strings.HasPrefix(name, "SIGSTORE_") || strings.HasPrefix(name, "TUF_") || name == "HOME" || name == "DOCKER_CONFIG" {
			continue
		}
		envv = append(envv, kv)
	}
	envv = append(envv, "HOME="+dir, "DOCKER_CONFIG="+dir, "TUF_ROOT="+filepath.Join(dir, "tuf"), "COSIGN_PASSWORD=refdoctor-test", "COSIGN_REPOSITORY="+repo)
	run := func(args ...string) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, path, args...)
		cmd.Dir, cmd.Env = dir, envv
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("cosign %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	run("generate-key-pair")
	run("sign", "--key", "cosign.key", "-y", "--allow-http-registry", "--allow-insecure-registry", "--signing-config", "sc.json", "--trusted-root", "tr.json", image)
	run("sign", "--key", "cosign.key", "-y", "--allow-http-registry", "--allow-insecure-registry", "--new-bundle-format=false", "--use-signing-config=false", "--tlog-upload=false", image)
}

// TestReferrersRepository: signatures kept in another repository, put
// there by cosign (COSIGN_REPOSITORY) and by crane, are found by
// discovery with --referrers-repo or the registry's referrers_repository,
// marked with that repository; compare names them as missing for that
// reason at a mirror that has only the image, and export carries them.
func TestReferrersRepository(t *testing.T) {
	t.Parallel()
	l := labtest.StartT(t, lab.Spec{Name: "source", Profile: lab.ProfileOCI11}, lab.Spec{Name: "mirror", Profile: lab.ProfileOCI11, NoSeed: true})
	src, _ := l.Get("source")
	dst, _ := l.Get("mirror")
	sigRepo := src.Host + "/demo/signatures"
	image := src.Host + "/" + lab.SeedSingleRepository + "@" + l.Seed.Single
	dir := t.TempDir()
	// crane puts a cosign-style signature for demo/single into the
	// referrers repository (the seed's .sig manifest, under the tag that
	// names demo/single's digest).
	labtest.RunTool(t, dir, "crane", "copy", "--insecure", src.Host+"/"+l.Seed.Repository+":"+l.Seed.CosignTags[0],
		sigRepo+":sha256-"+strings.TrimPrefix(l.Seed.Single, "sha256:")+".sig")
	wantSources := map[discovery.Source]int{discovery.SourceCosignTag: 1}
	cosignRan := false
	t.Run("cosign", func(t *testing.T) {
		cosignSign(t, image, sigRepo)
		cosignRan = true
	})
	if cosignRan {
		// cosign v3's OCI 1.1 referrer lands in the referrers repository
		// (its API lists it); its legacy .sig tag replaces crane's.
		wantSources[discovery.SourceAPI] = 1
	}
	repo, err := discovery.ParseRepository(sigRepo)
	if err != nil {
		t.Fatal(err)
	}
	e := env(l.Config(), l.ClientOpts()...)
	res, err := discovery.Discover(t.Context(), image, append(e.Discovery, discovery.WithConfig(l.Config()), discovery.WithClientOpts(l.ClientOpts()...), discovery.WithReferrersRepository(repo))...)
	if err != nil {
		t.Fatal(err)
	}
	got := map[discovery.Source]int{}
	for _, r := range res.Referrers {
		got[r.Source]++
		if r.Repository != sigRepo || r.Category != finding.CategorySignature {
			t.Errorf("%s: repository %q category %s", r.Digest, r.Repository, r.Category)
		}
	}
	if !mapsEqual(got, wantSources) || res.Outcome != finding.OutcomeOK {
		t.Fatalf("found %v in the referrers repository, want %v (outcome %s, findings %v)", got, wantSources, res.Outcome, res.Findings)
	}
	// The registry's referrers_repository does the same without the flag.
	cfg := l.Config()
	for i := range cfg.Registries {
		if cfg.Registries[i].Host == src.Host {
			cfg.Registries[i].ReferrersRepository = sigRepo
		}
	}
	byConfig, err := discovery.Discover(t.Context(), image, discovery.WithConfig(cfg), discovery.WithClientOpts(l.ClientOpts()...))
	if err != nil {
		t.Fatal(err)
	}
	if len(byConfig.Referrers) != len(res.Referrers) {
		t.Errorf("referrers_repository in the config: %d referrers, the flag %d", len(byConfig.Referrers), len(res.Referrers))
	}

	labtest.RunTool(t, dir, "crane", "copy", "--insecure", image, dst.Host+"/mirror/single@"+l.Seed.Single)
	cmp := compare(t, e, image, dst.Host+"/mirror/single", mirror.CompareWithSourceReferrersRepo(repo))
	if cmp.Missing != len(res.Referrers) || cmp.Source.ReferrersRepository != sigRepo {
		t.Fatalf("compare: %d missing of %d", cmp.Missing, len(res.Referrers))
	}
	for d, code := range causes(cmp) {
		if code != finding.ReferrerInOtherRepository {
			t.Errorf("%s: cause %s", d, code)
		}
	}
	if plain := compare(t, e, image, dst.Host+"/mirror/single"); !plain.Same {
		t.Errorf("without --referrers-repo the source has nothing to miss: %+v", plain)
	}

	// Export carries them from where they are.
	file := filepath.Join(dir, "single.tgz")
	ex, err := mirror.Export(t.Context(), mirror.Env{Config: cfg, Client: l.ClientOpts()}, file, []string{image}, mirror.ExportWithToolVersion("test"))
	if err != nil {
		t.Fatalf("export: %v", err)
	}
	if want := wantSources[discovery.SourceAPI]; ex.Referrers != want {
		t.Errorf("the bundle lists %d referrers, want the %d OCI referrer(s) of the referrers repository", ex.Referrers, want)
	}
	if v, err := mirror.Import(t.Context(), env(l.Config(), l.ClientOpts()...), file, dst.Host+"/imported"); err != nil || !v.OK {
		t.Fatalf("the bundle does not import: %v %+v", err, v.Findings)
	}
}

// TestComparePairs compares several pairs at once, each against its own
// destination, and keeps every result with its pair.
func TestComparePairs(t *testing.T) {
	t.Parallel()
	l := labtest.StartT(t, lab.Spec{Name: "source", Profile: lab.ProfileOCI11}, lab.Spec{Name: "mirror", Profile: lab.ProfileOCI11, NoSeed: true})
	src, _ := l.Get("source")
	dst, _ := l.Get("mirror")
	dir := t.TempDir()
	labtest.RegctlOneRequestAtATime(t, dir, []string{src.Host, dst.Host}, "image", "copy", "--referrers", "--digest-tags", l.Seed.Ref(src.Host), dst.Host+"/full/app:"+l.Seed.Tag)
	labtest.RunTool(t, dir, "crane", "copy", "--insecure", l.Seed.Ref(src.Host), dst.Host+"/bare/app:"+l.Seed.Tag)
	labtest.RunTool(t, dir, "crane", "copy", "--insecure", src.Host+"/"+lab.SeedSingleRepository+":"+l.Seed.Tag, dst.Host+"/bare/single:"+l.Seed.Tag)
	closed := closedAddress(t)
	pairsText := strings.Join([]string{
		"# source destination",
		l.Seed.Ref(src.Host) + " " + dst.Host + "/full/app",
		"",
		l.Seed.Ref(src.Host) + "   " + dst.Host + "/bare/app:" + l.Seed.Tag,
		src.Host + "/" + lab.SeedSingleRepository + ":" + l.Seed.Tag + " " + dst.Host + "/bare/single",
		l.Seed.Ref(src.Host) + " " + closed + "/gone/app",
	}, "\n")
	pairs, err := mirror.ParsePairs(strings.NewReader(pairsText))
	if err != nil || len(pairs) != 4 {
		t.Fatalf("pairs %v: %v", pairs, err)
	}
	rep, err := mirror.Compare(t.Context(), env(withHosts(l.Config(), closed), l.ClientOpts()...), pairs, mirror.CompareWithPlatforms(true))
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		outcome finding.Outcome
		missing int
	}{{finding.OutcomeOK, 0}, {finding.OutcomeFailed, 7}, {finding.OutcomeOK, 0}, {finding.OutcomeIncomplete, 0}}
	for i, w := range want {
		r := rep.Results[i]
		if r.Source.Reference != pairs[i].Source || !strings.HasPrefix(r.Destination.Reference, pairs[i].Destination) {
			t.Errorf("result %d is for %s -> %s, not its pair %v", i, r.Source.Reference, r.Destination.Reference, pairs[i])
		}
		if r.Outcome != w.outcome || r.Missing != w.missing {
			t.Errorf("pair %d: outcome %s missing %d, want %s %d", i, r.Outcome, r.Missing, w.outcome, w.missing)
		}
	}
	if rep.Same || rep.Outcome() != finding.OutcomeIncomplete {
		t.Errorf("report same %v outcome %s", rep.Same, rep.Outcome())
	}

	for _, bad := range []string{"only-one-reference", "a b c", "127.0.0.1:5000/x:1 no-host/x", "# nothing\n\n"} {
		if _, err := mirror.ParsePairs(strings.NewReader(bad)); err == nil || !strings.Contains(err.Error(), "line") && !strings.Contains(err.Error(), "no pairs") {
			t.Errorf("pairs %q: err %v", bad, err)
		}
	}
}

// TestDestinationReference: a repository takes the source's digest or tag.
func TestDestinationReference(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ src, dst, want string }{
		{"r.example/a/b:1.2", "m.example/b", "m.example/b:1.2"},
		{"r.example/a/b@sha256:" + strings.Repeat("a", 64), "m.example:5000/x/b", "m.example:5000/x/b@sha256:" + strings.Repeat("a", 64)},
		{"r.example/a/b:1.2", "m.example/b:other", "m.example/b:other"},
		{"r.example/a/b:1.2", "localhost:5000/b", "localhost:5000/b:1.2"},
	} {
		got, err := mirror.DestinationReference(tc.src, tc.dst)
		if err != nil || got != tc.want {
			t.Errorf("%s %s: %q %v, want %q", tc.src, tc.dst, got, err, tc.want)
		}
	}
	if _, err := mirror.DestinationReference("r.example/a/b:1", "nohost/b"); err == nil {
		t.Error("a destination without a registry host is accepted")
	}
}

// TestCompareCostsLittleMoreThanDiscovery: at the destination, compare
// sends what discovery of that image sends, plus at most one HEAD per
// missing OCI referrer (is its manifest there?) and one per subject (is
// its fallback tag there?); a registry with a pull budget feels the
// difference.
func TestCompareCostsLittleMoreThanDiscovery(t *testing.T) {
	t.Parallel()
	l := labtest.StartT(t, lab.Spec{Name: "source", Profile: lab.ProfileOCI11}, lab.Spec{Name: "mirror", Profile: lab.ProfileFallback404, NoSeed: true})
	src, _ := l.Get("source")
	dst, _ := l.Get("mirror")
	dest := dst.Host + "/mirror/app"
	labtest.RunTool(t, t.TempDir(), "crane", "copy", "--insecure", l.Seed.Ref(src.Host), dest+":"+l.Seed.Tag)
	e := env(l.Config(), l.ClientOpts()...)
	before := l.Requests("mirror")
	if _, err := discovery.Discover(t.Context(), dest+":"+l.Seed.Tag, discovery.WithConfig(l.Config()), discovery.WithClientOpts(l.ClientOpts()...), discovery.WithPlatforms(true)); err != nil {
		t.Fatal(err)
	}
	discover := l.Requests("mirror") - before
	before = l.Requests("mirror")
	res := compare(t, e, l.Seed.Ref(src.Host), dest, mirror.CompareWithPlatforms(true))
	cost := l.Requests("mirror") - before
	oci, subjects := 0, 0
	for _, s := range res.Subjects {
		if len(s.Missing) > 0 {
			subjects++
		}
		for _, m := range s.Missing {
			if m.Source == discovery.SourceAPI || m.Source == discovery.SourceTagIndex {
				oci++
			}
		}
	}
	if oci != 4 || subjects != 2 {
		t.Fatalf("%d OCI referrers missing on %d subjects, want 4 on 2", oci, subjects)
	}
	if extra := cost - discover; extra < 0 || extra > int64(oci+subjects) {
		t.Errorf("compare sent %d requests to the destination, discovery %d: %d more, allowed %d", cost, discover, extra, oci+subjects)
	}
	t.Logf("destination: discovery %d requests, compare %d (%d missing OCI referrers on %d subjects)", discover, cost, oci, subjects)
}

// TestCompareToAMirrorThatSentOCISubjectWithoutTheAPI copies with regctl
// --referrers to the lab's ECR of June 2024: it answers OCI-Subject to
// every referrer push, so regctl writes no fallback tag, and its
// /referrers answers 404. The referrers are there by digest and found
// nowhere: compare says so for each, with the cause that was seen.
func TestCompareToAMirrorThatSentOCISubjectWithoutTheAPI(t *testing.T) {
	t.Parallel()
	l := labtest.StartT(t, lab.Spec{Name: "source", Profile: lab.ProfileOCI11}, lab.Spec{Name: "ecr", Profile: lab.ProfileECR2024, NoSeed: true})
	src, _ := l.Get("source")
	ecr, _ := l.Get("ecr")
	dest := ecr.Host + "/" + l.Seed.Repository
	labtest.RunTool(t, t.TempDir(), "regctl", "--host", "reg="+src.Host+",tls=disabled", "--host", "reg="+ecr.Host+",tls=disabled",
		"image", "copy", "--referrers", "--digest-tags", l.Seed.Ref(src.Host), dest+":"+l.Seed.Tag)
	res := compare(t, env(l.Config(), l.ClientOpts()...), l.Seed.Ref(src.Host), dest, mirror.CompareWithPlatforms(true))
	if res.Destination.Method != discovery.MethodTags || res.Outcome != finding.OutcomeFailed {
		t.Fatalf("destination method %s, outcome %s", res.Destination.Method, res.Outcome)
	}
	oci := 0
	for _, s := range res.Subjects {
		for _, m := range s.Missing {
			oci++
			if m.CauseCode != finding.MirrorNoFallbackTag || !m.PresentByDigest || !strings.Contains(m.Cause, "OCI-Subject") {
				t.Errorf("%s: %s present %v: %s", m.Digest, m.CauseCode, m.PresentByDigest, m.Cause)
			}
		}
		if len(s.Both) == 0 && s.Subject == l.Seed.Index {
			t.Errorf("cosign's tags were copied and are found: %+v", s)
		}
	}
	if oci != 4 {
		t.Errorf("%d referrers missing, want the seed's 4 OCI referrers", oci)
	}
	// Copies skip what is there and trust the header again: oras with the
	// tag schema forced changes nothing.
	labtest.RunTool(t, t.TempDir(), "oras", "cp", "-r", "--from-plain-http", "--to-plain-http", "--to-distribution-spec", "v1.1-referrers-tag",
		l.Seed.Ref(src.Host), dest+":"+l.Seed.Tag)
	if again := compare(t, env(l.Config(), l.ClientOpts()...), l.Seed.Ref(src.Host), dest, mirror.CompareWithPlatforms(true)); again.Missing != 4 {
		t.Errorf("after oras cp: %d missing, want the 4 still without an index entry", again.Missing)
	}
	// The fix, as written (one command per subject), makes them found.
	fixes := map[string]bool{}
	for _, s := range res.Subjects {
		for _, m := range s.Missing {
			fixes[m.Fix] = true
		}
	}
	if len(fixes) != 2 {
		t.Fatalf("%d distinct fixes for 2 subjects: %v", len(fixes), fixes)
	}
	dir := t.TempDir()
	for fix := range fixes {
		i := strings.Index(fix, "regctl index create ")
		j := strings.Index(fix, ". Better")
		if i < 0 || j < i {
			t.Fatalf("fix without its command: %q", fix)
		}
		args := strings.Fields(fix[i+len("regctl ") : j])
		labtest.RunTool(t, dir, "regctl", append([]string{"--host", "reg=" + ecr.Host + ",tls=disabled"}, args...)...)
	}
	res = compare(t, env(l.Config(), l.ClientOpts()...), l.Seed.Ref(src.Host), dest, mirror.CompareWithPlatforms(true))
	if res.Missing != 0 || !res.Same {
		t.Errorf("after the fix: %d missing, causes %v, findings %v", res.Missing, causes(res), res.Findings)
	}
}

// TestCompareRewrittenAndExtra: at a mirror that holds everything but
// whose SBOM was generated again (same type, another digest), and that
// carries a scan of its own, compare names the rewritten SBOM with both
// digests (exit 1: verification against the source's digest fails) and
// the scan as extra.
func TestCompareRewrittenAndExtra(t *testing.T) {
	t.Parallel()
	l := labtest.StartT(t, lab.Spec{Name: "source", Profile: lab.ProfileOCI11}, lab.Spec{Name: "mirror", Profile: lab.ProfileOCI11, NoSeed: true})
	src, _ := l.Get("source")
	dst, _ := l.Get("mirror")
	dest := dst.Host + "/mirror/app"
	dir := t.TempDir()
	regctl := func(args ...string) {
		labtest.RunTool(t, dir, "regctl", append([]string{"--host", "reg=" + src.Host + ",tls=disabled", "--host", "reg=" + dst.Host + ",tls=disabled"}, args...)...)
	}
	// The image and cosign's tags, then every referrer but the SBOM.
	regctl("image", "copy", "--digest-tags", l.Seed.Ref(src.Host), dest+":"+l.Seed.Tag)
	var sbom string
	for _, r := range l.Seed.ReferrersOf(l.Seed.Index) {
		if r.ArtifactType == lab.ArtifactTypeCycloneDX {
			sbom = r.Digest
			continue
		}
		regctl("image", "copy", src.Host+"/"+l.Seed.Repository+"@"+r.Digest, dest+"@"+r.Digest)
	}
	again, err := lab.Attach(t.Context(), l, dst.Host, "mirror/app", l.Seed.Index, lab.ArtifactTypeCycloneDX, []byte(`{"bomFormat":"CycloneDX","generatedAt":"the mirror"}`))
	if err != nil {
		t.Fatal(err)
	}
	scan, err := lab.Attach(t.Context(), l, dst.Host, "mirror/app", l.Seed.Index, "application/vnd.example.scan+json", []byte(`{"scanner":"mirror-side"}`))
	if err != nil {
		t.Fatal(err)
	}
	res := compare(t, env(l.Config(), l.ClientOpts()...), l.Seed.Ref(src.Host), dest)
	if res.Outcome != finding.OutcomeFailed || res.Missing != 0 || res.Rewritten != 1 || res.Extra != 1 || res.Same {
		t.Fatalf("outcome %s missing %d rewritten %d extra %d", res.Outcome, res.Missing, res.Rewritten, res.Extra)
	}
	for _, s := range res.Subjects {
		for _, r := range s.Rewritten {
			if r.Digest != sbom || r.DestinationDigest != again || r.ArtifactType != lab.ArtifactTypeCycloneDX {
				t.Errorf("rewritten %+v", r)
			}
		}
		for _, x := range s.Extra {
			if x.Digest != scan {
				t.Errorf("extra %+v", x)
			}
		}
	}
}
