package probe

// Severity orders findings from informative to blocking.
type Severity string

const (
	SeverityInfo  Severity = "info"
	SeverityWarn  Severity = "warn"
	SeverityError Severity = "error"
)

// Finding is a check that did not come out clean: data for the operator,
// not a Go error. Errors are kept for when refdoctor itself cannot work.
type Finding struct {
	Severity Severity `json:"severity"`
	Code     string   `json:"code"`
	Summary  string   `json:"summary"`
	Cause    string   `json:"cause,omitempty"`
	Remedy   string   `json:"remedy,omitempty"`
	Evidence string   `json:"evidence,omitempty"`
}

// Worst returns the highest severity among findings ("" when none).
func Worst(findings []Finding) Severity {
	var worst Severity
	rank := map[Severity]int{"": 0, SeverityInfo: 1, SeverityWarn: 2, SeverityError: 3}
	for _, f := range findings {
		if rank[f.Severity] > rank[worst] {
			worst = f.Severity
		}
	}
	return worst
}
