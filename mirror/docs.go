package mirror

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// docStore keeps the documents validation passes on (index.json,
// manifests, referrer files) until the plan is made. Each is at most
// 4 MiB, but a bundle may hold many: past memLimit bytes they are kept in
// a temporary folder instead, so that import's memory stays bounded
// whatever the bundle holds.
type docStore struct {
	mu    sync.Mutex
	mem   map[string][]byte
	disk  map[string]string
	bytes int64
	dir   string
	fail  error
}

// docMemLimit is how many document bytes import holds in memory.
const docMemLimit = 32 << 20

func newDocStore() (*docStore, error) {
	return &docStore{mem: map[string][]byte{}, disk: map[string]string{}}, nil
}

func (s *docStore) put(path string, data []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return
	}
	if _, ok := s.mem[path]; ok {
		return
	}
	if _, ok := s.disk[path]; ok {
		return
	}
	if s.bytes+int64(len(data)) <= docMemLimit {
		s.mem[path] = data
		s.bytes += int64(len(data))
		return
	}
	if s.dir == "" {
		dir, err := os.MkdirTemp("", "refdoctor-import-*")
		if err != nil {
			s.fail = err
			return
		}
		s.dir = dir
	}
	f := filepath.Join(s.dir, strings.NewReplacer("/", "_").Replace(path))
	if err := os.WriteFile(f, data, 0o600); err != nil {
		s.fail = err
		return
	}
	s.disk[path] = f
}

func (s *docStore) get(path string) ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if b, ok := s.mem[path]; ok {
		return b, true
	}
	if f, ok := s.disk[path]; ok {
		b, err := os.ReadFile(f)
		return b, err == nil
	}
	return nil, false
}

func (s *docStore) err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fail
}

func (s *docStore) close() {
	if s.dir != "" {
		_ = os.RemoveAll(s.dir)
	}
}
