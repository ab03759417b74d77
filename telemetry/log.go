package telemetry

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
)

// LevelTrace is regclient's level for per-request HTTP tracing
// (regclient/types.LevelTrace); it is redeclared here so the engine does not
// need regclient just to name a log level.
const LevelTrace = slog.LevelDebug - 4

// ErrUnknownLevel is returned by ParseLevel for a name it does not know.
var ErrUnknownLevel = errors.New("unknown log level")

const (
	validLevels  = "trace, debug, info, warn, error"
	logFileMode  = 0o600
	logFileFlags = os.O_WRONLY | os.O_CREATE | os.O_APPEND
)

// NewLogger returns a slog text logger writing to w at level and above,
// with every record passed through the credential redaction in redact.go.
//
// The text handler is deliberate: the runbook and `refdoctor logs` grep
// the message text of lines such as
//
//	Registry gcr.io: OCI 1.1 (referrers API supported, version=OCI-Distribution/2.1, probe_ms=42)
//
// The handler quotes a message containing spaces (msg="Registry gcr.io:
// ..."), but leaves its characters intact, so those greps keep matching.
// Redaction never rewrites such a message, because it holds no credential
// pattern.
func NewLogger(w io.Writer, level slog.Level) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{
		Level:       level,
		ReplaceAttr: replaceAttr,
	}))
}

// replaceAttr names the trace level the way regclient users know it and
// redacts everything else.
func replaceAttr(groups []string, a slog.Attr) slog.Attr {
	if len(groups) == 0 && a.Key == slog.LevelKey {
		if lvl, ok := a.Value.Any().(slog.Level); ok && lvl == LevelTrace {
			// Without this the handler prints "DEBUG-4", which nobody
			// greps for.
			return slog.String(slog.LevelKey, "TRACE")
		}
		return a
	}
	return RedactAttr(groups, a)
}

// ParseLevel parses a --log-level value: trace, debug, info, warn or error,
// in any case ("warning" is accepted for warn).
func ParseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "trace":
		return LevelTrace, nil
	case "debug":
		return slog.LevelDebug, nil
	case "info":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	default:
		return 0, fmt.Errorf("%w %q: valid levels are %s", ErrUnknownLevel, s, validLevels)
	}
}

// OpenLogFile opens path for appending, creating it with mode 0600: even
// redacted logs name hosts, repositories and users, so they are private to
// the operator by default. Appending keeps earlier runs for `refdoctor logs`.
func OpenLogFile(path string) (io.WriteCloser, error) {
	f, err := os.OpenFile(path, logFileFlags, logFileMode)
	if err != nil {
		return nil, fmt.Errorf("open log file %s: %w", path, err)
	}
	return f, nil
}
