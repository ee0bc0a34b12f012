package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.uber.org/zap"

	"github.com/rulesd/rulesd/internal/actions"
	"github.com/rulesd/rulesd/internal/config"
	"github.com/rulesd/rulesd/internal/diag"
	"github.com/rulesd/rulesd/internal/engine"
	"github.com/rulesd/rulesd/internal/insights"
	"github.com/rulesd/rulesd/internal/metrics"
	"github.com/rulesd/rulesd/internal/notify"
	"github.com/rulesd/rulesd/internal/rules"
	"github.com/rulesd/rulesd/internal/state"
	"github.com/rulesd/rulesd/internal/version"
)

// Options configure Run.
type Options struct {
	ConfigPath string
	// DryRun makes every run dry (--dry-run).
	DryRun bool
	// Once runs every group once and returns (--once).
	Once bool
	// Listen overrides the config's listen address ("" keeps it).
	Listen string
	Logger *zap.Logger
	// Reload receives a value for every SIGHUP.
	Reload <-chan struct{}
	// Now is the clock; default time.Now. The demo runs a fast one.
	Now func() time.Time
	// OnRun receives every finished account run.
	OnRun func(engine.AccountRun)
	// OnListen is told the HTTP address once it listens.
	OnListen func(addr string)
	// Tick, when set, replaces the cron schedule: every group runs on each value
	// received (the demo's fast clock).
	Tick <-chan time.Time
	// OnTickDone, when set, is called with each Tick value once every group ran for it.
	OnTickDone func(at time.Time)
	// Stderr receives reload problems for people (the log has them too).
	Stderr io.Writer

	// noWatch turns the rule-file watch off, so that a test knows which trigger
	// reloaded.
	noWatch bool
}

// Daemon is a running rulesd.
type Daemon struct {
	opts     Options
	log      *zap.Logger
	reg      *prometheus.Registry
	metrics  *metrics.Engine
	store    state.Store
	engine   *engine.Engine
	reader   *insights.Reader
	sched    *engine.Scheduler
	notifier *notify.Dispatcher

	// reloadMu serialises reloads from reading the files to applying them, so that a
	// reload that read older files (HTTP and a file change at once) never replaces
	// the configuration a later one applied.
	reloadMu sync.Mutex
	// load reads the config and rule files; Load, replaced by tests.
	load func(configPath string) (*config.Config, *rules.Set, diag.List, error)

	killMu   sync.Mutex
	mu       sync.Mutex
	cfg      *config.Config
	set      *rules.Set
	reloadOK bool
	reloadAt time.Time
	reloadEr []string
	// loadHash is contentHash just after the start-up load, the watch's baseline.
	loadHash [32]byte
}

// Run runs the daemon until ctx is done (or, with Once, until every group ran once).
// With Once, ok reports whether every run succeeded with no failed action and no
// guard tripped.
func Run(ctx context.Context, opts Options) (ok bool, err error) {
	d, err := start(ctx, opts)
	if err != nil {
		return false, err
	}
	if opts.Once {
		defer d.closeWithin(onceDrainTimeout)
		return d.runOnce(ctx), nil
	}
	defer d.close()
	return true, d.serve(ctx)
}

func start(ctx context.Context, opts Options) (*Daemon, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Stderr == nil {
		opts.Stderr = io.Discard
	}
	cfg, set, warns, err := Load(opts.ConfigPath)
	if err != nil {
		return nil, fmt.Errorf("load config and rules:\n%w", err)
	}
	log := opts.Logger
	if log == nil {
		log = zap.NewNop()
	}
	for _, w := range warns.Warnings() {
		log.Warn("rule file warning", zap.String("warning", w.String()))
	}
	d := &Daemon{opts: opts, log: log, cfg: cfg, set: set, reloadOK: true, reloadAt: opts.Now(), load: Load}
	d.loadHash = d.contentHash()
	d.reg = prometheus.NewRegistry()
	d.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if d.metrics, err = RegisterMetrics(d.reg); err != nil {
		return nil, err
	}
	d.metrics.ReloadSuccessful.Set(1)
	d.metrics.ReloadSuccessTime.Set(float64(time.Now().Unix()))
	dsn := cfg.State.DSN
	if cfg.State.Driver == "sqlite" {
		dsn = cfg.Resolve(dsn)
	}
	if d.store, err = state.Open(ctx, cfg.State.Driver, dsn); err != nil {
		return nil, fmt.Errorf("open state store: %w", err)
	}
	g, err := newGraph(cfg, d.reg, log, graphOptions{})
	if err != nil {
		d.store.Close()
		return nil, err
	}
	if d.reader, err = insights.NewReader(insights.Options{Graph: g, Config: cfg, Logger: log.Named("insights"), Registerer: d.reg}); err != nil {
		d.store.Close()
		return nil, err
	}
	if d.notifier, err = d.newNotifier(cfg); err != nil {
		d.store.Close()
		return nil, err
	}
	d.engine, err = engine.New(engine.Options{
		Config: cfg, Rules: set, Reader: d.reader, Executor: actions.NewExecutor(g, log.Named("actions")),
		Store: d.store, Notify: d.notifier, Metrics: d.metrics, Logger: log, DryRun: opts.DryRun,
		Now: opts.Now, OnRun: opts.OnRun, Owner: ownerName(), Concurrency: cfg.Graph.MaxInFlight,
	})
	if err != nil {
		d.store.Close()
		return nil, err
	}
	if err := d.engine.Reconcile(ctx); err != nil {
		log.Error("reconcile unfinished intents at start-up", zap.Error(err))
	}
	if err := d.updateKillGauge(ctx); err != nil {
		log.Warn("read kill switches", zap.Error(err))
	}
	d.sched = engine.NewScheduler(d.engine, d.accountLocation)
	return d, nil
}

func ownerName() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s-%d", host, os.Getpid())
}

func (d *Daemon) newNotifier(cfg *config.Config) (*notify.Dispatcher, error) {
	ns, err := buildNotifiers(cfg)
	if err != nil {
		return nil, err
	}
	return notify.NewDispatcher(ns, notify.Options{Logger: d.log.Named("notify"), Registerer: d.reg})
}

func buildNotifiers(cfg *config.Config) (map[string]notify.Notifier, error) {
	var cs []notify.Config
	for _, n := range cfg.Notifiers {
		file := n.WebhookURLFile
		if file == "" {
			file = n.URLFile
		}
		c := notify.Config{Name: n.Name.Value, Type: n.Type.Value, URLFile: cfg.Resolve(file)}
		if file == "" {
			c.URLFile = ""
		}
		if n.URL != "" {
			c.URL = notify.NewSecret(n.URL)
		}
		cs = append(cs, c)
	}
	return notify.Build(cs, os.ReadFile, notify.BuildOptions{HTTPOptions: notify.HTTPOptions{Version: version.Version}})
}

// accountLocation gives the scheduler an account's time zone (cached by the reader).
func (d *Daemon) accountLocation(ctx context.Context, acct string) (*time.Location, error) {
	a, err := d.reader.Account(ctx, acct)
	if err != nil {
		return nil, err
	}
	return a.Location, nil
}

// close closes the notifier (waiting notifyDrainTimeout for queued digests) and the
// store.
func (d *Daemon) close() { d.closeWithin(notifyDrainTimeout) }

// onceDrainTimeout bounds the wait for notifications after --once, which has no
// grace period to fit in.
const onceDrainTimeout = 10 * time.Second

func (d *Daemon) closeWithin(drain time.Duration) {
	cctx, cancel := context.WithTimeout(context.Background(), drain)
	defer cancel()
	if err := d.notifier.Close(cctx); err != nil {
		d.log.Warn("notifications not all sent at shutdown", zap.Error(err))
	}
	if err := d.store.Close(); err != nil {
		d.log.Warn("close state store", zap.Error(err))
	}
}

// runOnce runs every group once, now.
func (d *Daemon) runOnce(ctx context.Context) bool {
	ok := true
	at := d.opts.Now().Truncate(time.Second)
	for _, g := range d.engine.Rules().Groups {
		run, err := d.engine.RunGroup(ctx, g.Name, at)
		if err != nil {
			d.log.Error("group run", zap.String("group", g.Name), zap.Error(err))
			ok = false
			continue
		}
		if run.Result() != "success" {
			ok = false
		}
	}
	return ok
}

// serve runs the schedule, the HTTP server and the reload loop until ctx is done.
func (d *Daemon) serve(ctx context.Context) error {
	listen := d.cfg.Listen
	if d.opts.Listen != "" {
		listen = d.opts.Listen
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", listen, err)
	}
	if d.opts.OnListen != nil {
		d.opts.OnListen(ln.Addr().String())
	}
	srvErr := make(chan error, 1)
	go func() { srvErr <- d.serveHTTP(ctx, ln) }()

	watchCtx, stopWatch := context.WithCancel(ctx)
	watched := make(chan struct{})
	defer func() { stopWatch(); <-watched }() // the watch ends before Run returns
	changes := make(chan struct{}, 1)
	if d.opts.noWatch {
		close(watched)
	} else {
		go func() { defer close(watched); d.watch(watchCtx, changes) }()
	}

	if d.opts.Tick == nil {
		d.sched.Sync()
		d.sched.Start()
	}
	housekeeping := time.NewTicker(time.Hour)
	defer housekeeping.Stop()
	// Another replica (or a direct store edit) may engage a kill switch: the gauge
	// follows the store, not only this process's API calls.
	killRefresh := time.NewTicker(30 * time.Second)
	defer killRefresh.Stop()
	for {
		select {
		case <-ctx.Done():
			return d.shutdown(srvErr)
		case err := <-srvErr:
			d.stopSchedule()
			if ctx.Err() != nil { // the server saw ctx end first
				if err != nil && !errors.Is(err, context.Canceled) {
					return err
				}
				return nil
			}
			return fmt.Errorf("http server: %w", err)
		case <-d.opts.Reload:
			_ = d.reload(ctx, "signal")
		case <-changes:
			_ = d.reload(ctx, "file change")
		case at := <-d.opts.Tick:
			for _, g := range d.engine.Rules().Groups {
				if _, err := d.engine.RunGroup(ctx, g.Name, at); err != nil {
					d.log.Error("group run", zap.String("group", g.Name), zap.Error(err))
				}
			}
			if d.opts.OnTickDone != nil {
				d.opts.OnTickDone(at)
			}
		case <-housekeeping.C:
			d.prune(ctx)
		case <-killRefresh.C:
			if err := d.updateKillGauge(ctx); err != nil {
				d.log.Warn("read kill switches", zap.Error(err))
			}
		}
	}
}

// Shutdown budget (SPEC 7: exit within Kubernetes' 30 s grace period). The schedule
// stops at once while the HTTP server drains (server.ShutdownTimeout, 10 s) beside it;
// then the notifications still queued get what is left.
const (
	// schedStopTimeout bounds the wait for the write batches in flight.
	schedStopTimeout = 20 * time.Second
	// notifyDrainTimeout bounds the wait for queued notifications at shutdown.
	notifyDrainTimeout = 5 * time.Second
)

// shutdown stops the schedule once ctx is done: reads are cancelled, write batches
// in flight finish (intents stay consistent). It does so first, while the HTTP server
// (which sees the same ctx) drains its requests, then waits for the server's result
// on srvErr.
func (d *Daemon) shutdown(srvErr <-chan error) error {
	d.stopSchedule()
	if err := <-srvErr; err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// stopSchedule stops the scheduler: runs in flight are cancelled and their write
// batches finish, for at most schedStopTimeout.
func (d *Daemon) stopSchedule() {
	sctx, cancel := context.WithTimeout(context.Background(), schedStopTimeout)
	defer cancel()
	d.sched.Stop(sctx)
}

// prune deletes state older than the retention.
func (d *Daemon) prune(ctx context.Context) {
	now := d.opts.Now()
	d.mu.Lock() // a reload from the HTTP server may replace d.cfg meanwhile
	cutoff := now.Add(-d.cfg.State.Retention.Std())
	d.mu.Unlock()
	if _, err := d.store.PruneAudit(ctx, cutoff); err != nil {
		d.log.Warn("prune audit log", zap.Error(err))
	}
	// Changes and holds are kept as long as the audit log: an ended manual hold must
	// stay known, or a person's value would be taken for a new manual change again.
	if _, err := d.store.PruneHistory(ctx, cutoff); err != nil {
		d.log.Warn("prune change history", zap.Error(err))
	}
	if _, err := d.store.PruneCooldowns(ctx, now); err != nil {
		d.log.Warn("prune cooldowns", zap.Error(err))
	}
	if _, err := d.store.PruneIntents(ctx, cutoff); err != nil {
		d.log.Warn("prune intents", zap.Error(err))
	}
	if _, err := d.store.PrunePending(ctx, now.Add(-7*24*time.Hour)); err != nil {
		d.log.Warn("prune pending state", zap.Error(err))
	}
}

// Reload re-reads the config and rules (POST /-/reload). A bad reload keeps the
// last good config running and reports every problem.
func (d *Daemon) Reload(ctx context.Context) error { return d.reload(ctx, "http") }

// reload is Reload; trigger (http, signal, file change) goes to the log.
func (d *Daemon) reload(ctx context.Context, trigger string) error {
	d.reloadMu.Lock()
	defer d.reloadMu.Unlock()
	cfg, set, warns, err := d.load(d.opts.ConfigPath)
	var notifiers map[string]notify.Notifier
	if err == nil {
		// The notifiers are part of the config: a bad webhook_url_file fails the
		// reload like a bad rule, and keeps the last good notifiers.
		notifiers, err = buildNotifiers(cfg)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err != nil {
		d.reloadOK = false
		d.reloadEr = nil
		for _, e := range warns.Errors() {
			d.reloadEr = append(d.reloadEr, e.String())
		}
		if len(d.reloadEr) == 0 {
			d.reloadEr = []string{err.Error()}
		}
		d.metrics.ReloadSuccessful.Set(0)
		d.log.Error("reload failed; the previous rules keep running", zap.String("trigger", trigger), zap.Strings("errors", d.reloadEr))
		fmt.Fprintf(d.opts.Stderr, "reload failed; the previous rules keep running:\n%v\n", err)
		return err
	}
	old := d.set
	d.cfg, d.set = cfg, set
	d.reloadOK, d.reloadEr, d.reloadAt = true, nil, d.opts.Now()
	d.reader.Update(cfg)
	d.notifier.Update(notifiers)
	d.engine.Update(cfg, set)
	if d.opts.Tick == nil {
		d.sched.Sync()
	}
	// The new rules are live: their reset must happen even when the HTTP client that
	// asked for the reload has gone away meanwhile.
	d.resetChangedPending(context.WithoutCancel(ctx), old, set)
	d.metrics.ReloadSuccessful.Set(1)
	d.metrics.ReloadSuccessTime.Set(float64(time.Now().Unix()))
	for _, w := range warns.Warnings() {
		d.log.Warn("rule file warning", zap.String("warning", w.String()))
	}
	d.log.Info("reloaded", zap.String("trigger", trigger), zap.Int("groups", len(set.Groups)))
	return nil
}

// resetChangedPending resets for: state of rules whose where, when or window changed
// (SPEC 4.1).
func (d *Daemon) resetChangedPending(ctx context.Context, old, cur *rules.Set) {
	prev := map[string]*rules.Rule{}
	for _, g := range old.Groups {
		for _, r := range g.Rules {
			prev[g.Name+"\x00"+r.Name] = r
		}
	}
	for _, g := range cur.Groups {
		for _, r := range g.Rules {
			p, ok := prev[g.Name+"\x00"+r.Name]
			if ok && (p.Where != r.Where || p.When != r.When || p.Window != r.Window) {
				if err := d.store.ResetPending(ctx, g.Name, r.Name); err != nil {
					d.log.Warn("reset pending after reload", zap.String("group", g.Name), zap.String("rule", r.Name), zap.Error(err))
				}
			}
		}
	}
}

// updateKillGauge sets rulesd_kill_switch_engaged from the store.
func (d *Daemon) updateKillGauge(ctx context.Context) error {
	// One update at a time, so that two requests racing cannot leave a stale value.
	d.killMu.Lock()
	defer d.killMu.Unlock()
	ks, err := d.store.ListKillSwitches(ctx)
	if err != nil {
		return err
	}
	d.metrics.KillSwitch.Reset()
	d.metrics.KillSwitch.WithLabelValues("all").Set(0)
	for _, k := range ks {
		d.metrics.KillSwitch.WithLabelValues(k.Scope.String()).Set(1)
	}
	return nil
}
