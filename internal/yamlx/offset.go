package yamlx

import (
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/rulesd/rulesd/internal/diag"
)

// OffsetPos maps the rune offset off inside scalar n's value to its position in the
// file, for every scalar style: plain, quoted, literal (|) and folded (>), also
// across lines. Without the source text it falls back to the node's own line.
func (d *Decoder) OffsetPos(n *yaml.Node, off int) diag.Pos {
	pos := d.Pos(n)
	if n == nil || d.Src == nil || n.Line == 0 {
		pos.Col += off
		return pos
	}
	lines := strings.Split(string(d.Src), "\n")
	if n.Line > len(lines) {
		return pos
	}
	line, col := n.Line-1, n.Column-1 // zero-based cursor into lines
	switch n.Style {
	case yaml.LiteralStyle, yaml.FoldedStyle:
		line, col = n.Line, 0 // content starts on the line after the indicator
	case yaml.DoubleQuotedStyle, yaml.SingleQuotedStyle:
		col++ // after the opening quote
	}
	value := []rune(n.Value)
	at := func() diag.Pos { return diag.Pos{File: d.File, Line: line + 1, Col: col + 1} }
	// Align the value with the source greedily: every value rune is found at or after
	// the cursor; what the value lacks (indentation, escapes, the newline a fold turned
	// into a space) is skipped. Folding means a value space may stand for a newline.
	for i := 0; i <= off && i < len(value); i++ {
		found := false
		for line < len(lines) {
			src := []rune(lines[line])
			if col >= len(src) {
				if value[i] == ' ' || value[i] == '\n' {
					found = true
					break
				}
				line, col = line+1, 0
				continue
			}
			if src[col] == value[i] {
				found = true
				break
			}
			col++
		}
		if !found {
			pos.Col += off
			return pos
		}
		if i == off {
			return at()
		}
		if src := []rune(lines[line]); col >= len(src) {
			line, col = line+1, 0
		} else {
			col++
		}
	}
	return at()
}
