package runbook

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/refdoctor/refdoctor/bundle"
	"github.com/refdoctor/refdoctor/discovery"
	"github.com/refdoctor/refdoctor/registry"
)

// DiagFileName is the name of a support bundle written at t:
// refdoctor-support-YYYYMMDD-HHMMSS.tgz.
func DiagFileName(t time.Time) string {
	return "refdoctor-support-" + t.Format("20060102-150405") + ".tgz"
}

// DefaultDiagPath is where a support bundle goes when no path is given:
// the working folder, wherever refdoctor writes one (the TUI, the runbook,
// the CLI), so that the operator finds it where they are.
func DefaultDiagPath(t time.Time) string {
	dir, err := os.Getwd()
	if err != nil {
		dir = "."
	}
	return filepath.Join(dir, DiagFileName(t))
}

// fillCommands renders the step's commands with what the check resolved:
// the image's digest (discovery's subject, or one HEAD of the image when
// a command needs it), the first referrer it found, the bundle member it
// names. The result then holds commands with no placeholder the check
// could have filled.
func (e *Engine) fillCommands(ctx context.Context, r *run) {
	if len(r.step.Commands) == 0 {
		return
	}
	t := e.targets
	if d := r.res.Discovery; d != nil {
		if t.Digest == "" {
			t.Digest = d.Subject.Digest
		}
		if len(d.Referrers) > 0 {
			t.Referrer = d.Referrers[0].Digest
		}
	}
	if rep, ok := r.res.Bundle.(*bundle.Report); ok && rep != nil {
		for _, p := range rep.Errors {
			if subject, referrer, ok := bundle.SplitReferrerPath(p.Path); ok {
				t.Digest, t.Referrer = subject, referrer
				break
			}
		}
		if t.Referrer == "" && t.Bundle != "" {
			if m, err := bundle.ReadManifest(ctx, t.Bundle); err == nil {
				for _, s := range m.Referrers.Subjects {
					if len(s.Artifacts) > 0 {
						t.Digest, t.Referrer = s.Subject, s.Artifacts[0].Digest
						break
					}
				}
			}
		}
	}
	cmds, err := r.step.Render(t)
	if err != nil {
		return
	}
	needsDigest := false
	for _, c := range cmds {
		if strings.Contains(c.Text, PlaceholderDigest) || strings.Contains(c.Text, "<sha256-hex>") {
			needsDigest = true
		}
	}
	if needsDigest && t.Digest == "" && t.Image != "" && ctx.Err() == nil {
		if d := e.resolveDigest(ctx, t.Image); d != "" {
			t.Digest = d
			if again, err := r.step.Render(t); err == nil {
				cmds = again
			}
		}
	}
	r.res.Commands = cmds
}

// resolveDigest asks the image's registry for the digest its tag points
// to (one HEAD), or "" when it cannot tell.
func (e *Engine) resolveDigest(ctx context.Context, image string) string {
	ref, err := discovery.ParseReference(image)
	if err != nil {
		return ""
	}
	if ref.Digest != "" {
		return ref.Digest
	}
	c, err := registry.New(e.o.cfg, append([]registry.Opt{registry.WithTimeout(e.timeout())}, e.o.clientOpts...)...)
	if err != nil {
		return ""
	}
	ctx, cancel := context.WithTimeout(ctx, e.timeout())
	defer cancel()
	m, err := c.ManifestHead(ctx, ref)
	if err != nil {
		return ""
	}
	return m.GetDescriptor().Digest.String()
}
