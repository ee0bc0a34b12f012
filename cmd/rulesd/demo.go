package main

import (
	"context"
	"io"

	"go.uber.org/zap"

	"github.com/rulesd/rulesd/internal/demo"
)

func demoRun(ctx context.Context, listen string, runs int, stdout io.Writer, log *zap.Logger) error {
	return demo.Run(ctx, demo.Options{Listen: listen, Runs: runs, Stdout: stdout, Logger: log})
}
