package ui

import (
	"strings"

	"github.com/charmbracelet/x/ansi"
)

// fixTools are the programs whose command lines fixes hold.
var fixTools = map[string]bool{
	"refdoctor": true, "regctl": true, "oras": true, "crane": true, "cosign": true,
	"skopeo": true, "docker": true, "curl": true, "openssl": true,
}

// commandIn is the first command line in a fix ("" when it holds none),
// as the operator runs it: a `quoted` one, or one that follows a colon or
// opens the fix, up to the prose after it (" (or …)", ", or …", "; …", a
// full stop). "Copy the referrers too: regctl image copy --referrers SRC
// DEST (or oras cp -r)." holds "regctl image copy --referrers SRC DEST".
func commandIn(fix string) string {
	best, at := "", len(fix)
	// Quoted commands.
	for i := 0; i < len(fix); {
		open := strings.IndexByte(fix[i:], '`')
		if open < 0 {
			break
		}
		open += i
		end := strings.IndexByte(fix[open+1:], '`')
		if end < 0 {
			break
		}
		end += open + 1
		if cmd := strings.TrimSpace(fix[open+1 : end]); isCommand(cmd) && open < at {
			best, at = cmd, open
			break
		}
		i = end + 1
	}
	// Commands after a colon, or at the start.
	starts := []int{0}
	for i := 0; ; {
		c := strings.Index(fix[i:], ": ")
		if c < 0 {
			break
		}
		starts = append(starts, i+c+2)
		i += c + 2
	}
	for _, s := range starts {
		if s >= at {
			break
		}
		if cmd := commandLine(fix[s:]); cmd != "" {
			best, at = cmd, s
			break
		}
	}
	return best
}

// commandLine is the command that opens text, cut where prose takes over.
func commandLine(text string) string {
	end := len(text)
	for _, stop := range []string{" (", ", ", "; ", "`", ". "} {
		if i := strings.Index(text, stop); i >= 0 && i < end {
			end = i
		}
	}
	cmd := strings.TrimSuffix(strings.TrimSpace(text[:end]), ".")
	if !isCommand(cmd) {
		return ""
	}
	return cmd
}

// isCommand is true for a known program followed by what it is to do.
func isCommand(s string) bool {
	f := strings.Fields(s)
	return len(f) >= 2 && fixTools[f[0]]
}

// shortCommand fits a command line into w cells for the status line: it
// keeps whole words from both ends (the program and what it does, then
// the destination) and drops the middle for "…", never cutting an
// address in two.
func shortCommand(cmd string, w int) string {
	if ansi.StringWidth(cmd) <= w {
		return cmd
	}
	fields := strings.Fields(cmd)
	i, j := 0, len(fields) // the head is fields[:i], the tail fields[j:]
	fits := func(i, j int) bool {
		return ansi.StringWidth(strings.Join(fields[:i], " ")+" … "+strings.Join(fields[j:], " ")) <= w
	}
grow:
	for i < j {
		switch {
		case i <= len(fields)-j && fits(i+1, j):
			i++
		case fits(i, j-1):
			j--
		case fits(i+1, j):
			i++
		default:
			break grow // neither end takes another word
		}
	}
	if i == 0 || j == len(fields) {
		return truncMiddle(cmd, w)
	}
	return strings.Join(fields[:i], " ") + " … " + strings.Join(fields[j:], " ")
}
