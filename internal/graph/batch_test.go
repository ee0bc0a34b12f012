package graph

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

func TestBatch(t *testing.T) {
	var mu sync.Mutex
	var sizes []int
	var paths []string
	e := newEnv(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := params(r)
		if r.Method != http.MethodPost || p.Get("access_token") != testToken {
			writeJSON(w, 400, errBody(190, 0, ""))
			return
		}
		var ops []struct {
			Method      string `json:"method"`
			RelativeURL string `json:"relative_url"`
			Body        string `json:"body"`
		}
		if err := json.Unmarshal([]byte(p.Get("batch")), &ops); err != nil {
			writeJSON(w, 400, errBody(100, 0, ""))
			return
		}
		mu.Lock()
		sizes = append(sizes, len(ops))
		paths = append(paths, r.URL.Path)
		mu.Unlock()
		items := make([]any, len(ops))
		for i, op := range ops {
			switch {
			case strings.Contains(op.RelativeURL, "/nullme"):
				items[i] = nil
			case strings.Contains(op.RelativeURL, "/fail"):
				items[i] = map[string]any{"code": 400, "headers": []map[string]string{{"name": "WWW-Authenticate", "value": "OAuth \"Facebook Platform\""}},
					"body": errBody(100, 1885272, `"error_user_title":"Budget Is Too Low"`)}
			case op.Method == "POST":
				body, _ := url.ParseQuery(op.Body)
				items[i] = map[string]any{"code": 200, "headers": []map[string]string{{"name": "Content-Type", "value": "text/javascript; charset=UTF-8"}},
					"body": fmt.Sprintf(`{"success":true,"echo":%q}`, body.Get("status"))}
			default:
				items[i] = map[string]any{"code": 200, "headers": []map[string]string{
					{"name": "X-Business-Use-Case-Usage", "value": `{"42":[{"type":"ads_management","call_count":33}]}`}},
					"body": fmt.Sprintf(`{"url":%q}`, op.RelativeURL)}
			}
		}
		b, _ := json.Marshal(items)
		writeJSON(w, 200, string(b))
	}), nil)

	ops := make([]BatchOp, 120)
	for i := range ops {
		ops[i] = BatchOp{Request: Request{Path: fmt.Sprintf("act_42/x%d", i), Params: url.Values{"fields": {"id,name"}}}}
	}
	ops[7] = BatchOp{Method: "POST", Request: Request{Path: "9001", Account: "act_42", Params: url.Values{"status": {"PAUSED"}}}}
	ops[60].Path = "act_42/nullme"
	ops[61] = BatchOp{Method: "POST", Request: Request{Path: "fail", Account: "act_42"}}
	res, err := e.c.Batch(context.Background(), ops)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(sizes) != "[50 50 20]" {
		t.Fatalf("batch sizes %v", sizes)
	}
	if paths[0] != "/" {
		t.Errorf("batch posted to %q", paths[0])
	}
	if len(res) != 120 {
		t.Fatalf("%d results", len(res))
	}
	if r := res[0]; r.Err != nil || r.Code != 200 || string(r.Body) != `{"url":"v27.0/act_42/x0?fields=id%2Cname"}` {
		t.Errorf("res[0] = %+v", r)
	}
	if r := res[119]; r.Err != nil || !strings.Contains(string(r.Body), "x119") {
		t.Errorf("res[119] = %+v %s", r, r.Body)
	}
	if r := res[7]; r.Err != nil || string(r.Body) != `{"success":true,"echo":"PAUSED"}` || r.Header.Get("Content-Type") == "" {
		t.Errorf("res[7] = %+v %s", r, r.Body)
	}
	if r := res[60]; !errors.Is(r.Err, ErrAnswerLost) || KindOf(r.Err) != KindAnswerUnknown || r.Code != 0 {
		t.Errorf("null item: %+v", r)
	}
	ge, ok := AsError(res[61].Err)
	if !ok || !ge.IsBudgetTooLow() || ge.HTTPStatus != 400 || ge.Endpoint != "/fail" || ge.Method != "POST" || res[61].Header.Get("WWW-Authenticate") == "" {
		t.Errorf("failed item: %+v", res[61])
	}
	if v := gaugeValue(t, e.reg, "rulesd_graph_usage_ratio", map[string]string{"account": "act_42", "kind": "ads_management_call_count"}); v != 0.33 {
		t.Errorf("usage from batch item headers: %v", v)
	}
	if v := gaugeValue(t, e.reg, "rulesd_graph_requests_total", map[string]string{"endpoint": "/", "code": "200"}); v != 3 {
		t.Errorf("requests_total{endpoint=/} = %v", v)
	}
}

func TestBatchChunkFailure(t *testing.T) {
	var calls atomic.Int32
	e := newEnv(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 2 {
			hijackClose(w)
			return
		}
		var ops []json.RawMessage
		_ = json.Unmarshal([]byte(params(r).Get("batch")), &ops)
		items := strings.Repeat(`{"code":200,"body":"{\"success\":true}"},`, len(ops))
		writeJSON(w, 200, "["+strings.TrimSuffix(items, ",")+"]")
	}), nil)
	ops := make([]BatchOp, 110)
	for i := range ops {
		ops[i] = BatchOp{Method: "POST", Request: Request{Path: fmt.Sprint(1000 + i), Params: url.Values{"status": {"PAUSED"}}}}
	}
	res, err := e.c.Batch(context.Background(), ops)
	if !errors.Is(err, ErrAnswerLost) {
		t.Fatalf("err=%v", err)
	}
	if res[0].Err != nil || !errors.Is(res[50].Err, ErrAnswerLost) || !errors.Is(res[105].Err, ErrNotSent) {
		t.Fatalf("results: %v / %v / %v", res[0].Err, res[50].Err, res[105].Err)
	}
	if calls.Load() != 2 {
		t.Fatalf("%d calls: a lost write batch must not be resent", calls.Load())
	}
}
