package notify

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestMessageTemplates(t *testing.T) {
	data := map[string]any{
		"name":     "UGC video",
		"cpa":      42.5,
		"campaign": map[string]any{"name": "Sales"},
	}
	cases := []struct {
		text    string
		want    string
		wantErr string
	}{
		{text: `{{.name}} in {{.campaign.name}}: CPA {{printf "%.2f" .cpa}}`, want: "UGC video in Sales: CPA 42.50"},
		{text: ``, want: ""},
		{text: `{{.nmae}}`, wantErr: `map has no entry for key "nmae"`},
		{text: `{{.campaign.objective}}`, wantErr: `map has no entry for key "objective"`},
	}
	for _, c := range cases {
		tmpl, err := ParseMessage(c.text)
		if err != nil {
			t.Fatalf("ParseMessage(%q): %v", c.text, err)
		}
		got, err := RenderMessage(tmpl, data)
		if c.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("RenderMessage(%q) error = %v, want %q", c.text, err, c.wantErr)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("RenderMessage(%q) = %q, %v; want %q", c.text, got, err, c.want)
		}
	}
	if _, err := ParseMessage(`{{.name`); err == nil || !strings.HasPrefix(err.Error(), "message template: ") {
		t.Errorf("parse error = %v", err)
	}
	if s, err := RenderMessage(nil, data); s != "" || err != nil {
		t.Errorf("nil template: %q, %v", s, err)
	}
}

func TestRenderMessageIsBounded(t *testing.T) {
	tmpl, err := ParseMessage(`{{range .}}é{{.}}{{end}}`)
	if err != nil {
		t.Fatal(err)
	}
	got, err := RenderMessage(tmpl, make([]int, 100000))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) > MaxMessageBytes || !strings.HasSuffix(got, "…") || !utf8.ValidString(got) {
		t.Errorf("len %d, suffix %q", len(got), got[len(got)-5:])
	}
}
