package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/refdoctor/refdoctor/discovery"
	"github.com/refdoctor/refdoctor/finding"
	"github.com/refdoctor/refdoctor/internal/human"
	"github.com/refdoctor/refdoctor/mirror"
)

func newCompareCmd(g *globals) *cobra.Command {
	var (
		pairsFile     string
		platforms     bool
		depth         int
		artifactTypes []string
		srcRepo       string
		dstRepo       string
		refresh       bool
	)
	cmd := &cobra.Command{
		Use:   "compare SOURCE DEST",
		Short: "Compare an image's referrers at its source and at a mirror: both, missing (with cause), extra, rewritten",
		Long: `Compare the referrers (SBOMs, signatures, attestations, VEX) of an image at
its source with those at a mirror, a replica or a pull-through cache. Each side
is discovered on its own, with its own method (referrers API, fallback tag
index, cosign tags, attestations inside the index), and referrers are matched
by digest per subject: the image, every platform manifest with --platforms,
every referrer with --depth.

SOURCE is HOST/REPO:TAG or HOST/REPO@DIGEST. DEST is a reference, or a
repository HOST/REPO: then the source's digest (or tag) is looked up there.

Each referrer is listed as at both sides, missing at the destination, extra at
the destination, or rewritten (the destination holds another digest of the same
artifact type on the same subject). Every missing referrer names its likely
cause, from what the destination was seen to hold: the image is not there; the
destination has no referrers API and no fallback tag was written; its fallback
index lacks the entry although the manifest is there (a lost update); the
destination holds another subject digest (a platform-only or converting copy);
the referrer exists only under a cosign tag the copy ignored, or only in a
referrers repository; the manifest is there but not listed; a pull-through
cache that does not pass referrers through (seen in its replies).

--pairs FILE compares many images at once (one "SOURCE DEST" per line, # for
comments; - reads standard input), concurrently, for a whole mirror.

Exit codes: 0 nothing missing or rewritten (extras are reported), 1 referrers
are missing or rewritten at the destination (or the source image does not
exist), 2 bad input, 3 either side could not be read completely: then nothing
is listed as missing, and the output says which side and subjects were not
read.`,
		Example: `  refdoctor compare registry.example.com/team/app:1.2 mirror.internal/team/app
  refdoctor compare --platforms ghcr.io/org/app@sha256:... mirror.internal/org/app -o json
  refdoctor compare --pairs mirror-pairs.txt
  refdoctor compare --referrers-repo ghcr.io/org/signatures ghcr.io/org/app:1.2 mirror.internal/org/app`,
		RunE: func(cmd *cobra.Command, args []string) error {
			var pairs []mirror.Pair
			switch {
			case pairsFile != "" && len(args) > 0:
				return usageErr("give SOURCE DEST or --pairs FILE, not both")
			case pairsFile != "":
				var r io.Reader = cmd.InOrStdin()
				if pairsFile != "-" {
					f, err := os.Open(pairsFile)
					if err != nil {
						return usageErr("--pairs: %v", err)
					}
					defer f.Close()
					r = f
				}
				p, err := mirror.ParsePairs(r)
				if err != nil {
					return usageErr("--pairs %s: %v", pairsFile, err)
				}
				pairs = p
			case len(args) != 2:
				return usageErr("compare takes SOURCE DEST (got %d arguments), or --pairs FILE", len(args))
			default:
				pairs = []mirror.Pair{{Source: args[0], Destination: args[1]}}
			}
			if depth < 0 || depth > 10 {
				return usageErr("--depth %d: use 0 to 10", depth)
			}
			opts := []mirror.CompareOpt{mirror.CompareWithPlatforms(platforms), mirror.CompareWithDepth(depth), mirror.CompareWithArtifactTypes(artifactTypes...)}
			for _, r := range []struct{ flag, value string }{{"--referrers-repo", srcRepo}, {"--dest-referrers-repo", dstRepo}} {
				if r.value == "" {
					continue
				}
				repo, err := discovery.ParseRepository(r.value)
				if err != nil {
					return usageErr("%s: %v", r.flag, err)
				}
				if r.flag == "--referrers-repo" {
					opts = append(opts, mirror.CompareWithSourceReferrersRepo(repo))
				} else {
					opts = append(opts, mirror.CompareWithDestinationReferrersRepo(repo))
				}
			}
			env := g.mirrorEnv()
			env.Discovery = g.discoveryOpts(refresh)
			rep, err := mirror.Compare(cmd.Context(), env, pairs, opts...)
			if err != nil {
				if errors.Is(err, discovery.ErrBadReference) {
					return &exitError{code: ExitUsage, err: err}
				}
				return err
			}
			var v any = rep
			if pairsFile == "" {
				v = rep.Results[0]
			}
			if err := g.print(v, func(w io.Writer) { writeCompareReport(w, rep, pairsFile != "") }); err != nil {
				return err
			}
			return silentExit(outcomeExit(rep.Outcome()))
		},
	}
	f := cmd.Flags()
	f.StringVar(&pairsFile, "pairs", "", "compare every \"SOURCE DEST\" line of this file (- for standard input)")
	f.BoolVar(&platforms, "platforms", false, "also compare every platform manifest of an index")
	f.IntVar(&depth, "depth", 0, "also compare referrers of referrers, N levels down")
	f.StringArrayVar(&artifactTypes, "artifact-type", nil, "compare only referrers of this artifact type (repeatable)")
	addReferrersRepoFlag(cmd, &srcRepo)
	f.StringVar(&dstRepo, "dest-referrers-repo", "", "also look for the destination's referrers in this repository (HOST/REPO)")
	f.BoolVar(&refresh, "refresh", false, "probe the registries again instead of using cached capabilities")
	return cmd
}

func writeCompareReport(w io.Writer, rep mirror.CompareReport, many bool) {
	if many {
		t := &table{head: []string{"STATE", "BOTH", "MISSING", "EXTRA", "REWRITTEN", "SOURCE", "DESTINATION"}, flex: []int{5, 6}, floor: map[int]int{5: 24, 6: 24}}
		for _, r := range rep.Results {
			t.add(compareState(r), fmt.Sprint(r.BothCount), judged(r, r.Missing), judged(r, r.Extra), judged(r, r.Rewritten),
				r.Source.Reference, r.Destination.Reference)
		}
		t.write(w)
		for _, r := range rep.Results {
			fmt.Fprintln(w, "\n"+strings.Repeat("-", min(79, max(40, proseWidth(w)-1))))
			writeCompare(w, r)
		}
		return
	}
	writeCompare(w, rep.Results[0])
}

// judged shows a count, or "?" where an incomplete read judged nothing.
func judged(r mirror.CompareResult, n int) string {
	if !r.Complete {
		return "?"
	}
	return fmt.Sprint(n)
}

func compareState(r mirror.CompareResult) string {
	switch r.Outcome {
	case finding.OutcomeIncomplete:
		return "unread"
	case finding.OutcomeFailed:
		return "FAIL"
	case finding.OutcomeWarn:
		return "warn"
	}
	return "ok"
}

var methodWords = map[discovery.Method]string{discovery.MethodAPI: "referrers API", discovery.MethodTags: "tag schema (no referrers API)"}

func writeSide(w io.Writer, label string, s mirror.CompareSide) {
	fmt.Fprintf(w, "%-12s %s\n", label, s.Reference)
	switch {
	case s.Complete && !s.Found:
		fmt.Fprintf(w, "%-12s not there (404)\n", "")
	case s.Digest == "":
		writeWrapped(w, strings.Repeat(" ", 13), "not resolved: "+s.Error)
	default:
		how := methodWords[s.Method]
		if how == "" {
			how = "not discovered"
		}
		read := ""
		if !s.Complete {
			read = ", NOT READ COMPLETELY"
		}
		fmt.Fprintf(w, "%-12s %s %s, %s, %s%s\n", "", s.Digest, shortMediaType(s.MediaType), how, human.Count(s.Requests, "request"), read)
	}
	if s.ReferrersRepository != "" {
		fmt.Fprintf(w, "%-12s also looked in %s\n", "", s.ReferrersRepository)
	}
}

func shortMediaType(mt string) string {
	switch mt {
	case "application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json":
		return "index"
	case "application/vnd.oci.image.manifest.v1+json", "application/vnd.docker.distribution.manifest.v2+json":
		return "manifest"
	}
	return mt
}

// shownPerReferrer are the codes the table already shows next to each
// referrer, so the findings list does not repeat them.
var shownPerReferrer = map[finding.Code]bool{
	finding.ReferrerMissingAtMirror: true, finding.ImageMissingAtMirror: true, finding.MirrorNoFallbackTag: true,
	finding.ReferrerSubjectRewritten: true, finding.CosignTagNotCopied: true, finding.ReferrerNotListed: true,
	finding.ReferrerInOtherRepository: true, finding.FallbackIndexMissingEntry: true,
	finding.ReferrerRewritten: true, finding.ReferrerExtraAtMirror: true,
}

// foundBy names how a referrer was found, and where when it was in a
// referrers repository.
func foundBy(x mirror.CompareReferrer, src discovery.Source) string {
	if src == "" {
		return "none"
	}
	s := string(src)
	if x.Repository != "" && src == x.Source {
		s += " in " + x.Repository
	}
	return s
}

func writeCompare(w io.Writer, r mirror.CompareResult) {
	writeSide(w, "SOURCE", r.Source)
	writeSide(w, "DESTINATION", r.Destination)
	for _, s := range r.Subjects {
		what := "image"
		switch {
		case s.Platform != "":
			what = "platform " + s.Platform
		case s.Parent != "":
			what = "referrer of " + discovery.ShortDigest(s.Parent)
		}
		fmt.Fprintf(w, "\nSUBJECT %s (%s)", s.Subject, what)
		if s.DestinationSubject != s.Subject {
			dest := "none"
			if s.DestinationSubject != "" {
				dest = s.DestinationSubject
			}
			fmt.Fprintf(w, ", at the destination: %s", dest)
		}
		fmt.Fprintln(w)
		if len(s.Both)+len(s.Missing)+len(s.Extra)+len(s.Rewritten)+len(s.Unknown) == 0 {
			if r.Complete {
				fmt.Fprintln(w, "  (no referrers at either side)")
			} else {
				fmt.Fprintln(w, "  (nothing judged: a side was not read completely)")
			}
			continue
		}
		t := &table{indent: "  ", head: []string{"STATE", "CATEGORY", "ARTIFACT TYPE", "DIGEST", "FOUND BY: SOURCE -> DESTINATION"},
			flex: []int{2, 3, 4}, floor: map[int]int{2: 24, 3: 19, 4: 16}}
		for _, x := range s.Both {
			t.add("both", string(x.Category), x.ArtifactType, x.Digest, foundBy(x, x.Source)+" -> "+foundBy(x, x.DestinationSource))
		}
		// Missing referrers share a few causes: each is numbered once.
		var causes []mirror.MissingReferrer
		number := map[string]int{}
		for _, m := range s.Missing {
			k := string(m.CauseCode) + m.Cause
			if number[k] == 0 {
				causes = append(causes, m)
				number[k] = len(causes)
			}
			t.add("MISSING", string(m.Category), m.ArtifactType, m.Digest, fmt.Sprintf("%s -> none [%d]", foundBy(m.CompareReferrer, m.Source), number[k]))
		}
		for _, x := range s.Rewritten {
			t.add("REWRITTEN", string(x.Category), x.ArtifactType, x.Digest, foundBy(x.CompareReferrer, x.Source)+" -> now "+x.DestinationDigest)
		}
		for _, x := range s.Extra {
			t.add("extra", string(x.Category), x.ArtifactType, x.Digest, "none -> "+foundBy(x, x.Source))
		}
		for _, x := range s.Unknown {
			how := foundBy(x.CompareReferrer, x.Source) + " -> could not tell"
			if x.SeenAt == "destination" {
				how = "could not tell -> " + foundBy(x.CompareReferrer, x.Source)
			}
			t.add("unknown", string(x.Category), x.ArtifactType, x.Digest, how)
		}
		t.write(w)
		for i, m := range causes {
			writeWrapped(w, fmt.Sprintf("  [%d] ", i+1), string(m.CauseCode)+": "+m.Cause+".")
			writeWrapped(w, "      fix: ", m.Fix)
		}
	}
	var rest []finding.Finding
	for _, f := range r.Findings {
		if !shownPerReferrer[f.Code] {
			rest = append(rest, f)
		}
	}
	writeFindings(w, rest)
	fmt.Fprintln(w)
	switch r.Outcome {
	case finding.OutcomeIncomplete:
		for _, u := range r.Unread {
			writeWrapped(w, "INCOMPLETE ", fmt.Sprintf("the %s (%s) was not read completely: %s. Nothing is listed as missing: %d at both, %d unknown (could not tell).", u.Side, u.Reference, u.Error, r.BothCount, r.Unknown))
		}
	default:
		fmt.Fprintf(w, "RESULT %d at both, %d missing, %d extra, %d rewritten", r.BothCount, r.Missing, r.Extra, r.Rewritten)
		switch {
		case !r.Source.Found:
			fmt.Fprintln(w, ": the source image does not exist")
		case r.Same:
			fmt.Fprintln(w, ": the destination holds every referrer")
		case r.Missing+r.Rewritten > 0:
			fmt.Fprintln(w, ": referrers did not reach the destination")
		default:
			fmt.Fprintln(w, ": nothing is missing")
		}
	}
}
