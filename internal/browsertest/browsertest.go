// Package browsertest starts Debian's headless Chromium for the tests that look at
// the status page as a person does. Without a browser the tests skip, unless
// RULESD_REQUIRE_BROWSER=1 (CI, after installing chromium) makes that a failure.
package browsertest

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// names are the executables tried, in order.
var names = []string{"chromium", "chromium-browser", "google-chrome"}

// Find returns the path of a Chromium-compatible browser, or skips the test (fails
// it when RULESD_REQUIRE_BROWSER=1).
func Find(t testing.TB) string {
	t.Helper()
	for _, name := range names {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := "no headless browser: none of " + strings.Join(names, ", ") +
		" is in PATH (apt-get install chromium; RULESD_REQUIRE_BROWSER=1 makes this a failure)"
	if Required() {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// Required reports whether a missing browser fails the test rather than skips it.
func Required() bool { return os.Getenv("RULESD_REQUIRE_BROWSER") == "1" }

// ScreenshotDir is where screenshots go: RULESD_SCREENSHOT_DIR, or a temporary
// directory.
func ScreenshotDir(t testing.TB) string {
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

// Context starts headless Chromium at browser for the test, stopped at its end.
// The flags keep it off the network: this machine's closed network refuses the
// connections Chromium makes in the background.
func Context(t testing.TB, browser string) context.Context {
	t.Helper()
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
	bctx, cancelBrowser := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	ctx, cancel := context.WithTimeout(bctx, 90*time.Second)
	t.Cleanup(func() {
		cancel()
		cancelBrowser()
		cancelAlloc()
	})
	return ctx
}
