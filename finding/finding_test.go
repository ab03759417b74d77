package finding

import (
	"go/ast"
	"go/parser"
	"go/token"
	"testing"
)

// TestEveryCodeHasARemedy parses codes.go so that a constant added
// without a remedy fails here, not in front of an operator.
func TestEveryCodeHasARemedy(t *testing.T) {
	fs := token.NewFileSet()
	f, err := parser.ParseFile(fs, "codes.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, decl := range f.Decls {
		gd, ok := decl.(*ast.GenDecl)
		if !ok || gd.Tok != token.CONST {
			continue
		}
		for _, spec := range gd.Specs {
			vs := spec.(*ast.ValueSpec)
			if id, ok := vs.Type.(*ast.Ident); !ok || id.Name != "Code" {
				continue
			}
			for i, name := range vs.Names {
				n++
				lit := vs.Values[i].(*ast.BasicLit).Value
				if lit != `"`+name.Name+`"` {
					t.Errorf("code %s has the value %s: a code's value is its name", name.Name, lit)
				}
				c := Code(name.Name)
				if c.Remedy() == "" {
					t.Errorf("code %s has no remedy in catalog", c)
				}
			}
		}
	}
	if n != len(catalog) {
		t.Errorf("codes.go declares %d codes, catalog has %d remedies: one side has extras", n, len(catalog))
	}
}

func TestOutcomeOrderAndExitCodes(t *testing.T) {
	cases := []struct {
		in   []Outcome
		want Outcome
		exit int
	}{
		{nil, OutcomeOK, 0},
		{[]Outcome{OutcomeOK, OutcomeWarn}, OutcomeWarn, 0},
		{[]Outcome{OutcomeWarn, OutcomeFailed, OutcomeOK}, OutcomeFailed, 1},
		{[]Outcome{OutcomeFailed, OutcomeIncomplete}, OutcomeIncomplete, 3},
		{[]Outcome{OutcomeIncomplete, OutcomeFailed}, OutcomeIncomplete, 3},
	}
	for _, c := range cases {
		got := WorstOutcome(c.in...)
		if got != c.want || got.ExitCode() != c.exit {
			t.Errorf("WorstOutcome(%v) = %s (exit %d), want %s (exit %d)", c.in, got, got.ExitCode(), c.want, c.exit)
		}
	}
	if OutcomeOf([]Finding{{Severity: SeverityInfo}, {Severity: SeverityWarn}}) != OutcomeWarn {
		t.Error("a warning must make the outcome warn")
	}
	if OutcomeOf([]Finding{{Severity: SeverityError}}) != OutcomeFailed {
		t.Error("an error must make the outcome fail")
	}
}

func TestCategorize(t *testing.T) {
	sigstore := "application/vnd.dev.sigstore.bundle.v0.3+json"
	cases := []struct {
		name   string
		at     string
		ann    map[string]string
		layers []string
		want   Category
	}{
		{"cyclonedx", "application/vnd.cyclonedx+json", nil, nil, CategorySBOM},
		{"spdx", "application/spdx+json", nil, nil, CategorySBOM},
		{"in-toto", "application/vnd.in-toto+json", nil, nil, CategoryAttestation},
		{"intoto without dash", "application/vnd.intoto+json", nil, nil, CategoryAttestation},
		{"dsse", "application/vnd.dsse.envelope.v1+json", nil, nil, CategoryAttestation},
		{"openvex", "application/vnd.openvex+json", nil, nil, CategoryVEX},
		{"notation", "application/vnd.cncf.notary.signature", nil, nil, CategorySignature},
		{"cosign v3 signature", sigstore, map[string]string{AnnotationSigstorePredicateType: PredicateCosignSign}, nil, CategorySignature},
		{"cosign v3 bundle without predicate", sigstore, nil, nil, CategorySignature},
		{"cosign v3 cyclonedx attestation", sigstore, map[string]string{AnnotationSigstorePredicateType: "https://cyclonedx.org/bom"}, nil, CategoryAttestation},
		{"cosign v3 slsa attestation", sigstore, map[string]string{AnnotationSigstorePredicateType: "https://slsa.dev/provenance/v1"}, nil, CategoryAttestation},
		{"cosign v3 openvex attestation", sigstore, map[string]string{AnnotationSigstorePredicateType: "https://openvex.dev/ns/v0.2.0"}, nil, CategoryAttestation},
		{"cosign simple signing layer", "", nil, []string{"application/vnd.dev.cosign.simplesigning.v1+json"}, CategorySignature},
		{"empty config type falls to layers", MediaTypeEmpty, nil, []string{"application/spdx+json"}, CategorySBOM},
		{"unknown", "application/x-custom", nil, nil, CategoryOther},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := Categorize(c.at, c.ann, c.layers...); got != c.want {
				t.Errorf("Categorize(%q, %v, %v) = %s, want %s", c.at, c.ann, c.layers, got, c.want)
			}
		})
	}
	if p := Predicate(sigstore, map[string]string{AnnotationSigstorePredicateType: "https://cyclonedx.org/bom"}); p != "https://cyclonedx.org/bom" {
		t.Errorf("Predicate = %q", p)
	}
	if p := Predicate(sigstore, map[string]string{AnnotationSigstorePredicateType: PredicateCosignSign}); p != "" {
		t.Errorf("a signature has no predicate to show, got %q", p)
	}
}
