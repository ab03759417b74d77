package finding

import "strings"

// Category groups referrers the way operators talk about them. The
// artifact type stays exact; the category is for people.
type Category string

const (
	CategorySBOM        Category = "sbom"
	CategorySignature   Category = "signature"
	CategoryAttestation Category = "attestation"
	CategoryVEX         Category = "vex"
	CategoryOther       Category = "other"
)

// Categories in the order the TUI and summaries list them.
var Categories = []Category{CategorySBOM, CategorySignature, CategoryAttestation, CategoryVEX, CategoryOther}

// Valid reports whether c is one of the categories.
func (c Category) Valid() bool {
	for _, k := range Categories {
		if c == k {
			return true
		}
	}
	return false
}

const (
	// AnnotationSigstorePredicateType tells a cosign v3 signature from an
	// attestation: both are sigstore bundles.
	AnnotationSigstorePredicateType = "dev.sigstore.bundle.predicateType"
	// PredicateCosignSign is the predicate type of a cosign v3 signature.
	PredicateCosignSign = "https://sigstore.dev/cosign/sign/v1"
	// MediaTypeEmpty is the OCI empty config; a registry that lists it as
	// an artifact type has not read the manifest's own artifactType.
	MediaTypeEmpty = "application/vnd.oci.empty.v1+json"
)

// IsSigstoreBundle reports whether an artifact type is a Sigstore bundle
// (cosign v3 signatures and attestations).
func IsSigstoreBundle(artifactType string) bool {
	return strings.HasPrefix(strings.ToLower(artifactType), "application/vnd.dev.sigstore.bundle")
}

// Predicate is the in-toto predicate type of a cosign v3 attestation (""
// for signatures and for everything that is not a sigstore bundle).
func Predicate(artifactType string, annotations map[string]string) string {
	if !IsSigstoreBundle(artifactType) {
		return ""
	}
	p := annotations[AnnotationSigstorePredicateType]
	if p == PredicateCosignSign {
		return ""
	}
	return p
}

// Categorize names what a referrer is from its artifact type and
// annotations, falling back to its layer media types (cosign-style
// manifests carry no artifactType). It is the one categoriser: discovery,
// bundles and the lab all use it.
func Categorize(artifactType string, annotations map[string]string, layerMediaTypes ...string) Category {
	if IsSigstoreBundle(artifactType) {
		// cosign v3 pushes signatures and attestations alike as sigstore
		// bundles; the predicate type tells them apart.
		p, ok := annotations[AnnotationSigstorePredicateType]
		if !ok || p == PredicateCosignSign {
			return CategorySignature
		}
		return CategoryAttestation
	}
	for _, t := range append([]string{artifactType}, layerMediaTypes...) {
		if c := categorizeType(strings.ToLower(t)); c != "" {
			return c
		}
	}
	return CategoryOther
}

func categorizeType(t string) Category {
	switch {
	case t == "" || t == MediaTypeEmpty:
		return ""
	case strings.Contains(t, "vex"), strings.Contains(t, "csaf"):
		return CategoryVEX
	case strings.Contains(t, "cyclonedx"), strings.Contains(t, "spdx"), strings.Contains(t, "sbom"), strings.Contains(t, "syft"):
		return CategorySBOM
	case strings.Contains(t, "in-toto"), strings.Contains(t, "intoto"), strings.Contains(t, "dsse"),
		strings.Contains(t, "attestation"), strings.Contains(t, "slsa"), strings.Contains(t, "provenance"):
		return CategoryAttestation
	case strings.Contains(t, "signature"), strings.Contains(t, "cosign"), strings.Contains(t, "simplesigning"),
		strings.Contains(t, "sigstore"), strings.Contains(t, "notary"), strings.HasSuffix(t, ".sig"):
		return CategorySignature
	}
	return ""
}
