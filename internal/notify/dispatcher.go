package notify

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/rulesd/rulesd/internal/metrics"
)

// Defaults of Options.
const (
	DefaultQueueSize          = 256
	DefaultConcurrency        = 4
	DefaultTimeout            = 10 * time.Second
	DefaultMaxAttempts        = 5
	DefaultBackoffBase        = time.Second
	DefaultBackoffMax         = 30 * time.Second
	DefaultMaxRetryAfter      = 2 * time.Minute
	DefaultMaxEventsPerDigest = 1000
)

// Results of rulesd_notifications_total.
const (
	resultSent    = "sent"
	resultFailed  = "failed"
	resultDropped = "dropped"
)

// Options configures a Dispatcher. The zero value is usable.
type Options struct {
	// Logger receives one line per failed, retried or dropped digest (and a
	// debug line per sent one); nil means no logging.
	Logger *zap.Logger
	// Registerer receives rulesd_notifications_total{notifier,result}; nil
	// means no metrics. Registering twice (a reload building a new
	// Dispatcher) reuses the collector already registered.
	Registerer prometheus.Registerer
	// QueueSize bounds the digests waiting to be sent; when it is full, new
	// digests are dropped (and counted) rather than blocking the run.
	QueueSize int
	// Concurrency is how many digests are sent at once.
	Concurrency int
	// Timeout bounds one attempt to send one digest.
	Timeout time.Duration
	// MaxAttempts bounds the attempts per digest, the first included.
	MaxAttempts int
	// BackoffBase and BackoffMax shape the exponential backoff between
	// attempts: base·2^(n-1), at most max, of which a random half is
	// jitter (so that many runs failing together do not retry together).
	BackoffBase time.Duration
	BackoffMax  time.Duration
	// MaxRetryAfter is the longest Retry-After honoured; a server asking for
	// more makes the digest fail now instead of holding a worker that long.
	MaxRetryAfter time.Duration
	// MaxEventsPerDigest bounds the events a Run keeps per notifier; the rest
	// are only counted (Digest.Omitted, Digest.Counts).
	MaxEventsPerDigest int
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// Sleep waits for d or until ctx is done, returning ctx.Err() then; nil
	// means a timer. Tests inject one that returns at once.
	Sleep func(ctx context.Context, d time.Duration) error
	// Jitter returns a random number in [0, 1); nil means math/rand/v2.
	Jitter func() float64
}

func (o Options) withDefaults() Options {
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.QueueSize <= 0 {
		o.QueueSize = DefaultQueueSize
	}
	if o.Concurrency <= 0 {
		o.Concurrency = DefaultConcurrency
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = DefaultMaxAttempts
	}
	if o.BackoffBase <= 0 {
		o.BackoffBase = DefaultBackoffBase
	}
	if o.BackoffMax <= 0 {
		o.BackoffMax = DefaultBackoffMax
	}
	if o.MaxRetryAfter <= 0 {
		o.MaxRetryAfter = DefaultMaxRetryAfter
	}
	if o.MaxEventsPerDigest <= 0 {
		o.MaxEventsPerDigest = DefaultMaxEventsPerDigest
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Sleep == nil {
		o.Sleep = sleep
	}
	if o.Jitter == nil {
		o.Jitter = rand.Float64
	}
	return o
}

// sleep waits for d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Dispatcher sends digests in the background so that notifying can never
// slow down or fail an action: enqueueing never blocks (a full queue drops
// and counts), a bounded pool of workers sends, retries retryable failures
// with backoff, and gives each attempt a deadline. Close stops it.
//
// It is safe for concurrent use. A nil *Dispatcher discards everything, so
// code paths without notifiers (tests, `rulesd preview`) need no checks.
type Dispatcher struct {
	opts    Options
	log     *zap.Logger
	metrics *prometheus.CounterVec

	// mu guards notifiers and closed, and orders every send on queue before
	// Close closes it.
	mu        sync.RWMutex
	notifiers map[string]Notifier
	closed    bool

	queue chan job
	// ctx is cancelled when Close gives up: in-flight attempts and backoff
	// waits end, and what is left in the queue is dropped.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	closeOnce sync.Once
	done      chan struct{}
}

// job is one digest for one notifier.
type job struct {
	name string
	n    Notifier
	d    Digest
}

// NewDispatcher starts a dispatcher for notifiers (by name) and its workers.
// It fails only when the metrics cannot be registered.
func NewDispatcher(notifiers map[string]Notifier, opts Options) (*Dispatcher, error) {
	opts = opts.withDefaults()
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	d := &Dispatcher{
		opts:    opts,
		log:     opts.Logger.With(zap.String("component", "notify")),
		metrics: m,
		queue:   make(chan job, opts.QueueSize),
		ctx:     ctx,
		cancel:  cancel,
		done:    make(chan struct{}),
	}
	d.Update(notifiers)
	d.wg.Add(opts.Concurrency)
	for range opts.Concurrency {
		go d.worker()
	}
	return d, nil
}

// newMetrics makes (or finds, after a reload) rulesd_notifications_total.
func newMetrics(reg prometheus.Registerer) (*prometheus.CounterVec, error) {
	c, err := metrics.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "rulesd_notifications_total",
		Help: "Digests handled by notifier and result: sent, failed (after retries) or dropped (queue full, unknown notifier, shutdown).",
	}, []string{"notifier", "result"}))
	if err != nil {
		return nil, fmt.Errorf("notify: registering metrics: %w", err)
	}
	return c, nil
}

// Update replaces the notifiers (on reload). Digests already queued go to
// the notifier they were queued for. Counters of new names start at 0 so
// that alerts on them work from the first scrape; series of removed names
// are deleted.
func (d *Dispatcher) Update(notifiers map[string]Notifier) {
	if d == nil {
		return
	}
	m := make(map[string]Notifier, len(notifiers))
	for name, n := range notifiers {
		m[name] = n
		for _, r := range []string{resultSent, resultFailed, resultDropped} {
			d.metrics.WithLabelValues(name, r)
		}
	}
	d.mu.Lock()
	old := d.notifiers
	d.notifiers = m
	d.mu.Unlock()
	for name := range old {
		if _, ok := m[name]; !ok {
			for _, r := range []string{resultSent, resultFailed, resultDropped} {
				d.metrics.DeleteLabelValues(name, r)
			}
		}
	}
}

// Send queues d for the notifier called name and returns at once: true when
// queued, false when dropped (queue full, unknown name, closed) — which is
// logged and counted, and never the caller's problem. Use it for alerts
// outside a run's digest (guard tripped, flapping, auth failure).
func (d *Dispatcher) Send(name string, dg Digest) bool {
	if d == nil {
		return false
	}
	dg.normalize()
	if dg.Time.IsZero() {
		dg.Time = d.opts.Now()
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		d.drop(name, dg, "dispatcher closed")
		return false
	}
	n, ok := d.notifiers[name]
	if !ok {
		d.drop(name, dg, "unknown notifier")
		return false
	}
	select {
	case d.queue <- job{name: name, n: n, d: dg}:
		return true
	default:
		d.drop(name, dg, "queue full")
		return false
	}
}

// drop counts and logs a digest that will not be sent.
func (d *Dispatcher) drop(name string, dg Digest, why string) {
	d.metrics.WithLabelValues(name, resultDropped).Inc()
	d.log.Warn("notification dropped", append(digestFields(name, dg), zap.String("reason", why))...)
}

// digestFields are the log fields that identify a digest. The notifier's
// name, never its URL.
func digestFields(name string, dg Digest) []zap.Field {
	return []zap.Field{
		zap.String("notifier", name),
		zap.String("kind", string(dg.kind())),
		zap.String("run_id", dg.RunID),
		zap.String("group", dg.Group),
		zap.Int("events", dg.Total()),
	}
}

func (d *Dispatcher) worker() {
	defer d.wg.Done()
	for j := range d.queue {
		if d.ctx.Err() != nil {
			// Close gave up: do not start anything new.
			d.drop(j.name, j.d, "shutdown deadline")
			continue
		}
		d.deliver(j)
	}
}

// deliver sends one digest, retrying retryable failures.
func (d *Dispatcher) deliver(j job) {
	fields := digestFields(j.name, j.d)
	for attempt := 1; ; attempt++ {
		ctx, cancel := context.WithTimeout(d.ctx, d.opts.Timeout)
		retryable, err := j.n.Notify(ctx, j.d)
		cancel()
		if err == nil {
			d.metrics.WithLabelValues(j.name, resultSent).Inc()
			d.log.Debug("notification sent", append(fields, zap.Int("attempt", attempt))...)
			return
		}
		// Notifiers redact their own errors; this catches one that does not
		// (a *url.Error from a custom Notifier).
		err = RedactError(err)
		fail := func(why string) {
			d.metrics.WithLabelValues(j.name, resultFailed).Inc()
			d.log.Error("notification failed", append(fields,
				zap.Int("attempt", attempt), zap.String("reason", why), zap.Error(err))...)
		}
		switch {
		case !retryable:
			fail("not retryable")
			return
		case attempt >= d.opts.MaxAttempts:
			fail("attempts exhausted")
			return
		case d.ctx.Err() != nil:
			fail("shutdown deadline")
			return
		}
		wait := d.backoff(attempt)
		if ra, ok := RetryAfter(err); ok {
			if ra > d.opts.MaxRetryAfter {
				fail(fmt.Sprintf("Retry-After %s exceeds %s", ra, d.opts.MaxRetryAfter))
				return
			}
			wait = max(wait, ra)
		}
		d.log.Warn("notification failed, retrying", append(fields,
			zap.Int("attempt", attempt), zap.Duration("wait", wait), zap.Error(err))...)
		if d.opts.Sleep(d.ctx, wait) != nil {
			fail("shutdown deadline")
			return
		}
	}
}

// backoff is the wait after the given failed attempt: exponential with
// equal jitter, in [b/2, b) for b = base·2^(attempt-1) capped at BackoffMax.
func (d *Dispatcher) backoff(attempt int) time.Duration {
	b := d.opts.BackoffBase
	for i := 1; i < attempt && b < d.opts.BackoffMax; i++ {
		b *= 2
	}
	b = min(b, d.opts.BackoffMax)
	return b/2 + time.Duration(d.opts.Jitter()*float64(b/2))
}

// Close stops accepting digests and waits until the queued ones are sent.
// When ctx ends first it gives up: attempts in flight are cancelled, the
// rest of the queue is dropped (counted), and Close returns ctx's error once
// every worker has returned — no goroutine outlives Close. Calling Close
// again waits the same way.
func (d *Dispatcher) Close(ctx context.Context) error {
	if d == nil {
		return nil
	}
	d.closeOnce.Do(func() {
		d.mu.Lock()
		d.closed = true
		close(d.queue)
		d.mu.Unlock()
		go func() {
			d.wg.Wait()
			d.cancel()
			close(d.done)
		}()
	})
	select {
	case <-d.done:
		return nil
	case <-ctx.Done():
		d.cancel()
		<-d.done
		return fmt.Errorf("notify: closing: gave up draining the queue: %w", ctx.Err())
	}
}

// RunInfo identifies a run for its digests.
type RunInfo struct {
	// ID is the run id of the audit log.
	ID string
	// Group is the rule group.
	Group string
	// Accounts are the accounts of the run.
	Accounts []Account
}

// Run collects the events of one run per notifier, so that each notifier gets
// one digest per run (not one message per object). Create it with StartRun,
// Add events while the run decides, and Finish at the end. It is safe for
// concurrent use.
type Run struct {
	d    *Dispatcher
	info RunInfo

	mu       sync.Mutex
	byName   map[string]*Digest
	order    []string
	finished bool
}

// StartRun begins collecting the events of a run. On a nil Dispatcher it
// returns a nil *Run, whose methods do nothing.
func (d *Dispatcher) StartRun(info RunInfo) *Run {
	if d == nil {
		return nil
	}
	return &Run{d: d, info: info, byName: make(map[string]*Digest)}
}

// Add records e for each named notifier (a rule's `notify:` list). It never
// blocks on the network. Events added after Finish are ignored.
func (r *Run) Add(e Event, notifiers ...string) {
	if r == nil || len(notifiers) == 0 {
		return
	}
	if e.Time.IsZero() {
		e.Time = r.d.opts.Now()
	}
	if e.RunID == "" {
		e.RunID = r.info.ID
	}
	if e.Group == "" {
		e.Group = r.info.Group
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.finished {
		r.d.log.Debug("notification event after the run finished",
			zap.String("run_id", r.info.ID), zap.String("rule", e.Rule))
		return
	}
	for i, name := range notifiers {
		if containsBefore(notifiers, i) {
			continue // a rule naming a notifier twice still gets one line
		}
		dg, ok := r.byName[name]
		if !ok {
			dg = &Digest{
				Kind:     KindRun,
				RunID:    r.info.ID,
				Group:    r.info.Group,
				Accounts: r.info.Accounts,
				Counts:   make(map[string]int),
			}
			r.byName[name] = dg
			r.order = append(r.order, name)
		}
		dg.Counts[e.Result]++
		if len(dg.Events) < r.d.opts.MaxEventsPerDigest {
			dg.Events = append(dg.Events, e)
		} else {
			dg.Omitted++
		}
	}
}

// containsBefore reports whether names[i] also appears before index i.
func containsBefore(names []string, i int) bool {
	for _, n := range names[:i] {
		if n == names[i] {
			return true
		}
	}
	return false
}

// Finish queues one digest per notifier that received events and returns
// how many were queued (not dropped). Later calls do nothing.
func (r *Run) Finish() int {
	if r == nil {
		return 0
	}
	r.mu.Lock()
	if r.finished {
		r.mu.Unlock()
		return 0
	}
	r.finished = true
	byName, order := r.byName, r.order
	r.byName, r.order = nil, nil
	r.mu.Unlock()

	now := r.d.opts.Now()
	queued := 0
	for _, name := range order {
		dg := byName[name]
		dg.Time = now
		if r.d.Send(name, *dg) {
			queued++
		}
	}
	return queued
}

// RegisterMetrics registers rulesd_notifications_total on reg (or finds it there).
func RegisterMetrics(reg prometheus.Registerer) error {
	_, err := newMetrics(reg)
	return err
}
