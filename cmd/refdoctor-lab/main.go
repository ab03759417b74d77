// Command refdoctor-lab runs refdoctor's lab of local registries as a
// process of its own: `refdoctor demo` starts it, reads the JSON line it
// prints, and points the troubleshooter at the registries it lists. The
// lab lives in its own binary so that refdoctor, which never needs a
// registry implementation otherwise, does not link one (and does not pay
// for its start-up on every command).
//
// It prints one line of JSON (see package labinfo) on stdout once every
// registry serves, then reads commands from stdin, one a line, and
// answers each with one JSON line:
//
//	reset-rate-limit NAME   refill the pull budget of a Docker Hub-like registry
//
// It stops, and removes its temporary folder, when stdin ends (the program
// that started it is gone) or on SIGINT, SIGTERM or SIGHUP.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/refdoctor/refdoctor/lab"
	"github.com/refdoctor/refdoctor/telemetry"
)

func main() { os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) }

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("refdoctor-lab", flag.ContinueOnError)
	fs.SetOutput(stderr)
	bundles := fs.Bool("bundles", false, "also write a good and a tampered mirror bundle into the lab folder")
	level := fs.String("log-level", "warn", "log level on stderr: trace, debug, info, warn, error")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "refdoctor-lab: takes no arguments (got %q)\n", fs.Args())
		return 2
	}
	lvl, err := telemetry.ParseLevel(*level)
	if err != nil {
		fmt.Fprintf(stderr, "refdoctor-lab: --log-level: %v\n", err)
		return 2
	}
	log := telemetry.NewLogger(stderr, lvl)

	// Every signal that can be caught stops the lab the same way, so its
	// folder (the lab CA, the basic-auth file, the bundles) goes with it.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	startCtx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	l, err := lab.Start(startCtx, lab.WithLogger(log))
	cancel()
	if err != nil {
		fmt.Fprintf(stderr, "refdoctor-lab: start the lab: %v\n", err)
		return 1
	}
	defer func() {
		if err := l.Close(); err != nil {
			fmt.Fprintf(stderr, "refdoctor-lab: %v\n", err)
		}
	}()
	var b *lab.Bundles
	if *bundles {
		written, err := l.WriteBundles(ctx, "oci11")
		if err != nil {
			fmt.Fprintf(stderr, "refdoctor-lab: %v\n", err)
			return 1
		}
		b = &written
	}
	out := json.NewEncoder(stdout)
	if err := out.Encode(l.Info(b)); err != nil {
		fmt.Fprintf(stderr, "refdoctor-lab: %v\n", err)
		return 1
	}

	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdin)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-ctx.Done():
				return
			}
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return 0
		case line, ok := <-lines:
			if !ok {
				return 0 // whoever started the lab is gone
			}
			_ = out.Encode(command(l, line))
		}
	}
}

// reply is the answer to one command.
type reply struct {
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
}

func command(l *lab.Lab, line string) reply {
	verb, arg, _ := strings.Cut(strings.TrimSpace(line), " ")
	switch verb {
	case "reset-rate-limit":
		if err := l.ResetRateLimit(strings.TrimSpace(arg)); err != nil {
			return reply{Error: err.Error()}
		}
		return reply{OK: true}
	case "":
		return reply{Error: "empty command"}
	}
	return reply{Error: fmt.Sprintf("unknown command %q (known: reset-rate-limit NAME)", verb)}
}
