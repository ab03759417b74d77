package discovery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/regclient/regclient/types/descriptor"
	"github.com/regclient/regclient/types/ref"

	"github.com/refdoctor/refdoctor/finding"
	"github.com/refdoctor/refdoctor/probe"
	"github.com/refdoctor/refdoctor/registry"
)

var (
	errLinkLoop       = errors.New("referrers pagination loops: a Link header leads back to a page already read")
	errNoProgress     = errors.New("referrers pagination makes no progress: a page adds no referrer not already read")
	errReferrerLimit  = errors.New("referrers walk stopped at the referrer limit")
	errReplySeen      = errors.New("referrers reply recorded")
	errPageIncomplete = errors.New("a referrers page did not arrive whole")
)

// capability probes a registry once per run (through the capability cache
// the configuration names) and remembers the verdict.
func (e *engine) capability(ctx context.Context, repo ref.Ref) probe.Result {
	e.mu.Lock()
	ov, ok := e.capabilities[repo.Registry]
	if !ok {
		ov = &onceValue[probe.Result]{}
		e.capabilities[repo.Registry] = ov
	}
	e.mu.Unlock()
	ov.once.Do(func() {
		rs := e.probeCapabilities([]probe.Target{{Host: repo.Registry, Repository: repo.Repository}})
		ov.v = rs[0]
	})
	return ov.v
}

// probeCapabilities probes targets in one run of the probe engine, so
// the log announces them together and gives each its verdict line.
func (e *engine) probeCapabilities(targets []probe.Target) []probe.Result {
	opts := append([]probe.Opt{probe.WithConfig(e.o.cfg), probe.WithTimeout(e.o.timeout), probe.WithLogger(e.o.log),
		probe.WithCache(e.cache), probe.WithClientOpts(e.o.clientOpts...), probe.WithConcurrency(e.o.concurrency),
		probe.WithEvents(func(ev probe.Event) {
			if ev.Kind == probe.EventExchange {
				e.shared.Add(1)
			}
		})}, e.o.probeOpts...)
	rep, err := probe.Run(e.runCtx, targets, opts...)
	out := make([]probe.Result, len(targets))
	for i := range out {
		out[i] = probe.Result{ReferrersAPI: probe.Unknown}
		if err == nil && len(rep.Registries) == len(targets) {
			out[i] = rep.Registries[i]
		}
	}
	return out
}

// probeAllCapabilities probes every registry of refs before any discovery
// starts (auto method only), the first reference's repository standing for
// its registry, as an exporter does before an export: one announcement
// with the number of registries, then their verdicts.
func (e *engine) probeAllCapabilities(refs []ref.Ref) {
	if e.o.method != MethodAuto {
		return
	}
	var targets []probe.Target
	seen := map[string]bool{}
	for _, r := range refs {
		if !seen[r.Registry] {
			seen[r.Registry] = true
			targets = append(targets, probe.Target{Host: r.Registry, Repository: r.Repository})
		}
	}
	if len(targets) < 2 {
		return // one registry: the first discovery probes it
	}
	results := e.probeCapabilities(targets)
	e.mu.Lock()
	defer e.mu.Unlock()
	for i, t := range targets {
		ov := &onceValue[probe.Result]{}
		ov.once.Do(func() { ov.v = results[i] })
		e.capabilities[t.Host] = ov
	}
}

// cacheKey is the capability cache's key for a repository, as capability
// probes it.
func (e *engine) cacheKey(repo ref.Ref) string {
	return probe.CacheKey(e.o.cfg, probe.Target{Host: repo.Registry, Repository: repo.Repository})
}

// apiClient returns the client used for referrers API calls in one
// repository, making one when there is none.
func (e *engine) apiClient(repo ref.Ref) (*registry.Client, error) {
	key := repo.Registry + "/" + repo.Repository
	e.mu.Lock()
	defer e.mu.Unlock()
	if c := e.apiClients[key]; c != nil {
		return c, nil
	}
	var opts []registry.Opt
	if e.o.events != nil {
		opts = append(opts, registry.WithRecorder(e.client.Recorder))
	}
	c, err := e.o.newClient(opts...)
	if err != nil {
		return nil, err
	}
	e.apiClients[key] = c
	return c, nil
}

// retireAPIClient drops a client after a failed API call: regclient
// remembers the failure per client and repository and would then skip the
// API, so the next call must start from a fresh client.
func (e *engine) retireAPIClient(repo ref.Ref, c *registry.Client) {
	key := repo.Registry + "/" + repo.Repository
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.apiClients[key] == c {
		delete(e.apiClients, key)
	}
}

// pageWalk is one walk of a subject's referrers API, page by page, read
// from the replies the recorder captured: regclient sends every request
// (auth, redirects, Link pages), refdoctor reads each page as it arrives,
// keeps what it read, and ends the walk when it stops making progress or
// reaches the referrer limit. regclient's own list is never used: it is
// lost when a walk is cut short.
type pageWalk struct {
	mu        sync.Mutex
	host      string
	repo      string
	max       int
	seenURL   map[string]bool
	seen      map[string]bool
	descs     []descriptor.Descriptor
	pages     int
	last      *registry.Exchange
	hops      []registry.Exchange // redirects of the current chain
	firstHops []registry.Exchange // redirects before the first page
	lenient   *probe.Classification
	nextURL   string
}

func newPageWalk(host, repo string, limit int) *pageWalk {
	return &pageWalk{host: host, repo: repo, max: limit, seenURL: map[string]bool{}, seen: map[string]bool{}}
}

// see looks at one exchange of the walk and cancels the walk with a cause
// once its answer is known or it must stop.
func (w *pageWalk) see(ex registry.Exchange, cancel context.CancelCauseFunc) {
	if !strings.Contains(ex.Requested(), "/referrers/") || ex.Status == http.StatusUnauthorized {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if ex.RequestedPath == "" {
		w.hops = nil
	}
	if ex.IsRedirect() {
		w.hops = append(w.hops, ex)
		return
	}
	w.last = &ex
	if w.pages == 0 {
		w.firstHops = append([]registry.Exchange(nil), w.hops...)
	}
	switch {
	case ex.Err != nil:
		return
	case !ex.Complete():
		cancel(errPageIncomplete)
		return
	case ex.Status == http.StatusTooManyRequests && w.pages > 0:
		// regclient retries a later page itself after Retry-After; a wait
		// past the deadline is stopped by StopWhenThrottled.
		return
	case ex.Status != http.StatusOK:
		// Stop regclient from falling back to tags on its own: refdoctor
		// decides the fallback and says so.
		cancel(errReplySeen)
		return
	}
	// A page is known by the URL asked for, before any redirect.
	asked := ex.URL
	if len(w.hops) > 0 {
		asked = w.hops[0].URL
	}
	if w.seenURL[asked] {
		cancel(errLinkLoop)
		return
	}
	w.seenURL[asked] = true
	cls := probe.ClassifyReferrersReply(probe.ReferrersReply{Host: w.host, Repository: w.repo, Status: ex.Status, ContentType: ex.ContentType,
		Body: ex.Body, RepositoryExists: true})
	lenient := cls.Reason == finding.ReferrersWrongContentType && w.pages == 0
	if cls.Verdict != probe.Supported && !lenient {
		cancel(errReplySeen)
		return
	}
	var idx struct {
		Manifests []descriptor.Descriptor `json:"manifests"`
	}
	_ = json.Unmarshal(ex.Body, &idx)
	added := 0
	for _, d := range idx.Manifests {
		if k := d.Digest.String(); !w.seen[k] {
			w.seen[k] = true
			w.descs = append(w.descs, d)
			added++
		}
	}
	w.pages++
	next := nextLink(ex.Headers["Link"])
	w.nextURL = next
	switch {
	case lenient:
		// regclient rejects the mislabelled reply and cannot follow its
		// pages: this page is all that is read.
		w.lenient = &cls
		cancel(errReplySeen)
	case next == "":
	case added == 0 && w.pages > 1:
		cancel(errNoProgress)
	case len(w.descs) >= w.max:
		cancel(errReferrerLimit)
	}
}

// nextLink is the target of a Link header's rel="next", or "".
func nextLink(h string) string {
	for _, part := range strings.Split(h, ",") {
		uri, params, ok := strings.Cut(part, ";")
		if !ok {
			continue
		}
		for _, p := range strings.Split(params, ";") {
			k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
			if strings.EqualFold(k, "rel") && strings.Contains(strings.ToLower(strings.Trim(v, `"`)), "next") {
				return strings.Trim(strings.TrimSpace(uri), "<>")
			}
		}
	}
	return ""
}

// apiList lists referrers through GET /v2/<repo>/referrers/<digest>,
// following redirects and Link pages while they make progress, and
// waiting out a 429's Retry-After while the timeout allows. It never
// filters: types are resolved first and filtered by the caller. A walk
// cut short returns what it read together with a failure.
func (s *subjectRun) apiList(ctx context.Context, subj ref.Ref) ([]Referrer, *failure) {
	for attempt := 0; ; attempt++ {
		c, err := s.e.apiClient(subj)
		if err != nil {
			return nil, &failure{finding: finding.Finding{Severity: finding.SeverityError, Code: finding.ClientSetup, Summary: err.Error()}}
		}
		w := newPageWalk(subj.Registry, subj.Repository, s.e.o.maxReferrers)
		cctx, cancel := context.WithCancelCause(counted(ctx, &s.requests))
		cctx = registry.WithWatcher(cctx, func(ex registry.Exchange) { w.see(ex, cancel) })
		_, err = c.ReferrerList(cctx, subj)
		cause := context.Cause(cctx)
		cancel(nil)
		if err != nil {
			// regclient remembers a failed API call per client and
			// repository and would skip the API next time.
			s.e.retireAPIClient(subj, c)
		}
		w.mu.Lock()
		last, pages, lenient, hops := w.last, w.pages, w.lenient, w.hops
		w.mu.Unlock()
		if len(hops) > 0 && (last == nil || last.Start.Before(hops[len(hops)-1].Start)) {
			// The chain ended on a redirect that was not followed.
			end := hops[len(hops)-1]
			s.noteRedirect(hops, end)
			ferr := probe.UnfollowedRedirect(hops, end)
			code, summary, cause, remedy := probe.ClassifyTransportError(subj.Registry, ferr)
			f := failure{incomplete: true, finding: finding.Finding{Severity: finding.SeverityError, Code: code,
				Summary: summary, Cause: cause, Remedy: remedy, Evidence: ferr.Error()}}
			return s.referrers(ctx, subj, w.descs), &f
		}
		if len(w.firstHops) > 0 && last != nil {
			s.noteRedirect(w.firstHops, *last)
		}
		read := s.referrers(ctx, subj, w.descs)
		switch {
		case errors.Is(cause, errLinkLoop), errors.Is(cause, errNoProgress), errors.Is(cause, errReferrerLimit):
			return read, s.walkCut(cause, w)
		case lenient != nil:
			return s.lenientAPIList(*last, *lenient, read), nil
		case last == nil:
			if throttled(ctx) {
				f := classifyFailure(ctx, err, registry.Exchange{})
				return nil, &f
			}
			// regclient skipped the API (an earlier failure on this
			// client): try once more with a fresh one.
			if attempt == 0 && err != nil && ctx.Err() == nil {
				continue
			}
			f := classifyFailure(ctx, err, registry.Exchange{})
			return nil, &f
		case last.Err != nil:
			f := classifyFailure(ctx, last.Err, *last)
			return read, &f
		case errors.Is(cause, errPageIncomplete):
			cls := probe.ClassifyReferrersReply(probe.ReferrersReply{Host: subj.Registry, Repository: subj.Repository, Status: last.Status, ContentType: last.ContentType,
				Body: last.Body, BodyErr: last.BodyErr, TooLarge: last.TooLarge, Size: last.Size})
			f := failure{incomplete: true, finding: cls.Finding}
			if pages > 0 {
				f.finding.Summary = fmt.Sprintf("page %d: %s", pages+1, f.finding.Summary)
			}
			return read, &f
		case last.Status == http.StatusTooManyRequests && pages == 0 && attempt < s.e.o.rateRetries:
			if wait, ok := retryAfter(last.Headers["Retry-After"], attempt); ok && fits(ctx, wait) {
				s.finding(finding.Finding{Severity: finding.SeverityInfo, Code: finding.RateLimitWaited,
					Summary: fmt.Sprintf("Rate limited; waited %s as Retry-After asked", wait)})
				select {
				case <-ctx.Done():
				case <-time.After(wait):
				}
				continue
			}
			f := classifyFailure(ctx, err, *last)
			return nil, &f
		case last.Status != http.StatusOK:
			if pages > 0 {
				f := classifyFailure(ctx, err, *last)
				f.incomplete = true
				f.finding.Summary = fmt.Sprintf("page %d answered %d after %d referrers were read: %s", pages+1, last.Status, len(read), f.finding.Summary)
				return read, &f
			}
			switch last.Status {
			case http.StatusTooManyRequests, http.StatusUnauthorized, http.StatusForbidden:
				f := classifyFailure(ctx, err, *last)
				return nil, &f
			}
			cls := probe.ClassifyReferrersReply(probe.ReferrersReply{Host: subj.Registry, Repository: subj.Repository, Status: last.Status, ContentType: last.ContentType,
				Body: last.Body, RepositoryExists: true})
			f := failure{fallback: cls.Verdict == probe.Unsupported, incomplete: cls.Verdict == probe.Unknown, finding: cls.Finding}
			f.finding.Severity = finding.SeverityError
			return nil, &f
		case pages == 0:
			// A 200 that is not an index (HTML, another document).
			cls := probe.ClassifyReferrersReply(probe.ReferrersReply{Host: subj.Registry, Repository: subj.Repository, Status: last.Status, ContentType: last.ContentType,
				Body: last.Body, RepositoryExists: true})
			f := failure{fallback: cls.Verdict == probe.Unsupported, incomplete: cls.Verdict != probe.Unsupported, finding: cls.Finding}
			f.finding.Severity = finding.SeverityError
			return nil, &f
		case errors.Is(cause, errReplySeen):
			// A later page that is not an index.
			f := failure{incomplete: true, finding: finding.Finding{Severity: finding.SeverityError, Code: finding.ReferrersNotAnIndex,
				Summary:  fmt.Sprintf("page %d of the referrers list is not an OCI index (%s); %d referrers read before it", pages+1, last.ContentType, len(read)),
				Cause:    "A Link header led to a page that is not a referrers index.",
				Remedy:   "Report the registry bug; compare with `oras discover`.",
				Evidence: last.URL}}
			return read, &f
		case err != nil && ctx.Err() != nil:
			f := classifyFailure(ctx, err, *last)
			f.incomplete = true
			return read, &f
		}
		return read, nil
	}
}

// walkCut says why a referrers walk stopped before its last page and
// what was read.
func (s *subjectRun) walkCut(cause error, w *pageWalk) *failure {
	code := finding.PaginationLoop
	remedy := "Report the registry's pagination bug; the referrers read so far are listed. Compare with `oras discover`; --method tags reads the fallback index instead."
	if errors.Is(cause, errReferrerLimit) {
		code = finding.PaginationLimit
		remedy = fmt.Sprintf("Raise --max-referrers (now %d) if the subject really carries this many, or filter with --artifact-type.", s.e.o.maxReferrers)
	}
	return &failure{incomplete: true, finding: finding.Finding{Severity: finding.SeverityError, Code: code,
		Summary:  fmt.Sprintf("%s: kept the %d referrers read from %d pages, the list is partial", cause.Error(), len(w.descs), w.pages),
		Cause:    "The walk over the registry's Link pages ended before a page without a next link.",
		Remedy:   remedy,
		Evidence: fmt.Sprintf("%d pages, %d referrers; next page %s", w.pages, len(w.descs), w.nextURL)}}
}

// noteRedirect says once per subject that the referrers API answered
// through redirects.
func (s *subjectRun) noteRedirect(hops []registry.Exchange, final registry.Exchange) {
	s.mu.Lock()
	done := s.redirectNoted
	s.redirectNoted = true
	s.mu.Unlock()
	if !done {
		s.finding(probe.RedirectFinding(hops, final))
	}
}

// referrers turns listed descriptors into referrers with resolved types.
func (s *subjectRun) referrers(ctx context.Context, subj ref.Ref, descs []descriptor.Descriptor) []Referrer {
	out := make([]Referrer, 0, len(descs))
	for _, d := range descs {
		r := referrerFromDescriptor(d, SourceAPI, "")
		r.Repository = s.elsewhere(subj)
		if !s.skipTypes {
			s.resolveType(ctx, &r)
		}
		out = append(out, r)
	}
	return out
}

// lenientAPIList keeps a referrers reply that is an index under the
// wrong Content-Type (Harbor 2.8-2.9). The referrers are real, and strict
// clients cannot see them: that difference is the finding. Only the first
// page can be read; with more, the result is partial.
func (s *subjectRun) lenientAPIList(ex registry.Exchange, cls probe.Classification, read []Referrer) []Referrer {
	s.mu.Lock()
	said := s.lenientNoted
	s.lenientNoted = true
	s.mu.Unlock()
	if !said {
		s.lenientFinding(ex, cls)
	}
	if next := nextLink(ex.Headers["Link"]); next != "" {
		s.fail("referrers API", failure{incomplete: true, finding: finding.Finding{Severity: finding.SeverityError, Code: finding.LenientFirstPageOnly,
			Summary:  fmt.Sprintf("only the first page of the mislabelled referrers reply was read (%d referrers); the list is partial", len(read)),
			Cause:    "The registry pages its mislabelled reply; strict clients reject it, so its further pages are not followed.",
			Remedy:   "Upgrade the registry (Harbor 2.11 or later), or filter with --artifact-type to fit one page.",
			Evidence: "next page " + next}})
	}
	return read
}

// lenientFinding says once per subject that the API was read leniently.
func (s *subjectRun) lenientFinding(ex registry.Exchange, cls probe.Classification) {
	s.finding(finding.Finding{Severity: finding.SeverityWarn, Code: finding.ReferrersWrongContentType,
		Summary:  fmt.Sprintf("Read the referrers API leniently: its reply is an index labelled %q", ex.ContentType),
		Cause:    cls.Finding.Cause + " Strict clients (oras, regctl, most export tools) see none of the referrers listed here, and no fallback tag exists because the registry accepted the subject.",
		Remedy:   "Upgrade the registry (Harbor 2.11 or later); until then export with a client that reads this reply, or re-attach with the tag schema.",
		Evidence: cls.Finding.Evidence})
}

// retryAfter reads Retry-After (seconds or an HTTP date); without one it
// backs off 1s, 2s, 4s.
func retryAfter(h string, attempt int) (time.Duration, bool) {
	if h == "" {
		return time.Second << attempt, true
	}
	if n, err := strconv.Atoi(strings.TrimSpace(h)); err == nil && n >= 0 {
		return time.Duration(n) * time.Second, true
	}
	if t, err := http.ParseTime(h); err == nil {
		return time.Until(t), true
	}
	return 0, false
}

// fits reports whether waiting d still leaves time before ctx's deadline.
func fits(ctx context.Context, d time.Duration) bool {
	deadline, ok := ctx.Deadline()
	if !ok {
		return true
	}
	return time.Until(deadline) > d+200*time.Millisecond
}

// throttled reports whether ctx ended because a registry throttled past
// the time left.
func throttled(ctx context.Context) bool {
	var te *registry.ThrottledError
	return errors.As(context.Cause(ctx), &te)
}
