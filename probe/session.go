package probe

import (
	"context"
	"sync"
)

// Session holds the verdicts of one command's run, so that a registry is
// probed, announced and logged once however many steps ask about it (a
// runbook run's probe and discovery steps, an import's capability check
// and its referrer check). It keeps results in memory only; the
// capability cache is what outlives the command. A nil *Session keeps
// nothing.
type Session struct {
	mu      sync.Mutex
	entries map[string]*sessionEntry
}

// NewSession returns an empty session.
func NewSession() *Session { return &Session{entries: map[string]*sessionEntry{}} }

type sessionEntry struct {
	done chan struct{}
	r    Result
}

// claim returns the entry for key and whether the caller owns it (must
// probe and fill it). Without a session every caller probes; refresh
// replaces what the session held.
func (s *Session) claim(key string, refresh bool) (*sessionEntry, bool) {
	if s == nil {
		return nil, true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.entries[key]; ok && !refresh {
		return e, false
	}
	e := &sessionEntry{done: make(chan struct{})}
	s.entries[key] = e
	return e, true
}

func (e *sessionEntry) fill(r Result) {
	if e == nil {
		return
	}
	select {
	case <-e.done:
	default:
		e.r = r
		close(e.done)
	}
}

// wait returns the entry's result once its owner filled it.
func (e *sessionEntry) wait(ctx context.Context) (Result, bool) {
	select {
	case <-e.done:
		return e.r, true
	case <-ctx.Done():
		return Result{}, false
	}
}
