package probe

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"

	"github.com/refdoctor/refdoctor/finding"
	"github.com/refdoctor/refdoctor/registry"
)

// Verdict is the answer to "does this registry serve the referrers API?".
type Verdict string

const (
	Supported   Verdict = "supported"
	Unsupported Verdict = "unsupported"
	Unknown     Verdict = "unknown"
)

const (
	mediaTypeOCIIndex = "application/vnd.oci.image.index.v1+json"
	// ZeroDigest is the placeholder subject used when no real digest is
	// known, as oras-go does.
	ZeroDigest = "sha256:0000000000000000000000000000000000000000000000000000000000000000"
)

// ReferrersReply is the final reply of GET /v2/<repo>/referrers/<digest>,
// after authentication.
type ReferrersReply struct {
	// Host is the registry host (host:port) and Repository the repository
	// asked about, for remedies that name them.
	Host        string
	Repository  string
	Status      int
	ContentType string
	Body        []byte
	// Err is the transport error when no reply arrived.
	Err error
	// BodyErr is set when the body did not arrive whole (a stall past the
	// timeout, a reset): the reply cannot be judged.
	BodyErr error
	// TooLarge is set when the body was larger than the reply cap, which
	// Size then names (at least that many bytes).
	TooLarge bool
	Size     int64
	// ZeroDigest is true when the probe asked about the all-zeros digest.
	ZeroDigest bool
	// RepositoryExists is true when the repository answered a tag list.
	RepositoryExists bool
}

// Classification is the verdict with the reason that decided it.
type Classification struct {
	Verdict     Verdict      `json:"verdict"`
	Reason      finding.Code `json:"reason"`
	IndexParsed bool         `json:"index_parsed"`
	// RetryWithRealDigest asks the caller to probe again with a digest
	// that exists in the repository: some registries (Quay, Harbor 2.10)
	// answer an unknown subject differently from a known one.
	RetryWithRealDigest bool            `json:"-"`
	Finding             finding.Finding `json:"-"`
}

// ociErrorBody is the distribution-spec error envelope.
type ociErrorBody struct {
	Errors []struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"errors"`
}

func errorCodes(body []byte) []string {
	var e ociErrorBody
	if json.Unmarshal(body, &e) != nil {
		return nil
	}
	var codes []string
	for _, x := range e.Errors {
		codes = append(codes, x.Code)
	}
	return codes
}

func hasCode(body []byte, code string) bool {
	for _, c := range errorCodes(body) {
		if strings.EqualFold(c, code) {
			return true
		}
	}
	return false
}

// parseIndex reports whether body is an OCI image index: schemaVersion 2,
// an index media type when one is given, and a manifests list.
func parseIndex(body []byte) bool {
	var idx struct {
		SchemaVersion int              `json:"schemaVersion"`
		MediaType     string           `json:"mediaType"`
		Manifests     *json.RawMessage `json:"manifests"`
	}
	if err := json.Unmarshal(body, &idx); err != nil {
		return false
	}
	if idx.SchemaVersion != 2 || idx.Manifests == nil {
		return false
	}
	if idx.MediaType != "" && idx.MediaType != mediaTypeOCIIndex {
		return false
	}
	var list []json.RawMessage
	return json.Unmarshal(*idx.Manifests, &list) == nil
}

func baseMediaType(ct string) string {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return strings.ToLower(strings.TrimSpace(ct))
	}
	return mt
}

func snippet(body []byte) string {
	s := strings.Join(strings.Fields(string(body)), " ")
	if len(s) > 120 {
		s = s[:120] + "..."
	}
	return s
}

const fallbackRemedy = "refdoctor and other OCI 1.1 clients fall back to the referrers tag schema (sha256-<hex> tags); check them with `refdoctor tags HOST/REPO`. Make sure the tools that attach SBOMs and signatures maintain those tags."

// ClassifyReferrersReply turns the reply to a referrers request into a
// verdict, following OCI distribution-spec 1.1: only a 200 carrying an OCI
// image index (by Content-Type and by body) means the API is supported. A
// 404 means "fall back to tags", never "supported, none attached"; auth
// failures, throttling and timeouts say nothing about support.
func ClassifyReferrersReply(r ReferrersReply) Classification {
	c := classifyReferrersReply(r)
	c.Finding.Remedy = runnableRemedy(c.Finding.Remedy, r.Host, r.Repository)
	return c
}

// runnableRemedy names the host and repository in a remedy's commands
// where it says HOST and REPO, so the operator can run it as written.
func runnableRemedy(remedy, host, repo string) string {
	if host == "" {
		return remedy
	}
	if repo != "" {
		remedy = strings.ReplaceAll(remedy, "HOST/REPO", host+"/"+repo)
	}
	return strings.ReplaceAll(remedy, "docker login HOST", "docker login "+host)
}

func classifyReferrersReply(r ReferrersReply) Classification {
	if r.Err != nil {
		code, summary, cause, remedy := ClassifyTransportError(r.Host, r.Err)
		return Classification{Verdict: Unknown, Reason: code, Finding: finding.Finding{
			Severity: finding.SeverityError, Code: code, Summary: "Referrers request failed: " + summary,
			Cause: cause, Remedy: remedy, Evidence: r.Err.Error(),
		}}
	}
	if r.TooLarge {
		return Classification{Verdict: Unknown, Reason: finding.ReferrersReplyTooLarge, Finding: TooLargeFinding("Referrers reply", r.Status, r.ContentType, r.Size)}
	}
	if r.BodyErr != nil {
		code, summary, cause, remedy := ClassifyTransportError(r.Host, r.BodyErr)
		return Classification{Verdict: Unknown, Reason: code, Finding: finding.Finding{
			Severity: finding.SeverityError, Code: code,
			Summary: fmt.Sprintf("Referrers reply (HTTP %d) did not arrive whole: %s", r.Status, summary),
			Cause:   "The headers came, then the body stopped part way (" + cause + ") Nothing can be judged from part of a reply.",
			Remedy:  remedy, Evidence: fmt.Sprintf("HTTP %d, Content-Type %q, %d bytes read before: %v", r.Status, r.ContentType, len(r.Body), r.BodyErr),
		}}
	}
	ct := baseMediaType(r.ContentType)
	evidence := fmt.Sprintf("HTTP %d, Content-Type %q", r.Status, r.ContentType)
	if len(r.Body) > 0 {
		evidence += ", body: " + snippet(r.Body)
	}
	unsupported := func(reason finding.Code, summary, cause string) Classification {
		return Classification{Verdict: Unsupported, Reason: reason, Finding: finding.Finding{
			Severity: finding.SeverityWarn, Code: reason, Summary: summary, Cause: cause,
			Remedy: fallbackRemedy, Evidence: evidence,
		}}
	}
	unknown := func(reason finding.Code, sev finding.Severity, summary, cause, remedy string) Classification {
		return Classification{Verdict: Unknown, Reason: reason, Finding: finding.Finding{
			Severity: sev, Code: reason, Summary: summary, Cause: cause, Remedy: remedy, Evidence: evidence,
		}}
	}
	switch {
	case r.Status == http.StatusOK:
		parsed := parseIndex(r.Body)
		switch {
		case ct == mediaTypeOCIIndex && parsed:
			return Classification{Verdict: Supported, Reason: finding.ReferrersAPISupported, IndexParsed: true, Finding: finding.Finding{
				Severity: finding.SeverityInfo, Code: finding.ReferrersAPISupported,
				Summary:  "Referrers API supported: 200 with an OCI image index",
				Cause:    "The registry implements GET /v2/<name>/referrers/<digest> from OCI distribution-spec 1.1.",
				Evidence: evidence,
			}}
		case ct == mediaTypeOCIIndex && r.ZeroDigest && strings.TrimSpace(string(r.Body)) == "{}":
			c := unknown(finding.ReferrersEmptyObject, finding.SeverityWarn, "Referrers reply is {} for an unknown subject",
				"Harbor 2.10 answers {} instead of an empty index when the subject does not exist.",
				"Probe again with a digest that exists: HOST/REPO@DIGEST.")
			c.RetryWithRealDigest = true
			return c
		case ct == mediaTypeOCIIndex:
			return unsupported(finding.ReferrersMalformedIndex, "Referrers reply claims to be an OCI index but does not parse as one",
				"The body is not a valid image index (schemaVersion 2 with a manifests list). Clients reject it and fall back to tags.")
		case strings.Contains(ct, "html"):
			return unsupported(finding.ReferrersHTMLReply, "Referrers request answered with an HTML page (200)",
				"An HTML 200 is a login page or a proxy, not the referrers API (Google Artifact Registry answered this way before 2024-10). Treat the API as absent.")
		case parsed:
			c := unsupported(finding.ReferrersWrongContentType, fmt.Sprintf("Referrers reply is an index but its Content-Type is %q", r.ContentType),
				"The spec requires Content-Type application/vnd.oci.image.index.v1+json; Harbor 2.8-2.9 send application/json. Strict clients reject the reply and fall back to tags. Harbor is correct from 2.11.")
			c.IndexParsed = true
			return c
		default:
			return unsupported(finding.ReferrersNotAnIndex, fmt.Sprintf("Referrers request answered 200 with %q that is not an OCI index", r.ContentType),
				"Something other than the referrers API answered this path (a catch-all route, a proxy). Treat the API as absent.")
		}
	case r.Status == http.StatusNotFound:
		if hasCode(r.Body, "NAME_UNKNOWN") && !r.RepositoryExists {
			return unknown(finding.RepositoryNotFound, finding.SeverityError, "The repository used for the probe does not exist",
				"A 404 NAME_UNKNOWN says the repository is unknown, so it says nothing about the referrers API.",
				"Probe an existing repository: refdoctor probe HOST/REPO (or HOST/REPO@DIGEST).")
		}
		if hasCode(r.Body, "MANIFEST_UNKNOWN") && r.ZeroDigest {
			c := unknown(finding.ReferrersUnknownSubject, finding.SeverityWarn, "Referrers request answered 404 MANIFEST_UNKNOWN for the placeholder digest",
				"Quay answers 404 for a subject it does not know; a registry that follows the spec answers 200 with an empty index.",
				"Probe again with a digest that exists: HOST/REPO@DIGEST.")
			c.RetryWithRealDigest = true
			return c
		}
		return unsupported(finding.ReferrersNotFound, "Referrers API unavailable: 404 Not Found",
			"A registry that supports the API answers 200 with an empty index even when nothing is attached; 404 means there is no referrers endpoint (GHCR, distribution v2/v3, GitLab). The older runbook reading \"404 = supported, no referrers\" is wrong.")
	case r.Status == http.StatusMethodNotAllowed:
		return unsupported(finding.ReferrersMethodNotAllowed, "Referrers API unavailable: 405 Method Not Allowed",
			"The route exists but the API is switched off (olareg with referrers disabled, some proxies).")
	case r.Status == http.StatusNotAcceptable:
		return unsupported(finding.ReferrersNotAcceptable, "Referrers API unavailable: 406 Not Acceptable",
			"JFrog Artifactory before 7.90.1 answers 406 on /referrers. Upgrade Artifactory to 7.90.1 or later for the API.")
	case r.Status == http.StatusNotImplemented:
		return unsupported(finding.ReferrersNotImplemented, "Referrers API unavailable: 501 Not Implemented",
			"501 is not in the distribution spec, but it plainly says the endpoint is missing.")
	case r.Status == http.StatusBadRequest:
		if r.ZeroDigest {
			c := unknown(finding.ReferrersBadRequest, finding.SeverityWarn, "Referrers request answered 400 for the placeholder digest",
				"Quay 3.12.1 and later answer 400 for a subject they do not know; a 400 also follows a malformed digest.",
				"Probe again with a digest that exists: HOST/REPO@DIGEST.")
			c.RetryWithRealDigest = true
			return c
		}
		return unknown(finding.ReferrersBadRequest, finding.SeverityError, "Referrers request answered 400 Bad Request",
			"The registry rejected the request itself; this says nothing certain about the API.",
			"Check the digest and repository, then probe again; compare with `oras discover`.")
	case r.Status == http.StatusUnauthorized || r.Status == http.StatusForbidden:
		return unknown(finding.ReferrersAuthRefused, finding.SeverityError, fmt.Sprintf("Referrers request refused after authentication (%d)", r.Status),
			"Auth runs before routing on most registries, so a refusal says nothing about referrers support.",
			"Log in with pull access to the repository (docker login HOST, or a credential helper), then probe again.")
	case r.Status == http.StatusTooManyRequests:
		return unknown(finding.ReferrersRateLimited, finding.SeverityError, "Referrers request rate limited (429)",
			"The registry throttled the request; this says nothing about support and must never be read as \"no referrers\".",
			"Wait for the window in Retry-After / ratelimit-remaining, log in for a higher limit, or lower max_concurrent_discoveries.")
	case r.Status >= 500:
		return unknown(finding.ReferrersServerError, finding.SeverityError, fmt.Sprintf("Referrers request failed with a server error (%d)", r.Status),
			"The registry failed; this says nothing about support.", "Retry later; check the registry's status page and logs.")
	}
	return unknown(finding.ReferrersUnexpectedStatus, finding.SeverityError, fmt.Sprintf("Referrers request answered an unexpected %d", r.Status),
		"This status has no meaning for the referrers API in the spec.", "Compare with `curl -si` and `oras discover`; report the registry and version.")
}

// TooLargeFinding says that a reply (what: "Referrers reply", "Tag list")
// was larger than the reply cap and was therefore not judged.
func TooLargeFinding(what string, status int, contentType string, size int64) finding.Finding {
	return finding.Finding{Severity: finding.SeverityError, Code: finding.ReferrersReplyTooLarge,
		Summary:  fmt.Sprintf("%s is %s, over the reply size cap: not read, so nothing is judged from it", what, humanBytes(size)),
		Cause:    "refdoctor parses whole replies only, bounded by --max-reply-size; a cut-off copy would look like a malformed index.",
		Remedy:   fmt.Sprintf("Raise --max-reply-size above %s if the registry really lists this much, or filter with --artifact-type.", humanBytes(size)),
		Evidence: fmt.Sprintf("HTTP %d, Content-Type %q, at least %d bytes", status, contentType, size)}
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}

// ClassifyTransportError names what went wrong below HTTP: TLS trust,
// expiry or host name, a plain-HTTP server, refused connections, DNS,
// timeouts and endless redirects. host (host:port, may be empty) goes into
// the remedies.
func ClassifyTransportError(host string, err error) (code finding.Code, summary, cause, remedy string) {
	h := host
	if h == "" {
		h = "HOST"
	}
	var unknownAuth x509.UnknownAuthorityError
	var recordErr tls.RecordHeaderError
	var throttled *registry.ThrottledError
	var invalid x509.CertificateInvalidError
	var hostErr x509.HostnameError
	var dnsErr *net.DNSError
	var netErr net.Error
	switch {
	case errors.As(err, &unknownAuth):
		return finding.TLSUnknownAuthority, "TLS certificate signed by an unknown authority",
			"The registry's certificate chain does not lead to a CA this machine trusts (self-signed or a private CA).",
			"Add the CA: ca_file in the [[registry]] config (or /etc/docker/certs.d/HOST/ca.crt); --insecure HOST skips verification for a test only."
	case errors.As(err, &invalid) && invalid.Reason == x509.Expired:
		return finding.TLSCertificateExpired, "TLS certificate expired or not yet valid",
			"The certificate's validity window does not include the current time (also check this machine's clock).",
			"Renew the registry certificate; check `openssl s_client -connect HOST:443 -servername HOST`."
	case errors.As(err, &invalid):
		return finding.TLSCertificateInvalid, "TLS certificate invalid", invalid.Error(),
			"Inspect the chain with `openssl s_client -connect HOST:443 -servername HOST`."
	case errors.As(err, &hostErr):
		return finding.TLSWrongHost, "TLS certificate is for a different host name",
			"The certificate does not name the host refdoctor connected to: " + hostErr.Error() + ".",
			"Use the host name on the certificate, or reissue the certificate with this name."
	case strings.Contains(err.Error(), "server gave HTTP response to HTTPS client") ||
		strings.Contains(err.Error(), "first record does not look like a TLS handshake") ||
		(errors.As(err, &recordErr) && recordErr.Conn != nil):
		return finding.TLSPlainHTTPServer, fmt.Sprintf("%s speaks plain HTTP, not HTTPS", h),
			"refdoctor started a TLS handshake and the server answered in plain HTTP: the registry serves http://, not https://.",
			fmt.Sprintf("Add --plain-http %s to the command (or plain_http = true for host %q in the config).", h, h)
	case errors.Is(err, registry.ErrTooManyRedirects) || strings.Contains(err.Error(), "stopped after 10 redirects"):
		return finding.TooManyRedirects, "The registry redirected more than 10 times",
			"Each reply sent the client to another URL; clients give up after 10 redirects, as Go's client and regclient do.",
			fmt.Sprintf("Follow the chain with `curl -sIL https://%s/v2/` and fix the proxy or URL that loops.", h)
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &netErr) && netErr.Timeout()):
		return finding.Timeout, "No reply before the timeout",
			"The registry or the network is slow, drops packets, or stalled part way through a reply.", fmt.Sprintf("Raise --timeout (or export.referrer_discovery.timeout_seconds), check connectivity with `curl -v https://%s/v2/`.", h)
	case errors.As(err, &dnsErr):
		return finding.DNSFailure, "The registry host name does not resolve",
			dnsErr.Error(), "Check the host name and this machine's DNS."
	case errors.Is(err, syscall.ECONNREFUSED):
		return finding.ConnectionRefused, "Connection refused",
			"Nothing listens on that host and port.", "Check the host and port, and that the registry is running."
	case errors.As(err, &throttled):
		return finding.RateLimited, "Rate limited past the time left", throttled.Error(), finding.RateLimited.Remedy()
	case errors.Is(err, context.Canceled):
		return finding.Canceled, "Canceled before the registry answered", "The operator or the program stopped the check.", "Run the check again."
	}
	return finding.NetworkError, "Network error", err.Error(), fmt.Sprintf("Check connectivity with `curl -v https://%s/v2/`.", h)
}
