package runbook

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/refdoctor/refdoctor/finding"
	"github.com/refdoctor/refdoctor/internal/human"
	"github.com/refdoctor/refdoctor/probe"
)

// The probe-based checks: each step about registries runs the check its
// title names on one probe of the targets (within RunAll the probe runs
// once and every such step reads it):
//
//	probe           the referrers verdict of every registry
//	timing          where the time goes, per registry; the slow one named
//	compat          what the compatibility table expects against what was observed
//	probe-failures  the probes that could not reach a verdict, and why

// TimingReport is the timing check's answer: how long each registry took
// against the timeout in force.
type TimingReport struct {
	TimeoutMS  int64            `json:"timeout_ms"`
	Registries []RegistryTiming `json:"registries"`
	// Slowest is the registry that took longest.
	Slowest string `json:"slowest,omitempty"`
}

// RegistryTiming is one registry's probe, timed.
type RegistryTiming struct {
	Registry string `json:"registry"`
	TotalMS  int64  `json:"total_ms"`
	Requests int    `json:"requests"`
	// SlowestMS and SlowestRequest name its slowest request.
	SlowestMS      int64           `json:"slowest_ms"`
	SlowestRequest string          `json:"slowest_request,omitempty"`
	Outcome        finding.Outcome `json:"outcome"`
	// TimedOut is set when the probe ran into the timeout.
	TimedOut bool `json:"timed_out,omitempty"`
}

// CompatLine is one registry against the compatibility table.
type CompatLine struct {
	Registry string `json:"registry"`
	Kind     string `json:"kind"`
	// Matrix is the table's name for the kind ("" when it has no row).
	Matrix   string `json:"matrix,omitempty"`
	Expected string `json:"expected"`
	Observed string `json:"observed"`
	// Agrees is nil when there is nothing to compare (no row, or a probe
	// that reached no verdict).
	Agrees   *bool  `json:"agrees"`
	LastSeen string `json:"last_seen,omitempty"`
}

// ProbeFailure is one probe that could not reach a verdict.
type ProbeFailure struct {
	Registry string `json:"registry"`
	// Cause is the kind of trouble: network, login, TLS, rate limit,
	// timeout, not a registry, or other.
	Cause   string       `json:"cause"`
	Code    finding.Code `json:"code"`
	Summary string       `json:"summary"`
}

// slowShare is the share of the timeout a registry may take before the
// timing check warns: past it, one bad minute turns into timeouts.
const slowShare = 4

// probeReport runs the probe of the targets, or reuses the one RunAll
// already ran for another step.
func (e *Engine) probeReport(ctx context.Context, r *run) (*probe.Report, bool) {
	targets, err := e.targets.probeTargets()
	if err != nil {
		r.res.Status = StatusFailed
		r.res.Error = err.Error()
		r.res.Summary = "A registry or image target is not valid: " + err.Error()
		return nil, false
	}
	if len(targets) == 0 {
		r.skip("No registry given: pass --registry HOST[/REPO] or --image REF, or set them in the start form.")
		return nil, false
	}
	if r.shared != nil && r.shared.probe != nil {
		rep := *r.shared.probe
		return &rep, true
	}
	rep, err := probe.Run(ctx, targets, e.probeOpts(r, len(targets))...)
	if err != nil && len(rep.Registries) == 0 {
		r.incomplete("Could not complete the probe: " + err.Error())
		r.res.Error = err.Error()
		return nil, false
	}
	if err != nil {
		r.res.Error = err.Error()
	}
	if r.shared != nil && err == nil {
		r.shared.probe = &rep
	}
	return &rep, true
}

// verdictCounts sums up a report: "1 supported, 3 unsupported".
func verdictCounts(rep probe.Report) string {
	count := map[probe.Verdict]int{}
	for _, res := range rep.Registries {
		count[res.ReferrersAPI]++
	}
	var parts []string
	for _, v := range []probe.Verdict{probe.Supported, probe.Unsupported, probe.Unknown} {
		if count[v] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", count[v], v))
		}
	}
	return strings.Join(parts, ", ")
}

// incompleteRegistries lists the registries whose probe reached no verdict.
func incompleteRegistries(rep probe.Report) []string {
	var out []string
	for _, res := range rep.Registries {
		if res.Outcome() == finding.OutcomeIncomplete {
			out = append(out, res.Registry)
		}
	}
	return out
}

func (e *Engine) runProbe(ctx context.Context, r *run) {
	rep, ok := e.probeReport(ctx, r)
	if !ok {
		return
	}
	r.res.Probe = rep
	worst := finding.OutcomeOK
	for _, res := range rep.Registries {
		worst = worseOutcome(worst, res.Outcome())
		for _, f := range res.Findings {
			f.Summary = res.Registry + ": " + f.Summary
			r.res.Findings = append(r.res.Findings, f)
		}
	}
	r.res.Status = statusFromOutcome(worst)
	summary := fmt.Sprintf("%s probed: %s.", human.Count(len(rep.Registries), "registry"), verdictCounts(*rep))
	if stuck := incompleteRegistries(*rep); len(stuck) > 0 {
		r.incomplete(fmt.Sprintf("%s Could not reach a verdict for %s.", summary, someOf(stuck, 6)))
		return
	}
	r.res.Summary = summary
}

// worseOutcome is the worse of two outcomes.
func worseOutcome(a, b finding.Outcome) finding.Outcome {
	rank := map[finding.Outcome]int{finding.OutcomeOK: 0, finding.OutcomeWarn: 1, finding.OutcomeFailed: 2, finding.OutcomeIncomplete: 3}
	if rank[b] > rank[a] {
		return b
	}
	return a
}

// runTiming times every registry's probe against the timeout and names
// the slowest.
func (e *Engine) runTiming(ctx context.Context, r *run) {
	rep, ok := e.probeReport(ctx, r)
	if !ok {
		return
	}
	r.res.Probe = rep
	timeout := e.timeout()
	tr := &TimingReport{TimeoutMS: timeout.Milliseconds()}
	for _, res := range rep.Registries {
		t := RegistryTiming{Registry: res.Registry, TotalMS: res.ProbeMS, Requests: len(res.Exchanges), Outcome: res.Outcome()}
		for _, ex := range res.Exchanges {
			if ex.DurationMS >= t.SlowestMS {
				t.SlowestMS, t.SlowestRequest = ex.DurationMS, ex.Method+" "+ex.Path
			}
		}
		for _, f := range res.Findings {
			if f.Code == finding.Timeout {
				t.TimedOut = true
			}
		}
		tr.Registries = append(tr.Registries, t)
	}
	sort.SliceStable(tr.Registries, func(i, j int) bool { return tr.Registries[i].TotalMS > tr.Registries[j].TotalMS })
	r.res.Timing = tr
	if len(tr.Registries) == 0 {
		r.res.Summary = "Nothing was timed."
		return
	}
	slow := tr.Registries[0]
	tr.Slowest = slow.Registry
	for _, t := range tr.Registries {
		switch {
		case t.TimedOut:
			r.res.Findings = append(r.res.Findings, finding.Finding{Severity: finding.SeverityError, Code: finding.Timeout,
				Summary:  fmt.Sprintf("%s did not answer within the %s timeout", t.Registry, timeout),
				Cause:    "The registry, or the network to it, is slower than the limit allows; the probe reached no verdict.",
				Remedy:   finding.Timeout.Remedy(),
				Evidence: fmt.Sprintf("%s over %s; slowest: %s took %s", human.Millis(t.TotalMS), human.Count(t.Requests, "request"), t.SlowestRequest, human.Millis(t.SlowestMS))})
		case t.TotalMS*slowShare >= timeout.Milliseconds():
			r.res.Findings = append(r.res.Findings, finding.Finding{Severity: finding.SeverityWarn, Code: finding.SlowRegistry,
				Summary:  fmt.Sprintf("%s took %s, over a quarter of the %s timeout", t.Registry, human.Millis(t.TotalMS), timeout),
				Cause:    "Discovery makes many more requests than a probe (pages, tags, referrers of referrers); at this speed it runs into the timeout.",
				Remedy:   finding.SlowRegistry.Remedy(),
				Evidence: fmt.Sprintf("slowest request: %s took %s", t.SlowestRequest, human.Millis(t.SlowestMS))})
		}
	}
	summary := fmt.Sprintf("Slowest: %s, %s over %s (timeout %s).", slow.Registry, human.Millis(slow.TotalMS),
		human.Count(slow.Requests, "request"), timeout)
	var then []string
	for _, t := range tr.Registries[1:min(3, len(tr.Registries))] {
		then = append(then, t.Registry+" "+human.Millis(t.TotalMS))
	}
	if len(then) > 0 {
		summary += " Then " + strings.Join(then, ", ") + "."
	}
	if rest := len(tr.Registries) - 3; rest > 0 {
		summary += fmt.Sprintf(" The other %s took %s or less.", human.Count(rest, "registry"), human.Millis(tr.Registries[3].TotalMS))
	}
	r.res.Summary = summary
	// A registry that timed out is what this check looks for: the check
	// itself completed, so it fails rather than stays incomplete.
	r.res.Status = statusFrom(r.res.Findings)
}

// runCompat lays each registry's observed verdict beside what the
// compatibility table expects of its kind.
func (e *Engine) runCompat(ctx context.Context, r *run) {
	rep, ok := e.probeReport(ctx, r)
	if !ok {
		return
	}
	r.res.Probe = rep
	var differ, noRow, undecided []string
	for _, res := range rep.Registries {
		line := CompatLine{Registry: res.Registry, Kind: res.Kind, Expected: "-", Observed: string(res.ReferrersAPI)}
		if x := res.Expected; x != nil {
			line.Matrix, line.Expected, line.LastSeen = x.Name, x.ReferrersAPI, x.LastSeen
			if x.Since != "" {
				line.Expected += " since " + x.Since
			}
			line.Agrees = x.Matches
		} else {
			noRow = append(noRow, res.Registry)
		}
		switch {
		case res.ReferrersAPI == probe.Unknown:
			line.Agrees = nil
			undecided = append(undecided, res.Registry)
		case line.Agrees != nil && !*line.Agrees:
			differ = append(differ, res.Registry)
			r.res.Findings = append(r.res.Findings, finding.Finding{Severity: finding.SeverityWarn, Code: finding.ExpectationMismatch,
				Summary: fmt.Sprintf("%s: the table expects %s (%s, last seen %s), the probe observed %s", res.Registry, line.Expected, line.Matrix, line.LastSeen, line.Observed),
				Cause:   "The registry's version or configuration differs from the one the table was written for; the probe is what is true now.",
				Remedy:  finding.ExpectationMismatch.Remedy()})
		}
		r.res.Compat = append(r.res.Compat, line)
	}
	n := len(rep.Registries)
	var parts []string
	switch {
	case len(differ) > 0:
		parts = append(parts, fmt.Sprintf("%d of %s differ from the compatibility table: %s.", len(differ), human.Count(n, "registry"), someOf(differ, 6)))
	default:
		parts = append(parts, fmt.Sprintf("No registry differs from the compatibility table (%s compared).", human.Count(n-len(noRow)-len(undecided), "registry")))
	}
	if len(noRow) > 0 {
		parts = append(parts, fmt.Sprintf("No row for %s.", someOf(noRow, 3)))
	}
	if len(undecided) > 0 {
		parts = append(parts, fmt.Sprintf("No verdict to compare for %s.", someOf(undecided, 3)))
	}
	r.res.Summary = strings.Join(parts, " ")
	r.res.Status = statusFrom(r.res.Findings)
}

// runProbeFailures names the probes that could not reach a verdict and
// what stopped each: network, login, TLS, rate limit, timeout.
func (e *Engine) runProbeFailures(ctx context.Context, r *run) {
	rep, ok := e.probeReport(ctx, r)
	if !ok {
		return
	}
	r.res.Probe = rep
	for _, res := range rep.Registries {
		if res.Outcome() != finding.OutcomeIncomplete {
			continue
		}
		f := ProbeFailure{Registry: res.Registry, Cause: "other", Code: res.ReferrersReason, Summary: res.Error}
		if lead := leadFinding(res.Findings); lead != nil {
			f.Code, f.Summary = lead.Code, lead.Summary
			r.res.Findings = append(r.res.Findings, finding.Finding{Severity: finding.SeverityError, Code: lead.Code,
				Summary: res.Registry + ": " + lead.Summary, Cause: lead.Cause, Remedy: lead.Remedy, Evidence: lead.Evidence})
		}
		f.Cause = failureCause(f.Code)
		r.res.Failures = append(r.res.Failures, f)
	}
	n := len(rep.Registries)
	if len(r.res.Failures) == 0 {
		r.res.Summary = fmt.Sprintf("Every probe reached a verdict (%s): nothing failed to probe.", human.Count(n, "registry"))
		r.res.Status = StatusPassed
		return
	}
	var names []string
	for _, f := range r.res.Failures {
		names = append(names, f.Registry+" ("+f.Cause+")")
	}
	r.incomplete(fmt.Sprintf("%d of %s could not be probed: %s.", len(r.res.Failures), human.Count(n, "registry"), someOf(names, 6)))
}

// someOf names the first n items and counts the rest, so that a summary
// stays a sentence (the table under it names every one).
func someOf(items []string, n int) string {
	if len(items) <= n {
		return strings.Join(items, ", ")
	}
	return strings.Join(items[:n], ", ") + " and " + strconv.Itoa(len(items)-n) + " more"
}

// leadFinding is the worst finding, the first of equals.
func leadFinding(fs []finding.Finding) *finding.Finding {
	worst := finding.Worst(fs)
	for i := range fs {
		if fs[i].Severity == worst {
			return &fs[i]
		}
	}
	return nil
}

// failureCause names the kind of trouble a code stands for.
func failureCause(c finding.Code) string {
	switch c {
	case finding.TLSUnknownAuthority, finding.TLSCertificateExpired, finding.TLSCertificateInvalid, finding.TLSWrongHost, finding.TLSPlainHTTPServer, finding.PlainHTTPToTLSServer:
		return "TLS"
	case finding.AuthFailed, finding.ReferrersAuthRefused, finding.AuthRefused:
		return "login"
	case finding.RateLimited, finding.ReferrersRateLimited, finding.RateLimitLow:
		return "rate limit"
	case finding.Timeout:
		return "timeout"
	case finding.DNSFailure, finding.ConnectionRefused, finding.NetworkError, finding.TooManyRedirects:
		return "network"
	case finding.NotARegistry:
		return "not a registry"
	}
	return "other"
}
