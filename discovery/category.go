package discovery

import "strings"

// Categories of referrers, as the bundle manifest and the TUI group them.
const (
	CategorySBOM        = "sbom"
	CategorySignature   = "signature"
	CategoryAttestation = "attestation"
	CategoryVEX         = "vex"
	CategoryOther       = "other"
)

// Categorize names what a referrer is from its artifact type, falling back
// to its layer media types (cosign-style manifests carry no artifactType).
func Categorize(artifactType string, layerMediaTypes ...string) string {
	for _, t := range append([]string{artifactType}, layerMediaTypes...) {
		if c := categorizeType(strings.ToLower(t)); c != "" {
			return c
		}
	}
	return CategoryOther
}

func categorizeType(t string) string {
	switch {
	case t == "":
		return ""
	case strings.Contains(t, "vex"), strings.Contains(t, "csaf"):
		return CategoryVEX
	case strings.Contains(t, "cyclonedx"), strings.Contains(t, "spdx"), strings.Contains(t, "sbom"), strings.Contains(t, "syft"):
		return CategorySBOM
	case strings.Contains(t, "in-toto"), strings.Contains(t, "dsse"), strings.Contains(t, "attestation"), strings.Contains(t, "slsa"), strings.Contains(t, "provenance"):
		return CategoryAttestation
	case strings.Contains(t, "signature"), strings.Contains(t, "cosign"), strings.Contains(t, "simplesigning"), strings.Contains(t, "sigstore"), strings.Contains(t, "notary"), strings.Contains(t, ".sig"):
		return CategorySignature
	}
	return ""
}
