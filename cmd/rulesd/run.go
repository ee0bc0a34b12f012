package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/rulesd/rulesd/internal/app"
	"github.com/rulesd/rulesd/internal/config"
)

func runRun(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "rulesd.yaml", "config file")
	dryRun := fs.Bool("dry-run", false, "compute and record everything, write nothing to the API")
	once := fs.Bool("once", false, "run every group once and exit (0 = every run succeeded with no failed action and no guard tripped)")
	nowFlag := fs.String("now", "", "with --once: run as if scheduled at this RFC 3339 time (for tests and replays)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: rulesd run [--config F] [--dry-run] [--once]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return 2
	}
	var now func() time.Time
	if *nowFlag != "" {
		t, err := time.Parse(time.RFC3339, *nowFlag)
		if err != nil || !*once {
			fmt.Fprintln(stderr, "rulesd run: --now needs --once and an RFC 3339 time such as 2026-11-20T10:00:00Z")
			return 2
		}
		now = func() time.Time { return t }
	}
	cfg, diags := config.Load(*cfgPath)
	if cfg == nil {
		for _, d := range diags {
			fmt.Fprintln(stderr, d)
		}
		return 1
	}
	log, err := newLogger(cfg.Log.Level, cfg.Log.Format, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "rulesd:", err)
		return 1
	}
	defer func() { _ = log.Sync() }()
	// SIGHUP reloads; several in a row coalesce into one reload.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	reload := make(chan struct{}, 1)
	done := make(chan struct{})
	defer close(done)
	go func() {
		for {
			select {
			case <-hup:
				select {
				case reload <- struct{}{}:
				default:
				}
			case <-done:
				return
			}
		}
	}()
	ok, err := app.Run(ctx, app.Options{ConfigPath: *cfgPath, DryRun: *dryRun, Once: *once, Logger: log, Reload: reload, Stderr: stderr, Now: now})
	if err != nil {
		fmt.Fprintln(stderr, "rulesd:", err)
		return 1
	}
	if !ok {
		return 1
	}
	return 0
}

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:8080", "address of rulesd's HTTP endpoints")
	runs := fs.Int("runs", 0, "stop after this many runs (0: until interrupted)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: rulesd demo [--listen ADDR] [--runs N]")
		fmt.Fprintln(stderr, "Runs rulesd with the example rules against a simulated Marketing API; needs nothing else.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	log, err := newLogger("error", "console", stderr)
	if err != nil {
		fmt.Fprintln(stderr, "rulesd:", err)
		return 1
	}
	if err := demoRun(ctx, *listen, *runs, stdout, log); err != nil {
		fmt.Fprintln(stderr, "rulesd demo:", err)
		return 1
	}
	return 0
}
