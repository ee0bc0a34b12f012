package app

import (
	"github.com/rulesd/rulesd/internal/config"
	"github.com/rulesd/rulesd/internal/diag"
	"github.com/rulesd/rulesd/internal/rules"
)

// Load reads the config and its rule files; the error lists every problem.
// Warnings come back with a loaded set.
func Load(configPath string) (*config.Config, *rules.Set, diag.List, error) {
	cfg, l := config.Load(configPath)
	if cfg == nil {
		return nil, nil, l, l.Err()
	}
	paths, err := cfg.RuleFilePaths()
	if err != nil {
		return nil, nil, l, err
	}
	set, more := rules.LoadFiles(paths, rules.Options{Config: cfg})
	l = append(l, more...)
	if set == nil {
		return nil, nil, l, l.Err()
	}
	return cfg, set, l, nil
}
