package server

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/rulesd/rulesd/internal/browsertest"
	"github.com/rulesd/rulesd/internal/state"
)

// TestStatusPageInBrowser loads the status page and a rule page from a running server
// in headless Chromium, checks the text a person sees and saves screenshots.
func TestStatusPageInBrowser(t *testing.T) {
	if testing.Short() && !browsertest.Required() {
		t.Skip("headless browser test skipped in -short mode")
	}
	browser := browsertest.Find(t)
	dir := browsertest.ScreenshotDir(t)

	f := newFixture(t, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- f.srv.Serve(sctx, ln) }()
	t.Cleanup(func() {
		stop()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	base := "http://" + ln.Addr().String()

	ctx := browsertest.Context(t, browser)

	// load navigates to path, waits for the footer (the end of the page), and returns
	// the page's visible text; it saves a full-page screenshot as name.
	load := func(t *testing.T, path, name string) string {
		t.Helper()
		if err := chromedp.Do(ctx,
			chromedp.Navigate(base+path),
			chromedp.WaitVisible(chromedp.CSS("footer")),
		); err != nil {
			t.Fatalf("load %s in %s: %v", path, browser, err)
		}
		text, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("body")))
		if err != nil {
			t.Fatalf("read the text of %s: %v", path, err)
		}
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // quality 100: PNG
		if err != nil {
			t.Fatalf("screenshot of %s: %v", path, err)
		}
		file := filepath.Join(dir, name)
		if err := os.WriteFile(file, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot of %s: %s", path, file)
		return text
	}
	seen := func(t *testing.T, text string, want ...string) {
		t.Helper()
		for _, w := range want {
			if !strings.Contains(text, w) {
				t.Errorf("the page does not show %q; it shows:\n%s", w, text)
			}
		}
	}

	t.Run("healthy", func(t *testing.T) {
		text := load(t, "/", "status.png")
		seen(t, text, "stop-loss", "night-watch", "pause-spend-without-purchase", "scale-winners",
			"50.00 USD → 60.00 USD", "ACTIVE → PAUSED", "Recent actions", "Brand <b>JP</b>")
		if strings.Contains(text, "reload failed") || strings.Contains(text, "Kill switch engaged") {
			t.Error("healthy page shows an error banner")
		}
	})

	t.Run("values behind details", func(t *testing.T) {
		text := load(t, "/", "status.png")
		if strings.Contains(text, "61.5") {
			t.Error("the values the rule saw are shown before the details are opened")
		}
		// The second action is the applied pause of "UGC video".
		sel := chromedp.CSS("#actions tbody tr:nth-child(2) details summary")
		if err := chromedp.Do(ctx, chromedp.Click(sel)); err != nil {
			t.Fatal(err)
		}
		text, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#actions tbody tr:nth-child(2) details")))
		if err != nil {
			t.Fatal(err)
		}
		seen(t, text, "spend", "61.5", "purchases", "ctr", "missing", "run run-42")
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "status-details.png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("reload failed, kill switch engaged", func(t *testing.T) {
		f.source.set(func(s *Status) {
			s.Reload = ReloadStatus{OK: false, Time: testNow.Add(-4 * time.Minute), Errors: strings.Split(errBadRules.Error(), "\n")}
		})
		if err := f.store.EngageKillSwitch(context.Background(), state.KillSwitch{
			Scope: state.KillScope{AccountID: "act_2"}, Reason: "feed outage", By: "ops", EngagedAt: testNow.Add(-time.Hour)}); err != nil {
			t.Fatal(err)
		}
		text := load(t, "/", "status-errors.png")
		seen(t, text, "partly paused by kill switch")
		seen(t, text, "The last reload failed", `rules/stop-loss.yaml:12:9: unknown metric "spnd"`,
			"Kill switch engaged", "account act_2", "feed outage", "stop-loss", "night-watch")
	})

	t.Run("rule page", func(t *testing.T) {
		text := load(t, "/rules/stop-loss/pause-spend-without-purchase", "rule.png")
		seen(t, text, "pause-spend-without-purchase", "Objects matched in the last run", "UGC video",
			"ACTIVE → PAUSED", "vars.target_cpa")
	})
}
