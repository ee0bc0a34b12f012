package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/rulesd/rulesd/internal/version"
)

func runVersion(_ context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("version", flag.ContinueOnError)
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	fmt.Fprintf(stdout, "rulesd %s (commit %s, %s)\n", version.Version, version.Commit(), version.GoVersion())
	return 0
}
