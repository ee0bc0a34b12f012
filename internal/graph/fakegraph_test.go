package graph_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/rulesd/rulesd/internal/fakegraph"
	"github.com/rulesd/rulesd/internal/graph"
)

// These tests run the client against the simulated Marketing API (not a handler
// written for the client), under every fault it injects.

type fakeClock struct {
	mu    sync.Mutex
	now   time.Time
	slept time.Duration
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Sleep advances the clock instead of waiting, so a one-minute throttle costs nothing.
func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.slept += d
	c.mu.Unlock()
	return nil
}

func setup(t *testing.T) (*fakegraph.Server, *graph.Client, *fakeClock, *observer.ObservedLogs, string) {
	t.Helper()
	clk := &fakeClock{now: time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)}
	fake := fakegraph.New(fakegraph.Options{Now: clk.Now, Seed: 3})
	acct := fakegraph.Must(fake.AddAccount(fakegraph.Account{ID: "act_77"}))
	camp := fakegraph.Must(fake.AddCampaign(fakegraph.Campaign{AccountID: acct}))
	as := fakegraph.Must(fake.AddAdSet(fakegraph.AdSet{CampaignID: camp, DailyBudget: 5000}))
	for range 7 {
		fakegraph.Must(fake.AddAd(fakegraph.Ad{AdSetID: as}))
	}
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	core, logs := observer.New(zap.DebugLevel)
	c, err := graph.New(graph.Options{
		BaseURL: srv.URL, APIVersion: "v27.0", Token: graph.NewSecret(fakegraph.DefaultToken), TokenName: "token",
		Logger: zap.New(core), Now: clk.Now, Sleep: clk.Sleep, Jitter: func() float64 { return 0.5 },
		Retry: graph.RetryPolicy{MaxAttempts: 4, BaseBackoff: time.Second, MaxBackoff: 4 * time.Second},
	})
	if err != nil {
		t.Fatal(err)
	}
	return fake, c, clk, logs, acct
}

// readAds pages through the account's ads, 3 per page.
func readAds(ctx context.Context, c *graph.Client, acct string) (int, error) {
	n := 0
	err := c.Pages(ctx, graph.Request{Path: acct + "/ads", Params: url.Values{"fields": {"id,name"}, "limit": {"3"}}}, func(body []byte) error {
		n += strings.Count(string(body), `"id"`)
		return nil
	})
	return n, err
}

func TestClientAgainstSimulatedAPI(t *testing.T) {
	tests := []struct {
		name      string
		fault     fakegraph.Fault
		times     int
		fails     bool
		wantErr   graph.Kind
		wantSleep bool
	}{
		{name: "throttled 80004 waits and succeeds", fault: fakegraph.ErrorFault(80004, 2446079), times: 1, wantSleep: true},
		{name: "throttled 17/2446079 waits and succeeds", fault: fakegraph.ErrorFault(17, 2446079), times: 1, wantSleep: true},
		{name: "app limit 4 waits and succeeds", fault: fakegraph.ErrorFault(4, 0), times: 1, wantSleep: true},
		{name: "5xx retried", fault: fakegraph.Fault{Kind: fakegraph.Fault5xx}, times: 2, wantSleep: true},
		{name: "dropped connection retried", fault: fakegraph.Fault{Kind: fakegraph.FaultDrop}, times: 2, wantSleep: true},
		{name: "transient code 2 retried", fault: fakegraph.ErrorFault(2, 0), times: 1, wantSleep: true},
		{name: "is_transient code 1 retried", fault: fakegraph.ErrorFault(1, 0), times: 1, wantSleep: true},
		{name: "malformed body retried then clear", fault: fakegraph.Fault{Kind: fakegraph.FaultMalformed}, times: -1, fails: true, wantErr: graph.KindBadResponse},
		{name: "expired token is one clear error", fault: fakegraph.ErrorFault(190, 463), times: -1, fails: true, wantErr: graph.KindAuth},
		{name: "permission", fault: fakegraph.ErrorFault(200, 0), times: -1, fails: true, wantErr: graph.KindPermission},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake, c, clk, logs, acct := setup(t)
			fake.Inject(fakegraph.FaultRule{Path: "/ads", Times: tt.times, Fault: tt.fault})
			n, err := readAds(context.Background(), c, acct)
			if !tt.fails {
				if err != nil {
					t.Fatalf("read failed: %v", err)
				}
				if n != 7 {
					t.Errorf("read %d ads, want 7", n)
				}
			} else {
				if err == nil {
					t.Fatal("read succeeded, want an error")
				}
				if k := graph.KindOf(err); k != tt.wantErr {
					t.Errorf("kind = %v, want %v (%v)", k, tt.wantErr, err)
				}
			}
			if tt.wantSleep && clk.slept == 0 {
				t.Error("no wait before retrying")
			}
			if tt.fails && tt.wantErr == graph.KindAuth {
				var posts int
				for _, r := range fake.Requests() {
					if strings.HasSuffix(r.Path, "/ads") {
						posts++
					}
				}
				if posts != 1 {
					t.Errorf("an expired token was retried: %d requests", posts)
				}
				if !strings.Contains(err.Error(), "expired") {
					t.Errorf("error does not name the problem: %v", err)
				}
			}
			checkNoToken(t, err, logs)
		})
	}
}

func TestClientCancelReturnsPromptly(t *testing.T) {
	fake, c, _, logs, acct := setup(t)
	fake.Inject(fakegraph.FaultRule{Path: "/ads", Times: -1, Fault: fakegraph.Fault{Kind: fakegraph.FaultDelay, Delay: 2 * time.Second}})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := readAds(ctx, c, acct)
	if err == nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the context's deadline", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("cancel took %s", d)
	}
	checkNoToken(t, err, logs)
}

func checkNoToken(t *testing.T, err error, logs *observer.ObservedLogs) {
	t.Helper()
	if err != nil && strings.Contains(err.Error(), fakegraph.DefaultToken) {
		t.Errorf("the token is in the error: %v", err)
	}
	for _, e := range logs.All() {
		line := e.Message
		for k, v := range e.ContextMap() {
			line += " " + k + "=" + strings.ReplaceAll(strings.ReplaceAll(toString(v), "\n", " "), "\t", " ")
		}
		if strings.Contains(line, fakegraph.DefaultToken) {
			t.Errorf("the token is in a log line: %s", line)
		}
	}
}

func toString(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	if e, ok := v.(error); ok {
		return e.Error()
	}
	return ""
}
