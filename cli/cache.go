package cli

import (
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/refdoctor/refdoctor/config"
	"github.com/refdoctor/refdoctor/internal/human"
	"github.com/refdoctor/refdoctor/probe"
)

// cacheReport is `refdoctor cache show -o json`.
type cacheReport struct {
	Path    string             `json:"path"`
	TTL     string             `json:"ttl"`
	Enabled bool               `json:"enabled"`
	Entries []cacheReportEntry `json:"entries"`
}

type cacheReportEntry struct {
	probe.CacheEntry
	AgeSeconds int64     `json:"age_seconds"`
	ExpiresAt  time.Time `json:"expires_at"`
}

// cacheClearReport is `refdoctor cache clear -o json`.
type cacheClearReport struct {
	Path    string `json:"path"`
	Host    string `json:"host,omitempty"`
	Removed int    `json:"removed"`
}

func newCacheCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cache",
		Short: "Show or clear the capability cache",
		Long: `The capability cache keeps each registry's conclusive referrers API verdict
(supported or unsupported) for cache.capabilities_ttl, so that probe,
discover, the runbook, the troubleshooter and bundle import send no probe
within that time. It keeps verdicts, never replies or logins; refused logins,
rate limits, timeouts and other inconclusive answers are never stored. A
verdict depends on the scheme, host, repository and TLS settings, all part of
its key.`,
	}
	show := &cobra.Command{
		Use:   "show",
		Short: "List cached verdicts with their age and the command that probed them",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c := openCache(g.cfg)
			rep := cacheReport{Path: c.Path(), TTL: g.cfg.Cache.CapabilitiesTTL.String(), Enabled: c != nil, Entries: []cacheReportEntry{}}
			entries, err := c.Entries()
			if err != nil {
				// Pruning expired entries failed; what is listed is still true.
				g.log.Debug("capability cache not pruned", "err", err)
			}
			now := time.Now()
			for _, e := range entries {
				rep.Entries = append(rep.Entries, cacheReportEntry{CacheEntry: e, AgeSeconds: int64(e.Age(now).Seconds()), ExpiresAt: e.StoredAt.Add(c.TTL())})
			}
			return g.print(rep, func(w io.Writer) { writeCacheTable(w, rep, now) })
		},
	}
	clear := &cobra.Command{
		Use:         "clear [HOST]",
		Annotations: map[string]string{argsAnnotation: "at most one registry host"},
		Short:       "Drop cached verdicts: all of them, or those of one host (HOST or HOST:PORT)",
		Args:        cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			host := ""
			if len(args) == 1 {
				host = args[0]
				if err := config.ValidateHost(host); err != nil {
					return usageErr("cache clear: %v", err)
				}
			}
			c := openCache(g.cfg)
			n, err := c.Clear(host)
			if err != nil {
				return err
			}
			rep := cacheClearReport{Path: c.Path(), Host: host, Removed: n}
			return g.print(rep, func(w io.Writer) {
				what := "every host"
				if host != "" {
					what = host
				}
				fmt.Fprintf(w, "removed %s for %s from %s\n", human.Count(n, "cached verdict"), what, c.Path())
			})
		},
	}
	cmd.AddCommand(show, clear)
	return cmd
}

// openCache opens the configured cache file even when its TTL is zero,
// so that show and clear still reach what an earlier setting left.
func openCache(cfg config.Config) *probe.Cache {
	if c := probe.OpenCache(cfg); c != nil {
		return c
	}
	if cfg.Cache.Dir == "" {
		return nil
	}
	return probe.NewCache(cfg.Cache.Dir, 0)
}

func writeCacheTable(w io.Writer, rep cacheReport, now time.Time) {
	state := "ttl " + rep.TTL
	if !rep.Enabled {
		state = "disabled (cache.capabilities_ttl is 0 or no cache dir)"
	}
	fmt.Fprintf(w, "capability cache %s (%s), %s\n", rep.Path, state, human.Count(len(rep.Entries), "verdict"))
	if len(rep.Entries) == 0 {
		return
	}
	fmt.Fprintln(w)
	t := &table{head: []string{"KEY", "REFERRERS API", "REASON", "AGE", "BY"}, flex: []int{2, 0}, floor: map[int]int{0: 24}}
	for _, e := range rep.Entries {
		t.add(e.Key, string(e.ReferrersAPI), string(e.Reason), probe.Age(e.Age(now)), e.StoredBy)
	}
	t.write(w)
}
