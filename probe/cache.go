package probe

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/refdoctor/refdoctor/config"
	"github.com/refdoctor/refdoctor/finding"
	"github.com/refdoctor/refdoctor/internal/atomicfile"
)

// Cache is refdoctor's capability cache: one file of conclusive verdicts
// (supported or unsupported), shared by every command and screen that
// probes, so that a second look within the TTL sends no request. It keeps
// verdicts, not exchanges. Unknown verdicts (throttled, refused logins,
// timeouts, not a registry) are never stored: they describe a moment, not
// the registry. A nil *Cache is a valid, empty, disabled cache.
type Cache struct {
	path string
	ttl  time.Duration
	now  func() time.Time
	mu   sync.Mutex
}

// CacheEntry is one stored verdict, with where and when it was learned.
type CacheEntry struct {
	// Key is what the verdict depends on: scheme, host, repository and the
	// TLS settings (see CacheKey).
	Key        string `json:"key"`
	Host       string `json:"host"`
	Repository string `json:"repository,omitempty"`
	Scheme     string `json:"scheme"`
	// Settings are the transport settings in the key besides the scheme
	// (insecure, a CA file's digest).
	Settings []string `json:"settings,omitempty"`

	ReferrersAPI              Verdict      `json:"referrers_api"`
	Reason                    finding.Code `json:"referrers_reason"`
	ReferrersStatus           int          `json:"referrers_status,omitempty"`
	ReferrersContentType      string       `json:"referrers_content_type,omitempty"`
	ReferrersIndexParsed      bool         `json:"referrers_index_parsed,omitempty"`
	FallbackTags              string       `json:"fallback_tags"`
	Auth                      string       `json:"auth,omitempty"`
	V2Status                  int          `json:"v2_status,omitempty"`
	DistributionAPIVersion    string       `json:"distribution_api_version,omitempty"`
	OCIDistributionAPIVersion string       `json:"oci_distribution_api_version,omitempty"`
	ProbeMS                   int64        `json:"probe_ms"`
	// Decision is the finding that decided the verdict.
	Decision finding.Finding `json:"decision"`

	// StoredAt is when the verdict was probed; StoredBy is the command or
	// screen that probed it (the verdict's origin).
	StoredAt time.Time `json:"stored_at"`
	StoredBy string    `json:"stored_by"`
}

// Age is how long ago the verdict was probed.
func (e CacheEntry) Age(now time.Time) time.Duration { return now.Sub(e.StoredAt) }

type cacheFile struct {
	Version int                   `json:"version"`
	Entries map[string]CacheEntry `json:"entries"`
}

// cacheVersion 2 stores verdicts; version 1 stored whole results and is
// read as empty (and rewritten).
const cacheVersion = 2

// OpenCache is the cache the configuration names: cache.dir with
// cache.capabilities_ttl. It is nil (no cache) when the configuration
// names no folder (config.Defaults, used by tests and libraries) or the
// TTL is zero. config.Load fills in the user cache dir.
func OpenCache(cfg config.Config) *Cache {
	if cfg.Cache.Dir == "" || cfg.Cache.CapabilitiesTTL.Duration <= 0 {
		return nil
	}
	return NewCache(cfg.Cache.Dir, cfg.Cache.CapabilitiesTTL.Duration)
}

// NewCache opens the capability cache in dir with the given TTL. A TTL of
// zero disables it (Get never hits, Put does nothing).
func NewCache(dir string, ttl time.Duration) *Cache {
	return &Cache{path: filepath.Join(dir, "capabilities.json"), ttl: ttl, now: time.Now}
}

// Path is the cache file ("" for a nil cache).
func (c *Cache) Path() string {
	if c == nil {
		return ""
	}
	return c.path
}

// TTL is how long a verdict is served.
func (c *Cache) TTL() time.Duration {
	if c == nil {
		return 0
	}
	return c.ttl
}

// CacheKey is what a verdict for target depends on: the scheme, the host,
// the repository (some registries answer per repository), and the TLS
// settings that change which server answers and whether it is trusted
// (insecure, the CA file's content). The digest does not matter.
func CacheKey(cfg config.Config, t Target) string {
	scheme, settings := transport(cfg, t.Host)
	k := scheme + "://" + t.Host
	if t.Repository != "" {
		k += "/" + t.Repository
	}
	if len(settings) > 0 {
		k += "?" + strings.Join(settings, "&")
	}
	return k
}

// transport is the scheme and the other settings of host that change a
// verdict.
func transport(cfg config.Config, host string) (string, []string) {
	h, _ := cfg.Host(host)
	if h.PlainHTTP {
		return "http", nil
	}
	var settings []string
	if h.InsecureSkipVerify {
		settings = append(settings, "insecure")
	}
	if h.CAFile != "" {
		sum := "unreadable"
		if data, err := os.ReadFile(h.CAFile); err == nil {
			d := sha256.Sum256(data)
			sum = "sha256:" + hex.EncodeToString(d[:8])
		}
		settings = append(settings, "ca="+sum)
	}
	return "https", settings
}

// Cacheable reports whether r may be stored: a conclusive verdict reached
// with a working login, not throttled.
func Cacheable(r Result) bool {
	if r.ReferrersAPI == Unknown || r.Cached {
		return false
	}
	if r.RateLimit != nil && r.RateLimit.Throttled {
		return false
	}
	for _, f := range r.Findings {
		switch f.Code {
		case finding.AuthFailed, finding.ReferrersAuthRefused, finding.NotARegistry, finding.RateLimited, finding.ReferrersRateLimited:
			return false
		}
	}
	return true
}

func (c *Cache) load() cacheFile {
	f := cacheFile{Version: cacheVersion, Entries: map[string]CacheEntry{}}
	data, err := os.ReadFile(c.path)
	if err != nil {
		return f
	}
	var onDisk cacheFile
	// A corrupt or older cache is ignored and rewritten, never fatal.
	if json.Unmarshal(data, &onDisk) != nil || onDisk.Version != cacheVersion || onDisk.Entries == nil {
		return f
	}
	return onDisk
}

// fresh reports whether e may be served now: younger than the TTL and
// not from the future (a clock that jumped).
func (c *Cache) fresh(e CacheEntry, now time.Time) bool {
	return now.Sub(e.StoredAt) <= c.ttl && !e.StoredAt.After(now.Add(time.Minute))
}

// Get returns a stored verdict younger than the TTL.
func (c *Cache) Get(key string) (CacheEntry, bool) {
	if c == nil || c.ttl <= 0 {
		return CacheEntry{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.load().Entries[key]
	if !ok || !c.fresh(e, c.now()) {
		return CacheEntry{}, false
	}
	return e, true
}

// Put stores the verdict of r under key, by the command named storedBy,
// and drops expired entries. Inconclusive results are refused.
func (c *Cache) Put(key string, r Result, storedBy string) error {
	if c == nil || c.ttl <= 0 {
		return nil
	}
	if !Cacheable(r) {
		return errors.New("inconclusive verdicts are not cached")
	}
	if storedBy == "" {
		storedBy = "refdoctor"
	}
	scheme, settings := "", []string(nil)
	if s, rest, ok := strings.Cut(key, "://"); ok {
		scheme = s
		if _, q, ok := strings.Cut(rest, "?"); ok {
			settings = strings.Split(q, "&")
		}
	}
	e := CacheEntry{Key: key, Host: r.Registry, Repository: r.Repository, Scheme: scheme, Settings: settings,
		ReferrersAPI: r.ReferrersAPI, Reason: r.ReferrersReason, ReferrersStatus: r.ReferrersStatus,
		ReferrersContentType: r.ReferrersContentType, ReferrersIndexParsed: r.ReferrersIndexParsed,
		FallbackTags: r.FallbackTags, Auth: r.Auth, V2Status: r.V2Status,
		DistributionAPIVersion: r.DistributionAPIVersion, OCIDistributionAPIVersion: r.OCIDistributionAPIVersion,
		ProbeMS: r.ProbeMS, StoredBy: storedBy}
	for _, f := range r.Findings {
		if f.Code == r.ReferrersReason {
			e.Decision = f
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	f := c.load()
	now := c.now()
	e.StoredAt = now.UTC()
	c.prune(&f, now)
	f.Entries[key] = e
	return c.write(f)
}

// Delete drops the verdict under key (a registry that changed).
func (c *Cache) Delete(key string) error {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	f := c.load()
	if _, ok := f.Entries[key]; !ok {
		return nil
	}
	delete(f.Entries, key)
	return c.write(f)
}

// Entries lists the fresh verdicts, oldest first, dropping expired ones
// from the file.
func (c *Cache) Entries() ([]CacheEntry, error) {
	if c == nil {
		return nil, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	f := c.load()
	n := len(f.Entries)
	var err error
	if c.ttl > 0 {
		c.prune(&f, c.now())
		if len(f.Entries) != n {
			err = c.write(f)
		}
	}
	out := make([]CacheEntry, 0, len(f.Entries))
	for _, e := range f.Entries {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].StoredAt.Equal(out[j].StoredAt) {
			return out[i].StoredAt.Before(out[j].StoredAt)
		}
		return out[i].Key < out[j].Key
	})
	return out, err
}

// Clear drops every verdict, or only those of host (host:port) when host
// is not empty, and reports how many it dropped.
func (c *Cache) Clear(host string) (int, error) {
	if c == nil {
		return 0, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	f := c.load()
	n := 0
	for k, e := range f.Entries {
		if host == "" || strings.EqualFold(e.Host, host) {
			delete(f.Entries, k)
			n++
		}
	}
	if host == "" {
		if err := os.Remove(c.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return 0, fmt.Errorf("capability cache: %w", err)
		}
		return n, nil
	}
	if n == 0 {
		return 0, nil
	}
	return n, c.write(f)
}

func (c *Cache) prune(f *cacheFile, now time.Time) {
	for k, e := range f.Entries {
		if !c.fresh(e, now) {
			delete(f.Entries, k)
		}
	}
}

// write replaces the file atomically.
func (c *Cache) write(f cacheFile) error {
	f.Version = cacheVersion
	data, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(c.path), 0o700); err != nil {
		return fmt.Errorf("capability cache: %w", err)
	}
	if err := atomicfile.WriteBytes(c.path, 0o600, data); err != nil {
		return fmt.Errorf("capability cache: %w", err)
	}
	return nil
}

// result rebuilds a probe result from a stored verdict, with a finding
// that says it came from the cache, how old it is and who stored it.
func (e CacheEntry) result(t Target) Result {
	age := time.Since(e.StoredAt)
	r := Result{Registry: t.Host, Target: t.String(), Repository: e.Repository, Kind: "unknown", Reachable: true,
		V2Status: e.V2Status, DistributionAPIVersion: e.DistributionAPIVersion, OCIDistributionAPIVersion: e.OCIDistributionAPIVersion,
		Auth: e.Auth, ReferrersAPI: e.ReferrersAPI, ReferrersReason: e.Reason, ReferrersStatus: e.ReferrersStatus,
		ReferrersContentType: e.ReferrersContentType, ReferrersIndexParsed: e.ReferrersIndexParsed, FallbackTags: e.FallbackTags,
		ProbeMS: e.ProbeMS, Cached: true, CachedAt: e.StoredAt, CachedBy: e.StoredBy, ProbedAt: e.StoredAt}
	r.Findings = []finding.Finding{CachedFinding(e, age)}
	if e.Decision.Code != "" {
		r.Findings = append(r.Findings, e.Decision)
	}
	return r
}

// CachedFinding says that a verdict came from the cache, how old it is
// and which command probed it.
func CachedFinding(e CacheEntry, age time.Duration) finding.Finding {
	return finding.Finding{Severity: finding.SeverityInfo, Code: finding.CachedVerdict,
		Summary:  fmt.Sprintf("Verdict from the capability cache: %s (%s), probed %s ago by %s", e.ReferrersAPI, e.Reason, cacheAge(age), e.StoredBy),
		Cause:    "Conclusive verdicts are kept for cache.capabilities_ttl so that repeated checks send no request.",
		Remedy:   fmt.Sprintf("Run with --refresh, or `refdoctor cache clear %s`, for a fresh verdict.", e.Host),
		Evidence: fmt.Sprintf("key %s, stored %s", e.Key, e.StoredAt.UTC().Format(time.RFC3339))}
}

// cacheAge renders a duration the way operators read ages: 45s, 12m, 3h5m.
func cacheAge(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		h := int(d.Hours())
		m := int(d.Minutes()) - 60*h
		if m == 0 {
			return fmt.Sprintf("%dh", h)
		}
		return fmt.Sprintf("%dh%dm", h, m)
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

// Age renders a duration as cache ages are shown (45s, 12m, 3h5m, 2d).
func Age(d time.Duration) string { return cacheAge(d) }
