package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/rulesd/rulesd/internal/config"
	"github.com/rulesd/rulesd/internal/diag"
	"github.com/rulesd/rulesd/internal/rules"
)

func runCheck(_ context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "config file (rulesd.yaml); its rule_files are checked when no FILE is given")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: rulesd check [--config F] [FILE...]")
		fmt.Fprintln(stderr, "Validates the config and rule files; prints FILE:LINE:COL: message per problem.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	files := fs.Args()
	if *cfgPath == "" && len(files) == 0 {
		fs.Usage()
		return 2
	}
	var all diag.List
	var cfg *config.Config
	if *cfgPath != "" {
		var l diag.List
		cfg, l = config.Load(*cfgPath)
		all = append(all, l...)
		if cfg != nil && len(files) == 0 {
			paths, err := cfg.RuleFilePaths()
			if err != nil {
				all.Errorf(diag.Pos{File: *cfgPath}, "%v", err)
			}
			files = paths
		}
	}
	if cfg != nil || *cfgPath == "" {
		_, l := rules.LoadFiles(files, rules.Options{Config: cfg})
		all = append(all, l...)
	}
	for _, d := range all {
		fmt.Fprintln(stdout, d.String())
	}
	errs, warns := len(all.Errors()), len(all.Warnings())
	if errs > 0 {
		fmt.Fprintf(stderr, "%d error(s), %d warning(s)\n", errs, warns)
		return 1
	}
	fmt.Fprintf(stderr, "%d file(s) OK, %d warning(s)\n", len(files), warns)
	return 0
}
