// Package server is rulesd's HTTP face (SPEC 7): Prometheus metrics, the Kubernetes
// probes, the reload hook, the JSON API over the audit log and the kill switch, and the
// status page that lets the marketers whose rules run see what rulesd did and why.
//
// Endpoints (SPEC 7):
//
//	GET  /metrics                 Prometheus exposition of Options.Registry
//	GET  /healthz                 200 "ok" while the process serves
//	GET  /readyz                  200 when Options.Ready returns nil, else 503 and the reason
//	POST /-/reload                200 "reloaded", or 400 with every problem, one per line
//	GET  /                        status page (HTML, no script, no external assets)
//	GET  /rules/{group}/{rule}    one rule: its definition, the objects it matched in
//	                              the last run with the values it saw, its recent actions
//	GET  /api/v1/rules            Status as JSON
//	GET  /api/v1/actions          {"actions": [Action...]}, newest first; parameters rule
//	                              (RULE or GROUP/RULE), object, since (RFC 3339 or a
//	                              duration such as 24h), limit (default 100, max 1000),
//	                              and group, account, result
//	POST /api/v1/pause            engage a kill switch (?account=, ?group=, ?reason=)
//	POST /api/v1/resume           release exactly that scope
//
// In /api/v1/actions, before and after are what the store keeps: a status string
// ("ACTIVE", "PAUSED"), an integer in the account currency's minor units for budgets
// and bids (5000 = 50.00 USD), or null (see Action). Parameters that are unknown,
// repeated or malformed are answered 400 with {"error": "..."}. The POST endpoints
// require "Authorization: Bearer $RULESD_ADMIN_TOKEN" when a token is configured.
// Unknown paths are 404, known paths with a wrong method 405.
//
// The package knows nothing of the engine: it reads a Source, calls a Reloader and
// uses the state store's AuditLog and KillSwitches directly, so every part can be
// tested with fakes and a real SQLite store.
package server

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/rulesd/rulesd/internal/state"
)

// Timeouts of the http.Server. WriteTimeout bounds a slow status page or audit query
// as well as a slow client; a reload validates every rule file within it.
const (
	ReadHeaderTimeout = 5 * time.Second
	ReadTimeout       = 15 * time.Second
	WriteTimeout      = 60 * time.Second
	IdleTimeout       = 120 * time.Second
	// ShutdownTimeout is how long Run and Serve wait for requests in flight once their
	// context is done, well inside Kubernetes' 30 s grace period.
	ShutdownTimeout = 10 * time.Second
)

// maxBody caps request bodies: no endpoint takes more than a few form fields.
const maxBody = 64 << 10

// Options configures a Server. Every collaborator may be nil; the endpoints that need
// a missing one answer 503 (or, for the status page, show what they have).
type Options struct {
	// Listen is the address Run listens on, e.g. ":9090".
	Listen string
	// Registry is exposed at GET /metrics.
	Registry prometheus.Gatherer
	// Source gives the status page and GET /api/v1/rules their data.
	Source Source
	// Reloader serves POST /-/reload.
	Reloader Reloader
	// Audit serves GET /api/v1/actions and the recent actions of the status page.
	Audit state.AuditLog
	// Kill serves POST /api/v1/pause and /api/v1/resume and the kill-switch banner.
	Kill state.KillSwitches
	// Ready backs GET /readyz: nil when the config is loaded and the store answers,
	// else the reason. A nil Ready is always ready.
	Ready func(ctx context.Context) error
	// AdminToken, when not empty (RULESD_ADMIN_TOKEN), is the bearer token the
	// mutating endpoints (POST /-/reload, /api/v1/pause, /api/v1/resume) require.
	AdminToken string
	// Logger logs requests that fail and every kill-switch change; nil logs nothing.
	Logger *zap.Logger
	// OnKillSwitch is called after a kill switch is engaged or released, so the app
	// can update the rulesd_kill_switch_engaged gauge.
	OnKillSwitch func()
	// Now is the clock; nil means time.Now. Tests inject one.
	Now func() time.Time
}

// Server serves rulesd's HTTP endpoints. Create it with New.
type Server struct {
	opts    Options
	log     *zap.Logger
	handler http.Handler
	token   [sha256.Size]byte

	mu   sync.Mutex
	addr net.Addr
}

// New returns a Server for opts. It does not listen until Run or Serve.
func New(opts Options) *Server {
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Server{opts: opts, log: opts.Logger}
	if opts.AdminToken != "" {
		s.token = sha256.Sum256([]byte(opts.AdminToken))
	}
	s.handler = s.routes()
	return s
}

// Handler returns the server's HTTP handler, for tests and for mounting elsewhere.
func (s *Server) Handler() http.Handler { return s.handler }

// Addr returns the address the server listens on, or nil before Run or Serve has
// started listening. With Listen ":0" it tells which port was chosen.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// Run listens on Options.Listen and serves until ctx is done, then shuts down
// gracefully (see Serve).
func (s *Server) Run(ctx context.Context) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.opts.Listen)
	if err != nil {
		return fmt.Errorf("http: listen on %q: %w", s.opts.Listen, err)
	}
	return s.Serve(ctx, ln)
}

// Serve serves on ln until ctx is done, then stops accepting connections and waits up
// to ShutdownTimeout (on a fresh context: ctx is already cancelled by then) for the
// requests in flight. It returns nil after a clean shutdown, and closes ln.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	s.mu.Lock()
	s.addr = ln.Addr()
	s.mu.Unlock()
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       ReadTimeout,
		WriteTimeout:      WriteTimeout,
		IdleTimeout:       IdleTimeout,
		ErrorLog:          zap.NewStdLog(s.log.Named("http")),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	s.log.Info("http server listening", zap.String("addr", ln.Addr().String()))
	select {
	case err := <-errc:
		return fmt.Errorf("http: serve on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), ShutdownTimeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	if err != nil {
		// Requests still running after ShutdownTimeout are cut off.
		_ = srv.Close()
	}
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("http: shutdown: %w", err)
	}
	s.log.Info("http server stopped")
	return nil
}

// routes builds the mux. Method patterns make the mux answer 405 (with Allow) for a
// known path and a wrong method, and 404 for unknown paths.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	if s.opts.Registry != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(s.opts.Registry, promhttp.HandlerOpts{
			ErrorLog:          zap.NewStdLog(s.log.Named("metrics")),
			ErrorHandling:     promhttp.ContinueOnError,
			EnableOpenMetrics: true,
		}))
	} else {
		mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "no metrics registry", http.StatusServiceUnavailable)
		})
	}
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.Handle("POST /-/reload", s.admin(s.reload))
	mux.HandleFunc("GET /{$}", s.statusPage)
	mux.HandleFunc("GET /rules/{group}/{rule}", s.rulePage)
	mux.HandleFunc("GET /api/v1/rules", s.apiRules)
	mux.HandleFunc("GET /api/v1/actions", s.apiActions)
	mux.Handle("POST /api/v1/pause", s.admin(s.pause))
	mux.Handle("POST /api/v1/resume", s.admin(s.resume))
	return securityHeaders(mux)
}

// securityHeaders sets headers every response should carry: the status page loads
// nothing from elsewhere and runs no script, and no page may frame it.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'")
		h.Set("Referrer-Policy", "no-referrer")
		next.ServeHTTP(w, r)
	})
}

// admin wraps a mutating handler: when an admin token is configured the request must
// carry it as "Authorization: Bearer <token>". The comparison is of SHA-256 digests in
// constant time, so neither the token's content nor its length leaks through timing.
func (s *Server) admin(next http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		if s.opts.AdminToken == "" {
			next(w, r)
			return
		}
		got, ok := bearer(r.Header.Get("Authorization"))
		sum := sha256.Sum256([]byte(got))
		if !ok || subtle.ConstantTimeCompare(sum[:], s.token[:]) != 1 {
			s.log.Warn("unauthorised request", zap.String("path", r.URL.Path), zap.String("remote", r.RemoteAddr))
			w.Header().Set("WWW-Authenticate", `Bearer realm="rulesd"`)
			writeError(w, http.StatusUnauthorized, "missing or wrong bearer token (RULESD_ADMIN_TOKEN)")
			return
		}
		next(w, r)
	})
}

// bearer extracts the token of an "Authorization: Bearer <token>" header.
func bearer(h string) (string, bool) {
	const prefix = "bearer "
	if len(h) < len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
		return "", false
	}
	tok := strings.TrimSpace(h[len(prefix):])
	return tok, tok != ""
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	writeText(w, http.StatusOK, "ok")
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if err := s.ready(r.Context()); err != nil {
		writeText(w, http.StatusServiceUnavailable, "not ready: "+err.Error())
		return
	}
	writeText(w, http.StatusOK, "ready")
}

func (s *Server) ready(ctx context.Context) error {
	if s.opts.Ready == nil {
		return nil
	}
	return s.opts.Ready(ctx)
}

func (s *Server) reload(w http.ResponseWriter, r *http.Request) {
	if s.opts.Reloader == nil {
		writeText(w, http.StatusServiceUnavailable, "reload is not available")
		return
	}
	if err := s.opts.Reloader.Reload(r.Context()); err != nil {
		s.log.Error("reload via HTTP failed; the last good configuration keeps running", zap.Error(err))
		writeText(w, http.StatusBadRequest, "reload failed; the last good configuration keeps running:\n"+err.Error())
		return
	}
	s.log.Info("reloaded via HTTP")
	writeText(w, http.StatusOK, "reloaded")
}

// writeText writes a plain-text body ending in a newline.
func writeText(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	if !strings.HasSuffix(msg, "\n") {
		msg += "\n"
	}
	_, _ = w.Write([]byte(msg))
}
