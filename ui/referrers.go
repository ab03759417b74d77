package ui

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"

	"github.com/refdoctor/refdoctor/discovery"
	"github.com/refdoctor/refdoctor/finding"
	"github.com/refdoctor/refdoctor/internal/human"
)

// referrersScreen discovers the referrers of the image (and of each of its
// platform manifests) and shows the tree: how each referrer was found
// (api, tag-index, cosign-tag, index-attestation), its category, artifact
// type and size, and the findings (disagreements, platform hints).
type referrersScreen struct {
	sh        *shared
	image     string
	job       job[discovery.Event, discovery.Result]
	found     []discovery.Referrer // as they arrive
	exchanges int
	started   bool
	pane      pane
	w, h      int
}

func newReferrersScreen(sh *shared) *referrersScreen {
	return &referrersScreen{sh: sh, image: sh.opts.Image, pane: newPane(sh)}
}

func (r *referrersScreen) SetSize(w, h int) {
	r.w, r.h = w, h
	r.pane.setSize(w, max(1, h-1))
	r.refresh()
}

func (r *referrersScreen) capturing() bool { return false }

func (r *referrersScreen) activate() tea.Cmd {
	if r.started {
		return nil
	}
	r.started = true
	return r.discover()
}

func (r *referrersScreen) discover() tea.Cmd {
	if r.image == "" {
		r.job.reset()
		return nil
	}
	sh, image := r.sh, r.image
	cmd := r.job.start(sh, scrReferrers, func(ctx context.Context, emit func(discovery.Event)) (discovery.Result, error) {
		opts := append(sh.discoveryOpts(), discovery.WithPlatforms(true), discovery.WithEvents(emit))
		return discovery.Discover(ctx, image, opts...)
	})
	r.found, r.exchanges = nil, 0
	r.refresh()
	return cmd
}

func (r *referrersScreen) Update(msg tea.Msg) (screen, tea.Cmd) {
	switch msg := msg.(type) {
	case eventMsg[discovery.Event]:
		if !r.job.event(msg) {
			return r, nil
		}
		switch ev := msg.ev; ev.Kind {
		case discovery.EventReferrerFound:
			if ev.Referrer != nil {
				r.found = append(r.found, *ev.Referrer)
			}
		case discovery.EventExchange:
			r.exchanges++
		}
		r.refresh()
	case doneMsg[discovery.Result]:
		if r.job.done(msg, false) {
			r.refresh()
		}
	case targetsChangedMsg:
		r.job.reset()
		r.image, r.started = r.sh.opts.Image, false
		r.refresh()
	case tea.KeyPressMsg:
		k := r.sh.keys
		switch {
		case key.Matches(msg, k.Reload):
			return r, r.discover()
		case key.Matches(msg, k.NextRegistry), key.Matches(msg, k.PrevRegistry):
			step := 1
			if key.Matches(msg, k.PrevRegistry) {
				step = -1
			}
			if next := nextHost(r.sh.registryHosts(), r.image, step); next != "" {
				r.image = swapHost(r.image, next)
				return r, r.discover()
			}
			return r, nil
		}
		return r, r.pane.update(msg)
	case tea.MouseMsg:
		return r, r.pane.update(msg)
	}
	return r, nil
}

func (r *referrersScreen) back() (bool, tea.Cmd) {
	if !r.job.stop() {
		return false, nil
	}
	r.refresh()
	return true, flash("discovery stopped")
}

func (r *referrersScreen) stop() { r.job.stop() }

func (r *referrersScreen) help() bindings {
	k := r.sh.keys
	return bindings{
		short: []key.Binding{k.Reload, k.PrevRegistry, k.NextRegistry},
		full:  [][]key.Binding{{k.Up, k.Down, k.PageUp, k.PageDown, k.Top, k.Bottom}, {k.Reload, k.PrevRegistry, k.NextRegistry, k.Back}},
	}
}

func (r *referrersScreen) View() string {
	return trunc(r.headline(), r.w) + "\n" + r.pane.view()
}

func (r *referrersScreen) headline() string {
	st := r.sh.st
	if r.image == "" {
		return st.Header.Render("no image")
	}
	host, _, _ := strings.Cut(r.image, "/")
	head := st.Header.Render(r.sh.name(host)) + " "
	switch r.job.state {
	case jobRunning:
		return head + st.paint(toneRun, r.sh.frame+" discovering: "+strconv.Itoa(len(r.found))+" found, "+human.Count(r.exchanges, "request"))
	case jobDone:
		return head + human.Count(r.job.res.Count(), "referrer") + " · " + st.word(string(r.job.res.Outcome))
	case jobFailed, jobStopped:
		return head + st.word(r.job.state.String())
	}
	return head
}

// refresh rebuilds the viewport's text from the data (in Update, never in
// View).
func (r *referrersScreen) refresh() {
	st, w := r.sh.st, r.pane.width()
	var lines []string
	add := func(s ...string) { lines = append(lines, s...) }
	if r.image == "" {
		r.pane.setContent("No image to look at.\n\nSet one on the Start screen (1, then e): HOST/REPO:TAG or HOST/REPO@DIGEST.")
		return
	}
	add(trunc(st.Label.Render("image    ")+r.image, w))
	switch {
	case r.job.res != nil:
		res := r.job.res
		if res.Subject.Digest != "" {
			add(trunc(st.Label.Render("digest   ")+res.Subject.Digest, w), trunc(st.Label.Render("type     ")+res.Subject.MediaType, w))
		}
		if res.Method != "" {
			how := map[discovery.Method]string{discovery.MethodAPI: "referrers API", discovery.MethodTags: "referrers tag schema"}[res.Method]
			add(trunc(st.Label.Render("method   ")+string(res.Method)+" ("+how+"), "+human.Count(res.Requests, "request"), w))
		}
		add("", st.Header.Render(fmt.Sprintf("REFERRERS (%d)", len(res.Referrers))))
		add(referrerTree(st, res.Referrers, w)...)
		for _, p := range res.Platforms {
			add("", st.Header.Render(fmt.Sprintf("PLATFORM %s %s (%d)", p.Platform, discovery.ShortDigest(p.Digest), len(p.Referrers))))
			add(referrerTree(st, p.Referrers, w)...)
		}
		add("", st.Label.Render("sources: api = referrers API · tag-index = sha256-<hex> index tag ·"),
			st.Label.Render("cosign-tag = .sig/.att/.sbom tag · index-attestation = inside the index"))
		if len(res.Findings) > 0 {
			add("", st.Header.Render(fmt.Sprintf("FINDINGS (%d)", len(res.Findings))))
			add(findingLines(st, r.sh.namedFindings(res.Findings), w)...)
		}
		if res.Outcome == finding.OutcomeIncomplete {
			add("", st.word("incomplete")+": the list above is not the whole answer (see findings).")
		}
	case r.job.state == jobFailed:
		add("", st.word("error")+" "+r.job.err)
	default:
		if len(r.found) > 0 {
			add("", st.Header.Render(fmt.Sprintf("FOUND SO FAR (%d)", len(r.found))))
			add(referrerTree(st, r.found, w)...)
		}
		if r.job.state == jobStopped {
			add("", "stopped; r discovers again")
		}
	}
	r.pane.setContent(strings.Join(lines, "\n"))
}

// referrerTree draws referrers as a tree with fixed columns that fit w.
func referrerTree(st styles, rs []discovery.Referrer, w int) []string {
	if len(rs) == 0 {
		return []string{"  (none)"}
	}
	var out []string
	var walk func(rs []discovery.Referrer, indent string)
	walk = func(rs []discovery.Referrer, indent string) {
		for i, ref := range rs {
			branch, next := "├── ", "│   "
			if i == len(rs)-1 {
				branch, next = "└── ", "    "
			}
			prefix := indent + branch
			// Narrow screens drop the digest before the artifact type.
			digestW := 20
			if w < 100 {
				digestW = 0
			}
			fixed := len([]rune(prefix)) + 12 + digestW + 7 + 17
			typeW := max(8, w-fixed)
			line := prefix + pad(string(ref.Category), 11, false) + " " + pad(trunc(ref.ArtifactType, typeW), typeW, false) + " "
			if digestW > 0 {
				line += pad(discovery.ShortDigest(ref.Digest), 19, false) + " "
			}
			line += pad(human.Size(ref.Size), 6, true) + " " + st.paint(toneAccent, string(ref.Source))
			out = append(out, trunc(line, w))
			walk(ref.Referrers, indent+next)
		}
	}
	walk(rs, "  ")
	return out
}
