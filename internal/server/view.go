package server

import (
	"context"
	"time"

	"github.com/rulesd/rulesd/internal/state"
)

// Source gives the status page and GET /api/v1/rules their data. The app implements it
// over the engine; it must be safe for concurrent use and cheap enough to call on every
// page view (read what the engine already keeps, do not query the Marketing API).
type Source interface {
	// Status returns a snapshot of the groups, their rules and the last reload. The
	// server fills Now when it is zero, and Ready and KillSwitches itself (from
	// Options.Ready and Options.Kill) when those options are set.
	Status(ctx context.Context) Status
}

// Reloader reloads the configuration and the rule files (POST /-/reload). A failed
// reload keeps the last good configuration running; that is the Reloader's job.
type Reloader interface {
	// Reload reloads and returns nil, or an error whose text lists every problem, one
	// per line, as FILE:LINE:COL: message.
	Reload(ctx context.Context) error
}

// Status is everything the status page shows and GET /api/v1/rules returns.
type Status struct {
	// Now is when the snapshot was taken; relative times on the page count from it.
	Now time.Time `json:"now"`
	// Ready is what GET /readyz answers: the config is loaded and the store answers.
	Ready bool `json:"ready"`
	// Reload is the outcome of the last reload.
	Reload ReloadStatus `json:"reload"`
	// KillSwitches lists the engaged kill switches; empty when writes may go on.
	KillSwitches []KillSwitchView `json:"kill_switches"`
	// Currencies maps an ad account id to its ISO 4217 currency, so the page can show
	// the audit log's minor-unit amounts as money (5000 -> "50.00 USD"). Accounts
	// missing from it are shown in minor units.
	Currencies map[string]string `json:"currencies,omitempty"`
	// Groups lists the rule groups in configuration order.
	Groups []GroupView `json:"groups"`
}

// ReloadStatus is the outcome of the last configuration reload.
type ReloadStatus struct {
	// OK is false when the last reload failed and an older configuration still runs.
	OK bool `json:"ok"`
	// Time is when the last reload was attempted (the start-up load counts as one).
	Time time.Time `json:"time"`
	// Errors lists every problem of a failed reload, one per entry, as
	// FILE:LINE:COL: message.
	Errors []string `json:"errors,omitempty"`
}

// KillSwitchView is one engaged kill switch (SPEC 4.12).
type KillSwitchView struct {
	// Scope is a human summary: "all", "group G", "account A" or "group G in account A".
	Scope string `json:"scope"`
	// Group and AccountID are the scope's parts; empty means every group or account.
	Group     string `json:"group,omitempty"`
	AccountID string `json:"account_id,omitempty"`
	// Reason and By are what the person who engaged it said, and who that was.
	Reason string `json:"reason,omitempty"`
	By     string `json:"by,omitempty"`
	// EngagedAt is when the switch was engaged.
	EngagedAt time.Time `json:"engaged_at"`
}

// GroupView is one rule group: its schedule, its last run and its rules.
type GroupView struct {
	// Name is the group's name, unique in the configuration.
	Name string `json:"name"`
	// Schedule is as written: "every 30m" or a cron expression.
	Schedule string `json:"schedule"`
	// DryRun is set when the whole group runs dry (config, flag or group).
	DryRun bool `json:"dry_run"`
	// NextRun is the next scheduled run; zero when unknown.
	NextRun time.Time `json:"next_run"`
	// LastRun is nil before the group's first run.
	LastRun *RunView `json:"last_run"`
	// Accounts lists the ad accounts the group runs over.
	Accounts []string `json:"accounts"`
	// Rules lists the group's rules in file order.
	Rules []RuleView `json:"rules"`
}

// RunView is one run of a group over its accounts.
type RunView struct {
	// ID is the run id the audit records carry.
	ID string `json:"id"`
	// Start and End bound the run; End is zero while it runs.
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	// Result is success, partial, failed, skipped (SPEC 8), or running.
	Result string `json:"result"`
	// Accounts maps each account id to its own result.
	Accounts map[string]string `json:"accounts,omitempty"`
	// Errors lists what went wrong, for people ("act_2: insights read failed: …").
	Errors []string `json:"errors,omitempty"`
}

// RuleView is one rule and what it did in the last run.
type RuleView struct {
	// Name and Group identify the rule; Description is the rule file's.
	Name        string `json:"name"`
	Group       string `json:"group"`
	Description string `json:"description,omitempty"`
	// Level is campaign, adset or ad; Window the insights window, e.g. last_7d.
	Level  string `json:"level"`
	Window string `json:"window"`
	// Where, When, For and Cooldown are as written in the rule file (For and
	// Cooldown as durations, the cooldown with its default applied).
	Where    string `json:"where,omitempty"`
	When     string `json:"when"`
	For      string `json:"for,omitempty"`
	Cooldown string `json:"cooldown,omitempty"`
	// ActionKind is the action's kind: pause, unpause, change_budget, notify, ….
	ActionKind string `json:"action_kind"`
	// Action is a human summary, e.g. "change budget by +20%, max 500".
	Action string `json:"action"`
	// DryRun is set when the rule's actions are only recorded (rule, group, config
	// or flag).
	DryRun bool `json:"dry_run"`
	// Labels are the rule's labels.
	Labels map[string]string `json:"labels,omitempty"`
	// InScope, Matches and Pending count objects in the last run (the
	// rulesd_rule_objects_in_scope, _matches and _pending gauges).
	InScope int `json:"in_scope"`
	Matches int `json:"matches"`
	Pending int `json:"pending"`
	// LastMatches lists the objects the rule matched in the last run, for the
	// per-rule page.
	LastMatches []MatchView `json:"last_matches,omitempty"`
}

// MatchView is one object a rule matched in the last run.
type MatchView struct {
	// AccountID, ObjectID and ObjectName identify the object.
	AccountID  string `json:"account_id"`
	ObjectID   string `json:"object_id"`
	ObjectName string `json:"object_name"`
	// Result is an audit result (applied, dry_run, skipped_cooldown, …) or pending.
	Result string `json:"result"`
	// Before and After are display values ("50.00 USD", "PAUSED"); empty when the
	// action writes nothing.
	Before string `json:"before,omitempty"`
	After  string `json:"after,omitempty"`
	// Values are the names the rule read and their values for this object.
	Values map[string]state.Scalar `json:"values,omitempty"`
}
