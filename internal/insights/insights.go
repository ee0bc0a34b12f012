package insights

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/rulesd/rulesd/internal/graph"
	"github.com/rulesd/rulesd/internal/rules"
)

var idKeys = [...]string{"campaign_id", "adset_id", "ad_id"}

// scalarFields maps base metrics to the insights fields they are read from; the
// conversions come from the actions lists.
var scalarFields = map[rules.Metric]string{
	rules.Spend: "spend", rules.Impressions: "impressions", rules.Reach: "reach",
	rules.Clicks: "clicks", rules.LinkClicks: "inline_link_clicks",
}

// rowDecoder writes the insights rows of one (level, window) into a table's rows.
type rowDecoder struct {
	t      *Table
	idKey  string
	scalar []fieldSlot // insights fields read, with their Row.Num slots
	// conversions: the configured action types of each kind in priority order, and
	// the slots of the count and (for purchases) the value.
	kinds        []convKind
	actions      map[string]int // explicit actions["x"] slots
	actionValues map[string]int // explicit action_values["x"] slots
	// actionTargets maps an action type to every use of it in this read.
	actionTargets map[string][]actionTarget
	needActions   bool
	needValues    bool
	// per-row scratch, reused
	vals    []float64
	seen    []bool
	convCnt [][]float64 // per kind, per priority: count (NaN when absent)
	convVal [][]float64
	rows    int
}

// actionTarget is one use of an action type: an explicit slot, or a place in a
// conversion kind's priority list; for the actions or the action_values list.
type actionTarget struct {
	slot       int
	kind, prio int
	values     bool
}

type fieldSlot struct {
	field string
	slot  int
}

type convKind struct {
	types     []string
	countSlot int // -1 when not read
	valueSlot int // -1 when not read
}

func (r *Reader) newRowDecoder(lay *rules.Layout, t *Table, w rules.Window, reads *rules.Reads) *rowDecoder {
	d := &rowDecoder{t: t, idKey: idKeys[t.Level], actions: map[string]int{}, actionValues: map[string]int{}}
	slot := func(m rules.Metric) int {
		if i, ok := lay.Num(rules.Key{Kind: rules.KeyMetric, Window: w, Metric: m}); ok {
			return i
		}
		return -1
	}
	for _, m := range reads.Metrics(w) {
		if f, ok := scalarFields[m]; ok {
			if i := slot(m); i >= 0 {
				d.scalar = append(d.scalar, fieldSlot{field: f, slot: i})
			}
		}
	}
	types := r.cfg.Load().Metrics.ActionTypes
	for _, c := range []struct {
		kind         string
		count, value rules.Metric
	}{{"purchase", rules.Purchases, rules.PurchaseValue}, {"lead", rules.Leads, 255}, {"install", rules.Installs, 255}} {
		k := convKind{types: types[c.kind], countSlot: -1, valueSlot: -1}
		for _, m := range reads.Metrics(w) {
			if m == c.count {
				k.countSlot = slot(m)
			}
			if m == c.value {
				k.valueSlot = slot(m)
			}
		}
		if k.countSlot >= 0 || k.valueSlot >= 0 {
			d.needActions = true
			d.needValues = d.needValues || k.valueSlot >= 0
			d.kinds = append(d.kinds, k)
		}
	}
	for _, a := range reads.ActionTypes(w) {
		if i, ok := lay.Num(rules.Key{Kind: rules.KeyAction, Window: w, ActionType: a}); ok {
			d.actions[a] = i
			d.needActions = true
		}
	}
	for _, a := range reads.ActionValueTypes(w) {
		if i, ok := lay.Num(rules.Key{Kind: rules.KeyActionValue, Window: w, ActionType: a}); ok {
			d.actionValues[a] = i
			d.needValues = true
		}
	}
	d.actionTargets = map[string][]actionTarget{}
	add := func(typ string, t actionTarget) { d.actionTargets[typ] = append(d.actionTargets[typ], t) }
	for typ, slot := range d.actions {
		add(typ, actionTarget{slot: slot, kind: -1})
	}
	for typ, slot := range d.actionValues {
		add(typ, actionTarget{slot: slot, kind: -1, values: true})
	}
	for k, kind := range d.kinds {
		for p, typ := range kind.types {
			add(typ, actionTarget{slot: -1, kind: k, prio: p})
			add(typ, actionTarget{slot: -1, kind: k, prio: p, values: true})
		}
	}
	d.vals = make([]float64, len(lay.NumKeys()))
	d.seen = make([]bool, len(lay.NumKeys()))
	for _, k := range d.kinds {
		d.convCnt = append(d.convCnt, make([]float64, len(k.types)))
		d.convVal = append(d.convVal, make([]float64, len(k.types)))
	}
	return d
}

// clear sets every value this read writes back to 0, as for an object without an
// insights row.
func (d *rowDecoder) clear() {
	var slots []int
	for _, f := range d.scalar {
		slots = append(slots, f.slot)
	}
	for _, i := range d.actions {
		slots = append(slots, i)
	}
	for _, i := range d.actionValues {
		slots = append(slots, i)
	}
	for _, k := range d.kinds {
		for _, i := range []int{k.countSlot, k.valueSlot} {
			if i >= 0 {
				slots = append(slots, i)
			}
		}
	}
	for r := range d.t.Rows {
		for _, i := range slots {
			d.t.Rows[r].Num[i] = 0
		}
	}
}

// fields is the insights fields parameter: the id and only what the rules read.
func (d *rowDecoder) fields() string {
	fs := []string{d.idKey}
	for _, f := range d.scalar {
		fs = append(fs, f.field)
	}
	if d.needActions {
		fs = append(fs, "actions")
	}
	if d.needValues {
		fs = append(fs, "action_values")
	}
	sort.Strings(fs[1:])
	return strings.Join(fs, ",")
}

// page decodes one page of rows.
func (d *rowDecoder) page(body []byte) error {
	return eachDataRow(body, d.row)
}

func (d *rowDecoder) row(s *scanner) error {
	for i := range d.seen {
		d.seen[i] = false
	}
	for k := range d.convCnt {
		for p := range d.convCnt[k] {
			d.convCnt[k][p], d.convVal[k][p] = -1, 0
		}
	}
	idx := -1
	err := s.fields(func(key []byte) error {
		if string(key) == d.idKey {
			v, _, err := s.str()
			if err != nil {
				return err
			}
			if i, ok := d.t.byID[string(v)]; ok {
				idx = i
			}
			return nil
		}
		for _, f := range d.scalar {
			if string(key) == f.field {
				kind, v, _, err := s.value()
				if err != nil {
					return err
				}
				if kind != kString && kind != kNumber {
					return fmt.Errorf("%w: %s is not a number", errSyntax, key)
				}
				x, err := parseNumber(v)
				if err != nil {
					return fmt.Errorf("%s: %w", key, err)
				}
				d.vals[f.slot], d.seen[f.slot] = x, true
				return nil
			}
		}
		switch string(key) {
		case "actions":
			return d.actionList(s, false)
		case "action_values":
			return d.actionList(s, true)
		}
		return s.skip()
	})
	if err != nil {
		return err
	}
	d.rows++
	if idx < 0 {
		return nil // an object outside the read (deleted, archived): not evaluated
	}
	row := &d.t.Rows[idx]
	for slot, ok := range d.seen {
		if ok {
			row.Num[slot] = d.vals[slot]
		}
	}
	// The first configured type present counts, never the sum: Meta reports one
	// purchase under several overlapping types. The value uses that same type.
	for k, kind := range d.kinds {
		for p := range kind.types {
			if d.convCnt[k][p] < 0 {
				continue
			}
			if kind.countSlot >= 0 {
				row.Num[kind.countSlot] = d.convCnt[k][p]
			}
			if kind.valueSlot >= 0 {
				row.Num[kind.valueSlot] = d.convVal[k][p]
			}
			break
		}
	}
	return nil
}

// actionList reads [{"action_type": ..., "value": ...}, ...] at the cursor.
func (d *rowDecoder) actionList(s *scanner, values bool) error {
	if s.i < len(s.b) && s.b[s.i] != '[' {
		return fmt.Errorf("%w: an action list is not a list", errSyntax)
	}
	return s.array(func(s *scanner) error {
		var typ []byte
		val := 0.0
		err := s.fields(func(key []byte) error {
			switch string(key) {
			case "action_type":
				v, _, err := s.str()
				typ = v
				return err
			case "value":
				_, v, _, err := s.value()
				if err != nil {
					return err
				}
				if val, err = parseNumber(v); err != nil {
					return fmt.Errorf("action value: %w", err)
				}
				return nil
			}
			return s.skip()
		})
		if err != nil {
			return err
		}
		// One map lookup tells everything an action type is used for; most types
		// in a row (page_engagement, video_view, ...) are used for nothing.
		targets, ok := d.actionTargets[string(typ)]
		if !ok {
			return nil
		}
		for _, t := range targets {
			switch {
			case t.values != values:
			case t.slot >= 0:
				d.vals[t.slot], d.seen[t.slot] = val, true
			case values:
				d.convVal[t.kind][t.prio] = val
			default:
				d.convCnt[t.kind][t.prio] = val
			}
		}
		return nil
	})
}

func (r *Reader) insights(ctx context.Context, g Graph, lay *rules.Layout, acct string, t *Table, w rules.Window, reads *rules.Reads, at time.Time, loc *time.Location) error {
	d := r.newRowDecoder(lay, t, w, reads)
	params := url.Values{
		"level":  {t.Level.String()},
		"fields": {d.fields()},
		"limit":  {strconv.Itoa(PageLimit)},
	}
	if since, until, ok := w.DateRange(at, loc); ok {
		tr, _ := json.Marshal(map[string]string{"since": since, "until": until})
		params.Set("time_range", string(tr))
	} else {
		params.Set("date_preset", "maximum")
	}
	req := graph.Request{Account: acct, Path: acct + "/insights", Params: params}
	var err error
	if len(t.Objects) > r.cfg.Load().Graph.AsyncAboveObjects {
		err = r.async(ctx, g, req, d)
	} else {
		err = g.Pages(ctx, req, d.page)
		var ge *graph.Error
		if errors.As(err, &ge) && ge.IsInsightsTimeout() {
			// Too much data for a synchronous read: the API says to go async.
			// Pages read before the timeout already wrote rows; the job's answer
			// replaces them whole, or an action type the job no longer reports
			// would keep its count from the abandoned read.
			d.clear()
			d = r.newRowDecoder(lay, t, w, reads)
			err = r.async(ctx, g, req, d)
		}
	}
	if err != nil {
		return fmt.Errorf("read %s insights of %s for %s: %w", t.Level, acct, w, err)
	}
	r.rowsSeen.WithLabelValues(t.Level.String(), w.String()).Add(float64(d.rows))
	return nil
}

// async runs an insights job: submit, poll with backoff until it is completed at
// 100%, then read its result pages. A skipped (expired) job is submitted once more.
func (r *Reader) async(ctx context.Context, g Graph, req graph.Request, d *rowDecoder) error {
	for attempt := 0; ; attempt++ {
		body, err := g.Post(ctx, graph.Request{Account: req.Account, Path: req.Path, Params: req.Params, Idempotent: true})
		if err != nil {
			return fmt.Errorf("start async job: %w", err)
		}
		var started struct {
			ID json.Number `json:"report_run_id"`
		}
		dec := json.NewDecoder(strings.NewReader(string(body)))
		dec.UseNumber()
		if err := dec.Decode(&started); err != nil || started.ID == "" {
			return fmt.Errorf("start async job: no report_run_id in the answer")
		}
		id := strings.Trim(started.ID.String(), `"`)
		status, err := r.poll(ctx, g, req.Account, id)
		if err != nil {
			return err
		}
		switch status {
		case "Job Completed":
			return g.Pages(ctx, graph.Request{Account: req.Account, Path: id + "/insights", Params: url.Values{"limit": {strconv.Itoa(PageLimit)}}}, d.page)
		case "Job Skipped":
			if attempt == 0 {
				continue
			}
		}
		return fmt.Errorf("async job %s: %s", id, status)
	}
}

func (r *Reader) poll(ctx context.Context, g Graph, acct, id string) (string, error) {
	wait := time.Second
	for {
		body, err := g.Get(ctx, graph.Request{Account: acct, Path: id, Params: url.Values{"fields": {"async_status,async_percent_completion,error_code,error_message"}}})
		if err != nil {
			return "", fmt.Errorf("poll async job %s: %w", id, err)
		}
		var st struct {
			Status  string      `json:"async_status"`
			Percent json.Number `json:"async_percent_completion"`
			Message string      `json:"error_message"`
		}
		if err := json.Unmarshal(body, &st); err != nil {
			return "", fmt.Errorf("poll async job %s: malformed answer: %w", id, err)
		}
		pct, _ := st.Percent.Float64()
		switch st.Status {
		case "Job Completed":
			// A job can sit at 100% while still running, and at Completed below
			// 100%: results are read only when both say done.
			if pct >= 100 {
				return st.Status, nil
			}
		case "Job Failed", "Job Skipped":
			if st.Message != "" {
				return st.Status + ": " + st.Message, nil
			}
			return st.Status, nil
		}
		if err := r.opts.Sleep(ctx, wait); err != nil {
			return "", err
		}
		wait = min(wait*2, 30*time.Second)
	}
}
