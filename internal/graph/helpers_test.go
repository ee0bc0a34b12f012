package graph

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

const (
	testToken  = "EAAtestTOKENsecret0123456789"
	otherToken = "EAAotherTOKENfromNEXTurl987"
	testSecret = "app-secret-value"
)

// fakeClock is the injected clock. In auto mode Sleep advances time at once;
// otherwise Sleep blocks until Advance moves time past its deadline.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	auto    bool
	sleeps  []time.Duration
	waiters []*waiter
}

type waiter struct {
	until time.Time
	ch    chan struct{}
}

func newClock(auto bool) *fakeClock {
	return &fakeClock{now: time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC), auto: auto}
}

func (f *fakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	f.mu.Lock()
	f.sleeps = append(f.sleeps, d)
	if f.auto {
		f.now = f.now.Add(d)
		f.mu.Unlock()
		return ctx.Err()
	}
	w := &waiter{until: f.now.Add(d), ch: make(chan struct{})}
	f.waiters = append(f.waiters, w)
	f.mu.Unlock()
	select {
	case <-w.ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (f *fakeClock) Advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
	keep := f.waiters[:0]
	for _, w := range f.waiters {
		if !w.until.After(f.now) {
			close(w.ch)
		} else {
			keep = append(keep, w)
		}
	}
	f.waiters = keep
}

func (f *fakeClock) Waiters() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.waiters)
}

func (f *fakeClock) Sleeps() []time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Duration(nil), f.sleeps...)
}

func (f *fakeClock) TotalSlept() time.Duration {
	var t time.Duration
	for _, d := range f.Sleeps() {
		t += d
	}
	return t
}

// waitFor polls cond for up to 5 s of real time.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// env is a client wired to a test server, a fake clock, an observed logger
// and its own registry.
type env struct {
	c     *Client
	clock *fakeClock
	logs  *observer.ObservedLogs
	reg   *prometheus.Registry
	srv   *httptest.Server
}

func newEnv(t *testing.T, h http.Handler, mod func(*Options)) *env {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	core, logs := observer.New(zapcore.DebugLevel)
	e := &env{clock: newClock(true), logs: logs, reg: prometheus.NewRegistry(), srv: srv}
	opts := Options{
		BaseURL:    srv.URL,
		APIVersion: "v27.0",
		Token:      NewSecret(testToken),
		TokenName:  "token-file",
		Timeout:    5 * time.Second,
		Retry:      RetryPolicy{MaxAttempts: 3, BaseBackoff: time.Second, MaxBackoff: 10 * time.Second},
		Logger:     zap.New(core),
		Registerer: e.reg,
	}
	if mod != nil {
		mod(&opts)
	}
	if opts.Now == nil {
		opts.Now = e.clock.Now
		opts.Sleep = e.clock.Sleep
	}
	c, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	e.c = c
	return e
}

// params returns the query and form parameters of r.
func params(r *http.Request) url.Values {
	_ = r.ParseForm()
	return r.Form
}

// hijackClose drops the connection without an answer.
func hijackClose(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic("no hijacker")
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		panic(err)
	}
	_ = conn.Close()
}

// writeJSON answers status with body.
func writeJSON(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

func errBody(code, sub int, extra string) string {
	s := `{"error":{"message":"(#` + strconv.Itoa(code) + `) test error","type":"OAuthException","code":` + strconv.Itoa(code)
	if sub != 0 {
		s += `,"error_subcode":` + strconv.Itoa(sub)
	}
	if extra != "" {
		s += "," + extra
	}
	return s + `,"fbtrace_id":"TRACE123"}}`
}
