// Package deps pins the modules chosen for rulesd until the packages that use them land.
package deps

import (
	_ "github.com/expr-lang/expr"
	_ "github.com/fsnotify/fsnotify"
	_ "github.com/jackc/pgx/v5"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/robfig/cron/v3"
	_ "go.uber.org/zap"
	_ "go.yaml.in/yaml/v3"
	_ "modernc.org/sqlite"
)
