package runbook

import (
	"context"
	"errors"
	"fmt"

	"github.com/refdoctor/refdoctor/discovery"
	"github.com/refdoctor/refdoctor/finding"
	"github.com/refdoctor/refdoctor/mirror"
)

// runCompare compares the image with the source it was copied from:
// which referrers reached it, which did not and why. It needs both an
// image and a source; without a source it is skipped, and the steps that
// offer it say how to give one.
func (e *Engine) runCompare(ctx context.Context, r *run) {
	switch {
	case e.targets.Source == "":
		r.skip("No source given: pass --source HOST/REPO:TAG (the image the mirror was copied from), or set it in the start form.")
		return
	case e.targets.Image == "":
		r.skip("No image given: pass --image (the mirror's copy) and --source (where it came from).")
		return
	}
	env := mirror.Env{Config: e.o.cfg, Client: e.o.clientOpts, Discovery: e.discoveryOpts(r, r.step.Check.Platforms), Log: e.o.log}
	rep, err := mirror.Compare(ctx, env, []mirror.Pair{{Source: e.targets.Source, Destination: e.targets.Image}},
		mirror.CompareWithPlatforms(r.step.Check.Platforms))
	if err != nil {
		if errors.Is(err, discovery.ErrBadReference) {
			r.res.Status = StatusFailed
			r.res.Error = err.Error()
			r.res.Summary = "The source or image reference is not valid: " + err.Error()
			return
		}
		r.incomplete("Could not complete the comparison: " + err.Error())
		r.res.Error = err.Error()
		return
	}
	res := rep.Results[0]
	r.res.Compare = &res
	r.res.Findings = append(r.res.Findings, res.Findings...)
	summary := fmt.Sprintf("%s against its source %s: %d at both, %d missing, %d extra, %d rewritten.",
		e.targets.Image, e.targets.Source, res.BothCount, res.Missing, res.Extra, res.Rewritten)
	switch res.Outcome {
	case finding.OutcomeIncomplete:
		side := "a side"
		if len(res.Unread) > 0 {
			side = "the " + res.Unread[0].Side
		}
		r.incomplete(fmt.Sprintf("Could not compare: %s was not read completely, so nothing is called missing (%d at both so far).", side, res.BothCount))
		if len(res.Unread) > 0 {
			r.res.Error = res.Unread[0].Error
		}
		return
	case finding.OutcomeFailed:
		r.res.Status = StatusFailed
	default:
		r.res.Status = statusFrom(r.res.Findings)
	}
	r.res.Summary = summary
}
