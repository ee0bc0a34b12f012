package state

import (
	"slices"
	"time"
)

// The functions in this file answer the engine's questions about recent changes from
// the slice HistoryStore.RecentChanges returns. They are pure functions rather than
// store methods so that every backend gives the same answers, one query per account
// serves all of them, and they can be tested without a database.

// Direction is the direction of a change: +1 up (a higher budget or bid, or a status
// set to ACTIVE), -1 down (lower, or PAUSED), 0 when it moved nowhere or cannot be
// told.
func (c Change) Direction() int {
	if a, ok := c.After.Amount(); ok {
		b, ok := c.Before.Amount()
		switch {
		case !ok:
			return 0
		case a > b:
			return 1
		case a < b:
			return -1
		}
		return 0
	}
	if s, ok := c.After.Status(); ok {
		if b, _ := c.Before.Status(); b == s {
			return 0
		}
		switch s {
		case "ACTIVE":
			return 1
		case "PAUSED":
			return -1
		}
	}
	return 0
}

// ChangesByObject groups changes by object id, keeping their order.
func ChangesByObject(changes []Change) map[string][]Change {
	m := make(map[string][]Change)
	for _, c := range changes {
		m[c.ObjectID] = append(m[c.ObjectID], c)
	}
	return m
}

// inWindow reports whether c is at or after since and touches one of fields.
func inWindow(c Change, since time.Time, fields []string) bool {
	return !c.Time.Before(since) && slices.Contains(fields, c.Field)
}

// CountChanges counts the changes in h made at or after since to any of fields: the
// pacing count of SPEC 4.8 (at most 2 budget and 2 bid changes per object per hour).
func CountChanges(h []Change, since time.Time, fields ...string) int {
	n := 0
	for _, c := range h {
		if inWindow(c, since, fields) {
			n++
		}
	}
	return n
}

// Reversals counts how often the direction of the changes in h made at or after since
// to any of fields flipped, in time order: a pause after an unpause, a decrease after
// an increase. More than 3 in 24h is flapping (SPEC 4.9). h must be oldest first, as
// RecentChanges returns it.
func Reversals(h []Change, since time.Time, fields ...string) int {
	n, last := 0, 0
	for _, c := range h {
		if !inWindow(c, since, fields) {
			continue
		}
		d := c.Direction()
		if d == 0 {
			continue
		}
		if last != 0 && d != last {
			n++
		}
		last = d
	}
	return n
}

// EarliestBefore returns the Before of the earliest change in h made at or after since
// to any of fields, and false when there is none: the base of the daily increase cap
// of SPEC 4.4 (with none, the base is the current value). h must be oldest first.
func EarliestBefore(h []Change, since time.Time, fields ...string) (Value, bool) {
	for _, c := range h {
		if inWindow(c, since, fields) {
			return c.Before, true
		}
	}
	return Value{}, false
}

// Opposing returns the latest change in h made at or after since to field by a rule
// other than (group, rule) whose direction is the opposite of dir: the cross-group
// conflict of SPEC 4.3.
func Opposing(h []Change, since time.Time, group, rule, field string, dir int) (Change, bool) {
	for i := len(h) - 1; i >= 0; i-- {
		c := h[i]
		if c.Time.Before(since) || c.Field != field || (c.Group == group && c.Rule == rule) {
			continue
		}
		if d := c.Direction(); d != 0 && d == -dir {
			return c, true
		}
	}
	return Change{}, false
}
