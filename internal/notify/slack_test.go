package notify

import (
	"context"
	"encoding/json"
	"math"
	"strings"
	"testing"
)

func decodeSlack(t *testing.T, body []byte) slackMessage {
	t.Helper()
	var m slackMessage
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("payload is not JSON: %v\n%s", err, body)
	}
	return m
}

func TestSlackPayload(t *testing.T) {
	checkLeaks(t)
	rec := newRecorder(t)
	n := NewSlack(rec.url(), SlackOptions{HTTPOptions: testHTTP(t)})

	events := sampleEvents(3)
	events[1].ObjectName = "<!channel> & friends"
	events[1].Result = "failed"
	events[1].Error = "graph: (#100) Invalid parameter"
	events[2] = Event{
		Rule: "notify-high-cpa", Level: "adset", ObjectID: "11", ObjectName: "Prospecting",
		Kind: "notify", Result: "applied", Message: "CPA is 42.5\nabove target",
	}
	d := Digest{
		RunID: "run-1", Group: "stop-loss", Time: testNow,
		Accounts: []Account{{ID: "act_1", Name: "Acme US"}},
		Events:   events,
	}
	retry, err := n.Notify(context.Background(), d)
	if err != nil || retry {
		t.Fatalf("Notify = %v, %v", retry, err)
	}
	if rec.count() != 1 {
		t.Fatalf("%d requests, want 1", rec.count())
	}
	req := rec.request(0)
	if got := req.header.Get("Content-Type"); got != "application/json" {
		t.Errorf("Content-Type = %q", got)
	}
	if got := req.header.Get("User-Agent"); got != "rulesd/1.2.3" {
		t.Errorf("User-Agent = %q", got)
	}
	if !strings.HasSuffix(req.path, secretToken) {
		t.Errorf("posted to %q, want the webhook path", req.path)
	}
	m := decodeSlack(t, req.body)

	var types []string
	for _, b := range m.Blocks {
		types = append(types, b.Type)
	}
	if got, want := strings.Join(types, ","), "header,section,section,section,section,context"; got != want {
		t.Fatalf("blocks = %s, want %s", got, want)
	}
	if h := m.Blocks[0].Text; h.Type != "plain_text" || h.Text != "rulesd stop-loss: 3 decisions" {
		t.Errorf("header = %+v", h)
	}
	summary := m.Blocks[1].Text.Text
	for _, want := range []string{"*Account:* Acme US (`act_1`)", "applied: 2 · failed: 1"} {
		if !strings.Contains(summary, want) {
			t.Errorf("summary %q lacks %q", summary, want)
		}
	}
	wantEvents := []string{
		"*pause* ad *ad 0* (`100`): ACTIVE → PAUSED · *applied*\nrule pause-spend-without-purchase",
		"*pause* ad *&lt;!channel&gt; &amp; friends* (`101`): ACTIVE → PAUSED · *failed*\nrule pause-spend-without-purchase\n:x: graph: (#100) Invalid parameter",
		"*notify* adset *Prospecting* (`11`) · *applied*\nrule notify-high-cpa\n>CPA is 42.5\n>above target",
	}
	for i, want := range wantEvents {
		if got := m.Blocks[2+i].Text.Text; got != want {
			t.Errorf("event %d:\n got %q\nwant %q", i, got, want)
		}
	}
	if ctx := m.Blocks[5].Elements[0].Text; ctx != "run run-1 · 2026-11-20T10:00:05Z · rulesd/1.2.3" {
		t.Errorf("context = %q", ctx)
	}
	if m.Text != "rulesd stop-loss: 3 decisions — applied: 2 · failed: 1" {
		t.Errorf("fallback text = %q", m.Text)
	}
}

func TestSlackTruncatesManyEvents(t *testing.T) {
	n := NewSlack(NewSecret("https://example.invalid/x"), SlackOptions{})
	d := Digest{Group: "g", Events: sampleEvents(500)}
	d.normalize()
	m := n.message(d)
	if len(m.Blocks) > 50 {
		t.Fatalf("%d blocks; Slack accepts at most 50", len(m.Blocks))
	}
	// header, summary, 20 events, "and N more", context
	if len(m.Blocks) != 24 {
		t.Fatalf("%d blocks, want 24", len(m.Blocks))
	}
	if got := m.Blocks[22].Text.Text; got != "_… and 480 more (see the audit log)_" {
		t.Errorf("more = %q", got)
	}
	if !strings.Contains(m.Blocks[0].Text.Text, "500 decisions") {
		t.Errorf("header = %q", m.Blocks[0].Text.Text)
	}

	// Omitted events (beyond the dispatcher's limit) count as "more" too.
	d = Digest{Group: "g", Events: sampleEvents(5), Omitted: 10}
	m = n.message(d)
	if got := m.Blocks[len(m.Blocks)-2].Text.Text; got != "_… and 10 more (see the audit log)_" {
		t.Errorf("more = %q", got)
	}
}

func TestSlackLongTextStaysWithinLimits(t *testing.T) {
	n := NewSlack(NewSecret("https://example.invalid/x"), SlackOptions{})
	e := sampleEvents(1)[0]
	e.ObjectName = strings.Repeat("n", 5000)
	e.Message = strings.Repeat("m", 5000)
	e.Error = strings.Repeat("e", 5000)
	m := n.message(Digest{Group: strings.Repeat("g", 400), Reason: strings.Repeat("r", 5000), Events: []Event{e}})
	if l := len(m.Blocks[0].Text.Text); l > slackHeaderMax {
		t.Errorf("header is %d bytes", l)
	}
	for _, b := range m.Blocks[1:] {
		if b.Text != nil && len(b.Text.Text) > 3000 {
			t.Errorf("%s block is %d bytes", b.Type, len(b.Text.Text))
		}
	}
}

func TestSlackSpecialKinds(t *testing.T) {
	n := NewSlack(NewSecret("https://example.invalid/x"), SlackOptions{})
	cases := []struct {
		d     Digest
		title string
		text  string
	}{
		{
			Digest{Kind: KindGuardTripped, Group: "stop-loss", Rule: "pause-all", Accounts: []Account{{ID: "act_1"}},
				Reason: "would act on 37 of 40 objects in scope (limit 20); nothing was done"},
			":rotating_light: Blast-radius guard tripped: stop-loss/pause-all",
			"would act on 37 of 40 objects in scope (limit 20); nothing was done",
		},
		{
			Digest{Kind: KindFlappingBlocked, Group: "g", Rule: "r", Events: []Event{{Kind: "unpause", Result: "blocked_flapping", ObjectID: "7"}}},
			":warning: Flapping blocked: g/r",
			"blocked_flapping: 1",
		},
		{
			Digest{Kind: KindAuthFailure, Reason: "token file acme: (#190) Error validating access token"},
			":no_entry: Authentication failed: writes stopped",
			"(#190) Error validating access token",
		},
		{
			Digest{Group: "g", Events: []Event{{Result: "dry_run", Kind: "set_budget", Field: "daily_budget", Before: 50.0, After: math.NaN()}}},
			"rulesd g: 1 decision (dry run)",
			"dry_run: 1",
		},
	}
	for _, c := range cases {
		c.d.normalize()
		m := n.message(c.d)
		if got := m.Blocks[0].Text.Text; got != c.title {
			t.Errorf("title = %q, want %q", got, c.title)
		}
		if got := m.Blocks[1].Text.Text; !strings.Contains(got, c.text) {
			t.Errorf("summary = %q, want it to contain %q", got, c.text)
		}
	}
	m := n.message(cases[3].d)
	if got := m.Blocks[2].Text.Text; !strings.Contains(got, "50 → — (daily_budget)") {
		t.Errorf("budget event = %q", got)
	}
}

func TestSlackErrorAnswers(t *testing.T) {
	checkLeaks(t)
	cases := []struct {
		name      string
		code      int
		body      string
		retryable bool
	}{
		{"invalid payload", 400, "invalid_payload", false},
		{"revoked", 403, "invalid_token", false},
		{"archived", 410, "channel_is_archived", false},
		{"rate limited", 429, "rate_limited", true},
		{"server error", 500, "rollup_error", true},
		{"echoes the path", 404, "Cannot POST /services/T0001/B0001/" + secretToken, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rec := newRecorder(t, status(c.code, c.body))
			n := NewSlack(rec.url(), SlackOptions{HTTPOptions: testHTTP(t)})
			retry, err := n.Notify(context.Background(), Digest{Events: sampleEvents(1)})
			if err == nil {
				t.Fatal("want an error")
			}
			if retry != c.retryable {
				t.Errorf("retryable = %v, want %v (%v)", retry, c.retryable, err)
			}
			if strings.Contains(err.Error(), secretToken) {
				t.Errorf("secret in error: %v", err)
			}
			if !strings.HasPrefix(err.Error(), "slack: unexpected status") {
				t.Errorf("error = %v", err)
			}
		})
	}
}
