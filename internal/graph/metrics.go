package graph

import (
	"github.com/prometheus/client_golang/prometheus"

	rulesdmetrics "github.com/rulesd/rulesd/internal/metrics"
)

// metrics are the SPEC 8 graph metrics. All fields are nil-safe through the
// methods below, so a client without a Registerer records nothing.
type metrics struct {
	requests  *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	throttled *prometheus.CounterVec
	usage     *prometheus.GaugeVec
	authOK    *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	if reg == nil {
		return &metrics{}, nil
	}
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rulesd_graph_requests_total",
			Help: "Marketing API HTTP requests by endpoint template and HTTP status (\"error\" when no answer arrived).",
		}, []string{"endpoint", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "rulesd_graph_request_duration_seconds",
			Help:    "Duration of Marketing API HTTP requests by endpoint template.",
			Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"endpoint"}),
		throttled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rulesd_graph_throttled_total",
			Help: "Throttle errors received, by ad account (\"app\" for app-wide limits).",
		}, []string{"account"}),
		usage: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "rulesd_graph_usage_ratio",
			Help: "Last rate-limit usage reported by the API's usage headers, as a ratio (percent / 100; may exceed 1).",
		}, []string{"scope", "account", "kind"}),
		authOK: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "rulesd_graph_auth_ok",
			Help: "1 after a successful Marketing API call with the token, 0 after an authentication error.",
		}, []string{"token"}),
	}
	// Several clients (one per token) share one registry: reuse what the
	// first one registered.
	var err error
	m.requests = register(reg, m.requests, &err)
	m.duration = register(reg, m.duration, &err)
	m.throttled = register(reg, m.throttled, &err)
	m.usage = register(reg, m.usage, &err)
	m.authOK = register(reg, m.authOK, &err)
	if err != nil {
		return nil, err
	}
	return m, nil
}

func register[C prometheus.Collector](reg prometheus.Registerer, c C, errp *error) C {
	c, err := rulesdmetrics.Register(reg, c)
	if err != nil && *errp == nil {
		*errp = err
	}
	return c
}

func (m *metrics) request(endpoint, code string, seconds float64) {
	if m.requests == nil {
		return
	}
	m.requests.WithLabelValues(endpoint, code).Inc()
	m.duration.WithLabelValues(endpoint).Observe(seconds)
}

func (m *metrics) throttle(account string) {
	if m.throttled == nil {
		return
	}
	if account == "" {
		account = "app"
	}
	m.throttled.WithLabelValues(account).Inc()
}

func (m *metrics) observeUsage(r *usageReport) {
	if m.usage == nil {
		return
	}
	for _, v := range r.values {
		m.usage.WithLabelValues(v.scope, v.account, v.kind).Set(v.pct / 100)
	}
}

func (m *metrics) auth(token string, ok bool) {
	if m.authOK == nil {
		return
	}
	v := 0.0
	if ok {
		v = 1
	}
	m.authOK.WithLabelValues(token).Set(v)
}

// RegisterMetrics registers the graph metrics on reg (or finds them there), so that
// they are exported from start-up, before the first call.
func RegisterMetrics(reg prometheus.Registerer) error {
	_, err := newMetrics(reg)
	return err
}

// InitAccounts creates the per-account series at 0, so that alerts on throttling
// work from the first scrape (SPEC 8), and the app-wide one.
func (c *Client) InitAccounts(accounts ...string) {
	if c.m.throttled == nil {
		return
	}
	c.m.throttled.WithLabelValues("app")
	for _, a := range accounts {
		c.m.throttled.WithLabelValues(a)
	}
}
