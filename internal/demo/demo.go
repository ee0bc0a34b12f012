// Package demo runs rulesd against the simulated Marketing API with sample accounts
// and the example rules, on a fast clock, and narrates what happens: `rulesd demo`.
package demo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/rulesd/rulesd/internal/app"
	"github.com/rulesd/rulesd/internal/engine"
	"github.com/rulesd/rulesd/internal/fakegraph"
	"github.com/rulesd/rulesd/internal/state"
	rulefiles "github.com/rulesd/rulesd/rules"
)

// Options configure the demo.
type Options struct {
	// Listen is rulesd's HTTP address; default 127.0.0.1:8080.
	Listen string
	// Stdout receives the narration.
	Stdout io.Writer
	// Logger receives rulesd's own logs (warnings and errors by default).
	Logger *zap.Logger
	// Every is the real time between runs (default 3s); each run advances the
	// simulated clock by Step (default 30m).
	Every, Step time.Duration
	// Seed makes the sample accounts (default 7).
	Seed int64
	// Runs stops after this many runs (0: until ctx is done).
	Runs int
	// KeepServing, with Runs, keeps rulesd's HTTP endpoints up after the last run
	// until ctx is done, so that the results can be read (tests, screenshots).
	KeepServing bool
	// OnListen is told rulesd's HTTP address once it listens (Listen may be
	// "127.0.0.1:0").
	OnListen func(addr string)
	// OnFinished is called once the last of Runs runs has finished.
	OnFinished func()
}

// clock is the demo's fast clock, shared by rulesd and the simulated API.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	return c.now
}

// targets are per-currency account variables, so rules mean the same in every
// currency of the sample accounts.
var perUSD = map[string]float64{"USD": 1, "EUR": 0.95, "JPY": 150, "GBP": 0.8, "BRL": 5, "AUD": 1.5, "INR": 83}

// Run runs the demo until ctx is done.
func Run(ctx context.Context, opts Options) error {
	if opts.Listen == "" {
		opts.Listen = "127.0.0.1:8080"
	}
	if opts.Stdout == nil {
		opts.Stdout = os.Stdout
	}
	if opts.Every == 0 {
		opts.Every = 3 * time.Second
	}
	if opts.Step == 0 {
		opts.Step = 30 * time.Minute
	}
	if opts.Seed == 0 {
		opts.Seed = 7
	}
	out := &narrator{w: opts.Stdout}
	clk := &clock{now: time.Now().UTC().Truncate(time.Minute)}
	fake := fakegraph.New(fakegraph.Options{Now: clk.Now, Seed: opts.Seed})
	accts, err := fake.Generate(opts.Seed, fakegraph.GenSpec{Accounts: 3, CampaignsPerAccount: 4, AdSetsPerCampaign: 3, AdsPerAdSet: 6, HistoryDays: 45})
	if err != nil {
		return fmt.Errorf("generate sample accounts: %w", err)
	}
	api, stopAPI, err := serve(fake)
	if err != nil {
		return fmt.Errorf("start the simulated Marketing API: %w", err)
	}
	defer stopAPI()
	hooks, stopHooks, err := serve(http.HandlerFunc(out.notification))
	if err != nil {
		return fmt.Errorf("start the notification receiver: %w", err)
	}
	defer stopHooks()

	dir, err := os.MkdirTemp("", "rulesd-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	cfgPath, err := writeFiles(dir, fake, accts, api, hooks)
	if err != nil {
		return err
	}
	out.printf("rulesd demo: %d sample ad accounts on a simulated Marketing API at %s\n", len(accts), api)
	out.printf("example rules from rules/, state in %s; every %s of real time the clock moves %s.\n\n", filepath.Join(dir, "state.db"), opts.Every, opts.Step)

	ticks := make(chan time.Time)
	ran := make(chan struct{}, 1) // every group ran for the last tick
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		first := time.NewTimer(500 * time.Millisecond)
		defer first.Stop()
		select {
		case <-first.C:
		case <-ctx.Done():
			return
		}
		t := time.NewTicker(opts.Every)
		defer t.Stop()
		for n := 0; opts.Runs == 0 || n < opts.Runs; n++ {
			if n > 0 {
				select {
				case <-t.C:
				case <-ctx.Done():
					return
				}
			}
			at := clk.Now()
			if n > 0 {
				at = clk.advance(opts.Step)
			}
			out.printf("── run %d at %s (simulated) ──\n", n+1, at.Format("Mon 15:04"))
			select {
			case ticks <- at:
			case <-ctx.Done():
				return
			}
			select {
			case <-ran:
			case <-ctx.Done():
				return
			}
		}
		if opts.OnFinished != nil {
			opts.OnFinished()
		}
		if !opts.KeepServing {
			cancel()
		}
	}()
	log := opts.Logger
	if log == nil {
		log = zap.NewNop()
	}
	_, err = app.Run(ctx, app.Options{
		ConfigPath: cfgPath, Listen: opts.Listen, Logger: log, Now: clk.Now, Tick: ticks,
		OnRun: out.run, Stderr: opts.Stdout,
		OnTickDone: func(time.Time) {
			select {
			case ran <- struct{}{}:
			default:
			}
		},
		OnListen: func(addr string) {
			out.printf("status page  http://%s/\nmetrics      http://%s/metrics\naudit log    http://%s/api/v1/actions\n\n", addr, addr, addr)
			if opts.OnListen != nil {
				opts.OnListen(addr)
			}
		},
	})
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// serve serves h on a loopback port and returns its base URL.
func serve(h http.Handler) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String(), func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}, nil
}

// writeFiles writes the example rules, a token and a config for the sample accounts.
func writeFiles(dir string, fake *fakegraph.Server, accts []string, api, hooks string) (string, error) {
	if err := os.MkdirAll(filepath.Join(dir, "rules"), 0o755); err != nil {
		return "", err
	}
	err := fs.WalkDir(rulefiles.FS, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := rulefiles.FS.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, "rules", path), b, 0o644)
	})
	if err != nil {
		return "", fmt.Errorf("write example rules: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "token"), []byte(fakegraph.DefaultToken), 0o600); err != nil {
		return "", err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "graph: {base_url: %q, api_version: v27.0, access_token_file: token, timeout: 10s}\naccounts:\n", api)
	for _, id := range accts {
		a, _ := fake.Account(id)
		k := perUSD[a.Currency]
		if k == 0 {
			k = 1
		}
		fmt.Fprintf(&b, "- {id: %s, name: %q, vars: {target_cpa: %g, max_cpl: %g, max_adset_budget: %g}, labels: {tier: gold}}\n",
			id, a.Name, 25*k, 12*k, 500*k)
	}
	fmt.Fprintf(&b, "rule_files: [\"rules/*.yaml\"]\nstate: {driver: sqlite, dsn: state.db}\n")
	fmt.Fprintf(&b, "notifiers:\n- {name: growth-slack, type: webhook, url: %q}\n- {name: leads-slack, type: webhook, url: %q}\n- {name: audit-hook, type: webhook, url: %q}\n",
		hooks+"/growth-slack", hooks+"/leads-slack", hooks+"/audit-hook")
	p := filepath.Join(dir, "rulesd.yaml")
	return p, os.WriteFile(p, []byte(b.String()), 0o644)
}

// narrator prints what happens, for people.
type narrator struct {
	mu sync.Mutex
	w  io.Writer
}

func (n *narrator) printf(format string, args ...any) {
	n.mu.Lock()
	defer n.mu.Unlock()
	fmt.Fprintf(n.w, format, args...)
}

// run prints one account run: what was done, and how many matches wait for their
// for: or their cooldown.
func (n *narrator) run(r engine.AccountRun) {
	if r.Err != nil {
		n.printf("  %s in %s: %s (%v)\n", r.Group, r.AccountID, r.Result, r.Err)
		return
	}
	var lines []string
	pending, cooling := 0, 0
	for _, d := range r.Decisions {
		switch d.Result {
		case engine.ResultPending:
			pending++
			continue
		case state.ResultSkippedCooldown:
			cooling++
			continue
		}
		what := d.Rule.Action.Kind.String()
		if d.IsWrite() {
			what = fmt.Sprintf("%s %s %v → %v", what, d.Change.Field, fmtVal(engine.Major(engine.Before(d), r.Currency)), fmtVal(engine.Major(engine.After(d), r.Currency)))
		}
		line := fmt.Sprintf("    %-38s %-30q %-38s %s", trim(d.Rule.Name, 38), trim(d.Object.Name, 28), what, d.Result)
		if d.Error != "" {
			line += " — " + trim(d.Error, 100)
		}
		lines = append(lines, line)
	}
	if len(lines) == 0 && pending == 0 {
		return
	}
	sort.Strings(lines)
	head := fmt.Sprintf("  %s in %s (%s):", r.Group, r.AccountID, r.Currency)
	if len(lines) > 0 {
		head += fmt.Sprintf(" %d action(s)", len(lines))
	}
	if pending > 0 {
		head += fmt.Sprintf(" %d match(es) waiting for their for:", pending)
	}
	if cooling > 0 {
		head += fmt.Sprintf(" %d in cooldown", cooling)
	}
	n.printf("%s\n", head)
	for _, l := range lines {
		n.printf("%s\n", l)
	}
}

func fmtVal(v any) string {
	if f, ok := v.(float64); ok {
		return fmt.Sprintf("%.2f", f)
	}
	if v == nil {
		return "-"
	}
	return fmt.Sprint(v)
}

func trim(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}

// notification prints a digest a notifier sent.
func (n *narrator) notification(w http.ResponseWriter, r *http.Request) {
	var d struct {
		Kind   string `json:"kind"`
		Group  string `json:"group"`
		Reason string `json:"reason"`
		Events []any  `json:"events"`
	}
	_ = json.NewDecoder(r.Body).Decode(&d)
	n.printf("  ✉ notification to %s: %s %s, %d event(s) %s\n", strings.TrimPrefix(r.URL.Path, "/"), d.Kind, d.Group, len(d.Events), d.Reason)
	w.WriteHeader(http.StatusNoContent)
}
