package notify

import (
	"cmp"
	"slices"
	"time"
)

// Event is one decision of a run that a notifier should hear about: an action
// that was applied, dry-run, skipped, blocked or failed, or a rule of kind
// notify that matched. It carries the audit log fields of SPEC section 4 plus
// the rendered message.
type Event struct {
	// Time is when the decision was made.
	Time time.Time
	// RunID identifies the run, as in the audit log.
	RunID string
	// Group and Rule name the rule that decided.
	Group string
	Rule  string
	// AccountID ("act_…") and AccountName identify the ad account.
	AccountID   string
	AccountName string
	// Level is campaign, adset or ad.
	Level string
	// ObjectID and ObjectName identify the object acted on.
	ObjectID   string
	ObjectName string
	// Kind is the action kind: pause, unpause, set_budget, …, notify.
	Kind string
	// Field is what the action changes: status, daily_budget, bid_amount, …;
	// empty for notify.
	Field string
	// Before and After are the field's values: "ACTIVE"/"PAUSED" for status,
	// a number in major currency units for money, nil for notify.
	Before any
	After  any
	// Result is the audit result: applied, dry_run, failed, skipped_*,
	// blocked_guard, blocked_flapping.
	Result string
	// CappedBy names the cap that clipped the target, if any.
	CappedBy string
	// Error is the reason of a failed or blocked action.
	Error string
	// Labels are the rule's labels.
	Labels map[string]string
	// Values are the values the rule saw, by the name its expressions read
	// (numbers, strings, bools; nil or NaN for a missing value).
	Values map[string]any
	// Message is the rendered `message:` template of a notify action.
	Message string
}

// Account identifies an ad account in a digest.
type Account struct {
	ID   string
	Name string
}

// Kind says what a digest is about. Notifiers use it for the title and the
// urgency of the message.
type Kind string

// Digest kinds.
const (
	// KindRun is the normal end-of-run digest: the events of one run for one
	// notifier.
	KindRun Kind = "run"
	// KindGuardTripped reports that the blast-radius guard stopped a rule from
	// acting at all (SPEC 4.5).
	KindGuardTripped Kind = "guard_tripped"
	// KindFlappingBlocked reports that unpauses or increases of an object were
	// blocked because rules kept reversing it (SPEC 4.9).
	KindFlappingBlocked Kind = "flapping_blocked"
	// KindAuthFailure reports that an access token was rejected and writes
	// with it stopped (SPEC 4.13).
	KindAuthFailure Kind = "auth_failure"
)

// Digest is what a notifier sends: one message per run and notifier, or one
// alert of a special kind. Notifiers treat it as read-only.
type Digest struct {
	// Kind is what the digest is about; empty means KindRun.
	Kind Kind
	// Time is when the digest was made (the end of the run, or the alert).
	Time time.Time
	// RunID and Group identify the run; empty for an alert outside a run.
	RunID string
	Group string
	// Rule names the rule of a guard or flapping alert.
	Rule string
	// Accounts are the accounts the digest is about.
	Accounts []Account
	// Reason is a human sentence for a special kind, e.g. "would act on 37 of
	// 40 objects in scope (limit 20); nothing was done".
	Reason string
	// Events are the decisions, in the order they were made. At most
	// Options.MaxEventsPerDigest of them are kept; Omitted counts the rest.
	Events []Event
	// Omitted is the number of events not kept in Events.
	Omitted int
	// Counts is the number of events by result, including omitted ones.
	Counts map[string]int
}

// Total is the number of events the digest reports, including omitted ones.
func (d Digest) Total() int { return len(d.Events) + d.Omitted }

// kind returns the digest kind, KindRun when unset.
func (d Digest) kind() Kind {
	if d.Kind == "" {
		return KindRun
	}
	return d.Kind
}

// normalize fills Kind and Counts so that every notifier sees the same
// summary, however the digest was built.
func (d *Digest) normalize() {
	d.Kind = d.kind()
	if d.Counts == nil && len(d.Events) > 0 {
		d.Counts = make(map[string]int)
		for _, e := range d.Events {
			d.Counts[e.Result]++
		}
	}
}

// resultOrder is the order in which result counts are shown: what happened
// first, then what was held back.
var resultOrder = []string{
	"applied", "dry_run", "failed", "blocked_guard", "blocked_flapping",
	"skipped_manual", "skipped_conflict", "skipped_pacing", "skipped_cooldown", "skipped_noop",
}

// sortedResults returns the keys of counts in display order: known results
// in resultOrder, then any others alphabetically.
func sortedResults(counts map[string]int) []string {
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	rank := func(k string) int {
		if i := slices.Index(resultOrder, k); i >= 0 {
			return i
		}
		return len(resultOrder)
	}
	slices.SortFunc(keys, func(a, b string) int {
		return cmp.Or(cmp.Compare(rank(a), rank(b)), cmp.Compare(a, b))
	})
	return keys
}
