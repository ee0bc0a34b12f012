package rules

import (
	"crypto/sha256"
	"encoding/hex"

	"go.yaml.in/yaml/v3"
)

// hashGroup fingerprints a group's definition as written (values only, not positions
// or comments), so that a reload can keep the schedule timing and state of groups
// that did not change.
func hashGroup(gs *groupSpec) string {
	h := sha256.New()
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		h.Write([]byte{byte(n.Kind), byte(len(n.Content))})
		h.Write([]byte(n.Tag))
		h.Write([]byte{0})
		h.Write([]byte(n.Value))
		h.Write([]byte{0})
		for _, c := range n.Content {
			walk(c)
		}
	}
	if gs.Node != nil {
		walk(gs.Node)
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}
