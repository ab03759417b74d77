package telemetry

import (
	"encoding"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
)

// Redacted replaces every credential this package removes.
const Redacted = "[REDACTED]"

// sensitiveKeyParts are matched against attribute keys and header names
// after lower-casing and dropping separators, so "Set-Cookie", "api_key",
// "X-Api-Key" and "apiKey" all match. "registryauth" covers docker's
// X-Registry-Auth header, which carries base64 JSON credentials;
// "credential" and "creds" cover groups that bundle a user and a password.
var sensitiveKeyParts = []string{
	"authorization", "password", "passwd", "secret", "token", "cookie",
	"apikey", "registryauth", "credential", "creds",
}

// IsSensitiveKey reports whether an attribute key or header name names a
// credential, so that its value must never be logged.
func IsSensitiveKey(key string) bool {
	k := strings.Map(func(r rune) rune {
		switch r {
		case '-', '_', '.', ' ':
			return -1
		}
		return r
	}, strings.ToLower(key))
	for _, part := range sensitiveKeyParts {
		if strings.Contains(k, part) {
			return true
		}
	}
	return false
}

// RedactAttr is a slog ReplaceAttr function that removes credentials, for
// callers that build their own handler. NewLogger already installs it.
//
// Keys are checked first (a sensitive key or group loses its whole value),
// then values: strings are scrubbed of bearer/basic credentials, URL
// passwords and key=value secrets; http.Header and string maps are cloned
// with sensitive entries replaced (the caller's map is never modified,
// because regclient passes live response headers); anything else is
// scrubbed in the text form the handler would print.
func RedactAttr(groups []string, a slog.Attr) slog.Attr {
	if IsSensitiveKey(a.Key) || slices.ContainsFunc(groups, IsSensitiveKey) {
		return slog.String(a.Key, Redacted)
	}
	a.Value = redactValue(a.Value.Resolve())
	return a
}

func redactValue(v slog.Value) slog.Value {
	switch v.Kind() {
	case slog.KindString:
		s := v.String()
		if r := RedactString(s); r != s {
			return slog.StringValue(r)
		}
		return v
	case slog.KindGroup:
		// The built-in handlers call ReplaceAttr per member, but a custom
		// caller of RedactAttr may hand over a whole group.
		attrs := v.Group()
		out := make([]slog.Attr, len(attrs))
		for i, a := range attrs {
			out[i] = RedactAttr(nil, a)
		}
		return slog.GroupValue(out...)
	case slog.KindAny:
		return redactAny(v)
	default:
		// Numbers, booleans, times and durations cannot hold a credential.
		return v
	}
}

func redactAny(v slog.Value) slog.Value {
	switch x := v.Any().(type) {
	case http.Header:
		return slog.AnyValue(RedactHeader(x))
	case map[string][]string:
		return slog.AnyValue(map[string][]string(RedactHeader(http.Header(x))))
	case map[string]string:
		return slog.AnyValue(redactStringMap(x))
	case *url.URL:
		if x == nil {
			return v
		}
		// url.URL.Redacted would print "xxxxx" and miss ?access_token=;
		// RedactString handles both and matches the rest of the log.
		return scrubbedOr(v, x.String())
	case error:
		if x == nil {
			return v
		}
		// Transport errors quote the request URL, userinfo included.
		return scrubbedOr(v, x.Error())
	default:
		return scrubbedOr(v, textLikeHandler(x))
	}
}

// scrubbedOr returns the scrubbed text if scrubbing changed it, else the
// original value, so values without secrets keep their type and format.
func scrubbedOr(orig slog.Value, text string) slog.Value {
	if r := RedactString(text); r != text {
		return slog.StringValue(r)
	}
	return orig
}

// textLikeHandler renders x the way slog's text handler does, so scrubbing
// sees exactly the text that would be written.
func textLikeHandler(x any) string {
	switch t := x.(type) {
	case encoding.TextMarshaler:
		b, err := t.MarshalText()
		if err != nil {
			return fmt.Sprintf("%+v", x)
		}
		return string(b)
	case []byte:
		return string(t)
	default:
		return fmt.Sprintf("%+v", x)
	}
}

// RedactHeader returns a copy of h with credential headers (Authorization,
// Proxy-Authorization, Cookie, Set-Cookie, API keys, tokens) replaced by
// Redacted and every other value scrubbed with RedactString. h itself is
// left untouched. Www-Authenticate challenges survive, since they are the
// evidence the runbook needs to explain an auth failure.
func RedactHeader(h http.Header) http.Header {
	if h == nil {
		return nil
	}
	out := make(http.Header, len(h))
	for name, values := range h {
		redacted := make([]string, len(values))
		for i, value := range values {
			if IsSensitiveKey(name) {
				redacted[i] = Redacted
			} else {
				redacted[i] = RedactString(value)
			}
		}
		out[name] = redacted
	}
	return out
}

func redactStringMap(m map[string]string) map[string]string {
	out := maps.Clone(m)
	for k, v := range out {
		if IsSensitiveKey(k) {
			out[k] = Redacted
		} else {
			out[k] = RedactString(v)
		}
	}
	return out
}

var (
	// urlUserinfo matches scheme://user:password@; only the password goes,
	// the user name stays because "which account" is useful evidence.
	urlUserinfo = regexp.MustCompile(`(?i)\b([a-z][a-z0-9+.\-]*://)([^/?#\s:@]*):([^/?#\s]*)@`)

	// headerLine matches credential headers written out as text (request
	// dumps, error messages); the rest of the line is the credential.
	headerLine = regexp.MustCompile(`(?i)\b((?:proxy-)?authorization|(?:set-)?cookie|x-registry-auth)(:[ \t]*)([^\r\n]+)`)

	// keyValueSecret matches password=..., access_token=..., "token":"...",
	// and Go's %+v struct form Password:hunter2. "token: 401" (a space after
	// a bare colon) is prose, not a credential, and is left alone.
	keyValueSecret = regexp.MustCompile(`(?i)\b([\w.-]*(?:password|passwd|secret|token|api[-_]?key)[\w-]*)(=|"?[ \t]*:[ \t]*"|:)([^"&\s,;]+)`)

	// authScheme matches an HTTP auth scheme followed by a token68
	// credential (RFC 7235).
	authScheme = regexp.MustCompile(`(?i)\b(bearer|basic)([ \t]+)([A-Za-z0-9\-._~+/]+=*)`)
)

// challengeParams are auth-param names of a WWW-Authenticate challenge
// (Bearer realm="...",service="..."): they follow a scheme name but are not
// credentials.
var challengeParams = map[string]bool{
	"realm": true, "service": true, "scope": true, "error": true,
	"error_description": true, "error_uri": true, "charset": true,
}

// schemeProse are words that follow "Basic" or "Bearer" in ordinary
// messages ("Basic auth", "Bearer token request failed"); they are not
// credentials and redacting them would only confuse the reader.
var schemeProse = map[string]bool{
	"auth": true, "authentication": true, "authorization": true,
	"token": true, "tokens": true, "credentials": true, "creds": true,
	"scheme": true, "challenge": true, "realm": true, "and": true,
	"or": true, "with": true, "for": true, "the": true, "is": true,
}

// RedactString removes credentials from free text: the password of
// scheme://user:password@host, the credential after "Bearer " or "Basic ",
// the value of credential headers written as "Name: value", and values of
// password=, token=, secret= and api-key= style pairs. Text without such
// patterns, like the runbook's "Registry HOST: OCI 1.1 (...)" lines, is
// returned unchanged.
func RedactString(s string) string {
	if s == "" {
		return s
	}
	s = urlUserinfo.ReplaceAllString(s, "${1}${2}:"+Redacted+"@")
	s = headerLine.ReplaceAllString(s, "${1}${2}"+Redacted)
	s = keyValueSecret.ReplaceAllString(s, "${1}${2}"+Redacted)
	return redactAuthSchemes(s)
}

func redactAuthSchemes(s string) string {
	matches := authScheme.FindAllStringSubmatchIndex(s, -1)
	if matches == nil {
		return s
	}
	var b strings.Builder
	last := 0
	for _, m := range matches {
		credStart, credEnd := m[6], m[7]
		cred := s[credStart:credEnd]
		if cred == Redacted || isChallengeParam(cred) || schemeProse[strings.ToLower(cred)] {
			continue
		}
		b.WriteString(s[last:credStart])
		b.WriteString(Redacted)
		last = credEnd
	}
	b.WriteString(s[last:])
	return b.String()
}

// isChallengeParam reports whether cred is really the start of an
// auth-param such as realm= rather than a token68 that ends in padding.
func isChallengeParam(cred string) bool {
	name, _, found := strings.Cut(cred, "=")
	return found && challengeParams[strings.ToLower(name)]
}
