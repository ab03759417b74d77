// Package bundle reads and checks refdoctor mirror bundles: the tar
// archives (gzip or zstd compressed) that carry images and their OCI
// referrers across an air gap. A bundle is also an OCI image layout, and
// its manifest.yaml lists every other member with its size and sha256 so
// that an operator on the far side of the gap can prove the bundle is
// whole before importing it.
//
// The package holds the format (Manifest, ParseManifest, Writer), the
// streaming validator (Validate, ValidateFile), the quick summary
// (Inspect) and the signature member's rules (SignatureOrder,
// AttachSignature). It is the offline half and links no network code, not
// even net/http: export, import and diff against live registries are
// package mirror, and keys, signing and verification are package
// bundle/signing (sigstore-go links HTTP clients), which reaches the
// validator through ManifestVerifier. Reading is defensive throughout: archives come from the other
// side of a trust boundary, so every read is bounded, nothing is ever
// extracted to disk, and hostile input (path traversal, links, devices,
// decompression bombs, oversized members, truncation) is reported with a
// code of its own rather than trusted or allowed to exhaust memory.
//
// The package is part of the engine: it never imports the UI or any
// charm.land module, and it reports progress through WithEvents callbacks
// rather than printing.
package bundle
