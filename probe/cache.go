package probe

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Cache keeps conclusive capability verdicts on disk so that a second
// probe within the TTL sends no request. Unknown verdicts (throttled,
// refused, timed out) are never stored: they describe a moment, not the
// registry.
type Cache struct {
	path string
	ttl  time.Duration
	now  func() time.Time
	mu   sync.Mutex
}

type cacheFile struct {
	Version int                   `json:"version"`
	Entries map[string]cacheEntry `json:"entries"`
}

type cacheEntry struct {
	StoredAt time.Time `json:"stored_at"`
	Result   Result    `json:"result"`
}

const cacheVersion = 1

// DefaultCacheDir is refdoctor's folder in the user cache dir.
func DefaultCacheDir() (string, error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no user cache dir: %w", err)
	}
	return filepath.Join(dir, "refdoctor"), nil
}

// NewCache opens the capability cache in dir with the given TTL. A TTL of
// zero disables it (Get never hits, Put does nothing).
func NewCache(dir string, ttl time.Duration) *Cache {
	return &Cache{path: filepath.Join(dir, "capabilities.json"), ttl: ttl, now: time.Now}
}

// Path is the cache file.
func (c *Cache) Path() string { return c.path }

func (c *Cache) load() cacheFile {
	f := cacheFile{Version: cacheVersion, Entries: map[string]cacheEntry{}}
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

// Get returns a stored result younger than the TTL.
func (c *Cache) Get(key string) (Result, bool) {
	if c == nil || c.ttl <= 0 {
		return Result{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.load().Entries[key]
	if !ok || c.now().Sub(e.StoredAt) > c.ttl || e.StoredAt.After(c.now().Add(time.Minute)) {
		return Result{}, false
	}
	return e.Result, true
}

// Put stores a result, replacing the file atomically.
func (c *Cache) Put(key string, r Result) error {
	if c == nil || c.ttl <= 0 {
		return nil
	}
	if r.ReferrersAPI == Unknown {
		return errors.New("unknown verdicts are not cached")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	f := c.load()
	now := c.now()
	for k, e := range f.Entries {
		if now.Sub(e.StoredAt) > c.ttl {
			delete(f.Entries, k)
		}
	}
	r.Cached = false
	f.Entries[key] = cacheEntry{StoredAt: now.UTC(), Result: r}
	data, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(c.path), 0o700); err != nil {
		return fmt.Errorf("capability cache: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(c.path), ".capabilities-*.json")
	if err != nil {
		return fmt.Errorf("capability cache: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("capability cache: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("capability cache: %w", err)
	}
	return os.Rename(tmp.Name(), c.path)
}
