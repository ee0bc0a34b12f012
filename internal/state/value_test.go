package state

import (
	"encoding/json"
	"math"
	"testing"
)

func TestValue(t *testing.T) {
	var zero Value
	if !zero.IsAbsent() || zero.String() != "absent" {
		t.Errorf("zero Value: absent %v, %q", zero.IsAbsent(), zero.String())
	}
	if n, ok := Amount(6000).Amount(); !ok || n != 6000 || Amount(6000).String() != "6000" {
		t.Errorf("Amount(6000) = %d, %v", n, ok)
	}
	if _, ok := Amount(0).Status(); ok || Amount(0).IsAbsent() {
		t.Error("Amount(0) is a status or absent")
	}
	if s, ok := Status("PAUSED").Status(); !ok || s != "PAUSED" {
		t.Errorf("Status(PAUSED) = %q, %v", s, ok)
	}
	if Status("") == (Value{}) || Amount(0) == (Value{}) {
		t.Error("an empty status or a zero amount equals absent")
	}
	if a, b := Amount(1), Amount(1); a != b || a == Amount(2) || Status("A") == Amount(0) {
		t.Error("Value equality with ==")
	}
}

func TestScalarJSON(t *testing.T) {
	in := map[string]Scalar{
		"n": Number(61.25), "i": Number(3000), "z": Number(0), "neg": Number(-1.5),
		"s": Text("ACTIVE"), "e": Text(""), "q": Text(`a "quoted" \ string`),
		"null": Null(), "nan": Number(math.NaN()), "inf": Number(math.Inf(1)),
	}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"e":"","i":3000,"inf":null,"n":61.25,"nan":null,"neg":-1.5,"null":null,"q":"a \"quoted\" \\ string","s":"ACTIVE","z":0}`
	if string(b) != want {
		t.Errorf("marshal:\n got %s\nwant %s", b, want)
	}
	var out map[string]Scalar
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	for k, v := range in {
		if k == "nan" || k == "inf" {
			v = Null()
		}
		if out[k] != v {
			t.Errorf("%s: %v, want %v", k, out[k], v)
		}
	}
	for _, bad := range []string{`true`, `[1]`, `{"a":1}`} {
		var s Scalar
		if err := json.Unmarshal([]byte(bad), &s); err == nil {
			t.Errorf("Unmarshal(%s) succeeded: %v", bad, s)
		}
	}
	if Number(2).String() != "2" || Text("x").String() != `"x"` || Null().String() != "null" {
		t.Error("Scalar.String")
	}
	if f, ok := Number(2.5).Number(); !ok || f != 2.5 {
		t.Error("Scalar.Number")
	}
	if s, ok := Text("x").Text(); !ok || s != "x" || !Null().IsNull() || Number(0).IsNull() {
		t.Error("Scalar.Text / IsNull")
	}
}
