package engine

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rulesd/rulesd/internal/config"
	"github.com/rulesd/rulesd/internal/insights"
	"github.com/rulesd/rulesd/internal/metrics"
	"github.com/rulesd/rulesd/internal/notify"
	"github.com/rulesd/rulesd/internal/rules"
)

const stopLoss = `
groups:
- name: stop-loss
  schedule: "*/30 * * * *"
  rules:
  - {name: pause-spender, level: ad, window: today, when: "spend > 10", action: {kind: pause}, notify: [hook]}
`

// blockingReader holds the first read until release is closed.
type blockingReader struct {
	SnapshotReader
	once    sync.Once
	started chan struct{}
	release chan struct{}
}

func (b *blockingReader) Read(ctx context.Context, a config.Account, at time.Time, rs []*rules.Rule) (*insights.Snapshot, error) {
	first := false
	b.once.Do(func() { first = true })
	if first {
		close(b.started)
		<-b.release
	}
	return b.SnapshotReader.Read(ctx, a, at, rs)
}

// TestOverlappingTickIsSkipped: a tick arriving while the same (group, account) still
// runs is skipped and counted, never queued.
func TestOverlappingTickIsSkipped(t *testing.T) {
	w := newWorld(t, "accounts: [act_1001]\nnotifiers: [{name: hook, type: webhook, url: \"http://127.0.0.1:1/\"}]\n", stopLoss)
	ad := w.ads("ad", 1)[0]
	w.spendToday(ad, 20)
	br := &blockingReader{SnapshotReader: w.reader, started: make(chan struct{}), release: make(chan struct{})}
	reg := prometheus.NewRegistry()
	m, _ := metrics.New(reg)
	e, err := New(Options{Config: w.cfg, Rules: w.set, Reader: br, Executor: w.exec, Store: w.store, Metrics: m, Now: w.Now, Owner: "test"})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan *GroupRun)
	go func() {
		gr, _ := e.RunGroup(context.Background(), "stop-loss", w.Now())
		done <- gr
	}()
	<-br.started
	second, err := e.RunGroup(context.Background(), "stop-loss", w.Now().Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if got := second.Accounts[0].Result; got != "skipped" {
		t.Errorf("overlapping run = %s, want skipped", got)
	}
	close(br.release)
	first := <-done
	if got := first.Accounts[0].Result; got != "success" {
		t.Errorf("first run = %s (%v)", got, first.Accounts[0].Err)
	}
	if n := len(w.writes(ad)); n != 1 {
		t.Errorf("%d writes, want 1", n)
	}
	mfs, _ := reg.Gather()
	skipped := 0.0
	for _, mf := range mfs {
		if mf.GetName() != "rulesd_group_runs_total" {
			continue
		}
		for _, s := range mf.GetMetric() {
			for _, l := range s.GetLabel() {
				if l.GetName() == "result" && l.GetValue() == "skipped" {
					skipped += s.GetCounter().GetValue()
				}
			}
		}
	}
	if skipped != 1 {
		t.Errorf("skipped runs counted = %v, want 1", skipped)
	}
}

// TestOneDigestPerRunAndNotifier: a rule's notifications arrive as one digest per run
// and notifier, whatever the number of objects.
func TestOneDigestPerRunAndNotifier(t *testing.T) {
	var mu sync.Mutex
	var digests []notify.Digest
	hook := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		var d notify.Digest
		if err := json.NewDecoder(r.Body).Decode(&d); err != nil {
			t.Errorf("digest: %v", err)
		}
		mu.Lock()
		digests = append(digests, d)
		mu.Unlock()
		rw.WriteHeader(http.StatusNoContent)
	}))
	defer hook.Close()
	cfg := "accounts: [act_1001]\nsafety: {max_actions_per_run: 100}\nnotifiers: [{name: hook, type: webhook, url: \"" + hook.URL + "\"}]\n"
	w := newWorld(t, cfg, stopLoss)
	for _, ad := range w.ads("ad", 12) {
		w.spendToday(ad, 20)
	}
	for _, ad := range w.ads("quiet", 12) {
		w.spendToday(ad, 1)
	}
	ns, err := notify.Build([]notify.Config{{Name: "hook", Type: notify.TypeWebhook, URL: notify.NewSecret(hook.URL)}}, nil, notify.BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	d, err := notify.NewDispatcher(ns, notify.Options{})
	if err != nil {
		t.Fatal(err)
	}
	e, err := New(Options{Config: w.cfg, Rules: w.set, Reader: w.reader, Executor: w.exec, Store: w.store, Notify: d, Now: w.Now, Owner: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.RunGroup(context.Background(), "stop-loss", w.Now()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := d.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if len(digests) != 1 {
		t.Fatalf("%d digests, want 1 per run and notifier", len(digests))
	}
	if n := len(digests[0].Events); n != 12 {
		t.Errorf("digest has %d events, want 12", n)
	}
	if digests[0].Group != "stop-loss" {
		t.Errorf("digest group = %q", digests[0].Group)
	}
}

// TestSchedulerSync: unchanged groups keep their entries on a reload, changed ones
// are re-added, removed ones dropped; CRON_TZ and the config's zone are honoured.
func TestSchedulerSync(t *testing.T) {
	two := `
groups:
- name: berlin
  schedule: "CRON_TZ=Europe/Berlin 0 9 * * *"
  rules: [{name: r, level: ad, window: today, when: "spend > 1", action: {kind: pause}}]
- name: hourly
  schedule: "@hourly"
  rules: [{name: r, level: ad, window: today, when: "spend > 1", action: {kind: pause}}]
`
	w := newWorld(t, "accounts: [act_1001]\ntimezone: America/New_York\n", two)
	s := NewScheduler(w.eng, nil)
	s.Sync()
	berlin := s.entries["berlin"]
	hourly := s.entries["hourly"]
	if len(berlin) != 1 || len(hourly) != 1 {
		t.Fatalf("entries = %v", s.entries)
	}
	s.cron.Start()
	defer s.cron.Stop()
	next := s.Next("berlin")
	loc, _ := time.LoadLocation("Europe/Berlin")
	if nb := next.In(loc); nb.Hour() != 9 || nb.Minute() != 0 {
		t.Errorf("berlin runs at %s, want 09:00 Berlin time", nb)
	}
	// Change only the hourly group.
	changed := `
groups:
- name: berlin
  schedule: "CRON_TZ=Europe/Berlin 0 9 * * *"
  rules: [{name: r, level: ad, window: today, when: "spend > 1", action: {kind: pause}}]
- name: daily
  schedule: "0 6 * * *"
  rules: [{name: r, level: ad, window: today, when: "spend > 1", action: {kind: pause}}]
`
	w.reload("accounts: [act_1001]\ntimezone: America/New_York\n", changed)
	s.Sync()
	if got := s.entries["berlin"]; len(got) != 1 || got[0] != berlin[0] {
		t.Errorf("the unchanged group was re-added: %v -> %v", berlin, got)
	}
	if _, ok := s.entries["hourly"]; ok {
		t.Error("a removed group kept its entry")
	}
	ny, _ := time.LoadLocation("America/New_York")
	if nd := s.Next("daily").In(ny); nd.Hour() != 6 {
		t.Errorf("daily runs at %s, want 06:00 in the config's zone", nd)
	}
}

func TestValuePath(t *testing.T) {
	for name, want := range map[string]string{
		"spend": "spend", "last_7d.cpa": "last_7d/cpa", `actions["link_click"]`: "actions/link_click",
		`today.action_values["offsite_conversion.fb_pixel_purchase"]`: "today/action_values/offsite_conversion.fb_pixel_purchase",
		"account.vars.target_cpa":                                     "account/vars/target_cpa",
	} {
		if got := strings.Join(valuePath(name), "/"); got != want {
			t.Errorf("valuePath(%q) = %q, want %q", name, got, want)
		}
	}
}
