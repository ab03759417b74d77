package ui

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"strings"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/refdoctor/refdoctor/internal/jsondoc"
	"github.com/refdoctor/refdoctor/probe"
)

// documenter is a screen whose result is a document of the CLI: w writes
// it as the command's -o json would.
type documenter interface {
	// document is the screen's result (nil when there is none yet, with
	// why) and the command whose -o json is the same document.
	document() (doc any, command, why string)
}

// saveDocument writes the current screen's document to a file in the
// working folder, named after the screen and the time, and tells the
// operator where. The document is encoded here (it is the screen's
// state now); the file is written off the update loop.
func (m *model) saveDocument() tea.Cmd {
	d, ok := m.current().(documenter)
	if !ok {
		return flash("nothing to save as JSON on this screen (w saves Registries, Tags, Referrers, Bundle, Logs and Metrics)")
	}
	doc, command, why := d.document()
	if doc == nil {
		return flash(why)
	}
	var buf bytes.Buffer
	if err := jsondoc.Encode(&buf, doc); err != nil {
		return flash("not saved: " + err.Error())
	}
	name := "refdoctor-" + strings.ToLower(tabNames[m.active][0]) + "-" + time.Now().UTC().Format("20060102-150405") + ".json"
	path := filepath.Join(m.sh.opts.workDir, name)
	data := json.RawMessage(bytes.TrimSpace(buf.Bytes()))
	return func() tea.Msg {
		if err := jsondoc.WriteFile(path, data); err != nil {
			return flashMsg{text: "not saved: " + err.Error()}
		}
		return flashMsg{text: "saved " + path + " (the document " + command + " -o json prints)"}
	}
}

func (c *compatScreen) document() (any, string, string) {
	rep := probe.Report{Registries: []probe.Result{}}
	for _, r := range c.rows {
		if r.res == nil {
			if r.err != "" {
				return nil, "", "not saved: " + r.target.String() + " has no verdict (" + r.err + "); r probes it again"
			}
			return nil, "", "not saved: the probes are still running; w saves once every row has its verdict"
		}
		rep.Registries = append(rep.Registries, *r.res)
	}
	if len(rep.Registries) == 0 {
		return nil, "", "not saved: no registry probed yet"
	}
	return rep, "refdoctor probe", ""
}

func (t *tagsScreen) document() (any, string, string) {
	if t.job.state != jobDone || t.job.res == nil {
		return nil, "", "not saved: no tag listing yet (" + t.job.state.String() + ")"
	}
	return *t.job.res, "refdoctor tags " + t.job.res.Repository, ""
}

func (r *referrersScreen) document() (any, string, string) {
	if r.comparing {
		c := r.cmp
		if c.job.state != jobDone || c.job.res == nil {
			return nil, "", "not saved: no finished comparison yet (" + c.job.state.String() + ")"
		}
		return *c.job.res, "refdoctor compare " + c.source + " " + c.image, ""
	}
	if r.job.state != jobDone || r.job.res == nil {
		return nil, "", "not saved: no finished discovery yet (" + r.job.state.String() + ")"
	}
	return *r.job.res, "refdoctor discover " + r.image + " --platforms", ""
}

func (b *bundleScreen) document() (any, string, string) {
	if b.job.state != jobDone || b.job.res == nil {
		return nil, "", "not saved: no finished validation yet (" + b.job.state.String() + ")"
	}
	return *b.job.res, "refdoctor bundle validate " + b.path, ""
}

func (l *logsScreen) document() (any, string, string) {
	if l.job.state != jobDone || l.job.res == nil {
		return nil, "", "not saved: no log read yet (" + l.job.state.String() + ")"
	}
	return *l.job.res, "refdoctor logs " + l.path, ""
}

func (m *metricsScreen) document() (any, string, string) {
	if m.job.state != jobDone || m.job.res == nil {
		return nil, "", "not saved: no answer from Prometheus yet"
	}
	return *m.job.res, "refdoctor metrics query", ""
}
