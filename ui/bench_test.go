package ui

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/charmbracelet/colorprofile"

	"github.com/refdoctor/refdoctor/discovery"
	"github.com/refdoctor/refdoctor/probe"
)

// viewBudget is what one View() of a big screen may cost: a frame at
// 60 fps has 16ms, and the screen must never be the reason for a stall.
const viewBudget = 5 * time.Millisecond

func benchShared(tb testing.TB) *shared {
	o := Options{Version: "bench"}.resolve()
	sh := newShared(context.Background(), &o)
	sh.st = newStyles(true, colorprofile.TrueColor) // colour costs: measure it
	tb.Cleanup(sh.cancel)
	return sh
}

// bigCompat is a compatibility table of n probed registries.
func bigCompat(tb testing.TB, n int) *compatScreen {
	sh := benchShared(tb)
	for i := range n {
		sh.opts.Targets = append(sh.opts.Targets, probe.Target{Host: fmt.Sprintf("registry-%04d.example.com", i), Repository: "team/app"})
	}
	c := newCompatScreen(sh)
	matches, differs := true, false
	for i, r := range c.rows {
		exp := &probe.Expectation{Kind: "harbor", Name: "Harbor", ReferrersAPI: "supported", LastSeen: "2026-11", Matches: &matches}
		verdict := probe.Supported
		if i%3 == 0 {
			verdict, exp.Matches = probe.Unsupported, &differs
		}
		r.state = rowDone
		r.res = &probe.Result{Registry: r.target.Host, Kind: "harbor", ReferrersAPI: verdict, FallbackTags: "ok", Auth: "bearer",
			DistributionAPIVersion: "registry/2.0", ProbeMS: int64(i), Expected: exp,
			RateLimit: &probe.RateLimit{Limit: "100;w=21600", Remaining: "42"}}
	}
	c.refreshTable()
	c.SetSize(120, 40)
	c.tbl.cursor = n / 2
	return c
}

// bigTags is a tag listing of n tags, four per subject.
func bigTags(tb testing.TB, n int) *tagsScreen {
	sh := benchShared(tb)
	sh.opts.Repository = "registry.example.com/team/app"
	t := newTagsScreen(sh)
	res := discovery.TagListing{Repository: sh.opts.Repository}
	yes := true
	for s := 0; s < n/4; s++ {
		hex := fmt.Sprintf("%064x", s)
		subj := discovery.TagSubject{Subject: "sha256:" + hex, Exists: &yes}
		for _, k := range []string{"", ".sig", ".att", ".sbom"} {
			subj.Tags = append(subj.Tags, discovery.TagEntry{Tag: "sha256-" + hex + k, Kind: map[string]string{"": "index", ".sig": "sig", ".att": "att", ".sbom": "sbom"}[k], Digest: "sha256:" + strings.Repeat("ab", 32)})
		}
		res.Subjects = append(res.Subjects, subj)
		res.TagsTotal += 4
	}
	t.res, t.job.state, t.job.res = &res, jobDone, &res
	t.SetSize(120, 40)
	t.cursor = len(t.lines) / 2
	return t
}

// BenchmarkCompatView1000 renders a 1,000-row compatibility table; the
// budget is 5 ms a frame (reported as ms/view, and the benchmark fails
// over it outside the race detector, which slows everything).
func BenchmarkCompatView1000(b *testing.B) {
	c := bigCompat(b, 1000)
	b.ReportAllocs()
	for b.Loop() {
		_ = c.View()
	}
	checkViewBudget(b)
}

// BenchmarkTagsView10000 renders a 10,000-tag listing, same budget.
func BenchmarkTagsView10000(b *testing.B) {
	t := bigTags(b, 10000)
	b.ReportAllocs()
	for b.Loop() {
		_ = t.View()
	}
	checkViewBudget(b)
}

func checkViewBudget(b *testing.B) {
	perView := b.Elapsed() / time.Duration(b.N)
	b.ReportMetric(float64(perView.Microseconds())/1000, "ms/view")
	if !raceEnabled && perView > viewBudget {
		b.Errorf("View() takes %v, over the %v budget", perView, viewBudget)
	}
}

// TestBigViewsFit checks the big views still fit the window.
func TestBigViewsFit(t *testing.T) {
	c := bigCompat(t, 1000)
	if got := strings.Count(c.View(), "\n") + 1; got > 40 {
		t.Errorf("compat view is %d lines for a 40-line body", got)
	}
	tg := bigTags(t, 10000)
	if got := strings.Count(tg.View(), "\n") + 1; got > 40 {
		t.Errorf("tags view is %d lines for a 40-line body", got)
	}
	if !strings.Contains(c.View(), "unsupported!") {
		t.Error("mismatches are not marked")
	}
}
