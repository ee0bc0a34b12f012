// Package metrics defines the engine's Prometheus metrics (SPEC section 8). The Graph
// client, the insights reader and the notifiers register their own; MetricNames in
// package app lists them all.
package metrics

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rulesd/rulesd/internal/version"
)

// Engine holds the metrics of runs, rules, actions, the kill switch and reloads.
type Engine struct {
	BuildInfo            *prometheus.GaugeVec
	GroupRuns            *prometheus.CounterVec
	GroupLastRun         *prometheus.GaugeVec
	GroupLastRunDuration *prometheus.GaugeVec
	GroupRunDuration     *prometheus.HistogramVec
	RuleEvaluations      *prometheus.CounterVec
	RuleEvaluationErrors *prometheus.CounterVec
	RuleObjectsInScope   *prometheus.GaugeVec
	RuleMatches          *prometheus.GaugeVec
	RulePending          *prometheus.GaugeVec
	Actions              *prometheus.CounterVec
	KillSwitch           *prometheus.GaugeVec
	ReloadSuccessful     prometheus.Gauge
	ReloadSuccessTime    prometheus.Gauge
}

// New creates the engine metrics and registers them on reg (nil: not registered). A
// second call on the same registry, after a reload, returns the registered ones.
func New(reg prometheus.Registerer) (*Engine, error) {
	m := &Engine{
		BuildInfo: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "rulesd_build_info", Help: "Always 1; the labels say which build runs.",
		}, []string{"version", "goversion"}),
		GroupRuns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rulesd_group_runs_total", Help: "Runs of a rule group for one account, by result (success, partial, failed, skipped).",
		}, []string{"group", "account", "result"}),
		GroupLastRun: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "rulesd_group_last_run_timestamp_seconds", Help: "When the group last finished a run (Unix time).",
		}, []string{"group"}),
		GroupLastRunDuration: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "rulesd_group_last_run_duration_seconds", Help: "How long the group's last run took.",
		}, []string{"group"}),
		GroupRunDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "rulesd_group_run_duration_seconds", Help: "Duration of group runs.",
			Buckets: []float64{0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600},
		}, []string{"group"}),
		RuleEvaluations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rulesd_rule_evaluations_total", Help: "Objects a rule was evaluated on.",
		}, []string{"group", "rule"}),
		RuleEvaluationErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rulesd_rule_evaluation_errors_total", Help: "Evaluations of a rule that failed (counted as no match).",
		}, []string{"group", "rule"}),
		RuleObjectsInScope: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "rulesd_rule_objects_in_scope", Help: "Objects in the rule's scope (where) in its last run, summed over accounts.",
		}, []string{"group", "rule"}),
		RuleMatches: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "rulesd_rule_matches", Help: "Objects the rule matched in its last run, summed over accounts.",
		}, []string{"group", "rule"}),
		RulePending: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "rulesd_rule_pending", Help: "Objects whose condition holds but whose for: has not yet elapsed.",
		}, []string{"group", "rule"}),
		Actions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rulesd_actions_total", Help: "Action decisions by kind and result (applied, dry_run, failed, skipped_*, blocked_*).",
		}, []string{"group", "rule", "account", "kind", "result"}),
		KillSwitch: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "rulesd_kill_switch_engaged", Help: "1 while a kill switch stops writes, by scope (all, account:ID, group:NAME).",
		}, []string{"scope"}),
		ReloadSuccessful: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "rulesd_config_last_reload_successful", Help: "1 if the last config and rules (re)load succeeded.",
		}),
		ReloadSuccessTime: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "rulesd_config_last_reload_success_timestamp_seconds", Help: "When the config and rules last loaded successfully (Unix time).",
		}),
	}
	m.BuildInfo.WithLabelValues(version.Version, version.GoVersion()).Set(1)
	if reg == nil {
		return m, nil
	}
	var err error
	m.BuildInfo = register(reg, m.BuildInfo, &err)
	m.GroupRuns = register(reg, m.GroupRuns, &err)
	m.GroupLastRun = register(reg, m.GroupLastRun, &err)
	m.GroupLastRunDuration = register(reg, m.GroupLastRunDuration, &err)
	m.GroupRunDuration = register(reg, m.GroupRunDuration, &err)
	m.RuleEvaluations = register(reg, m.RuleEvaluations, &err)
	m.RuleEvaluationErrors = register(reg, m.RuleEvaluationErrors, &err)
	m.RuleObjectsInScope = register(reg, m.RuleObjectsInScope, &err)
	m.RuleMatches = register(reg, m.RuleMatches, &err)
	m.RulePending = register(reg, m.RulePending, &err)
	m.Actions = register(reg, m.Actions, &err)
	m.KillSwitch = register(reg, m.KillSwitch, &err)
	m.ReloadSuccessful = register(reg, m.ReloadSuccessful, &err)
	m.ReloadSuccessTime = register(reg, m.ReloadSuccessTime, &err)
	return m, err
}

func register[C prometheus.Collector](reg prometheus.Registerer, c C, errp *error) C {
	c, err := Register(reg, c)
	if err != nil && *errp == nil {
		*errp = err
	}
	return c
}

// Register registers c on reg, or returns the collector already registered there
// under the same name: after a reload, or when several clients share a registry,
// the series must continue rather than fail. A nil reg registers nothing.
func Register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	if reg == nil {
		return c, nil
	}
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing, nil
			}
		}
		return c, err
	}
	return c, nil
}

// ActionResults are the results an action decision can have (SPEC section 4).
var ActionResults = []string{"applied", "dry_run", "failed", "skipped_cooldown", "skipped_conflict", "skipped_noop", "skipped_pacing", "skipped_manual", "blocked_guard", "blocked_flapping"}

// RunResults are the results of a group run for one account.
var RunResults = []string{"success", "partial", "failed", "skipped"}
