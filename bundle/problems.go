package bundle

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/refdoctor/refdoctor/finding"
)

// Bounds on what a report holds, whatever the bundle: a hostile archive
// can hold millions of identical problems, and a report of millions of
// lines helps no operator and costs memory.
const (
	// MaxProblemsPerCode is how many distinct problems of one code a
	// report lists one by one; further ones are folded into one problem
	// that counts them and names the first few.
	MaxProblemsPerCode = 20
	// maxProblemExamples is how many folded occurrences a problem names.
	maxProblemExamples = 5
	// maxFieldBytes bounds Path, Expected and Actual; maxMessageBytes
	// bounds Message. Both hold text taken from the archive.
	maxFieldBytes   = 256
	maxMessageBytes = 1024
)

// problemKey is one distinct cause: the same code at the same place for
// the same reason.
type problemKey struct {
	code          finding.Code
	path, message string
}

// problemSet keeps a report's problems bounded: exact repeats of a cause
// are counted on the first, and past MaxProblemsPerCode distinct problems
// of a code the rest are counted on one overflow problem.
type problemSet struct {
	list     []Problem
	exact    map[problemKey]int
	perCode  map[finding.Code]int
	overflow map[finding.Code]int
}

func newProblemSet() *problemSet {
	return &problemSet{list: []Problem{}, exact: map[problemKey]int{}, perCode: map[finding.Code]int{}, overflow: map[finding.Code]int{}}
}

// add records p and reports whether it is listed as a new problem (false
// when it was counted on an earlier one). A repeat allocates nothing.
func (s *problemSet) add(p Problem) bool {
	key := problemKey{p.Code, prefix(p.Path, maxFieldBytes), prefix(p.Message, maxMessageBytes)}
	if i, ok := s.exact[key]; ok {
		q := &s.list[i]
		q.Count++
		if ex := exampleOf(p); len(q.More) < maxProblemExamples && ex != "" && prefix(ex, maxFieldBytes) != prefix(exampleOf(*q), maxFieldBytes) {
			q.More = append(q.More, clip(ex, maxFieldBytes))
		}
		return false
	}
	p.Path = clip(p.Path, maxFieldBytes)
	p.Expected = clip(p.Expected, maxFieldBytes)
	p.Actual = clip(p.Actual, maxFieldBytes)
	p.Message = clip(p.Message, maxMessageBytes)
	p.Count = 1
	if s.perCode[p.Code] < MaxProblemsPerCode {
		s.perCode[p.Code]++
		s.exact[problemKey{p.Code, prefix(p.Path, maxFieldBytes), prefix(p.Message, maxMessageBytes)}] = len(s.list)
		s.list = append(s.list, p)
		return true
	}
	if i, ok := s.overflow[p.Code]; ok {
		q := &s.list[i]
		q.Count++
		if len(q.More) < maxProblemExamples && p.Path != "" {
			q.More = append(q.More, p.Path)
		}
		return false
	}
	o := Problem{Code: p.Code, Count: 1, Message: overflowMessage(p.Code, 1)}
	if p.Path != "" {
		o.More = []string{p.Path}
	}
	s.overflow[p.Code] = len(s.list)
	s.list = append(s.list, o)
	return true
}

// prefix is the first n bytes of s, sharing its memory: for lookups only.
func prefix(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// problems is the list, with the overflow problems' counts in their
// messages.
func (s *problemSet) problems() []Problem {
	for code, i := range s.overflow {
		s.list[i].Message = overflowMessage(code, s.list[i].Count)
	}
	return s.list
}

func overflowMessage(code finding.Code, n int) string {
	return fmt.Sprintf("%d more %s problem(s) beyond the first %d listed above; more names the first of them", n, code, MaxProblemsPerCode)
}

// exampleOf is what tells one occurrence of a cause from another: the
// value found, else the value expected.
func exampleOf(p Problem) string {
	if p.Actual != "" {
		return p.Actual
	}
	return p.Expected
}

// clip bounds text taken from an archive, keeping it valid UTF-8 and
// saying how long it was. The result never shares memory with s, so that
// a clipped field does not keep a large buffer alive.
func clip(s string, n int) string {
	if len(s) <= n {
		return strings.Clone(s)
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strings.Clone(s[:cut]) + fmt.Sprintf("… (%d bytes in all)", len(s))
}
