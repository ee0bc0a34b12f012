package notify

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// checkLeaks fails the test when it ends with more goroutines than it began
// with. Call it first, so that its cleanup runs after every other one
// (servers closed, dispatchers closed). goleak is not a dependency of the
// module; counting is enough because these tests do not run in parallel.
func checkLeaks(t *testing.T) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(3 * time.Second)
		for {
			n := runtime.NumGoroutine()
			if n <= before {
				return
			}
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				buf = buf[:runtime.Stack(buf, true)]
				t.Errorf("goroutine leak: %d before, %d after\n%s", before, n, buf)
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	})
}

// testHTTP returns HTTP options with a transport of the test's own, whose idle
// connections are closed at the end (the default transport would keep them,
// and their goroutines, across tests).
func testHTTP(t *testing.T) HTTPOptions {
	t.Helper()
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return HTTPOptions{
		Client: &http.Client{
			Transport:     tr,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		Version: "1.2.3",
		Now:     func() time.Time { return testNow },
	}
}

var testNow = time.Date(2026, 11, 20, 10, 0, 5, 0, time.UTC)

// recorder is an httptest server that records requests and answers from a
// script of handlers (the last one repeats).
type recorder struct {
	srv *httptest.Server

	mu       sync.Mutex
	requests []recorded
	script   []http.HandlerFunc
}

type recorded struct {
	path   string
	header http.Header
	body   []byte
}

func newRecorder(t *testing.T, script ...http.HandlerFunc) *recorder {
	t.Helper()
	r := &recorder{script: script}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *recorder) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	r.requests = append(r.requests, recorded{path: req.URL.RequestURI(), header: req.Header.Clone(), body: body})
	i := len(r.requests) - 1
	h := func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) }
	if len(r.script) > 0 {
		h = r.script[min(i, len(r.script)-1)]
	}
	r.mu.Unlock()
	h(w, req)
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.requests)
}

func (r *recorder) request(i int) recorded {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.requests[i]
}

// url returns the server's URL with a secret-looking path.
func (r *recorder) url() Secret {
	return NewSecret(r.srv.URL + "/services/T0001/B0001/" + secretToken)
}

// secretToken appears in every test URL; no error or log line may contain it.
const secretToken = "XyZsecretTOKEN42"

func status(code int, body string, header ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		w.WriteHeader(code)
		_, _ = w.Write([]byte(body))
	}
}

// fakeSleep records the waits of a dispatcher and returns at once.
type fakeSleep struct {
	mu    sync.Mutex
	waits []time.Duration
}

func (s *fakeSleep) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.waits = append(s.waits, d)
	s.mu.Unlock()
	return ctx.Err()
}

func (s *fakeSleep) all() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.waits...)
}

// testDispatcher makes a dispatcher with a registry, an observed logger, a
// fake sleep and fixed jitter, closed at the end of the test.
type testDispatcherEnv struct {
	d     *Dispatcher
	reg   *prometheus.Registry
	logs  *observer.ObservedLogs
	sleep *fakeSleep
}

func newTestDispatcher(t *testing.T, notifiers map[string]Notifier, opts Options) *testDispatcherEnv {
	t.Helper()
	core, logs := observer.New(zapcore.DebugLevel)
	env := &testDispatcherEnv{reg: prometheus.NewRegistry(), logs: logs, sleep: &fakeSleep{}}
	opts.Logger = zap.New(core)
	opts.Registerer = env.reg
	if opts.Sleep == nil {
		opts.Sleep = env.sleep.sleep
	}
	if opts.Jitter == nil {
		opts.Jitter = func() float64 { return 0.5 }
	}
	if opts.Now == nil {
		opts.Now = func() time.Time { return testNow }
	}
	d, err := NewDispatcher(notifiers, opts)
	if err != nil {
		t.Fatal(err)
	}
	env.d = d
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = d.Close(ctx)
	})
	return env
}

func (e *testDispatcherEnv) close(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.d.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// counter reads rulesd_notifications_total{notifier,result}.
func (e *testDispatcherEnv) counter(t *testing.T, notifier, result string) float64 {
	t.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "rulesd_notifications_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			l := map[string]string{}
			for _, lp := range m.GetLabel() {
				l[lp.GetName()] = lp.GetValue()
			}
			if l["notifier"] == notifier && l["result"] == result {
				return m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("no series rulesd_notifications_total{notifier=%q,result=%q}", notifier, result)
	return 0
}

// assertNoSecretInLogs fails when any log line, message or field, contains s.
func assertNoSecretInLogs(t *testing.T, logs *observer.ObservedLogs, secrets ...string) {
	t.Helper()
	for _, e := range logs.All() {
		line := e.Message + " " + fmt.Sprint(e.ContextMap())
		for _, s := range secrets {
			if strings.Contains(line, s) {
				t.Errorf("log line contains a secret %q: %s", s, line)
			}
		}
	}
}

// sampleEvents returns n events of one run.
func sampleEvents(n int) []Event {
	out := make([]Event, n)
	for i := range out {
		out[i] = Event{
			Time:        testNow.Add(-time.Second),
			RunID:       "run-1",
			Group:       "stop-loss",
			Rule:        "pause-spend-without-purchase",
			AccountID:   "act_1",
			AccountName: "Acme US",
			Level:       "ad",
			ObjectID:    fmt.Sprint(100 + i),
			ObjectName:  fmt.Sprintf("ad %d", i),
			Kind:        "pause",
			Field:       "status",
			Before:      "ACTIVE",
			After:       "PAUSED",
			Result:      "applied",
			Labels:      map[string]string{"owner": "growth"},
			Values:      map[string]any{"spend": 60.0, "purchases": 0.0},
		}
	}
	return out
}
