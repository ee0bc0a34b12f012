package app

import (
	"regexp"
	"sort"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/rulesd/rulesd/internal/graph"
	"github.com/rulesd/rulesd/internal/insights"
	"github.com/rulesd/rulesd/internal/metrics"
	"github.com/rulesd/rulesd/internal/notify"
)

// RegisterMetrics registers every metric rulesd exports on reg, so that all of them
// are exposed from the first scrape.
func RegisterMetrics(reg prometheus.Registerer) (*metrics.Engine, error) {
	m, err := metrics.New(reg)
	if err != nil {
		return nil, err
	}
	for _, register := range []func(prometheus.Registerer) error{graph.RegisterMetrics, insights.RegisterMetrics, notify.RegisterMetrics} {
		if err := register(reg); err != nil {
			return nil, err
		}
	}
	return m, nil
}

var fqName = regexp.MustCompile(`fqName: "([^"]+)"`)

// MetricNames lists the names of every metric the binary exports (histograms by
// their base name), for checks that alerts and dashboards name only real metrics.
func MetricNames() []string {
	rec := &recorder{Registerer: prometheus.NewRegistry()}
	if _, err := RegisterMetrics(rec); err != nil {
		panic(err) // a fresh registry cannot conflict
	}
	rec.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	ch := make(chan *prometheus.Desc)
	go func() {
		defer close(ch)
		for _, c := range rec.collectors {
			c.Describe(ch)
		}
	}()
	seen := map[string]bool{}
	for d := range ch {
		if m := fqName.FindStringSubmatch(d.String()); m != nil {
			seen[m[1]] = true
		}
	}
	out := make([]string, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// recorder remembers what is registered through it: a Registry can gather its
// metrics but not list its collectors, and vectors without series gather nothing.
type recorder struct {
	prometheus.Registerer
	collectors []prometheus.Collector
}

func (r *recorder) Register(c prometheus.Collector) error {
	r.collectors = append(r.collectors, c)
	return r.Registerer.Register(c)
}

func (r *recorder) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}
