package server

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rulesd/rulesd/internal/state"
)

func TestEndpointsStatusAndContentType(t *testing.T) {
	reg := prometheus.NewRegistry()
	f := newFixture(t, func(o *Options) { o.Registry = reg })
	const (
		text = "text/plain; charset=utf-8"
		html = "text/html; charset=utf-8"
		js   = "application/json"
	)
	tests := []struct {
		method, path string
		code         int
		ctype        string
	}{
		{"GET", "/metrics", 200, "text/plain"},
		{"GET", "/healthz", 200, text},
		{"HEAD", "/healthz", 200, text},
		{"GET", "/readyz", 200, text},
		{"POST", "/-/reload", 200, text},
		{"GET", "/", 200, html},
		{"GET", "/rules/stop-loss/pause-spend-without-purchase", 200, html},
		{"GET", "/rules/stop-loss/no-such-rule", 404, text},
		{"GET", "/rules/no-such-group/scale-winners", 404, text},
		{"GET", "/api/v1/rules", 200, js},
		{"GET", "/api/v1/actions", 200, js},
		{"GET", "/api/v1/actions?limit=0", 400, js},
		{"POST", "/api/v1/pause", 200, js},
		{"POST", "/api/v1/resume", 200, js},
		// Wrong methods.
		{"POST", "/healthz", 405, text},
		{"POST", "/metrics", 405, text},
		{"GET", "/-/reload", 405, text},
		{"GET", "/api/v1/pause", 405, text},
		{"DELETE", "/api/v1/resume", 405, text},
		{"POST", "/api/v1/actions", 405, text},
		{"POST", "/", 405, text},
		// Unknown paths.
		{"GET", "/nope", 404, text},
		{"GET", "/api/v1/", 404, text},
		{"GET", "/rules/stop-loss", 404, text},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			res, body := f.do(t, tt.method, tt.path, "")
			if res.StatusCode != tt.code {
				t.Errorf("status %d, want %d; body %q", res.StatusCode, tt.code, body)
			}
			if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, tt.ctype) {
				t.Errorf("Content-Type %q, want %q", ct, tt.ctype)
			}
			if tt.code == 405 && res.Header.Get("Allow") == "" {
				t.Error("405 without Allow header")
			}
			if got := res.Header.Get("X-Content-Type-Options"); got != "nosniff" {
				t.Errorf("X-Content-Type-Options %q", got)
			}
		})
	}
}

func TestHealthzBody(t *testing.T) {
	f := newFixture(t, nil)
	if _, body := f.do(t, "GET", "/healthz", ""); body != "ok\n" {
		t.Errorf("healthz body %q", body)
	}
}

func TestReadyz(t *testing.T) {
	ready := errors.New("config not loaded yet")
	f := newFixture(t, func(o *Options) {
		o.Ready = func(context.Context) error { return ready }
	})
	res, body := f.do(t, "GET", "/readyz", "")
	if res.StatusCode != 503 || !strings.Contains(body, "config not loaded yet") {
		t.Fatalf("before ready: %d %q", res.StatusCode, body)
	}
	var st Status
	_, js := f.do(t, "GET", "/api/v1/rules", "")
	if err := json.Unmarshal([]byte(js), &st); err != nil || st.Ready {
		t.Errorf("status ready=%v err=%v while not ready", st.Ready, err)
	}
	ready = nil
	res, body = f.do(t, "GET", "/readyz", "")
	if res.StatusCode != 200 || body != "ready\n" {
		t.Fatalf("after ready: %d %q", res.StatusCode, body)
	}
}

func TestReadyzClosedStore(t *testing.T) {
	f := newFixture(t, nil)
	if err := f.store.Close(); err != nil {
		t.Fatal(err)
	}
	if res, body := f.do(t, "GET", "/readyz", ""); res.StatusCode != 503 {
		t.Errorf("closed store: %d %q", res.StatusCode, body)
	}
}

func TestReload(t *testing.T) {
	tests := []struct {
		name     string
		err      error
		code     int
		wantBody []string
	}{
		{"success", nil, 200, []string{"reloaded"}},
		{"failure lists every problem", errBadRules, 400, []string{
			"last good configuration keeps running",
			`rules/stop-loss.yaml:12:9: unknown metric "spnd"`,
			"rules/scale.yaml:4:3: field schedul not found",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, nil)
			f.reloader.err = tt.err
			res, body := f.do(t, "POST", "/-/reload", "")
			if res.StatusCode != tt.code {
				t.Errorf("status %d, want %d", res.StatusCode, tt.code)
			}
			contains(t, body, tt.wantBody...)
			if f.reloader.calls != 1 {
				t.Errorf("Reload called %d times", f.reloader.calls)
			}
		})
	}
}

func TestReloadUnavailable(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.Reloader = nil })
	if res, _ := f.do(t, "POST", "/-/reload", ""); res.StatusCode != 503 {
		t.Errorf("status %d", res.StatusCode)
	}
}

func TestAdminToken(t *testing.T) {
	const token = "s3cret-token"
	tests := []struct {
		name, config, header string
		code                 int
	}{
		{"no token configured", "", "", 200},
		{"missing", token, "", 401},
		{"wrong", token, "Bearer nope", 401},
		{"prefix of the token", token, "Bearer s3cret", 401},
		{"not bearer", token, "Basic " + token, 401},
		{"right", token, "Bearer " + token, 200},
		{"right, lower-case scheme", token, "bearer " + token, 200},
	}
	for _, path := range []string{"/-/reload", "/api/v1/pause", "/api/v1/resume"} {
		for _, tt := range tests {
			t.Run(path+"/"+tt.name, func(t *testing.T) {
				f := newFixture(t, func(o *Options) { o.AdminToken = tt.config })
				req, _ := http.NewRequest("POST", path, nil)
				if tt.header != "" {
					req.Header.Set("Authorization", tt.header)
				}
				rec := newRecorder(f, req)
				if rec.code != tt.code {
					t.Errorf("status %d, want %d; body %q", rec.code, tt.code, rec.body)
				}
				if tt.code == 401 {
					if rec.header.Get("WWW-Authenticate") == "" {
						t.Error("401 without WWW-Authenticate")
					}
					if f.reloader.calls != 0 || f.killed != 0 {
						t.Error("unauthorised request reached the handler")
					}
					if strings.Contains(rec.body, token) {
						t.Error("401 body shows the token")
					}
				}
			})
		}
	}
	// Read-only endpoints stay open.
	f := newFixture(t, func(o *Options) { o.AdminToken = token })
	for _, p := range []string{"/", "/api/v1/rules", "/api/v1/actions", "/healthz", "/readyz"} {
		if res, _ := f.do(t, "GET", p, ""); res.StatusCode != 200 {
			t.Errorf("GET %s with a token configured: %d", p, res.StatusCode)
		}
	}
}

type recorded struct {
	code   int
	header http.Header
	body   string
}

func newRecorder(f *fixture, req *http.Request) recorded {
	rw := &responseRecorder{header: http.Header{}}
	f.srv.Handler().ServeHTTP(rw, req)
	return recorded{code: rw.code, header: rw.header, body: rw.body.String()}
}

type responseRecorder struct {
	header http.Header
	code   int
	body   strings.Builder
}

func (r *responseRecorder) Header() http.Header { return r.header }
func (r *responseRecorder) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
	}
}
func (r *responseRecorder) Write(b []byte) (int, error) {
	r.WriteHeader(200)
	return r.body.Write(b)
}

func TestKillSwitch(t *testing.T) {
	const token = "tok"
	f := newFixture(t, func(o *Options) { o.AdminToken = token })
	type step struct {
		method, path string
		code         int
		scope        string
		released     *bool
		engaged      []string // scopes engaged afterwards
	}
	yes, no := true, false
	steps := []step{
		{"POST", "/api/v1/pause?reason=broken+feed", 200, "all", nil, []string{"all"}},
		{"POST", "/api/v1/pause?account=act_1", 200, "account act_1", nil, []string{"all", "account act_1"}},
		{"POST", "/api/v1/pause?group=stop-loss", 200, "group stop-loss", nil, []string{"all", "account act_1", "group stop-loss"}},
		{"POST", "/api/v1/pause?group=stop-loss&account=act_2", 200, "group stop-loss in account act_2", nil,
			[]string{"all", "account act_1", "group stop-loss", "group stop-loss in account act_2"}},
		// Releasing "all" leaves the narrower switches engaged.
		{"POST", "/api/v1/resume", 200, "all", &yes, []string{"account act_1", "group stop-loss", "group stop-loss in account act_2"}},
		{"POST", "/api/v1/resume", 200, "all", &no, []string{"account act_1", "group stop-loss", "group stop-loss in account act_2"}},
		{"POST", "/api/v1/resume?account=act_1", 200, "account act_1", &yes, []string{"group stop-loss", "group stop-loss in account act_2"}},
		{"POST", "/api/v1/resume?group=stop-loss&account=act_2", 200, "group stop-loss in account act_2", &yes, []string{"group stop-loss"}},
		// A misspelt parameter must not release "all".
		{"POST", "/api/v1/resume?acount=act_1", 400, "", nil, nil},
		{"POST", "/api/v1/pause?account=a&account=b", 400, "", nil, nil},
		{"POST", "/api/v1/resume?group=stop-loss", 200, "group stop-loss", &yes, []string{}},
	}
	for i, s := range steps {
		t.Run(fmt.Sprintf("%d %s", i, s.path), func(t *testing.T) {
			res, body := f.do(t, s.method, s.path, token)
			if res.StatusCode != s.code {
				t.Fatalf("status %d, want %d; body %s", res.StatusCode, s.code, body)
			}
			if s.code != 200 {
				var e ErrorResponse
				if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error == "" {
					t.Errorf("error body %q", body)
				}
				return
			}
			var got KillSwitchResponse
			if err := json.Unmarshal([]byte(body), &got); err != nil {
				t.Fatal(err)
			}
			if got.Scope != s.scope {
				t.Errorf("scope %q, want %q", got.Scope, s.scope)
			}
			if (got.Released == nil) != (s.released == nil) || (got.Released != nil && *got.Released != *s.released) {
				t.Errorf("released %v, want %v", got.Released, s.released)
			}
			var scopes []string
			for _, k := range got.Engaged {
				scopes = append(scopes, k.Scope)
			}
			sort.Strings(scopes)
			want := slices.Clone(s.engaged)
			sort.Strings(want)
			if !slices.Equal(scopes, want) && len(scopes)+len(s.engaged) > 0 {
				t.Errorf("engaged %q, want %q", scopes, s.engaged)
			}
		})
	}
	// Engage "all" behind the API's back, to see that an unauthorised resume leaves it.
	if err := f.store.EngageKillSwitch(context.Background(), state.KillSwitch{EngagedAt: testNow}); err != nil {
		t.Fatal(err)
	}
	// 4 engages and 4 effective releases; the no-op release and the 400s do not count.
	if f.killed != 8 {
		t.Errorf("OnKillSwitch called %d times, want 8", f.killed)
	}
	// Without the token nothing changes.
	if res, _ := f.do(t, "POST", "/api/v1/resume", ""); res.StatusCode != 401 {
		t.Errorf("resume without token: %d", res.StatusCode)
	}
	ks, _ := f.store.ListKillSwitches(context.Background())
	if len(ks) != 1 {
		t.Errorf("store has %d switches after unauthorised resume", len(ks))
	}
}

func TestKillSwitchRecordsReasonAndForm(t *testing.T) {
	f := newFixture(t, nil)
	req, _ := http.NewRequest("POST", "/api/v1/pause", strings.NewReader("group=night-watch&reason=holiday+freeze"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.RemoteAddr = "10.1.2.3:4567"
	if rec := newRecorder(f, req); rec.code != 200 {
		t.Fatalf("status %d %s", rec.code, rec.body)
	}
	ks, err := f.store.ListKillSwitches(context.Background())
	if err != nil || len(ks) != 1 {
		t.Fatalf("switches %v %v", ks, err)
	}
	k := ks[0]
	if k.Scope.Group != "night-watch" || k.Reason != "holiday freeze" || !k.EngagedAt.Equal(testNow) || !strings.Contains(k.By, "10.1.2.3") {
		t.Errorf("stored %+v", k)
	}
}

// specActionFields are the fields of SPEC 7, plus dry_run.
var specActionFields = []string{"time", "run_id", "group", "rule", "account_id", "level", "object_id",
	"object_name", "kind", "field", "before", "after", "result", "capped_by", "error", "labels",
	"values", "id", "dry_run"}

func TestActionsJSONFields(t *testing.T) {
	f := newFixture(t, nil)
	res, body := f.do(t, "GET", "/api/v1/actions", "")
	if res.StatusCode != 200 {
		t.Fatalf("status %d", res.StatusCode)
	}
	var raw map[string][]map[string]any
	if err := json.Unmarshal([]byte(body), &raw); err != nil {
		t.Fatal(err)
	}
	if len(raw) != 1 || raw["actions"] == nil {
		t.Fatalf("top-level keys of %s", body)
	}
	acts := raw["actions"]
	if len(acts) != 4 {
		t.Fatalf("%d actions, want 4", len(acts))
	}
	for _, a := range acts {
		var keys []string
		for k := range a {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		want := slices.Clone(specActionFields)
		sort.Strings(want)
		if !slices.Equal(keys, want) {
			t.Errorf("fields %v, want %v", keys, want)
		}
		if _, err := time.Parse(time.RFC3339, a["time"].(string)); err != nil {
			t.Errorf("time %v: %v", a["time"], err)
		}
	}
	// Newest first; failed pause of act_2 has before ACTIVE and after null.
	first, budget := acts[0], acts[3]
	if first["object_id"] != "201" || first["before"] != "ACTIVE" || first["after"] != nil ||
		first["error"] != "(#100) Invalid parameter" || first["result"] != "failed" {
		t.Errorf("newest action %v", first)
	}
	if first["time"] != "2026-11-20T11:43:00Z" {
		t.Errorf("time %v", first["time"])
	}
	// Money is in minor units, as JSON numbers.
	if budget["before"] != float64(5000) || budget["after"] != float64(6000) || budget["field"] != "daily_budget" {
		t.Errorf("budget change %v", budget)
	}
	if v := budget["values"].(map[string]any); v["roas"] != 3.4 {
		t.Errorf("values %v", v)
	}
	if l := budget["labels"].(map[string]any); l["team"] != "growth" {
		t.Errorf("labels %v", l)
	}
	// A null value the rule saw (missing) stays null.
	if v := acts[1]["values"].(map[string]any); v["ctr"] != nil || len(v) != 3 {
		t.Errorf("values with a missing one: %v", v)
	}
	if id, ok := first["id"].(float64); !ok || id != 4 {
		t.Errorf("id %v", first["id"])
	}
}

func TestActionsFilters(t *testing.T) {
	f := newFixture(t, nil)
	tests := []struct {
		query   string
		code    int
		objects []string // object ids, newest first
	}{
		{"", 200, []string{"201", "101", "12", "11"}},
		{"rule=scale-winners", 200, []string{"12", "11"}},
		{"rule=stop-loss/scale-winners", 200, []string{"12", "11"}},
		{"rule=night-watch/scale-winners", 200, nil},
		{"rule=no-such-rule", 200, nil},
		{"object=101", 200, []string{"101"}},
		{"rule=pause-spend-without-purchase&object=201", 200, []string{"201"}},
		{"since=24h", 200, []string{"201", "101", "12"}},
		{"since=1h", 200, []string{"201", "101"}},
		{"since=90m&object=12", 200, nil},
		{"since=2026-11-20T11:42:30Z", 200, []string{"201"}},
		{"since=2026-11-20T11:42:00%2B00:00", 200, []string{"201", "101"}},
		{"since=2026-11-20T12:42:00%2B01:00", 200, []string{"201", "101"}},
		{"limit=2", 200, []string{"201", "101"}},
		{"limit=1000", 200, []string{"201", "101", "12", "11"}},
		{"limit=1&rule=scale-winners", 200, []string{"12"}},
		{"group=stop-loss&account=act_2", 200, []string{"201"}},
		{"result=dry_run", 200, []string{"12"}},
		// Bad input.
		{"limit=0", 400, nil},
		{"limit=-3", 400, nil},
		{"limit=1001", 400, nil},
		{"limit=ten", 400, nil},
		{"since=yesterday", 400, nil},
		{"since=-24h", 400, nil},
		{"since=2026-11-20", 400, nil},
		{"rule=/x", 400, nil},
		{"rule=g/x&group=other", 400, nil},
		{"objekt=101", 400, nil},
		{"rule=a&rule=b", 400, nil},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			res, body := f.do(t, "GET", "/api/v1/actions?"+tt.query, "")
			if res.StatusCode != tt.code {
				t.Fatalf("status %d, want %d: %s", res.StatusCode, tt.code, body)
			}
			if ct := res.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			if tt.code != 200 {
				var e ErrorResponse
				if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error == "" {
					t.Errorf("error body %q", body)
				}
				return
			}
			var got ActionsResponse
			if err := json.Unmarshal([]byte(body), &got); err != nil {
				t.Fatal(err)
			}
			if got.Actions == nil {
				t.Error(`"actions" is null, want []`)
			}
			var ids []string
			for _, a := range got.Actions {
				ids = append(ids, a.ObjectID)
			}
			if !slices.Equal(ids, tt.objects) {
				t.Errorf("objects %v, want %v", ids, tt.objects)
			}
		})
	}
}

func TestActionsEmptyIsArray(t *testing.T) {
	f := newFixture(t, nil)
	_, body := f.do(t, "GET", "/api/v1/actions?object=none", "")
	if !strings.Contains(body, `"actions": []`) {
		t.Errorf("body %s", body)
	}
}

func TestActionsLimitDefault(t *testing.T) {
	f := newFixture(t, nil)
	recs := make([]state.AuditRecord, 150)
	for i := range recs {
		recs[i] = state.AuditRecord{Time: testNow.Add(-time.Duration(i) * time.Second), Group: "g", Rule: "bulk",
			ObjectID: fmt.Sprint(i), Kind: "notify", Result: state.ResultApplied}
	}
	if _, err := f.store.AppendAudit(context.Background(), recs...); err != nil {
		t.Fatal(err)
	}
	for q, want := range map[string]int{"rule=bulk": DefaultActionsLimit, "rule=bulk&limit=120": 120, "rule=bulk&limit=1000": 150} {
		var got ActionsResponse
		_, body := f.do(t, "GET", "/api/v1/actions?"+q, "")
		if err := json.Unmarshal([]byte(body), &got); err != nil {
			t.Fatal(err)
		}
		if len(got.Actions) != want {
			t.Errorf("%s: %d actions, want %d", q, len(got.Actions), want)
		}
	}
}

func TestParseSince(t *testing.T) {
	tests := []struct {
		in   string
		want time.Time
		bad  bool
	}{
		{in: "24h", want: testNow.Add(-24 * time.Hour)},
		{in: "90m", want: testNow.Add(-90 * time.Minute)},
		{in: "2026-11-19T08:30:00Z", want: time.Date(2026, 11, 19, 8, 30, 0, 0, time.UTC)},
		{in: "2026-11-19T09:30:00.5+01:00", want: time.Date(2026, 11, 19, 8, 30, 0, 5e8, time.UTC)},
		{in: "0s", bad: true},
		{in: "7d", bad: true},
		{in: "", bad: true},
	}
	for _, tt := range tests {
		got, err := parseSince(tt.in, testNow)
		if (err != nil) != tt.bad || (!tt.bad && !got.Equal(tt.want)) {
			t.Errorf("parseSince(%q) = %v, %v", tt.in, got, err)
		}
	}
}

func TestAPIRules(t *testing.T) {
	f := newFixture(t, nil)
	if err := f.store.EngageKillSwitch(context.Background(), state.KillSwitch{
		Scope: state.KillScope{AccountID: "act_1"}, Reason: "audit", EngagedAt: testNow}); err != nil {
		t.Fatal(err)
	}
	_, body := f.do(t, "GET", "/api/v1/rules", "")
	var st Status
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatal(err)
	}
	if len(st.Groups) != 2 || st.Groups[0].Rules[0].Name != "pause-spend-without-purchase" || !st.Ready {
		t.Errorf("status %+v", st)
	}
	if len(st.KillSwitches) != 1 || st.KillSwitches[0].Scope != "account act_1" {
		t.Errorf("kill switches %+v", st.KillSwitches)
	}
	m := st.Groups[0].Rules[0].LastMatches[0]
	if v, _ := m.Values["spend"].Number(); v != 61.5 {
		t.Errorf("match values %v", m.Values)
	}
	for _, key := range []string{`"groups"`, `"kill_switches"`, `"reload"`, `"last_run"`, `"in_scope"`, `"last_matches"`, `"next_run"`} {
		if !strings.Contains(body, key) {
			t.Errorf("JSON lacks %s", key)
		}
	}

	// With no Source at all the API still answers, with empty lists.
	f = newFixture(t, func(o *Options) { o.Source = nil })
	_, body = f.do(t, "GET", "/api/v1/rules", "")
	contains(t, body, `"groups": []`, `"kill_switches": []`)
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "rulesd_test_things_total", Help: "Things."}, []string{"group"})
	reg.MustRegister(c)
	c.WithLabelValues("stop-loss").Add(3)
	f := newFixture(t, func(o *Options) { o.Registry = reg })
	res, body := f.do(t, "GET", "/metrics", "")
	if res.StatusCode != 200 {
		t.Fatalf("status %d", res.StatusCode)
	}
	found := false
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		if sc.Text() == `rulesd_test_things_total{group="stop-loss"} 3` {
			found = true
		}
	}
	if !found {
		t.Errorf("counter missing from\n%s", body)
	}
	contains(t, body, "# TYPE rulesd_test_things_total counter")

	f = newFixture(t, nil)
	if res, _ := f.do(t, "GET", "/metrics", ""); res.StatusCode != 503 {
		t.Errorf("no registry: %d", res.StatusCode)
	}
}

func TestServeGracefulShutdown(t *testing.T) {
	f := newFixture(t, nil)
	f.reloader.block = make(chan struct{})
	f.reloader.started = make(chan struct{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- f.srv.Serve(ctx, ln) }()
	base := "http://" + ln.Addr().String()
	res, err := http.Get(base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if a := f.srv.Addr(); a == nil || a.String() != ln.Addr().String() {
		t.Errorf("Addr %v, want %v", a, ln.Addr())
	}

	// A reload in flight when the context ends still gets its answer.
	type answer struct {
		code int
		body string
		err  error
	}
	answered := make(chan answer, 1)
	go func() {
		res, err := http.Post(base+"/-/reload", "", nil)
		if err != nil {
			answered <- answer{err: err}
			return
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		answered <- answer{code: res.StatusCode, body: string(b)}
	}()
	<-f.reloader.started
	cancel()
	// Shutdown closes the listener while the reload is still in flight.
	closed := false
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		c, err := (&net.Dialer{Timeout: time.Second}).Dial("tcp", ln.Addr().String())
		if err != nil {
			closed = true
			break
		}
		c.Close()
	}
	if !closed {
		t.Error("still accepting connections after the context ended")
	}
	close(f.reloader.block)
	a := <-answered
	if a.err != nil || a.code != 200 || a.body != "reloaded\n" {
		t.Errorf("in-flight request: %+v", a)
	}
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(ShutdownTimeout):
		t.Fatal("Serve did not return")
	}
}

func TestRun(t *testing.T) {
	f := newFixture(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.srv.Run(ctx) }()
	deadline := time.Now().Add(5 * time.Second)
	for f.srv.Addr() == nil && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if f.srv.Addr() == nil {
		t.Fatal("Run did not listen")
	}
	res, err := http.Get("http://" + f.srv.Addr().String() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Errorf("readyz %d", res.StatusCode)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}

	bad := New(Options{Listen: "256.0.0.1:bad"})
	if err := bad.Run(context.Background()); err == nil {
		t.Error("Run on a bad address succeeded")
	}
}

func TestStatusPage(t *testing.T) {
	f := newFixture(t, nil)
	f.source.set(func(s *Status) {
		s.Reload = ReloadStatus{OK: false, Time: testNow.Add(-5 * time.Minute), Errors: strings.Split(errBadRules.Error(), "\n")}
	})
	if err := f.store.EngageKillSwitch(context.Background(), state.KillSwitch{
		Scope: state.KillScope{Group: "stop-loss"}, Reason: "feed outage", EngagedAt: testNow.Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	res, body := f.do(t, "GET", "/", "")
	if res.StatusCode != 200 {
		t.Fatalf("status %d", res.StatusCode)
	}
	contains(t, body,
		// groups and rules
		"stop-loss", "night-watch", "pause-spend-without-purchase", "scale-winners", "notify-cpm-spike",
		"every 30m", "in 12 min", "18 min ago", "last run: partial", "not run yet", "change budget by &#43;20%, max 500",
		"(#17) User request limit reached", `href="/rules/stop-loss/pause-spend-without-purchase"`,
		// reload errors at the top, escaped
		`id="reload-errors"`, "The last reload failed", "rules/stop-loss.yaml:12:9: unknown metric &#34;spnd&#34;",
		"rules/scale.yaml:4:3: field schedul not found",
		// kill switch
		`id="kill-switch"`, "Kill switch engaged", "group stop-loss", "feed outage",
		// actions: before -> after, in money where the currency is known
		"50.00 USD <span class=\"arrow\">→</span> 60.00 USD", "100.00 USD <span class=\"arrow\">→</span> 120.00 USD",
		"ACTIVE <span class=\"arrow\">→</span> PAUSED", "(#100) Invalid parameter", "capped by max",
		"<dt>spend</dt><dd>61.5</dd>", "<dt>ctr</dt><dd>missing</dd>", "2026-11-20 11:42 UTC",
		// user text is escaped
		"Brand &lt;b&gt;JP&lt;/b&gt;",
	)
	if strings.Contains(body, "<b>JP</b>") {
		t.Error("object name not escaped")
	}
	if i, j := strings.Index(body, `id="reload-errors"`), strings.Index(body, "Rule groups"); i < 0 || i > j {
		t.Error("reload errors are not above the groups")
	}
	if strings.Contains(body, "<script") {
		t.Error("the page has a script")
	}
}

func TestStatusPageEmpty(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Options)
	}{
		{"no source, no audit", func(o *Options) { o.Source, o.Audit, o.Kill = nil, nil, nil }},
		{"empty status", func(o *Options) { o.Source = &fakeSource{st: Status{Reload: ReloadStatus{OK: true}}} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, tt.edit)
			res, body := f.do(t, "GET", "/", "")
			if res.StatusCode != 200 {
				t.Fatalf("status %d: %s", res.StatusCode, body)
			}
			contains(t, body, "rulesd", "No rule groups are configured")
			if strings.Contains(body, `id="kill-switch"`) {
				t.Error("kill switch banner without a switch")
			}
		})
	}
	f := newFixture(t, func(o *Options) { o.Source = &fakeSource{st: Status{Reload: ReloadStatus{OK: true}}} })
	if _, err := f.store.PruneAudit(context.Background(), testNow.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	_, body := f.do(t, "GET", "/", "")
	contains(t, body, "No actions recorded yet")
	if strings.Contains(body, `id="reload-errors"`) {
		t.Error("reload error box after a good reload")
	}
}

func TestRulePage(t *testing.T) {
	f := newFixture(t, nil)
	res, body := f.do(t, "GET", "/rules/stop-loss/pause-spend-without-purchase", "")
	if res.StatusCode != 200 {
		t.Fatalf("status %d", res.StatusCode)
	}
	contains(t, body, "pause-spend-without-purchase", "Pause ads that spent 2× the target CPA",
		"Objects matched in the last run", "UGC video", "ACTIVE <span class=\"arrow\">→</span> PAUSED",
		"<dt>vars.target_cpa</dt><dd>25</dd>", "spend &gt; 2 * vars.target_cpa &amp;&amp; purchases == 0",
		"Recent actions of this rule", "(#100) Invalid parameter")
	if strings.Contains(body, "Retargeting EU") {
		t.Error("rule page shows another rule's actions")
	}
	_, body = f.do(t, "GET", "/rules/stop-loss/scale-winners", "")
	contains(t, body, "The rule matched no object in its last run", "Retargeting EU")

	// Names with characters that need escaping in a path.
	f.source.set(func(s *Status) {
		s.Groups[1].Name = "night watch"
		s.Groups[1].Rules[0].Group = "night watch"
	})
	_, body = f.do(t, "GET", "/", "")
	contains(t, body, `href="/rules/night%20watch/notify-cpm-spike"`)
	if res, _ := f.do(t, "GET", "/rules/night%20watch/notify-cpm-spike", ""); res.StatusCode != 200 {
		t.Errorf("escaped rule path: %d", res.StatusCode)
	}
}

func TestHelpers(t *testing.T) {
	agoTests := []struct {
		d    time.Duration
		want string
	}{
		{0, "just now"}, {-30 * time.Second, "just now"}, {5 * time.Minute, "in 5 min"},
		{-5 * time.Minute, "5 min ago"}, {-3 * time.Hour, "3 h ago"}, {-72 * time.Hour, "3 days ago"},
		{30 * time.Second, "in under a minute"},
	}
	for _, tt := range agoTests {
		if got := ago(testNow.Add(tt.d), testNow); got != tt.want {
			t.Errorf("ago(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
	if ago(time.Time{}, testNow) != "" || utc(time.Time{}) != "—" {
		t.Error("zero time")
	}
	valueTests := []struct {
		v    state.Value
		cur  string
		want string
	}{
		{state.Amount(5000), "USD", "50.00 USD"},
		{state.Amount(5000), "JPY", "5000 JPY"},
		{state.Amount(5000), "", "5000 (minor units)"},
		{state.Status("PAUSED"), "USD", "PAUSED"},
		{state.Value{}, "USD", ""},
	}
	for _, tt := range valueTests {
		if got := formatValue(tt.v, tt.cur); got != tt.want {
			t.Errorf("formatValue(%v, %q) = %q, want %q", tt.v, tt.cur, got, tt.want)
		}
	}
	for in, want := range map[string]string{
		"success": "ok", "applied": "ok", "failed": "bad", "blocked_guard": "bad", "partial": "warn",
		"dry_run": "info", "skipped_cooldown": "muted", "skipped": "muted",
	} {
		if got := resultClass(in); got != want {
			t.Errorf("resultClass(%q) = %q", in, got)
		}
	}
	if humanResult("skipped_cooldown") != "skipped: cooldown" || humanResult("dry_run") != "dry run" {
		t.Error("humanResult")
	}
	if got := formatNumber(1.0 / 3); got != "0.3333" {
		t.Errorf("formatNumber = %q", got)
	}
	if got := runDuration(testNow, testNow.Add(185*time.Second)); got != "3 min 5 s" {
		t.Errorf("runDuration = %q", got)
	}
	if _, err := url.Parse(ruleURL("a b", "c/d")); err != nil || ruleURL("a b", "c/d") != "/rules/a%20b/c%2Fd" {
		t.Errorf("ruleURL = %q", ruleURL("a b", "c/d"))
	}
}
