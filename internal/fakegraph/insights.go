package fakegraph

import (
	"encoding/base64"
	"encoding/json"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// insightsQuery is a parsed insights request.
type insightsQuery struct {
	acct      *account
	scope     *object // nil: the whole account
	level     Kind
	fields    []string
	preset    string // set when the range depends on data (maximum)
	from, to  day
	increment string // "all_days", "monthly" or a number of days
	meta      []filter
	metrics   []filter
	windows   []string
	sortField string
	sortDesc  bool
}

var insightsDims = map[string]bool{
	"account_id": true, "account_name": true, "account_currency": true, "campaign_id": true, "campaign_name": true,
	"adset_id": true, "adset_name": true, "ad_id": true, "ad_name": true, "objective": true,
	"optimization_goal": true, "buying_type": true, "date_start": true, "date_stop": true,
}

var insightsScalars = map[string]bool{
	"spend": true, "impressions": true, "reach": true, "clicks": true, "inline_link_clicks": true,
	"frequency": true, "ctr": true, "cpc": true, "cpm": true, "cpp": true, "inline_link_click_ctr": true,
	"cost_per_inline_link_click": true,
}

var insightsLists = map[string]bool{
	"actions": true, "action_values": true, "cost_per_action_type": true, "purchase_roas": true,
	"website_purchase_roas": true,
}

var levelRank = map[Kind]int{KindAd: 0, KindAdSet: 1, KindCampaign: 2, KindAccount: 3}

func (s *Server) parseInsights(r *request, n node) (*insightsQuery, *APIError) {
	p := r.params
	q := &insightsQuery{acct: n.acct, scope: n.obj, level: KindAccount}
	if n.obj != nil {
		q.level = n.obj.kind
	}
	if lv := p.Get("level"); lv != "" {
		k := Kind(lv)
		if _, ok := levelRank[k]; !ok {
			return nil, errParam("level must be one of {ad, adset, campaign, account}")
		}
		q.level = k
	}
	fields := p.Get("fields")
	if fields == "" {
		fields = "impressions,spend"
	}
	for _, f := range strings.Split(fields, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if !insightsDims[f] && !insightsScalars[f] && !insightsLists[f] {
			return nil, errParam("%s is not valid for fields param. please check https://developers.facebook.com/docs/marketing-api/reference/ads-insights/ for all valid values", f)
		}
		q.fields = append(q.fields, f)
	}
	if p.Get("breakdowns") != "" {
		return nil, errParam("breakdowns are not supported by the simulated API")
	}
	if p.Get("time_ranges") != "" {
		return nil, errParam("time_ranges is not supported by the simulated API")
	}
	if ab := p.Get("action_breakdowns"); ab != "" && strings.Trim(ab, `[]" `) != "action_type" {
		return nil, errParam("only action_breakdowns=action_type is supported by the simulated API")
	}
	today := dayOf(s.now(), n.acct.loc)
	if tr := p.Get("time_range"); tr != "" {
		var rng struct{ Since, Until string }
		if err := json.Unmarshal([]byte(tr), &rng); err != nil {
			return nil, errParam("param time_range must be an object {since, until}")
		}
		from, err1 := parseDay(rng.Since)
		to, err2 := parseDay(rng.Until)
		if err1 != nil || err2 != nil || to < from {
			return nil, errParam("time_range must have since <= until as YYYY-MM-DD dates")
		}
		if today-from > 37*31 {
			return nil, &APIError{Message: "(#3018) The start date of the time range cannot be beyond 37 months from the current date", Code: 3018}
		}
		q.from, q.to = from, to
	} else {
		preset := p.Get("date_preset")
		if preset == "" {
			preset = "last_30d"
		}
		var ok bool
		q.from, q.to, ok = presetRange(preset, today)
		if !ok {
			return nil, errParam("date_preset must be one of the documented presets, got %q", preset)
		}
		if preset == "maximum" || preset == "data_maximum" {
			q.preset = preset
		}
	}
	q.increment = p.Get("time_increment")
	switch q.increment {
	case "", "all_days":
		q.increment = "all_days"
	case "monthly":
	default:
		if n, err := strconv.Atoi(q.increment); err != nil || n < 1 || n > 90 {
			return nil, errParam("time_increment must be all_days, monthly or an integer 1-90")
		}
	}
	filters, e := parseFiltering(p.Get("filtering"))
	if e != nil {
		return nil, e
	}
	for _, f := range filters {
		base := f.field
		if pre, rest, ok := strings.Cut(f.field, "."); ok {
			if pre != "ad" && pre != "adset" && pre != "campaign" {
				return nil, errParam("Filtering field %s is invalid", f.field)
			}
			base = rest
		}
		switch {
		case base == "id" || base == "name" || base == "effective_status" || base == "configured_status" ||
			base == "campaign_id" || base == "adset_id" || base == "objective":
			q.meta = append(q.meta, f)
		case insightsScalars[base]:
			q.metrics = append(q.metrics, filter{field: base, op: f.op, val: f.val})
		default:
			return nil, errParam("Filtering field %s is invalid", f.field)
		}
	}
	if w := p.Get("action_attribution_windows"); w != "" {
		q.windows = parseStatusList(w)
	}
	if so := p.Get("sort"); so != "" {
		list := parseStatusList(so)
		if len(list) > 0 {
			f := list[0]
			switch {
			case strings.HasSuffix(f, "_descending"):
				q.sortField, q.sortDesc = strings.TrimSuffix(f, "_descending"), true
			case strings.HasSuffix(f, "_ascending"):
				q.sortField = strings.TrimSuffix(f, "_ascending")
			}
			if !insightsScalars[q.sortField] {
				return nil, errParam("sort %q is not supported by the simulated API", f)
			}
		}
	}
	return q, nil
}

func civil(d day) (int, time.Month, int) { return time.Unix(int64(d)*86400, 0).UTC().Date() }

func dayFromCivil(y int, m time.Month, dd int) day {
	return day(time.Date(y, m, dd, 0, 0, 0, 0, time.UTC).Unix() / 86400)
}

// presetRange gives the inclusive dates of an Insights date_preset; last_Nd excludes today.
func presetRange(p string, t day) (day, day, bool) {
	y, m, _ := civil(t)
	wd := int((int(t) + 4) % 7) // 0 = Sunday
	switch p {
	case "today":
		return t, t, true
	case "yesterday":
		return t - 1, t - 1, true
	case "last_3d", "last_7d", "last_14d", "last_28d", "last_30d", "last_90d":
		n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(p, "last_"), "d"))
		return t - day(n), t - 1, true
	case "this_month":
		return dayFromCivil(y, m, 1), t, true
	case "last_month":
		first := dayFromCivil(y, m, 1)
		py, pm, _ := civil(first - 1)
		return dayFromCivil(py, pm, 1), first - 1, true
	case "this_quarter":
		return dayFromCivil(y, (m-1)/3*3+1, 1), t, true
	case "last_quarter":
		first := dayFromCivil(y, (m-1)/3*3+1, 1)
		py, pm, _ := civil(first - 1)
		return dayFromCivil(py, (pm-1)/3*3+1, 1), first - 1, true
	case "this_year":
		return dayFromCivil(y, 1, 1), t, true
	case "last_year":
		return dayFromCivil(y-1, 1, 1), dayFromCivil(y-1, 12, 31), true
	case "this_week_mon_today":
		return t - day((wd+6)%7), t, true
	case "this_week_sun_today":
		return t - day(wd), t, true
	case "last_week_mon_sun":
		mon := t - day((wd+6)%7)
		return mon - 7, mon - 1, true
	case "last_week_sun_sat":
		sun := t - day(wd)
		return sun - 7, sun - 1, true
	case "maximum", "data_maximum":
		return t - 37*30, t, true // narrowed to the data by run
	}
	return 0, 0, false
}

// slices splits the range by time_increment.
func (q *insightsQuery) slices() [][2]day {
	switch q.increment {
	case "all_days":
		return [][2]day{{q.from, q.to}}
	case "monthly":
		var out [][2]day
		for d := q.from; d <= q.to; {
			y, m, _ := civil(d)
			y2, m2, _ := civil(dayFromCivil(y, m, 1) + 32)
			end := min(dayFromCivil(y2, m2, 1)-1, q.to)
			out = append(out, [2]day{d, end})
			d = end + 1
		}
		return out
	}
	n, _ := strconv.Atoi(q.increment)
	var out [][2]day
	for d := q.from; d <= q.to; d += day(n) {
		out = append(out, [2]day{d, min(d+day(n)-1, q.to)})
	}
	return out
}

// irow is one insights row before rendering.
type irow struct {
	obj      *object // nil at account level
	from, to day
	m        DayMetrics
}

func (q *insightsQuery) groupOf(ad *object) *object {
	switch q.level {
	case KindAd:
		return ad
	case KindAdSet:
		return ad.adset
	case KindCampaign:
		return ad.campaign
	}
	return nil
}

func metaTarget(ad *object, level Kind, field string) (*object, string) {
	if pre, rest, ok := strings.Cut(field, "."); ok {
		switch pre {
		case "campaign":
			return ad.campaign, rest
		case "adset":
			return ad.adset, rest
		}
		return ad, rest
	}
	switch level {
	case KindAdSet:
		return ad.adset, field
	case KindCampaign:
		return ad.campaign, field
	}
	return ad, field
}

// run computes every row of the query; callers hold mu (read).
func (s *Server) run(q *insightsQuery, now time.Time) []irow {
	var ads []*object
	earliest := q.to + 1
	for _, ad := range q.acct.ads {
		if q.scope != nil && ad != q.scope && ad.adset != q.scope && ad.campaign != q.scope {
			continue
		}
		ok := true
		for _, f := range q.meta {
			t, field := metaTarget(ad, q.level, f.field)
			if !f.match(objectFilterValue(t, field)) {
				ok = false
				break
			}
		}
		if !ok {
			continue
		}
		ads = append(ads, ad)
		if q.preset != "" {
			earliest = min(earliest, dayOf(ad.created, q.acct.loc))
			for d := range ad.days {
				earliest = min(earliest, day(d))
			}
		}
	}
	if q.preset != "" {
		q.from = max(q.from, earliest)
		if q.from > q.to {
			return nil
		}
	}
	slices := q.slices()
	index := map[*object]int{}
	type group struct {
		obj *object
		m   []DayMetrics
	}
	var groups []*group
	for _, ad := range ads {
		g := q.groupOf(ad)
		i, ok := index[g]
		if !ok {
			i = len(groups)
			index[g] = i
			groups = append(groups, &group{obj: g, m: make([]DayMetrics, len(slices))})
		}
		for si, sl := range slices {
			s.adRange(ad, sl[0], sl[1], now, &groups[i].m[si])
		}
	}
	sort.Slice(groups, func(i, j int) bool {
		if groups[i].obj == nil || groups[j].obj == nil {
			return false
		}
		return idLess(groups[i].obj.id, groups[j].obj.id)
	})
	var rows []irow
	for _, g := range groups {
		for si, sl := range slices {
			m := &g.m[si]
			if !m.delivered() {
				continue
			}
			keep := true
			for _, f := range q.metrics {
				v, ok := metricValue(m, f.field)
				if !ok || !f.match(v) {
					keep = false
					break
				}
			}
			if keep {
				rows = append(rows, irow{obj: g.obj, from: sl[0], to: sl[1], m: *m})
			}
		}
	}
	if q.sortField != "" {
		sort.SliceStable(rows, func(i, j int) bool {
			a, _ := metricValue(&rows[i].m, q.sortField)
			b, _ := metricValue(&rows[j].m, q.sortField)
			if q.sortDesc {
				return a > b
			}
			return a < b
		})
	}
	return rows
}

// metricValue computes a scalar metric; ok is false when it is undefined (division by zero).
func metricValue(m *DayMetrics, f string) (float64, bool) {
	div := func(a, b, k float64) (float64, bool) {
		if b == 0 {
			return 0, false
		}
		return a / b * k, true
	}
	switch f {
	case "spend":
		return m.Spend, true
	case "impressions":
		return float64(m.Impressions), true
	case "reach":
		return float64(m.Reach), true
	case "clicks":
		return float64(m.Clicks), true
	case "inline_link_clicks":
		return float64(m.LinkClicks), true
	case "frequency":
		return div(float64(m.Impressions), float64(m.Reach), 1)
	case "ctr":
		return div(float64(m.Clicks), float64(m.Impressions), 100)
	case "cpc":
		return div(m.Spend, float64(m.Clicks), 1)
	case "cpm":
		return div(m.Spend, float64(m.Impressions), 1000)
	case "cpp":
		return div(m.Spend, float64(m.Reach), 1000)
	case "inline_link_click_ctr":
		return div(float64(m.LinkClicks), float64(m.Impressions), 100)
	case "cost_per_inline_link_click":
		return div(m.Spend, float64(m.LinkClicks), 1)
	}
	return 0, false
}

type actionEntry struct {
	typ          string
	count, value float64
}

var (
	purchaseTypes = []string{"purchase", "omni_purchase", "offsite_conversion.fb_pixel_purchase", "onsite_web_purchase"}
	leadTypes     = []string{"lead", "onsite_conversion.lead_grouped"}
	installTypes  = []string{"mobile_app_install", "omni_app_install"}
)

// actionEntries expands the metrics into Meta's overlapping action types, the purchase family
// in an order that varies from row to row (section 13.5).
func actionEntries(m *DayMetrics, rot uint64) []actionEntry {
	var out []actionEntry
	addFamily := func(types []string, c int64, v float64) {
		if c == 0 && v == 0 {
			return
		}
		k := int(rot % uint64(len(types)))
		for i := range types {
			out = append(out, actionEntry{types[(i+k)%len(types)], float64(c), v})
		}
	}
	if m.LinkClicks > 0 {
		out = append(out, actionEntry{"link_click", float64(m.LinkClicks), 0})
	}
	if m.Clicks > 0 {
		out = append(out, actionEntry{"page_engagement", float64(m.Clicks), 0}, actionEntry{"post_engagement", float64(m.Clicks), 0})
	}
	addFamily(purchaseTypes, m.Purchases, m.PurchaseValue)
	addFamily(leadTypes, m.Leads, 0)
	addFamily(installTypes, m.Installs, 0)
	if len(m.Actions) == 0 && len(m.ActionValues) == 0 {
		return out
	}
	seen := map[string]int{}
	for i, e := range out {
		seen[e.typ] = i
	}
	extra := map[string]bool{}
	for k := range m.Actions {
		extra[k] = true
	}
	for k := range m.ActionValues {
		extra[k] = true
	}
	keys := make([]string, 0, len(extra))
	for k := range extra {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if i, ok := seen[k]; ok {
			out[i].count += m.Actions[k]
			out[i].value += m.ActionValues[k]
		} else {
			out = append(out, actionEntry{k, m.Actions[k], m.ActionValues[k]})
		}
	}
	return out
}

func windowSplit(v float64, w string, decimals int) string {
	view := math.Floor(v * 0.1)
	if decimals > 0 {
		view = roundTo(v*0.1, decimals)
	}
	switch {
	case strings.Contains(w, "view"):
		return num(view, 6)
	case strings.Contains(w, "click"):
		return num(v-view, 6)
	}
	return num(v, 6)
}

func statList(entries []actionEntry, pick func(actionEntry) (float64, bool), windows []string, decimals int) []jobj {
	var out []jobj
	for _, e := range entries {
		v, ok := pick(e)
		if !ok {
			continue
		}
		o := jobj{{"action_type", e.typ}, {"value", num(v, 6)}}
		for _, w := range windows {
			o = append(o, kv{w, windowSplit(v, w, decimals)})
		}
		out = append(out, o)
	}
	return out
}

func (s *Server) renderRow(q *insightsQuery, row *irow) jobj {
	a := q.acct
	m := &row.m
	dec := moneyDecimals(a.currency)
	var camp, adset, ad *object
	if o := row.obj; o != nil {
		switch o.kind {
		case KindCampaign:
			camp = o
		case KindAdSet:
			camp, adset = o.campaign, o
		case KindAd:
			camp, adset, ad = o.campaign, o.adset, o
		}
	}
	var entries []actionEntry
	out := make(jobj, 0, len(q.fields)+2)
	seenDates := 0
	for _, f := range q.fields {
		var v any
		switch f {
		case "account_id":
			v = a.num
		case "account_name":
			v = a.name
		case "account_currency":
			v = a.currency
		case "campaign_id", "campaign_name", "objective", "buying_type":
			if camp == nil {
				continue
			}
			switch f {
			case "campaign_id":
				v = camp.id
			case "campaign_name":
				v = camp.name
			case "objective":
				v = camp.objective
			default:
				v = camp.buyingType
			}
		case "adset_id", "adset_name", "optimization_goal":
			if adset == nil {
				continue
			}
			switch f {
			case "adset_id":
				v = adset.id
			case "adset_name":
				v = adset.name
			default:
				v = adset.optGoal
			}
		case "ad_id", "ad_name":
			if ad == nil {
				continue
			}
			v = ad.id
			if f == "ad_name" {
				v = ad.name
			}
		case "date_start":
			v, seenDates = row.from.String(), seenDates|1
		case "date_stop":
			v, seenDates = row.to.String(), seenDates|2
		case "spend":
			v = num(m.Spend, dec)
		case "impressions", "reach", "clicks", "inline_link_clicks":
			x, _ := metricValue(m, f)
			v = count(int64(x))
		case "actions", "action_values", "cost_per_action_type", "purchase_roas", "website_purchase_roas":
			if entries == nil {
				var idNum uint64
				if row.obj != nil {
					idNum = row.obj.num
				}
				entries = actionEntries(m, splitmix(idNum^uint64(row.from)))
			}
			var list []jobj
			switch f {
			case "actions":
				list = statList(entries, func(e actionEntry) (float64, bool) { return e.count, e.count > 0 }, q.windows, 0)
			case "action_values":
				list = statList(entries, func(e actionEntry) (float64, bool) { return roundTo(e.value, 2), e.value > 0 }, q.windows, 2)
			case "cost_per_action_type":
				list = statList(entries, func(e actionEntry) (float64, bool) {
					return roundTo(m.Spend/e.count, 6), e.count > 0 && m.Spend > 0
				}, nil, 6)
			default:
				want := "omni_purchase"
				if f == "website_purchase_roas" {
					want = "offsite_conversion.fb_pixel_purchase"
				}
				list = statList(entries, func(e actionEntry) (float64, bool) {
					return roundTo(e.value/m.Spend, 6), e.typ == want && e.value > 0 && m.Spend > 0
				}, nil, 6)
			}
			if len(list) == 0 {
				continue // section 13.2: empty lists are left out, never []
			}
			v = list
		default: // derived scalars
			x, ok := metricValue(m, f)
			if !ok {
				continue
			}
			v = num(x, 6)
		}
		out = append(out, kv{f, v})
	}
	if seenDates&1 == 0 {
		out = append(out, kv{"date_start", row.from.String()})
	}
	if seenDates&2 == 0 {
		out = append(out, kv{"date_stop", row.to.String()})
	}
	return out
}

// Insights cursors are short base64 offsets, with Graph's "ZD" for "=" padding.
func offsetCursor(i int) string {
	return strings.ReplaceAll(base64.StdEncoding.EncodeToString([]byte(strconv.Itoa(i))), "=", "ZD")
}

func offsetFromCursor(c string) (int, bool) {
	pad := 0
	for pad < 2 && strings.HasSuffix(c, "ZD") {
		c = strings.TrimSuffix(c, "ZD")
		pad++
	}
	b, err := base64.StdEncoding.DecodeString(c + strings.Repeat("=", pad))
	if err != nil {
		return 0, false
	}
	n, err := strconv.Atoi(string(b))
	return n, err == nil && n >= 0
}

// insightsPage answers one page of n rows, rendering only the rows on it.
func (s *Server) insightsPage(r *request, n int, render func(i int) jobj) *response {
	limit, e := s.limitParam(r)
	if e != nil {
		return s.errorResp(e, nil)
	}
	start := 0
	if c := r.params.Get("after"); c != "" {
		i, ok := offsetFromCursor(c)
		if !ok {
			return s.errorResp(errParam("Invalid cursor"), nil)
		}
		start = i + 1
	}
	if c := r.params.Get("before"); c != "" {
		i, ok := offsetFromCursor(c)
		if !ok {
			return s.errorResp(errParam("Invalid cursor"), nil)
		}
		start = max(0, i-limit)
	}
	start = min(start, n)
	end := min(start+limit, n)
	data := make([]jobj, 0, end-start)
	for i := start; i < end; i++ {
		data = append(data, render(i))
	}
	out := jobj{{"data", data}}
	if end > start {
		paging := jobj{{"cursors", jobj{{"before", offsetCursor(start)}, {"after", offsetCursor(end - 1)}}}}
		if start > 0 {
			paging = append(paging, kv{"previous", pageURL(r, "before", offsetCursor(start))})
		}
		if end < n {
			paging = append(paging, kv{"next", pageURL(r, "after", offsetCursor(end-1))})
		}
		out = append(out, kv{"paging", paging})
	}
	// Pre-size: a rendered row is a few hundred bytes, and regrowing dominates large pages.
	return &response{status: 200, header: http.Header{}, body: appendJSON(make([]byte, 0, 1024+(end-start)*512), out)}
}

func (s *Server) syncInsights(r *request, n node) *response {
	q, e := s.parseInsights(r, n)
	if e != nil {
		return s.errorResp(e, nil)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	rows := s.run(q, s.now())
	if s.opts.SyncRowLimit > 0 && len(rows) > s.opts.SyncRowLimit {
		return s.errorResp(NewAPIError(100, 1504018), nil)
	}
	return s.insightsPage(r, len(rows), func(i int) jobj { return s.renderRow(q, &rows[i]) })
}
