package lab

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/refdoctor/refdoctor/lab/labinfo"
)

// TestInfo: the document the lab process prints names every registry with
// its login (only in the JSON, never in a log line), the seed with
// snake_case keys, and profile names that match the lab's, which refdoctor
// relies on to pick the image and the fallback repository.
func TestInfo(t *testing.T) {
	for p, want := range map[Profile]string{ProfileOCI11: labinfo.ProfileOCI11, ProfileFallback404: labinfo.ProfileFallback404, ProfileRateLimit: labinfo.ProfileRateLimit} {
		if string(p) != want {
			t.Errorf("labinfo names profile %s %q", p, want)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	l, err := Start(ctx, WithSpecs(Spec{Name: "oci11", Profile: ProfileOCI11}, Spec{Name: "ghcr", Profile: ProfileFallback404}, Spec{Name: "basic", Profile: ProfileBasicAuth}))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	info := l.Info(nil)
	if err := info.Check(); err != nil {
		t.Fatal(err)
	}
	oci, _ := l.Get("oci11")
	ghcr, _ := l.Get("ghcr")
	basic, _ := l.Get("basic")
	if info.Image() != l.Seed.Ref(oci.Host) || info.Repository() != ghcr.Host+"/"+l.Seed.Repository || len(info.Targets()) != 3 {
		t.Errorf("image %s repository %s targets %v", info.Image(), info.Repository(), info.Targets())
	}
	raw, err := json.Marshal(info)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(raw), `"password":"`+basic.Login.Password+`"`) || !strings.Contains(string(raw), `"cosign_tags"`) {
		t.Errorf("document lacks the login or snake_case seed keys: %s", raw)
	}
	var back labinfo.Lab
	if err := json.Unmarshal(raw, &back); err != nil || len(back.Registries) != 3 || back.Seed.Index != l.Seed.Index {
		t.Fatalf("round trip: %v %+v", err, back)
	}
	for _, r := range back.Registries {
		if r.Login != nil && strings.Contains(r.Login.String(), r.Login.Password) {
			t.Errorf("Login.String shows the password")
		}
	}
}
