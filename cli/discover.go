package cli

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/refdoctor/refdoctor/discovery"
	"github.com/refdoctor/refdoctor/finding"
	"github.com/refdoctor/refdoctor/internal/human"
	"github.com/refdoctor/refdoctor/probe"
	"github.com/refdoctor/refdoctor/registry"
)

func newDiscoverCmd(g *globals) *cobra.Command {
	var (
		artifactTypes []string
		method        string
		depth         int
		platforms     bool
		refresh       bool
		minReferrers  int
		maxReferrers  int
		allTags       bool
		referrersRepo string
	)
	cmd := &cobra.Command{
		Use:         "discover REF... | -",
		Annotations: map[string]string{argsAnnotation: "one or more images, HOST/REPO:TAG or HOST/REPO@sha256:DIGEST, or - to read them from standard input"},
		Short:       "List the referrers of images, and how each was found",
		Long: `List the SBOMs, signatures, attestations and VEX documents attached to an
image (by tag or digest): through the OCI 1.1 referrers API, the referrers tag
schema (sha256-<hex> index tags), cosign's sha256-<hex>.sig/.att/.sbom tags, and
attestation manifests inside an index. Each referrer says how it was found.

--method auto (default) follows the registry's probed capability (cached;
a cached "unsupported" is confirmed with one request before the result says
there are no referrers); api and tags force one path. Link pages are followed
while they bring new referrers, up to --max-referrers. A throttled, refused or
timed-out lookup, a reply cut short, a pagination loop or the referrer limit
is reported as incomplete (exit 3), with what was read, never as "no
referrers". Types come from each referrer's manifest where the registry lists
them wrongly, and --artifact-type filters on those.

Where the referrers API answers, cosign-style tags are looked for with a HEAD
of sha256-<hex> and its .sig, .att and .sbom tags, so a subject costs the same
whatever the repository's tag count; --all-tags lists the repository's tags
instead (once per repository per run).

Many references (or - to read them from standard input, one per line; blank
lines and lines starting with # are skipped) are discovered concurrently in
one run (--concurrency), with one capability probe per registry and one tag
list per repository: a table per subject, or with -o json
{"results":[...],"shared_requests":N} holding one object per reference in the
order given. A single REF prints its object alone. The exit code is the worst
of the results.

Exit codes: 0 discovery complete, 1 a check failed (image missing, the forced
method unavailable, fewer than --min-referrers), 2 bad input, 3 incomplete.`,
		Example: `  refdoctor discover registry.example.com/team/app:1.2 --platforms
  refdoctor discover ghcr.io/org/app@sha256:... --method tags -o json
  refdoctor discover registry.example.com/team/app:1.2 --artifact-type application/vnd.cyclonedx+json
  refdoctor discover -o json - < images.txt`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := discovery.ParseMethod(method)
			if err != nil {
				return usageErr("--method: %v", err)
			}
			if depth < 0 || depth > 10 {
				return usageErr("--depth %d: use 0 to 10", depth)
			}
			if minReferrers < 0 {
				return usageErr("--min-referrers %d: use 0 or more", minReferrers)
			}
			if maxReferrers < 0 {
				return usageErr("--max-referrers %d: use 1 or more (0 for the configured %d)", maxReferrers, g.cfg.Export.ReferrerDiscovery.MaxReferrers)
			}
			elsewhere, err := referrersRepoOpts(referrersRepo)
			if err != nil {
				return err
			}
			opts := append(append(g.discoveryOpts(refresh), elsewhere...),
				discovery.WithMethod(m), discovery.WithArtifactTypes(artifactTypes...),
				discovery.WithDepth(depth), discovery.WithPlatforms(platforms),
				discovery.WithMinReferrers(minReferrers), discovery.WithMaxReferrers(maxReferrers),
				discovery.WithAllTags(allTags))
			refs, err := discoverRefs(args, cmd.InOrStdin())
			if err != nil {
				return err
			}
			rep, err := discovery.DiscoverMany(cmd.Context(), refs, opts...)
			if err != nil {
				if errors.Is(err, discovery.ErrBadReference) {
					return &exitError{code: ExitUsage, err: err}
				}
				return err
			}
			if len(args) == 1 && args[0] != "-" {
				res := rep.Results[0]
				if err := g.print(res, func(w io.Writer) { writeDiscoverTable(w, res) }); err != nil {
					return err
				}
				return silentExit(outcomeExit(res.Outcome))
			}
			if err := g.print(rep, func(w io.Writer) { writeDiscoverReport(w, rep) }); err != nil {
				return err
			}
			return silentExit(worstOutcomeExit(rep.Results))
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&artifactTypes, "artifact-type", nil, "keep only referrers of this artifact type (repeatable)")
	f.StringVar(&method, "method", "auto", "auto, api or tags")
	f.IntVar(&depth, "depth", 0, "also list referrers of referrers, N levels down")
	f.BoolVar(&platforms, "platforms", false, "also look at every platform manifest of an index")
	f.BoolVar(&refresh, "refresh", false, "probe the registry again instead of using the cached capability")
	f.IntVar(&minReferrers, "min-referrers", 0, "fail (exit 1, outcome fail, TooFewReferrers) when a complete discovery finds fewer referrers")
	f.BoolVar(&allTags, "all-tags", false, "list every tag of the repository to find cosign-style tags, even where the referrers API answers (default: a HEAD of the four tags that can name referrers)")
	addReferrersRepoFlag(cmd, &referrersRepo)
	f.IntVar(&maxReferrers, "max-referrers", 0, "stop a referrers API walk after this many referrers, keeping them (partial, exit 3); default from config: export.referrer_discovery.max_referrers, 10000")
	return cmd
}

// addReferrersRepoFlag adds --referrers-repo to a command that discovers.
func addReferrersRepoFlag(cmd *cobra.Command, v *string) {
	cmd.Flags().StringVar(v, "referrers-repo", "", "also look for referrers in this repository (HOST/REPO, as cosign's COSIGN_REPOSITORY); overrides the registry's referrers_repository")
}

// referrersRepoOpts turns --referrers-repo into a discovery option.
func referrersRepoOpts(s string) ([]discovery.Opt, error) {
	if s == "" {
		return nil, nil
	}
	r, err := discovery.ParseRepository(s)
	if err != nil {
		return nil, usageErr("--referrers-repo: %v", err)
	}
	return []discovery.Opt{discovery.WithReferrersRepository(r)}, nil
}

// discoveryOpts are the engine options every discovery command shares;
// the capability cache comes from the configuration.
func (g *globals) discoveryOpts(refresh bool) []discovery.Opt {
	g.checkCache()
	popts := []probe.Opt{probe.WithRefresh(refresh), probe.WithSession(g.session), probe.WithPurpose(g.purpose)}
	return []discovery.Opt{
		discovery.WithConfig(g.cfg),
		discovery.WithTimeout(g.opTimeout()),
		discovery.WithLogger(g.log),
		discovery.WithMetrics(g.metrics),
		discovery.WithProbeOpts(popts...),
		discovery.WithClientOpts(registry.WithLogger(g.log), registry.WithUserAgent("refdoctor/"+version)),
	}
}

// checkCache makes sure the capability cache's folder can be written
// before a command relies on it: an air-gapped import host may have a
// read-only home, and a cache that cannot be written is a debug line and
// no cache for this run, never a failure or a warning.
func (g *globals) checkCache() {
	if g.cacheChecked {
		return
	}
	g.cacheChecked = true
	dir := g.cfg.Cache.Dir
	if dir == "" || g.cfg.Cache.CapabilitiesTTL.Duration <= 0 {
		return
	}
	err := os.MkdirAll(dir, 0o700)
	if err == nil {
		var f *os.File
		if f, err = os.CreateTemp(dir, ".writable-*"); err == nil {
			f.Close()
			os.Remove(f.Name())
		}
	}
	if err != nil {
		g.log.Debug("capability cache not used: its folder cannot be written", "dir", dir, "err", err)
		g.cfg.Cache.Dir = ""
	}
}

// discoverRefs is the references to discover: the arguments, with - read
// from in, one per line (blank lines and # comments skipped).
func discoverRefs(args []string, in io.Reader) ([]string, error) {
	var refs []string
	stdinRead := false
	for _, a := range args {
		if a != "-" {
			refs = append(refs, a)
			continue
		}
		if stdinRead {
			return nil, usageErr("- given twice: standard input is read once")
		}
		stdinRead = true
		sc := bufio.NewScanner(in)
		sc.Buffer(make([]byte, 64<<10), 64<<10)
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			refs = append(refs, line)
		}
		if err := sc.Err(); err != nil {
			return nil, &exitError{code: ExitUsage, err: fmt.Errorf("reading references from standard input: %w", err)}
		}
	}
	if len(refs) == 0 {
		return nil, usageErr("no references on standard input: give one per line, e.g. registry.example.com/team/app:1.2")
	}
	return refs, nil
}

// worstOutcomeExit is the exit code of many results: 3 when any could not
// complete, else 1 when any failed, else 0.
func worstOutcomeExit(results []discovery.Result) int {
	code := ExitOK
	for _, r := range results {
		switch c := outcomeExit(r.Outcome); {
		case c == ExitIncomplete:
			return ExitIncomplete
		case c != ExitOK:
			code = c
		}
	}
	return code
}

// writeDiscoverReport prints one table per subject, then a count of the
// outcomes.
func writeDiscoverReport(w io.Writer, rep discovery.Report) {
	counts := map[finding.Outcome]int{}
	for i, res := range rep.Results {
		if i > 0 {
			fmt.Fprintln(w, "\n"+strings.Repeat("─", 72)+"\n")
		}
		writeDiscoverTable(w, res)
		counts[res.Outcome]++
	}
	fmt.Fprintf(w, "\n%d subjects: %d ok, %d warn, %d fail, %d incomplete (%d requests shared: probes and tag lists)\n", len(rep.Results),
		counts[finding.OutcomeOK], counts[finding.OutcomeWarn], counts[finding.OutcomeFailed], counts[finding.OutcomeIncomplete], rep.SharedRequests)
}

func outcomeExit(o finding.Outcome) int {
	switch o {
	case finding.OutcomeIncomplete:
		return ExitIncomplete
	case finding.OutcomeFailed:
		return ExitCheckFail
	}
	return ExitOK
}

func writeDiscoverTable(w io.Writer, res discovery.Result) {
	fmt.Fprintln(w, res.Subject.Reference)
	if res.Subject.Digest != "" {
		fmt.Fprintf(w, "  digest   %s\n  type     %s\n", res.Subject.Digest, res.Subject.MediaType)
	}
	if res.Method != "" {
		how := map[discovery.Method]string{discovery.MethodAPI: "referrers API", discovery.MethodTags: "referrers tag schema"}[res.Method]
		fmt.Fprintf(w, "  method   %s (%s), %s\n", res.Method, how, human.Count(res.Requests, "request"))
	}
	incomplete := res.Outcome == finding.OutcomeIncomplete
	fmt.Fprintf(w, "\nREFERRERS (%d%s)\n", len(res.Referrers), map[bool]string{true: " read, list incomplete"}[incomplete])
	writeReferrerTree(w, res.Referrers, incomplete)
	for _, p := range res.Platforms {
		fmt.Fprintf(w, "\nPLATFORM %s %s (%d)\n", p.Platform, discovery.ShortDigest(p.Digest), len(p.Referrers))
		writeReferrerTree(w, p.Referrers, incomplete)
	}
	fmt.Fprintln(w)
	writeWrapped(w, "sources: ", "api = the referrers API; tag-index = the sha256-<hex> fallback index tag; cosign-tag = a cosign .sig, .att or .sbom tag; index-attestation = an attestation manifest inside the image index")
	writeFindings(w, res.Findings)
	switch res.Outcome {
	case finding.OutcomeIncomplete:
		fmt.Fprintln(w, "\nINCOMPLETE: the list above is not the whole answer (see findings).")
	}
}

// writeReferrerTree draws the referrers as a tree of category, artifact
// type, digest, size and how each was found (the JSON's source words);
// an empty list says "none" only when the read was complete. On a narrow
// terminal the digest is cut first, then the type; elsewhere nothing is.
func writeReferrerTree(w io.Writer, rs []discovery.Referrer, incomplete bool) {
	if len(rs) == 0 {
		if incomplete {
			fmt.Fprintln(w, "  (none read: the lookup did not complete, see findings)")
		} else {
			fmt.Fprintln(w, "  (none)")
		}
		return
	}
	t := &table{flex: []int{2, 1}, floor: map[int]int{2: 19, 1: 24}}
	var walk func(rs []discovery.Referrer, indent string)
	walk = func(rs []discovery.Referrer, indent string) {
		for i, r := range rs {
			branch, next := "├── ", "│   "
			if i == len(rs)-1 {
				branch, next = "└── ", "    "
			}
			found := string(r.Source)
			if r.Repository != "" {
				found += " in " + r.Repository
			}
			t.add(indent+branch+string(r.Category), r.ArtifactType, r.Digest, human.Size(r.Size), found)
			if r.PredicateType != "" {
				t.add(indent+next+"  predicate", r.PredicateType)
			}
			walk(r.Referrers, indent+next)
		}
	}
	walk(rs, "")
	t.write(w)
}

func writeFindings(w io.Writer, fs []finding.Finding) {
	if len(fs) == 0 {
		return
	}
	fmt.Fprintln(w, "\nFINDINGS")
	for _, f := range fs {
		writeWrapped(w, fmt.Sprintf("  %-5s ", f.Severity), string(f.Code)+": "+f.Summary)
		if f.Cause != "" {
			writeWrapped(w, "        cause: ", f.Cause)
		}
		if f.Remedy != "" {
			writeWrapped(w, "        fix:   ", f.Remedy)
		}
		if f.Evidence != "" {
			writeWrapped(w, "        seen:  ", f.Evidence)
		}
	}
}

func newTagsCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:         "tags HOST/REPO",
		Annotations: map[string]string{argsAnnotation: "one repository, HOST/REPO"},
		Short:       "List fallback and cosign-style tags, grouped by subject",
		Long: `List every tag of a repository that follows the referrers tag schema
(sha256-<hex>, an index of referrers) or cosign's legacy scheme
(sha256-<hex>.sig, .att, .sbom), grouped by the subject digest the name
encodes, with the digest each tag holds and whether the subject still exists
(orphans are findings). This is the fallback path registries without the
referrers API depend on.

Each sha256-<hex> index is checked: it must be an OCI index and not the
subject itself (GitLab), every entry's manifest must exist and name that
subject, entries must carry artifactType (not the empty config type), none
may be listed twice, and, where the registry serves the referrers API, none
the API lists may be missing from it. This costs one GET per index entry and,
with the API, one referrers request per subject; discover checks only what it
reads anyway.

Exit codes: 0 healthy (warnings aside), 1 an index lacks or lists wrongly
what clients need, 2 bad input, 3 incomplete.`,
		Example: `  refdoctor tags ghcr.io/org/app
  refdoctor tags --plain-http localhost:5000 localhost:5000/demo/app -o json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			res, err := discovery.ListTags(cmd.Context(), args[0], g.discoveryOpts(false)...)
			if err != nil {
				if errors.Is(err, discovery.ErrBadReference) {
					return &exitError{code: ExitUsage, err: err}
				}
				return err
			}
			if err := g.print(res, func(w io.Writer) { writeTagsTable(w, res) }); err != nil {
				return err
			}
			switch {
			case res.Partial:
				return silentExit(ExitIncomplete)
			case res.Error != "", finding.Worst(res.Findings) == finding.SeverityError:
				return silentExit(ExitCheckFail)
			}
			return nil
		},
	}
}

func writeTagsTable(w io.Writer, res discovery.TagListing) {
	switch {
	case res.Error != "" && len(res.Subjects) == 0:
		// A listing that failed has no count to lead with.
		writeWrapped(w, res.Repository+": ", "the tag list could not be read: "+res.Error)
		writeFindings(w, res.Findings)
		return
	case res.Partial:
		fmt.Fprintf(w, "%s: %s for %s so far, the listing is incomplete (%s)\n", res.Repository, human.Count(res.TagsTotal, "referrer tag"),
			human.Count(len(res.Subjects), "subject"), human.Count(res.Requests, "request"))
	default:
		fmt.Fprintf(w, "%s: %s for %s (%s)\n", res.Repository, human.Count(res.TagsTotal, "referrer tag"),
			human.Count(len(res.Subjects), "subject"), human.Count(res.Requests, "request"))
	}
	for _, s := range res.Subjects {
		state := "exists"
		switch {
		case s.Exists == nil:
			state = "not checked"
		case !*s.Exists:
			state = "ORPHAN: subject missing"
		}
		fmt.Fprintf(w, "\nSUBJECT %s (%s)\n", s.Subject, state)
		t := &table{indent: "  ", flex: []int{2, 1}, floor: map[int]int{2: 19, 1: 24}}
		for _, tg := range s.Tags {
			digest := tg.Digest
			if digest == "" {
				digest = "(not resolved)"
			}
			health := ""
			if h := tg.Health; h != nil {
				switch {
				case len(h.Problems) > 0:
					var names []string
					for _, p := range h.Problems {
						names = append(names, string(p))
					}
					health = fmt.Sprintf("%d entries: %s", h.Entries, strings.Join(names, ", "))
				case !h.Checked:
					health = fmt.Sprintf("%d entries, not all checked", h.Entries)
				default:
					health = fmt.Sprintf("%d entries, ok", h.Entries)
				}
			}
			t.add(tg.Kind, tg.Tag, "-> "+digest, health)
		}
		t.write(w)
	}
	writeFindings(w, res.Findings)
}
