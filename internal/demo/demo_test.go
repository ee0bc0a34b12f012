package demo

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/rulesd/rulesd/internal/browsertest"
)

// specMetrics are the metric names of SPEC section 8 (a contract), and the
// notifications counter the alerts use.
var specMetrics = []string{
	"rulesd_build_info",
	"rulesd_group_runs_total",
	"rulesd_group_last_run_timestamp_seconds",
	"rulesd_group_last_run_duration_seconds",
	"rulesd_group_run_duration_seconds",
	"rulesd_rule_evaluations_total",
	"rulesd_rule_evaluation_errors_total",
	"rulesd_rule_objects_in_scope",
	"rulesd_rule_matches",
	"rulesd_rule_pending",
	"rulesd_actions_total",
	"rulesd_graph_requests_total",
	"rulesd_graph_request_duration_seconds",
	"rulesd_graph_throttled_total",
	"rulesd_graph_usage_ratio",
	"rulesd_graph_auth_ok",
	"rulesd_insights_rows_total",
	"rulesd_kill_switch_engaged",
	"rulesd_config_last_reload_successful",
	"rulesd_config_last_reload_success_timestamp_seconds",
	"rulesd_notifications_total",
}

// syncBuffer collects the narration while the demo writes it.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// runDemo runs three fast demo runs and keeps serving until the end of the test; it
// returns rulesd's base URL and the narration.
func runDemo(t *testing.T) (string, *syncBuffer) {
	t.Helper()
	out := &syncBuffer{}
	addr := make(chan string, 1)
	finished := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{
			Listen: "127.0.0.1:0", Stdout: out, Every: 100 * time.Millisecond, Runs: 3, KeepServing: true,
			OnListen:   func(a string) { addr <- a },
			OnFinished: func() { close(finished) },
		})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("demo.Run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("demo.Run did not return within 30s of its context's end")
		}
	})
	var base string
	select {
	case a := <-addr:
		base = "http://" + a
	case err := <-done:
		t.Fatalf("the demo ended before listening: %v\n%s", err, out)
	case <-time.After(30 * time.Second):
		t.Fatalf("the demo did not listen within 30s\n%s", out)
	}
	select {
	case <-finished:
	case err := <-done:
		t.Fatalf("the demo ended before its runs finished: %v\n%s", err, out)
	case <-time.After(60 * time.Second):
		t.Fatalf("the demo's 3 runs did not finish within 60s\n%s", out)
	}
	return base, out
}

func get(t *testing.T, url string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	return string(b)
}

// series returns the metric families at /metrics with at least one sample.
func series(exposition string) map[string]bool {
	got := map[string]bool{}
	for _, line := range strings.Split(exposition, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, _, _ := strings.Cut(line, " ")
		name, _, _ = strings.Cut(name, "{")
		got[name] = true
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if base, ok := strings.CutSuffix(name, suffix); ok {
				got[base] = true
			}
		}
	}
	return got
}

// TestDemo runs the demo in process, then reads what one run of it produced: every
// SPEC section 8 metric, the applied actions, and the status page in a browser.
func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("the demo takes a few seconds")
	}
	base, out := runDemo(t)
	t.Logf("narration:\n%s", out)

	t.Run("every SPEC metric at /metrics", func(t *testing.T) {
		got := series(get(t, base+"/metrics"))
		for _, name := range specMetrics {
			if !got[name] {
				t.Errorf("%s does not appear at /metrics after a demo run", name)
			}
		}
	})

	t.Run("applied actions in the audit log", func(t *testing.T) {
		var acts struct {
			Actions []struct {
				Group, Rule, Kind, Field, Result string
				Before, After                    any
			} `json:"actions"`
		}
		body := get(t, base+"/api/v1/actions?limit=1000")
		if err := json.Unmarshal([]byte(body), &acts); err != nil {
			t.Fatalf("GET /api/v1/actions: %v\n%s", err, body)
		}
		applied := map[string]int{}
		for _, a := range acts.Actions {
			if a.Result == "applied" {
				applied[a.Group+"/"+a.Rule]++
				if a.Before == nil || a.After == nil || a.Before == a.After {
					t.Errorf("applied %s/%s %s without a change: %v -> %v", a.Group, a.Rule, a.Field, a.Before, a.After)
				}
			}
		}
		if len(applied) == 0 {
			t.Fatalf("no applied action after 3 demo runs:\n%s", body)
		}
		t.Logf("applied actions per rule: %v", applied)
	})

	t.Run("status page in a headless browser", func(t *testing.T) {
		browser := browsertest.Find(t)
		dir := browsertest.ScreenshotDir(t)
		ctx := browsertest.Context(t, browser)
		if err := chromedp.Do(ctx, chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS("footer"))); err != nil {
			t.Fatalf("load / in %s: %v", browser, err)
		}
		text, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("body")))
		if err != nil {
			t.Fatalf("read the text of /: %v", err)
		}
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // quality 100: PNG
		if err != nil {
			t.Fatalf("screenshot of /: %v", err)
		}
		file := filepath.Join(dir, "demo-status.png")
		if err := os.WriteFile(file, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot of the demo's status page: %s", file)
		for _, want := range []string{"stop-loss", "scale-winners", "Recent actions"} {
			if !strings.Contains(text, want) {
				t.Errorf("the status page does not show %q", want)
			}
		}
		// At least one action's before → after, e.g. "ACTIVE → PAUSED" or
		// "50.00 USD → 60.00 USD".
		if !regexp.MustCompile(`\S+ → \S+`).MatchString(text) {
			t.Errorf("the status page shows no action's before → after:\n%s", text)
		}
		if strings.Contains(text, "The last reload failed") {
			t.Errorf("the demo's status page shows a reload error:\n%s", text)
		}
	})
}
