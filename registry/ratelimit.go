package registry

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Budget is what a registry's rate-limit headers say about the requests
// left: Docker Hub's RateLimit-Limit / RateLimit-Remaining ("100;w=21600"),
// the X-RateLimit-* variants, RateLimit-Reset, and a 429's Retry-After.
type Budget struct {
	// Limit and Remaining are the header values as sent.
	Limit     string `json:"limit,omitempty"`
	Remaining string `json:"remaining,omitempty"`
	// Source is Docker-RateLimit-Source (the address the budget belongs to).
	Source string `json:"source,omitempty"`
	// Throttled is true for a 429 reply.
	Throttled bool `json:"throttled"`
	// RetryAfter is the raw Retry-After of a 429.
	RetryAfter string `json:"retry_after,omitempty"`
	// Until is when the registry says it answers again (Retry-After, else
	// RateLimit-Reset); zero when it said nothing.
	Until time.Time `json:"until,omitzero"`
}

// BudgetOf reads the rate-limit headers of one reply received at now; ok
// is false when the reply carries none and is not a 429.
func BudgetOf(ex Exchange, now time.Time) (Budget, bool) {
	b := Budget{Limit: ex.Headers["RateLimit-Limit"], Remaining: ex.Headers["RateLimit-Remaining"]}
	if b.Limit == "" && b.Remaining == "" {
		b.Limit, b.Remaining = ex.Headers["X-RateLimit-Limit"], ex.Headers["X-RateLimit-Remaining"]
	}
	b.Source = ex.Headers["Docker-RateLimit-Source"]
	b.Throttled = ex.Status == http.StatusTooManyRequests
	if b.Throttled {
		b.RetryAfter = ex.Headers["Retry-After"]
	}
	if t, ok := retryAt(ex.Headers["Retry-After"], now); ok {
		b.Until = t
	} else if t, ok := resetAt(ex.Headers, now); ok && (b.Throttled || b.exhausted()) {
		b.Until = t
	}
	if b.Limit == "" && b.Remaining == "" && !b.Throttled {
		return Budget{}, false
	}
	return b, true
}

// LimitN and RemainingN are the leading numbers of Limit and Remaining
// ("100;w=21600" is 100); ok is false when a header is absent or not a
// number.
func (b Budget) LimitN() (int, bool)     { return leadingInt(b.Limit) }
func (b Budget) RemainingN() (int, bool) { return leadingInt(b.Remaining) }

// Low reports a budget at or below a tenth of its limit (or 5 requests
// when the limit is unknown): the next few operations may be refused.
func (b Budget) Low() bool {
	rem, ok := b.RemainingN()
	if !ok {
		return false
	}
	if limit, ok := b.LimitN(); ok && limit > 0 {
		return rem*10 <= limit
	}
	return rem <= 5
}

func (b Budget) exhausted() bool {
	rem, ok := b.RemainingN()
	return ok && rem == 0
}

func leadingInt(s string) (int, bool) {
	s = strings.TrimSpace(s)
	end := 0
	for end < len(s) && s[end] >= '0' && s[end] <= '9' {
		end++
	}
	if end == 0 {
		return 0, false
	}
	n, err := strconv.Atoi(s[:end])
	return n, err == nil
}

// retryAt reads Retry-After: seconds, or an HTTP date.
func retryAt(h string, now time.Time) (time.Time, bool) {
	h = strings.TrimSpace(h)
	if h == "" {
		return time.Time{}, false
	}
	if n, err := strconv.ParseInt(h, 10, 64); err == nil && n >= 0 {
		return now.Add(time.Duration(n) * time.Second), true
	}
	if t, err := http.ParseTime(h); err == nil {
		return t, true
	}
	return time.Time{}, false
}

// resetAt reads RateLimit-Reset / X-RateLimit-Reset (seconds from now,
// or, when the number is a Unix time as GitHub sends, that time) and the
// reset= parameter of the combined RateLimit header.
func resetAt(h map[string]string, now time.Time) (time.Time, bool) {
	v := h["RateLimit-Reset"]
	if v == "" {
		v = h["X-RateLimit-Reset"]
	}
	if v == "" {
		for _, part := range strings.FieldsFunc(h["RateLimit"], func(r rune) bool { return r == ',' || r == ';' }) {
			if k, val, ok := strings.Cut(strings.TrimSpace(part), "="); ok && strings.EqualFold(k, "reset") {
				v = val
			}
		}
	}
	n, ok := leadingInt(v)
	if !ok {
		return time.Time{}, false
	}
	if n > 1_000_000_000 {
		return time.Unix(int64(n), 0), true
	}
	return now.Add(time.Duration(n) * time.Second), true
}

// ThrottledError ends an operation that a registry refused with a 429
// whose wait does not fit in the time left: waiting would only run out
// the clock.
type ThrottledError struct {
	Host string
	// Budget holds the limit, what is left, and Until, when the registry
	// answers again.
	Budget Budget
	// Deadline is when the operation's time was up.
	Deadline time.Time
}

func (e *ThrottledError) Error() string {
	s := fmt.Sprintf("%s is rate limiting (429)", e.Host)
	if !e.Budget.Until.IsZero() {
		s += fmt.Sprintf(" until %s", e.Budget.Until.UTC().Format(time.RFC3339))
	}
	if e.Budget.Remaining != "" {
		s += fmt.Sprintf(", %s of %s requests left", e.Budget.Remaining, e.Budget.Limit)
	}
	return s + ", past the time left for this operation"
}

// StopWhenThrottled returns a context that ends at once, with a
// *ThrottledError as its cause, when a reply to a request made with it is
// a 429 whose Retry-After (or RateLimit-Reset) lies past ctx's deadline:
// regclient would otherwise sleep until the deadline, and an operator
// would watch a spinner for minutes to learn nothing. A 429 without a
// wait, or with one that fits, is left to the caller's retries.
func StopWhenThrottled(ctx context.Context) (context.Context, context.CancelFunc) {
	cctx, cancel := context.WithCancelCause(ctx)
	var once sync.Once
	cctx = WithWatcher(cctx, func(ex Exchange) {
		if ex.Status != http.StatusTooManyRequests {
			return
		}
		now := time.Now()
		b, _ := BudgetOf(ex, now)
		deadline, ok := ctx.Deadline()
		if b.Until.IsZero() || !ok || !b.Until.After(deadline) {
			return
		}
		once.Do(func() {
			cancel(&ThrottledError{Host: hostOf(ex.URL), Budget: b, Deadline: deadline})
		})
	})
	return cctx, func() { cancel(context.Canceled) }
}

// hostOf is the host:port of a recorded URL.
func hostOf(u string) string {
	_, rest, ok := strings.Cut(u, "://")
	if !ok {
		rest = u
	}
	host, _, _ := strings.Cut(rest, "/")
	return host
}
