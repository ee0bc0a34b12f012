package fakegraph

import (
	"math"
	"math/rand"
	"time"
)

// GenSpec sizes a generated data set. Zero fields take the defaults in brackets.
type GenSpec struct {
	Accounts            int // [1]
	CampaignsPerAccount int // [4]
	AdSetsPerCampaign   int // [3]
	AdsPerAdSet         int // [5]; e.g. 10 x 10 x 20 gives 2,000 ads per account
	// HistoryDays is how far back the oldest objects were created [60].
	HistoryDays int
}

// genLocales cycles currencies and time zones: JPY (offset 1, UTC+9), a half-hour zone (INR),
// southern-hemisphere DST (AUD), and US/EU zones with DST.
var genLocales = []struct{ currency, tz string }{
	{"USD", "America/Los_Angeles"}, {"EUR", "Europe/Berlin"}, {"JPY", "Asia/Tokyo"}, {"GBP", "Europe/London"},
	{"BRL", "America/Sao_Paulo"}, {"USD", "America/New_York"}, {"AUD", "Australia/Sydney"}, {"INR", "Asia/Kolkata"},
}

type weighted[T any] struct {
	w float64
	v T
}

func pick[T any](rng *rand.Rand, opts []weighted[T]) T {
	x := rng.Float64()
	for _, o := range opts {
		if x < o.w {
			return o.v
		}
		x -= o.w
	}
	return opts[len(opts)-1].v
}

func between(rng *rand.Rand, lo, hi float64) float64 { return lo + (hi-lo)*rng.Float64() }

var objectiveGoals = map[string][]string{
	"OUTCOME_SALES":         {"OFFSITE_CONVERSIONS", "VALUE"},
	"OUTCOME_LEADS":         {"LEAD_GENERATION", "QUALITY_LEAD"},
	"OUTCOME_APP_PROMOTION": {"APP_INSTALLS"},
	"OUTCOME_TRAFFIC":       {"LINK_CLICKS", "LANDING_PAGE_VIEWS"},
	"OUTCOME_AWARENESS":     {"REACH", "IMPRESSIONS"},
}

var statusMix = []weighted[string]{{0.80, StatusActive}, {0.10, StatusPaused}, {0.05, StatusArchived}, {0.05, StatusDeleted}}

// Generate adds accounts with campaigns, ad sets and ads, deterministically for a seed (and the
// server clock at the time of the call), and returns the new account ids. Objects come in every
// status (ARCHIVED and DELETED included), with and without campaign budget, several currencies
// and time zones. Their daily metrics are computed on demand from the seed: some ads spend
// without purchases, some have a high ROAS, some a high frequency, a few never deliver; today's
// numbers grow with the hour of day in the account's time zone, and stop growing once an ad
// (or a parent) is paused.
func (s *Server) Generate(seed int64, spec GenSpec) ([]string, error) {
	if spec.Accounts <= 0 {
		spec.Accounts = 1
	}
	if spec.CampaignsPerAccount <= 0 {
		spec.CampaignsPerAccount = 4
	}
	if spec.AdSetsPerCampaign <= 0 {
		spec.AdSetsPerCampaign = 3
	}
	if spec.AdsPerAdSet <= 0 {
		spec.AdsPerAdSet = 5
	}
	if spec.HistoryDays <= 0 {
		spec.HistoryDays = 60
	}
	rng := rand.New(rand.NewSource(seed))
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids []string
	for i := 0; i < spec.Accounts; i++ {
		loc := genLocales[i%len(genLocales)]
		id, err := s.addAccountLocked(Account{Currency: loc.currency, TimezoneName: loc.tz})
		if err != nil {
			return ids, err
		}
		acc := s.accounts[id]
		acc.name = "Demo " + loc.currency + " " + acc.num[len(acc.num)-3:]
		ids = append(ids, id)
		for c := 0; c < spec.CampaignsPerAccount; c++ {
			if err := s.genCampaign(rng, acc, c == 0, spec, now); err != nil {
				return ids, err
			}
		}
	}
	return ids, nil
}

func daysAgo(now time.Time, d float64) time.Time {
	return now.Add(-time.Duration(d * 24 * float64(time.Hour))).Truncate(time.Second)
}

// stopSometime marks a generated non-active object as having stopped delivering at a random
// time after its creation.
func stopSometime(rng *rand.Rand, o *object, now time.Time) {
	if o.status != StatusActive {
		o.inactiveSince = o.created.Add(time.Duration(rng.Float64() * float64(now.Sub(o.created))))
	}
}

func (s *Server) genCampaign(rng *rand.Rand, acc *account, first bool, spec GenSpec, now time.Time) error {
	cur := acc.currency
	r, minor := rate(cur), minorPerMajor(cur)
	objective := pick(rng, []weighted[string]{{0.6, "OUTCOME_SALES"}, {0.15, "OUTCOME_LEADS"}, {0.1, "OUTCOME_APP_PROMOTION"}, {0.1, "OUTCOME_TRAFFIC"}, {0.05, "OUTCOME_AWARENESS"}})
	status := pick(rng, statusMix)
	if first {
		status = StatusActive // every account has something live
	}
	cbo := rng.Float64() < 0.4
	c := Campaign{AccountID: acc.id, Objective: objective, Status: status,
		CreatedTime: daysAgo(now, float64(spec.HistoryDays)*between(rng, 0.5, 1))}
	nAds := float64(spec.AdSetsPerCampaign * spec.AdsPerAdSet)
	perAdUSD := 0.0
	if cbo {
		dailyUSD := math.Round(between(rng, 50, 1000))
		if rng.Float64() < 0.2 {
			c.LifetimeBudget = int64(math.Round(dailyUSD*30*r) * minor)
		} else {
			c.DailyBudget = int64(math.Round(dailyUSD*r) * minor)
		}
		c.BidStrategy = pick(rng, []weighted[string]{{0.8, "LOWEST_COST_WITHOUT_CAP"}, {0.2, "LOWEST_COST_WITH_MIN_ROAS"}})
		perAdUSD = dailyUSD / nAds
	}
	co, err := s.addCampaignLocked(c)
	if err != nil {
		return err
	}
	co.name = map[string]string{"OUTCOME_SALES": "Sales", "OUTCOME_LEADS": "Leads", "OUTCOME_APP_PROMOTION": "App",
		"OUTCOME_TRAFFIC": "Traffic", "OUTCOME_AWARENESS": "Awareness"}[objective] + " " + co.id[len(co.id)-4:]
	stopSometime(rng, co, now)
	goals := objectiveGoals[objective]
	for a := 0; a < spec.AdSetsPerCampaign; a++ {
		as := AdSet{CampaignID: co.id, Status: pick(rng, statusMix), OptimizationGoal: goals[rng.Intn(len(goals))],
			CreatedTime: co.created.Add(time.Duration(rng.Float64() * 5 * 24 * float64(time.Hour))).Truncate(time.Second)}
		if as.CreatedTime.After(now) {
			as.CreatedTime = now
		}
		if first && a == 0 {
			as.Status = StatusActive
		}
		adUSD := perAdUSD
		if !cbo {
			dailyUSD := math.Round(between(rng, 10, 300))
			if rng.Float64() < 0.1 {
				as.LifetimeBudget = int64(math.Round(dailyUSD*30*r) * minor)
			} else {
				as.DailyBudget = int64(math.Round(dailyUSD*r) * minor)
			}
			adUSD = dailyUSD / float64(spec.AdsPerAdSet)
		}
		as.BidStrategy = pick(rng, []weighted[string]{{0.7, "LOWEST_COST_WITHOUT_CAP"}, {0.15, "COST_CAP"}, {0.15, "LOWEST_COST_WITH_BID_CAP"}})
		if cbo {
			as.BidStrategy = c.BidStrategy
		}
		if as.BidStrategy == "COST_CAP" || as.BidStrategy == "LOWEST_COST_WITH_BID_CAP" {
			as.BidAmount = int64(math.Round(between(rng, 2, 40)*r) * minor)
		}
		aso, err := s.addAdSetLocked(as)
		if err != nil {
			return err
		}
		stopSometime(rng, aso, now)
		for k := 0; k < spec.AdsPerAdSet; k++ {
			ad := Ad{AdSetID: aso.id, Status: pick(rng, []weighted[string]{{0.78, StatusActive}, {0.12, StatusPaused}, {0.05, StatusArchived}, {0.05, StatusDeleted}}),
				CreatedTime: aso.created.Add(time.Duration(rng.Float64() * float64(now.Sub(aso.created)) * 0.8)).Truncate(time.Second)}
			if first && a == 0 && k == 0 {
				ad.Status = StatusActive
			}
			if x := rng.Float64(); x < 0.02 {
				ad.ReviewStatus = "DISAPPROVED"
			} else if x < 0.04 {
				ad.ReviewStatus, ad.CreatedTime = "PENDING_REVIEW", now.Add(-time.Duration(rng.Intn(180))*time.Minute).Truncate(time.Second)
			}
			ado, err := s.addAdLocked(ad)
			if err != nil {
				return err
			}
			stopSometime(rng, ado, now)
			ado.gen = genProfile(rng, objective, cur, adUSD, seed(rng))
		}
	}
	return nil
}

func seed(rng *rand.Rand) uint64 { return rng.Uint64() }

// genProfile draws an ad's performance archetype.
func genProfile(rng *rand.Rand, objective, cur string, spendUSD float64, sd uint64) *adProfile {
	r := rate(cur)
	p := &adProfile{
		seed:      sd,
		spend:     spendUSD * between(rng, 0.3, 1.7) * r,
		cpm:       between(rng, 5, 25) * r,
		freq:      between(rng, 1.05, 1.6),
		ctr:       between(rng, 0.006, 0.025),
		linkShare: between(rng, 0.5, 0.8),
		aov:       between(rng, 30, 90) * r,
		omniExtra: 0.1,
		decimals:  moneyDecimals(cur),
	}
	switch objective {
	case "OUTCOME_SALES":
		p.cvr = between(rng, 0.02, 0.07)
	case "OUTCOME_LEADS":
		p.leadRate = between(rng, 0.05, 0.15)
	case "OUTCOME_APP_PROMOTION":
		p.instRate = between(rng, 0.1, 0.3)
	default:
		p.cvr = between(rng, 0, 0.004)
	}
	switch x := rng.Float64(); {
	case x < 0.2: // loser: spends, converts nothing
		p.cvr, p.leadRate, p.instRate = 0, 0, 0
	case x < 0.35: // winner: high conversion rate and basket (ROAS well above 3)
		p.cvr *= 3
		p.leadRate *= 2
		p.instRate *= 1.5
		p.aov *= 1.8
	case x < 0.45: // fatigued: shown too often, clicked rarely
		p.freq = between(rng, 3.5, 7)
		p.ctr = between(rng, 0.002, 0.005)
	case x < 0.5: // never delivers
		p.spend = 0
	}
	return p
}
