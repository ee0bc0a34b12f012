// Package app wires rulesd together: config, rules, state store, Graph clients,
// reader, executor, engine, scheduler, HTTP server and reloads. cmd/rulesd only turns
// flags and signals into Options and calls it.
package app

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/rulesd/rulesd/internal/config"
	"github.com/rulesd/rulesd/internal/graph"
)

// TokenEnv is the environment variable holding the access token when the config
// names no token file.
const TokenEnv = "RULESD_ACCESS_TOKEN"

// graphRouter sends each request to the client of its account's token: accounts of
// another Business Manager carry their own token file.
type graphRouter struct {
	def       *graph.Client
	byAccount map[string]*graph.Client
}

func (g *graphRouter) client(acct string) *graph.Client {
	if c, ok := g.byAccount[acct]; ok {
		return c
	}
	return g.def
}

func (g *graphRouter) Get(ctx context.Context, r graph.Request) ([]byte, error) {
	return g.client(r.Account).Get(ctx, r)
}

func (g *graphRouter) Post(ctx context.Context, r graph.Request) ([]byte, error) {
	return g.client(r.Account).Post(ctx, r)
}

func (g *graphRouter) Pages(ctx context.Context, r graph.Request, fn func([]byte) error) error {
	return g.client(r.Account).Pages(ctx, r, fn)
}

// Batch sends a batch with the token of its first op's account; the executor batches
// one account at a time.
func (g *graphRouter) Batch(ctx context.Context, ops []graph.BatchOp) ([]graph.BatchResult, error) {
	acct := ""
	if len(ops) > 0 {
		acct = ops[0].Account
	}
	return g.client(acct).Batch(ctx, ops)
}

// readSecret reads a secret file, trimming the newline editors and kubectl add.
func readSecret(path string) (graph.Secret, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		// The path is not a secret; the content is.
		return graph.Secret{}, fmt.Errorf("read secret file %s: %w", path, err)
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return graph.Secret{}, fmt.Errorf("secret file %s is empty", path)
	}
	return graph.NewSecret(s), nil
}

// graphOptions are what tests and the demo may change about the clients.
type graphOptions struct {
	httpClient *http.Client
	retry      graph.RetryPolicy
}

// newGraph builds one client per token file.
func newGraph(cfg *config.Config, reg prometheus.Registerer, log *zap.Logger, gopts graphOptions) (*graphRouter, error) {
	var appSecret graph.Secret
	if cfg.Graph.AppSecretFile != "" {
		s, err := readSecret(cfg.Resolve(cfg.Graph.AppSecretFile))
		if err != nil {
			return nil, err
		}
		appSecret = s
	}
	mk := func(tokenFile string) (*graph.Client, error) {
		var tok graph.Secret
		name := "env"
		if tokenFile != "" {
			t, err := readSecret(cfg.Resolve(tokenFile))
			if err != nil {
				return nil, err
			}
			tok, name = t, filepath.Base(tokenFile)
		} else if v := strings.TrimSpace(os.Getenv(TokenEnv)); v != "" {
			tok = graph.NewSecret(v)
		} else {
			return nil, fmt.Errorf("no access token: set graph.access_token_file in the config or %s", TokenEnv)
		}
		return graph.New(graph.Options{
			BaseURL: cfg.Graph.BaseURL, APIVersion: cfg.Graph.APIVersion, Token: tok, TokenName: name, AppSecret: appSecret,
			HTTPClient: gopts.httpClient, Timeout: cfg.Graph.Timeout.Std(), MaxInFlight: cfg.Graph.MaxInFlight,
			Retry: gopts.retry, Logger: log.Named("graph"), Registerer: reg,
		})
	}
	def, err := mk(cfg.Graph.AccessTokenFile)
	if err != nil {
		return nil, err
	}
	def.InitAccounts(cfg.AccountIDs()...)
	r := &graphRouter{def: def, byAccount: map[string]*graph.Client{}}
	byFile := map[string]*graph.Client{}
	for _, a := range cfg.Accounts {
		if a.AccessTokenFile == "" {
			continue
		}
		c, ok := byFile[a.AccessTokenFile]
		if !ok {
			if c, err = mk(a.AccessTokenFile); err != nil {
				return nil, fmt.Errorf("account %s: %w", a.ID, err)
			}
			byFile[a.AccessTokenFile] = c
		}
		r.byAccount[a.ID] = c
	}
	return r, nil
}
