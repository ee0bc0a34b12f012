package app

import (
	"strings"
	"testing"
)

// TestMetricNamesCoverSpec checks that every metric of SPEC section 8 is exported.
func TestMetricNamesCoverSpec(t *testing.T) {
	spec := []string{"rulesd_build_info", "rulesd_group_runs_total", "rulesd_group_last_run_timestamp_seconds",
		"rulesd_group_last_run_duration_seconds", "rulesd_group_run_duration_seconds", "rulesd_rule_evaluations_total",
		"rulesd_rule_evaluation_errors_total", "rulesd_rule_objects_in_scope", "rulesd_rule_matches", "rulesd_rule_pending",
		"rulesd_actions_total", "rulesd_graph_requests_total", "rulesd_graph_request_duration_seconds",
		"rulesd_graph_throttled_total", "rulesd_graph_usage_ratio", "rulesd_graph_auth_ok", "rulesd_insights_rows_total",
		"rulesd_kill_switch_engaged", "rulesd_config_last_reload_successful", "rulesd_config_last_reload_success_timestamp_seconds"}
	names := MetricNames()
	have := map[string]bool{}
	for _, n := range names {
		have[n] = true
	}
	for _, n := range spec {
		if !have[n] {
			t.Errorf("metric %s is not exported; have %s", n, strings.Join(names, " "))
		}
	}
}
