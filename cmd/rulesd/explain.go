package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/rulesd/rulesd/internal/app"
)

func runExplain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("explain", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "rulesd.yaml", "config file")
	rule := fs.String("rule", "", "the rule (NAME or GROUP/NAME)")
	object := fs.String("object", "", "the id of a campaign, ad set or ad at the rule's level")
	account := fs.String("account", "", "only look in this ad account (act_...)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: rulesd explain --rule NAME --object ID [--config F] [--account ID]")
		fmt.Fprintln(stderr, "Evaluates one rule on one object now and prints every sub-expression's value and")
		fmt.Fprintln(stderr, "what rulesd would do, with the guards that apply; writes nothing.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 || *rule == "" || *object == "" {
		if fs.NArg() > 0 {
			fmt.Fprintf(stderr, "rulesd explain: unexpected argument %q\n", fs.Arg(0))
		} else {
			fmt.Fprintln(stderr, "rulesd explain: --rule and --object are required")
		}
		fs.Usage()
		return 2
	}
	log, err := newLogger("warn", "console", stderr)
	if err != nil {
		fmt.Fprintln(stderr, "rulesd:", err)
		return 1
	}
	res, err := app.Explain(ctx, app.ExplainOptions{ConfigPath: *cfgPath, Rule: *rule, Object: *object, Account: *account, Logger: log})
	if err != nil {
		fmt.Fprintln(stderr, "rulesd explain:", err)
		return 1
	}
	for _, a := range res.Skipped {
		fmt.Fprintf(stderr, "rulesd explain: account %s could not be read and was skipped\n", a)
	}
	printExplain(stdout, res)
	return 0
}

func printExplain(w io.Writer, res *app.ExplainResult) {
	o := res.Object
	fmt.Fprintf(w, "rule %s/%s (level %s, window %s)\n", res.Group, res.Rule, res.Level, res.Window)
	fmt.Fprintf(w, "%s %s %q, status %s, effective status %s\n", res.Level, o.ID, o.Name, o.Status, o.EffectiveStatus)
	fmt.Fprintf(w, "account %s (%s), evaluated at %s\n\n", res.AccountID, res.Currency, res.At.UTC().Format(time.RFC3339))
	fmt.Fprint(w, res.Explanation.String())
	fmt.Fprintln(w)
	if len(res.Decisions) == 0 {
		switch {
		case !res.Explanation.InScope:
			fmt.Fprintln(w, "decision: none: the object is not in the rule's scope (where is not true)")
		case !res.Explanation.Match:
			fmt.Fprintln(w, "decision: none: the rule does not match this object")
		case strings.Contains(o.Name, "[rulesd:off]"):
			fmt.Fprintln(w, "decision: none: the object's name contains [rulesd:off], so rulesd never touches it")
		default:
			fmt.Fprintln(w, "decision: none")
		}
		return
	}
	for _, d := range res.Decisions {
		what := d.Kind
		if d.Restore {
			what += " (restore after the pause)"
		}
		if d.Field != "" {
			what += fmt.Sprintf(" %s %s → %s", d.Field, showExplained(d.Before, res.Currency), showExplained(d.After, res.Currency))
		}
		if d.CappedBy != "" {
			what += " (capped by " + d.CappedBy + ")"
		}
		line := fmt.Sprintf("decision: %s: %s", what, d.Result)
		if !d.PendingSince.IsZero() && d.Result == "pending" {
			line += " since " + d.PendingSince.UTC().Format(time.RFC3339)
		}
		if d.Reason != "" {
			line += ": " + d.Reason
		}
		fmt.Fprintln(w, line)
	}
}

func showExplained(v any, currency string) string {
	switch x := v.(type) {
	case nil:
		return "-"
	case float64:
		return fmt.Sprintf("%.2f %s", x, currency)
	}
	return fmt.Sprint(v)
}
