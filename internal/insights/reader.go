package insights

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/rulesd/rulesd/internal/config"
	"github.com/rulesd/rulesd/internal/graph"
	"github.com/rulesd/rulesd/internal/metrics"
	"github.com/rulesd/rulesd/internal/money"
	"github.com/rulesd/rulesd/internal/rules"
)

// Graph is the part of the Marketing API client the reader uses.
type Graph interface {
	Get(ctx context.Context, r graph.Request) ([]byte, error)
	Post(ctx context.Context, r graph.Request) ([]byte, error)
	Pages(ctx context.Context, r graph.Request, fn func(body []byte) error) error
}

// PageLimit is the page size of every paged read (SPEC section 12).
const PageLimit = 500

// liveStatuses are the effective statuses read: everything but DELETED and ARCHIVED,
// which no rule acts on.
var liveStatuses = `["ACTIVE","PAUSED","PENDING_REVIEW","DISAPPROVED","PREAPPROVED","PENDING_BILLING_INFO","CAMPAIGN_PAUSED","ADSET_PAUSED","IN_PROCESS","WITH_ISSUES"]`

// Options configure a Reader.
type Options struct {
	Graph Graph
	// Config supplies the action types counted as conversions and the async
	// threshold; Update replaces it on reload.
	Config *config.Config
	Logger *zap.Logger
	// Registerer, when set, receives rulesd_insights_rows_total.
	Registerer prometheus.Registerer
	// Sleep waits between async job polls; tests replace it.
	Sleep func(ctx context.Context, d time.Duration) error
	// AccountTTL is how long account info (currency, time zone) is cached; default 1h.
	AccountTTL time.Duration
}

// Reader reads account snapshots. It is safe for concurrent use by several accounts.
type Reader struct {
	opts     Options
	cfg      atomic.Pointer[config.Config]
	rowsSeen *prometheus.CounterVec
	mu       sync.Mutex
	accounts map[string]cachedAccount
}

type cachedAccount struct {
	acct Account
	at   time.Time
}

// NewReader returns a Reader.
func NewReader(opts Options) (*Reader, error) {
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.Config == nil {
		opts.Config = config.Default()
	}
	if opts.Sleep == nil {
		opts.Sleep = sleep
	}
	if opts.AccountTTL == 0 {
		opts.AccountTTL = time.Hour
	}
	rows, err := rowsCounter(opts.Registerer)
	if err != nil {
		return nil, err
	}
	r := &Reader{opts: opts, accounts: map[string]cachedAccount{}, rowsSeen: rows}
	r.cfg.Store(opts.Config)
	return r, nil
}

// Update replaces the config (a reload).
func (r *Reader) Update(cfg *config.Config) { r.cfg.Store(cfg) }

// RegisterMetrics registers rulesd_insights_rows_total on reg (or finds it there).
func RegisterMetrics(reg prometheus.Registerer) error {
	_, err := rowsCounter(reg)
	return err
}

func rowsCounter(reg prometheus.Registerer) (*prometheus.CounterVec, error) {
	c, err := metrics.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "rulesd_insights_rows_total",
		Help: "Insights rows read, by level and window.",
	}, []string{"level", "window"}))
	if err != nil {
		return nil, fmt.Errorf("register insights metrics: %w", err)
	}
	return c, nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Read reads what rs need for one account at the run's scheduled time at; the rules
// must come from one rule set, whose Layout the rows use. Any failure fails the whole
// read: rules never evaluate on partial data.
func (r *Reader) Read(ctx context.Context, acct config.Account, at time.Time, rs []*rules.Rule) (*Snapshot, error) {
	if len(rs) == 0 {
		return nil, fmt.Errorf("read %s: no rules", acct.ID)
	}
	lay := rs[0].Layout()
	calls := 0
	g := &countingGraph{Graph: r.opts.Graph, n: &calls}
	info, err := r.account(ctx, g, acct.ID)
	if err != nil {
		return nil, err
	}
	snap := &Snapshot{Account: info, At: at, Tables: map[rules.Level]*Table{}}
	p := newPlan(rs)
	var all [3][]Object
	for _, l := range rules.Levels {
		if !p.levels[l].read {
			continue
		}
		objs, err := r.objects(ctx, g, acct.ID, l, &p.levels[l])
		if err != nil {
			return nil, err
		}
		all[l] = objs
	}
	campaigns := indexByID(all[rules.LevelCampaign])
	adsets := indexByID(all[rules.LevelAdSet])
	for _, l := range rules.Levels {
		lp := &p.levels[l]
		if !lp.evaluated {
			continue
		}
		t := newTable(l, all[l])
		t.Rows = lay.NewRows(len(t.Objects))
		for i := range t.Objects {
			o := &t.Objects[i]
			var camp, adset *Object
			switch l {
			case rules.LevelCampaign:
				camp = o
			case rules.LevelAdSet:
				camp, adset = campaigns[o.CampaignID], o
			case rules.LevelAd:
				camp, adset = campaigns[o.CampaignID], adsets[o.AdSetID]
			}
			if camp != nil && l != rules.LevelAd {
				o.CampaignBudget = camp.DailyBudget > 0 || camp.LifetimeBudget > 0
			}
			FillRow(lay, &t.Rows[i], o, camp, adset, &info, &acct, at)
		}
		for _, w := range lp.windows {
			if err := r.insights(ctx, g, lay, acct.ID, t, w, lp.reads, at, info.Location); err != nil {
				return nil, err
			}
		}
		snap.Tables[l] = t
	}
	snap.Requests = calls
	return snap, nil
}

// countingGraph counts calls and pages for one read.
type countingGraph struct {
	Graph
	n *int
}

func (c *countingGraph) Get(ctx context.Context, r graph.Request) ([]byte, error) {
	*c.n++
	return c.Graph.Get(ctx, r)
}

func (c *countingGraph) Post(ctx context.Context, r graph.Request) ([]byte, error) {
	*c.n++
	return c.Graph.Post(ctx, r)
}

func (c *countingGraph) Pages(ctx context.Context, r graph.Request, fn func([]byte) error) error {
	return c.Graph.Pages(ctx, r, func(b []byte) error {
		*c.n++
		return fn(b)
	})
}

func indexByID(objs []Object) map[string]*Object {
	m := make(map[string]*Object, len(objs))
	for i := range objs {
		m[objs[i].ID] = &objs[i]
	}
	return m
}

func (r *Reader) account(ctx context.Context, g Graph, id string) (Account, error) {
	r.mu.Lock()
	c, ok := r.accounts[id]
	r.mu.Unlock()
	if ok && time.Since(c.at) < r.opts.AccountTTL {
		return c.acct, nil
	}
	body, err := g.Get(ctx, graph.Request{Account: id, Path: id, Params: url.Values{"fields": {"id,name,currency,timezone_name"}}})
	if err != nil {
		return Account{}, fmt.Errorf("read account %s: %w", id, err)
	}
	var wire struct {
		ID       string `json:"id"`
		Name     string `json:"name"`
		Currency string `json:"currency"`
		Timezone string `json:"timezone_name"`
	}
	if err := json.Unmarshal(body, &wire); err != nil {
		return Account{}, fmt.Errorf("read account %s: malformed answer: %w", id, err)
	}
	a := Account{ID: id, Name: wire.Name, Currency: strings.ToUpper(wire.Currency), Timezone: wire.Timezone, Location: time.UTC}
	if a.Currency == "" {
		return Account{}, fmt.Errorf("read account %s: the answer has no currency", id)
	}
	if wire.Timezone != "" {
		loc, err := time.LoadLocation(wire.Timezone)
		if err != nil {
			return Account{}, fmt.Errorf("read account %s: unknown time zone %q", id, wire.Timezone)
		}
		a.Location = loc
	}
	r.mu.Lock()
	r.accounts[id] = cachedAccount{acct: a, at: time.Now()}
	r.mu.Unlock()
	return a, nil
}

var edges = [...]string{"campaigns", "adsets", "ads"}

func (r *Reader) objects(ctx context.Context, g Graph, acct string, l rules.Level, lp *levelPlan) ([]Object, error) {
	req := graph.Request{Account: acct, Path: acct + "/" + edges[l], Params: url.Values{
		"fields":           {lp.fieldList()},
		"effective_status": {liveStatuses},
		"limit":            {strconv.Itoa(PageLimit)},
	}}
	var objs []Object
	err := g.Pages(ctx, req, func(body []byte) error {
		return eachDataRow(body, func(s *scanner) error {
			var o Object
			if err := decodeObject(s, &o); err != nil {
				return err
			}
			if o.ID == "" {
				return fmt.Errorf("%w: an object without id", errSyntax)
			}
			objs = append(objs, o)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("read %s of %s: %w", edges[l], acct, err)
	}
	return objs, nil
}

// decodeObject reads one object row; budgets stay in minor units.
func decodeObject(s *scanner, o *Object) error {
	return s.object(func(key []byte, kind byte, v []byte, esc bool) error {
		if kind == kNull {
			return nil
		}
		var str string
		if kind == kString {
			if esc {
				u, err := unescape(v)
				if err != nil {
					return err
				}
				str = u
			} else {
				str = string(v)
			}
		}
		switch string(key) {
		case "id":
			o.ID = str
		case "name":
			o.Name = str
		case "status":
			o.Status = str
		case "effective_status":
			o.EffectiveStatus = str
		case "campaign_id":
			o.CampaignID = str
		case "adset_id":
			o.AdSetID = str
		case "objective":
			o.Objective = str
		case "optimization_goal":
			o.OptimizationGoal = str
		case "bid_strategy":
			o.BidStrategy = str
		case "daily_budget", "lifetime_budget", "budget_remaining", "bid_amount":
			// Budgets are numeric strings; bid_amount may be a number.
			if kind != kString && kind != kNumber {
				return fmt.Errorf("%w: %s is not a number", errSyntax, key)
			}
			f, err := parseNumber(v)
			if err != nil {
				return fmt.Errorf("%s: %w", key, err)
			}
			n := int64(math.Round(f))
			switch string(key) {
			case "daily_budget":
				o.DailyBudget = n
			case "lifetime_budget":
				o.LifetimeBudget = n
			case "budget_remaining":
				o.BudgetRemaining = n
			default:
				o.BidAmount = n
			}
		case "created_time":
			t, err := time.Parse("2006-01-02T15:04:05-0700", str)
			if err != nil {
				t, err = time.Parse(time.RFC3339, str)
			}
			if err != nil {
				return fmt.Errorf("%w: created_time %q", errSyntax, str)
			}
			o.Created = t
		}
		return nil
	})
}

// FillRow sets an object's attributes (its own, its parents', its account's, and
// the run's hour and weekday) in its row; rule tests build rows the same way.
func FillRow(lay *rules.Layout, row *rules.Row, o, camp, adset *Object, info *Account, acct *config.Account, at time.Time) {
	cur := info.Currency
	set := func(name string, minor int64) {
		v := math.NaN() // unset budgets and bids are missing, never 0
		if minor > 0 {
			v = money.ToMajor(minor, cur)
		}
		lay.SetAttr(row, name, v)
	}
	lay.SetString(row, "id", o.ID)
	lay.SetString(row, "name", o.Name)
	lay.SetString(row, "status", o.Status)
	lay.SetString(row, "effective_status", o.EffectiveStatus)
	lay.SetString(row, "account.id", info.ID)
	lay.SetString(row, "account.name", info.Name)
	lay.SetString(row, "account.currency", cur)
	if camp != nil {
		lay.SetString(row, "campaign.id", camp.ID)
		lay.SetString(row, "campaign.name", camp.Name)
		lay.SetString(row, "campaign.status", camp.Status)
		lay.SetString(row, "campaign.effective_status", camp.EffectiveStatus)
		lay.SetString(row, "campaign.objective", camp.Objective)
	} else {
		lay.SetString(row, "campaign.id", o.CampaignID)
	}
	if adset != nil {
		lay.SetString(row, "adset.id", adset.ID)
		lay.SetString(row, "adset.name", adset.Name)
		lay.SetString(row, "adset.status", adset.Status)
		lay.SetString(row, "adset.effective_status", adset.EffectiveStatus)
		lay.SetString(row, "adset.optimization_goal", adset.OptimizationGoal)
		lay.SetString(row, "adset.bid_strategy", adset.BidStrategy)
	} else {
		lay.SetString(row, "adset.id", o.AdSetID)
	}
	set("daily_budget", o.DailyBudget)
	set("lifetime_budget", o.LifetimeBudget)
	set("budget_remaining", o.BudgetRemaining)
	set("bid_amount", o.BidAmount)
	lay.SetBool(row, "campaign_budget", o.CampaignBudget)
	if !o.Created.IsZero() {
		lay.SetAttr(row, "age_hours", at.Sub(o.Created).Hours())
	}
	local := at.In(info.Location)
	lay.SetAttr(row, "hour", float64(local.Hour()))
	lay.SetAttr(row, "weekday", float64(local.Weekday()))
	// Whether rulesd paused it, and when it last changed it, come from the state
	// store: the engine fills them. Until then: not paused by rulesd, never changed.
	lay.SetBool(row, "paused_by_rulesd", false)
	for k, v := range acct.Vars {
		lay.SetAttr(row, "account.vars."+k, v)
	}
	for k, v := range acct.Labels {
		lay.SetString(row, "account.labels."+k, v)
	}
}

// Account returns an account's currency and time zone (cached).
func (r *Reader) Account(ctx context.Context, id string) (Account, error) {
	return r.account(ctx, r.opts.Graph, id)
}
