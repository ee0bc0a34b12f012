// Package rulefiles embeds the example rule files, so that `rulesd demo` runs them
// with nothing but the binary.
package rulefiles

import "embed"

// FS holds the example rule files (*.yaml in this directory).
//
//go:embed *.yaml
var FS embed.FS
