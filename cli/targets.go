package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/refdoctor/refdoctor/config"
)

// configRegistries are the hosts of the config's [[registry]] list, for a
// command given no registry of its own. It says on stderr that it uses
// them, and where they come from, so that a run over the config's list is
// never mistaken for one over the operator's arguments.
func (g *globals) configRegistries(command string) []string {
	hosts := g.fileRegistries
	if len(hosts) == 0 {
		return nil
	}
	fmt.Fprintf(g.stderr, "%s: no registry given; using the %d %s in %s: %s\n",
		command, len(hosts), pluralWord(len(hosts), "registry", "registries"), g.configName(), strings.Join(hosts, ", "))
	return hosts
}

// configName names the configuration file for messages.
func (g *globals) configName() string {
	if g.cfg.Path != "" {
		return g.cfg.Path
	}
	return "the configuration"
}

// configFileHint names the config file, or where one would be read.
func (g *globals) configFileHint() string {
	if g.cfg.Path != "" {
		return g.cfg.Path
	}
	return "a config file (--config FILE, default " + config.DefaultPath() + ")"
}

// noRegistries is the usage error of a command that has no registry to
// work on: what its arguments are, that the config's [[registry]] list
// would do too, and its first example.
func (g *globals) noRegistries(cmd *cobra.Command) error {
	example := ""
	if ex := strings.TrimSpace(cmd.Example); ex != "" {
		example, _, _ = strings.Cut(ex, "\n")
		example = "; for example: " + strings.TrimSpace(example)
	}
	return usageErr("%s needs %s, or [[registry]] entries in %s%s", cmd.CommandPath(), cmd.Annotations[argsAnnotation], g.configFileHint(), example)
}

func pluralWord(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
