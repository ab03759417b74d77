// Package registry is the one place where refdoctor builds its regclient
// client from configuration: plain-HTTP and insecure hosts, extra CAs,
// docker credentials and helpers, timeouts and the user agent. Every client
// records its HTTP exchanges through a Recorder so that probes can show the
// exact reply that decided a verdict, without ever recording a secret.
package registry

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/regclient/regclient"
	rcconfig "github.com/regclient/regclient/config"
	"github.com/regclient/regclient/scheme/reg"

	"github.com/refdoctor/refdoctor/config"
)

// DefaultUserAgent is sent when no WithUserAgent option is given.
const DefaultUserAgent = "refdoctor"

// DefaultTimeout is the engine's one default time limit: it bounds each
// request's connection, TLS handshake and wait for reply headers, and it
// is the limit of a whole operation (a probe, one subject's discovery, a
// tag listing) when the caller sets none. Configuration
// (export.referrer_discovery.timeout_seconds, --timeout) overrides it.
const DefaultTimeout = time.Duration(config.DefaultTimeoutSeconds) * time.Second

// MaxRedirects is how many redirects one request may follow, as in Go's
// http.Client and regclient.
const MaxRedirects = 10

// ErrTooManyRedirects ends a request whose redirects do not stop.
var ErrTooManyRedirects = errors.New("stopped after 10 redirects")

// Client is a regclient client with the recorder that sees its traffic.
type Client struct {
	*regclient.RegClient
	Recorder *Recorder
}

type options struct {
	timeout     time.Duration
	log         *slog.Logger
	dockerCreds bool
	credsFile   string
	retryLimit  int
	recorder    *Recorder
	extraHosts  []rcconfig.Host
	userAgent   string
	maxReply    int64
}

// Opt changes how New builds a client.
type Opt func(*options)

// WithTimeout bounds connecting, the TLS handshake and waiting for reply
// headers of each request (whole operations are bounded by ctx).
func WithTimeout(d time.Duration) Opt { return func(o *options) { o.timeout = d } }

// WithMaxReplySize bounds each captured reply (referrers pages, tag
// lists, /v2/): a larger reply is reported as too large, never parsed
// from a cut-off copy.
func WithMaxReplySize(n int64) Opt { return func(o *options) { o.maxReply = n } }

// WithLogger sends regclient's logs to l.
func WithLogger(l *slog.Logger) Opt { return func(o *options) { o.log = l } }

// WithoutDockerCreds skips docker's config.json (tests use it for isolation).
func WithoutDockerCreds() Opt { return func(o *options) { o.dockerCreds = false } }

// WithDockerConfigFile reads logins from this docker config.json instead of
// the default one.
func WithDockerConfigFile(path string) Opt { return func(o *options) { o.credsFile = path } }

// WithRetryLimit sets how often a failing request is retried.
func WithRetryLimit(n int) Opt { return func(o *options) { o.retryLimit = n } }

// WithUserAgent names the tool and its version to registries.
func WithUserAgent(ua string) Opt { return func(o *options) { o.userAgent = ua } }

// WithRecorder shares an existing recorder instead of making a new one;
// it keeps every exchange for Exchanges (without it, a client's exchanges
// reach watchers only).
func WithRecorder(r *Recorder) Opt { return func(o *options) { o.recorder = r } }

// WithLogin sets a username and password for one host, for callers that
// hold credentials in memory (the lab). They go to regclient only.
func WithLogin(host, user, pass string) Opt {
	return func(o *options) {
		o.extraHosts = append(o.extraHosts, rcconfig.Host{Name: host, User: user, Pass: pass})
	}
}

// New builds a client for the hosts in cfg. Hosts not named in cfg use TLS
// with the system roots.
func New(cfg config.Config, opts ...Opt) (*Client, error) {
	o := options{timeout: DefaultTimeout, dockerCreds: true, retryLimit: 2, userAgent: DefaultUserAgent}
	for _, opt := range opts {
		opt(&o)
	}
	if o.log == nil {
		o.log = slog.New(slog.DiscardHandler)
	}
	rec := o.recorder
	if rec == nil {
		// A client's own recorder only feeds watchers and OnRecord; a
		// caller that wants the exchanges kept passes WithRecorder.
		rec = NewTimedRecorder(o.timeout)
		rec.forget = true
	}
	if o.maxReply <= 0 {
		o.maxReply = int64(cfg.Export.ReferrerDiscovery.MaxReplySize)
	}
	if o.maxReply > 0 {
		rec.SetMaxReplySize(o.maxReply)
	}
	var hosts []rcconfig.Host
	for _, r := range cfg.Registries {
		h := rcconfig.Host{Name: r.Host, Hostname: r.Host}
		var tc *tls.Config
		switch {
		case r.PlainHTTP:
			h.TLS = rcconfig.TLSDisabled
		case r.InsecureSkipVerify:
			h.TLS = rcconfig.TLSInsecure
			tc = &tls.Config{InsecureSkipVerify: true} //#nosec G402 -- the operator asked for it with --insecure
		default:
			h.TLS = rcconfig.TLSEnabled
		}
		if r.CAFile != "" && !r.PlainHTTP {
			pem, err := os.ReadFile(r.CAFile)
			if err != nil {
				return nil, fmt.Errorf("registry %s: read ca_file: %w", r.Host, err)
			}
			pool, err := x509.SystemCertPool()
			if err != nil || pool == nil {
				pool = x509.NewCertPool()
			}
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("registry %s: ca_file %s holds no PEM certificate", r.Host, r.CAFile)
			}
			if tc == nil {
				tc = &tls.Config{}
			}
			tc.RootCAs = pool
		}
		if tc != nil {
			rec.SetHostTransport(r.Host, baseTransport(o.timeout, tc))
		}
		hosts = append(hosts, h)
	}
	hc := &http.Client{Transport: rec, CheckRedirect: checkRedirect}
	rcOpts := []regclient.Opt{
		regclient.WithUserAgent(o.userAgent),
		regclient.WithSlog(o.log),
		regclient.WithRegOpts(reg.WithHTTPClient(hc), reg.WithRetryLimit(o.retryLimit)),
	}
	if o.dockerCreds {
		rcOpts = append(rcOpts, regclient.WithConfigHost(dockerHosts(o, hosts)...))
	}
	// Hosts from refdoctor's config go last so that their TLS choice wins
	// over docker's; logins merge per host.
	rcOpts = append(rcOpts, regclient.WithConfigHost(hosts...))
	if len(o.extraHosts) > 0 {
		rcOpts = append(rcOpts, regclient.WithConfigHost(o.extraHosts...))
	}
	return &Client{RegClient: regclient.New(rcOpts...), Recorder: rec}, nil
}

// dockerHosts are the logins of docker's config.json (or the named file)
// and DOCKER_AUTH_CONFIG, as regclient reads them, each already carrying
// the TLS choice refdoctor's configuration makes for its host. regclient
// gives a login's host TLS by default; handing it the configured choice
// up front keeps it from warning "Changing TLS settings for registry" for
// every plain-HTTP or insecure host with a login, on every client that
// refdoctor builds, whether or not the command talks to that host.
func dockerHosts(o options, configured []rcconfig.Host) []rcconfig.Host {
	var (
		found []rcconfig.Host
		err   error
	)
	if o.credsFile != "" {
		found, err = rcconfig.DockerLoadFile(o.credsFile)
	} else {
		found, err = rcconfig.DockerLoad()
	}
	if err != nil {
		o.log.Warn("Failed to load docker creds", "err", err)
	}
	for i := range found {
		for _, c := range configured {
			if strings.EqualFold(found[i].Name, c.Name) {
				found[i].TLS = c.TLS
			}
		}
	}
	return found
}

// checkRedirect follows redirects as Go's client does (at most
// MaxRedirects), and never carries the first request's Authorization to
// another host. Go itself drops it only for another host name; here
// host:port is the host, so another port on the same name is another
// host too. regclient runs its own check before this one and may set a
// credential that the new host itself asked for: that one stays.
func checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= MaxRedirects {
		return ErrTooManyRedirects
	}
	first := via[0]
	if !strings.EqualFold(req.URL.Host, first.URL.Host) {
		if a := req.Header.Get("Authorization"); a != "" && a == first.Header.Get("Authorization") {
			req.Header.Del("Authorization")
		}
	}
	return nil
}

// baseTransport is the default transport with bounded connection phases.
func baseTransport(timeout time.Duration, tc *tls.Config) *http.Transport {
	t := tlsTransport(tc)
	t.DialContext = (&net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}).DialContext
	t.TLSHandshakeTimeout = timeout
	t.ResponseHeaderTimeout = timeout
	return t
}

// NewTimedRecorder returns a recorder whose default transport bounds
// connecting and waiting for headers by timeout; New adds per-host TLS.
func NewTimedRecorder(timeout time.Duration) *Recorder {
	return NewRecorder(baseTransport(timeout, nil))
}
