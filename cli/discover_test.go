package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/refdoctor/refdoctor/cli"
	"github.com/refdoctor/refdoctor/lab"
	"github.com/refdoctor/refdoctor/lab/labtest"
)

func runIn(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	code := cli.Run(ctx, args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

// discoverJSON is the part of discover's JSON the test compares.
type discoverJSON struct {
	Subject struct {
		Reference string `json:"reference"`
		Digest    string `json:"digest"`
	} `json:"subject"`
	Method    string `json:"method"`
	Requests  *int   `json:"requests"`
	Findings  []any  `json:"findings"`
	Outcome   string `json:"outcome"`
	Referrers []struct {
		Digest string `json:"digest"`
	} `json:"referrers"`
}

// TestDiscoverManyReferences: many references (arguments, or - for
// standard input) are discovered in one run, with -o json as
// {"results":[...]} holding one object per reference, in order, in the
// same shape a single reference prints alone; the exit code is the worst
// of the results; the table has one block per subject.
func TestDiscoverManyReferences(t *testing.T) {
	t.Parallel()
	l := labtest.StartT(t, lab.Spec{Name: "oci11", Profile: lab.ProfileOCI11}, lab.Spec{Name: "ghcr", Profile: lab.ProfileFallback404},
		lab.Spec{Name: "hub", Profile: lab.ProfileRateLimit, RateBudget: 0})
	dir := t.TempDir()
	cfg := fmt.Sprintf("[cache]\ndir = %q\n", filepath.Join(dir, "cache"))
	for _, r := range l.Registries {
		cfg += fmt.Sprintf("[[registry]]\nhost = %q\nplain_http = true\n", r.Host)
	}
	cfgPath := writeFile(t, dir, "c.toml", cfg)
	oci, _ := l.Get("oci11")
	ghcr, _ := l.Get("ghcr")
	hub, _ := l.Get("hub")
	a, b := l.Seed.Ref(oci.Host), oci.Host+"/"+l.Seed.Repository+"@"+l.Seed.Index
	c := l.Seed.Ref(ghcr.Host)

	// One reference: the object alone, as before.
	code, out, errOut := runIn(t, "", "--config", cfgPath, "-o", "json", "discover", a)
	var single map[string]json.RawMessage
	if code != 0 || json.Unmarshal([]byte(out), &single) != nil {
		t.Fatalf("one reference: exit %d %s %s", code, out, errOut)
	}
	if _, ok := single["results"]; ok {
		t.Fatalf("one reference printed a results list: %s", out)
	}
	var alone discoverJSON
	_ = json.Unmarshal([]byte(out), &alone)

	// Several, as arguments and from standard input: the same results.
	code, out, errOut = runIn(t, "", "--config", cfgPath, "-o", "json", "discover", a, b, c)
	var many struct {
		Results []discoverJSON `json:"results"`
		Shared  *int           `json:"shared_requests"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &many) != nil || len(many.Results) != 3 || many.Shared == nil {
		t.Fatalf("three references: exit %d %s %s", code, out, errOut)
	}
	for i, want := range []string{a, b, c} {
		r := many.Results[i]
		if r.Subject.Reference != want || r.Subject.Digest != l.Seed.Index || r.Requests == nil || r.Findings == nil || r.Outcome != "ok" {
			t.Errorf("result %d: %+v, want %s resolved to %s, ok, with requests and findings", i, r, want, l.Seed.Index)
		}
	}
	if many.Results[0].Method != alone.Method || !slices.Equal(digests(many.Results[0]), digests(alone)) {
		t.Errorf("the first of three differs from the same reference alone: %+v vs %+v", many.Results[0], alone)
	}
	if many.Results[2].Method != "tags" || len(digests(many.Results[2])) != len(digests(alone)) {
		t.Errorf("the tag-schema registry's result: %+v", many.Results[2])
	}
	stdin := c + "\n\n# a comment\n  " + a + "  \n"
	code, out, errOut = runIn(t, stdin, "--config", cfgPath, "-o", "json", "discover", "-")
	var fromStdin struct {
		Results []discoverJSON `json:"results"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &fromStdin) != nil || len(fromStdin.Results) != 2 ||
		fromStdin.Results[0].Subject.Reference != c || fromStdin.Results[1].Subject.Reference != a {
		t.Fatalf("references from standard input: exit %d %s %s", code, out, errOut)
	}

	// The exit code is the worst of the results: a missing image fails
	// (1), a throttled registry is incomplete (3), and 3 wins.
	missing := oci.Host + "/" + l.Seed.Repository + ":no-such-tag"
	throttled := l.Seed.Ref(hub.Host)
	for _, tc := range []struct {
		refs []string
		want int
	}{{[]string{a, missing}, 1}, {[]string{throttled, a}, 3}, {[]string{missing, throttled}, 3}} {
		if code, out, _ := runIn(t, "", append([]string{"--config", cfgPath, "--timeout", "5s", "discover"}, tc.refs...)...); code != tc.want {
			t.Errorf("%v: exit %d, want %d\n%s", tc.refs, code, tc.want, out)
		}
	}

	// The table: one block per subject, then the count of outcomes.
	code, out, _ = runIn(t, "", "--config", cfgPath, "discover", a, c)
	if code != 0 || strings.Count(out, "REFERRERS (") != 2 || !strings.Contains(out, a+"\n") || !strings.Contains(out, c+"\n") ||
		!strings.Contains(out, "2 subjects: 2 ok, 0 warn, 0 fail, 0 incomplete") {
		t.Errorf("table for two subjects: exit %d\n%s", code, out)
	}

	// Bad input is a usage error before any request.
	before := l.Requests("oci11")
	for _, tc := range []struct {
		stdin string
		args  []string
		want  string
	}{
		{"", []string{"discover", "-"}, "no references on standard input"},
		{"\n# only a comment\n", []string{"discover", "-"}, "no references on standard input"},
		{a + "\n", []string{"discover", "-", "-"}, "standard input is read once"},
		{"", []string{"discover", a, "alpine"}, "no registry host"},
	} {
		if code, _, errOut := runIn(t, tc.stdin, append([]string{"--config", cfgPath}, tc.args...)...); code != 2 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v with %q on stdin: exit %d %s, want 2 and %q", tc.args, tc.stdin, code, errOut, tc.want)
		}
	}
	if n := l.Requests("oci11") - before; n != 0 {
		t.Errorf("bad input sent %d requests", n)
	}
}

func digests(r discoverJSON) []string {
	var out []string
	for _, x := range r.Referrers {
		out = append(out, x.Digest)
	}
	slices.Sort(out)
	return out
}
