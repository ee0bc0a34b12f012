package graph

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

func TestScanTop(t *testing.T) {
	cases := []struct {
		name, body, next string
		hasErr, bad      bool
	}{
		{"next", `{"data":[{"a":"b"}],"paging":{"cursors":{"before":"x","after":"y"},"next":"https://h/v1/x?after=y"}}`, "https://h/v1/x?after=y", false, false},
		{"escaped slashes", `{"paging":{"next":"https:\/\/h\/x?a=\"q\""},"data":[]}`, `https://h/x?a="q"`, false, false},
		{"no next", `{"data":[],"paging":{"cursors":{"before":"x","after":"y"}}}`, "", false, false},
		{"no paging", `{"data":[]}`, "", false, false},
		{"nested paging ignored", `{"data":[{"paging":{"next":"wrong"}},{"x":"}]{[\""}]}`, "", false, false},
		{"paging not object", `{"paging":null,"data":[]}`, "", false, false},
		{"next not string", `{"paging":{"next":null}}`, "", false, false},
		{"numbers and literals", `{"a":1.5e3,"b":true,"c":null,"d":-2,"paging":{"next":"n"}}`, "n", false, false},
		{"error key", `{"error":{"code":1}}`, "", true, false},
		{"backslash at string end", `{"a":"x\\","paging":{"next":"n"}}`, "n", false, false},
		{"array body", `[{"code":200},null]`, "", false, false},
		{"truncated", `{"data":[{"a":"b"}`, "", false, true},
		{"truncated string", `{"data":["abc`, "", false, true},
		{"not json", `<html>`, "", false, true},
		{"empty", ``, "", false, true},
		{"trailing", `{} {}`, "", false, true},
		{"missing colon", `{"a" 1}`, "", false, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			top, err := scanTop([]byte(tc.body))
			if (err != nil) != tc.bad {
				t.Fatalf("err=%v", err)
			}
			if tc.bad {
				return
			}
			next, err := unquote(top.next)
			if err != nil || next != tc.next {
				t.Errorf("next=%q err=%v, want %q", next, err, tc.next)
			}
			if (top.errVal != nil) != tc.hasErr {
				t.Errorf("errVal=%q", top.errVal)
			}
		})
	}
}

// FuzzScanTop checks the scanner against encoding/json on valid input.
func FuzzScanTop(f *testing.F) {
	f.Add([]byte(`{"data":[{"a":"b\"c"}],"paging":{"next":"x"}}`))
	f.Add([]byte(`{"paging":{"cursors":{},"next":"y\\"}}`))
	f.Add([]byte(`{"paging":{"next":"a"},"paging":{"cursors":{}}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		top, err := scanTop(b)
		var root map[string]json.RawMessage
		if json.Unmarshal(b, &root) != nil {
			return // the scanner is not a validator
		}
		if err != nil {
			t.Fatalf("valid JSON rejected: %v", err)
		}
		// Exact key match, as Graph writes keys (encoding/json structs fold case).
		want := ""
		var paging map[string]json.RawMessage
		if json.Unmarshal(root["paging"], &paging) == nil {
			_ = json.Unmarshal(paging["next"], &want)
		}
		got, err := unquote(top.next)
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Fatalf("next %q, want %q", got, want)
		}
	})
}

// insightsPage builds a realistic insights page of about size bytes.
func insightsPage(size int) []byte {
	var b bytes.Buffer
	b.WriteString(`{"data":[`)
	for i := 0; b.Len() < size; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"account_id":"1010035716096012","campaign_id":"2384%08d","adset_id":"2385%08d","ad_id":"2386%08d","ad_name":"UGC video \"%d\" – spring","date_start":"2026-11-13","date_stop":"2026-11-19","impressions":"%d","clicks":"%d","spend":"%d.%02d","ctr":"1.234567","cpm":"14.77","actions":[{"action_type":"link_click","value":"%d"},{"action_type":"offsite_conversion.fb_pixel_purchase","value":"31","7d_click":"29","1d_view":"2"},{"action_type":"omni_purchase","value":"31"}],"purchase_roas":[{"action_type":"omni_purchase","value":"3.41"}]}`,
			i, i, i, i, 361324+i, 1200+i, 5339+i, i%100, 1200+i)
	}
	b.WriteString(`],"paging":{"cursors":{"before":"MAZDZD","after":"MjQZD"},"next":"https:\/\/graph.facebook.com\/v27.0\/act_1010035716096012\/insights?access_token=EAAx&level=ad&limit=500&after=MjQZD"}}`)
	return b.Bytes()
}

func TestInsightsPageScans(t *testing.T) {
	page := insightsPage(1 << 20)
	next, err := NextPage(page)
	if err != nil || !strings.HasPrefix(next, "https://graph.facebook.com/v27.0/act_1010035716096012/insights?") {
		t.Fatalf("next=%q err=%v", next, err)
	}
	if !json.Valid(page) {
		t.Fatal("test page is not JSON")
	}
}

// BenchmarkNextPage measures the paging.next scanner on a ~1 MB insights page.
func BenchmarkNextPage(b *testing.B) {
	page := insightsPage(1 << 20)
	b.SetBytes(int64(len(page)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := NextPage(page); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkJSONUnmarshalPaging is the baseline the scanner replaces.
func BenchmarkJSONUnmarshalPaging(b *testing.B) {
	page := insightsPage(1 << 20)
	b.SetBytes(int64(len(page)))
	for b.Loop() {
		var v struct {
			Paging struct {
				Next string `json:"next"`
			} `json:"paging"`
		}
		if err := json.Unmarshal(page, &v); err != nil {
			b.Fatal(err)
		}
	}
}
