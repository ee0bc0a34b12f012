package insights

import "github.com/rulesd/rulesd/internal/rules"

// NewTable returns a table of the objects of one level, indexed by id, for snapshots
// built without the Marketing API (rule unit tests). The caller fills Rows.
func NewTable(level rules.Level, objs []Object) *Table { return newTable(level, objs) }
