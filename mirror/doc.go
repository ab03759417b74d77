// Package mirror moves refdoctor mirror bundles between bundles and live
// registries: Export writes a bundle of images and their referrers,
// Import pushes one into a registry and reconciles what arrived, and Diff
// compares a bundle with its source registry as it is now.
//
// The offline format (manifest, writer, validator, inspect) lives in
// package bundle, which links no network code; mirror is the online half
// (mirror -> bundle, mirror -> discovery). Import trusts only what
// bundle.Validate accepted.
//
// Every operation takes an Env (config, registry client settings, discovery
// settings, logger) as one value; per-call settings are ExportOpt and
// ImportOpt options.
package mirror
