package bundle_test

import (
	"testing"

	"github.com/refdoctor/refdoctor/bundle"
	"github.com/refdoctor/refdoctor/finding"
)

func TestSignatureOrder(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		members []string
		want    []finding.Code // per member
		signed  bool
	}{
		{"signed", []string{"manifest.yaml", bundle.SignatureMember, "oci-layout", "index.json"}, []finding.Code{"", "", "", ""}, true},
		{"unsigned", []string{"manifest.yaml", "oci-layout"}, []finding.Code{"", ""}, false},
		{"repacked, still after the manifest", []string{"oci-layout", "manifest.yaml", bundle.SignatureMember}, []finding.Code{"", "", ""}, true},
		{"signature first", []string{bundle.SignatureMember, "manifest.yaml"}, []finding.Code{finding.SignatureInvalid, ""}, true},
		{"signature last", []string{"manifest.yaml", "oci-layout", bundle.SignatureMember}, []finding.Code{"", "", finding.SignatureInvalid}, true},
		{"two signatures", []string{"manifest.yaml", bundle.SignatureMember, bundle.SignatureMember}, []finding.Code{"", "", finding.DuplicateMember}, true},
	}
	for _, c := range cases {
		var o bundle.SignatureOrder
		for i, m := range c.members {
			code, msg := o.Member(m)
			if code != c.want[i] {
				t.Errorf("%s: member %d %s: %q (%s), want %q", c.name, i, m, code, msg, c.want[i])
			}
			if code != "" && msg == "" {
				t.Errorf("%s: a problem without a message", c.name)
			}
		}
		if o.Signed() != c.signed {
			t.Errorf("%s: signed %v", c.name, o.Signed())
		}
	}
	if bundle.SignatureMember != "manifest.yaml.sigstore.json" || bundle.SignatureSidecarPath("out/b.tgz") != "out/b.tgz.sigstore.json" {
		t.Errorf("names: %s %s", bundle.SignatureMember, bundle.SignatureSidecarPath("out/b.tgz"))
	}
}
