package cli

import (
	"strings"

	"github.com/spf13/cobra"

	"github.com/refdoctor/refdoctor/config"
	"github.com/refdoctor/refdoctor/runbook"
)

// Shell completion of values, not only of commands and flags: the
// runbook's steps, the choices of --method, -o and --compression, and the
// registry hosts of the config file for every argument or flag that
// names a registry. `refdoctor completion bash|zsh|fish|powershell`
// prints the script.

// registerCompletions wires value completion into the command tree built
// by newRoot; it runs once the tree is complete, so each command keeps
// its own file free of completion code.
func registerCompletions(root *cobra.Command, g *globals) {
	fixed := func(values ...string) cobra.CompletionFunc {
		return func(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
			return values, cobra.ShellCompDirectiveNoFileComp
		}
	}
	hosts := func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		return g.configHosts(toComplete, false), cobra.ShellCompDirectiveNoFileComp
	}
	repos := func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		// A host, then the operator types the repository after the /.
		return g.configHosts(toComplete, true), cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveNoSpace
	}
	_ = root.RegisterFlagCompletionFunc("output", fixed("table", "json"))
	_ = root.RegisterFlagCompletionFunc("plain-http", hosts)
	_ = root.RegisterFlagCompletionFunc("insecure", hosts)
	_ = root.RegisterFlagCompletionFunc("log-level", fixed("trace", "debug", "info", "warn", "error"))

	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Flags().Lookup("method") != nil {
			_ = c.RegisterFlagCompletionFunc("method", fixed("auto\tfollow the probed capability", "api\tthe referrers API only", "tags\tthe referrers tag schema only"))
		}
		if c.Flags().Lookup("compression") != nil {
			_ = c.RegisterFlagCompletionFunc("compression", fixed("gzip", "zstd"))
		}
		for _, name := range []string{"registry", "to"} {
			if f := c.LocalNonPersistentFlags().Lookup(name); f != nil {
				_ = c.RegisterFlagCompletionFunc(name, repos)
			} else if f := c.PersistentFlags().Lookup(name); f != nil {
				_ = c.RegisterFlagCompletionFunc(name, repos)
			}
		}
		switch c.CommandPath() {
		case "refdoctor probe", "refdoctor tags", "refdoctor discover", "refdoctor bundle export":
			c.ValidArgsFunction = repos
		case "refdoctor cache clear":
			c.ValidArgsFunction = func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
				if len(args) > 0 {
					return nil, cobra.ShellCompDirectiveNoFileComp
				}
				return hosts(cmd, args, toComplete)
			}
		case "refdoctor runbook show", "refdoctor runbook run":
			c.ValidArgsFunction = func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
				if len(args) > 0 {
					return nil, cobra.ShellCompDirectiveNoFileComp
				}
				return runbookSteps(), cobra.ShellCompDirectiveNoFileComp
			}
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}

// runbookSteps are the step IDs, each with its title.
func runbookSteps() []cobra.Completion {
	b, err := runbook.Load()
	if err != nil {
		return nil
	}
	out := make([]cobra.Completion, 0, len(b.Steps))
	for _, s := range b.Steps {
		out = append(out, cobra.CompletionWithDesc(s.ID, s.Title))
	}
	return out
}

// configHosts are the registry hosts of the config file (--config, or the
// default one), with a / after each when a repository follows.
func (g *globals) configHosts(toComplete string, slash bool) []cobra.Completion {
	cfg, err := config.Load(g.configFile)
	if err != nil {
		return nil
	}
	var out []cobra.Completion
	for _, r := range cfg.Registries {
		h := r.Host
		if slash {
			h += "/"
		}
		if strings.HasPrefix(h, toComplete) {
			out = append(out, h)
		}
	}
	return out
}
