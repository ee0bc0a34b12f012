package rules

import (
	"go.yaml.in/yaml/v3"

	"github.com/rulesd/rulesd/internal/diag"
	"github.com/rulesd/rulesd/internal/yamlx"
)

// The YAML shapes of a rule file (SPEC section 3), decoded strictly with positions.

type fileSpec struct {
	Pos     diag.Pos    `yaml:"-" kind:"rule file"`
	Metrics yaml.Node   `yaml:"metrics"`
	Groups  []groupSpec `yaml:"groups,required"`
}

type groupSpec struct {
	Pos              diag.Pos     `yaml:"-" kind:"group"`
	Node             *yaml.Node   `yaml:"-"`
	Name             yamlx.Scalar `yaml:"name,required"`
	Schedule         yamlx.Scalar `yaml:"schedule"`
	Timezone         yamlx.Scalar `yaml:"timezone"`
	Accounts         accountsSpec `yaml:"accounts"`
	DryRun           *bool        `yaml:"dry_run"`
	MaxActionsPerRun *int         `yaml:"max_actions_per_run"`
	Rules            []ruleSpec   `yaml:"rules,required"`
}

type ruleSpec struct {
	Pos         diag.Pos          `yaml:"-" kind:"rule"`
	Name        yamlx.Scalar      `yaml:"name,required"`
	Description string            `yaml:"description"`
	Level       yamlx.Scalar      `yaml:"level,required"`
	Window      yamlx.Scalar      `yaml:"window,required"`
	Where       yamlx.Scalar      `yaml:"where"`
	When        yamlx.Scalar      `yaml:"when,required"`
	For         yamlx.Scalar      `yaml:"for"`
	Cooldown    yamlx.Scalar      `yaml:"cooldown"`
	DryRun      *bool             `yaml:"dry_run"`
	Labels      map[string]string `yaml:"labels"`
	Action      actionSpec        `yaml:"action,required"`
	Notify      []yamlx.Scalar    `yaml:"notify"`
}

type actionSpec struct {
	Pos          diag.Pos     `yaml:"-" kind:"action"`
	Kind         yamlx.Scalar `yaml:"kind,required"`
	RestoreAfter yamlx.Scalar `yaml:"restore_after"`
	Amount       yamlx.Scalar `yaml:"amount"`
	By           yamlx.Scalar `yaml:"by"`
	Min          yamlx.Scalar `yaml:"min"`
	Max          yamlx.Scalar `yaml:"max"`
	Budget       yamlx.Scalar `yaml:"budget"`
	Message      yamlx.Scalar `yaml:"message"`
}

// accountsSpec is a group's accounts: a list of ids and label selectors, or one
// selector.
type accountsSpec struct {
	set   bool
	items []accountItem
}

type accountItem struct {
	pos    diag.Pos
	id     string
	labels map[string]string
}

func (a *accountsSpec) DecodeYAML(d *yamlx.Decoder, n *yaml.Node, key string) {
	a.set = true
	items := []*yaml.Node{n}
	if n.Kind == yaml.SequenceNode {
		items = n.Content
	}
	for _, it := range items {
		item := accountItem{pos: d.Pos(it)}
		switch it.Kind {
		case yaml.ScalarNode:
			item.id = it.Value
		case yaml.MappingNode:
			var sel struct {
				Pos    diag.Pos          `yaml:"-" kind:"account selector"`
				Labels map[string]string `yaml:"labels,required"`
			}
			d.Decode(it, &sel)
			item.labels = sel.Labels
		default:
			d.Errorf(it, "accounts must list account ids (act_123) or {labels: {name: value}} selectors")
			continue
		}
		a.items = append(a.items, item)
	}
}
