package server

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/rulesd/rulesd/internal/state"
)

// browserNames are the executables tried, in order, for the headless browser test.
var browserNames = []string{"chromium", "chromium-browser", "google-chrome"}

// findBrowser returns the path of a Chromium-compatible browser, or skips the test
// (fails it when RULESD_REQUIRE_BROWSER=1, as CI sets after installing chromium).
func findBrowser(t *testing.T) string {
	t.Helper()
	required := os.Getenv("RULESD_REQUIRE_BROWSER") == "1"
	for _, name := range browserNames {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := "no headless browser: none of " + strings.Join(browserNames, ", ") +
		" is in PATH (apt-get install chromium; RULESD_REQUIRE_BROWSER=1 makes this a failure)"
	if required {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// screenshotDir is where the screenshots go: RULESD_SCREENSHOT_DIR, or a temporary
// directory.
func screenshotDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("RULESD_SCREENSHOT_DIR")
	if dir == "" {
		return t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestStatusPageInBrowser loads the status page and a rule page from a running server
// in headless Chromium, checks the text a person sees and saves screenshots.
func TestStatusPageInBrowser(t *testing.T) {
	if testing.Short() && os.Getenv("RULESD_REQUIRE_BROWSER") != "1" {
		t.Skip("headless browser test skipped in -short mode")
	}
	browser := findBrowser(t)
	dir := screenshotDir(t)

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

	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(browser),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1400, 1000),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	defer cancelBrowser()
	ctx, cancel := context.WithTimeout(bctx, 90*time.Second)
	defer cancel()

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
