// Package runbook is refdoctor's troubleshooting runbook as data and the
// engine that runs it.
//
// The runbook (runbook.toml, embedded) holds the symptom table, the
// registry compatibility table, the diagnosing steps, the common issues,
// the validation commands and the escalation checklist, together with the
// corrections to the older runbook it replaces. It is decoded strictly and
// validated as a whole, so a step that points nowhere or a command template
// that does not render is caught by the tests, not by an operator at 3 a.m.
//
// Each step names a check (probe, discover, tags, bundle-validate, logs,
// metrics, diag or none). The Engine runs that check through the real
// engine packages and returns a Result with status, findings and payload;
// the CLI prints it and the TUI renders it. This package also reads export
// logs back (ReadLog) and writes support bundles (CollectDiag). Like every
// engine package it never imports the UI or any charm module.
package runbook

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"text/template"

	"github.com/BurntSushi/toml"

	"github.com/refdoctor/refdoctor/probe"
)

//go:embed runbook.toml
var bookTOML []byte

// ErrInvalid marks a runbook that does not decode or does not hold
// together.
var ErrInvalid = errors.New("invalid runbook")

// Sections in the order the runbook presents them.
const (
	SectionDiagnose = "diagnose"
	SectionIssue    = "issue"
	SectionValidate = "validate"
	SectionEscalate = "escalate"
)

// Sections lists the step sections in display order.
func Sections() []string {
	return []string{SectionDiagnose, SectionIssue, SectionValidate, SectionEscalate}
}

// Check kinds a step can name.
const (
	CheckProbe          = "probe"
	CheckTiming         = "timing"
	CheckCompat         = "compat"
	CheckProbeFailures  = "probe-failures"
	CheckDiscover       = "discover"
	CheckTags           = "tags"
	CheckBundleValidate = "bundle-validate"
	CheckLogs           = "logs"
	CheckMetrics        = "metrics"
	CheckDiag           = "diag"
	CheckCompare        = "compare"
	CheckNone           = "none"
)

// CheckKinds lists every check kind the engine can run.
func CheckKinds() []string {
	return []string{CheckProbe, CheckTiming, CheckCompat, CheckProbeFailures, CheckDiscover, CheckTags, CheckBundleValidate, CheckLogs, CheckMetrics, CheckDiag, CheckCompare, CheckNone}
}

// Book is the whole runbook.
type Book struct {
	Title         string       `toml:"title" json:"title"`
	Corrections   []Correction `toml:"correction" json:"corrections"`
	Symptoms      []Symptom    `toml:"symptom" json:"symptoms"`
	Compatibility []CompatRow  `toml:"compatibility" json:"compatibility"`
	Steps         []Step       `toml:"step" json:"steps"`
	Escalation    Escalation   `toml:"escalation" json:"escalation"`
}

// Correction is one place where the older runbook is wrong, with the truth
// and where it comes from. Steps list the corrections shown at them.
type Correction struct {
	ID        string `toml:"id" json:"id"`
	Topic     string `toml:"topic" json:"topic"`
	OlderSays string `toml:"older_says" json:"older_says"`
	Truth     string `toml:"truth" json:"truth"`
	Source    string `toml:"source" json:"source"`
}

// Symptom is one row of the quick-reference table.
type Symptom struct {
	ID          string `toml:"id" json:"id"`
	Symptom     string `toml:"symptom" json:"symptom"`
	LikelyCause string `toml:"likely_cause" json:"likely_cause"`
	Solution    string `toml:"solution" json:"solution"`
	// Step is the step this symptom leads to.
	Step string `toml:"step" json:"step"`
}

// CompatRow is one registry of the compatibility table: what the older
// runbook claimed and what is true as last seen.
type CompatRow struct {
	Registry string `toml:"registry" json:"registry"`
	// Kind is the key of the registry's row in probe/matrix.toml.
	Kind      string `toml:"kind" json:"kind"`
	OlderSaid string `toml:"older_said" json:"older_said"`
	Now       string `toml:"now" json:"now"`
	LastSeen  string `toml:"last_seen" json:"last_seen"`
	Fallback  string `toml:"fallback" json:"fallback"`
	Notes     string `toml:"notes" json:"notes,omitempty"`
}

// CompatibilityTable is the book's compatibility table followed by a row
// for every kind of the known-registry matrix that the older runbook did
// not list, so that the table covers every kind refdoctor knows.
func (b *Book) CompatibilityTable() []CompatRow {
	rows := slices.Clone(b.Compatibility)
	listed := map[string]bool{}
	for _, r := range rows {
		listed[r.Kind] = true
	}
	for _, k := range probe.DefaultMatrix().Kinds {
		if listed[k.Key] {
			continue
		}
		now := map[string]string{
			"supported":   "Referrers API supported",
			"unsupported": "No referrers API",
			"varies":      "Referrers API varies by version and setup",
		}[k.ReferrersAPI]
		if k.Since != "" {
			now += " since " + k.Since
		}
		fallback := "no"
		if k.FallbackTags {
			fallback = "yes"
		}
		rows = append(rows, CompatRow{Registry: k.Name, Kind: k.Key, OlderSaid: "(not in the older runbook)",
			Now: now, LastSeen: k.LastSeen, Fallback: fallback, Notes: k.Notes})
	}
	return rows
}

// Step is one step of the runbook: what to read, what refdoctor checks,
// and the commands an operator can copy.
type Step struct {
	ID    string `toml:"id" json:"id"`
	Title string `toml:"title" json:"title"`
	// Section is diagnose, issue, validate or escalate.
	Section     string   `toml:"section" json:"section"`
	Summary     string   `toml:"summary" json:"summary"`
	Explanation string   `toml:"explanation" json:"explanation"`
	Symptoms    []string `toml:"symptoms" json:"symptoms"`
	Causes      []string `toml:"causes" json:"causes"`
	Solutions   []string `toml:"solutions" json:"solutions"`
	// Corrections are Correction IDs shown at this step.
	Corrections []string  `toml:"corrections" json:"corrections"`
	Check       Check     `toml:"check" json:"check"`
	Commands    []Command `toml:"command" json:"commands"`
	// Next are the IDs of the steps that usually follow.
	Next []string `toml:"next" json:"next"`
}

// Check is what the engine runs for a step.
type Check struct {
	// Kind is one of CheckKinds.
	Kind string `toml:"kind" json:"kind"`
	// Platforms makes a discover check look at every platform manifest.
	Platforms bool `toml:"platforms" json:"platforms,omitempty"`
	// CheckReferrers makes a bundle-validate check verify referrers too.
	CheckReferrers bool `toml:"check_referrers" json:"check_referrers,omitempty"`
}

// Command is a copyable command line; Template is text/template over Vars.
type Command struct {
	Title    string `toml:"title" json:"title"`
	Template string `toml:"template" json:"template"`
	// Lang is what the text is: "" or "sh" for a shell command, else what
	// it is written in ("toml" for a config snippet, "promql" for a
	// query), which is never shown with a shell prompt.
	Lang string `toml:"lang" json:"lang,omitempty"`
}

// Languages a command may be written in.
var langs = []string{"", "sh", "toml", "promql"}

// RenderedCommand is a command filled in with the operator's targets.
type RenderedCommand struct {
	Title string `json:"title"`
	Text  string `json:"text"`
	Lang  string `json:"lang,omitempty"`
}

// Shell tells whether the command is typed at a shell prompt.
func (c RenderedCommand) Shell() bool { return c.Lang == "" || c.Lang == "sh" }

// Escalation is the checklist for when the runbook did not help.
type Escalation struct {
	Collect []string `toml:"collect" json:"collect"`
	Ticket  []string `toml:"ticket" json:"ticket"`
}

// Load returns the embedded runbook. It is parsed on each call, so callers
// may change their copy freely.
func Load() (*Book, error) {
	return Parse(bookTOML)
}

// Parse decodes a runbook strictly (an unknown key is an error naming it)
// and validates it.
func Parse(data []byte) (*Book, error) {
	var b Book
	md, err := toml.NewDecoder(bytes.NewReader(data)).Decode(&b)
	if err != nil {
		var perr toml.ParseError
		if errors.As(err, &perr) {
			return nil, fmt.Errorf("%w: line %d: %s", ErrInvalid, perr.Position.Line, perr.Message)
		}
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if undecoded := md.Undecoded(); len(undecoded) > 0 {
		names := make([]string, len(undecoded))
		for i, k := range undecoded {
			names[i] = fmt.Sprintf("%q", k.String())
		}
		return nil, fmt.Errorf("%w: unknown key %s", ErrInvalid, strings.Join(names, ", "))
	}
	for i := range b.Steps {
		// Explanations are written as wrapped prose in TOML; unwrap them
		// so that every display can wrap to its own width.
		b.Steps[i].Explanation = unwrap(b.Steps[i].Explanation)
	}
	if err := b.Validate(); err != nil {
		return nil, err
	}
	return &b, nil
}

// unwrap joins the lines of each paragraph; blank lines separate
// paragraphs.
func unwrap(s string) string {
	var paras []string
	for _, p := range regexp.MustCompile(`\n[ \t]*\n`).Split(strings.TrimSpace(s), -1) {
		if p = strings.Join(strings.Fields(p), " "); p != "" {
			paras = append(paras, p)
		}
	}
	return strings.Join(paras, "\n\n")
}

// Step returns the step with this ID.
func (b *Book) Step(id string) (Step, bool) {
	for _, s := range b.Steps {
		if s.ID == id {
			return s, true
		}
	}
	return Step{}, false
}

// Correction returns the correction with this ID.
func (b *Book) Correction(id string) (Correction, bool) {
	for _, c := range b.Corrections {
		if c.ID == id {
			return c, true
		}
	}
	return Correction{}, false
}

// CorrectionsFor returns the corrections shown at a step, in its order.
func (b *Book) CorrectionsFor(s Step) []Correction {
	out := make([]Correction, 0, len(s.Corrections))
	for _, id := range s.Corrections {
		if c, ok := b.Correction(id); ok {
			out = append(out, c)
		}
	}
	return out
}

// StepIDs lists every step ID in book order.
func (b *Book) StepIDs() []string {
	ids := make([]string, len(b.Steps))
	for i, s := range b.Steps {
		ids[i] = s.ID
	}
	return ids
}

// StepsIn returns the steps of one section in book order.
func (b *Book) StepsIn(section string) []Step {
	var out []Step
	for _, s := range b.Steps {
		if s.Section == section {
			out = append(out, s)
		}
	}
	return out
}

var idPattern = regexp.MustCompile(`^[a-z0-9]+(?:-[a-z0-9]+)*$`)

// Validate checks the book as a whole: IDs are well formed and unique,
// every symptom leads to an existing step, every step's check kind exists,
// every Next and Corrections ID exists, every correction is shown somewhere,
// every compatibility row names a kind of the known-registry matrix, and
// every command template parses and renders both with full and with empty
// targets.
func (b *Book) Validate() error {
	var problems []string
	bad := func(format string, a ...any) { problems = append(problems, fmt.Sprintf(format, a...)) }
	if strings.TrimSpace(b.Title) == "" {
		bad("the book has no title")
	}
	unique := func(kind string, ids []string) map[string]bool {
		seen := map[string]bool{}
		for i, id := range ids {
			switch {
			case !idPattern.MatchString(id):
				bad("%s %d: id %q is not lowercase words joined by dashes", kind, i, id)
			case seen[id]:
				bad("%s id %q is used twice", kind, id)
			}
			seen[id] = true
		}
		return seen
	}
	corrIDs := make([]string, len(b.Corrections))
	for i, c := range b.Corrections {
		corrIDs[i] = c.ID
		if c.Topic == "" || c.OlderSays == "" || c.Truth == "" || c.Source == "" {
			bad("correction %q needs topic, older_says, truth and source", c.ID)
		}
	}
	corrections := unique("correction", corrIDs)
	stepIDs := b.StepIDs()
	steps := unique("step", stepIDs)
	symIDs := make([]string, len(b.Symptoms))
	for i, s := range b.Symptoms {
		symIDs[i] = s.ID
		if s.Symptom == "" || s.LikelyCause == "" || s.Solution == "" {
			bad("symptom %q needs symptom, likely_cause and solution", s.ID)
		}
		if !steps[s.Step] {
			bad("symptom %q leads to step %q, which does not exist", s.ID, s.Step)
		}
	}
	unique("symptom", symIDs)
	if len(b.Steps) == 0 {
		bad("the book has no steps")
	}
	if len(b.Symptoms) == 0 {
		bad("the book has no symptoms")
	}
	matrix := probe.DefaultMatrix()
	for i, r := range b.Compatibility {
		if r.Registry == "" || r.OlderSaid == "" || r.Now == "" || r.LastSeen == "" || r.Fallback == "" {
			bad("compatibility row %d (%q) needs registry, older_said, now, last_seen and fallback", i, r.Registry)
		}
		if _, ok := matrix.Get(r.Kind); !ok {
			bad("compatibility row %q: kind %q is not in the known-registry matrix", r.Registry, r.Kind)
		}
	}
	shown := map[string]bool{}
	sample := sampleTargets()
	for _, s := range b.Steps {
		if s.Title == "" || s.Summary == "" {
			bad("step %q needs a title and a summary", s.ID)
		}
		if !slices.Contains(Sections(), s.Section) {
			bad("step %q: section %q is not one of %s", s.ID, s.Section, strings.Join(Sections(), ", "))
		}
		if !slices.Contains(CheckKinds(), s.Check.Kind) {
			bad("step %q: check kind %q is not one of %s", s.ID, s.Check.Kind, strings.Join(CheckKinds(), ", "))
		}
		if s.Check.Platforms && s.Check.Kind != CheckDiscover && s.Check.Kind != CheckCompare {
			bad("step %q: platforms only applies to a discover or compare check", s.ID)
		}
		if s.Check.CheckReferrers && s.Check.Kind != CheckBundleValidate {
			bad("step %q: check_referrers only applies to a bundle-validate check", s.ID)
		}
		for _, n := range s.Next {
			if !steps[n] {
				bad("step %q: next step %q does not exist", s.ID, n)
			}
			if n == s.ID {
				bad("step %q lists itself as next", s.ID)
			}
		}
		for _, c := range s.Corrections {
			if !corrections[c] {
				bad("step %q: correction %q does not exist", s.ID, c)
			}
			shown[c] = true
		}
		for i, c := range s.Commands {
			if c.Title == "" || strings.TrimSpace(c.Template) == "" {
				bad("step %q: command %d needs a title and a template", s.ID, i)
			}
			if !slices.Contains(langs, c.Lang) {
				bad("step %q: command %d: lang %q is not one of sh, toml, promql", s.ID, i, c.Lang)
			}
		}
		for _, t := range []Targets{sample, {}} {
			if _, err := s.Render(t); err != nil {
				bad("step %q: %v", s.ID, err)
				break
			}
		}
	}
	for _, c := range b.Corrections {
		if !shown[c.ID] {
			bad("correction %q is not shown at any step", c.ID)
		}
	}
	if len(b.Escalation.Collect) == 0 || len(b.Escalation.Ticket) == 0 {
		bad("the escalation checklist needs collect and ticket items")
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: %s", ErrInvalid, strings.Join(problems, "; "))
	}
	return nil
}

// sampleTargets are full targets that every template must render with.
func sampleTargets() Targets {
	return Targets{
		Registries: []string{"registry.example.com"},
		Image:      "registry.example.com/team/app@sha256:" + strings.Repeat("ab", 32),
		Source:     "source.example.com/team/app@sha256:" + strings.Repeat("ab", 32),
		Bundle:     "bundle.tgz",
		LogFile:    "export center.log",
		PlainHTTP:  []string{"registry.example.com"},
	}
}

// templateFuncs are the helpers templates may call.
var templateFuncs = template.FuncMap{"q": shellQuote}

// safeShellWord is what a shell passes through unquoted.
var safeShellWord = regexp.MustCompile(`^[A-Za-z0-9@%_+=:,./-]+$`)

// shellQuote quotes s for a POSIX shell when it needs quoting, so that a
// path with spaces or a placeholder like <bundle.tgz> stays one word and
// never turns into a redirection.
func shellQuote(s string) string {
	if safeShellWord.MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Render fills the step's commands in with the operator's targets. Values
// that are missing render as placeholders such as <registry>.
func (s Step) Render(t Targets) ([]RenderedCommand, error) {
	vars := t.Vars()
	out := make([]RenderedCommand, 0, len(s.Commands))
	for i, c := range s.Commands {
		tmpl, err := template.New(fmt.Sprintf("%s/%d", s.ID, i)).Funcs(templateFuncs).Option("missingkey=error").Parse(c.Template)
		if err != nil {
			return nil, fmt.Errorf("command %q: %w", c.Title, err)
		}
		var buf bytes.Buffer
		if err := tmpl.Execute(&buf, vars); err != nil {
			return nil, fmt.Errorf("command %q: %w", c.Title, err)
		}
		out = append(out, RenderedCommand{Title: c.Title, Text: strings.TrimSpace(buf.String()), Lang: c.Lang})
	}
	return out, nil
}
