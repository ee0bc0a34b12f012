package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"regexp"

	"github.com/rulesd/rulesd/internal/ruletest"
)

func runTest(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(stderr)
	run := fs.String("run", "", "run only the tests whose name matches this regular expression")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: rulesd test [--run REGEXP] FILE...")
		fmt.Fprintln(stderr, "Runs rule unit tests (docs/writing-rules.md section 11); exit 1 when one fails.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return 2
	}
	var match func(string) bool
	if *run != "" {
		re, err := regexp.Compile(*run)
		if err != nil {
			fmt.Fprintf(stderr, "rulesd test: --run: %v\n", err)
			return 2
		}
		match = re.MatchString
	}
	passed, failed, badFiles := 0, 0, 0
	for _, path := range fs.Args() {
		f, diags := ruletest.Load(path)
		if f == nil {
			badFiles++
			for _, d := range diags.Errors() {
				fmt.Fprintln(stdout, d.String())
			}
			continue
		}
		for _, r := range f.Run(ctx, match) {
			if r.Passed() {
				passed++
				fmt.Fprintf(stdout, "ok   %s: %s (%d steps)\n", r.Pos, r.Name, r.Steps)
				continue
			}
			failed++
			r.Format(stdout)
		}
	}
	switch {
	case failed > 0 || badFiles > 0:
		fmt.Fprintf(stderr, "FAIL: %d test(s) failed, %d passed, %d file(s) with errors\n", failed, passed, badFiles)
		return 1
	case passed == 0:
		fmt.Fprintln(stderr, "no tests to run")
		return 1
	}
	fmt.Fprintf(stderr, "PASS: %d test(s)\n", passed)
	return 0
}
