package ui

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/viewport"
	tea "charm.land/bubbletea/v2"

	"github.com/refdoctor/refdoctor/discovery"
	"github.com/refdoctor/refdoctor/finding"
)

// referrersScreen discovers the referrers of the image (and of each of its
// platform manifests) and shows the tree: how each referrer was found
// (api, tag-index, cosign-tag, index-attestation), its category, artifact
// type and size, and the findings (disagreements, platform hints).
type referrersScreen struct {
	sh        *shared
	image     string
	state     string // idle, discovering, done, error, stopped
	err       string
	found     []discovery.Referrer // as they arrive
	exchanges int
	res       *discovery.Result
	cur       run
	started   bool
	vp        viewport.Model
	w, h      int
}

func newReferrersScreen(sh *shared) *referrersScreen {
	return &referrersScreen{sh: sh, image: sh.opts.Image, state: "idle", vp: newViewport(sh)}
}

func (r *referrersScreen) SetSize(w, h int) {
	r.w, r.h = w, h
	r.vp.SetWidth(w)
	r.vp.SetHeight(max(1, h-1))
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
	r.cur.stop()
	if r.image == "" {
		return nil
	}
	sh, image := r.sh, r.image
	r.state, r.err, r.res, r.found, r.exchanges = "discovering", "", nil, nil, 0
	var cmd tea.Cmd
	r.cur, cmd = sh.start(scrReferrers, func(ctx context.Context, emit func(any)) (any, error) {
		opts := append(sh.discoveryOpts(), discovery.WithPlatforms(true), discovery.WithEvents(func(ev discovery.Event) { emit(ev) }))
		return discovery.Discover(ctx, image, opts...)
	})
	r.refresh()
	return cmd
}

func (r *referrersScreen) Update(msg tea.Msg) (screen, tea.Cmd) {
	switch msg := msg.(type) {
	case eventMsg:
		if msg.run != r.cur.id {
			return r, nil
		}
		if ev, ok := msg.ev.(discovery.Event); ok {
			switch ev.Kind {
			case discovery.EventReferrerFound:
				if ev.Referrer != nil {
					r.found = append(r.found, *ev.Referrer)
				}
			case discovery.EventExchange:
				r.exchanges++
			}
			r.refresh()
		}
	case doneMsg:
		if msg.run != r.cur.id {
			return r, nil
		}
		r.cur = run{}
		res, _ := msg.val.(discovery.Result)
		switch {
		case errors.Is(msg.err, context.Canceled):
			r.state = "stopped"
		case msg.err != nil:
			r.state, r.err = "error", msg.err.Error()
		default:
			r.res, r.state = &res, "done"
		}
		r.refresh()
	case targetsChangedMsg:
		r.stop()
		r.image, r.started, r.res, r.state = r.sh.opts.Image, false, nil, "idle"
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
		return r, scrollKeys(r.sh, &r.vp, msg)
	case tea.MouseMsg:
		return r, scrollKeys(r.sh, &r.vp, msg)
	}
	return r, nil
}

func (r *referrersScreen) back() (bool, tea.Cmd) {
	if r.cur.cancel == nil {
		return false, nil
	}
	r.stop()
	r.state = "stopped"
	r.refresh()
	return true, nil
}

func (r *referrersScreen) stop() {
	r.cur.stop()
	r.cur = run{}
}

func (r *referrersScreen) help() bindings {
	k := r.sh.keys
	return bindings{
		short: []key.Binding{k.Reload, k.PrevRegistry, k.NextRegistry},
		full:  [][]key.Binding{{k.Up, k.Down, k.PageUp, k.PageDown, k.Top, k.Bottom}, {k.Reload, k.PrevRegistry, k.NextRegistry, k.Back}},
	}
}

func (r *referrersScreen) View() string {
	return trunc(r.headline(), r.w) + "\n" + r.vp.View()
}

func (r *referrersScreen) headline() string {
	st := r.sh.st
	if r.image == "" {
		return st.Header.Render("no image")
	}
	host, _, _ := strings.Cut(r.image, "/")
	head := st.Header.Render(r.sh.name(host)) + " "
	switch r.state {
	case "discovering":
		return head + st.paint(toneRun, r.sh.frame+" discovering: "+itoa(int64(len(r.found)))+" found, "+itoa(int64(r.exchanges))+" requests")
	case "done":
		return head + itoa(int64(r.res.Count())) + " referrers · " + st.word(string(r.res.Outcome))
	case "error", "stopped":
		return head + st.word(r.state)
	}
	return head
}

// refresh rebuilds the viewport's text from the data (in Update, never in
// View).
func (r *referrersScreen) refresh() {
	st, w := r.sh.st, max(r.w, 20)
	var lines []string
	add := func(s ...string) { lines = append(lines, s...) }
	if r.image == "" {
		r.vp.SetContent("No image to look at.\n\nSet one on the Start screen (1, then e): HOST/REPO:TAG or HOST/REPO@DIGEST.")
		return
	}
	add(trunc(st.Label.Render("image    ")+r.image, w))
	switch {
	case r.res != nil:
		res := r.res
		if res.Subject.Digest != "" {
			add(trunc(st.Label.Render("digest   ")+res.Subject.Digest, w), trunc(st.Label.Render("type     ")+res.Subject.MediaType, w))
		}
		if res.Method != "" {
			how := map[discovery.Method]string{discovery.MethodAPI: "referrers API", discovery.MethodTags: "referrers tag schema"}[res.Method]
			add(trunc(st.Label.Render("method   ")+string(res.Method)+" ("+how+"), "+itoa(int64(res.Requests))+" requests", w))
		}
		incomplete := res.Outcome == finding.OutcomeIncomplete
		add("", st.Header.Render(fmt.Sprintf("REFERRERS (%d)", len(res.Referrers))))
		add(referrerTree(st, res.Referrers, w, incomplete)...)
		for _, p := range res.Platforms {
			add("", st.Header.Render(fmt.Sprintf("PLATFORM %s %s (%d)", p.Platform, discovery.ShortDigest(p.Digest), len(p.Referrers))))
			add(referrerTree(st, p.Referrers, w, incomplete)...)
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
	case r.state == "error":
		add("", st.word("error")+" "+r.err)
	default:
		if len(r.found) > 0 {
			add("", st.Header.Render(fmt.Sprintf("FOUND SO FAR (%d)", len(r.found))))
			add(referrerTree(st, r.found, w, false)...)
		}
		if r.state == "stopped" {
			add("", "stopped; r discovers again")
		}
	}
	r.vp.SetContent(strings.Join(lines, "\n"))
}

// referrerTree draws referrers as a tree with fixed columns that fit w;
// an empty list says "none" only when the read was complete.
func referrerTree(st styles, rs []discovery.Referrer, w int, incomplete bool) []string {
	if len(rs) == 0 {
		if incomplete {
			return []string{"  (none read: the lookup did not complete)"}
		}
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
			line += pad(humanSize(ref.Size), 6, true) + " " + st.paint(toneAccent, string(ref.Source))
			out = append(out, trunc(line, w))
			walk(ref.Referrers, indent+next)
		}
	}
	walk(rs, "  ")
	return out
}

func humanSize(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1fG", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1fM", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1fK", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%dB", n)
}
