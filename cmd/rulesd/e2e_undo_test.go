package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/rulesd/rulesd/internal/fakegraph"
	"github.com/rulesd/rulesd/internal/state"
)

// TestUndoEndToEnd: `rulesd run --once` pauses an ad, `rulesd undo ID` sets it ACTIVE
// again, records the undo and refuses to undo the same action twice.
func TestUndoEndToEnd(t *testing.T) {
	w := newE2E(t)
	acct, ids := w.stopLossWorld()
	w.write("rules/stop-loss.yaml", stopLossRules)
	cfg := w.config(fmt.Sprintf("- {id: %s, vars: {target_cpa: 25}}", acct), "")
	if stdout, stderr, code := w.rulesd("run", "--config", cfg, "--once"); code != 0 {
		t.Fatalf("run --once: exit %d\n%s\n%s", code, stdout, stderr)
	}
	if o, _ := w.fake.Object(ids["spender"]); o.Status != fakegraph.StatusPaused {
		t.Fatalf("the run left the spender %s", o.Status)
	}
	id := appliedAction(t, w, ids["spender"])
	arg := strconv.FormatInt(id, 10)

	// Bad usage.
	for _, args := range [][]string{{"undo"}, {"undo", "abc"}, {"undo", arg, "extra"}, {"undo", "--nope", arg}} {
		if _, stderr, code := w.rulesd(args...); code != 2 {
			t.Errorf("rulesd %s: exit %d, want 2\n%s", strings.Join(args, " "), code, stderr)
		}
	}

	// --dry-run says what would happen and writes nothing.
	writes := len(w.fake.Writes())
	stdout, stderr, code := w.rulesd("undo", arg, "--config", cfg, "--dry-run")
	if code != 0 || !strings.Contains(stdout, "would restore status of ad 'spender' ("+acct+") PAUSED → ACTIVE") {
		t.Fatalf("undo --dry-run: exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	if len(w.fake.Writes()) != writes {
		t.Fatal("undo --dry-run wrote to the API")
	}

	// Flags before the id work too.
	stdout, stderr, code = w.rulesd("undo", "--config", cfg, arg)
	if code != 0 {
		t.Fatalf("undo: exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	want := fmt.Sprintf("action %d: status of ad 'spender' (%s) restored PAUSED → ACTIVE; rules leave it alone until ", id, acct)
	if !strings.Contains(stdout, want) {
		t.Errorf("stdout = %q, want it to contain %q", stdout, want)
	}
	if o, _ := w.fake.Object(ids["spender"]); o.Status != fakegraph.StatusActive {
		t.Errorf("after undo the spender is %s, want ACTIVE", o.Status)
	}
	if n := len(w.fake.Writes()); n != writes+1 {
		t.Errorf("undo made %d writes, want 1", n-writes)
	}

	// Undoing it again is refused: the undo is the latest change now.
	stdout, stderr, code = w.rulesd("undo", arg, "--config", cfg)
	if code != 1 || !strings.Contains(stderr, "a later change (action ") {
		t.Errorf("second undo: exit %d, want 1 with the reason\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	// So is an id that is not in the log.
	if _, stderr, code := w.rulesd("undo", "999999", "--config", cfg); code != 1 || !strings.Contains(stderr, "no action 999999") {
		t.Errorf("unknown id: exit %d\n%s", code, stderr)
	}
	if strings.Contains(stdout+stderr, fakegraph.DefaultToken) {
		t.Error("the access token appears in the output")
	}
}

// appliedAction returns the id of the applied pause of object, from the state store.
func appliedAction(t *testing.T, w *e2e, object string) int64 {
	t.Helper()
	st, err := state.OpenSQLite(context.Background(), filepath.Join(w.dir, "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	recs, err := st.QueryAudit(context.Background(), state.AuditQuery{ObjectID: object, Result: state.ResultApplied})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || recs[0].Kind != "pause" {
		t.Fatalf("applied records of %s: %+v", object, recs)
	}
	return recs[0].ID
}
