package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/rulesd/rulesd/internal/app"
)

func runUndo(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("undo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "rulesd.yaml", "config file")
	dry := fs.Bool("dry-run", false, "check everything and print what would happen; write nothing")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: rulesd undo ACTION_ID [--config F] [--dry-run]")
		fmt.Fprintln(stderr, "Restores the value an applied action changed, when it is the latest change to that")
		fmt.Fprintln(stderr, "field and the field still holds what rulesd wrote; then rules leave the field alone")
		fmt.Fprintln(stderr, "for safety.manual_hold. ACTION_ID is the id of GET /api/v1/actions.")
		fs.PrintDefaults()
	}
	// Flags may come before or after the id.
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return 2
	}
	idArg := fs.Arg(0)
	if err := fs.Parse(fs.Args()[1:]); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "rulesd undo: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return 2
	}
	id, err := strconv.ParseInt(idArg, 10, 64)
	if err != nil || id <= 0 {
		fmt.Fprintf(stderr, "rulesd undo: ACTION_ID must be a positive number, not %q\n", idArg)
		fs.Usage()
		return 2
	}
	log, err := newLogger("warn", "console", stderr)
	if err != nil {
		fmt.Fprintln(stderr, "rulesd:", err)
		return 1
	}
	res, err := app.Undo(ctx, app.UndoOptions{ConfigPath: *cfgPath, ActionID: id, DryRun: *dry, Logger: log})
	if err != nil {
		switch {
		case errors.Is(err, app.ErrUndoFailed) && res != nil:
			fmt.Fprintf(stderr, "rulesd undo: action %d: restoring %s failed: %s\n", id, undoTarget(res), res.Reason)
			if res.Unknown {
				fmt.Fprintf(stderr, "The write may have been applied; the daemon settles it when it next reconciles. Rules leave the field alone until %s.\n", undoTime(res.HoldUntil))
			}
			if res.UndoID != 0 {
				fmt.Fprintf(stderr, "Recorded as action %d.\n", res.UndoID)
			}
		default:
			fmt.Fprintln(stderr, "rulesd undo:", err)
		}
		return 1
	}
	if res.DryRun {
		fmt.Fprintf(stdout, "action %d: would restore %s %s → %s; rules would leave it alone until %s (dry run: %s; nothing written)\n",
			id, undoTarget(res), res.From, res.To, undoTime(res.HoldUntil), res.DryRunReason)
		return 0
	}
	fmt.Fprintf(stdout, "action %d: %s restored %s → %s; rules leave it alone until %s (recorded as action %d)\n",
		id, undoTarget(res), res.From, res.To, undoTime(res.HoldUntil), res.UndoID)
	return 0
}

// undoTarget is "daily_budget of ad set 'X' (act_1)".
func undoTarget(res *app.UndoResult) string {
	a := res.Action
	level := a.Level
	if level == "adset" {
		level = "ad set"
	}
	name := a.ObjectID
	if res.ObjectName != "" {
		name = "'" + res.ObjectName + "'"
	}
	return fmt.Sprintf("%s of %s %s (%s)", a.Field, level, name, a.AccountID)
}

func undoTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }
