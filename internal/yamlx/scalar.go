package yamlx

import (
	"go.yaml.in/yaml/v3"

	"github.com/rulesd/rulesd/internal/diag"
)

// Scalar is a string value that remembers where it was written, for checks made after
// decoding (a cron schedule, an expression, a name that must be unique).
type Scalar struct {
	Value string
	Pos   diag.Pos
	// Node is the scalar's node; expressions use it to map a column inside the
	// value back to the file, also for multi-line and quoted styles.
	Node *yaml.Node
}

// Set reports whether the value was written.
func (s Scalar) Set() bool { return s.Node != nil }

// DecodeYAML implements NodeDecoder.
func (s *Scalar) DecodeYAML(d *Decoder, n *yaml.Node, key string) {
	s.Pos, s.Node = d.Pos(n), n
	if n.Kind != yaml.ScalarNode {
		d.Errorf(n, "%s must be a single value, not a %s", describe(key), kindName(n))
		return
	}
	if isNull(n) {
		return
	}
	s.Value = n.Value
}
