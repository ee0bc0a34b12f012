package app

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestMetricsLint runs client_golang's linter over every metric rulesd exports, with
// a series of each, and checks a counter's exposition exactly.
func TestMetricsLint(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := RegisterMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	m.GroupRuns.WithLabelValues("stop-loss", "act_1", "success").Add(2)
	m.Actions.WithLabelValues("stop-loss", "pause-spend", "act_1", "pause", "applied").Inc()
	m.GroupRunDuration.WithLabelValues("stop-loss").Observe(1.5)
	m.KillSwitch.WithLabelValues("all").Set(0)
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("metric %s: %s", p.Metric, p.Text)
	}
	want := `# HELP rulesd_group_runs_total Runs of a rule group for one account, by result (success, partial, failed, skipped).
# TYPE rulesd_group_runs_total counter
rulesd_group_runs_total{account="act_1",group="stop-loss",result="success"} 2
`
	if err := testutil.CollectAndCompare(m.GroupRuns, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
	if got := testutil.ToFloat64(m.Actions.WithLabelValues("stop-loss", "pause-spend", "act_1", "pause", "applied")); got != 1 {
		t.Errorf("actions counter = %v", got)
	}
}
