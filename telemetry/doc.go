// Package telemetry holds refdoctor's Prometheus counters and its slog
// setup.
//
// Both are engine-side plumbing: the CLI and the TUI create a Metrics and a
// logger once and inject them, so the engine never reaches for globals and
// tests can run in parallel with their own registries. Everything that
// leaves the process through this package (metric labels, log lines) is
// scrubbed of credentials, because metrics files and logs end up attached
// to tickets and support bundles.
package telemetry
