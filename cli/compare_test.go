package cli_test

import (
	"encoding/json"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"

	"github.com/refdoctor/refdoctor/lab"
	"github.com/refdoctor/refdoctor/lab/labtest"
)

func keys(t *testing.T, what string, m map[string]any, want ...string) {
	t.Helper()
	for _, k := range want {
		if _, ok := m[k]; !ok {
			t.Errorf("%s lacks %q (has %v)", what, k, m)
		}
	}
}

// TestCompareContract checks compare's command line: the JSON shape of
// design.md (source, destination, subjects with both, missing, extra,
// rewritten, same, findings), exit 1 when referrers are missing, 0 when
// none are, 3 when a side cannot be read (and nothing missing is listed),
// the --pairs form, and bad input.
func TestCompareContract(t *testing.T) {
	t.Parallel()
	l := labtest.StartT(t, lab.Spec{Name: "source", Profile: lab.ProfileOCI11}, lab.Spec{Name: "mirror", Profile: lab.ProfileOCI11, NoSeed: true})
	src, _ := l.Get("source")
	dst, _ := l.Get("mirror")
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	cfg := fmt.Sprintf("[cache]\ndir = %q\n", filepath.Join(dir, "cache"))
	for _, h := range []string{src.Host, dst.Host, closed} {
		cfg += fmt.Sprintf("[[registry]]\nhost = %q\nplain_http = true\n", h)
	}
	cfgPath := writeFile(t, dir, "c.toml", cfg)
	source := l.Seed.Ref(src.Host)
	labtest.RunTool(t, dir, "crane", "copy", "--insecure", source, dst.Host+"/bare/app:"+l.Seed.Tag)
	labtest.RegctlOneRequestAtATime(t, dir, []string{src.Host, dst.Host}, "image", "copy", "--referrers", "--digest-tags", source, dst.Host+"/full/app:"+l.Seed.Tag)

	code, out, errOut := run(t, "--config", cfgPath, "-o", "json", "compare", "--platforms", source, dst.Host+"/bare/app")
	var res map[string]any
	if code != 1 || json.Unmarshal([]byte(out), &res) != nil {
		t.Fatalf("compare after crane copy: exit %d (want 1)\n%s\n%s", code, out, errOut)
	}
	keys(t, "compare", res, "source", "destination", "subjects", "same", "findings")
	for _, s := range []string{"source", "destination"} {
		keys(t, s, res[s].(map[string]any), "reference", "digest", "method")
	}
	if res["same"] != false || res["destination"].(map[string]any)["reference"] != dst.Host+"/bare/app:"+l.Seed.Tag {
		t.Errorf("same %v destination %v", res["same"], res["destination"])
	}
	subjects := res["subjects"].([]any)
	missing := 0
	for _, s := range subjects {
		sm := s.(map[string]any)
		keys(t, "subject", sm, "subject", "platform", "both", "missing", "extra", "rewritten")
		for _, m := range sm["missing"].([]any) {
			keys(t, "missing", m.(map[string]any), "digest", "artifact_type", "category", "cause")
			missing++
		}
	}
	if missing != 7 {
		t.Errorf("%d missing, want the seed's 7", missing)
	}

	code, out, _ = run(t, "--config", cfgPath, "compare", "--platforms", source, dst.Host+"/bare/app")
	for _, want := range []string{"MISSING", "CosignTagNotCopied", "ReferrerMissingAtMirror", "regctl image copy --referrers", "7 missing"} {
		if code != 1 || !strings.Contains(out, want) {
			t.Errorf("table lacks %q (exit %d)\n%s", want, code, out)
		}
	}
	code, out, _ = run(t, "--config", cfgPath, "compare", "--platforms", "--artifact-type", lab.ArtifactTypeCycloneDX, source, dst.Host+"/bare/app")
	if code != 1 || !strings.Contains(out, "0 at both, 1 missing") || strings.Contains(out, "notary") {
		t.Errorf("--artifact-type: exit %d\n%s", code, out)
	}
	code, out, _ = run(t, "--config", cfgPath, "compare", "--platforms", source, dst.Host+"/full/app")
	if code != 0 || !strings.Contains(out, "7 at both, 0 missing") {
		t.Errorf("after a full copy: exit %d\n%s", code, out)
	}

	code, out, _ = run(t, "--config", cfgPath, "-o", "json", "compare", source, closed+"/gone/app")
	res = map[string]any{}
	if code != 3 || json.Unmarshal([]byte(out), &res) != nil {
		t.Fatalf("unreachable destination: exit %d (want 3)\n%s", code, out)
	}
	for _, s := range res["subjects"].([]any) {
		if n := len(s.(map[string]any)["missing"].([]any)); n != 0 {
			t.Errorf("%d listed missing on an incomplete read", n)
		}
	}
	if u := res["unread"].([]any); len(u) != 1 || u[0].(map[string]any)["side"] != "destination" {
		t.Errorf("unread %v", res["unread"])
	}
	unknown := 0
	for _, s := range res["subjects"].([]any) {
		for _, u := range s.(map[string]any)["unknown"].([]any) {
			if u.(map[string]any)["seen_at"] != "source" {
				t.Errorf("unknown referrer %v: want it seen at the source", u)
			}
			unknown++
		}
	}
	if unknown == 0 || res["unknown"] != float64(unknown) {
		t.Errorf("%d unknown referrers listed, count %v: want the source's referrers as unknown", unknown, res["unknown"])
	}
	// The table says the same: each referrer could not be told, none missing.
	code, out, _ = run(t, "--config", cfgPath, "compare", source, closed+"/gone/app")
	if code != 3 || !strings.Contains(out, "api -> could not tell") || strings.Contains(out, "MISSING") || !strings.Contains(out, fmt.Sprintf("%d unknown (could not tell)", unknown)) {
		t.Errorf("unreachable destination, table: exit %d\n%s", code, out)
	}

	pairs := writeFile(t, dir, "pairs.txt", strings.Join([]string{
		source + " " + dst.Host + "/full/app",
		source + " " + dst.Host + "/bare/app",
	}, "\n"))
	code, out, _ = run(t, "--config", cfgPath, "-o", "json", "compare", "--pairs", pairs)
	var many struct {
		Results []map[string]any `json:"results"`
		Same    *bool            `json:"same"`
	}
	if code != 1 || json.Unmarshal([]byte(out), &many) != nil || len(many.Results) != 2 || many.Same == nil || *many.Same {
		t.Fatalf("--pairs: exit %d\n%s", code, out)
	}
	if many.Results[0]["same"] != true || many.Results[1]["same"] != false {
		t.Errorf("pairs same: %v %v", many.Results[0]["same"], many.Results[1]["same"])
	}
	code, out, _ = run(t, "--config", cfgPath, "compare", "--pairs", pairs)
	if code != 1 || !strings.Contains(out, "STATE") || !strings.Contains(out, "FAIL") {
		t.Errorf("--pairs table: exit %d\n%s", code, out)
	}

	bad := writeFile(t, dir, "bad.txt", source+"\n")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"compare", source}, "SOURCE DEST"},
		{[]string{"compare", "--pairs", bad}, "line 1"},
		{[]string{"compare", "--pairs", bad, source, source}, "not both"},
		{[]string{"compare", "alpine:3", dst.Host + "/x"}, "no registry host"},
		{[]string{"compare", "--referrers-repo", "sigs", source, dst.Host + "/x"}, "--referrers-repo"},
		{[]string{"compare", "--depth", "11", source, dst.Host + "/x"}, "--depth"},
	} {
		code, _, errOut := run(t, append([]string{"--config", cfgPath}, tc.args...)...)
		if code != 2 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d, stderr %q (want 2 and %q)", tc.args, code, errOut, tc.want)
		}
	}
}
