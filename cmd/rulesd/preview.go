package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/rulesd/rulesd/internal/app"
)

func runPreview(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("preview", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "rulesd.yaml", "config file")
	rule := fs.String("rule", "", "print only this rule (NAME or GROUP/NAME); its group is still evaluated")
	account := fs.String("account", "", "only this ad account (act_...)")
	output := fs.String("o", "table", "output: table or json")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: rulesd preview [--config F] [--rule NAME] [--account ID] [-o table|json]")
		fmt.Fprintln(stderr, "Evaluates every rule once now and prints what would happen; writes nothing.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 || (*output != "table" && *output != "json") {
		fs.Usage()
		return 2
	}
	log, err := newLogger("warn", "console", stderr)
	if err != nil {
		fmt.Fprintln(stderr, "rulesd:", err)
		return 1
	}
	res, err := app.Preview(ctx, app.PreviewOptions{ConfigPath: *cfgPath, Rule: *rule, Account: *account, Logger: log})
	if err != nil {
		fmt.Fprintln(stderr, "rulesd preview:", err)
		return 1
	}
	if *output == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(res); err != nil {
			fmt.Fprintln(stderr, "rulesd preview:", err)
			return 1
		}
	} else {
		printPreviewTable(stdout, res)
	}
	if len(res.Errors) > 0 {
		return 1
	}
	return 0
}

func printPreviewTable(w io.Writer, res *app.PreviewResult) {
	if len(res.Matches) == 0 {
		fmt.Fprintln(w, "No rule matches any object right now.")
	} else {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "RULE\tACCOUNT\tOBJECT\tACTION\tRESULT\tWHY (values the rule saw)")
		for _, m := range res.Matches {
			action := m.Action.Kind
			if m.Action.Field != "" {
				action += fmt.Sprintf(" %s %v → %v", m.Action.Field, show(m.Action.Before), show(m.Action.After))
			}
			if m.Action.CappedBy != "" {
				action += " (capped by " + m.Action.CappedBy + ")"
			}
			result := m.Result
			if m.Reason != "" {
				result += ": " + m.Reason
			}
			fmt.Fprintf(tw, "%s/%s\t%s %s\t%s %q\t%s\t%s\t%s\n", m.Group, m.Rule, m.AccountID, res.Currencies[m.AccountID], m.Level, m.Name, action, result, values(m.Values))
		}
		tw.Flush()
	}
	for _, e := range res.Errors {
		where := e.AccountID
		if e.Rule != "" {
			where += " " + e.Group + "/" + e.Rule
		}
		if e.ObjectID != "" {
			where += " object " + e.ObjectID
		}
		fmt.Fprintf(w, "error (%s) %s: %s\n", e.Stage, where, e.Message)
	}
}

func show(v any) string {
	switch x := v.(type) {
	case nil:
		return "-"
	case float64:
		return fmt.Sprintf("%.2f", x)
	}
	return fmt.Sprint(v)
}

func values(m map[string]any) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		switch v := m[k].(type) {
		case nil:
			parts = append(parts, k+"=missing")
		case float64:
			parts = append(parts, fmt.Sprintf("%s=%.4g", k, v))
		default:
			parts = append(parts, fmt.Sprintf("%s=%v", k, v))
		}
	}
	return strings.Join(parts, " ")
}
