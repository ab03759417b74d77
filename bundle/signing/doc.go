// Package signing signs and verifies refdoctor mirror bundles and the
// cosign image signatures inside them, offline, against the operator's
// public keys: no transparency log, no timestamp authority, no
// certificate. Signatures are Sigstore bundles (protobuf-specs v0.3 JSON),
// which cosign reads and writes too (`cosign sign-blob --bundle`,
// `cosign verify-blob --insecure-ignore-tlog=true`).
//
// It is the half of bundle signing that links cryptography libraries:
// sigstore-go for Sigstore bundles and verification, sigstore for cosign
// key files. sigstore-go also links HTTP, gRPC and TUF clients that
// refdoctor never calls; keeping them here keeps package bundle, the
// air-gap validator, free of network code. Package bundle holds the
// format (the signature member and its place) and reaches this package
// through bundle.ManifestVerifier and bundle.ManifestSigner, which
// Verifier and SigningKey implement.
//
// The package is part of the engine: it never imports the UI or any
// charm.land module.
package signing
