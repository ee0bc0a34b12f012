package fakegraph

import (
	"fmt"
	"math"
	"time"
)

// DayMetrics is one ad's delivery on one day (account time zone), or a sum of such days.
//
// Purchases, Leads and Installs are reported the way Meta reports them: one purchase appears
// under several overlapping action types at once (purchase, omni_purchase,
// offsite_conversion.fb_pixel_purchase, onsite_web_purchase), leads under lead and
// onsite_conversion.lead_grouped, installs under mobile_app_install and omni_app_install.
// Actions and ActionValues add further action types, or add to the ones above (e.g.
// {"omni_purchase": 1} makes omni_purchase one higher than purchase, as happens in real data).
type DayMetrics struct {
	Spend         float64 // major currency units (e.g. dollars, yen)
	Impressions   int64
	Reach         int64 // summed across days and ads: an over-estimate of real (deduplicated) reach
	Clicks        int64
	LinkClicks    int64 // the API's inline_link_clicks and the link_click action
	Purchases     int64
	PurchaseValue float64 // major units, reported as action_values under the purchase types
	Leads         int64
	Installs      int64
	Actions       map[string]float64
	ActionValues  map[string]float64
}

func (m *DayMetrics) add(o *DayMetrics) {
	m.Spend += o.Spend
	m.Impressions += o.Impressions
	m.Reach += o.Reach
	m.Clicks += o.Clicks
	m.LinkClicks += o.LinkClicks
	m.Purchases += o.Purchases
	m.PurchaseValue += o.PurchaseValue
	m.Leads += o.Leads
	m.Installs += o.Installs
	m.Actions = addMap(m.Actions, o.Actions)
	m.ActionValues = addMap(m.ActionValues, o.ActionValues)
}

func addMap(dst, src map[string]float64) map[string]float64 {
	if len(src) == 0 {
		return dst
	}
	if dst == nil {
		dst = make(map[string]float64, len(src))
	}
	for k, v := range src {
		dst[k] += v
	}
	return dst
}

func (m DayMetrics) clone() DayMetrics {
	m.Actions = addMap(nil, m.Actions)
	m.ActionValues = addMap(nil, m.ActionValues)
	return m
}

// delivered tells whether a row exists for these metrics: Meta has no row without delivery.
func (m *DayMetrics) delivered() bool { return m.Spend > 0 || m.Impressions > 0 }

// A day is a civil date counted in days since 1970-01-01.
type day int32

func dayOf(t time.Time, loc *time.Location) day {
	y, mo, d := t.In(loc).Date()
	return day(time.Date(y, mo, d, 0, 0, 0, 0, time.UTC).Unix() / 86400)
}

func parseDay(s string) (day, error) {
	t, err := time.Parse("2006-01-02", s)
	if err != nil {
		return 0, fmt.Errorf("fakegraph: date %q: want YYYY-MM-DD", s)
	}
	return day(t.Unix() / 86400), nil
}

// String formats the day as YYYY-MM-DD.
func (d day) String() string { return time.Unix(int64(d)*86400, 0).UTC().Format("2006-01-02") }

// start is the first instant of the day in loc.
func (d day) start(loc *time.Location) time.Time {
	y, mo, dd := time.Unix(int64(d)*86400, 0).UTC().Date()
	return time.Date(y, mo, dd, 0, 0, 0, 0, loc)
}

// Day returns the date offset days from today in the account's time zone (0 = today,
// -1 = yesterday) as YYYY-MM-DD, on the server's clock.
func (s *Server) Day(accountID string, offset int) string {
	s.mu.RLock()
	acc := s.accounts[accountKey(accountID)]
	s.mu.RUnlock()
	if acc == nil {
		return ""
	}
	return (dayOf(s.now(), acc.loc) + day(offset)).String()
}

// SetDaily replaces an ad's metrics for one date (YYYY-MM-DD, account time zone). Explicit
// metrics are served literally, also for today, and take precedence over generated ones.
func (s *Server) SetDaily(adID, date string, m DayMetrics) error {
	return s.putDaily(adID, date, m, false)
}

// AddDaily adds to an ad's explicit metrics for one date.
func (s *Server) AddDaily(adID, date string, m DayMetrics) error {
	return s.putDaily(adID, date, m, true)
}

func (s *Server) putDaily(adID, date string, m DayMetrics, add bool) error {
	d, err := parseDay(date)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	o, err := s.lookup(adID)
	if err != nil {
		return err
	}
	if o.kind != KindAd {
		return fmt.Errorf("fakegraph: metrics are stored per ad; %s is a %s", adID, o.kind)
	}
	if o.days == nil {
		o.days = make(map[int32]DayMetrics)
	}
	if add {
		cur := o.days[int32(d)].clone()
		cur.add(&m)
		o.days[int32(d)] = cur
	} else {
		o.days[int32(d)] = m.clone()
	}
	return nil
}

// Metrics sums the metrics of an ad, ad set, campaign or account ("act_…") over the inclusive
// dates since..until (YYYY-MM-DD, account time zone), exactly as insights would report them.
func (s *Server) Metrics(id, since, until string) (DayMetrics, error) {
	from, err := parseDay(since)
	if err != nil {
		return DayMetrics{}, err
	}
	to, err := parseDay(until)
	if err != nil {
		return DayMetrics{}, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	now := s.now()
	var total DayMetrics
	if acc := s.accounts[accountKey(id)]; acc != nil {
		for _, ad := range acc.ads {
			s.adRange(ad, from, to, now, &total)
		}
		return total, nil
	}
	o, err := s.lookup(id)
	if err != nil {
		return DayMetrics{}, err
	}
	for _, ad := range o.acct.ads {
		if ad == o || ad.adset == o || ad.campaign == o {
			s.adRange(ad, from, to, now, &total)
		}
	}
	return total, nil
}

// adRange adds an ad's metrics for the days from..to into acc.
func (s *Server) adRange(ad *object, from, to day, now time.Time, acc *DayMetrics) {
	loc := ad.acct.loc
	var (
		p                     = ad.gen
		startDay, endDay, tod day
		activeFrom, activeTo  time.Time
	)
	if p != nil {
		// Generated ads deliver from creation until now or until they stopped, whichever is first.
		activeFrom, activeTo = ad.created, now
		if stop, ok := ad.deliveryStop(); ok && stop.Before(activeTo) {
			activeTo = stop
		}
		startDay, endDay, tod = dayOf(activeFrom, loc), dayOf(activeTo, loc), dayOf(now, loc)
		if !activeTo.After(activeFrom) {
			endDay = startDay - 1
		}
	}
	for d := from; d <= to; d++ {
		if m, ok := ad.days[int32(d)]; ok {
			acc.add(&m)
			continue
		}
		if p == nil || d < startDay || d > endDay || d > tod {
			continue
		}
		frac := 1.0
		if d == startDay || d == endDay {
			ds, de := d.start(loc), (d + 1).start(loc)
			a, b := ds, de
			if activeFrom.After(a) {
				a = activeFrom
			}
			if activeTo.Before(b) {
				b = activeTo
			}
			frac = float64(b.Sub(a)) / float64(de.Sub(ds))
			if frac <= 0 {
				continue
			}
		}
		p.addDay(ad, d, frac, acc)
	}
}

// adProfile drives an ad's generated metrics: a pure function of (seed, ad, day) so that
// any date can be served without storing it, and today grows with the clock.
type adProfile struct {
	seed      uint64
	spend     float64 // average full-day spend, major units
	cpm       float64 // major units per 1000 impressions
	freq      float64 // daily impressions per person
	ctr       float64 // clicks per impression
	linkShare float64 // link clicks per click
	cvr       float64 // purchases per link click
	aov       float64 // value per purchase, major units
	leadRate  float64 // leads per link click
	instRate  float64 // installs per link click
	omniExtra float64 // probability that omni_purchase counts one more than purchase
	decimals  int     // money decimals in this currency (0 for offset-1 currencies)
}

func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

func unit(x uint64) float64 { return float64(x>>11) / (1 << 53) }

func roundTo(v float64, decimals int) float64 {
	p := math.Pow10(decimals)
	return math.Round(v*p) / p
}

// addDay adds the generated metrics of one day, scaled by the fraction of the day delivered.
// Every quantity is a non-decreasing function of frac, so "today" only grows with the clock.
func (p *adProfile) addDay(ad *object, d day, frac float64, acc *DayMetrics) {
	h := splitmix(p.seed ^ splitmix(ad.num) ^ uint64(d)*0xd1b54a32d192ed03)
	u1 := unit(h)
	h = splitmix(h)
	u2 := unit(h)
	h = splitmix(h)
	u3 := unit(h)
	h = splitmix(h)
	u4 := unit(h)
	h = splitmix(h)
	u5 := unit(h)
	wd := time.Weekday((int(d) + 4) % 7) // 1970-01-01 was a Thursday
	week := 1.0
	if wd == time.Saturday || wd == time.Sunday {
		week = 0.85
	}
	full := p.spend * (0.6 + 0.8*u1) * week
	spend := roundTo(full*frac, p.decimals)
	if spend <= 0 {
		return
	}
	imps := full / p.cpm * 1000
	clicks := imps * p.ctr * (0.8 + 0.4*u2)
	link := clicks * p.linkShare
	m := DayMetrics{
		Spend:       spend,
		Impressions: int64(imps * frac),
		Reach:       int64(imps / (p.freq * (0.9 + 0.2*u3)) * frac),
		Clicks:      int64(clicks * frac),
		LinkClicks:  int64(link * frac),
		Purchases:   int64(link*p.cvr*frac + u4),
		Leads:       int64(link*p.leadRate*frac + u4),
		Installs:    int64(link*p.instRate*frac + u4),
	}
	if m.Reach > m.Impressions {
		m.Reach = m.Impressions
	}
	if m.Purchases > 0 {
		m.PurchaseValue = roundTo(float64(m.Purchases)*p.aov*(0.7+0.6*u5), 2)
		if u5 < p.omniExtra {
			acc.Actions = addMap(acc.Actions, map[string]float64{"omni_purchase": 1})
			acc.ActionValues = addMap(acc.ActionValues, map[string]float64{"omni_purchase": roundTo(p.aov, 2)})
		}
	}
	acc.add(&m)
}
