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

	"github.com/regclient/regclient/scheme"
	"github.com/regclient/regclient/types/descriptor"
	"github.com/regclient/regclient/types/ref"

	"github.com/refdoctor/refdoctor/finding"
	"github.com/refdoctor/refdoctor/probe"
	"github.com/refdoctor/refdoctor/registry"
)

var (
	errLinkLoop     = errors.New("referrers pagination loops: a Link header points to a page already read")
	errTooManyPages = errors.New("referrers pagination exceeded the page limit")
	errReplySeen    = errors.New("referrers reply recorded")
)

// capability probes a registry once per run (through the capability cache
// when one is configured) and remembers the verdict.
func (e *engine) capability(ctx context.Context, repo ref.Ref) probe.Result {
	e.mu.Lock()
	ov, ok := e.capabilities[repo.Registry]
	if !ok {
		ov = &onceValue[probe.Result]{}
		e.capabilities[repo.Registry] = ov
	}
	e.mu.Unlock()
	ov.once.Do(func() {
		target := probe.Target{Host: repo.Registry, Repository: repo.Repository}
		opts := append([]probe.Opt{probe.WithConfig(e.o.cfg), probe.WithTimeout(e.o.timeout), probe.WithLogger(e.o.log),
			probe.WithClientOpts(e.o.clientOpts...),
			probe.WithEvents(func(ev probe.Event) {
				if ev.Kind == probe.EventExchange {
					e.shared.Add(1)
				}
			})}, e.o.probeOpts...)
		rep, err := probe.Run(e.runCtx, []probe.Target{target}, opts...)
		if err == nil && len(rep.Registries) == 1 {
			ov.v = rep.Registries[0]
		} else {
			ov.v = probe.Result{ReferrersAPI: probe.Unknown}
		}
	})
	return ov.v
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
	opts := append([]registry.Opt{registry.WithTimeout(e.o.timeout)}, e.o.clientOpts...)
	if e.o.events != nil {
		opts = append(opts, registry.WithRecorder(e.client.Recorder))
	}
	c, err := registry.New(e.o.cfg, opts...)
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

// apiList lists referrers through GET /v2/<repo>/referrers/<digest>,
// following Link pages (guarded against loops and absurd page counts),
// filtering on the client unless the registry says it filtered, and
// waiting out a 429's Retry-After while the timeout allows.
func (s *subjectRun) apiList(ctx context.Context, subj ref.Ref) ([]Referrer, *failure) {
	for attempt := 0; ; attempt++ {
		c, err := s.e.apiClient(subj)
		if err != nil {
			return nil, &failure{finding: finding.Finding{Severity: finding.SeverityError, Code: finding.ClientSetup, Summary: err.Error()}}
		}
		var mu sync.Mutex
		var last *registry.Exchange
		pages := 0
		seen := map[string]bool{}
		cctx, cancel := context.WithCancelCause(counted(ctx, &s.requests))
		cctx = registry.WithWatcher(cctx, func(ex registry.Exchange) {
			if !strings.Contains(ex.Path, "/referrers/") || ex.Status == http.StatusUnauthorized {
				return
			}
			mu.Lock()
			defer mu.Unlock()
			last = &ex
			switch {
			case ex.Err != nil:
			case ex.Status != http.StatusOK:
				// Stop regclient from falling back to tags on its own:
				// refdoctor decides the fallback and says so.
				cancel(errReplySeen)
			case seen[ex.URL]:
				cancel(errLinkLoop)
			default:
				seen[ex.URL] = true
				pages++
				if pages > s.e.o.maxPages {
					cancel(errTooManyPages)
				}
			}
		})
		var opts []scheme.ReferrerOpts
		if len(s.e.o.artifactTypes) == 1 {
			opts = append(opts, scheme.WithReferrerMatchOpt(descriptor.MatchOpt{ArtifactType: s.e.o.artifactTypes[0]}))
		}
		rl, err := c.ReferrerList(cctx, subj, opts...)
		cause := context.Cause(cctx)
		cancel(nil)
		mu.Lock()
		lastEx := last
		mu.Unlock()
		if errors.Is(cause, errLinkLoop) || errors.Is(cause, errTooManyPages) {
			return nil, &failure{finding: finding.Finding{Severity: finding.SeverityError, Code: finding.PaginationLoop,
				Summary: cause.Error(), Cause: "The registry's Link headers do not end.",
				Remedy:   "Report the registry bug; meanwhile list referrers by tag with --method tags.",
				Evidence: fmt.Sprintf("%d pages read", pages)}}
		}
		if err != nil || lastEx == nil || lastEx.Status != http.StatusOK {
			s.e.retireAPIClient(subj, c)
		}
		if lastEx == nil {
			// regclient skipped the API (an earlier failure on this
			// client): try once more with a fresh one.
			if attempt == 0 && err != nil && ctx.Err() == nil {
				continue
			}
			f := classifyFailure(ctx, err, registry.Exchange{})
			return nil, &f
		}
		if lastEx.Err != nil {
			f := classifyFailure(ctx, lastEx.Err, *lastEx)
			return nil, &f
		}
		if lastEx.Status == http.StatusTooManyRequests && attempt < s.e.o.rateRetries {
			if wait, ok := retryAfter(lastEx.Headers["Retry-After"], attempt); ok && fits(ctx, wait) {
				s.finding(finding.Finding{Severity: finding.SeverityInfo, Code: finding.RateLimitWaited,
					Summary: fmt.Sprintf("Rate limited; waited %s as Retry-After asked", wait)})
				select {
				case <-ctx.Done():
				case <-time.After(wait):
				}
				continue
			}
		}
		cls := probe.ClassifyReferrersReply(probe.ReferrersReply{Status: lastEx.Status, ContentType: lastEx.ContentType,
			Body: lastEx.Body, RepositoryExists: true})
		if cls.Reason == finding.ReferrersWrongContentType {
			return s.lenientAPIList(ctx, *lastEx, cls), nil
		}
		if lastEx.Status != http.StatusOK || err != nil || cls.Verdict != probe.Supported {
			if lastEx.Status == http.StatusTooManyRequests || lastEx.Status == http.StatusUnauthorized || lastEx.Status == http.StatusForbidden {
				f := classifyFailure(ctx, err, *lastEx)
				return nil, &f
			}
			f := failure{fallback: cls.Verdict == probe.Unsupported, incomplete: cls.Verdict == probe.Unknown, finding: cls.Finding}
			if f.finding.Code == "" {
				f.finding = finding.Finding{Severity: finding.SeverityError, Code: finding.RequestFailed, Summary: fmt.Sprint(err)}
			}
			f.finding.Severity = finding.SeverityError
			return nil, &f
		}
		if lastEx.Headers["OCI-Filters-Applied"] != "" {
			s.mu.Lock()
			s.res.FiltersApplied = true
			s.mu.Unlock()
		}
		out := make([]Referrer, 0, len(rl.Descriptors))
		for _, d := range rl.Descriptors {
			r := referrerFromDescriptor(d, SourceAPI, "")
			s.fillArtifactType(ctx, &r)
			out = append(out, r)
		}
		return out, nil
	}
}

// lenientAPIList reads a referrers reply that is an index under the wrong
// Content-Type (Harbor 2.8-2.9). The referrers are real, and strict
// clients cannot see them: that difference is the finding.
func (s *subjectRun) lenientAPIList(ctx context.Context, ex registry.Exchange, cls probe.Classification) []Referrer {
	var idx struct {
		Manifests []descriptor.Descriptor `json:"manifests"`
	}
	_ = json.Unmarshal(ex.Body, &idx)
	s.finding(finding.Finding{Severity: finding.SeverityWarn, Code: finding.ReferrersWrongContentType,
		Summary:  fmt.Sprintf("Read the referrers API leniently: its reply is an index labelled %q", ex.ContentType),
		Cause:    cls.Finding.Cause + " Strict clients (oras, regctl, most export tools) see none of the referrers listed here, and no fallback tag exists because the registry accepted the subject.",
		Remedy:   "Upgrade the registry (Harbor 2.11 or later); until then export with a client that reads this reply, or re-attach with the tag schema.",
		Evidence: cls.Finding.Evidence})
	if ex.Headers["Link"] != "" {
		s.finding(finding.Finding{Severity: finding.SeverityWarn, Code: finding.LenientFirstPageOnly,
			Summary: "Only the first page of the mislabelled referrers reply was read"})
	}
	out := make([]Referrer, 0, len(idx.Manifests))
	for _, d := range idx.Manifests {
		r := referrerFromDescriptor(d, SourceAPI, "")
		s.fillArtifactType(ctx, &r)
		out = append(out, r)
	}
	return out
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
