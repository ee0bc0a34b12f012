package fakegraph

import (
	"encoding/json"
	"strconv"
	"strings"
)

// filter is one {field, operator, value} of a `filtering` parameter.
type filter struct {
	field, op string
	val       any
}

func parseFiltering(raw string) ([]filter, *APIError) {
	if raw == "" {
		return nil, nil
	}
	var in []struct {
		Field    string `json:"field"`
		Operator string `json:"operator"`
		Value    any    `json:"value"`
	}
	if err := json.Unmarshal([]byte(raw), &in); err != nil {
		return nil, errParam("param filtering must be an array of {field, operator, value}")
	}
	out := make([]filter, 0, len(in))
	for _, f := range in {
		op := strings.ToUpper(f.Operator)
		switch op {
		case "EQUAL", "NOT_EQUAL", "IN", "NOT_IN", "GREATER_THAN", "GREATER_THAN_OR_EQUAL", "LESS_THAN",
			"LESS_THAN_OR_EQUAL", "IN_RANGE", "NOT_IN_RANGE", "CONTAIN", "NOT_CONTAIN", "STARTS_WITH", "ENDS_WITH":
		default:
			return nil, errParam("filtering operator %q is not supported", f.Operator)
		}
		if f.Field == "" {
			return nil, errParam("filtering field is required")
		}
		out = append(out, filter{field: f.Field, op: op, val: f.Value})
	}
	return out, nil
}

// parseStatusList reads effective_status as a JSON array or a comma-separated list.
func parseStatusList(raw string) []string {
	if raw == "" {
		return nil
	}
	var list []string
	if json.Unmarshal([]byte(raw), &list) == nil {
		return list
	}
	for _, p := range strings.Split(strings.Trim(raw, "[]"), ",") {
		if p = strings.Trim(strings.TrimSpace(p), `"'`); p != "" {
			list = append(list, p)
		}
	}
	return list
}

func asString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case int64:
		return strconv.FormatInt(x, 10)
	case bool:
		return strconv.FormatBool(x)
	}
	return ""
}

func asFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case int64:
		return float64(x), true
	case string:
		f, err := strconv.ParseFloat(x, 64)
		return f, err == nil
	}
	return 0, false
}

// match evaluates the filter against a value (string, float64 or int64).
func (f filter) match(v any) bool {
	switch f.op {
	case "EQUAL", "NOT_EQUAL":
		eq := asString(v) == asString(f.val)
		if a, ok := asFloat(v); ok {
			if b, ok := asFloat(f.val); ok {
				eq = a == b
			}
		}
		return eq == (f.op == "EQUAL")
	case "IN", "NOT_IN":
		list, _ := f.val.([]any)
		in := false
		for _, e := range list {
			if asString(e) == asString(v) {
				in = true
				break
			}
		}
		return in == (f.op == "IN")
	case "CONTAIN", "NOT_CONTAIN":
		c := strings.Contains(strings.ToLower(asString(v)), strings.ToLower(asString(f.val)))
		return c == (f.op == "CONTAIN")
	case "STARTS_WITH":
		return strings.HasPrefix(strings.ToLower(asString(v)), strings.ToLower(asString(f.val)))
	case "ENDS_WITH":
		return strings.HasSuffix(strings.ToLower(asString(v)), strings.ToLower(asString(f.val)))
	case "IN_RANGE", "NOT_IN_RANGE":
		list, _ := f.val.([]any)
		a, ok := asFloat(v)
		if len(list) != 2 || !ok {
			return false
		}
		lo, _ := asFloat(list[0])
		hi, _ := asFloat(list[1])
		return (a >= lo && a <= hi) == (f.op == "IN_RANGE")
	}
	a, ok1 := asFloat(v)
	b, ok2 := asFloat(f.val)
	if !ok1 || !ok2 {
		return false
	}
	switch f.op {
	case "GREATER_THAN":
		return a > b
	case "GREATER_THAN_OR_EQUAL":
		return a >= b
	case "LESS_THAN":
		return a < b
	case "LESS_THAN_OR_EQUAL":
		return a <= b
	}
	return false
}

// fieldSpec is one entry of a `fields` parameter, with optional {sub,fields}.
type fieldSpec struct {
	name string
	mods string // ".date_preset(x)" style modifiers, kept to reject them clearly
	sub  []fieldSpec
}

func parseFields(s string) ([]fieldSpec, *APIError) {
	p := &fieldParser{s: s}
	out, err := p.list(0)
	if err != nil || p.i < len(s) {
		return nil, errParam("Syntax error in fields %q", s)
	}
	return out, nil
}

type fieldParser struct {
	s string
	i int
}

func (p *fieldParser) list(depth int) ([]fieldSpec, error) {
	var out []fieldSpec
	for p.i < len(p.s) {
		if p.s[p.i] == '}' {
			if depth == 0 {
				return nil, strconv.ErrSyntax
			}
			return out, nil
		}
		var f fieldSpec
		start := p.i
		for p.i < len(p.s) && !strings.ContainsRune(",{}.(", rune(p.s[p.i])) {
			p.i++
		}
		f.name = strings.TrimSpace(p.s[start:p.i])
		if p.i < len(p.s) && (p.s[p.i] == '.' || p.s[p.i] == '(') {
			ms := p.i
			paren := 0
			for p.i < len(p.s) && (paren > 0 || !strings.ContainsRune(",{}", rune(p.s[p.i]))) {
				switch p.s[p.i] {
				case '(':
					paren++
				case ')':
					paren--
				}
				p.i++
			}
			f.mods = p.s[ms:p.i]
		}
		if p.i < len(p.s) && p.s[p.i] == '{' {
			p.i++
			sub, err := p.list(depth + 1)
			if err != nil {
				return nil, err
			}
			if p.i >= len(p.s) || p.s[p.i] != '}' {
				return nil, strconv.ErrSyntax
			}
			p.i++
			f.sub = sub
		}
		if f.name != "" {
			out = append(out, f)
		}
		if p.i < len(p.s) && p.s[p.i] == ',' {
			p.i++
		}
	}
	if depth > 0 {
		return nil, strconv.ErrSyntax
	}
	return out, nil
}
