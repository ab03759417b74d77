package runbook

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/refdoctor/refdoctor/config"
	"github.com/refdoctor/refdoctor/discovery"
	"github.com/refdoctor/refdoctor/probe"
	"github.com/refdoctor/refdoctor/registry"
	"github.com/refdoctor/refdoctor/telemetry"
)

// ErrDiagOutput marks an output path the support bundle cannot be written
// to (a missing folder, no permission): the operator's input, not a
// failure of the checks.
var ErrDiagOutput = errors.New("cannot write the support bundle there")

// DiagOptions is what a support bundle covers.
type DiagOptions struct {
	// Targets are probed afresh (and the image discovered) at debug level;
	// Targets.LogFile, when set, is read and a redacted copy included.
	Targets Targets
	// Config is the configuration in force, written with secrets removed.
	Config config.Config
	// ToolVersion is refdoctor's version.
	ToolVersion string
	// Metrics are the session's counters; the fresh probe adds to them.
	Metrics       *telemetry.Metrics
	ClientOpts    []registry.Opt
	ProbeOpts     []probe.Opt
	DiscoveryOpts []discovery.Opt
	// Timeout bounds each registry's probe and the discovery.
	Timeout time.Duration
}

// DiagResult says what was written.
type DiagResult struct {
	Path  string   `json:"path"`
	Files []string `json:"files"`
	Bytes int64    `json:"bytes"`
}

// diagRoot is the folder every member sits in, so unpacking the archive
// never scatters files into the current folder.
const diagRoot = "refdoctor-diag/"

// maxExportLogCopy bounds the redacted copy of the export log.
const maxExportLogCopy = 16 << 20

// CollectDiag writes a support bundle (.tgz) to out: a debug-level log of a
// fresh probe of the targets (and discovery of the image), the probe and
// discovery results as JSON, the metrics in Prometheus text format, each
// registry's kind and version, the tool version, the configuration in force
// with secrets removed, and environment facts (no environment variables).
// Every text passes through telemetry.RedactString and a scrubber of known
// secret values (sensitive environment variables, docker config.json
// logins), so a credential that a careless component logged still does not
// leave the machine. The file is written to a temporary name in the same
// folder, with mode 0600, and renamed into place.
func CollectDiag(ctx context.Context, out string, opts DiagOptions) (DiagResult, error) {
	if out == "" {
		return DiagResult{}, fmt.Errorf("%w: no output path", ErrDiagOutput)
	}
	// Fail before probing anything when the archive cannot land there.
	if info, err := os.Stat(filepath.Dir(out)); err != nil || !info.IsDir() {
		if err == nil {
			err = errors.New("not a folder")
		}
		return DiagResult{}, fmt.Errorf("%w: %s: %v", ErrDiagOutput, filepath.Dir(out), err)
	}
	if opts.Timeout <= 0 {
		opts.Timeout = opts.Config.Export.ReferrerDiscovery.Timeout()
	}
	if opts.Timeout <= 0 {
		opts.Timeout = time.Minute
	}
	if opts.ToolVersion == "" {
		opts.ToolVersion = "dev"
	}
	metrics := opts.Metrics
	if metrics == nil {
		metrics = telemetry.NewMetrics()
	}
	targets := opts.Targets.Complete()
	scrub := newScrubber()
	var files []diagFile
	add := func(name string, data []byte) {
		files = append(files, diagFile{name: name, data: []byte(scrub.clean(string(data)))})
	}
	// addTable is for tables refdoctor writes from its own results, which
	// hold no credentials: known secret values are still removed, but the
	// patterns for free text are not applied, since a column "bearer" next
	// to a column "401" reads to them like an Authorization value.
	addTable := func(name string, data []byte) {
		files = append(files, diagFile{name: name, data: []byte(scrub.cleanKnown(string(data)))})
	}

	var logBuf bytes.Buffer
	logger := telemetry.NewLogger(&syncWriter{w: &logBuf}, slog.LevelDebug)
	clientOpts := append(append([]registry.Opt{}, opts.ClientOpts...), registry.WithLogger(logger))
	// One session: the discovery reuses the probe's verdicts, so the
	// log holds each registry's probe once.
	sessionOpts := append([]probe.Opt{probe.WithSession(probe.NewSession())}, opts.ProbeOpts...)
	probeTargets, terr := targets.probeTargets()
	var report *probe.Report
	if terr != nil {
		logger.Error("targets not probed", "err", terr)
	} else if len(probeTargets) > 0 {
		// Afresh: a support bundle shows the exchanges, not a cached
		// verdict (the fresh verdicts go to the cache as usual).
		popts := append([]probe.Opt{probe.WithConfig(opts.Config), probe.WithTimeout(opts.Timeout), probe.WithLogger(logger),
			probe.WithMetrics(metrics), probe.WithClientOpts(clientOpts...), probe.WithRefresh(true)}, sessionOpts...)
		rep, err := probe.Run(ctx, probeTargets, popts...)
		if err != nil {
			logger.Error("probe did not finish", "err", err)
		}
		report = &rep
	} else {
		logger.Info("no registries given: nothing probed")
	}
	var disc *discovery.Result
	if targets.Image != "" && terr == nil {
		dopts := append([]discovery.Opt{discovery.WithConfig(opts.Config), discovery.WithTimeout(opts.Timeout), discovery.WithLogger(logger),
			discovery.WithMetrics(metrics), discovery.WithClientOpts(clientOpts...), discovery.WithPlatforms(true),
			discovery.WithProbeOpts(sessionOpts...)}, opts.DiscoveryOpts...)
		res, err := discovery.Discover(ctx, targets.Image, dopts...)
		if err != nil {
			logger.Error("discovery did not finish", "image", targets.Image, "err", err)
		}
		disc = &res
	}
	if err := ctx.Err(); err != nil {
		return DiagResult{}, fmt.Errorf("collect diagnostics: %w", err)
	}

	add("version.txt", []byte(fmt.Sprintf("refdoctor %s\n", opts.ToolVersion)))
	add("environment.txt", []byte(environmentFacts(opts.Config)))
	cfgText, err := redactedConfig(opts.Config)
	if err != nil {
		cfgText = "# configuration could not be written: " + err.Error() + "\n"
	}
	add("config.toml", []byte(cfgText))
	add("probe.log", logBuf.Bytes())
	if report != nil {
		add("probe.json", mustIndent(report))
		addTable("registries.txt", []byte(registriesText(*report)))
	}
	if disc != nil {
		add("discovery.json", mustIndent(disc))
	}
	var metricsText bytes.Buffer
	if err := metrics.WriteText(&metricsText); err != nil {
		fmt.Fprintf(&metricsText, "# metrics could not be written: %v\n", err)
	}
	add("metrics.prom", metricsText.Bytes())
	if targets.LogFile != "" {
		logReport, copyText, err := readExportLog(targets.LogFile)
		if err != nil {
			add("export-log-error.txt", []byte(err.Error()+"\n"))
		} else {
			add("export-log-report.json", mustIndent(logReport))
			add("export.log", []byte(copyText))
		}
	}
	// The README lists what the archive holds, and only that.
	names := make([]string, len(files))
	for i, f := range files {
		names[i] = f.name
	}
	readme := diagFile{name: "README.txt", data: []byte(scrub.clean(diagReadme(opts.ToolVersion, names)))}
	return writeDiagArchive(out, append([]diagFile{readme}, files...))
}

type diagFile struct {
	name string
	data []byte
}

// syncWriter lets concurrent probes share one buffer: slog handlers lock
// per handler, but regclient's and refdoctor's loggers are two handlers.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func mustIndent(v any) []byte {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return []byte(fmt.Sprintf("{\"error\": %q}\n", err.Error()))
	}
	return append(b, '\n')
}

// diagMembers describes each file a support bundle may hold, in the
// order the README lists them.
var diagMembers = []struct{ name, about string }{
	{"README.txt", "this file"},
	{"version.txt", "refdoctor's version"},
	{"environment.txt", "OS, architecture and Go version (no environment variables)"},
	{"config.toml", "the configuration in force, secrets removed"},
	{"probe.log", "debug-level log of a fresh capability probe and discovery"},
	{"probe.json", "the probe results, with every HTTP exchange (no credentials)"},
	{"registries.txt", "each registry's kind, version header and verdict"},
	{"discovery.json", "discovery of the image"},
	{"metrics.prom", "the session's counters (Prometheus text format)"},
	{"export-log-report.json", "what refdoctor read in the export log"},
	{"export.log", "a redacted copy of the export log"},
	{"export-log-error.txt", "why the export log could not be read"},
}

// diagReadme describes the members named in files (README.txt is always
// there).
func diagReadme(version string, files []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "refdoctor support bundle (refdoctor %s)\n\n", version)
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	for _, m := range diagMembers {
		if m.name == "README.txt" || slices.Contains(files, m.name) {
			fmt.Fprintf(tw, "%s\t%s\n", m.name, m.about)
		}
	}
	tw.Flush()
	if !slices.Contains(files, "probe.json") {
		b.WriteString("\nNo registry was given (--registry, --image, or [[registry]] in the config),\nso nothing was probed.\n")
	}
	b.WriteString(`
Passwords, tokens, Authorization values, known secret values and the user
names of docker logins were replaced by [REDACTED]. Look through the files
before you send them.
`)
	return b.String()
}

func environmentFacts(cfg config.Config) string {
	var b strings.Builder
	fmt.Fprintf(&b, "os/arch: %s/%s\n", runtime.GOOS, runtime.GOARCH)
	fmt.Fprintf(&b, "go: %s\n", runtime.Version())
	fmt.Fprintf(&b, "cpus: %d\n", runtime.NumCPU())
	fmt.Fprintf(&b, "collected: %s\n", time.Now().UTC().Format(time.RFC3339))
	src := cfg.Path
	if src == "" {
		src = "(defaults and flags)"
	}
	fmt.Fprintf(&b, "config: %s\n", src)
	return b.String()
}

// redactedConfig writes the configuration as TOML with every value under
// a sensitive key removed and every string scrubbed. The config holds no
// secret fields today; this guards the day one is added.
func redactedConfig(cfg config.Config) (string, error) {
	var raw bytes.Buffer
	if err := toml.NewEncoder(&raw).Encode(cfg); err != nil {
		return "", err
	}
	var tree map[string]any
	if _, err := toml.Decode(raw.String(), &tree); err != nil {
		return "", err
	}
	redactTree(tree)
	var out bytes.Buffer
	out.WriteString("# refdoctor configuration in force (secrets removed)\n")
	if err := toml.NewEncoder(&out).Encode(tree); err != nil {
		return "", err
	}
	return out.String(), nil
}

func redactTree(m map[string]any) {
	for k, v := range m {
		if telemetry.IsSensitiveKey(k) {
			m[k] = telemetry.Redacted
			continue
		}
		m[k] = redactValue(v)
	}
}

func redactValue(v any) any {
	switch x := v.(type) {
	case string:
		return telemetry.RedactString(x)
	case map[string]any:
		redactTree(x)
		return x
	case []map[string]any:
		for _, m := range x {
			redactTree(m)
		}
		return x
	case []any:
		for i := range x {
			x[i] = redactValue(x[i])
		}
		return x
	}
	return v
}

func registriesText(rep probe.Report) string {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "REGISTRY\tKIND\tMATRIX\tVERSION HEADER\tAUTH\tV2\tREFERRERS API\tREASON\tMS")
	for _, r := range rep.Registries {
		matrix := "-"
		if r.Expected != nil {
			matrix = r.Expected.Name + " " + r.Expected.ReferrersAPI
			if r.Expected.Since != "" {
				matrix += " since " + r.Expected.Since
			}
			matrix += " (last seen " + r.Expected.LastSeen + ")"
		}
		kind := r.Kind
		if r.KindSource != "" {
			kind += " (" + r.KindSource + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%d\n", r.Registry, kind, matrix, orText(r.DistributionAPIVersion, "-"), orText(r.Auth, "-"), r.V2Status, r.ReferrersAPI, orText(string(r.ReferrersReason), "-"), r.ProbeMS)
	}
	tw.Flush()
	return b.String()
}

// readExportLog reads the operator's export log for the bundle: the report
// and a copy bounded to maxExportLogCopy.
func readExportLog(path string) (LogReport, string, error) {
	f, err := os.Open(path)
	if err != nil {
		return LogReport{}, "", fmt.Errorf("export log: %w", err)
	}
	defer f.Close()
	var head bytes.Buffer
	rep, err := ReadLog(io.TeeReader(f, &limitedBuffer{buf: &head, limit: maxExportLogCopy}))
	if err != nil {
		return LogReport{}, "", err
	}
	text := head.String()
	if head.Len() >= maxExportLogCopy {
		text += fmt.Sprintf("\n[... cut at %d bytes ...]\n", maxExportLogCopy)
	}
	return rep, text, nil
}

// limitedBuffer keeps the first limit bytes and accepts the rest unread,
// so a TeeReader keeps streaming past the limit.
type limitedBuffer struct {
	buf   *bytes.Buffer
	limit int
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := l.limit - l.buf.Len(); room > 0 {
		l.buf.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}

func writeDiagArchive(out string, files []diagFile) (res DiagResult, err error) {
	dir := filepath.Dir(out)
	tmp, err := os.CreateTemp(dir, ".refdoctor-diag-*.tmp")
	if err != nil {
		return DiagResult{}, fmt.Errorf("%w: %v", ErrDiagOutput, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := tmp.Chmod(0o600); err != nil {
		return DiagResult{}, fmt.Errorf("support bundle: %w", err)
	}
	gz := gzip.NewWriter(tmp)
	tw := tar.NewWriter(gz)
	now := time.Now().UTC().Truncate(time.Second)
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: diagRoot, Mode: 0o700, ModTime: now}); err != nil {
		return DiagResult{}, fmt.Errorf("support bundle: %w", err)
	}
	names := make([]string, 0, len(files))
	for _, f := range files {
		name := diagRoot + f.name
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o600, Size: int64(len(f.data)), ModTime: now}); err != nil {
			return DiagResult{}, fmt.Errorf("support bundle: %w", err)
		}
		if _, err := tw.Write(f.data); err != nil {
			return DiagResult{}, fmt.Errorf("support bundle: %w", err)
		}
		names = append(names, name)
	}
	if err := tw.Close(); err != nil {
		return DiagResult{}, fmt.Errorf("support bundle: %w", err)
	}
	if err := gz.Close(); err != nil {
		return DiagResult{}, fmt.Errorf("support bundle: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return DiagResult{}, fmt.Errorf("support bundle: %w", err)
	}
	info, err := tmp.Stat()
	if err != nil {
		return DiagResult{}, fmt.Errorf("support bundle: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return DiagResult{}, fmt.Errorf("support bundle: %w", err)
	}
	if err := os.Rename(tmp.Name(), out); err != nil {
		return DiagResult{}, fmt.Errorf("%w: %v", ErrDiagOutput, err)
	}
	abs, aerr := filepath.Abs(out)
	if aerr != nil {
		abs = out
	}
	return DiagResult{Path: abs, Files: names, Bytes: info.Size()}, nil
}

// scrubber removes known secret values from text: values of environment
// variables whose names are sensitive (REGISTRY_TOKEN, *_PASSWORD) and the
// logins in docker's config.json. It catches what pattern-based redaction
// cannot: a bare token pasted into a config value or logged by a library.
type scrubber struct {
	secrets []string
	// users are the user names of docker logins, removed where they stand
	// as a word of their own.
	users []string
}

// minUserLen keeps a one- or two-letter user name from blanking every
// such word of the text; those are still removed after user= (userValue).
const minUserLen = 3

// userValue matches a user name written as a value: user=alice (slog text,
// regclient's "Loading config" line), username="alice", "user":"alice".
var userValue = regexp.MustCompile(`(?i)(^|[\s{,(])("?)(user|username|login_user)("?)(=|\s*:\s*)("[^"]*"|[^\s",})]*)`)

// minSecretLen keeps short values (a "1" in FOO_TOKEN_ENABLED) from
// blanking unrelated text.
const minSecretLen = 6

func newScrubber() *scrubber {
	s := &scrubber{}
	for _, kv := range os.Environ() {
		name, value, _ := strings.Cut(kv, "=")
		if telemetry.IsSensitiveKey(name) {
			s.addSecret(value)
		}
	}
	s.addDockerLogins()
	// Longest first, so a secret that contains another is removed whole.
	sort.Slice(s.secrets, func(i, j int) bool { return len(s.secrets[i]) > len(s.secrets[j]) })
	return s
}

func (s *scrubber) addSecret(v string) {
	v = strings.TrimSpace(v)
	if len(v) >= minSecretLen {
		s.secrets = append(s.secrets, v)
	}
}

// addDockerLogins reads the docker config.json regclient reads (DOCKER_CONFIG
// or ~/.docker) only to learn which values to remove.
func (s *scrubber) addDockerLogins() {
	dir := os.Getenv("DOCKER_CONFIG")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return
		}
		dir = filepath.Join(home, ".docker")
	}
	f, err := os.Open(filepath.Join(dir, "config.json"))
	if err != nil {
		return
	}
	defer f.Close()
	var cfg struct {
		Auths map[string]struct {
			Auth          string `json:"auth"`
			Username      string `json:"username"`
			Password      string `json:"password"`
			IdentityToken string `json:"identitytoken"`
			RegistryToken string `json:"registrytoken"`
		} `json:"auths"`
	}
	if json.NewDecoder(io.LimitReader(f, 1<<20)).Decode(&cfg) != nil {
		return
	}
	for _, a := range cfg.Auths {
		s.addUser(a.Username)
		s.addSecret(a.Auth)
		s.addSecret(a.Password)
		s.addSecret(a.IdentityToken)
		s.addSecret(a.RegistryToken)
		if raw, err := base64.StdEncoding.DecodeString(a.Auth); err == nil {
			if user, pass, ok := strings.Cut(string(raw), ":"); ok {
				s.addSecret(pass)
				s.addUser(user)
			}
		}
	}
}

func (s *scrubber) addUser(u string) {
	u = strings.TrimSpace(u)
	if len(u) >= minUserLen && !slices.Contains(s.users, u) {
		s.users = append(s.users, u)
	}
}

func (s *scrubber) clean(text string) string {
	return telemetry.RedactString(s.cleanKnown(text))
}

// cleanKnown removes the known secret values and the user names of
// docker logins only.
func (s *scrubber) cleanKnown(text string) string {
	for _, secret := range s.secrets {
		text = strings.ReplaceAll(text, secret, telemetry.Redacted)
	}
	for _, u := range s.users {
		text = replaceWord(text, u, telemetry.Redacted)
	}
	return userValue.ReplaceAllStringFunc(text, func(m string) string {
		sub := userValue.FindStringSubmatch(m)
		if v := strings.Trim(sub[6], `"`); v == "" || v == telemetry.Redacted {
			return m
		}
		val := telemetry.Redacted
		if strings.HasPrefix(sub[6], `"`) {
			val = `"` + val + `"`
		}
		return sub[1] + sub[2] + sub[3] + sub[4] + sub[5] + val
	})
}

// replaceWord replaces word where it is not part of a longer word (the
// characters on either side are not letters, digits or '_'). A user name
// inside a host or path (alice.example.com) goes too: a removal too many
// costs less than a name left in.
func replaceWord(text, word, with string) string {
	inName := func(b byte) bool {
		return b == '_' || b >= '0' && b <= '9' || b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z'
	}
	var b strings.Builder
	rest := text
	for {
		i := strings.Index(rest, word)
		if i < 0 {
			b.WriteString(rest)
			return b.String()
		}
		end := i + len(word)
		if (i > 0 && inName(rest[i-1])) || (end < len(rest) && inName(rest[end])) {
			b.WriteString(rest[:end])
		} else {
			b.WriteString(rest[:i])
			b.WriteString(with)
		}
		rest = rest[end:]
	}
}
