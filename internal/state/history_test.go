package state

import (
	"testing"
	"time"
)

var h0 = time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)

func budget(min int, rule string, before, after int64) Change {
	return Change{Time: h0.Add(time.Duration(min) * time.Minute), Group: "g", Rule: rule, ObjectID: "o1",
		Field: FieldDailyBudget, Before: Amount(before), After: Amount(after)}
}

func status(min int, rule, before, after string) Change {
	return Change{Time: h0.Add(time.Duration(min) * time.Minute), Group: "g", Rule: rule, ObjectID: "o1",
		Field: FieldStatus, Before: Status(before), After: Status(after)}
}

func TestDirection(t *testing.T) {
	for _, tc := range []struct {
		c    Change
		want int
	}{
		{budget(0, "r", 5000, 6000), 1},
		{budget(0, "r", 6000, 5000), -1},
		{budget(0, "r", 5000, 5000), 0},
		{Change{Before: Value{}, After: Amount(5000)}, 0}, // from unset: no direction to reverse
		{status(0, "r", "PAUSED", "ACTIVE"), 1},
		{status(0, "r", "ACTIVE", "PAUSED"), -1},
		{status(0, "r", "PAUSED", "PAUSED"), 0},
		{Change{After: Status("ACTIVE")}, 1},
		{Change{After: Status("ARCHIVED")}, 0},
		{Change{}, 0},
	} {
		if got := tc.c.Direction(); got != tc.want {
			t.Errorf("%v -> %v: direction %d, want %d", tc.c.Before, tc.c.After, got, tc.want)
		}
	}
}

func TestHistoryHelpers(t *testing.T) {
	h := []Change{
		budget(0, "up", 5000, 6000),
		status(5, "pause", "ACTIVE", "PAUSED"),
		budget(10, "down", 6000, 5100),
		Change{Time: h0.Add(15 * time.Minute), Rule: "bid", ObjectID: "o1", Field: FieldBidAmount, Before: Amount(100), After: Amount(120)},
		budget(20, "up", 5100, 6100),
		status(25, "unpause", "PAUSED", "ACTIVE"),
		budget(30, "up", 6100, 7000), // same direction: no reversal
		budget(40, "down", 7000, 6000),
	}

	if n := CountChanges(h, h0, FieldDailyBudget, FieldLifetimeBudget); n != 5 {
		t.Errorf("CountChanges(budget) = %d, want 5", n)
	}
	if n := CountChanges(h, h0.Add(20*time.Minute), FieldDailyBudget); n != 3 {
		t.Errorf("CountChanges since 10:20 = %d, want 3 (since is inclusive)", n)
	}
	if n := CountChanges(h, h0, FieldBidAmount); n != 1 {
		t.Errorf("CountChanges(bid) = %d, want 1", n)
	}

	if n := Reversals(h, h0, FieldDailyBudget); n != 3 {
		t.Errorf("Reversals(budget) = %d, want 3 (up, down, up, up, down)", n)
	}
	if n := Reversals(h, h0, FieldStatus); n != 1 {
		t.Errorf("Reversals(status) = %d, want 1", n)
	}
	if n := Reversals(h, h0.Add(15*time.Minute), FieldDailyBudget); n != 1 {
		t.Errorf("Reversals since 10:15 = %d, want 1", n)
	}

	if v, ok := EarliestBefore(h, h0, FieldDailyBudget); !ok || v != Amount(5000) {
		t.Errorf("EarliestBefore = %v, %v; want 5000", v, ok)
	}
	if v, ok := EarliestBefore(h, h0.Add(11*time.Minute), FieldDailyBudget); !ok || v != Amount(5100) {
		t.Errorf("EarliestBefore since 10:11 = %v, %v; want 5100", v, ok)
	}
	if _, ok := EarliestBefore(h, h0.Add(time.Hour), FieldDailyBudget); ok {
		t.Error("EarliestBefore found a change in an empty window")
	}

	// "up" wants to increase: the latest opposing change by another rule is "down" at 10:40.
	if c, ok := Opposing(h, h0, "g", "up", FieldDailyBudget, 1); !ok || c.Rule != "down" || !c.Time.Equal(h0.Add(40*time.Minute)) {
		t.Errorf("Opposing(up) = %+v, %v", c, ok)
	}
	// "down" wants to decrease: "up" at 10:30 opposes it.
	if c, ok := Opposing(h, h0, "g", "down", FieldDailyBudget, -1); !ok || c.Rule != "up" || !c.Time.Equal(h0.Add(30*time.Minute)) {
		t.Errorf("Opposing(down) = %+v, %v", c, ok)
	}
	// The rule's own changes never conflict with it; nor do changes outside the window.
	if _, ok := Opposing(h, h0.Add(41*time.Minute), "g", "up", FieldDailyBudget, 1); ok {
		t.Error("Opposing found a change outside the window")
	}
	if _, ok := Opposing(h[:1], h0, "g", "up", FieldDailyBudget, -1); ok {
		t.Error("a rule's own change opposed it")
	}
	other := []Change{h[0]}
	other[0].Group = "other-group"
	if _, ok := Opposing(other, h0, "g", "up", FieldDailyBudget, -1); !ok {
		t.Error("the same rule name in another group did not oppose")
	}

	by := ChangesByObject(append(h, Change{ObjectID: "o2"}))
	if len(by) != 2 || len(by["o1"]) != len(h) || by["o1"][3].Rule != "bid" {
		t.Errorf("ChangesByObject = %d objects", len(by))
	}
}
