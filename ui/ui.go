// Package ui is refdoctor's interactive terminal troubleshooter, built on
// Bubble Tea. It turns the runbook into screens: pick a symptom or walk the
// runbook step by step, watch registries being probed live, read every HTTP
// exchange behind a verdict, list fallback tags and referrers, verify a
// mirror bundle with a progress bar, read an export log and this session's
// metrics, and collect a support bundle.
//
// The UI never talks HTTP and never blocks: every check is an engine call
// (probe, discovery, bundle, runbook) running in a goroutine that streams
// its events through a channel into Update. Each screen is a component
// with Update, View and SetSize; only the root handles the window size.
// Keys live in keys.go, looks in styles.go.
package ui

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"charm.land/bubbles/v2/spinner"
	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/colorprofile"

	"github.com/refdoctor/refdoctor/config"
	"github.com/refdoctor/refdoctor/discovery"
	"github.com/refdoctor/refdoctor/finding"
	"github.com/refdoctor/refdoctor/probe"
	"github.com/refdoctor/refdoctor/registry"
	"github.com/refdoctor/refdoctor/runbook"
	"github.com/refdoctor/refdoctor/telemetry"
)

// Options is what the TUI works on and how it reaches registries.
type Options struct {
	// Config holds the registries (plain HTTP, CAs, expected kinds) and
	// the discovery limits.
	Config config.Config
	// Targets are the registries to probe (HOST or HOST/REPO). Empty means
	// the config's registries.
	Targets []probe.Target
	// Image is the subject for referrer discovery (HOST/REPO:TAG or @DIGEST).
	Image string
	// Source is where Image was copied from, when Image is a mirror's
	// copy: the Referrers screen compares the two (s).
	Source string
	// Repository is the repository whose fallback tags are listed (HOST/REPO).
	Repository string
	// Bundle is a mirror bundle to verify.
	Bundle string
	// LogFile is an export log for the logs screen.
	LogFile string
	// SessionLog is the file this session logs to, shown on the support
	// screen.
	SessionLog string
	// DiagOut is where the support bundle is written; empty means
	// refdoctor-support-<time>.tgz in the working folder.
	DiagOut string
	// Names maps registry hosts to short display names (the lab's names).
	Names map[string]string
	// ProbeOnStart probes every target as the TUI opens, so that the
	// compatibility table is ready when the operator opens it and the
	// session log holds the probe lines the first runbook step reads back
	// (the demo does).
	ProbeOnStart bool
	// RefillBudget holds, by host, what refills a lab registry's Docker
	// Hub-like pull budget: R on its detail view offers it.
	RefillBudget map[string]func(context.Context) error
	// Metrics counts this session's probes and discoveries.
	Metrics *telemetry.Metrics
	// Prometheus, when set, is where the Metrics screen and the runbook's
	// telemetry step read the exporter's history.
	Prometheus *telemetry.Prometheus
	// Logger receives the engine's logs; the TUI never logs to the screen,
	// so give it a file (nil discards).
	Logger *slog.Logger
	// Version is shown in the title bar and sent as the user agent.
	Version string
	// ClientOpts are passed to every registry client.
	ClientOpts []registry.Opt
	// Timeout bounds each registry operation (default from Config).
	Timeout time.Duration
	// Concurrency bounds probes at once (default from Config).
	Concurrency int

	// Input and Output default to the terminal (stdin and stdout).
	Input  io.Reader
	Output io.Writer

	// Mouse turns mouse capture on: clicks on tabs and rows, and the wheel.
	// It is off by default so that the terminal's own selection copies a
	// digest in every terminal (y copies the selected one with OSC 52
	// where the terminal allows it).
	Mouse bool

	// workDir is the working folder, read once before the program starts
	// (Update never touches the file system): the file picker starts there
	// and the support bundle goes there.
	workDir string
}

// Run opens the TUI and returns when the operator quits or ctx ends. Every
// engine goroutine has ended when Run returns, and the terminal is restored
// even after a panic.
func Run(ctx context.Context, opts Options) error {
	o := opts.resolve()
	m := newModel(ctx, o)
	popts := []tea.ProgramOption{tea.WithContext(ctx)}
	if o.Input != nil {
		popts = append(popts, tea.WithInput(o.Input))
	}
	if o.Output != nil {
		popts = append(popts, tea.WithOutput(o.Output))
	}
	if _, noColor := os.LookupEnv("NO_COLOR"); noColor {
		// colorprofile honours NO_COLOR too; saying it here keeps the
		// decision in one obvious place.
		popts = append(popts, tea.WithColorProfile(colorprofile.Ascii))
	}
	p := tea.NewProgram(m, popts...)
	_, err := p.Run()
	m.shutdown()
	if m.sh.savedTo != "" {
		out := o.Output
		if out == nil {
			out = os.Stdout
		}
		fmt.Fprintf(out, "refdoctor: saved the registries to %s\n", m.sh.savedTo)
	}
	if errors.Is(err, tea.ErrProgramKilled) && ctx.Err() != nil {
		return nil // interrupted from outside: a normal way to leave
	}
	return err
}

// resolve fills what the operator did not give from the lab and the config.
func (o Options) resolve() Options {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Version == "" {
		o.Version = "dev"
	}
	if o.Config.Export.ReferrerDiscovery.TimeoutSeconds == 0 {
		def := config.Defaults()
		def.Registries = o.Config.Registries
		def.Cache = o.Config.Cache
		o.Config = def
	}
	names := map[string]string{}
	for k, v := range o.Names {
		names[k] = v
	}
	o.Names = names
	if len(o.Targets) == 0 {
		for _, r := range o.Config.Registries {
			t := probe.Target{Host: r.Host}
			if pt, err := probe.ParseTarget(r.Target()); err == nil {
				t = pt // with the repository the entry names
			}
			o.Targets = append(o.Targets, t)
		}
	}
	if o.Repository == "" && o.Image == "" {
		// The Tags screen opens on the first registry's own repository.
		for _, t := range o.Targets {
			if t.Repository != "" {
				o.Repository = t.Host + "/" + t.Repository
				break
			}
		}
	}
	if o.Repository == "" && o.Image != "" {
		if r, err := discovery.ParseReference(o.Image); err == nil {
			o.Repository = r.Registry + "/" + r.Repository
		}
	}
	if o.Timeout <= 0 {
		o.Timeout = o.Config.Export.ReferrerDiscovery.Timeout()
	}
	if o.workDir == "" {
		if wd, err := os.Getwd(); err == nil {
			o.workDir = wd
		}
	}
	if o.Concurrency <= 0 {
		o.Concurrency = o.Config.Export.ReferrerDiscovery.MaxConcurrentDiscoveries
	}
	return o
}

// shared is the state every screen reads: options, styles, keys, the
// spinner frame and the machinery that starts engine runs.
type shared struct {
	ctx    context.Context
	cancel context.CancelFunc
	opts   *Options
	st     styles
	keys   keyMap
	log    *slog.Logger

	runs uint64
	wg   sync.WaitGroup
	busy atomic.Int64

	spin    spinner.Model
	ticking bool
	frame   string

	// book is the embedded runbook (nil, with bookErr, if it is broken).
	book    *runbook.Book
	bookErr error

	hostRE *regexp.Regexp // known hosts, for names (nil: none known)

	// targetsEdited is set once the operator changed the registries in
	// the targets form: quitting then offers to save them to the config.
	targetsEdited bool
	// savedTo is the config file the edited registries were saved to.
	savedTo string
}

func newShared(ctx context.Context, o *Options) *shared {
	ctx, cancel := context.WithCancel(ctx)
	sh := &shared{ctx: ctx, cancel: cancel, opts: o, keys: newKeyMap(), log: o.Logger,
		st:   newStyles(true, colorprofile.NoTTY),
		spin: spinner.New(spinner.WithSpinner(spinner.MiniDot))}
	sh.book, sh.bookErr = runbook.Load()
	sh.frame = sh.spin.View()
	if len(o.Names) > 0 {
		hosts := make([]string, 0, len(o.Names))
		for h := range o.Names {
			hosts = append(hosts, regexp.QuoteMeta(h))
		}
		// Longest first; \b keeps 127.0.0.1:4000 from matching inside
		// 127.0.0.1:40001.
		sort.Slice(hosts, func(i, j int) bool { return len(hosts[i]) > len(hosts[j]) })
		sh.hostRE = regexp.MustCompile(`(?:` + strings.Join(hosts, "|") + `)\b`)
	}
	return sh
}

// wakeSpinner starts the spinner's ticks if they are not running; they
// stop by themselves when no run is left.
func (sh *shared) wakeSpinner() tea.Cmd {
	if sh.ticking {
		return nil
	}
	sh.ticking = true
	return sh.spin.Tick
}

// name is the display name of a registry host.
func (sh *shared) name(host string) string {
	if n, ok := sh.opts.Names[host]; ok && n != "" {
		return n
	}
	return host
}

// displayRef shows HOST/REPO[:TAG] with the host's display name, for
// headings (commands always carry the real host).
func (sh *shared) displayRef(ref string) string {
	host, rest, ok := strings.Cut(ref, "/")
	if n := sh.name(host); ok && n != host {
		return n + " " + rest
	}
	return ref
}

// names replaces known registry hosts in free text (summaries, findings)
// with their display names.
func (sh *shared) names(text string) string {
	if sh.hostRE == nil {
		return text
	}
	return sh.hostRE.ReplaceAllStringFunc(text, func(h string) string { return sh.name(h) })
}

// namedFindings are findings with registry hosts shown by display name.
// Remedies keep real hosts, with the commands in them made runnable.
func (sh *shared) namedFindings(fs []finding.Finding) []finding.Finding {
	out := make([]finding.Finding, len(fs))
	for i, f := range fs {
		f.Summary, f.Cause, f.Evidence = sh.names(f.Summary), sh.names(f.Cause), sh.names(f.Evidence)
		f.Remedy = sh.runnable(f.Remedy)
		out[i] = f
	}
	return out
}

// runnableFindings are findings whose remedies run as written (see
// runnable), with hosts left as they are.
func (sh *shared) runnableFindings(fs []finding.Finding) []finding.Finding {
	out := make([]finding.Finding, len(fs))
	for i, f := range fs {
		f.Remedy = sh.runnable(f.Remedy)
		out[i] = f
	}
	return out
}

// refdoctorCommand finds a refdoctor command in a remedy: the program and
// its subcommand, then the rest of the command up to punctuation that ends
// it in prose.
var refdoctorCommand = regexp.MustCompile("refdoctor [a-z]+[^,;`()]*")

// runnable makes the refdoctor commands in a remedy runnable as written
// in this session: HOST/REPO placeholders after a known host become the
// repository the session looks at there, and a host the session reaches
// over plain HTTP or without TLS verification gets its flag.
func (sh *shared) runnable(text string) string {
	if !strings.Contains(text, "refdoctor ") {
		return text
	}
	for _, t := range sh.opts.Targets {
		if t.Repository != "" {
			text = strings.ReplaceAll(text, t.Host+"/REPO", t.Host+"/"+t.Repository)
		}
	}
	return refdoctorCommand.ReplaceAllStringFunc(text, func(cmd string) string {
		fields := strings.Fields(cmd)
		if len(fields) < 3 {
			return cmd
		}
		for _, f := range fields[2:] {
			host, _, _ := strings.Cut(strings.TrimRight(f, "."), "/")
			reg, ok := sh.opts.Config.Host(host)
			if !ok || strings.HasPrefix(f, "-") {
				continue
			}
			flag := ""
			switch {
			case reg.PlainHTTP && !strings.Contains(cmd, "--plain-http"):
				flag = " --plain-http " + host
			case reg.InsecureSkipVerify && !strings.Contains(cmd, "--insecure"):
				flag = " --insecure " + host
			}
			head := fields[0] + " " + fields[1]
			return head + flag + strings.TrimPrefix(cmd, head)
		}
		return cmd
	})
}

// ms renders a duration in milliseconds.
func (sh *shared) ms(n int64) string { return strconv.FormatInt(n, 10) + "ms" }

// clientOpts are the registry client options of every engine call.
func (sh *shared) clientOpts() []registry.Opt {
	return append([]registry.Opt{registry.WithLogger(sh.log), registry.WithUserAgent("refdoctor/" + sh.opts.Version)}, sh.opts.ClientOpts...)
}

// probeOpts are the options of every probe: the session's config,
// logger and metrics, and the capability cache as every command uses it
// (a fresh verdict is served from it, and its age and origin are shown);
// refresh probes anew (r and R) and stores the new verdict.
func (sh *shared) probeOpts(events func(probe.Event), refresh bool) []probe.Opt {
	o := sh.opts
	return []probe.Opt{
		probe.WithConfig(o.Config),
		probe.WithConcurrency(o.Concurrency),
		probe.WithTimeout(o.Timeout),
		probe.WithLogger(sh.log),
		probe.WithMetrics(o.Metrics),
		probe.WithRefresh(refresh),
		probe.WithEvents(events),
		probe.WithClientOpts(sh.clientOpts()...),
	}
}

// discoveryOpts are the options every discovery call shares; the
// capability probe behind the method choice reads the cache like the CLI.
func (sh *shared) discoveryOpts() []discovery.Opt {
	o := sh.opts
	return []discovery.Opt{
		discovery.WithConfig(o.Config),
		discovery.WithTimeout(o.Timeout),
		discovery.WithLogger(sh.log),
		discovery.WithMetrics(o.Metrics),
		discovery.WithClientOpts(sh.clientOpts()...),
	}
}

// since is how long ago t was, for the age of cached verdicts.
func (sh *shared) since(t time.Time) time.Duration { return time.Since(t) }

// registryHosts lists the hosts of the targets, in order, once each.
func (sh *shared) registryHosts() []string {
	seen := map[string]bool{}
	var out []string
	for _, t := range sh.opts.Targets {
		if !seen[t.Host] {
			seen[t.Host] = true
			out = append(out, t.Host)
		}
	}
	return out
}

// plainHTTPHosts lists the configured hosts reached over plain HTTP.
func (sh *shared) plainHTTPHosts() []string {
	var out []string
	for _, r := range sh.opts.Config.Registries {
		if r.PlainHTTP {
			out = append(out, r.Host)
		}
	}
	sort.Strings(out)
	return out
}

// hostRepository is the repository a registry's own target names
// (--registry HOST/REPO, the targets form) or, failing that, its config
// entry's repository; empty when neither names one.
func (sh *shared) hostRepository(host string) (repo, digest string) {
	for _, t := range sh.opts.Targets {
		if t.Host == host && t.Repository != "" {
			return t.Repository, t.Digest
		}
	}
	for _, r := range sh.opts.Config.Registries {
		if r.Host == host && r.Repository != "" {
			return r.Repository, ""
		}
	}
	return "", ""
}

// repositoryOn is the repository to list on host when the Tags screen
// switches registry from cur (HOST/REPO): the session's repository when
// it is on that host, else the registry's own repository, else cur's
// path on the new host.
func (sh *shared) repositoryOn(host, cur string) string {
	if h, _, _ := strings.Cut(sh.opts.Repository, "/"); h == host {
		return sh.opts.Repository
	}
	if repo, _ := sh.hostRepository(host); repo != "" {
		return host + "/" + repo
	}
	return swapHost(cur, host)
}

// imageOn is the subject to look at on host when the Referrers screen
// switches registry from cur: the session's image when it is on that
// host; else the registry's own target when it names a digest; else the
// registry's own repository with cur's tag or digest (a mirror keeps
// digests and usually tags); else cur's path on the new host.
func (sh *shared) imageOn(host, cur string) string {
	if r, err := discovery.ParseReference(sh.opts.Image); err == nil && r.Registry == host {
		return sh.opts.Image
	}
	repo, digest := sh.hostRepository(host)
	switch {
	case repo != "" && digest != "":
		return host + "/" + repo + "@" + digest
	case repo != "":
		if r, err := discovery.ParseReference(cur); err == nil {
			if r.Digest != "" {
				return host + "/" + repo + "@" + r.Digest
			}
			return host + "/" + repo + ":" + r.Tag
		}
	}
	return swapHost(cur, host)
}

// swapHost puts another registry host in front of a HOST/REPO[:TAG]
// reference, for screens that look at the same image on every registry.
func swapHost(ref, host string) string {
	_, rest, ok := strings.Cut(ref, "/")
	if !ok {
		return host
	}
	return host + "/" + rest
}
