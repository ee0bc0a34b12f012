package fakegraph

import (
	"encoding/json"
	"net/http"
	"net/url"
	"sort"
	"strings"
)

// maxBatch is Graph's limit of operations per batch request.
const maxBatch = 50

type batchItem struct {
	Method      string `json:"method"`
	RelativeURL string `json:"relative_url"`
	Body        string `json:"body"`
	Name        string `json:"name"`
}

// batch answers POST / with batch=[...]: items run in order through the normal handler, each
// with its own usage accounting, faults and log entry; a dropped item answers null.
func (s *Server) batch(r *request) *response {
	var items []batchItem
	if err := json.Unmarshal([]byte(r.params.Get("batch")), &items); err != nil {
		return s.errorResp(errParam("The parameter batch must be a JSON array of requests"), nil)
	}
	if len(items) == 0 {
		return s.errorResp(errParam("The parameter batch must contain at least one request"), nil)
	}
	if len(items) > maxBatch {
		return s.errorResp(errParam("Too many requests in batch message. Maximum batch size is %d", maxBatch), nil)
	}
	includeHeaders := r.params.Get("include_headers") != "false"
	out := make([]any, len(items))
	for i, it := range items {
		sub, err := subRequest(r, it)
		if err != nil {
			out[i] = s.batchEntry(s.errorResp(errParam("Invalid relative_url in batch item %d", i), nil), includeHeaders)
			continue
		}
		resp := s.handle(sub)
		if resp.drop {
			out[i] = nil
			continue
		}
		out[i] = s.batchEntry(resp, includeHeaders)
	}
	return s.ok(out, s.usageHeaders(nil, false))
}

func (s *Server) batchEntry(resp *response, includeHeaders bool) jobj {
	body := resp.body
	if resp.malformed && len(body) > 1 {
		body = body[:len(body)/2]
	}
	e := jobj{{"code", resp.status}}
	if includeHeaders {
		hs := []jobj{{{"name", "Content-Type"}, {"value", "text/javascript; charset=UTF-8"}}}
		keys := make([]string, 0, len(resp.header))
		for k := range resp.header {
			if k != "Content-Type" {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		for _, k := range keys {
			hs = append(hs, jobj{{"name", k}, {"value", resp.header.Get(k)}})
		}
		e = append(e, kv{"headers", hs})
	}
	// Section 13.12: the body is a JSON document inside a JSON string.
	return append(e, kv{"body", string(body)})
}

func subRequest(outer *request, it batchItem) (*request, error) {
	method := strings.ToUpper(it.Method)
	if method == "" {
		method = http.MethodGet
	}
	rel := strings.TrimPrefix(it.RelativeURL, "/")
	path, rawQuery, _ := strings.Cut(rel, "?")
	params, err := url.ParseQuery(rawQuery)
	if err != nil {
		return nil, err
	}
	if it.Body != "" {
		body, err := url.ParseQuery(it.Body)
		if err != nil {
			return nil, err
		}
		for k, v := range body {
			params[k] = v
		}
	}
	for _, k := range []string{"access_token", "appsecret_proof"} {
		if !params.Has(k) && outer.params.Has(k) {
			params.Set(k, outer.params.Get(k))
		}
	}
	return &request{method: method, path: "/" + path, params: params, host: outer.host, scheme: outer.scheme,
		bearer: outer.bearer, batch: true}, nil
}
