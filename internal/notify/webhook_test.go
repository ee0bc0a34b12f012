package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"math"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// TestWebhookSchema pins the JSON a webhook receives to a golden file: the
// schema is a contract with whoever wrote the receiver (see doc.go).
func TestWebhookSchema(t *testing.T) {
	checkLeaks(t)
	rec := newRecorder(t, status(204, ""))
	n := NewWebhook(rec.url(), testHTTP(t))

	events := sampleEvents(2)
	events[0].Values["cpa"] = math.NaN() // missing: must become null
	events[1] = Event{
		Time: testNow, RunID: "run-1", Group: "scale", Rule: "raise-budget",
		AccountID: "act_1", AccountName: "Acme US", Level: "adset", ObjectID: "11", ObjectName: "Prospecting",
		Kind: "change_budget", Field: "daily_budget", Before: 50.0, After: 60.0,
		Result: "dry_run", CappedBy: "max_daily_budget",
		Values: map[string]any{"roas": 3.5, "campaign.objective": "OUTCOME_SALES", "campaign_budget": false},
	}
	d := Digest{
		RunID: "run-1", Group: "stop-loss", Time: testNow,
		Accounts: []Account{{ID: "act_1", Name: "Acme US"}},
		Events:   events,
	}
	if retry, err := n.Notify(context.Background(), d); err != nil || retry {
		t.Fatalf("Notify = %v, %v", retry, err)
	}
	req := rec.request(0)
	if got := req.header.Get("Content-Type"); got != "application/json" {
		t.Errorf("Content-Type = %q", got)
	}
	if got := req.header.Get("User-Agent"); got != "rulesd/1.2.3" {
		t.Errorf("User-Agent = %q", got)
	}
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, req.body, "", "  "); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, req.body)
	}
	pretty.WriteByte('\n')
	golden := filepath.Join("testdata", "webhook_run.golden.json")
	if *update {
		if err := os.WriteFile(golden, pretty.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(pretty.Bytes(), want) {
		t.Errorf("webhook payload changed; if on purpose, run go test -update and mind WebhookSchemaVersion\ngot:\n%s", pretty.Bytes())
	}
}

// TestWebhookEmptyFieldsPresent checks that a digest without events still has
// every field, with [] and {} rather than null, so receivers need no defaults.
func TestWebhookEmptyFieldsPresent(t *testing.T) {
	b, err := MarshalDigest(Digest{Kind: KindAuthFailure, Reason: "token rejected", Time: testNow})
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"version", "kind", "time", "run_id", "group", "rule", "reason", "accounts", "counts", "total", "omitted", "events"} {
		if _, ok := m[k]; !ok {
			t.Errorf("field %q missing in %s", k, b)
		}
	}
	if string(mustJSON(t, m["events"])) != "[]" || string(mustJSON(t, m["accounts"])) != "[]" || string(mustJSON(t, m["counts"])) != "{}" {
		t.Errorf("empty lists must be [] and {}: %s", b)
	}
	if m["kind"] != "auth_failure" || m["version"] != WebhookSchemaVersion {
		t.Errorf("kind/version: %s", b)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
