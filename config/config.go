// Package config loads refdoctor's TOML configuration: registry hosts,
// discovery limits, cache settings and the Prometheus to query. It decodes
// strictly, so a misspelt key is an error that names the key and its line
// rather than a setting that silently does nothing. The file never holds
// secrets: registry credentials come from docker's config.json and
// credential helpers, Prometheus credentials from files it names.
package config

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// ErrInvalid marks a configuration that was read but does not make sense.
var ErrInvalid = errors.New("invalid configuration")

// Config is the whole configuration file.
type Config struct {
	Export     Export     `toml:"export"`
	Registries []Registry `toml:"registry"`
	Cache      Cache      `toml:"cache"`
	Telemetry  Telemetry  `toml:"telemetry"`
	Bundle     Bundle     `toml:"bundle"`

	// Path is the file the configuration came from, empty for defaults.
	Path string `toml:"-"`
	// source is the text Parse read, for naming the line of a value that
	// is checked after decoding (RegistryKeyLine).
	source []string
}

// Export holds the settings of the export pipeline that refdoctor mirrors.
type Export struct {
	ReferrerDiscovery ReferrerDiscovery `toml:"referrer_discovery"`
}

// ReferrerDiscovery bounds referrer discovery in time, concurrency and
// size.
type ReferrerDiscovery struct {
	TimeoutSeconds           int `toml:"timeout_seconds"`
	MaxConcurrentDiscoveries int `toml:"max_concurrent_discoveries"`
	// MaxReferrers bounds one subject's referrers API walk over Link
	// pages; a walk that reaches it is reported partial.
	MaxReferrers int `toml:"max_referrers"`
	// MaxReplySize bounds one registry reply that refdoctor reads whole
	// (a referrers page, a tag list); a larger reply is reported as too
	// large, never judged from a cut-off copy.
	MaxReplySize ByteSize `toml:"max_reply_size"`
}

// The engine's defaults, one of each: every registry operation's time
// limit, the referrer walk bound and the reply size bound.
const (
	DefaultTimeoutSeconds = 120
	DefaultMaxReferrers   = 10000
	DefaultMaxReplySize   = ByteSize(32 << 20)
)

// ByteSize is a size written as a number of bytes or with a unit:
// "32MiB", "5MB", "512KiB".
type ByteSize int64

// ParseByteSize reads a size with an optional unit (B, KB, KiB, MB, MiB,
// GB, GiB; case does not matter).
func ParseByteSize(s string) (ByteSize, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && (t[i] >= '0' && t[i] <= '9' || t[i] == '.') {
		i++
	}
	num, unit := t[:i], strings.ToLower(strings.TrimSpace(t[i:]))
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || f < 0 {
		return 0, fmt.Errorf("%q is not a size (use a form like \"32MiB\" or \"5MB\")", s)
	}
	mult := map[string]float64{"": 1, "b": 1, "k": 1 << 10, "kb": 1e3, "kib": 1 << 10, "m": 1 << 20, "mb": 1e6, "mib": 1 << 20, "g": 1 << 30, "gb": 1e9, "gib": 1 << 30}[unit]
	if mult == 0 {
		return 0, fmt.Errorf("%q: unknown unit %q (use B, KB, KiB, MB, MiB, GB or GiB)", s, unit)
	}
	return ByteSize(f * mult), nil
}

// UnmarshalTOML accepts a TOML integer (bytes) or a string with a unit.
func (b *ByteSize) UnmarshalTOML(v any) error {
	switch x := v.(type) {
	case int64:
		*b = ByteSize(x)
		return nil
	case string:
		n, err := ParseByteSize(x)
		*b = n
		return err
	}
	return fmt.Errorf("%v is not a size (use a form like \"32MiB\")", v)
}

// String renders the size with the largest binary unit that divides it.
func (b ByteSize) String() string {
	switch {
	case b >= 1<<30 && b%(1<<30) == 0:
		return fmt.Sprintf("%dGiB", b>>30)
	case b >= 1<<20 && b%(1<<20) == 0:
		return fmt.Sprintf("%dMiB", b>>20)
	case b >= 1<<10 && b%(1<<10) == 0:
		return fmt.Sprintf("%dKiB", b>>10)
	}
	return fmt.Sprintf("%dB", int64(b))
}

// Timeout is TimeoutSeconds as a duration.
func (r ReferrerDiscovery) Timeout() time.Duration {
	return time.Duration(r.TimeoutSeconds) * time.Second
}

// Registry is one [[registry]] table: how to reach a host.
type Registry struct {
	Host               string `toml:"host"`
	PlainHTTP          bool   `toml:"plain_http"`
	InsecureSkipVerify bool   `toml:"insecure_skip_verify"`
	// CAFile is a PEM file of extra roots trusted for this host.
	CAFile string `toml:"ca_file"`
	// Expected is the registry kind from the known-registry matrix.
	Expected string `toml:"expected"`
	// Repository is a repository on the host that commands given no
	// target probe (a certain verdict needs one) and that the TUI opens
	// when it switches to this registry.
	Repository string `toml:"repository"`
	// ReferrersRepository is HOST/REPO where this registry's images keep
	// their signatures and attestations (cosign's COSIGN_REPOSITORY):
	// discovery, compare and export look there too, for every subject on
	// this host.
	ReferrersRepository string `toml:"referrers_repository"`
}

// Target is the entry as a probe target: HOST, or HOST/REPOSITORY.
func (r Registry) Target() string {
	if r.Repository != "" {
		return r.Host + "/" + r.Repository
	}
	return r.Host
}

// Cache configures the on-disk capability cache.
type Cache struct {
	CapabilitiesTTL Duration `toml:"capabilities_ttl"`
	// Dir is the cache folder. Load fills in the user cache dir
	// (DefaultCacheDir) when the file names none; an empty Dir, as in
	// Defaults, keeps no cache.
	Dir string `toml:"dir"`
	// Origin names the command that probes with this configuration
	// ("refdoctor probe"); the cache records it with each verdict. It is
	// set by the program, never read from the file.
	Origin string `toml:"-"`
}

// DefaultCacheDir is refdoctor's folder in the user cache dir
// ($XDG_CACHE_HOME/refdoctor on Linux).
func DefaultCacheDir() (string, error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no user cache dir: %w", err)
	}
	return filepath.Join(dir, "refdoctor"), nil
}

// Telemetry names the Prometheus that `metrics query` and the runbook's
// telemetry step ask. Its credentials are read from the files named here,
// so the config itself stays free of secrets; the files' contents are never
// printed or logged.
type Telemetry struct {
	// PrometheusURL is the server's base URL, e.g. http://prometheus:9090.
	PrometheusURL string `toml:"prometheus_url"`
	// PrometheusBearerTokenFile holds a bearer token sent as
	// Authorization: Bearer.
	PrometheusBearerTokenFile string `toml:"prometheus_bearer_token_file"`
	// PrometheusUsername and PrometheusPasswordFile are HTTP basic auth.
	PrometheusUsername     string `toml:"prometheus_username"`
	PrometheusPasswordFile string `toml:"prometheus_password_file"`
}

// Bundle configures the air-gap side of mirror bundles.
type Bundle struct {
	// VerifyKeys are PEM public key files (as cosign.pub) that bundle
	// validate and import verify signatures with when no --verify-key is
	// given, and that the runbook's bundle step uses: any one of them
	// verifying is enough. A relative path is relative to the
	// configuration file's folder. Each must exist and hold a public key.
	VerifyKeys []string `toml:"verify_keys"`
}

// maxKeyFile bounds a public key file: a PEM key is well under 16 KiB.
const maxKeyFile = 64 << 10

// checkPublicKeyFile checks that path holds a PEM public key ("PUBLIC
// KEY", as cosign.pub, or "RSA PUBLIC KEY"), as package bundle/signing
// reads it.
func checkPublicKeyFile(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return errors.New("not a regular file")
	}
	if fi.Size() > maxKeyFile {
		return fmt.Errorf("%d bytes, too large to be a PEM public key", fi.Size())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return errors.New("not PEM: a public key file starts with -----BEGIN PUBLIC KEY-----, as cosign.pub does")
	}
	switch block.Type {
	case "PUBLIC KEY":
		_, err = x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		_, err = x509.ParsePKCS1PublicKey(block.Bytes)
	default:
		return fmt.Errorf("a PEM %q block, not a public key (give cosign.pub, not cosign.key)", block.Type)
	}
	if err != nil {
		return fmt.Errorf("not a public key: %v", err)
	}
	return nil
}

// Duration is a time.Duration written as "24h" in TOML.
type Duration struct{ time.Duration }

// UnmarshalText parses a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("%q is not a duration (use a form like \"24h\" or \"30m\")", b)
	}
	d.Duration = v
	return nil
}

// MarshalText writes the duration in Go's form.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.Duration.String()), nil }

// Defaults returns the configuration used when no file exists.
func Defaults() Config {
	return Config{
		Export: Export{ReferrerDiscovery: ReferrerDiscovery{
			TimeoutSeconds:           DefaultTimeoutSeconds,
			MaxConcurrentDiscoveries: 4,
			MaxReferrers:             DefaultMaxReferrers,
			MaxReplySize:             DefaultMaxReplySize,
		}},
		Cache: Cache{CapabilitiesTTL: Duration{24 * time.Hour}},
	}
}

// DefaultPath is $XDG_CONFIG_HOME/refdoctor/config.toml (or the platform's
// user config dir).
func DefaultPath() string {
	dir, err := os.UserConfigDir()
	if err != nil {
		return ""
	}
	return filepath.Join(dir, "refdoctor", "config.toml")
}

// Load reads the file at path. An empty path means the default location,
// where a missing file is not an error; a named file must exist. The
// cache folder defaults to DefaultCacheDir.
func Load(path string) (Config, error) {
	cfg, err := load(path)
	if err == nil && cfg.Cache.Dir == "" {
		if dir, derr := DefaultCacheDir(); derr == nil {
			cfg.Cache.Dir = dir
		}
	}
	return cfg, err
}

func load(path string) (Config, error) {
	explicit := path != ""
	if !explicit {
		path = DefaultPath()
	}
	cfg := Defaults()
	if path == "" {
		return cfg, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		if !explicit && errors.Is(err, os.ErrNotExist) {
			return cfg, nil
		}
		return cfg, fmt.Errorf("read config %s: %w", path, err)
	}
	cfg, err = parse(data, filepath.Dir(path))
	if err != nil {
		return cfg, fmt.Errorf("config %s: %w", path, err)
	}
	cfg.Path = path
	return cfg, nil
}

// Parse decodes TOML over the defaults, rejecting unknown keys, and
// validates the result.
func Parse(data []byte) (Config, error) { return parse(data, "") }

// parse is Parse for a file in dir, against which relative key paths are
// resolved ("" leaves them relative to the working directory).
func parse(data []byte, dir string) (Config, error) {
	cfg := Defaults()
	md, err := toml.NewDecoder(bytes.NewReader(data)).Decode(&cfg)
	if err != nil {
		var perr toml.ParseError
		if errors.As(err, &perr) {
			return cfg, fmt.Errorf("%w: line %d: %s", ErrInvalid, perr.Position.Line, perr.Message)
		}
		return cfg, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	cfg.source = strings.Split(string(data), "\n")
	if undecoded := md.Undecoded(); len(undecoded) > 0 {
		var names []string
		for _, k := range undecoded {
			names = append(names, keyWithLine(data, k))
		}
		return cfg, fmt.Errorf("%w: unknown key %s (check the spelling; see the documented keys in README)", ErrInvalid, strings.Join(names, ", "))
	}
	for i, k := range cfg.Bundle.VerifyKeys {
		if k != "" && dir != "" && !filepath.IsAbs(k) {
			cfg.Bundle.VerifyKeys[i] = filepath.Join(dir, k)
		}
	}
	return cfg, cfg.Validate()
}

// keyWithLine names an undecoded key with the line it first appears on.
func keyWithLine(data []byte, k toml.Key) string {
	last := k[len(k)-1]
	for i, line := range strings.Split(string(data), "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, last) {
			rest := strings.TrimSpace(strings.TrimPrefix(trimmed, last))
			if strings.HasPrefix(rest, "=") {
				return fmt.Sprintf("%q (line %d)", k.String(), i+1)
			}
		}
		if trimmed == "["+k.String()+"]" || trimmed == "[["+k.String()+"]]" {
			return fmt.Sprintf("%q (line %d)", k.String(), i+1)
		}
	}
	return fmt.Sprintf("%q", k.String())
}

// RegistryKeyLine is the line (1-based) of key in the i-th [[registry]]
// table of the file Parse read, the table's own line when the key is not
// written there, or 0 when the configuration was not read from text.
func (c Config) RegistryKeyLine(i int, key string) int {
	n := -1
	header := 0
	for ln, raw := range c.source {
		line := strings.TrimSpace(raw)
		if j := strings.Index(line, "#"); j >= 0 && !strings.ContainsAny(line[:j], `"'`) {
			line = strings.TrimSpace(line[:j])
		}
		if strings.HasPrefix(line, "[") {
			if n == i {
				break
			}
			if strings.ReplaceAll(line, " ", "") == "[[registry]]" {
				n++
				if n == i {
					header = ln + 1
				}
			}
			continue
		}
		if n != i {
			continue
		}
		if k, _, ok := strings.Cut(line, "="); ok && strings.Trim(strings.TrimSpace(k), `"'`) == key {
			return ln + 1
		}
	}
	return header
}

// Validate checks values that parse but cannot work.
func (c Config) Validate() error {
	var problems []string
	rd := c.Export.ReferrerDiscovery
	if rd.TimeoutSeconds <= 0 {
		problems = append(problems, fmt.Sprintf("export.referrer_discovery.timeout_seconds = %d: must be a positive number of seconds", rd.TimeoutSeconds))
	}
	if rd.MaxConcurrentDiscoveries <= 0 || rd.MaxConcurrentDiscoveries > 256 {
		problems = append(problems, fmt.Sprintf("export.referrer_discovery.max_concurrent_discoveries = %d: must be between 1 and 256", rd.MaxConcurrentDiscoveries))
	}
	if rd.MaxReferrers < 0 {
		problems = append(problems, fmt.Sprintf("export.referrer_discovery.max_referrers = %d: must not be negative (0 means the default, %d)", rd.MaxReferrers, DefaultMaxReferrers))
	}
	if rd.MaxReplySize < 0 || (rd.MaxReplySize > 0 && rd.MaxReplySize < 64<<10) {
		problems = append(problems, fmt.Sprintf("export.referrer_discovery.max_reply_size = %s: use at least 64KiB (0 means the default, %s)", rd.MaxReplySize, DefaultMaxReplySize))
	}
	if c.Cache.CapabilitiesTTL.Duration < 0 {
		problems = append(problems, "cache.capabilities_ttl must not be negative (use \"0s\" to disable the cache)")
	}
	problems = append(problems, c.Telemetry.problems()...)
	for i, k := range c.Bundle.VerifyKeys {
		if k == "" {
			problems = append(problems, fmt.Sprintf("bundle.verify_keys[%d] is empty: name a PEM public key file such as cosign.pub", i))
			continue
		}
		if err := checkPublicKeyFile(k); err != nil {
			problems = append(problems, fmt.Sprintf("bundle.verify_keys[%d] %s: %v", i, k, err))
		}
	}
	seen := map[string]bool{}
	for i, r := range c.Registries {
		if err := ValidateHost(r.Host); err != nil {
			problems = append(problems, fmt.Sprintf("registry[%d].host: %v", i, err))
			continue
		}
		if seen[r.Host] {
			problems = append(problems, fmt.Sprintf("registry[%d].host %q is listed twice", i, r.Host))
		}
		seen[r.Host] = true
		if r.Repository != "" && (strings.ContainsAny(r.Repository, ":@ \t") || strings.HasPrefix(r.Repository, "/") || strings.HasSuffix(r.Repository, "/")) {
			problems = append(problems, fmt.Sprintf("registry[%d] %s: repository %q is not a repository name (write team/app, without the host, a tag or a digest)", i, r.Host, r.Repository))
		}
		if r.PlainHTTP && r.InsecureSkipVerify {
			problems = append(problems, fmt.Sprintf("registry[%d] %s: plain_http and insecure_skip_verify exclude each other", i, r.Host))
		}
		if r.ReferrersRepository != "" {
			if err := ValidateRepository(r.ReferrersRepository); err != nil {
				problems = append(problems, fmt.Sprintf("registry[%d] %s: referrers_repository: %v", i, r.Host, err))
			}
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: %s", ErrInvalid, strings.Join(problems, "; "))
	}
	return nil
}

func (t Telemetry) problems() []string {
	var problems []string
	if t.PrometheusURL != "" {
		if err := ValidatePrometheusURL(t.PrometheusURL); err != nil {
			problems = append(problems, "telemetry.prometheus_url: "+err.Error())
		}
	}
	if t.PrometheusBearerTokenFile != "" && (t.PrometheusUsername != "" || t.PrometheusPasswordFile != "") {
		problems = append(problems, "telemetry: prometheus_bearer_token_file and prometheus_username/prometheus_password_file exclude each other (Prometheus takes one kind of login)")
	}
	if t.PrometheusUsername != "" && t.PrometheusPasswordFile == "" {
		problems = append(problems, "telemetry.prometheus_username needs prometheus_password_file (a file holding the password)")
	}
	if t.PrometheusPasswordFile != "" && t.PrometheusUsername == "" {
		problems = append(problems, "telemetry.prometheus_password_file needs prometheus_username")
	}
	return problems
}

// ValidatePrometheusURL checks a Prometheus base URL: http or https, a
// host, and no user:password@ (passwords belong in
// prometheus_password_file, never in a URL that ends up in shell history,
// logs and reports).
func ValidatePrometheusURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("%q is not a URL: %v", s, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("%q: give an http:// or https:// URL, e.g. http://localhost:9090", redactURL(u))
	}
	if u.Host == "" {
		return fmt.Errorf("%q has no host", redactURL(u))
	}
	if u.User != nil {
		return fmt.Errorf("%q carries a login: drop it from the URL and set prometheus_username and prometheus_password_file (or prometheus_bearer_token_file) in [telemetry]", redactURL(u))
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("%q: give the server's base URL without a query or fragment", redactURL(u))
	}
	return nil
}

// redactURL renders u without its user information (a user name alone can
// be a token), for error messages.
func redactURL(u *url.URL) string {
	c := *u
	if c.User != nil {
		c.User = url.User("REDACTED")
	}
	return c.String()
}

// ValidateHost checks a registry host name with an optional port.
func ValidateHost(host string) error {
	if host == "" {
		return errors.New("empty host")
	}
	if strings.ContainsAny(host, "/@ \t") || strings.Contains(host, "://") {
		return fmt.Errorf("%q is not a host name (give HOST or HOST:PORT without a scheme or path)", host)
	}
	name, port := host, ""
	if h, p, err := net.SplitHostPort(host); err == nil {
		name, port = h, p
	} else if strings.Count(host, ":") == 1 {
		return fmt.Errorf("%q: %v", host, err)
	}
	if name == "" {
		return fmt.Errorf("%q has no host name", host)
	}
	if port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("%q: port %q is out of range (1-65535)", host, port)
		}
	}
	return nil
}

// repositoryPath is the distribution spec's repository name grammar.
var repositoryPath = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$`)

// ValidateRepository checks HOST/REPO: a host (with an optional port) and
// a repository path, without tag, digest or scheme.
func ValidateRepository(s string) error {
	host, path, ok := strings.Cut(s, "/")
	if !ok || path == "" {
		return fmt.Errorf("%q: give HOST/REPO, e.g. ghcr.io/org/signatures", s)
	}
	if strings.Contains(s, "://") {
		return fmt.Errorf("%q: give HOST/REPO without a scheme", s)
	}
	if err := ValidateHost(host); err != nil {
		return err
	}
	if !repositoryPath.MatchString(path) {
		return fmt.Errorf("%q: %q is not a repository name (lower-case letters, digits, separators; no tag or digest)", s, path)
	}
	return nil
}

// Host returns the [[registry]] settings for host, if any.
func (c Config) Host(host string) (Registry, bool) {
	for _, r := range c.Registries {
		if r.Host == host {
			return r, true
		}
	}
	return Registry{}, false
}

// SetHost adds or replaces the settings of one host (used by flags).
func (c *Config) SetHost(r Registry) {
	for i := range c.Registries {
		if c.Registries[i].Host == r.Host {
			c.Registries[i] = r
			return
		}
	}
	c.Registries = append(c.Registries, r)
}
