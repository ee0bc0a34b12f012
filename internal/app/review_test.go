package app

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rulesd/rulesd/internal/config"
	"github.com/rulesd/rulesd/internal/diag"
	"github.com/rulesd/rulesd/internal/notify"
	"github.com/rulesd/rulesd/internal/rules"
	"github.com/rulesd/rulesd/internal/state"
)

// TestPruneDuringReload: the hourly housekeeping reads the retention of the config a
// reload (POST /-/reload, from the HTTP server's goroutine) may be replacing at the
// same moment; under -race this must not be a data race.
func TestPruneDuringReload(t *testing.T) {
	w := newWorld(t)
	w.write("rules/stop-loss.yaml", fmt.Sprintf(stopLossYAML, ""))
	ctx := context.Background()
	d, err := start(ctx, Options{ConfigPath: w.cfg, noWatch: true})
	if err != nil {
		t.Fatal(err)
	}
	defer d.close()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range 5 {
			if err := d.Reload(ctx); err != nil {
				t.Error(err)
			}
		}
	}()
	for range 5 {
		d.prune(ctx)
	}
	wg.Wait()
}

// TestReloadUpdatesNotifiers: a reload that adds a notifier (and a rule naming it)
// passes validation, so the dispatcher must know the new notifier afterwards; before,
// the dispatcher kept the notifiers of the start-up config and dropped every digest
// for the new one as "unknown notifier".
func TestReloadUpdatesNotifiers(t *testing.T) {
	w := newWorld(t)
	w.write("rules/stop-loss.yaml", fmt.Sprintf(stopLossYAML, ""))
	got := make(chan struct{}, 10)
	hook := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) { got <- struct{}{} }))
	defer hook.Close()
	ctx := context.Background()
	d, err := start(ctx, Options{ConfigPath: w.cfg, noWatch: true})
	if err != nil {
		t.Fatal(err)
	}
	defer d.close()

	w.write("rulesd.yaml", readFile(t, w.cfg)+fmt.Sprintf("notifiers: [{name: ops, type: webhook, url: %q}]\n", hook.URL))
	w.write("rules/stop-loss.yaml", fmt.Sprintf(stopLossYAML, "    notify: [ops]\n"))
	if err := d.Reload(ctx); err != nil {
		t.Fatalf("reload: %v", err)
	}
	if !d.notifier.Send("ops", notify.Digest{Kind: notify.KindGuardTripped, Group: "stop-loss"}) {
		t.Fatal(`after the reload, a digest for the new notifier "ops" was dropped`)
	}
	select {
	case <-got:
	case <-time.After(waitFor):
		t.Fatal("the new notifier's endpoint received nothing within 10s")
	}
}

// TestReloadResetsPendingWhenTheRequestIsGone: a reload applied from POST /-/reload
// must reset the pending state of rules whose condition changed (SPEC 4.1) even when
// the client has gone away meanwhile (its request context is cancelled).
func TestReloadResetsPendingWhenTheRequestIsGone(t *testing.T) {
	w := newWorld(t)
	w.write("rules/stop-loss.yaml", fmt.Sprintf(stopLossYAML, "    for: 30m\n"))
	ctx := context.Background()
	d, err := start(ctx, Options{ConfigPath: w.cfg, noWatch: true})
	if err != nil {
		t.Fatal(err)
	}
	defer d.close()
	scope := state.RuleScope{Group: "stop-loss", Rule: "pause-spend-without-purchase", AccountID: w.acct}
	if err := d.store.PutPending(ctx, scope, []state.Pending{{ObjectID: w.spender, Since: reloadT0, LastEval: reloadT0}}); err != nil {
		t.Fatal(err)
	}
	w.write("rules/stop-loss.yaml", strings.Replace(fmt.Sprintf(stopLossYAML, "    for: 30m\n"), "impressions > 1000", "impressions > 999", 1))
	gone, cancel := context.WithCancel(ctx)
	cancel()
	if err := d.Reload(gone); err != nil {
		t.Fatalf("reload: %v", err)
	}
	ps, err := d.store.ListPending(ctx, scope)
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 0 {
		t.Errorf("pending after a reload that changed the condition = %v, want none", ps)
	}
}

// TestConcurrentReloadsApplyTheNewestFiles: two reloads at once (POST /-/reload and a
// file change) must not let the one that read the older files apply last. The first
// reload here reads version 1 and is held; the files change to version 2 and a second
// reload runs; once both are done, version 2 must be the configuration in force.
func TestConcurrentReloadsApplyTheNewestFiles(t *testing.T) {
	w := newWorld(t)
	version := func(n int) string {
		return strings.Replace(fmt.Sprintf(stopLossYAML, ""), "impressions > 1000", fmt.Sprintf("impressions > %d", 1000+n), 1)
	}
	w.write("rules/stop-loss.yaml", version(0))
	ctx := context.Background()
	d, err := start(ctx, Options{ConfigPath: w.cfg, noWatch: true})
	if err != nil {
		t.Fatal(err)
	}
	defer d.close()

	loaded, release := make(chan struct{}), make(chan struct{})
	var first sync.Once
	d.load = func(p string) (*config.Config, *rules.Set, diag.List, error) {
		cfg, set, l, err := Load(p)
		held := false
		first.Do(func() { held = true })
		if held {
			close(loaded)
			<-release
		}
		return cfg, set, l, err
	}
	w.write("rules/stop-loss.yaml", version(1))
	errs := make(chan error, 2)
	go func() { errs <- d.Reload(ctx) }()
	<-loaded
	w.write("rules/stop-loss.yaml", version(2))
	second := make(chan error, 1)
	go func() { second <- d.Reload(ctx) }()
	select {
	case err := <-second: // it did not wait for the first
		errs <- err
		close(release)
	case <-time.After(200 * time.Millisecond):
		close(release)
		errs <- <-second
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	when := ""
	for _, g := range d.Status(ctx).Groups {
		for _, r := range g.Rules {
			when = r.When
		}
	}
	if !strings.Contains(when, "impressions > 1002") {
		t.Errorf("rule in force after both reloads: when %q, want the newest files' (impressions > 1002)", when)
	}
}
