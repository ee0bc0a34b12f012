package state

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
)

// Value is the before, after or target value of one object field: a number in the
// account currency's minor units (a budget or a bid), a status string ("ACTIVE",
// "PAUSED"), or absent (notify actions, unset budgets). The zero Value is absent.
//
// Money is kept in integer minor units because every cap and every comparison the
// engine makes must be exact; converting to major units is the presentation layer's job,
// which knows the account's currency offset.
type Value struct {
	kind  valueKind
	minor int64
	text  string
}

type valueKind uint8

const (
	valueAbsent valueKind = iota
	valueAmount
	valueStatus
)

// Amount returns a Value holding a number in minor currency units.
func Amount(minor int64) Value { return Value{kind: valueAmount, minor: minor} }

// Status returns a Value holding a status string.
func Status(s string) Value { return Value{kind: valueStatus, text: s} }

// IsAbsent reports whether v holds nothing.
func (v Value) IsAbsent() bool { return v.kind == valueAbsent }

// Amount returns the minor units held by v, and false when v is not a number.
func (v Value) Amount() (int64, bool) { return v.minor, v.kind == valueAmount }

// Status returns the status string held by v, and false when v is not a status.
func (v Value) Status() (string, bool) { return v.text, v.kind == valueStatus }

// String renders v for logs and errors: the minor units, the status, or "absent".
func (v Value) String() string {
	switch v.kind {
	case valueAmount:
		return strconv.FormatInt(v.minor, 10)
	case valueStatus:
		return v.text
	}
	return "absent"
}

// columns splits v into the two nullable columns every backend stores it in, so that
// absent, numbers and strings round-trip without a type tag.
func (v Value) columns() (num, text any) {
	switch v.kind {
	case valueAmount:
		return v.minor, nil
	case valueStatus:
		return nil, v.text
	}
	return nil, nil
}

// valueFromColumns is the inverse of Value.columns.
func valueFromColumns(num *int64, text *string) Value {
	switch {
	case num != nil:
		return Amount(*num)
	case text != nil:
		return Status(*text)
	}
	return Value{}
}

// Scalar is one value a rule saw when it was evaluated (SPEC 4, audit "values"): a
// number, a string, or null for a missing value. The zero Scalar is null.
type Scalar struct {
	kind scalarKind
	num  float64
	str  string
}

type scalarKind uint8

const (
	scalarNull scalarKind = iota
	scalarNumber
	scalarString
)

// Number returns a numeric Scalar. NaN and the infinities become null, because the
// engine encodes a missing value as NaN and JSON has no way to carry either.
func Number(f float64) Scalar {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return Scalar{}
	}
	return Scalar{kind: scalarNumber, num: f}
}

// Text returns a string Scalar.
func Text(s string) Scalar { return Scalar{kind: scalarString, str: s} }

// Null returns the null Scalar (the same as the zero Scalar), for readability at call sites.
func Null() Scalar { return Scalar{} }

// IsNull reports whether s is null.
func (s Scalar) IsNull() bool { return s.kind == scalarNull }

// Number returns the number held by s, and false when s is not a number.
func (s Scalar) Number() (float64, bool) { return s.num, s.kind == scalarNumber }

// Text returns the string held by s, and false when s is not a string.
func (s Scalar) Text() (string, bool) { return s.str, s.kind == scalarString }

// String renders s for logs: the number, the quoted string, or "null".
func (s Scalar) String() string {
	b, _ := s.MarshalJSON()
	return string(b)
}

// MarshalJSON encodes s as a JSON number, string or null, the shape SPEC 6 and 7 give
// to "values".
func (s Scalar) MarshalJSON() ([]byte, error) {
	switch s.kind {
	case scalarNumber:
		return json.Marshal(s.num)
	case scalarString:
		return json.Marshal(s.str)
	}
	return []byte("null"), nil
}

// UnmarshalJSON decodes a JSON number, string or null; anything else is an error.
func (s *Scalar) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case bytes.Equal(b, []byte("null")):
		*s = Scalar{}
	case len(b) > 0 && b[0] == '"':
		var str string
		if err := json.Unmarshal(b, &str); err != nil {
			return err
		}
		*s = Text(str)
	default:
		var f float64
		if err := json.Unmarshal(b, &f); err != nil {
			return fmt.Errorf("scalar: want number, string or null, got %s", b)
		}
		*s = Number(f)
	}
	return nil
}
