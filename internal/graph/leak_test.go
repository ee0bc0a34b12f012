package graph

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// TestTokenNeverLeaks drives every path that handles URLs and server text and
// checks that the token appears in no log line, error string or metric label.
func TestTokenNeverLeaks(t *testing.T) {
	var srvURL string
	var dropped atomic.Int32
	mux := http.NewServeMux()
	mux.HandleFunc("/v27.0/act_1/insights", func(w http.ResponseWriter, r *http.Request) {
		// Real next URLs carry the caller's own token.
		q := url.Values{"access_token": {testToken}, "after": {"P" + params(r).Get("after")}}
		if len(params(r).Get("after")) > 2 {
			writeJSON(w, 200, `{"data":[]}`)
			return
		}
		writeJSON(w, 200, `{"data":[{"x":"1"}],"paging":{"next":"`+srvURL+`/v27.0/act_1/insights?`+q.Encode()+`"}}`)
	})
	mux.HandleFunc("/v27.0/echo", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 400, `{"error":{"message":"Invalid OAuth access token - Cannot parse access token `+testToken+`","type":"OAuthException","code":190,"error_user_msg":"url `+r.URL.String()+`","error_data":{"token":"`+testToken+`"},"fbtrace_id":"F"}}`)
	})
	mux.HandleFunc("/v27.0/html", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 502, "<html>upstream failed for "+r.URL.String()+"</html>")
	})
	mux.HandleFunc("/v27.0/drop", func(w http.ResponseWriter, r *http.Request) {
		dropped.Add(1)
		hijackClose(w)
	})
	mux.HandleFunc("/v27.0/throttle", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 400, `{"error":{"message":"(#4) limit `+testToken+`","code":4}}`)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/" { // batch: one item echoes the URL it was given
			writeJSON(w, 200, `[{"code":400,"headers":[],"body":"{\"error\":{\"message\":\"bad `+testToken+`\",\"code\":100}}"},null]`)
			return
		}
		http.NotFound(w, r)
	})
	e := newEnv(t, mux, func(o *Options) { o.AppSecret = NewSecret(testSecret); o.MaxThrottleWait = -1 })
	srvURL = e.srv.URL
	ctx := context.Background()

	var errs []error
	errs = append(errs, e.c.Pages(ctx, Request{Path: "act_1/insights"}, func([]byte) error { return nil }))
	for _, p := range []string{"echo", "html", "drop", "throttle", "nothere"} {
		_, err := e.c.Get(ctx, Request{Path: p, Params: url.Values{"fields": {"id"}}})
		errs = append(errs, err)
		_, err = e.c.Post(ctx, Request{Path: p, Account: "act_1", Params: url.Values{"status": {"PAUSED"}}})
		errs = append(errs, err)
	}
	res, err := e.c.Batch(ctx, []BatchOp{{Request: Request{Path: "1"}}, {Method: "POST", Request: Request{Path: "2"}}})
	errs = append(errs, err)
	for _, r := range res {
		errs = append(errs, r.Err)
	}
	// A closed server: connection refused, whose *url.Error names the URL.
	e.srv.Close()
	_, err = e.c.Get(ctx, Request{Path: "act_1/ads"})
	errs = append(errs, err)

	if dropped.Load() == 0 {
		t.Fatal("the drop path was not exercised")
	}
	secrets := []string{testToken, testSecret, url.QueryEscape(testToken), AppSecretProof(NewSecret(testSecret), NewSecret(testToken))[:12], testToken[:12]}
	check := func(where, s string) {
		t.Helper()
		for _, sec := range secrets {
			if strings.Contains(s, sec) {
				t.Errorf("%s leaks a secret: %s", where, s)
			}
		}
		if strings.Contains(strings.ReplaceAll(s, "access_token="+redacted, ""), "access_token=") {
			t.Errorf("%s contains a URL with access_token: %s", where, s)
		}
	}
	nerr := 0
	for _, err := range errs {
		if err == nil {
			continue
		}
		nerr++
		check("error", err.Error())
		check("error %+v", fmt.Sprintf("%+v", err))
		if ge, ok := AsError(err); ok {
			check("error %#v", fmt.Sprintf("%#v", *ge))
			check("error_data", string(ge.ErrorData))
		}
	}
	if nerr < 10 {
		t.Fatalf("only %d errors produced", nerr)
	}
	if e.logs.Len() == 0 {
		t.Fatal("nothing logged")
	}
	for _, le := range e.logs.All() {
		b, _ := json.Marshal(le.ContextMap())
		check("log line", le.Message+" "+string(b))
	}
	mfs, err := e.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				check("metric label", lp.GetName()+"="+lp.GetValue())
				if strings.Contains(lp.GetValue(), "http") {
					t.Errorf("metric label holds a URL: %s", lp.GetValue())
				}
			}
		}
	}
}

func TestSecretRedaction(t *testing.T) {
	s := NewSecret(testToken)
	opts := Options{Token: s, AppSecret: NewSecret(testSecret)}
	core, logs := observer.New(zapcore.DebugLevel)
	log := zap.New(core)
	log.Info("x", zap.Any("secret", s), zap.Stringer("str", s), zap.Any("opts", opts), zap.Reflect("refl", opts))
	var sb strings.Builder
	slog.New(slog.NewTextHandler(&sb, nil)).Info("x", "tok", s)
	js, _ := json.Marshal(struct{ Token, AppSecret Secret }{opts.Token, opts.AppSecret})
	txt, _ := s.MarshalText()
	outs := []string{
		fmt.Sprint(s), fmt.Sprintf("%s %v %+v %#v %q %x %d", s, s, s, s, s, s, s), fmt.Sprintf("%+v %#v", opts, opts),
		string(js), string(txt), sb.String(),
	}
	for _, le := range logs.All() {
		b, _ := json.Marshal(le.ContextMap())
		outs = append(outs, string(b))
	}
	for _, o := range outs {
		if strings.Contains(o, testToken) || strings.Contains(o, testSecret) {
			t.Errorf("leak: %s", o)
		}
	}
	if s.Reveal() != testToken || s.IsZero() || !NewSecret("").IsZero() || NewSecret("").String() != "" {
		t.Error("Reveal/IsZero")
	}
}

func TestEndpointTemplate(t *testing.T) {
	cases := map[string]string{
		"act_123/insights":         "/act_{id}/insights",
		"/act_123/insights":        "/act_{id}/insights",
		"v27.0/act_123/adsets":     "/act_{id}/adsets",
		"123456":                   "/{id}",
		"123456/insights":          "/{id}/insights",
		"6044775548468/insights/":  "/{id}/insights",
		"":                         "/",
		"me":                       "/me",
		"123_456/comments":         "/{id}/comments",
		"act_1/insights?after=abc": "/act_{id}/insights",
		"EAAtoken123/x":            "/{id}/x",
		"act_/adrules_library":     "/act_{id}/adrules_library",
	}
	for in, want := range cases {
		if got := EndpointTemplate(in); got != want {
			t.Errorf("EndpointTemplate(%q) = %q, want %q", in, got, want)
		}
	}
	if accountOf("v27.0/act_77/insights") != "act_77" || accountOf("123") != "" || accountOf("act_9") != "act_9" {
		t.Error("accountOf")
	}
}

func TestEncodeValue(t *testing.T) {
	type spec struct {
		Field    string `json:"field"`
		Operator string `json:"operator"`
		Value    any    `json:"value"`
	}
	cases := []struct {
		in   any
		want string
	}{
		{"a<b", "a<b"},
		{true, "true"},
		{6000, "6000"},
		{int64(-5), "-5"},
		{1.5, "1.5"},
		{[]string{"ACTIVE", "PAUSED"}, `["ACTIVE","PAUSED"]`},
		{map[string]any{"until": "2026-11-19", "since": "2026-11-13"}, `{"since":"2026-11-13","until":"2026-11-19"}`},
		{[]spec{{"ad.impressions", "GREATER_THAN", 0}}, `[{"field":"ad.impressions","operator":"GREATER_THAN","value":0}]`},
		{json.RawMessage("{ \"a\" : [1, 2] }"), `{"a":[1,2]}`},
		{map[string]string{"x": "<&>"}, `{"x":"<&>"}`},
	}
	for _, tc := range cases {
		got, err := EncodeValue(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("EncodeValue(%v) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestNewValidates(t *testing.T) {
	for _, o := range []Options{
		{},
		{BaseURL: "graph.facebook.com", Token: NewSecret("x")},
		{BaseURL: "https://graph.facebook.com"},
		{BaseURL: "https://graph.facebook.com?access_token=x", Token: NewSecret("x")},
	} {
		if _, err := New(o); err == nil {
			t.Errorf("New(%+v) accepted", o)
		}
	}
	// Two clients (two tokens) can share one registry.
	e := newEnv(t, http.NotFoundHandler(), nil)
	if _, err := New(Options{BaseURL: "https://graph.facebook.com", Token: NewSecret("y"), TokenName: "other", Registerer: e.reg}); err != nil {
		t.Fatal(err)
	}
}
