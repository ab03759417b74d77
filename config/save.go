package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/refdoctor/refdoctor/internal/atomicfile"
)

// The [[registry]] keys that SaveRegistries writes; every other key of an
// entry (ca_file, expected, keys of a newer refdoctor) is left as the
// operator wrote it.
var savedKeys = []string{"repository", "plain_http", "insecure_skip_verify"}

var (
	registryHeader = regexp.MustCompile(`^\s*\[\[\s*registry\s*\]\]\s*(#.*)?$`)
	anyHeader      = regexp.MustCompile(`^\s*\[`)
	keyLine        = regexp.MustCompile(`^(\s*)([A-Za-z0-9_-]+|"[^"]*"|'[^']*')(\s*=\s*)(.*)$`)
)

// EditRegistries returns the config text data with its [[registry]] list
// set to regs: entries whose host is not in regs are removed, entries in
// both get regs' repository, plain_http and insecure_skip_verify (values
// replaced where they stand, inline comments kept), and new hosts are
// appended. Comments, the other tables and every other key of a kept entry
// stay as they were. The result is parsed back and compared with regs; an
// edit that would not read back as asked is an error, never written.
func EditRegistries(data []byte, regs []Registry) ([]byte, error) {
	old, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("the file does not load, so refdoctor does not edit it: %w", err)
	}
	want := map[string]Registry{}
	for _, r := range regs {
		if err := ValidateHost(r.Host); err != nil {
			return nil, fmt.Errorf("%w: registry %q: %v", ErrInvalid, r.Host, err)
		}
		want[strings.ToLower(r.Host)] = r
	}
	lines := strings.Split(string(data), "\n")
	type block struct{ header, last int }
	var blocks []block
	for i := 0; i < len(lines); i++ {
		if !registryHeader.MatchString(lines[i]) {
			continue
		}
		b := block{header: i, last: i}
		for j := i + 1; j < len(lines) && !anyHeader.MatchString(lines[j]); j++ {
			if t := strings.TrimSpace(lines[j]); t != "" && !strings.HasPrefix(t, "#") {
				b.last = j
			}
		}
		blocks = append(blocks, b)
	}
	if len(blocks) != len(old.Registries) {
		return nil, fmt.Errorf("%w: the file lists its registries in a form refdoctor does not edit (write each as a [[registry]] table)", ErrInvalid)
	}
	seen := map[string]bool{}
	drop := map[int]bool{}
	insertAfter := map[int][]string{}
	for n, b := range blocks {
		host := strings.ToLower(old.Registries[n].Host)
		r, keep := want[host]
		if !keep || seen[host] {
			for i := b.header; i <= b.last; i++ {
				drop[i] = true
			}
			continue
		}
		seen[host] = true
		values := map[string]string{
			"repository":           strconv.Quote(r.Repository),
			"plain_http":           strconv.FormatBool(r.PlainHTTP),
			"insecure_skip_verify": strconv.FormatBool(r.InsecureSkipVerify),
		}
		written := map[string]bool{}
		for i := b.header + 1; i <= b.last; i++ {
			m := keyLine.FindStringSubmatch(lines[i])
			if m == nil {
				continue
			}
			key := strings.Trim(m[2], `"'`)
			v, ours := values[key]
			if !ours {
				continue
			}
			written[key] = true
			if key == "repository" && r.Repository == "" {
				drop[i] = true
				continue
			}
			lines[i] = m[1] + m[2] + m[3] + v + inlineComment(m[4])
		}
		for _, key := range savedKeys {
			if !written[key] && !isDefault(key, r) {
				insertAfter[b.last] = append(insertAfter[b.last], key+" = "+values[key])
			}
		}
	}
	var out []string
	for i, l := range lines {
		if !drop[i] {
			out = append(out, l)
		} else if len(out) > 0 && strings.TrimSpace(out[len(out)-1]) == "" && i+1 < len(lines) && strings.TrimSpace(lines[i+1]) == "" {
			// A removed entry leaves one blank line, not two.
			out = out[:len(out)-1]
		}
		out = append(out, insertAfter[i]...)
	}
	text := strings.Join(out, "\n")
	for _, r := range regs {
		if seen[strings.ToLower(r.Host)] {
			continue
		}
		seen[strings.ToLower(r.Host)] = true
		text = strings.TrimRight(text, "\n") + "\n\n" + newEntry(r)
	}
	if !strings.HasSuffix(text, "\n") {
		text += "\n"
	}
	if err := checkEdited([]byte(text), regs); err != nil {
		return nil, err
	}
	return []byte(text), nil
}

func isDefault(key string, r Registry) bool {
	switch key {
	case "repository":
		return r.Repository == ""
	case "plain_http":
		return !r.PlainHTTP
	case "insecure_skip_verify":
		return !r.InsecureSkipVerify
	}
	return true
}

// newEntry writes a [[registry]] table for r.
func newEntry(r Registry) string {
	var b strings.Builder
	b.WriteString("[[registry]]\n")
	fmt.Fprintf(&b, "host = %s\n", strconv.Quote(r.Host))
	if r.Repository != "" {
		fmt.Fprintf(&b, "repository = %s\n", strconv.Quote(r.Repository))
	}
	if r.PlainHTTP {
		b.WriteString("plain_http = true\n")
	}
	if r.InsecureSkipVerify {
		b.WriteString("insecure_skip_verify = true\n")
	}
	if r.CAFile != "" {
		fmt.Fprintf(&b, "ca_file = %s\n", strconv.Quote(r.CAFile))
	}
	if r.Expected != "" {
		fmt.Fprintf(&b, "expected = %s\n", strconv.Quote(r.Expected))
	}
	if r.ReferrersRepository != "" {
		fmt.Fprintf(&b, "referrers_repository = %s\n", strconv.Quote(r.ReferrersRepository))
	}
	return b.String()
}

// inlineComment is the comment after a value (" # ..."), with the space
// before it, or "". A # inside a quoted string is not a comment.
func inlineComment(value string) string {
	var quote rune
	for i, c := range value {
		switch {
		case quote != 0:
			if c == quote && (quote == '\'' || i == 0 || value[i-1] != '\\') {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '#':
			j := i
			for j > 0 && (value[j-1] == ' ' || value[j-1] == '\t') {
				j--
			}
			return value[j:]
		}
	}
	return ""
}

// checkEdited parses the edited text and compares its registries with
// regs on the keys SaveRegistries writes.
func checkEdited(text []byte, regs []Registry) error {
	got, err := Parse(text)
	if err != nil {
		return fmt.Errorf("the edited file would not load (nothing was written): %w", err)
	}
	if len(got.Registries) != len(regs) {
		return fmt.Errorf("%w: the edited file would list %d registries, not %d (nothing was written)", ErrInvalid, len(got.Registries), len(regs))
	}
	for _, r := range regs {
		g, ok := got.Host(r.Host)
		if !ok {
			for _, x := range got.Registries {
				if strings.EqualFold(x.Host, r.Host) {
					g, ok = x, true
				}
			}
		}
		if !ok || g.Repository != r.Repository || g.PlainHTTP != r.PlainHTTP || g.InsecureSkipVerify != r.InsecureSkipVerify {
			return fmt.Errorf("%w: registry %s would read back as %+v (nothing was written)", ErrInvalid, r.Host, g)
		}
	}
	return nil
}

// SaveRegistries sets the [[registry]] list of the config file at path
// (see EditRegistries) and writes it atomically: a temporary file in the
// same folder, synced, renamed over the original, which keeps its mode.
// A file that does not exist yet is created (mode 0600) with its folder.
// On any error the file is left as it was.
func SaveRegistries(path string, regs []Registry) error {
	if path == "" {
		path = DefaultPath()
	}
	if path == "" {
		return errors.New("no config file to save to: no user config folder (give --config FILE)")
	}
	if real, err := filepath.EvalSymlinks(path); err == nil {
		path = real // replace the file a link points to, not the link
	}
	mode := os.FileMode(0o600)
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		data = []byte("# refdoctor configuration (see README, Configuration)\n")
	case err != nil:
		return fmt.Errorf("read config %s: %w", path, err)
	default:
		if info, err := os.Stat(path); err == nil {
			mode = info.Mode().Perm()
		}
	}
	edited, err := EditRegistries(data, regs)
	if err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("save config: %w", err)
	}
	if err := atomicfile.WriteBytes(path, mode, edited); err != nil {
		return fmt.Errorf("save config: %w", err)
	}
	return nil
}
