// Command refdoctor troubleshoots OCI referrer discovery and air-gap
// mirror bundles. See README.md.
package main

import (
	"os"

	"github.com/refdoctor/refdoctor/cli"
)

func main() { os.Exit(cli.Execute()) }
