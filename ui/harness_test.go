package ui

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/colorprofile"
	"github.com/charmbracelet/x/ansi"
	"github.com/charmbracelet/x/exp/teatest/v2"
	"go.uber.org/goleak"

	"github.com/refdoctor/refdoctor/bundle"
	"github.com/refdoctor/refdoctor/bundle/signing"
	"github.com/refdoctor/refdoctor/config"
	"github.com/refdoctor/refdoctor/lab"
	"github.com/refdoctor/refdoctor/telemetry"
)

// TestMain closes the shared lab after every test and then checks that no
// goroutine the TUI started is left (teatest's own signal watcher aside).
func TestMain(m *testing.M) {
	code := m.Run()
	if labs.lab != nil {
		_ = labs.lab.Close()
	}
	closeMirrorLab()
	closeRefusedLab()
	if code == 0 {
		if err := goleak.Find(leakOptions()...); err != nil {
			fmt.Fprintln(os.Stderr, "goroutines left behind:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// leakOptions ignore what the test tools themselves leave running.
func leakOptions() []goleak.Option {
	return []goleak.Option{
		// teatest waits for SIGINT in a goroutine for the whole process.
		goleak.IgnoreAnyFunction("github.com/charmbracelet/x/exp/teatest/v2.NewTestModel.func2"),
		goleak.IgnoreTopFunction("os/signal.signal_recv"),
		goleak.IgnoreAnyFunction("os/signal.loop"),
	}
}

// goldenSpecs are lab registries whose replies carry nothing random: no
// logins, no rate-limit budgets, no delays.
func goldenSpecs() []lab.Spec {
	return []lab.Spec{
		{Name: "oci11", Profile: lab.ProfileOCI11},
		{Name: "ghcr-like", Profile: lab.ProfileFallback404},
		{Name: "olareg-405", Profile: lab.ProfileNoAPI405},
		{Name: "gar-2023", Profile: lab.ProfileHTML200},
	}
}

var labs struct {
	once sync.Once
	lab  *lab.Lab
	err  error
}

// sharedLab is one lab of goldenSpecs for the read-only tests.
func sharedLab(t testing.TB) *lab.Lab {
	t.Helper()
	labs.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		labs.lab, labs.err = lab.Start(ctx, lab.WithSpecs(goldenSpecs()...))
	})
	if labs.err != nil {
		t.Fatalf("start lab: %v", labs.err)
	}
	return labs.lab
}

// harness drives the real program (teatest) at a fixed size with colour
// off, and reads its view through Update so nothing races.
type harness struct {
	t     *testing.T
	tm    *teatest.TestModel
	lab   *lab.Lab
	dir   string
	width int
	// out is what the program wrote to the terminal so far.
	out bytes.Buffer
}

// testOptions are the TUI options of a test session on l: stable output,
// a support bundle and files in the test's folder, and no probe at start
// (a case that wants the probes opens the Registries screen), so that
// nothing runs that the case did not start.
func testOptions(t testing.TB, l *lab.Lab, dir string) Options {
	o := labOptions(l)
	o.ProbeOnStart = false
	o.Metrics = telemetry.NewMetrics()
	o.Version = "test"
	o.DiagOut = filepath.Join(dir, "support.tgz")
	return o
}

// labOptions turns an in-process lab into the TUI's options the way
// refdoctor demo turns the refdoctor-lab process into them (cli/demo.go).
func labOptions(l *lab.Lab) Options {
	info := l.Info(nil)
	cfg := config.Defaults()
	cfg.Registries = info.Config()
	o := Options{
		Config:       cfg,
		Targets:      info.Targets(),
		Image:        info.Image(),
		Repository:   info.Repository(),
		Names:        info.Names(),
		ClientOpts:   info.ClientOpts(),
		ProbeOnStart: true,
		RefillBudget: map[string]func(context.Context) error{},
	}
	for host, name := range info.RateLimited() {
		o.RefillBudget[host] = func(context.Context) error { return l.ResetRateLimit(name) }
	}
	return o
}

func newHarness(t *testing.T, l *lab.Lab, w, h int, mutate func(dir string, o *Options)) *harness {
	t.Helper()
	dir := t.TempDir()
	o := testOptions(t, l, dir)
	if mutate != nil {
		mutate(dir, &o)
	}
	m := newModel(context.Background(), o.resolve())
	tm := teatest.NewTestModel(t, testModel{m},
		teatest.WithInitialTermSize(w, h),
		teatest.WithProgramOptions(tea.WithColorProfile(colorprofile.NoTTY)))
	hs := &harness{t: t, tm: tm, lab: l, dir: dir, width: w}
	t.Cleanup(func() {
		_ = tm.Quit()
		tm.WaitFinished(t, teatest.WithFinalTimeout(20*time.Second))
		m.shutdown() // as Run does: cancel and wait for every engine run
	})
	hs.waitFor("the first frame", func(v string) bool { return strings.Contains(v, "1 Start") })
	return hs
}

// keyMsg turns a key name into the message a terminal would produce.
func keyMsg(k string) tea.KeyPressMsg {
	switch k {
	case "esc":
		return tea.KeyPressMsg{Code: tea.KeyEscape}
	case "enter":
		return tea.KeyPressMsg{Code: tea.KeyEnter}
	case "tab":
		return tea.KeyPressMsg{Code: tea.KeyTab}
	case "shift+tab":
		return tea.KeyPressMsg{Code: tea.KeyTab, Mod: tea.ModShift}
	case "pgdown":
		return tea.KeyPressMsg{Code: tea.KeyPgDown}
	case "backspace":
		return tea.KeyPressMsg{Code: tea.KeyBackspace}
	case "ctrl+c":
		return tea.KeyPressMsg{Code: 'c', Mod: tea.ModCtrl}
	}
	r := []rune(k)
	return tea.KeyPressMsg{Code: r[0], Text: k}
}

func (h *harness) keys(ks ...string) {
	for _, k := range ks {
		h.tm.Send(keyMsg(k))
	}
}

// testModel is the TUI's model with one more message: a request for the
// current frame, answered from Update so that tests read the view without
// racing the program.
type testModel struct{ *model }

// viewRequestMsg asks for the current frame and whether anything runs.
type viewRequestMsg struct{ reply chan<- frame }

// frame is the view at one moment, with what could still change it.
type frame struct {
	view  string
	busy  int64  // engine runs under way
	flash string // a flash message, which expires
}

func (t testModel) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	if r, ok := msg.(viewRequestMsg); ok {
		r.reply <- frame{view: t.render(), busy: t.sh.busy.Load(), flash: t.flash}
		return t, nil
	}
	_, cmd := t.model.Update(msg)
	return t, cmd
}

// frame is the program's current frame.
func (h *harness) frame() frame {
	reply := make(chan frame, 1)
	h.tm.Send(viewRequestMsg{reply: reply})
	select {
	case f := <-reply:
		return f
	case <-time.After(10 * time.Second):
		h.t.Fatal("the program did not answer a view request")
		return frame{}
	}
}

// view is the program's current frame, as text.
func (h *harness) view() string { return h.frame().view }

// waitFor polls the view until cond holds.
func (h *harness) waitFor(what string, cond func(string) bool) string {
	h.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var v string
	for time.Now().Before(deadline) {
		v = h.view()
		if cond(v) {
			return v
		}
		time.Sleep(40 * time.Millisecond)
	}
	h.t.Fatalf("waiting for %s; last view:\n%s", what, v)
	return v
}

// osc52 is the sequence that sets the terminal's clipboard.
var osc52 = regexp.MustCompile("\x1b\\]52;c;([A-Za-z0-9+/=]*)\x07")

// clipboard is every text the program has put on the terminal's
// clipboard (OSC 52), oldest first, as the terminal received it.
func (h *harness) clipboard() []string {
	h.t.Helper()
	if _, err := io.Copy(&h.out, h.tm.Output()); err != nil {
		h.t.Fatalf("read the program's output: %v", err)
	}
	var out []string
	for _, m := range osc52.FindAllSubmatch(h.out.Bytes(), -1) {
		text, err := base64.StdEncoding.DecodeString(string(m[1]))
		if err != nil {
			h.t.Fatalf("OSC 52 with bad base64 %q: %v", m[1], err)
		}
		out = append(out, string(text))
	}
	return out
}

// waitForCopy waits until the clipboard's latest text is want and
// returns how many texts were copied in all.
func (h *harness) waitForCopy(what, want string) int {
	h.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var got []string
	for time.Now().Before(deadline) {
		if got = h.clipboard(); len(got) > 0 && got[len(got)-1] == want {
			return len(got)
		}
		time.Sleep(40 * time.Millisecond)
	}
	h.t.Fatalf("waiting for %s on the clipboard: want %q, copied so far %q", what, want, got)
	return 0
}

func contains(subs ...string) func(string) bool {
	return func(v string) bool {
		for _, s := range subs {
			if !strings.Contains(v, s) {
				return false
			}
		}
		return true
	}
}

// idle is true once nothing runs: no spinner text in the status line.
func idle(v string) bool { return !strings.Contains(v, "running") && !strings.Contains(v, "probing") }

// settle waits until nothing runs and no flash message shows: the frame
// is then what the keys sent so far lead to, whatever the timing.
func (h *harness) settle() {
	h.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		f := h.frame()
		if f.busy == 0 && f.flash == "" {
			return
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("still %d runs and flash %q after 60s:\n%s", f.busy, f.flash, f.view)
		}
		time.Sleep(40 * time.Millisecond)
	}
}

// final settles, quits and returns the last View() of the model,
// normalised.
func (h *harness) final() string {
	h.t.Helper()
	h.settle()
	if err := h.tm.Quit(); err != nil {
		h.t.Fatal(err)
	}
	fm := h.tm.FinalModel(h.t, teatest.WithFinalTimeout(20*time.Second))
	return normalize(fm.(testModel).View().Content, h.lab, h.dir)
}

var (
	anyLabHost = regexp.MustCompile(`127\.0\.0\.1:\d+`)
	duration   = regexp.MustCompile(`( *)\d+ms\b`)
)

// normalize makes a view independent of the run: lab addresses become the
// registries' names, the test's folder <tmp>, and durations 0ms. A
// duration after two spaces or more sits right-aligned in a column and
// keeps its width; after one space it is prose and just becomes 0ms. A
// scrollbar in the last column stays in the last column.
func normalize(v string, l *lab.Lab, dir string) string {
	// Colour is off; what is left (the text field's reversed cursor)
	// would only split the addresses replaced below.
	v = ansi.Strip(v)
	lines := strings.Split(v, "\n")
	width := 0
	for _, line := range lines {
		width = max(width, ansi.StringWidth(line))
	}
	for i, line := range lines {
		bar := ""
		if ansi.StringWidth(line) == width {
			if r := []rune(line); len(r) > 0 && (r[len(r)-1] == '│' || r[len(r)-1] == '█') {
				bar, line = string(r[len(r)-1]), string(r[:len(r)-1])
			}
		}
		if l != nil {
			for _, r := range l.Registries {
				line = strings.ReplaceAll(line, r.Host, "{"+r.Name+"}")
			}
		}
		line = anyLabHost.ReplaceAllString(line, "127.0.0.1:PORT")
		line = duration.ReplaceAllStringFunc(line, func(m string) string {
			spaces := len(m) - len(strings.TrimLeft(m, " "))
			if spaces >= 2 {
				return strings.Repeat(" ", len(m)-3) + "0ms"
			}
			return strings.Repeat(" ", spaces) + "0ms"
		})
		if dir != "" {
			line = strings.ReplaceAll(line, dir, "<tmp>")
		}
		// Replacements change line lengths; the padding after them means
		// nothing, except before a scrollbar.
		line = strings.TrimRight(line, " ")
		if bar != "" {
			line += strings.Repeat(" ", max(0, width-1-ansi.StringWidth(line))) + bar
		}
		lines[i] = line
	}
	return strings.Join(lines, "\n")
}

// writeLog writes an export log in the slog text format the exporter uses.
func writeLog(t testing.TB, dir string) string {
	t.Helper()
	lines := []string{
		`time=2026-11-27T12:00:00.000Z level=INFO msg="Probing 3 registries for OCI referrer capabilities before export"`,
		`time=2026-11-27T12:00:00.042Z level=INFO msg="Registry gcr.io: OCI 1.1 (referrers API supported, version=OCI-Distribution/2.1, probe_ms=42)"`,
		`time=2026-11-27T12:00:00.085Z level=WARN msg="Registry ghcr.io: OCI 1.0 (using fallback tag discovery, version=registry/2.0, probe_ms=85)"`,
		`time=2026-11-27T12:00:01.000Z level=WARN msg="Failed to probe capabilities for registry registry-1.docker.io: RateLimited (referrers API unknown, version=registry/2.0, probe_ms=12)"`,
		`time=2026-11-27T12:00:02.000Z level=INFO msg="export finished"`,
	}
	p := filepath.Join(dir, "export-center.log")
	if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// bundles copies the bundle package's good fixture and writes a tampered
// copy whose first referrer has one byte changed (same size).
func bundles(t testing.TB, dir string) (good, tampered string) {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("..", "bundle", "testdata", "good.tgz"))
	if err != nil {
		t.Fatalf("bundle fixture: %v", err)
	}
	good = filepath.Join(dir, "good.tgz")
	if err := os.WriteFile(good, src, 0o600); err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(src))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	tw := tar.NewWriter(zw)
	done := false
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if !done && strings.HasPrefix(hdr.Name, "referrers/") && strings.HasSuffix(hdr.Name, ".json") && len(data) > 10 {
			// Same size, valid JSON, another digest: the empty config's
			// size changed, as a careless edit would.
			if i := bytes.Index(data, []byte(`"size":2}`)); i >= 0 {
				data[i+len(`"size":`)] = '3'
				done = true
			}
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	if !done {
		t.Fatal("the fixture has no referrer to tamper with")
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	tampered = filepath.Join(dir, "tampered.tgz")
	if err := os.WriteFile(tampered, out.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return good, tampered
}

// signBundle signs the bundle at file in place with a fixed Ed25519 key
// (its signatures are deterministic, so the screen's golden is too) and
// returns the public key's file.
func signBundle(t testing.TB, dir, file string) (pub string) {
	t.Helper()
	seed := sha256.Sum256([]byte("refdoctor ui golden signing key"))
	der, err := x509.MarshalPKCS8PrivateKey(ed25519.NewKeyFromSeed(seed[:]))
	if err != nil {
		t.Fatal(err)
	}
	key, err := signing.ParseSigningKey(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bundle.AttachSignature(context.Background(), file, key.SignManifest, false); err != nil {
		t.Fatal(err)
	}
	pubPEM, err := key.Public().PEM()
	if err != nil {
		t.Fatal(err)
	}
	pub = filepath.Join(dir, "export.pub")
	if err := os.WriteFile(pub, pubPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	return pub
}
