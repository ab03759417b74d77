// Command validatecmd stands in for `refdoctor bundle validate --file F`
// in the benchmark until the CLI command exists: it validates one bundle
// and prints the JSON report, exiting 0 (whole), 1 (problems) or 2 (not
// readable as a bundle), as the CLI will.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"

	"github.com/refdoctor/refdoctor/bundle"
)

func main() {
	checkReferrers := flag.Bool("check-referrers", false, "also parse every referrer manifest")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: validatecmd [--check-referrers] BUNDLE")
		os.Exit(2)
	}
	rep, err := bundle.ValidateFile(context.Background(), flag.Arg(0), bundle.WithCheckReferrers(*checkReferrers))
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	_ = enc.Encode(rep)
	switch {
	case err != nil:
		fmt.Fprintln(os.Stderr, "validatecmd:", err)
		os.Exit(2)
	case !rep.OK:
		os.Exit(1)
	}
}
