package mirror

import (
	"log/slog"
	"reflect"

	"github.com/refdoctor/refdoctor/config"
	"github.com/refdoctor/refdoctor/discovery"
	"github.com/refdoctor/refdoctor/probe"
	"github.com/refdoctor/refdoctor/registry"
)

// Env is what mirror operations need from the rest of refdoctor, passed
// down as one value rather than forwarded option by option.
type Env struct {
	// Config supplies hosts (plain HTTP, TLS), timeouts and discovery
	// limits; the zero value means config.Defaults().
	Config config.Config
	// Client is how every registry client of the operation is built
	// (logger, user agent, credentials).
	Client []registry.Opt
	// Discovery adds settings to every referrer discovery the operation
	// runs (method, metrics, timeouts).
	Discovery []discovery.Opt
	// Probe adds settings to every capability probe the operation runs
	// itself (import's check of the target): logger, session, purpose.
	Probe []probe.Opt
	// Log receives progress lines; nil discards them.
	Log *slog.Logger
}

func (e Env) withDefaults() Env {
	if reflect.ValueOf(e.Config).IsZero() {
		e.Config = config.Defaults()
	}
	if e.Log == nil {
		e.Log = slog.New(slog.DiscardHandler)
	}
	return e
}

// client builds the registry client of one operation.
func (e Env) client() (*registry.Client, error) {
	return registry.New(e.Config, append([]registry.Opt{registry.WithTimeout(e.Config.Export.ReferrerDiscovery.Timeout())}, e.Client...)...)
}

// discoveryOpts are the options of every discovery the operation runs,
// before the call's own.
func (e Env) discoveryOpts(extra ...discovery.Opt) []discovery.Opt {
	out := []discovery.Opt{discovery.WithConfig(e.Config), discovery.WithClientOpts(e.Client...)}
	out = append(out, extra...)
	return append(out, e.Discovery...)
}
