package discovery

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/regclient/regclient/scheme"

	"github.com/refdoctor/refdoctor/config"
	"github.com/refdoctor/refdoctor/finding"
	"github.com/refdoctor/refdoctor/registry"
)

// Catalog bounds: a page of the catalog, and the most repositories read.
const (
	catalogPage   = 100
	MaxCatalogLen = 1000
)

// Catalog is a registry's repository list (GET /v2/_catalog), as far as
// the registry gives it out: many hosted registries (GHCR, Docker Hub,
// ECR for most logins) refuse it.
type Catalog struct {
	Registry     string   `json:"registry"`
	Repositories []string `json:"repositories"`
	// Complete is false when the list was refused, cut short by an error,
	// or stopped at MaxCatalogLen: then Repositories is not every
	// repository there is.
	Complete bool              `json:"complete"`
	Requests int               `json:"requests"`
	Findings []finding.Finding `json:"findings"`
}

// ListRepositories reads the catalog of host page by page, up to
// MaxCatalogLen names. A registry that refuses or lacks the catalog is a
// finding, not an error: the operator types a repository instead.
func ListRepositories(ctx context.Context, host string, opts ...Opt) (Catalog, error) {
	o := defaults()
	for _, opt := range opts {
		opt(&o)
	}
	if err := config.ValidateHost(host); err != nil {
		return Catalog{}, fmt.Errorf("%w %q: %v", ErrBadReference, host, err)
	}
	c, err := o.newClient()
	if err != nil {
		return Catalog{}, err
	}
	ctx, requests, end := o.bounded(ctx)
	defer end()
	out := Catalog{Registry: host, Repositories: []string{}, Findings: []finding.Finding{}}
	done := func() (Catalog, error) {
		out.Requests = int(requests.Load())
		return out, nil
	}
	seen := map[string]bool{}
	last := ""
	for {
		var reply registry.Exchange
		pctx := registry.WithWatcher(ctx, func(ex registry.Exchange) {
			if strings.Contains(ex.Requested(), "/_catalog") && !ex.IsRedirect() {
				reply = ex
			}
		})
		ropts := []scheme.RepoOpts{scheme.WithRepoLimit(catalogPage)}
		if last != "" {
			ropts = append(ropts, scheme.WithRepoLast(last))
		}
		list, err := c.RepoList(pctx, host, ropts...)
		if err != nil {
			out.Findings = append(out.Findings, catalogFailure(ctx, err, reply, host, len(out.Repositories)))
			return done()
		}
		names, err := list.GetRepos()
		if err != nil {
			out.Findings = append(out.Findings, catalogFailure(ctx, err, reply, host, len(out.Repositories)))
			return done()
		}
		added := 0
		for _, n := range names {
			if !seen[n] {
				seen[n] = true
				out.Repositories = append(out.Repositories, n)
				added++
			}
		}
		switch {
		case len(out.Repositories) >= MaxCatalogLen:
			out.Repositories = out.Repositories[:MaxCatalogLen]
			out.Findings = append(out.Findings, finding.Finding{Severity: finding.SeverityWarn, Code: finding.CatalogCut,
				Summary: fmt.Sprintf("The catalog of %s lists more than %d repositories; only the first %d are shown", host, MaxCatalogLen, MaxCatalogLen),
				Remedy:  finding.CatalogCut.Remedy()})
			return done()
		case len(names) < catalogPage || added == 0:
			// A short page is the last; a page of names already read would
			// loop.
			out.Complete = true
			return done()
		}
		last = names[len(names)-1]
	}
}

// catalogFailure says why the catalog could not be read (whole).
func catalogFailure(ctx context.Context, err error, reply registry.Exchange, host string, read int) finding.Finding {
	partial := ""
	if read > 0 {
		partial = fmt.Sprintf(" after %d repositories", read)
	}
	switch reply.Status {
	case http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound, http.StatusMethodNotAllowed:
		return finding.Finding{Severity: finding.SeverityInfo, Code: finding.CatalogUnavailable,
			Summary:  fmt.Sprintf("%s does not list its repositories to this login (HTTP %d on /v2/_catalog)%s", host, reply.Status, partial),
			Cause:    "Hosted registries (GHCR, Docker Hub, most ECR and GAR logins) refuse the catalog; others need a login with catalog access.",
			Remedy:   finding.CatalogUnavailable.Remedy(),
			Evidence: fmt.Sprintf("GET %s -> %d %s", reply.Requested(), reply.Status, reply.ContentType)}
	}
	f := classifyFailure(ctx, err, reply)
	f.finding.Summary = fmt.Sprintf("listing the repositories of %s%s: %s", host, partial, f.finding.Summary)
	return f.finding
}
