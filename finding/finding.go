// Package finding is refdoctor's shared vocabulary: a Finding (a check
// that did not come out clean, with its cause and the fix), its Severity,
// the Outcome that sums up a result, the typed Code of every finding and
// validation problem with its remedy, and the one categoriser of artifact
// types. It is a leaf: it imports nothing of the project, and every other
// package uses it.
package finding

// Severity orders findings from informative to blocking.
type Severity string

const (
	SeverityInfo  Severity = "info"
	SeverityWarn  Severity = "warn"
	SeverityError Severity = "error"
)

func (s Severity) rank() int {
	switch s {
	case SeverityInfo:
		return 1
	case SeverityWarn:
		return 2
	case SeverityError:
		return 3
	}
	return 0
}

// Finding is a check that did not come out clean: data for the operator,
// not a Go error. Errors are kept for when refdoctor itself cannot work.
type Finding struct {
	Severity Severity `json:"severity"`
	Code     Code     `json:"code"`
	Summary  string   `json:"summary"`
	Cause    string   `json:"cause,omitempty"`
	Remedy   string   `json:"remedy,omitempty"`
	Evidence string   `json:"evidence,omitempty"`
}

// New is a finding with the code's default remedy.
func New(sev Severity, code Code, summary string) Finding {
	return Finding{Severity: sev, Code: code, Summary: summary, Remedy: code.Remedy()}
}

// NextStep is what the operator should do: the finding's own remedy, else
// its code's.
func (f Finding) NextStep() string {
	if f.Remedy != "" {
		return f.Remedy
	}
	return f.Code.Remedy()
}

// Worst returns the highest severity among findings ("" when none).
func Worst(findings []Finding) Severity {
	var worst Severity
	for _, f := range findings {
		if f.Severity.rank() > worst.rank() {
			worst = f.Severity
		}
	}
	return worst
}

// Has reports whether a finding with code is among findings.
func Has(findings []Finding, code Code) bool {
	for _, f := range findings {
		if f.Code == code {
			return true
		}
	}
	return false
}

// Outcome sums up a result for exit codes and status columns.
type Outcome string

const (
	OutcomeOK   Outcome = "ok"
	OutcomeWarn Outcome = "warn"
	// OutcomeFailed: a check failed (exit 1).
	OutcomeFailed Outcome = "fail"
	// OutcomeIncomplete: the check could not be completed, so nothing it
	// would have said can be trusted (exit 3).
	OutcomeIncomplete Outcome = "incomplete"
)

func (o Outcome) rank() int {
	switch o {
	case OutcomeOK:
		return 1
	case OutcomeWarn:
		return 2
	case OutcomeFailed:
		return 3
	case OutcomeIncomplete:
		return 4
	}
	return 0
}

// Exit codes shared by every command.
const (
	ExitOK         = 0
	ExitCheckFail  = 1
	ExitUsage      = 2
	ExitIncomplete = 3
)

// ExitCode is the process exit code for an outcome: 3 for incomplete, 1
// for failed, 0 otherwise (a warning does not fail a command).
func (o Outcome) ExitCode() int {
	switch o {
	case OutcomeIncomplete:
		return ExitIncomplete
	case OutcomeFailed:
		return ExitCheckFail
	}
	return ExitOK
}

// WorstOutcome is the outcome that decides a set of results: incomplete
// beats failed beats warn beats ok.
func WorstOutcome(outcomes ...Outcome) Outcome {
	worst := OutcomeOK
	for _, o := range outcomes {
		if o.rank() > worst.rank() {
			worst = o
		}
	}
	return worst
}

// OutcomeOf sums up findings: failed when an error stands, warn when a
// warning does, else ok. Callers that know a read was incomplete say so
// themselves; findings alone cannot tell.
func OutcomeOf(findings []Finding) Outcome {
	switch Worst(findings) {
	case SeverityError:
		return OutcomeFailed
	case SeverityWarn:
		return OutcomeWarn
	}
	return OutcomeOK
}
