package diag

import "testing"

func TestSuggest(t *testing.T) {
	names := []string{"spend", "impressions", "purchases", "cpa", "cpc", "reach", "last_7d", "last_3d"}
	tests := map[string]string{
		"spned":      "spend", // transposition
		"spnd":       "spend",
		"impresions": "impressions",
		"purchses":   "purchases",
		"cpx":        "cpa", // one edit, the first of equals in order
		"last7d":     "last_7d",
		"revenue":    "", // nothing close
		"xyz":        "",
	}
	for in, want := range tests {
		if got := Suggest(in, names); got != want {
			t.Errorf("Suggest(%q) = %q, want %q", in, got, want)
		}
	}
	if got := DidYouMean("spned", names); got != ` (did you mean "spend"?)` {
		t.Errorf("DidYouMean = %q", got)
	}
}

func TestListFormatsAndSorts(t *testing.T) {
	var l List
	l.Warnf(Pos{File: "b.yaml", Line: 2, Col: 1}, "ratio without volume")
	l.Errorf(Pos{File: "a.yaml", Line: 9, Col: 3}, "unknown name %s", "spned")
	l.Errorf(Pos{File: "a.yaml", Line: 1}, "first")
	l.Sort()
	want := []string{"a.yaml:1: first", "a.yaml:9:3: unknown name spned", "b.yaml:2:1: warning: ratio without volume"}
	for i, d := range l {
		if d.String() != want[i] {
			t.Errorf("line %d = %q, want %q", i, d.String(), want[i])
		}
	}
	if !l.HasErrors() || len(l.Errors()) != 2 || len(l.Warnings()) != 1 {
		t.Error("counts wrong")
	}
	if l.Err().Error() != "a.yaml:1: first\na.yaml:9:3: unknown name spned" {
		t.Errorf("Err = %q", l.Err())
	}
	var none List
	if none.Err() != nil {
		t.Error("an empty list is no error")
	}
}
