package yamlx

import (
	"strings"
	"testing"

	"github.com/rulesd/rulesd/internal/diag"
)

// TestOffsetPos maps the position of "cpa" inside an expression back to the file, in
// every scalar style.
func TestOffsetPos(t *testing.T) {
	tests := []struct {
		name, src      string
		line, col      int
		wantFoundValue string
	}{
		{"plain", "when: spend > 1 && cpa > 2\n", 1, 20, "spend > 1 && cpa > 2"},
		{"double quoted", "when: \"spend > 1 && cpa > 2\"\n", 1, 21, "spend > 1 && cpa > 2"},
		{"single quoted", "when: 'name == ''x'' && cpa > 2'\n", 1, 25, "name == 'x' && cpa > 2"},
		{"literal", "when: |\n  spend > 1\n    && cpa > 2\n", 3, 8, "spend > 1\n  && cpa > 2\n"},
		{"folded", "when: >\n  spend > 1 &&\n  cpa > 2\n", 3, 3, "spend > 1 && cpa > 2\n"},
		{"plain multi-line", "when: spend > 1 &&\n  cpa > 2\n", 2, 3, "spend > 1 && cpa > 2"},
		{"nested", "rules:\n- when: |\n    spend > 1 && cpa > 2\n", 3, 18, "spend > 1 && cpa > 2\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var l diag.List
			root := Parse("r.yaml", []byte(tt.src), &l)
			if root == nil {
				t.Fatal(l.Err())
			}
			n := root.Content[1]
			if n.Kind != 8 { // a sequence: go into it
				n = n.Content[0].Content[1]
			}
			if n.Value != tt.wantFoundValue {
				t.Fatalf("value = %q, want %q", n.Value, tt.wantFoundValue)
			}
			d := &Decoder{File: "r.yaml", Diags: &l, Src: []byte(tt.src)}
			off := len([]rune(n.Value[:strings.Index(n.Value, "cpa")]))
			got := d.OffsetPos(n, off)
			if got.Line != tt.line || got.Col != tt.col {
				t.Errorf("cpa at %d:%d, want %d:%d", got.Line, got.Col, tt.line, tt.col)
			}
		})
	}
}

type sample struct {
	Pos   diag.Pos          `yaml:"-" kind:"sample"`
	Name  string            `yaml:"name,required"`
	Count int               `yaml:"count"`
	Rate  float64           `yaml:"rate"`
	On    *bool             `yaml:"on"`
	Tags  []string          `yaml:"tags"`
	Vars  map[string]string `yaml:"vars"`
}

func TestDecodeReportsEveryProblem(t *testing.T) {
	src := "name: x\ncount: many\nrate: fast\non: maybe\ntags: a\nvars: [1]\ncolour: red\nname: y\n"
	var l diag.List
	root := Parse("s.yaml", []byte(src), &l)
	var s sample
	(&Decoder{File: "s.yaml", Diags: &l}).Decode(root, &s)
	got := l.Err().Error()
	for _, want := range []string{
		`s.yaml:2:8: "count" must be a whole number, not "many"`,
		`s.yaml:3:7: "rate" must be a number, not "fast"`,
		`s.yaml:4:5: "on" must be true or false, not "maybe"`,
		`s.yaml:5:7: "tags" must be a list, not "a"`,
		`s.yaml:6:7: "vars" must be a mapping of names to values, not a list`,
		`s.yaml:7:1: unknown key "colour" in sample`,
		`s.yaml:8:1: duplicate key "name"`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in\n%s", want, got)
		}
	}
	if s.On != nil {
		t.Error("a pointer field was set although its value did not decode")
	}
	l = nil
	root = Parse("s.yaml", []byte("count: 3\n"), &l)
	(&Decoder{File: "s.yaml", Diags: &l}).Decode(root, &sample{})
	if err := l.Err(); err == nil || !strings.Contains(err.Error(), `s.yaml:1:1: sample is missing the required key "name"`) {
		t.Errorf("err = %v", err)
	}
}
