package ui

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"

	"github.com/refdoctor/refdoctor/probe"
	"github.com/refdoctor/refdoctor/telemetry"
)

// promHistoryPoints is how many steps of the window a sparkline shows.
const promHistoryPoints = 12

// metricsScreen shows the exporter's history from Prometheus, when the
// session is pointed at one (the runbook's three queries, per registry,
// with a sparkline of the failure rate), and this session's own three
// counters, read from telemetry.Metrics after every finished check.
type metricsScreen struct {
	sh      *shared
	samples []metricSample

	// Prometheus: the query in flight, its answer or the error.
	job   job[none, telemetry.QueryReport]
	rep   *telemetry.QueryReport // the last answer, kept while asking again
	asked bool

	pane pane
	w, h int
}

func newMetricsScreen(sh *shared) *metricsScreen {
	return &metricsScreen{sh: sh, pane: newPane(sh)}
}

func (m *metricsScreen) SetSize(w, h int) {
	m.w, m.h = w, h
	m.pane.setSize(w, max(1, h))
	m.refresh()
}

func (m *metricsScreen) capturing() bool { return false }

func (m *metricsScreen) activate() tea.Cmd {
	m.snapshot()
	if m.asked {
		return nil
	}
	return m.ask()
}

// ask runs the runbook's queries against Prometheus in the background.
func (m *metricsScreen) ask() tea.Cmd {
	prom := m.sh.opts.Prometheus
	if prom == nil {
		return nil
	}
	m.asked = true
	cfg := m.sh.opts.Config
	cmd := m.job.start(m.sh, scrMetrics, func(ctx context.Context, _ func(none)) (telemetry.QueryReport, error) {
		return prom.Query(ctx, telemetry.QueryOptions{
			ExpectsAPI:    func(host string) (bool, bool) { return probe.DefaultMatrix().ExpectsAPI(cfg, host) },
			HistoryPoints: promHistoryPoints,
		}), nil
	})
	m.refresh()
	return cmd
}

func (m *metricsScreen) snapshot() {
	m.samples = m.sh.opts.Metrics.Snapshot()
	m.refresh()
}

func (m *metricsScreen) Update(msg tea.Msg) (screen, tea.Cmd) {
	switch msg := msg.(type) {
	case doneMsg[telemetry.QueryReport]:
		if m.job.done(msg, false) {
			if m.job.res != nil {
				m.rep = m.job.res
			}
			m.refresh()
		}
	case metricsRefreshMsg:
		m.snapshot()
	case styleChangedMsg:
		m.refresh()
	case tea.KeyPressMsg:
		if key.Matches(msg, m.sh.keys.Reload) {
			m.snapshot()
			return m, m.ask()
		}
		return m, m.pane.update(msg)
	case tea.MouseMsg:
		return m, m.pane.update(msg)
	}
	return m, nil
}

func (m *metricsScreen) back() (bool, tea.Cmd) {
	if m.job.stop() {
		m.refresh()
		return true, flash("query stopped")
	}
	return false, nil
}
func (m *metricsScreen) stop() { m.job.stop() }

func (m *metricsScreen) help() bindings {
	k := m.sh.keys
	return bindings{short: []key.Binding{k.Reload}, full: [][]key.Binding{{k.Up, k.Down, k.PageUp, k.PageDown}, {k.Reload}}}
}

func (m *metricsScreen) View() string { return m.pane.view() }

// labelTone colours an api_supported label value like the verdict it
// stands for.
func labelTone(v string) tone {
	switch v {
	case "true":
		return toneOK
	case "false", "unknown":
		return toneWarn
	}
	return toneNone
}

var metricHelp = []struct{ name, labels, about string }{
	{telemetry.MetricCapabilitiesProbed, "api_supported", "capability probes by verdict (true, false, unknown = could not decide)"},
	{telemetry.MetricDiscoveryMethod, "method", "referrer discoveries by method (api or tags)"},
	{telemetry.MetricDiscoveryFailures, "", "discoveries that failed or were partial"},
}

func (m *metricsScreen) refresh() {
	sh, st, w := m.sh, m.sh.st, m.pane.width()
	var lines []string
	add := func(s ...string) { lines = append(lines, s...) }

	switch prom := sh.opts.Prometheus; {
	case prom == nil:
		add(trunc(st.Title.Render("Only this session's counters"), w))
		add(wrapIndent("  ", "refdoctor is not pointed at Prometheus, so what follows is what this run counted since it started, not the exporter's history. To read the history, start refdoctor (or refdoctor demo) with --prometheus URL, or set prometheus_url in the [telemetry] table of the config; refdoctor serve exports the counters for Prometheus to scrape.", w)...)
	case m.job.running() && m.rep == nil:
		add(trunc(st.Title.Render("Prometheus")+st.Label.Render("  "+prom.URL()), w), "", "  "+sh.frame+" asking Prometheus for the last "+telemetry.FormatWindow(telemetry.DefaultWindow)+"…")
	case m.job.state == jobFailed:
		add(trunc(st.Title.Render("Prometheus")+st.Label.Render("  "+prom.URL()), w), "")
		add(wrapIndent("  "+st.word("fail")+" ", m.job.err, w)...)
	case m.rep != nil:
		rep := *m.rep
		head := st.Title.Render("Prometheus") + st.Label.Render("  "+rep.Prometheus+" · last "+rep.Window+" · r asks again")
		if m.job.running() {
			head += st.Label.Render(" · " + sh.frame + " asking")
		}
		add(trunc(head, w))
		if rep.Incomplete {
			add("")
			add(findingLines(st, sh.namedFindings(rep.Findings), w)...)
			add(wrapIndent("  ", "Nothing below comes from Prometheus: its answer is missing, not empty.", w)...)
			break
		}
		add(promLines(sh, rep, w)...)
		if len(rep.Findings) > 0 {
			add("", st.Header.Render(fmt.Sprintf("  FINDINGS (%d)", len(rep.Findings))))
			add(findingLines(st, sh.namedFindings(rep.Findings), w)...)
		}
	}

	add("", trunc(st.Title.Render("This session's counters")+st.Label.Render("  what refdoctor counted since it started; r reads again"), w))
	if sh.opts.Metrics == nil {
		add("", "  metrics are off in this session")
		m.pane.setContent(strings.Join(lines, "\n"))
		return
	}
	for _, mh := range metricHelp {
		add("", trunc(st.Header.Render(mh.name), w), trunc(st.Label.Render("  "+mh.about), w))
		var rows []metricSample
		total := 0.0
		for _, s := range m.samples {
			if s.Name == mh.name {
				rows = append(rows, s)
				total += s.Value
			}
		}
		if len(rows) == 0 {
			add("  no samples yet")
			continue
		}
		// By label, then by the name the operator knows the registry by.
		sort.SliceStable(rows, func(i, j int) bool {
			if a, b := rows[i].Labels[mh.labels], rows[j].Labels[mh.labels]; mh.labels != "" && a != b {
				return a < b
			}
			return sh.name(rows[i].Labels["registry"]) < sh.name(rows[j].Labels["registry"])
		})
		head := "  " + pad("REGISTRY", 22, false)
		if mh.labels != "" {
			head += pad(strings.ToUpper(mh.labels), 15, false)
		}
		add(st.Header.Render(head + pad("VALUE", 6, true)))
		for _, s := range rows {
			line := "  " + pad(trunc(sh.name(s.Labels["registry"]), 21), 22, false)
			if mh.labels != "" {
				v := s.Labels[mh.labels]
				line += st.paint(labelTone(v), pad(v, 15, false))
			}
			line += pad(fmt.Sprint(s.Value), 6, true)
			add(trunc(line, w))
		}
		gap := 0
		if mh.labels != "" {
			gap = 15
		}
		add(st.Label.Render("  " + pad("total", 22+gap, false) + pad(fmt.Sprint(total), 6, true)))
	}
	m.pane.setContent(strings.Join(lines, "\n"))
}

// promLines is one row per registry of a Prometheus report: probes by
// verdict and discoveries by method over the window (increase), the
// failure rate, and a sparkline of it across the window. Narrow panes
// drop the probe column first.
func promLines(sh *shared, rep telemetry.QueryReport, width int) []string {
	st := sh.st
	var out []string
	if len(rep.Registries) == 0 {
		return append(out, "", "  Prometheus holds no export_* series for the last "+rep.Window+".")
	}
	wide := width >= 72
	spark := rep.HistorySlots()
	nameW := clamp(width-2-9-8-spark-4, 10, 22)
	if wide {
		nameW = clamp(width-2-13-9-8-spark-5, 10, 22)
	}
	head := "  " + pad("REGISTRY", nameW+1, false)
	if wide {
		head += pad("PROBES T/F/?", 14, false)
	}
	head += pad("API/TAGS", 10, false) + pad("FAIL/S", 8, false) + "LAST " + rep.Window
	out = append(out, "", trunc(st.Header.Render(head), width))
	for _, r := range rep.Registries {
		// The middle goes first: the port tells lab registries apart.
		line := "  " + pad(truncMiddle(sh.name(r.Registry), nameW), nameW+1, false)
		if wide {
			probes := count(r.Probes["true"]) + "/" + count(r.Probes["false"]) + "/" + count(r.Probes["unknown"])
			line += pad(probes, 14, false)
		}
		line += pad(count(r.Discoveries["api"])+"/"+count(r.Discoveries["tags"]), 10, false)
		rate := telemetry.FormatNumber(r.FailureRate)
		tone := toneOK
		if r.FailureRate > 0 {
			tone = toneFail
		}
		line += st.paint(tone, pad(rate, 8, false))
		if len(r.FailureHistory) > 0 {
			line += st.paint(tone, rep.Sparkline(r.FailureHistory))
		} else {
			line += st.Label.Render("-")
		}
		out = append(out, trunc(line, width))
	}
	out = append(out, trunc(st.Label.Render("  counts over the window · T/F/? api_supported true/false/unknown"), width))
	return out
}

// count writes an increase() value as a whole count: Prometheus
// extrapolates to the window's edges, so 2.03 means 2.
func count(v float64) string {
	return telemetry.FormatNumber(float64(int64(v + 0.5)))
}
