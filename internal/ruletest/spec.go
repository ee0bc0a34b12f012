package ruletest

import (
	"go.yaml.in/yaml/v3"

	"github.com/rulesd/rulesd/internal/diag"
	"github.com/rulesd/rulesd/internal/yamlx"
)

// The test file as written, decoded strictly by yamlx: every unknown key, wrong type
// and missing required key is reported with its position.

type fileSpec struct {
	Pos       diag.Pos       `yaml:"-" kind:"the test file"`
	RuleFiles []yamlx.Scalar `yaml:"rule_files,required"`
	Config    *yaml.Node     `yaml:"config"`
	Tests     []testSpec     `yaml:"tests,required"`
}

type testSpec struct {
	Pos     diag.Pos     `yaml:"-" kind:"test"`
	Name    yamlx.Scalar `yaml:"name,required"`
	Account accountSpec  `yaml:"account,required"`
	Objects []objectSpec `yaml:"objects,required"`
	Steps   []stepSpec   `yaml:"steps,required"`
}

type accountSpec struct {
	Pos      diag.Pos     `yaml:"-" kind:"account"`
	ID       yamlx.Scalar `yaml:"id,required"`
	Name     string       `yaml:"name"`
	Currency yamlx.Scalar `yaml:"currency"`
	Timezone yamlx.Scalar `yaml:"timezone"`
}

// parentSpec is a parent written inline under an object: campaign: {id, objective}.
type parentSpec struct {
	Pos              diag.Pos     `yaml:"-" kind:"parent"`
	ID               yamlx.Scalar `yaml:"id,required"`
	Name             string       `yaml:"name"`
	Status           yamlx.Scalar `yaml:"status"`
	EffectiveStatus  string       `yaml:"effective_status"`
	Objective        string       `yaml:"objective"`
	OptimizationGoal string       `yaml:"optimization_goal"`
	BidStrategy      string       `yaml:"bid_strategy"`
	DailyBudget      *float64     `yaml:"daily_budget"`
	LifetimeBudget   *float64     `yaml:"lifetime_budget"`
}

type objectSpec struct {
	Pos              diag.Pos     `yaml:"-" kind:"object"`
	Level            yamlx.Scalar `yaml:"level,required"`
	ID               yamlx.Scalar `yaml:"id,required"`
	Name             string       `yaml:"name"`
	Status           yamlx.Scalar `yaml:"status"`
	EffectiveStatus  string       `yaml:"effective_status"`
	Objective        string       `yaml:"objective"`
	OptimizationGoal string       `yaml:"optimization_goal"`
	BidStrategy      string       `yaml:"bid_strategy"`
	Campaign         *parentSpec  `yaml:"campaign"`
	AdSet            *parentSpec  `yaml:"adset"`
	DailyBudget      *float64     `yaml:"daily_budget"`
	LifetimeBudget   *float64     `yaml:"lifetime_budget"`
	BudgetRemaining  *float64     `yaml:"budget_remaining"`
	BidAmount        *float64     `yaml:"bid_amount"`
	CampaignBudget   *bool        `yaml:"campaign_budget"`
	CreatedTime      yamlx.Scalar `yaml:"created_time"`
}

type stepSpec struct {
	Pos        diag.Pos       `yaml:"-" kind:"step"`
	At         yamlx.Scalar   `yaml:"at,required"`
	Insights   insightsSpec   `yaml:"insights"`
	ObjectsSet objectsSetSpec `yaml:"objects_set"`
	Expect     []expectSpec   `yaml:"expect,required"`
}

// metricsSpec is what Meta reports for one object in one window; counts left out are 0
// (or keep their value from an earlier step).
type metricsSpec struct {
	Pos           diag.Pos           `yaml:"-" kind:"insights"`
	Spend         *float64           `yaml:"spend"`
	Impressions   *float64           `yaml:"impressions"`
	Reach         *float64           `yaml:"reach"`
	Clicks        *float64           `yaml:"clicks"`
	LinkClicks    *float64           `yaml:"link_clicks"`
	Purchases     *float64           `yaml:"purchases"`
	PurchaseValue *float64           `yaml:"purchase_value"`
	Leads         *float64           `yaml:"leads"`
	Installs      *float64           `yaml:"installs"`
	Actions       map[string]float64 `yaml:"actions"`
	ActionValues  map[string]float64 `yaml:"action_values"`
}

// keyed is one entry of a mapping whose keys are names written by the user (a
// window, an object id), with the key's position.
type keyed[T any] struct {
	Key   yamlx.Scalar
	Value T
}

// insightsSpec is {WINDOW: {OBJECT_ID: metrics}}, keeping the order and positions of
// the keys.
type insightsSpec struct {
	Windows []keyed[[]keyed[metricsSpec]]
}

// DecodeYAML implements yamlx.NodeDecoder.
func (s *insightsSpec) DecodeYAML(d *yamlx.Decoder, n *yaml.Node, key string) {
	decodeKeyed(d, n, key, &s.Windows, func(n *yaml.Node, k string, out *[]keyed[metricsSpec]) {
		decodeKeyed(d, n, k, out, func(n *yaml.Node, k string, m *metricsSpec) { d.DecodeField(n, m, k) })
	})
}

// objectChange is a change to an object before a step: a person's edit.
type objectChange struct {
	Pos             diag.Pos     `yaml:"-" kind:"object change"`
	Name            *string      `yaml:"name"`
	Status          yamlx.Scalar `yaml:"status"`
	EffectiveStatus *string      `yaml:"effective_status"`
	DailyBudget     *float64     `yaml:"daily_budget"`
	LifetimeBudget  *float64     `yaml:"lifetime_budget"`
	BudgetRemaining *float64     `yaml:"budget_remaining"`
	BidAmount       *float64     `yaml:"bid_amount"`
}

// objectsSetSpec is {OBJECT_ID: change}.
type objectsSetSpec struct {
	Objects []keyed[objectChange]
}

// DecodeYAML implements yamlx.NodeDecoder.
func (s *objectsSetSpec) DecodeYAML(d *yamlx.Decoder, n *yaml.Node, key string) {
	decodeKeyed(d, n, key, &s.Objects, func(n *yaml.Node, k string, c *objectChange) { d.DecodeField(n, c, k) })
}

type expectSpec struct {
	Pos    diag.Pos     `yaml:"-" kind:"expected action"`
	Rule   yamlx.Scalar `yaml:"rule,required"`
	Object yamlx.Scalar `yaml:"object,required"`
	Action yamlx.Scalar `yaml:"action,required"`
	Result yamlx.Scalar `yaml:"result"`
	After  *afterSpec   `yaml:"after"`
}

// afterSpec is a budget or bid after the action, in major units, with its position.
type afterSpec struct {
	Value float64
	Pos   diag.Pos
}

// DecodeYAML implements yamlx.NodeDecoder.
func (a *afterSpec) DecodeYAML(d *yamlx.Decoder, n *yaml.Node, key string) {
	a.Pos = d.Pos(n)
	v, ok := yamlx.ParseNumber(n)
	if !ok {
		d.Errorf(n, "%s must be a number (major currency units), not %q", yamlx.Describe(key), n.Value)
		return
	}
	a.Value = v
}

// decodeKeyed decodes a mapping into a list of (key, value), in file order, refusing
// duplicate keys.
func decodeKeyed[T any](d *yamlx.Decoder, n *yaml.Node, key string, out *[]keyed[T], decode func(n *yaml.Node, key string, v *T)) {
	for n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return
	}
	if n.Kind != yaml.MappingNode {
		d.Errorf(n, "%s must be a mapping", yamlx.Describe(key))
		return
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if seen[k.Value] {
			d.Errorf(k, "duplicate key %q", k.Value)
			continue
		}
		seen[k.Value] = true
		e := keyed[T]{Key: yamlx.Scalar{Value: k.Value, Pos: d.Pos(k), Node: k}}
		decode(v, k.Value, &e.Value)
		*out = append(*out, e)
	}
}
