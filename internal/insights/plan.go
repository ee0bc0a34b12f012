package insights

import (
	"sort"
	"strings"

	"github.com/rulesd/rulesd/internal/rules"
)

// plan is what to read for a set of rules: per level, whether rules evaluate there,
// the object fields to request, and the windows of insights with their reads.
type plan struct {
	levels [3]levelPlan
}

type levelPlan struct {
	evaluated bool
	read      bool
	fields    map[string]bool
	reads     *rules.Reads // union of the reads of the rules at this level
	windows   []rules.Window
}

var parentFields = map[string]string{
	"objective": "objective", "name": "name", "status": "status", "effective_status": "effective_status",
	"optimization_goal": "optimization_goal", "bid_strategy": "bid_strategy",
}

// attrFields maps an attribute an expression reads to the API fields it comes from.
var attrFields = map[string][]string{
	"daily_budget":     {"daily_budget"},
	"lifetime_budget":  {"lifetime_budget"},
	"budget_remaining": {"budget_remaining"},
	"bid_amount":       {"bid_amount"},
	"age_hours":        {"created_time"},
}

func newPlan(rs []*rules.Rule) *plan {
	p := &plan{}
	for i := range p.levels {
		p.levels[i].fields = map[string]bool{"id": true, "name": true, "status": true, "effective_status": true}
		p.levels[i].reads = rules.NewReads()
	}
	for _, r := range rs {
		lp := &p.levels[r.Level]
		lp.evaluated, lp.read = true, true
		lp.reads.Merge(r.Reads)
	}
	for _, l := range rules.Levels {
		lp := &p.levels[l]
		if !lp.evaluated {
			continue
		}
		lp.windows = lp.reads.Windows()
		if l != rules.LevelCampaign {
			lp.fields["campaign_id"] = true
		}
		if l == rules.LevelAd {
			lp.fields["adset_id"] = true
		}
		for _, a := range lp.reads.Attrs() {
			for _, f := range attrFields[a] {
				lp.fields[f] = true
			}
			parent, field, ok := strings.Cut(a, ".")
			switch {
			case !ok:
				if a == "campaign_budget" {
					// CBO is a property of the campaign: read its budget fields.
					p.needParent(rules.LevelCampaign, l, "daily_budget", "lifetime_budget")
					if l == rules.LevelCampaign || l == rules.LevelAdSet {
						lp.fields["daily_budget"], lp.fields["lifetime_budget"] = true, true
					}
				}
			case parent == "campaign" && field != "id":
				p.needParent(rules.LevelCampaign, l, parentFields[field])
			case parent == "adset" && field != "id":
				p.needParent(rules.LevelAdSet, l, parentFields[field])
			}
		}
	}
	return p
}

// needParent asks for fields of the parent level; at the parent level itself they
// are the object's own fields.
func (p *plan) needParent(parent, from rules.Level, fields ...string) {
	pp := &p.levels[parent]
	pp.read = true
	for _, f := range fields {
		if f != "" {
			pp.fields[f] = true
		}
	}
	_ = from
}

func (lp *levelPlan) fieldList() string {
	out := make([]string, 0, len(lp.fields))
	for f := range lp.fields {
		out = append(out, f)
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}
