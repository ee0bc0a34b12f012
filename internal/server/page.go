package server

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"math"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/rulesd/rulesd/internal/money"
	"github.com/rulesd/rulesd/internal/state"
	"github.com/rulesd/rulesd/internal/version"
)

//go:embed templates/*.html
var templateFS embed.FS

// recentActions is how many audit records the pages show.
const recentActions = 50

var (
	statusTmpl = parsePage("templates/status.html")
	ruleTmpl   = parsePage("templates/rule.html")
)

// parsePage parses one page with the shared layout and helpers.
func parsePage(name string) *template.Template {
	return template.Must(template.New("layout.html").Funcs(pageFuncs).ParseFS(templateFS, "templates/layout.html", name))
}

var pageFuncs = template.FuncMap{
	"ago":         ago,
	"utc":         utc,
	"resultClass": resultClass,
	"ruleURL":     ruleURL,
	"num":         formatNumber,
	"human":       humanResult,
	"scalar":      formatScalar,
	"paused":      pausedLabel,
	"duration":    runDuration,
	"ruleCount": func(gs []GroupView) int {
		n := 0
		for _, g := range gs {
			n += len(g.Rules)
		}
		return n
	},
}

// pageData is what the layout and both pages render.
type pageData struct {
	Title   string
	Version string
	Status  Status
	// Group and Rule are set on the per-rule page.
	Group *GroupView
	Rule  *RuleView
	// Actions are the recent audit records; ActionsError says why they are missing.
	Actions      []actionRow
	ActionsError string
}

// actionRow is one audit record prepared for display.
type actionRow struct {
	ID         int64
	Time       time.Time
	Group      string
	Rule       string
	AccountID  string
	ObjectID   string
	ObjectName string
	Kind       string
	Field      string
	Before     string // display values; empty when the action writes nothing
	After      string
	Result     string
	CappedBy   string
	Error      string
	DryRun     bool
	RunID      string
	Labels     []kv
	Values     []kv
}

// kv is one name and its display value, sorted by name.
type kv struct{ Name, Value string }

func (s *Server) statusPage(w http.ResponseWriter, r *http.Request) {
	st := s.status(r.Context())
	d := pageData{Title: "rulesd status", Version: version.Version, Status: st}
	d.Actions, d.ActionsError = s.actions(r, st, state.AuditQuery{Limit: recentActions})
	s.render(w, statusTmpl, d)
}

func (s *Server) rulePage(w http.ResponseWriter, r *http.Request) {
	group, rule := r.PathValue("group"), r.PathValue("rule")
	st := s.status(r.Context())
	d := pageData{Version: version.Version, Status: st}
	for gi := range st.Groups {
		g := &st.Groups[gi]
		if g.Name != group {
			continue
		}
		for ri := range g.Rules {
			if g.Rules[ri].Name == rule {
				d.Group, d.Rule = g, &g.Rules[ri]
			}
		}
	}
	if d.Rule == nil {
		http.Error(w, fmt.Sprintf("no rule %q in group %q", rule, group), http.StatusNotFound)
		return
	}
	d.Title = rule + " · " + group + " · rulesd"
	d.Actions, d.ActionsError = s.actions(r, st, state.AuditQuery{Group: group, Rule: rule, Limit: recentActions})
	s.render(w, ruleTmpl, d)
}

// actions reads recent audit records for a page; a failure is shown, not fatal.
func (s *Server) actions(r *http.Request, st Status, q state.AuditQuery) ([]actionRow, string) {
	if s.opts.Audit == nil {
		return nil, ""
	}
	recs, err := s.opts.Audit.QueryAudit(r.Context(), q)
	if err != nil {
		s.log.Error("status page: query audit", zap.Error(err))
		return nil, "The audit log could not be read: " + err.Error()
	}
	rows := make([]actionRow, 0, len(recs))
	for _, rec := range recs {
		cur := st.Currencies[rec.AccountID]
		row := actionRow{
			ID: rec.ID, Time: rec.Time, Group: rec.Group, Rule: rec.Rule, AccountID: rec.AccountID,
			ObjectID: rec.ObjectID, ObjectName: rec.ObjectName, Kind: rec.Kind, Field: rec.Field,
			Before: formatValue(rec.Before, cur), After: formatValue(rec.After, cur),
			Result: rec.Result, CappedBy: rec.CappedBy, Error: rec.Error, DryRun: rec.DryRun, RunID: rec.RunID,
		}
		for k, v := range rec.Labels {
			row.Labels = append(row.Labels, kv{k, v})
		}
		for k, v := range rec.Values {
			row.Values = append(row.Values, kv{k, formatScalar(v)})
		}
		sort.Slice(row.Labels, func(i, j int) bool { return row.Labels[i].Name < row.Labels[j].Name })
		sort.Slice(row.Values, func(i, j int) bool { return row.Values[i].Name < row.Values[j].Name })
		rows = append(rows, row)
	}
	return rows, ""
}

// render executes t into a buffer first, so a template error is a clean 500 rather
// than half a page.
func (s *Server) render(w http.ResponseWriter, t *template.Template, d pageData) {
	var buf bytes.Buffer
	if err := t.Execute(&buf, d); err != nil {
		s.log.Error("render page", zap.String("title", d.Title), zap.Error(err))
		http.Error(w, "render page: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = buf.WriteTo(w)
}

// formatValue shows a stored before/after value: a status as is, an amount as money
// when the account's currency is known (else in minor units), absent as "".
func formatValue(v state.Value, currency string) string {
	if s, ok := v.Status(); ok {
		return s
	}
	n, ok := v.Amount()
	if !ok {
		return ""
	}
	if currency == "" {
		return strconv.FormatInt(n, 10) + " (minor units)"
	}
	if money.Offset(currency) == 1 {
		return strconv.FormatInt(n, 10) + " " + currency
	}
	return strconv.FormatFloat(money.ToMajor(n, currency), 'f', 2, 64) + " " + currency
}

// formatScalar shows a value a rule saw.
func formatScalar(v state.Scalar) string {
	if f, ok := v.Number(); ok {
		return formatNumber(f)
	}
	if s, ok := v.Text(); ok {
		return s
	}
	return "missing"
}

// formatNumber shows a number with at most four decimals and no trailing zeros.
func formatNumber(f float64) string {
	return strconv.FormatFloat(math.Round(f*1e4)/1e4, 'f', -1, 64)
}

// utc formats t for the page; the zero time is "—".
func utc(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04 UTC")
}

// ago describes t relative to now: "just now", "5 min ago", "in 3 h", "2 days ago".
func ago(t, now time.Time) string {
	if t.IsZero() {
		return ""
	}
	d := now.Sub(t)
	future := d < 0
	if future {
		d = -d
	}
	var s string
	switch {
	case d < time.Minute:
		if future {
			return "in under a minute"
		}
		return "just now"
	case d < time.Hour:
		s = fmt.Sprintf("%d min", int(d/time.Minute))
	case d < 48*time.Hour:
		s = fmt.Sprintf("%d h", int(d/time.Hour))
	default:
		s = fmt.Sprintf("%d days", int(d/(24*time.Hour)))
	}
	if future {
		return "in " + s
	}
	return s + " ago"
}

// pausedLabel says whether kill switches stop a group's writes: "paused by kill
// switch" when one covers the whole group, "partly paused" when one covers some of its
// accounts, "" otherwise.
func pausedLabel(group string, ks []KillSwitchView) string {
	label := ""
	for _, k := range ks {
		switch {
		case k.AccountID == "" && (k.Group == "" || k.Group == group):
			return "paused by kill switch"
		case k.Group == "" || k.Group == group:
			label = "partly paused by kill switch"
		}
	}
	return label
}

// runDuration shows how long a run took: "850 ms", "12 s", "3 min 5 s".
func runDuration(start, end time.Time) string {
	d := end.Sub(start)
	switch {
	case d < time.Second:
		return fmt.Sprintf("%d ms", d.Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("%d s", int(d.Round(time.Second)/time.Second))
	}
	d = d.Round(time.Second)
	return fmt.Sprintf("%d min %d s", int(d/time.Minute), int(d%time.Minute/time.Second))
}

// resultClass maps a run or action result to the badge colour class.
func resultClass(result string) string {
	switch {
	case result == "success" || result == state.ResultApplied:
		return "ok"
	case result == "failed" || strings.HasPrefix(result, "blocked_"):
		return "bad"
	case result == "partial" || result == "pending":
		return "warn"
	case result == state.ResultDryRun || result == "running" || result == "would_apply":
		return "info"
	}
	return "muted" // skipped, skipped_*, unknown
}

// humanResult turns a result code into words: skipped_cooldown -> "skipped: cooldown".
func humanResult(result string) string {
	switch result {
	case state.ResultDryRun:
		return "dry run"
	case "would_apply":
		return "would apply"
	}
	if k, reason, ok := strings.Cut(result, "_"); ok && (k == "skipped" || k == "blocked") {
		return k + ": " + reason
	}
	return result
}

// ruleURL is the path of a rule's page.
func ruleURL(group, rule string) string {
	return "/rules/" + url.PathEscape(group) + "/" + url.PathEscape(rule)
}
