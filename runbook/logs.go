package runbook

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	"github.com/refdoctor/refdoctor/finding"
	"github.com/refdoctor/refdoctor/internal/human"
)

// MaxLogLine bounds how much of one log line ReadLog keeps; the rest of a
// longer line is skipped, so a log full of dumped bodies cannot exhaust
// memory.
const MaxLogLine = 64 << 10

// Referrers API verdicts as a log line states them.
const (
	LogAPISupported   = "supported"
	LogAPIUnsupported = "unsupported"
	LogAPIUnknown     = "unknown"
)

// LogReport is what an export log says about capability probes and
// discovery.
type LogReport struct {
	// Announced holds N of each "Probing N registries ..." line, in order.
	Announced []int      `json:"announced"`
	Probes    []LogProbe `json:"probes"`
	Failures  []LogLine  `json:"failures"`
	// Lines is the number of lines read; Truncated how many were longer
	// than MaxLogLine.
	Lines     int               `json:"lines"`
	Truncated int               `json:"truncated"`
	Findings  []finding.Finding `json:"findings"`
}

// LogProbe is one registry verdict line.
type LogProbe struct {
	Host string `json:"host"`
	// API is supported, unsupported or unknown (a failed probe).
	API     string `json:"api"`
	Version string `json:"version,omitempty"`
	ProbeMS int    `json:"probe_ms"`
	// Reason is why a failed probe failed, as logged.
	Reason string `json:"reason,omitempty"`
	// Cached is set when the verdict came from a capability cache
	// (cached=true), Age is how old it was then (age=...).
	Cached bool   `json:"cached,omitempty"`
	Age    string `json:"age,omitempty"`
	Level  string `json:"level"`
	Line   int    `json:"line"`
}

// LogLine is one line that reports a failure.
type LogLine struct {
	Line  int    `json:"line"`
	Level string `json:"level"`
	Text  string `json:"text"`
}

// Unknown reports how many probes could not reach a verdict.
func (r LogReport) Unknown() int {
	n := 0
	for _, p := range r.Probes {
		if p.API == LogAPIUnknown {
			n++
		}
	}
	return n
}

// The messages probe.Run logs (probe/probe.go) and the older exporter's
// equivalents; they are matched inside the message, whatever the format
// around it.
var (
	reAnnounce = regexp.MustCompile(`Probing (\d+) registries for OCI referrer capabilities`)
	reOCI11    = regexp.MustCompile(`Registry (\S+): OCI 1\.1 \(referrers API supported(.*)\)`)
	reOCI10    = regexp.MustCompile(`Registry (\S+): OCI 1\.0 \(using fallback tag discovery(.*)\)`)
	reFailed   = regexp.MustCompile(`Failed to probe capabilities for registry (\S+?):?(?:\s+(.*))?$`)
	reVersion  = regexp.MustCompile(`version=([^,)]*)`)
	reProbeMS  = regexp.MustCompile(`probe_ms=(\d+)`)
	reCached   = regexp.MustCompile(`cached=true(?:, age=(\w+))?`)
	// reDiscoverDone is discovery's own summary line; a failed or
	// incomplete outcome is a failure.
	reDiscoverDone = regexp.MustCompile(`Discovered \d+ referrers for .* outcome=(fail|incomplete)\b`)
	reDiscFailWord = regexp.MustCompile(`(?i)fail|error|timeout|timed out|\b429\b`)
	reBracketLevel = regexp.MustCompile(`\[(TRACE|DEBUG|INFO|WARN|WARNING|ERROR|FATAL)\]\s*(.*)$`)
	reSlogLevel    = regexp.MustCompile(`(?:^|\s)level=(\S+)`)
)

// ReadLog reads an export log as a stream and reports the capability
// probe lines, failed probes and failed discoveries in it, with findings.
// It understands slog text lines (level=WARN msg="..."), slog JSON lines
// and plain "[INFO] ..." lines. The error is only for a failed read.
func ReadLog(r io.Reader) (LogReport, error) {
	rep := LogReport{Announced: []int{}, Probes: []LogProbe{}, Failures: []LogLine{}, Findings: []finding.Finding{}}
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		raw, truncated, err := readBoundedLine(br, MaxLogLine)
		if len(raw) > 0 || err == nil {
			rep.Lines++
			if truncated {
				rep.Truncated++
			}
			rep.scan(rep.Lines, string(raw))
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return rep, fmt.Errorf("read log: %w", err)
		}
	}
	rep.findings()
	return rep, nil
}

// readBoundedLine returns the next line without its newline, keeping at
// most limit bytes and discarding the rest of a longer line.
func readBoundedLine(br *bufio.Reader, limit int) (line []byte, truncated bool, err error) {
	for {
		chunk, isPrefix, rerr := br.ReadLine()
		if rerr != nil {
			return line, truncated, rerr
		}
		if room := limit - len(line); room > 0 {
			if len(chunk) > room {
				chunk, truncated = chunk[:room], true
			}
			line = append(line, chunk...)
		} else if len(chunk) > 0 {
			truncated = true
		}
		if !isPrefix {
			return line, truncated, nil
		}
	}
}

// splitLogLine finds the level and the message of one line in any of the
// formats ReadLog understands.
func splitLogLine(line string) (level, msg string) {
	trimmed := strings.TrimSpace(line)
	if strings.HasPrefix(trimmed, "{") {
		var rec struct {
			Level string `json:"level"`
			Msg   string `json:"msg"`
		}
		if json.Unmarshal([]byte(trimmed), &rec) == nil && rec.Msg != "" {
			return normLevel(rec.Level), rec.Msg
		}
	}
	if i := strings.Index(line, "msg="); i >= 0 && (i == 0 || line[i-1] == ' ') {
		if m := reSlogLevel.FindStringSubmatch(line[:i]); m != nil {
			level = m[1]
		}
		rest := line[i+len("msg="):]
		if strings.HasPrefix(rest, `"`) {
			if q, err := strconv.QuotedPrefix(rest); err == nil {
				if s, err := strconv.Unquote(q); err == nil {
					return normLevel(level), s
				}
			}
			return normLevel(level), strings.Trim(rest, `"`)
		}
		msg, _, _ = strings.Cut(rest, " ")
		return normLevel(level), msg
	}
	if m := reBracketLevel.FindStringSubmatch(line); m != nil {
		return normLevel(m[1]), m[2]
	}
	return "", trimmed
}

func normLevel(l string) string {
	l = strings.ToUpper(strings.TrimSpace(l))
	if l == "WARNING" {
		return "WARN"
	}
	return l
}

// scan interprets one line.
func (rep *LogReport) scan(n int, line string) {
	level, msg := splitLogLine(line)
	details := func(s string) (version string, ms int) {
		if m := reVersion.FindStringSubmatch(s); m != nil {
			version = strings.TrimSpace(m[1])
		}
		if m := reProbeMS.FindStringSubmatch(s); m != nil {
			ms, _ = strconv.Atoi(m[1])
		}
		return version, ms
	}
	text := strings.TrimSpace(msg)
	switch {
	case reAnnounce.MatchString(msg):
		m := reAnnounce.FindStringSubmatch(msg)
		count, _ := strconv.Atoi(m[1])
		rep.Announced = append(rep.Announced, count)
		return
	case reOCI11.MatchString(msg):
		m := reOCI11.FindStringSubmatch(msg)
		v, ms := details(m[2])
		rep.Probes = append(rep.Probes, cachedProbe(m[2], LogProbe{Host: m[1], API: LogAPISupported, Version: v, ProbeMS: ms, Level: level, Line: n}))
		return
	case reOCI10.MatchString(msg):
		m := reOCI10.FindStringSubmatch(msg)
		v, ms := details(m[2])
		rep.Probes = append(rep.Probes, cachedProbe(m[2], LogProbe{Host: m[1], API: LogAPIUnsupported, Version: v, ProbeMS: ms, Level: level, Line: n}))
		return
	case reFailed.MatchString(text):
		m := reFailed.FindStringSubmatch(text)
		v, ms := details(m[2])
		reason := m[2]
		if i := strings.Index(reason, " ("); i >= 0 && strings.HasSuffix(reason, ")") {
			reason = reason[:i]
		}
		rep.Probes = append(rep.Probes, LogProbe{Host: m[1], API: LogAPIUnknown, Version: v, ProbeMS: ms, Reason: reason, Level: level, Line: n})
		rep.Failures = append(rep.Failures, LogLine{Line: n, Level: level, Text: text})
		return
	}
	lower := strings.ToLower(msg)
	switch {
	case strings.Contains(lower, "referrer discovery") && reDiscFailWord.MatchString(msg),
		reDiscoverDone.MatchString(msg),
		level == "ERROR" || level == "FATAL":
		rep.Failures = append(rep.Failures, LogLine{Line: n, Level: level, Text: clipText(text, 500)})
	}
}

// cachedProbe notes a verdict line's cached=true and age=.
func cachedProbe(details string, p LogProbe) LogProbe {
	if m := reCached.FindStringSubmatch(details); m != nil {
		p.Cached, p.Age = true, m[1]
	}
	return p
}

func clipText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// findings turns what was seen into findings with cause and remedy.
func (rep *LogReport) findings() {
	add := func(f finding.Finding) { rep.Findings = append(rep.Findings, f) }
	announced := 0
	for _, n := range rep.Announced {
		announced += n
	}
	if len(rep.Announced) == 0 && len(rep.Probes) == 0 {
		add(finding.Finding{Severity: finding.SeverityWarn, Code: finding.NoProbeLines,
			Summary: "The log holds no capability probe lines",
			Cause:   "Either this is not the export log, the export did not start, or the log level hides INFO lines.",
			Remedy:  "Point at the exporter's log with INFO or DEBUG level enabled (grep \"Probing .* registries for OCI referrer\")."})
	}
	if len(rep.Announced) > 0 && announced != len(rep.Probes) {
		add(finding.Finding{Severity: finding.SeverityWarn, Code: finding.ProbeCountMismatch,
			Summary:  fmt.Sprintf("%s announced, %s found", human.Count(announced, "probe"), human.Count(len(rep.Probes), "verdict line")),
			Cause:    "Some probes never logged a verdict: the exporter stopped or timed out mid-probe, or the log was cut or rotated.",
			Remedy:   "Look at the lines after the announcement for errors; probe the missing registries with refdoctor probe HOST/REPO.",
			Evidence: fmt.Sprintf("announced: %v", rep.Announced)})
	}
	fallback := map[string]bool{}
	failed := map[string]bool{}
	invented := ""
	for _, p := range rep.Probes {
		if strings.HasPrefix(strings.ToLower(p.Version), "oci-distribution/") && invented == "" {
			invented = fmt.Sprintf("line %d: %s version=%s", p.Line, p.Host, p.Version)
		}
		switch p.API {
		case LogAPIUnsupported:
			if !fallback[p.Host] {
				fallback[p.Host] = true
				add(finding.Finding{Severity: finding.SeverityWarn, Code: finding.FallbackTagDiscovery,
					Summary:  fmt.Sprintf("Registry %s is on the OCI 1.0 fallback path (tag discovery)", p.Host),
					Cause:    "Its /referrers endpoint did not answer with an OCI image index, so referrers are read from sha256-<hex> tags, which only exist if every attaching tool wrote them.",
					Remedy:   fmt.Sprintf("Check the fallback tags (refdoctor tags %s/REPO); probe the registry to see why the API is unavailable.", p.Host),
					Evidence: fmt.Sprintf("line %d", p.Line)})
			}
		case LogAPIUnknown:
			if !failed[p.Host] {
				failed[p.Host] = true
				add(finding.Finding{Severity: finding.SeverityError, Code: finding.ProbeFailed,
					Summary:  fmt.Sprintf("The capability probe of %s failed: %s", p.Host, orText(p.Reason, "no reason logged")),
					Cause:    "Network, login, TLS or rate limiting stopped the probe; this says nothing about referrers support.",
					Remedy:   fmt.Sprintf("Probe it by hand: refdoctor probe --exchanges %s/REPO, and fix what it reports.", p.Host),
					Evidence: fmt.Sprintf("line %d", p.Line)})
			}
		}
	}
	if invented != "" {
		add(finding.Finding{Severity: finding.SeverityWarn, Code: finding.InventedVersionHeader,
			Summary:  "The log reports a version from an OCI-Distribution-API-Version header, which does not exist",
			Cause:    "No version of the distribution spec defines OCI-Distribution-API-Version; Docker-Distribution-API-Version is legacy and optional, and no header advertises referrers support. The tool that wrote this value invents or misreads it.",
			Remedy:   "Ignore the version value; only probing /referrers tells (refdoctor probe HOST/REPO).",
			Evidence: invented})
	}
	discovery := 0
	first := ""
	for _, f := range rep.Failures {
		if reFailed.MatchString(f.Text) {
			continue
		}
		discovery++
		if first == "" {
			first = fmt.Sprintf("line %d: %s", f.Line, clipText(f.Text, 200))
		}
	}
	if discovery > 0 {
		add(finding.Finding{Severity: finding.SeverityError, Code: finding.DiscoveryFailures,
			Summary:  fmt.Sprintf("Failed or incomplete referrer discovery on %s of the log", human.Count(discovery, "line")),
			Cause:    "Discovery was throttled, refused, timed out or failed; its referrer lists are incomplete, not empty.",
			Remedy:   "Rerun discovery for the images named there (refdoctor discover REF) and fix what it reports before exporting.",
			Evidence: first})
	}
}

func orText(s, alt string) string {
	if strings.TrimSpace(s) == "" {
		return alt
	}
	return s
}
