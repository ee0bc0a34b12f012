// Command rulesd is an automation rules daemon for the Meta Marketing API: it reads
// the ad hierarchy and its insights on a schedule, evaluates rules written in YAML,
// and pauses, resumes, re-budgets or notifies.
//
// This file only dispatches subcommands; each lives in a file of its own and returns
// an exit status: 0 success, 1 a failure the command found, 2 bad usage.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"syscall"
)

type command struct {
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) int
}

var commands = map[string]command{
	"check":   {"validate config and rule files", runCheck},
	"demo":    {"run against a built-in simulated Marketing API with the example rules", runDemo},
	"explain": {"show every sub-expression's value of one rule for one object, and what rulesd would do", runExplain},
	"run":     {"the daemon: run rule groups on their schedules", runRun},
	"preview": {"evaluate once now and print what would happen; writes nothing", runPreview},
	"test":    {"run rule unit tests", runTest},
	"undo":    {"restore the value an applied action changed", runUndo},
	"version": {"print version, commit and Go version", runVersion},
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := dispatch(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func dispatch(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "rulesd: unknown command %q\n\n", args[0])
		usage(stderr)
		return 2
	}
	return cmd.run(ctx, args[1:], stdout, stderr)
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: rulesd COMMAND [flags]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "commands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-9s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run 'rulesd COMMAND -h' for a command's flags.")
}
