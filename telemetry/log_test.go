package telemetry

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoggerRedacts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		log     func(l *slog.Logger)
		secrets []string // planted; must not appear anywhere in the output
		keep    []string // evidence; must still appear
	}{
		{
			name: "password attribute",
			log: func(l *slog.Logger) {
				l.Info("login", "user", "bob", "password", "planted-pw-1")
			},
			secrets: []string{"planted-pw-1"},
			keep:    []string{"user=bob", "password=[REDACTED]", "msg=login"},
		},
		{
			name: "sensitive key spellings",
			log: func(l *slog.Logger) {
				l.Info("keys",
					"Passwd", "planted-2a",
					"client_secret", "planted-2b",
					"refresh-token", "planted-2c",
					"api-key", "planted-2d",
					"X-Api-Key", "planted-2e",
					"apiKey", "planted-2f",
					"Cookie", "planted-2g",
					"registry", "gcr.io")
			},
			secrets: []string{"planted-2"},
			keep:    []string{"registry=gcr.io", "apiKey=[REDACTED]"},
		},
		{
			name: "bearer token in a string",
			log: func(l *slog.Logger) {
				l.Debug("sent request", "detail", "Authorization: Bearer eyJplanted3.payload.sig", "note", "used bearer Planted3b")
			},
			secrets: []string{"eyJplanted3", "Planted3b"},
			keep:    []string{"msg=\"sent request\"", "detail=", "note=\"used bearer [REDACTED]\""},
		},
		{
			name: "basic credential in the message",
			log: func(l *slog.Logger) {
				l.Warn("retrying with Basic cGxhbnRlZDQ6cHc= after 401", "status", 401)
			},
			secrets: []string{"cGxhbnRlZDQ6cHc="},
			keep:    []string{"Basic [REDACTED] after 401", "status=401"},
		},
		{
			name: "authorization inside an http.Header attribute",
			log: func(l *slog.Logger) {
				h := http.Header{}
				h.Set("Authorization", "Bearer planted5-token")
				h.Set("Proxy-Authorization", "Basic planted5b")
				h.Set("Accept", "application/vnd.oci.image.index.v1+json")
				l.Log(t.Context(), LevelTrace, "reg http request",
					slog.String("req-method", "GET"),
					slog.Any("req-headers", h))
			},
			secrets: []string{"planted5"},
			keep:    []string{"req-method=GET", "Accept:[application/vnd.oci.image.index.v1+json]", "Authorization:[[REDACTED]]", "level=TRACE"},
		},
		{
			name: "set-cookie in response headers, challenge kept",
			log: func(l *slog.Logger) {
				h := http.Header{}
				h.Add("Set-Cookie", "session=planted6; Path=/; HttpOnly")
				h.Set("Www-Authenticate", `Bearer realm="https://auth.example.com/token",service="registry.example.com"`)
				h.Set("Docker-Distribution-Api-Version", "registry/2.0")
				l.Info("reg http request", slog.Any("resp-headers", h))
			},
			secrets: []string{"planted6"},
			keep: []string{
				"Set-Cookie:[[REDACTED]]",
				// The text handler quotes the whole map, hence the escapes.
				`Www-Authenticate:[Bearer realm=\"https://auth.example.com/token\",service=\"registry.example.com\"]`,
				"registry/2.0",
			},
		},
		{
			name: "plain map of header values",
			log: func(l *slog.Logger) {
				l.Info("headers", "h", map[string][]string{"Cookie": {"a=planted7"}, "Accept": {"*/*"}})
			},
			secrets: []string{"planted7"},
			keep:    []string{"Accept:[*/*]"},
		},
		{
			name: "userinfo in a URL",
			log: func(l *slog.Logger) {
				l.Info("fetch", "url", "https://bob:planted8@registry.example.com/v2/")
				u, _ := url.Parse("https://carol:planted8b@mirror.example.com/v2/")
				l.Info("fetch", "u", u)
				l.Error("fetch failed", "err", fmt.Errorf("get %s: %w", "https://dave:planted8c@r.example.com/v2/", errors.New("connection refused")))
			},
			secrets: []string{"planted8"},
			keep: []string{
				"https://bob:[REDACTED]@registry.example.com/v2/",
				"https://carol:[REDACTED]@mirror.example.com/v2/",
				"dave:[REDACTED]@r.example.com",
				"connection refused",
			},
		},
		{
			name: "token in a query string and a struct",
			log: func(l *slog.Logger) {
				l.Info("token", "url", "https://auth.example.com/token?access_token=planted9&scope=repository:app:pull")
				l.Info("cred", "cred", struct{ User, Password string }{"erin", "planted9b"})
			},
			secrets: []string{"planted9"},
			keep:    []string{"scope=repository:app:pull", "User:erin"},
		},
		{
			name: "sensitive group",
			log: func(l *slog.Logger) {
				l.Info("auth", slog.Group("creds", slog.String("user", "frank"), slog.String("value", "planted10")))
				l.Info("auth", slog.Group("host", slog.String("name", "gcr.io"), slog.String("token", "planted10b")))
			},
			secrets: []string{"planted10"},
			keep:    []string{"host.name=gcr.io", "host.token=[REDACTED]", "creds.user=[REDACTED]"},
		},
		{
			name: "runbook lines stay greppable",
			log: func(l *slog.Logger) {
				l.Info("Probing 3 registries for OCI referrer capabilities before export")
				l.Info("Registry gcr.io: OCI 1.1 (referrers API supported, version=OCI-Distribution/2.1, probe_ms=42)")
				l.Info("Registry docker.io: OCI 1.0 (using fallback tag discovery, version=registry/2.0, probe_ms=130)")
				l.Info("registry requires Basic auth", "auth", "basic")
			},
			keep: []string{
				`msg="Probing 3 registries for OCI referrer capabilities before export"`,
				`Registry gcr.io: OCI 1.1 (referrers API supported, version=OCI-Distribution/2.1, probe_ms=42)`,
				`Registry docker.io: OCI 1.0 (using fallback tag discovery, version=registry/2.0, probe_ms=130)`,
				`msg="registry requires Basic auth" auth=basic`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var buf bytes.Buffer
			tt.log(NewLogger(&buf, LevelTrace))
			out := buf.String()
			for _, s := range tt.secrets {
				if strings.Contains(out, s) {
					t.Errorf("output contains planted secret %q\n%s", s, out)
				}
			}
			for _, k := range tt.keep {
				if !strings.Contains(out, k) {
					t.Errorf("output lacks %q\n%s", k, out)
				}
			}
		})
	}
}

func TestRedactionLeavesCallerHeaderAlone(t *testing.T) {
	t.Parallel()
	// regclient logs the live response header; redacting in place would
	// break the request it belongs to.
	h := http.Header{"Authorization": {"Bearer keep-me"}}
	var buf bytes.Buffer
	NewLogger(&buf, slog.LevelInfo).Info("req", "req-headers", h)
	if got := h.Get("Authorization"); got != "Bearer keep-me" {
		t.Errorf("caller's header changed to %q", got)
	}
	if strings.Contains(buf.String(), "keep-me") {
		t.Errorf("output contains the token: %s", buf.String())
	}
}

func TestLoggerLevel(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	l := NewLogger(&buf, slog.LevelInfo)
	l.Debug("hidden-debug")
	l.Log(t.Context(), LevelTrace, "hidden-trace")
	l.Info("shown-info")
	out := buf.String()
	if strings.Contains(out, "hidden") {
		t.Errorf("records below info were written:\n%s", out)
	}
	if !strings.Contains(out, "level=INFO msg=shown-info") {
		t.Errorf("info record missing:\n%s", out)
	}
}

func TestRedactString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want string
	}{
		{"nothing to see", "nothing to see"},
		{"Bearer abc.def-ghi", "Bearer [REDACTED]"},
		{`{"Authorization":"Basic dXNlcjpwYXNzMQ=="}`, `{"Authorization":"Basic [REDACTED]"}`},
		{`Basic realm="Registry Realm"`, `Basic realm="Registry Realm"`},
		{"Bearer token request failed", "Bearer token request failed"},
		{`{"token":"abc","expires_in":300}`, `{"token":"[REDACTED]","expires_in":300}`},
		{"failed to get token: 401 Unauthorized", "failed to get token: 401 Unauthorized"},
		{"ftp://u:p@host/x", "ftp://u:[REDACTED]@host/x"},
		{"https://u@host/x", "https://u@host/x"},
		{"Cookie: a=1; b=2\nnext line", "Cookie: [REDACTED]\nnext line"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			if got := RedactString(tt.in); got != tt.want {
				t.Errorf("RedactString(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseLevel(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    slog.Level
		wantErr bool
	}{
		{"trace", slog.LevelDebug - 4, false},
		{"TRACE", LevelTrace, false},
		{"debug", slog.LevelDebug, false},
		{"Info", slog.LevelInfo, false},
		{"warn", slog.LevelWarn, false},
		{"warning", slog.LevelWarn, false},
		{" error ", slog.LevelError, false},
		{"loud", 0, true},
		{"", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			got, err := ParseLevel(tt.in)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("ParseLevel(%q) = %v, want an error", tt.in, got)
				}
				if !errors.Is(err, ErrUnknownLevel) {
					t.Errorf("error %v is not ErrUnknownLevel", err)
				}
				msg := err.Error()
				for _, name := range []string{"trace", "debug", "info", "warn", "error", fmt.Sprintf("%q", tt.in)} {
					if !strings.Contains(msg, name) {
						t.Errorf("error %q does not name %s", msg, name)
					}
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("ParseLevel(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestOpenLogFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "refdoctor.log")
	for _, line := range []string{"first run\n", "second run\n"} {
		w, err := OpenLogFile(path)
		if err != nil {
			t.Fatalf("OpenLogFile: %v", err)
		}
		if _, err := w.Write([]byte(line)); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "first run\nsecond run\n" {
		t.Errorf("log file = %q, want both runs appended", got)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := info.Mode().Perm(); perm != 0o600 {
		t.Errorf("mode = %v, want 0600", perm)
	}
	if _, err := OpenLogFile(filepath.Join(t.TempDir(), "missing", "x.log")); err == nil {
		t.Error("OpenLogFile in a missing directory succeeded")
	}
}
