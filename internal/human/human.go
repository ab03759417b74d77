// Package human writes numbers the way refdoctor shows them to people:
// byte sizes, and counts with their noun in the right number ("1 request",
// "2 requests"). The CLI, the TUI and the runbook's summaries share it so
// that they all say the same thing the same way.
package human

import (
	"strconv"
	"strings"
	"time"
)

// Size writes a byte count with one decimal in the largest unit that
// keeps it at or above 1: 512B, 17.1K, 3.0M, 1.2G (binary units).
func Size(n int64) string {
	switch {
	case n >= 1<<30:
		return strconv.FormatFloat(float64(n)/(1<<30), 'f', 1, 64) + "G"
	case n >= 1<<20:
		return strconv.FormatFloat(float64(n)/(1<<20), 'f', 1, 64) + "M"
	case n >= 1<<10:
		return strconv.FormatFloat(float64(n)/(1<<10), 'f', 1, 64) + "K"
	}
	return strconv.FormatInt(n, 10) + "B"
}

// irregular are the plurals that are not the noun plus "s".
var irregular = map[string]string{
	"registry":   "registries",
	"entry":      "entries",
	"repository": "repositories",
	"discovery":  "discoveries",
	"this":       "these",
	"is":         "are",
	"was":        "were",
}

// Plural is noun in the number n asks for: the noun itself for 1, its
// plural otherwise (0 registries, 1 registry, 2 registries). For a phrase,
// the last word is made plural ("referrer tag" -> "referrer tags").
func Plural(n int, noun string) string {
	if n == 1 || n == -1 {
		return noun
	}
	head, last := "", noun
	if i := strings.LastIndexByte(noun, ' '); i >= 0 {
		head, last = noun[:i+1], noun[i+1:]
	}
	if p, ok := irregular[last]; ok {
		return head + p
	}
	switch {
	case strings.HasSuffix(last, "s"), strings.HasSuffix(last, "x"), strings.HasSuffix(last, "sh"), strings.HasSuffix(last, "ch"):
		return head + last + "es"
	}
	return head + last + "s"
}

// Count is n followed by noun in the right number: "1 request",
// "3 requests", "0 subjects".
func Count(n int, noun string) string {
	return strconv.Itoa(n) + " " + Plural(n, noun)
}

// Count64 is Count for an int64.
func Count64(n int64, noun string) string {
	return strconv.FormatInt(n, 10) + " " + Plural(int(min(n, 2)), noun)
}

// Millis writes a duration given in milliseconds: "850ms" under a
// second, "4.1s" under a minute, then "2m5s".
func Millis(ms int64) string {
	switch {
	case ms < 1000:
		return strconv.FormatInt(ms, 10) + "ms"
	case ms < 60_000:
		return strconv.FormatFloat(float64(ms)/1000, 'f', 1, 64) + "s"
	}
	return (time.Duration(ms/1000) * time.Second).String()
}
