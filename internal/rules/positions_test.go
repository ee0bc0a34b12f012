package rules

import (
	"strings"
	"testing"

	"github.com/rulesd/rulesd/internal/config"
)

// TestDiagnosticPositions checks that a mistake is reported at the FILE:LINE:COL
// where it was written, also for what is checked after decoding.
func TestDiagnosticPositions(t *testing.T) {
	tests := []struct {
		name, config, rules string
		want                string // one diagnostic, exactly
	}{
		{
			name: "ratio read in where is warned about in where",
			rules: `groups:
- name: g
  rules:
  - name: r
    level: adset
    window: last_7d
    where: campaign.objective == "OUTCOME_SALES" && cpa > 30
    when: roas < 1
    action: {kind: notify}
`,
			want: "r.yaml:7:53: warning: rule r compares cpa without any volume condition",
		},
		{
			name: "ratio read in when",
			rules: `groups:
- name: g
  rules:
  - name: r
    level: adset
    window: last_7d
    where: campaign.objective == "OUTCOME_SALES"
    when: effective_status == "ACTIVE" && roas < 1
    action: {kind: notify}
`,
			want: "r.yaml:8:43: warning: rule r compares roas without any volume condition",
		},
		{
			name: "max_actions_per_run below 1",
			rules: `groups:
- name: g
  max_actions_per_run: 0
  rules:
  - name: r
    level: adset
    window: last_7d
    when: spend > 1
    action: {kind: notify}
`,
			want: "r.yaml:3:24: max_actions_per_run must be at least 1",
		},
		{
			name:   "the config's default schedule is checked",
			config: "accounts: [act_1]\nschedule: \"*/30 * * *\"\n",
			rules: `groups:
- name: g
  rules:
  - name: r
    level: adset
    window: last_7d
    when: spend > 1
    action: {kind: notify}
`,
			want: `rulesd.yaml:2:11: schedule: invalid schedule "*/30 * * *"`,
		},
		{
			name:   "the config's default schedule too frequent",
			config: "accounts: [act_1]\nschedule: \"@every 5m\"\n",
			rules: `groups:
- name: g
  rules:
  - name: r
    level: adset
    window: last_7d
    when: spend > 1
    action: {kind: notify}
`,
			want: "rulesd.yaml:2:11: warning: schedule runs every 5m0s",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var opts Options
			if tt.config != "" {
				cfg, l := config.Parse("rulesd.yaml", []byte(tt.config))
				if cfg == nil {
					t.Fatal(l.Err())
				}
				opts.Config = cfg
			}
			_, l := Load([]Source{{Name: "r.yaml", Data: []byte(tt.rules)}}, opts)
			var got []string
			for _, d := range l {
				got = append(got, d.String())
			}
			if len(got) != 1 || !strings.HasPrefix(got[0], tt.want) {
				t.Errorf("diagnostics:\n%s\nwant one starting %q", strings.Join(got, "\n"), tt.want)
			}
		})
	}
}
