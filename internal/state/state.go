// Package state is rulesd's state store: everything the engine must remember between
// runs and across restarts to keep the promises of SPEC section 4 — pending `for`
// state, cooldowns, the history of its own changes (pacing, flapping, daily increase
// caps, manual detection), manual holds, write intents, the audit log, the kill switch,
// the last run of each (group, account) and the per-tick leases that let several
// replicas share one database.
//
// The package declares one Store interface made of small ones, so a consumer can ask
// for only what it uses (the HTTP server needs an AuditLog and the KillSwitches, not the
// pending state). SQLite (embedded, one writer) and PostgreSQL (several replicas)
// implement it, and both pass the same behavioural suite, package statetest.
//
// Conventions shared by every method:
//   - times are stored with at least microsecond precision and returned in UTC; a zero
//     time.Time means "not set";
//   - money is an int64 in the account currency's minor units (see Value);
//   - live and dry-run state are kept apart wherever a flag dryRun appears (SPEC 4.7: a
//     dry run never changes what a live run does);
//   - bulk reads take a slice of object ids and cost one query whatever its length;
//   - every method honours its context and wraps errors with what failed.
package state

import (
	"context"
	"errors"
	"time"
)

// Store is the whole state store. Implementations are safe for concurrent use.
type Store interface {
	PendingStore
	CooldownStore
	HistoryStore
	Journal
	AuditLog
	KillSwitches
	RunLog
	Leaser

	// Ping reports whether the store answers, for GET /readyz.
	Ping(ctx context.Context) error
	// Close releases the store's connections. It does not wait for nor cancel calls in
	// flight; the caller stops using the store first.
	Close() error
}

// ErrNotFound is returned (wrapped) when a record asked for by id does not exist.
var ErrNotFound = errors.New("not found")

// ErrIntentCompleted is returned (wrapped) by RecordOutcomes when an outcome names an
// intent that is unknown or already completed: completing an intent twice would
// append its audit record and change twice.
var ErrIntentCompleted = errors.New("intent unknown or already completed")

// Object fields that actions write. They key the change history, the last writes
// and the holds.
const (
	FieldStatus         = "status"
	FieldDailyBudget    = "daily_budget"
	FieldLifetimeBudget = "lifetime_budget"
	FieldBidAmount      = "bid_amount"
)

// Results of an action as the audit log records them (SPEC 4).
const (
	ResultApplied         = "applied"
	ResultDryRun          = "dry_run"
	ResultFailed          = "failed"
	ResultSkippedCooldown = "skipped_cooldown"
	ResultSkippedConflict = "skipped_conflict"
	ResultSkippedNoop     = "skipped_noop"
	ResultSkippedPacing   = "skipped_pacing"
	ResultSkippedManual   = "skipped_manual"
	ResultBlockedGuard    = "blocked_guard"
	ResultBlockedFlapping = "blocked_flapping"
)

// RuleScope names the state of one rule in one ad account: the unit the engine
// evaluates, and so the unit of every bulk pending query.
type RuleScope struct {
	Group     string
	Rule      string
	AccountID string
}

// Pending is the `for` state of one object under one rule (SPEC 4.1).
type Pending struct {
	ObjectID string
	// Since is the scheduled time of the first evaluation of the unbroken run of
	// matches.
	Since time.Time
	// LastEval is the scheduled time of the last successful evaluation that matched;
	// pending lapses when it grows older than max(for, 2 × interval).
	LastEval time.Time
}

// PendingStore keeps the `for` state of SPEC 4.1, which must survive restarts.
type PendingStore interface {
	// GetPending returns the pending state of the given objects under scope, keyed by
	// object id; objects without pending state are absent from the map. One query.
	GetPending(ctx context.Context, scope RuleScope, objectIDs []string) (map[string]Pending, error)
	// ListPending returns every pending object under scope, for the status page.
	ListPending(ctx context.Context, scope RuleScope) ([]Pending, error)
	// PutPending inserts or replaces the given pending states under scope, in one
	// transaction. The engine sets Since only when an object starts pending and bumps
	// LastEval on every successful matching evaluation.
	PutPending(ctx context.Context, scope RuleScope, states []Pending) error
	// DeletePending resets the given objects under scope: the condition stopped
	// matching, or the rule acted. An empty list deletes nothing.
	DeletePending(ctx context.Context, scope RuleScope, objectIDs []string) error
	// ResetPending deletes the pending state of a rule in every account, for a reload
	// that changes the rule's where, when or window.
	ResetPending(ctx context.Context, group, rule string) error
	// LapsePending deletes the pending states under scope whose LastEval is before
	// cutoff (the run's scheduled time minus max(for, 2 × interval)), and returns how
	// many it deleted. Runs that failed to read their data leave LastEval alone, which
	// is what makes pending survive them only for a while.
	LapsePending(ctx context.Context, scope RuleScope, cutoff time.Time) (int64, error)
	// PrunePending deletes pending states of every scope whose LastEval is before
	// cutoff: housekeeping for rules and accounts that left the configuration.
	PrunePending(ctx context.Context, cutoff time.Time) (int64, error)
}

// Cooldown says that a rule may not act on an object again before Until (SPEC 4.2).
type Cooldown struct {
	Group    string
	Rule     string
	ObjectID string
	DryRun   bool
	Until    time.Time
}

// CooldownStore keeps cooldowns, live and dry-run apart.
type CooldownStore interface {
	// SetCooldowns inserts or replaces cooldowns (the key is group, rule, object and
	// dry-run flag; a later cooldown replaces an earlier one), in one transaction.
	SetCooldowns(ctx context.Context, cooldowns []Cooldown) error
	// ActiveCooldowns returns, keyed by object id, the end of each cooldown of
	// (group, rule, dryRun) on the given objects that is still running at at
	// (Until > at). One query.
	ActiveCooldowns(ctx context.Context, group, rule string, dryRun bool, objectIDs []string, at time.Time) (map[string]time.Time, error)
	// PruneCooldowns deletes cooldowns that ended before cutoff.
	PruneCooldowns(ctx context.Context, cutoff time.Time) (int64, error)
}

// Change is one change rulesd made to an object field (or, with DryRun, would have
// made). The history of changes drives pacing, conflicts across groups, flapping and
// the daily increase cap; see the helper functions in history.go.
type Change struct {
	ID        int64 // assigned by the store
	Time      time.Time
	DryRun    bool
	RunID     string
	Group     string
	Rule      string
	AccountID string
	ObjectID  string
	Field     string // one of the Field constants
	Before    Value
	After     Value
	AuditID   int64 // the audit record of this change; set by RecordOutcomes
}

// LastWrite is the value rulesd last wrote to one object field. A current value that
// differs from it was set by a person (SPEC 4.11); a PAUSED status equal to it is
// `paused_by_rulesd`; its Time gives `hours_since_change`; its AuditID tells `rulesd
// undo` whether an action is still the latest change to that field.
type LastWrite struct {
	ObjectID  string
	Field     string
	DryRun    bool
	AccountID string
	Value     Value
	Time      time.Time
	Group     string
	Rule      string
	AuditID   int64 // 0 once the audit record has been deleted by retention
}

// Reasons for a Hold.
const (
	// HoldManual: a person changed the field, or `rulesd undo` restored it; rulesd
	// leaves the field alone (SPEC 4.11).
	HoldManual = "manual"
	// HoldFlapping: the object flapped; unpauses and increases of the field are
	// blocked, pauses and decreases go through (SPEC 4.9).
	HoldFlapping = "flapping"
	// HoldLocked: Meta locked the budget after too many changes (613/1487632, SPEC 4.8).
	HoldLocked = "locked"
)

// Hold keeps rulesd's hands off one object field until Until, for Reason. Holds of
// different reasons on one field coexist.
type Hold struct {
	ObjectID string
	Field    string
	Reason   string // one of the Hold constants
	DryRun   bool
	Until    time.Time
}

// HistoryStore keeps the history of rulesd's changes, the last value it wrote to each
// field and the holds. Changes and last writes enter it through Journal.RecordOutcomes,
// atomically with their audit record.
type HistoryStore interface {
	// RecentChanges returns the changes made in one account since since (inclusive),
	// oldest first, live or dry-run ones. One query per account and run gives the
	// engine everything pacing (1h), conflicts (1h), flapping (24h) and the daily
	// increase cap (24h) need; group them with ChangesByObject.
	RecentChanges(ctx context.Context, dryRun bool, accountID string, since time.Time) ([]Change, error)
	// LastWrites returns the last value written to every field of the given objects.
	// One query.
	LastWrites(ctx context.Context, dryRun bool, objectIDs []string) ([]LastWrite, error)
	// SetHolds inserts or replaces holds (the key is object, field, reason and dry-run
	// flag), in one transaction.
	SetHolds(ctx context.Context, holds []Hold) error
	// ActiveHolds returns the holds on the given objects still running at at
	// (Until > at). One query.
	ActiveHolds(ctx context.Context, dryRun bool, objectIDs []string, at time.Time) ([]Hold, error)
	// PruneHistory deletes changes made before cutoff and holds that ended before it.
	// Last writes are kept: manual detection needs them however old they are. Keep
	// cutoff at least 24h in the past, the longest window the engine looks back.
	PruneHistory(ctx context.Context, cutoff time.Time) (int64, error)
}

// Intent is a write rulesd is about to send: the absolute target, stored before the
// call so that a crash or a lost answer can be reconciled (SPEC 4.6, 4.10).
type Intent struct {
	ID         int64 // assigned by RecordIntents
	Created    time.Time
	RunID      string
	Group      string
	Rule       string
	AccountID  string
	Level      string
	ObjectID   string
	ObjectName string
	Kind       string // the action kind, so reconciliation can write a full audit record
	Field      string
	Before     Value
	Target     Value // never absent: an intent is always an absolute value
}

// Outcome is everything one decided action leaves behind, stored in one transaction
// so that a crash cannot separate them: the audit record, the change it made (if
// any), and the completion of its intent (if it had one). Were the change recorded
// apart from the intent, a crash in between would make rulesd's own write look like a
// person's on the next run.
type Outcome struct {
	// IntentID completes this intent with Audit.Result and Audit.Error; 0 for actions
	// that had none (skips, dry runs, notify).
	IntentID int64
	Audit    AuditRecord
	// Change, when not nil, is added to the history and becomes the field's last write;
	// its AuditID is set to the new record's id.
	Change *Change
}

// Journal keeps write intents and records what came of them.
type Journal interface {
	// RecordIntents stores intents before their write batch is sent, in one
	// transaction, and returns their ids in order.
	RecordIntents(ctx context.Context, intents []Intent) ([]int64, error)
	// UnfinishedIntents returns the intents never completed, oldest first, in one
	// account or, with accountID "", in all: what start-up and a replica taking over
	// an account reconcile. An intent re-sent after reconciliation stays unfinished
	// until its outcome is recorded.
	UnfinishedIntents(ctx context.Context, accountID string) ([]Intent, error)
	// RecordOutcomes stores outcomes in one transaction and returns the new audit
	// record ids in order. If an outcome names an intent that is unknown or already
	// completed, nothing is stored and the error wraps ErrIntentCompleted.
	RecordOutcomes(ctx context.Context, outcomes []Outcome) ([]int64, error)
	// PruneIntents deletes intents completed before cutoff. Unfinished ones are kept
	// whatever their age.
	PruneIntents(ctx context.Context, cutoff time.Time) (int64, error)
}

// AuditRecord is one decision that reached the action stage (SPEC 4, "Audit log"; the
// fields of GET /api/v1/actions in SPEC 7).
type AuditRecord struct {
	ID         int64 // assigned by the store; what `rulesd undo` takes; never reused
	Time       time.Time
	RunID      string
	Group      string
	Rule       string
	AccountID  string
	Level      string
	ObjectID   string
	ObjectName string
	Kind       string
	Field      string
	Before     Value
	After      Value
	Result     string // one of the Result constants
	CappedBy   string
	Error      string
	Labels     map[string]string
	Values     map[string]Scalar // every name the rule's expressions read
	DryRun     bool
}

// AuditQuery filters QueryAudit. Empty fields do not filter.
type AuditQuery struct {
	Group     string
	Rule      string
	ObjectID  string
	AccountID string
	Result    string
	DryRun    *bool     // nil: both
	Since     time.Time // inclusive
	Until     time.Time // exclusive
	// Limit caps the number of records; 0 or less means DefaultAuditLimit.
	Limit int
}

// DefaultAuditLimit is the number of records QueryAudit returns when the query does
// not say: 90 days of audit can be large, and no caller wants all of it by accident.
const DefaultAuditLimit = 100

// AuditKey identifies the records a repeated skip is compared with.
type AuditKey struct {
	Group  string
	Rule   string
	Result string
	DryRun bool
}

// AuditLog is the append-only record of every decision.
type AuditLog interface {
	// AppendAudit appends records in one transaction and returns their ids in order.
	AppendAudit(ctx context.Context, records ...AuditRecord) ([]int64, error)
	// QueryAudit returns the records matching q, newest first (time, then id).
	QueryAudit(ctx context.Context, q AuditQuery) ([]AuditRecord, error)
	// GetAudit returns one record by id; the error wraps ErrNotFound when there is none.
	GetAudit(ctx context.Context, id int64) (AuditRecord, error)
	// LastAudit returns, keyed by object id, the newest record of key for each of the
	// given objects that has one, so that a skip repeated on every tick is recorded
	// once per cooldown period. One query.
	LastAudit(ctx context.Context, key AuditKey, objectIDs []string) (map[string]AuditRecord, error)
	// PruneAudit deletes records older than cutoff (now minus state.retention) and
	// returns how many.
	PruneAudit(ctx context.Context, cutoff time.Time) (int64, error)
}

// KillScope is what a kill switch stops: everything (both empty), one group, one
// account, or one group in one account.
type KillScope struct {
	Group     string
	AccountID string
}

// String names the scope for people and metric labels: "all", "group G", "account A"
// or "group G in account A".
func (k KillScope) String() string {
	switch {
	case k.Group != "" && k.AccountID != "":
		return "group " + k.Group + " in account " + k.AccountID
	case k.Group != "":
		return "group " + k.Group
	case k.AccountID != "":
		return "account " + k.AccountID
	}
	return "all"
}

// KillSwitch is an engaged kill switch (SPEC 4.12).
type KillSwitch struct {
	Scope     KillScope
	Reason    string
	By        string
	EngagedAt time.Time
}

// KillSwitches stores the kill switch, so that it holds across restarts and replicas.
type KillSwitches interface {
	// EngageKillSwitch engages k (engaging an engaged scope again replaces its reason
	// and time).
	EngageKillSwitch(ctx context.Context, k KillSwitch) error
	// ReleaseKillSwitch releases exactly scope (releasing "all" leaves a group's or an
	// account's switch engaged) and reports whether it was engaged.
	ReleaseKillSwitch(ctx context.Context, scope KillScope) (bool, error)
	// ListKillSwitches returns every engaged switch, for the status page.
	ListKillSwitches(ctx context.Context) ([]KillSwitch, error)
	// KillSwitchesFor returns the engaged switches that stop writes of group in
	// account; writes may go on only when it is empty. Checked before every write batch.
	KillSwitchesFor(ctx context.Context, group, accountID string) ([]KillSwitch, error)
}

// RunRecord is one run of a group in an account, for the status page.
type RunRecord struct {
	Group     string
	AccountID string
	RunID     string
	Scheduled time.Time
	Started   time.Time
	Ended     time.Time // zero while running
	Result    string    // success, partial, failed, skipped (SPEC 8), or running
	Error     string
	Counts    map[string]int64 // e.g. objects, matches, applied, failed, skipped
}

// RunLog keeps the last run of each (group, account).
type RunLog interface {
	// RecordRun stores r as the last run of its (group, account), replacing the
	// previous one; the engine may record a run when it starts and again when it ends.
	RecordRun(ctx context.Context, r RunRecord) error
	// LastRuns returns the last run of every (group, account), ordered by group then
	// account.
	LastRuns(ctx context.Context) ([]RunRecord, error)
}

// Leaser hands out per-tick leases so that exactly one replica runs each (group,
// account) per tick (SPEC 10).
type Leaser interface {
	// TryAcquire claims the run of (group, account) at tick for owner and reports
	// whether owner has it: true for the first owner to claim a tick later than any
	// claimed before, and again for that same owner; false for everyone else and for
	// a tick not later than the last one claimed. A replica that died simply loses
	// the next tick to whoever claims it first.
	TryAcquire(ctx context.Context, group, accountID string, tick time.Time, owner string) (bool, error)
}
