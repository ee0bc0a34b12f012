package fakegraph

import (
	"encoding/base64"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

func (s *Server) getAccount(r *request, a *account) *response {
	fields, e := parseFields(r.params.Get("fields"))
	if e != nil {
		return s.errorResp(e, nil)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	now := s.now()
	o := jobj{}
	hasID := false
	for _, f := range fields {
		var v any
		switch f.name {
		case "id":
			v, hasID = a.id, true
		case "account_id":
			v = a.num
		case "name":
			v = a.name
		case "currency":
			v = a.currency
		case "timezone_name":
			v = a.tzName
		case "timezone_id":
			v = 1
		case "timezone_offset_hours_utc":
			_, off := now.In(a.loc).Zone()
			v = float64(off) / 3600
		case "account_status":
			v = 1
		case "disable_reason":
			v = 0
		case "min_daily_budget":
			v = s.minDailyBudget(a.currency)
		case "amount_spent":
			var total DayMetrics
			today := dayOf(now, a.loc)
			for _, ad := range a.ads {
				s.adRange(ad, dayOf(ad.created, a.loc)-400, today, now, &total)
			}
			v = count(int64(roundTo(total.Spend*minorPerMajor(a.currency), 0)))
		case "spend_cap", "balance":
			v = "0"
		default:
			return s.errorResp(errParam("Tried accessing nonexisting field (%s) on node type (AdAccount)", f.name), nil)
		}
		o = append(o, kv{f.name, v})
	}
	if !hasID {
		o = append(o, kv{"id", a.id})
	}
	return s.ok(o, nil)
}

func (s *Server) getObject(r *request, o *object) *response {
	fields, e := parseFields(r.params.Get("fields"))
	if e != nil {
		return s.errorResp(e, nil)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	out, e := s.renderObject(o, fields, s.now())
	if e != nil {
		return s.errorResp(e, nil)
	}
	return s.ok(out, nil)
}

// renderObject writes only the requested fields (and always id), in request order.
// Callers hold mu.
func (s *Server) renderObject(o *object, fields []fieldSpec, now time.Time) (jobj, *APIError) {
	out := make(jobj, 0, len(fields)+1)
	hasID := false
	loc := o.acct.loc
	cbo := o.isCBO()
	for _, f := range fields {
		if f.mods != "" {
			return nil, errParam("field modifiers (%s%s) are not supported by the simulated API", f.name, f.mods)
		}
		var v any
		switch f.name {
		case "id":
			v, hasID = o.id, true
		case "name":
			v = o.name
		case "account_id":
			v = o.acct.num
		case "status", "configured_status":
			v = o.status
		case "effective_status":
			v = o.effectiveStatus()
		case "created_time":
			v = fmtTime(o.created, loc)
		case "updated_time":
			v = fmtTime(o.updated, loc)
		case "start_time":
			if o.kind == KindAd {
				return nil, nonexisting(o, f.name)
			}
			v = fmtTime(o.created, loc)
		case "campaign_id":
			if o.kind == KindCampaign {
				return nil, nonexisting(o, f.name)
			}
			v = o.campaign.id
		case "adset_id":
			if o.kind != KindAd {
				return nil, nonexisting(o, f.name)
			}
			v = o.adset.id
		case "campaign", "adset":
			parent := o.campaign
			if f.name == "adset" {
				parent = o.adset
			}
			if parent == nil {
				return nil, nonexisting(o, f.name)
			}
			sub, e := s.renderObject(parent, f.sub, now)
			if e != nil {
				return nil, e
			}
			v = sub
		case "objective", "buying_type", "special_ad_categories":
			if o.kind != KindCampaign {
				return nil, nonexisting(o, f.name)
			}
			switch f.name {
			case "objective":
				v = o.objective
			case "buying_type":
				v = o.buyingType
			default:
				v = []string{}
			}
		case "daily_budget", "lifetime_budget":
			if o.kind == KindAd {
				return nil, nonexisting(o, f.name)
			}
			// Section 13.6: the level that does not hold the budget has no budget keys at all.
			if (o.kind == KindCampaign) != cbo {
				continue
			}
			if f.name == "daily_budget" {
				v = count(o.daily)
			} else {
				v = count(o.lifetime)
			}
		case "budget_remaining":
			if o.kind == KindAd {
				return nil, nonexisting(o, f.name)
			}
			v = "0"
			if (o.kind == KindCampaign) == cbo {
				v = count(s.budgetRemaining(o, now))
			}
		case "bid_amount":
			if o.kind == KindCampaign {
				return nil, nonexisting(o, f.name)
			}
			if o.bid == 0 {
				continue
			}
			v = o.bid
		case "bid_strategy":
			if o.kind == KindAd {
				return nil, nonexisting(o, f.name)
			}
			if o.bidStrategy == "" {
				continue
			}
			v = o.bidStrategy
		case "optimization_goal", "billing_event":
			if o.kind != KindAdSet {
				return nil, nonexisting(o, f.name)
			}
			v = o.optGoal
			if f.name == "billing_event" {
				v = o.billingEvent
			}
		default:
			return nil, nonexisting(o, f.name)
		}
		out = append(out, kv{f.name, v})
	}
	if !hasID {
		out = append(out, kv{"id", o.id})
	}
	return out, nil
}

func nonexisting(o *object, field string) *APIError {
	return errParam("Tried accessing nonexisting field (%s) on node type (%s)", field, node{acct: o.acct, obj: o}.typeName())
}

// budgetRemaining is the budget left today (daily) or overall (lifetime), in minor units.
func (s *Server) budgetRemaining(o *object, now time.Time) int64 {
	loc := o.acct.loc
	var spent DayMetrics
	today := dayOf(now, loc)
	from := today
	if o.lifetime > 0 {
		from = dayOf(o.created, loc)
	}
	for _, ad := range o.acct.ads {
		if ad.adset == o || ad.campaign == o {
			s.adRange(ad, from, today, now, &spent)
		}
	}
	budget := o.daily
	if o.lifetime > 0 {
		budget = o.lifetime
	}
	left := budget - int64(roundTo(spent.Spend*minorPerMajor(o.acct.currency), 0))
	return max(left, 0)
}

// Object-edge cursors are long opaque strings carrying the last id, so paging survives
// concurrent inserts.
func objCursor(id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte("QVFIfakegraph:" + id))
}

func objCursorID(c string) (string, bool) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil || !strings.HasPrefix(string(b), "QVFIfakegraph:") {
		return "", false
	}
	return strings.TrimPrefix(string(b), "QVFIfakegraph:"), true
}

func (s *Server) listEdge(r *request, n node, edge string) *response {
	var childKind Kind
	switch edge {
	case "campaigns":
		childKind = KindCampaign
	case "adsets":
		childKind = KindAdSet
	case "ads":
		childKind = KindAd
	}
	// Only ancestors have these edges: account → all three, campaign → adsets/ads, adset → ads.
	if n.obj != nil && (n.obj.kind == KindAd || childKind == KindCampaign || (n.obj.kind == KindAdSet && childKind == KindAdSet)) {
		return s.errorResp(errParam("Tried accessing nonexisting field (%s) on node type (%s)", edge, n.typeName()), nil)
	}
	fields, e := parseFields(r.params.Get("fields"))
	if e != nil {
		return s.errorResp(e, nil)
	}
	filters, e := parseFiltering(r.params.Get("filtering"))
	if e != nil {
		return s.errorResp(e, nil)
	}
	for _, f := range filters {
		if !objectFilterField(f.field) {
			return s.errorResp(errParam("Filtering field %s is invalid", f.field), nil)
		}
	}
	limit, e := s.limitParam(r)
	if e != nil {
		return s.errorResp(e, nil)
	}
	var updatedSince int64
	if v := r.params.Get("updated_since"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return s.errorResp(errParam("Param updated_since must be a unix timestamp"), nil)
		}
		updatedSince = n
	}
	statuses := parseStatusList(r.params.Get("effective_status"))
	statusFiltered := len(statuses) > 0
	for _, f := range filters {
		if strings.TrimPrefix(f.field, string(childKind)+".") == "effective_status" {
			statusFiltered = true
		}
	}
	var after, before string
	if c := r.params.Get("after"); c != "" {
		id, ok := objCursorID(c)
		if !ok {
			return s.errorResp(errParam("Invalid cursor"), nil)
		}
		after = id
	}
	if c := r.params.Get("before"); c != "" {
		id, ok := objCursorID(c)
		if !ok {
			return s.errorResp(errParam("Invalid cursor"), nil)
		}
		before = id
	}

	s.mu.RLock()
	defer s.mu.RUnlock()
	now := s.now()
	var all []*object
	switch childKind {
	case KindCampaign:
		all = n.acct.campaigns
	case KindAdSet:
		all = n.acct.adsets
	default:
		all = n.acct.ads
	}
	var matched []*object
	for _, o := range all {
		if n.obj != nil && o.campaign != n.obj && o.adset != n.obj {
			continue
		}
		if updatedSince > 0 && o.updated.Unix() < updatedSince {
			continue
		}
		eff := o.effectiveStatus()
		// By default edges leave out DELETED and ARCHIVED objects (ask for them explicitly).
		if !statusFiltered && (eff == StatusDeleted || eff == StatusArchived) {
			continue
		}
		if len(statuses) > 0 && !contains(statuses, eff) {
			continue
		}
		ok := true
		for _, f := range filters {
			if !f.match(objectFilterValue(o, f.field)) {
				ok = false
				break
			}
		}
		if ok {
			matched = append(matched, o)
		}
	}
	total := len(matched)
	start, end := 0, len(matched)
	if after != "" {
		start = sort.Search(len(matched), func(i int) bool { return idLess(after, matched[i].id) })
	}
	if before != "" {
		end = sort.Search(len(matched), func(i int) bool { return !idLess(matched[i].id, before) })
		start = max(0, end-limit)
	}
	if end-start > limit {
		end = start + limit
	}
	page := matched[start:end]
	data := make([]jobj, 0, len(page))
	for _, o := range page {
		row, e := s.renderObject(o, fields, now)
		if e != nil {
			return s.errorResp(e, nil)
		}
		data = append(data, row)
	}
	out := jobj{{"data", data}}
	if len(page) > 0 {
		paging := jobj{{"cursors", jobj{{"before", objCursor(page[0].id)}, {"after", objCursor(page[len(page)-1].id)}}}}
		if start > 0 {
			paging = append(paging, kv{"previous", pageURL(r, "before", objCursor(page[0].id))})
		}
		if end < len(matched) {
			paging = append(paging, kv{"next", pageURL(r, "after", objCursor(page[len(page)-1].id))})
		}
		out = append(out, kv{"paging", paging})
	}
	if sm := r.params.Get("summary"); sm != "" && sm != "false" {
		out = append(out, kv{"summary", jobj{{"total_count", total}}})
	}
	return s.ok(out, http.Header{})
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

func objectFilterField(field string) bool {
	return objectFilterValue(nil, field) != nil
}

// objectFilterValue gives the value a filtering field refers to; with o == nil it only
// reports (non-nil) whether the field is supported.
func objectFilterValue(o *object, field string) any {
	target := o
	if p, rest, ok := strings.Cut(field, "."); ok {
		field = rest
		if o != nil {
			switch p {
			case "campaign":
				if o.kind != KindCampaign {
					target = o.campaign
				}
			case "adset":
				if o.kind == KindAd {
					target = o.adset
				}
			case "ad":
			default:
				target = nil
			}
		}
	}
	switch field {
	case "campaign_id", "adset_id", "id", "name", "effective_status", "configured_status", "status", "objective",
		"created_time", "updated_time", "daily_budget", "lifetime_budget", "bid_amount":
	default:
		return nil
	}
	if o == nil {
		return true
	}
	if target == nil {
		return ""
	}
	switch field {
	case "id":
		return target.id
	case "campaign_id":
		if target.kind == KindCampaign {
			return target.id
		}
		return target.campaign.id
	case "adset_id":
		if target.adset != nil {
			return target.adset.id
		}
		return target.id
	case "name":
		return target.name
	case "effective_status":
		return target.effectiveStatus()
	case "configured_status", "status":
		return target.status
	case "objective":
		if target.kind == KindCampaign {
			return target.objective
		}
		return target.campaign.objective
	case "created_time":
		return float64(target.created.Unix())
	case "updated_time":
		return float64(target.updated.Unix())
	case "daily_budget":
		return float64(target.daily)
	case "lifetime_budget":
		return float64(target.lifetime)
	}
	return float64(target.bid)
}
