package notify

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestOneDigestPerRun adds 500 events to a run for a Slack and a webhook
// notifier: each endpoint gets exactly one request.
func TestOneDigestPerRun(t *testing.T) {
	checkLeaks(t)
	slackSrv, hookSrv := newRecorder(t), newRecorder(t)
	notifiers := map[string]Notifier{
		"growth-slack": NewSlack(slackSrv.url(), SlackOptions{HTTPOptions: testHTTP(t)}),
		"audit-hook":   NewWebhook(hookSrv.url(), testHTTP(t)),
		"unused":       NewWebhook(hookSrv.url(), testHTTP(t)),
	}
	env := newTestDispatcher(t, notifiers, Options{})

	run := env.d.StartRun(RunInfo{ID: "run-1", Group: "stop-loss", Accounts: []Account{{ID: "act_1", Name: "Acme US"}}})
	for i, e := range sampleEvents(500) {
		if i%100 == 99 {
			e.Result = "failed"
		}
		run.Add(e, "growth-slack", "audit-hook", "growth-slack") // a duplicate name counts once
	}
	if got := run.Finish(); got != 2 {
		t.Errorf("Finish queued %d digests, want 2", got)
	}
	if got := run.Finish(); got != 0 {
		t.Errorf("second Finish queued %d", got)
	}
	run.Add(sampleEvents(1)[0], "growth-slack") // ignored after Finish
	env.close(t)

	if slackSrv.count() != 1 || hookSrv.count() != 1 {
		t.Fatalf("requests: slack %d, webhook %d; want 1 each", slackSrv.count(), hookSrv.count())
	}
	m := decodeSlack(t, slackSrv.request(0).body)
	if !strings.Contains(m.Blocks[0].Text.Text, "500 decisions") || !strings.Contains(m.Text, "applied: 495 · failed: 5") {
		t.Errorf("slack header %q, text %q", m.Blocks[0].Text.Text, m.Text)
	}
	var p webhookPayload
	if err := json.Unmarshal(hookSrv.request(0).body, &p); err != nil {
		t.Fatal(err)
	}
	if len(p.Events) != 500 || p.Total != 500 || p.Counts["failed"] != 5 || p.RunID != "run-1" || p.Group != "stop-loss" {
		t.Errorf("webhook digest: %d events, total %d, counts %v, run %q, group %q", len(p.Events), p.Total, p.Counts, p.RunID, p.Group)
	}
	if env.counter(t, "growth-slack", "sent") != 1 || env.counter(t, "audit-hook", "sent") != 1 {
		t.Error("sent counters")
	}
	// Known notifiers start at 0, so alerts on them work from the first scrape.
	if env.counter(t, "unused", "failed") != 0 || env.counter(t, "unused", "dropped") != 0 {
		t.Error("unused notifier's series should exist at 0")
	}
}

func TestRunKeepsAtMostMaxEvents(t *testing.T) {
	checkLeaks(t)
	var got Digest
	n := NotifierFunc(func(_ context.Context, d Digest) (bool, error) { got = d; return false, nil })
	env := newTestDispatcher(t, map[string]Notifier{"n": n}, Options{MaxEventsPerDigest: 100})
	run := env.d.StartRun(RunInfo{ID: "r", Group: "g"})
	for _, e := range sampleEvents(150) {
		e.RunID, e.Group = "", "" // filled from the run
		run.Add(e, "n")
	}
	run.Finish()
	env.close(t)
	if len(got.Events) != 100 || got.Omitted != 50 || got.Total() != 150 || got.Counts["applied"] != 150 {
		t.Errorf("events %d, omitted %d, counts %v", len(got.Events), got.Omitted, got.Counts)
	}
	if got.Events[0].RunID != "r" || got.Events[0].Group != "g" || !got.Time.Equal(testNow) {
		t.Errorf("run info not filled: %+v", got.Events[0])
	}
}

func TestRetryOn500ThenSuccess(t *testing.T) {
	checkLeaks(t)
	rec := newRecorder(t, status(500, "oops"), status(502, "bad gateway"), status(200, "ok"))
	env := newTestDispatcher(t, map[string]Notifier{"hook": NewWebhook(rec.url(), testHTTP(t))},
		Options{BackoffBase: time.Second, BackoffMax: 30 * time.Second})
	if !env.d.Send("hook", Digest{Events: sampleEvents(1)}) {
		t.Fatal("Send dropped")
	}
	env.close(t)
	if rec.count() != 3 {
		t.Fatalf("%d requests, want 3", rec.count())
	}
	// Jitter 0.5: half of the exponential step is fixed, the other half random.
	waits := env.sleep.all()
	if len(waits) != 2 || waits[0] != 750*time.Millisecond || waits[1] != 1500*time.Millisecond {
		t.Errorf("waits = %v, want [750ms 1.5s]", waits)
	}
	if env.counter(t, "hook", "sent") != 1 || env.counter(t, "hook", "failed") != 0 {
		t.Error("counters")
	}
	if n := env.logs.FilterMessage("notification failed, retrying").Len(); n != 2 {
		t.Errorf("%d retry log lines, want 2", n)
	}
	assertNoSecretInLogs(t, env.logs, secretToken, "/services/")
}

func TestRetryAfterHonoured(t *testing.T) {
	checkLeaks(t)
	rec := newRecorder(t, status(429, "rate_limited", "Retry-After", "7"), status(200, "ok"))
	env := newTestDispatcher(t, map[string]Notifier{"slack": NewSlack(rec.url(), SlackOptions{HTTPOptions: testHTTP(t)})}, Options{})
	env.d.Send("slack", Digest{Events: sampleEvents(1)})
	env.close(t)
	if rec.count() != 2 {
		t.Fatalf("%d requests, want 2", rec.count())
	}
	if waits := env.sleep.all(); len(waits) != 1 || waits[0] != 7*time.Second {
		t.Errorf("waits = %v, want [7s] (the server's Retry-After, longer than the backoff)", waits)
	}
	if env.counter(t, "slack", "sent") != 1 {
		t.Error("not counted as sent")
	}
}

func TestRetryAfterTooLongGivesUp(t *testing.T) {
	checkLeaks(t)
	rec := newRecorder(t, status(429, "", "Retry-After", "3600"))
	env := newTestDispatcher(t, map[string]Notifier{"hook": NewWebhook(rec.url(), testHTTP(t))}, Options{MaxRetryAfter: time.Minute})
	env.d.Send("hook", Digest{Events: sampleEvents(1)})
	env.close(t)
	if rec.count() != 1 || len(env.sleep.all()) != 0 || env.counter(t, "hook", "failed") != 1 {
		t.Errorf("requests %d, waits %v, failed %v", rec.count(), env.sleep.all(), env.counter(t, "hook", "failed"))
	}
}

func TestNoRetryOn400(t *testing.T) {
	checkLeaks(t)
	rec := newRecorder(t, status(400, "invalid_payload"))
	env := newTestDispatcher(t, map[string]Notifier{"slack": NewSlack(rec.url(), SlackOptions{HTTPOptions: testHTTP(t)})}, Options{})
	env.d.Send("slack", Digest{Events: sampleEvents(1)})
	env.close(t)
	if rec.count() != 1 || len(env.sleep.all()) != 0 {
		t.Fatalf("requests %d, waits %v; want 1 request, no retry", rec.count(), env.sleep.all())
	}
	if env.counter(t, "slack", "failed") != 1 {
		t.Error("not counted as failed")
	}
	entries := env.logs.FilterMessage("notification failed").All()
	if len(entries) != 1 {
		t.Fatalf("%d failure lines", len(entries))
	}
	fields := entries[0].ContextMap()
	if fields["notifier"] != "slack" || fields["reason"] != "not retryable" ||
		!strings.Contains(fields["error"].(string), "400 Bad Request: invalid_payload") {
		t.Errorf("log fields = %v", fields)
	}
	assertNoSecretInLogs(t, env.logs, secretToken, "/services/")
}

func TestAttemptsExhausted(t *testing.T) {
	checkLeaks(t)
	rec := newRecorder(t, status(503, "down"))
	env := newTestDispatcher(t, map[string]Notifier{"hook": NewWebhook(rec.url(), testHTTP(t))}, Options{MaxAttempts: 3})
	env.d.Send("hook", Digest{Events: sampleEvents(1)})
	env.close(t)
	if rec.count() != 3 || env.counter(t, "hook", "failed") != 1 {
		t.Errorf("requests %d, failed %v", rec.count(), env.counter(t, "hook", "failed"))
	}
}

// TestHangingServerTimesOut: a server that never answers costs one Timeout
// per attempt, then the digest fails; the caller returned long before.
func TestHangingServerTimesOut(t *testing.T) {
	checkLeaks(t)
	release := make(chan struct{})
	rec := newRecorder(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	defer close(release) // before the server's Close, which waits for handlers
	env := newTestDispatcher(t, map[string]Notifier{"hook": NewWebhook(rec.url(), testHTTP(t))},
		Options{Timeout: 200 * time.Millisecond, MaxAttempts: 2})

	start := time.Now()
	if !env.d.Send("hook", Digest{Events: sampleEvents(1)}) {
		t.Fatal("dropped")
	}
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Errorf("Send blocked for %v", d)
	}
	env.close(t)
	if rec.count() != 2 {
		t.Errorf("%d attempts, want 2", rec.count())
	}
	if env.counter(t, "hook", "failed") != 1 {
		t.Error("not counted as failed")
	}
	entries := env.logs.FilterMessage("notification failed").All()
	if len(entries) != 1 || !strings.Contains(entries[0].ContextMap()["error"].(string), "deadline exceeded") {
		t.Errorf("failure log: %v", entries)
	}
	assertNoSecretInLogs(t, env.logs, secretToken, "/services/")
}

// TestFullQueueDropsWithoutBlocking fills the queue behind a notifier that
// blocks: Send keeps returning at once, drops and counts.
func TestFullQueueDropsWithoutBlocking(t *testing.T) {
	checkLeaks(t)
	started := make(chan struct{}, 10)
	gate := make(chan struct{})
	var sent atomic.Int32
	n := NotifierFunc(func(ctx context.Context, _ Digest) (bool, error) {
		started <- struct{}{}
		select {
		case <-gate:
			sent.Add(1)
			return false, nil
		case <-ctx.Done():
			return true, ctx.Err()
		}
	})
	env := newTestDispatcher(t, map[string]Notifier{"slow": n}, Options{QueueSize: 2, Concurrency: 1, Timeout: time.Minute})

	if !env.d.Send("slow", Digest{}) {
		t.Fatal("first Send dropped")
	}
	<-started // the worker holds the first digest; the queue is empty
	start := time.Now()
	var accepted int
	for range 10 {
		if env.d.Send("slow", Digest{}) {
			accepted++
		}
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("10 Sends took %v with a full queue (the notifier blocks for a minute)", d)
	}
	if accepted != 2 {
		t.Errorf("accepted %d, want 2 (the queue size)", accepted)
	}
	if got := env.counter(t, "slow", "dropped"); got != 8 {
		t.Errorf("dropped = %v, want 8", got)
	}
	if env.logs.FilterMessage("notification dropped").Len() != 8 {
		t.Error("drops not logged")
	}
	close(gate)
	env.close(t)
	if sent.Load() != 3 {
		t.Errorf("sent %d, want 3", sent.Load())
	}
	if env.d.Send("slow", Digest{}) {
		t.Error("Send after Close accepted")
	}
}

func TestUnknownNotifierDropped(t *testing.T) {
	checkLeaks(t)
	env := newTestDispatcher(t, map[string]Notifier{}, Options{})
	run := env.d.StartRun(RunInfo{ID: "r"})
	run.Add(sampleEvents(1)[0], "nope")
	if run.Finish() != 0 {
		t.Error("queued for an unknown notifier")
	}
	env.close(t)
	if env.counter(t, "nope", "dropped") != 1 {
		t.Error("not counted")
	}
}

// TestCloseDrains: Close waits for what is queued.
func TestCloseDrains(t *testing.T) {
	checkLeaks(t)
	gate := make(chan struct{})
	var sent atomic.Int32
	n := NotifierFunc(func(ctx context.Context, _ Digest) (bool, error) {
		<-gate
		sent.Add(1)
		return false, nil
	})
	env := newTestDispatcher(t, map[string]Notifier{"n": n}, Options{Concurrency: 2})
	for range 5 {
		env.d.Send("n", Digest{})
	}
	closed := make(chan error, 1)
	go func() { closed <- env.d.Close(context.Background()) }()
	select {
	case err := <-closed:
		t.Fatalf("Close returned %v before the queue was sent", err)
	case <-time.After(20 * time.Millisecond):
	}
	close(gate)
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if sent.Load() != 5 || env.counter(t, "n", "sent") != 5 {
		t.Errorf("sent %d", sent.Load())
	}
	if err := env.d.Close(context.Background()); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestCloseGivesUpAtDeadline: a notifier that never finishes on its own is
// cancelled when Close's context ends; what is left is dropped, and no
// goroutine survives.
func TestCloseGivesUpAtDeadline(t *testing.T) {
	checkLeaks(t)
	started := make(chan struct{}, 1)
	n := NotifierFunc(func(ctx context.Context, _ Digest) (bool, error) {
		started <- struct{}{}
		<-ctx.Done()
		return true, ctx.Err()
	})
	env := newTestDispatcher(t, map[string]Notifier{"stuck": n}, Options{Concurrency: 1, Timeout: time.Hour})
	for range 4 {
		env.d.Send("stuck", Digest{})
	}
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := env.d.Close(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close = %v, want DeadlineExceeded", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Close took %v", d)
	}
	if f, d := env.counter(t, "stuck", "failed"), env.counter(t, "stuck", "dropped"); f != 1 || d != 3 {
		t.Errorf("failed %v, dropped %v; want 1 and 3", f, d)
	}
}

// TestConnectionRefusedNoSecretInLogs runs a digest through the whole
// dispatcher to a closed port whose URL carries the secret in path and query.
func TestConnectionRefusedNoSecretInLogs(t *testing.T) {
	checkLeaks(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	files := map[string]string{"/run/secrets/slack": "http://" + addr + "/services/T0/B0/" + secretToken + "?token=" + secretToken + "\n"}
	notifiers, err := Build([]Config{
		{Name: "s", Type: TypeSlack, URLFile: "/run/secrets/slack"},
		{Name: "w", Type: TypeWebhook, URL: NewSecret("http://" + addr + "/hook/" + secretToken)},
	}, fakeFiles(files), BuildOptions{HTTPOptions: testHTTP(t)})
	if err != nil {
		t.Fatal(err)
	}
	env := newTestDispatcher(t, notifiers, Options{MaxAttempts: 3})
	run := env.d.StartRun(RunInfo{ID: "r", Group: "g"})
	run.Add(sampleEvents(1)[0], "s", "w")
	run.Finish()
	env.close(t)
	if env.counter(t, "s", "failed") != 1 || env.counter(t, "w", "failed") != 1 {
		t.Error("not counted as failed")
	}
	if env.logs.FilterMessage("notification failed, retrying").Len() != 4 {
		t.Errorf("want 2 retries per notifier: %v", env.logs.All())
	}
	var sawRefused bool
	for _, e := range env.logs.All() {
		if s, _ := e.ContextMap()["error"].(string); strings.Contains(s, "connection refused") {
			sawRefused = true
		}
	}
	if !sawRefused {
		t.Error("the logs should still say what went wrong")
	}
	assertNoSecretInLogs(t, env.logs, secretToken, "/services/", "/hook/")
}

// TestRedactsCustomNotifierErrors: the dispatcher strips URLs even from a
// notifier that forgot to.
func TestRedactsCustomNotifierErrors(t *testing.T) {
	checkLeaks(t)
	n := NotifierFunc(func(ctx context.Context, _ Digest) (bool, error) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://127.0.0.1:1/x/"+secretToken, nil)
		resp, err := (&http.Client{Transport: &http.Transport{}}).Do(req)
		if err == nil {
			resp.Body.Close()
		}
		return false, err
	})
	env := newTestDispatcher(t, map[string]Notifier{"custom": n}, Options{})
	env.d.Send("custom", Digest{})
	env.close(t)
	if env.logs.FilterMessage("notification failed").Len() != 1 {
		t.Fatal("no failure logged")
	}
	assertNoSecretInLogs(t, env.logs, secretToken)
}

func TestUpdateNotifiers(t *testing.T) {
	checkLeaks(t)
	var a, b atomic.Int32
	aDone := make(chan struct{})
	na := NotifierFunc(func(context.Context, Digest) (bool, error) { a.Add(1); close(aDone); return false, nil })
	nb := NotifierFunc(func(context.Context, Digest) (bool, error) { b.Add(1); return false, nil })
	env := newTestDispatcher(t, map[string]Notifier{"a": na}, Options{})
	env.d.Send("a", Digest{})
	<-aDone
	waitFor(t, func() bool { return env.counter(t, "a", "sent") == 1 })
	env.d.Update(map[string]Notifier{"b": nb})
	if env.d.Send("a", Digest{}) {
		t.Error("removed notifier accepted")
	}
	env.d.Send("b", Digest{})
	env.close(t)
	if a.Load() != 1 || b.Load() != 1 {
		t.Errorf("a %d, b %d", a.Load(), b.Load())
	}
	// A removed notifier's series are deleted with it; only the drop after
	// the removal is left.
	mfs, _ := env.reg.Gather()
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			l := map[string]string{}
			for _, lp := range m.GetLabel() {
				l[lp.GetName()] = lp.GetValue()
			}
			if l["notifier"] == "a" && l["result"] != "dropped" {
				t.Errorf("stale series for a removed notifier: %v", l)
			}
		}
	}
	if env.counter(t, "a", "dropped") != 1 {
		t.Error("drop after removal not counted")
	}
}

// TestMetricsSurviveRebuild: a reload makes a new Dispatcher on the same
// registry; it must reuse the counter rather than fail.
func TestMetricsSurviveRebuild(t *testing.T) {
	checkLeaks(t)
	env := newTestDispatcher(t, map[string]Notifier{"a": NotifierFunc(func(context.Context, Digest) (bool, error) { return false, nil })}, Options{})
	env.d.Send("a", Digest{})
	env.close(t)
	d2, err := NewDispatcher(nil, Options{Registerer: env.reg})
	if err != nil {
		t.Fatalf("second dispatcher on the same registry: %v", err)
	}
	if err := d2.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if env.counter(t, "a", "sent") != 1 {
		t.Error("counter lost")
	}
}

func TestBackoff(t *testing.T) {
	d := &Dispatcher{opts: Options{BackoffBase: time.Second, BackoffMax: 10 * time.Second, Jitter: func() float64 { return 0 }}}
	var got []time.Duration
	for attempt := 1; attempt <= 6; attempt++ {
		got = append(got, d.backoff(attempt))
	}
	want := []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second, 5 * time.Second, 5 * time.Second}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("backoff = %v, want %v", got, want)
			break
		}
	}
	d.opts.Jitter = func() float64 { return 0.999 }
	if b := d.backoff(10); b >= 10*time.Second || b < 9*time.Second {
		t.Errorf("max jittered backoff = %v", b)
	}
}

// waitFor polls cond for up to a few seconds.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(3 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("condition not met")
		}
	}
}

func TestNilDispatcherDiscards(t *testing.T) {
	var d *Dispatcher
	run := d.StartRun(RunInfo{ID: "r"})
	run.Add(Event{}, "x")
	if run.Finish() != 0 || d.Send("x", Digest{}) || d.Close(context.Background()) != nil {
		t.Error("a nil Dispatcher should discard")
	}
	d.Update(nil)
}
