package insights

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
)

// A page of the Graph API is {"data": [row, ...], "paging": {...}}, each row an object
// of string-encoded numbers and arrays of {action_type, value}. Pages arrive by the
// thousand at agency scale, so they are scanned in place here rather than unmarshalled:
// keys and values are sub-slices of the body, numbers are parsed from bytes, and
// nothing is allocated per row.

var errSyntax = errors.New("malformed JSON")

var literals = [][]byte{[]byte("true"), []byte("false"), []byte("null")}

// kind of a scanned value.
const (
	kString byte = 's'
	kNumber byte = 'n'
	kObject byte = 'o'
	kArray  byte = 'a'
	kBool   byte = 'b'
	kNull   byte = 'z'
)

type scanner struct {
	b []byte
	i int
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\n', '\t', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *scanner) expect(c byte) error {
	s.ws()
	if s.i >= len(s.b) || s.b[s.i] != c {
		return s.errorf("expected %q", c)
	}
	s.i++
	return nil
}

func (s *scanner) errorf(format string, args ...any) error {
	return fmt.Errorf("%w at byte %d: %s", errSyntax, s.i, fmt.Sprintf(format, args...))
}

// str reads a string at the cursor and returns its content between the quotes;
// escaped reports whether it holds escapes (then decode it with unescape).
func (s *scanner) str() (v []byte, escaped bool, err error) {
	if err := s.expect('"'); err != nil {
		return nil, false, err
	}
	start := s.i
	// Keys and numbers are short: a plain loop beats two vectorised searches there.
	for i := s.i; i < len(s.b); i++ {
		switch s.b[i] {
		case '"':
			s.i = i + 1
			return s.b[start:i], false, nil
		case '\\':
			return s.escapedStr(start)
		}
	}
	return nil, false, s.errorf("unterminated string")
}

// escapedStr finishes a string that holds escapes, from its first byte at start.
func (s *scanner) escapedStr(start int) ([]byte, bool, error) {
	for i := start; i < len(s.b); i++ {
		switch s.b[i] {
		case '\\':
			i++
		case '"':
			s.i = i + 1
			return s.b[start:i], true, nil
		}
	}
	return nil, false, s.errorf("unterminated string")
}

// skip moves past the value at the cursor.
func (s *scanner) skip() error {
	_, _, _, err := s.value()
	return err
}

// fields calls fn for each key of the object at the cursor; fn must consume the
// value (with value, skip, str, array or fields), which lets a caller parse nested
// values in place instead of scanning them twice.
func (s *scanner) fields(fn func(key []byte) error) error {
	if err := s.expect('{'); err != nil {
		return err
	}
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == '}' {
		s.i++
		return nil
	}
	for {
		key, _, err := s.str()
		if err != nil {
			return err
		}
		if err := s.expect(':'); err != nil {
			return err
		}
		s.ws()
		if err := fn(key); err != nil {
			return err
		}
		s.ws()
		if s.i >= len(s.b) {
			return s.errorf("unterminated object")
		}
		switch s.b[s.i] {
		case ',':
			s.i++
		case '}':
			s.i++
			return nil
		default:
			return s.errorf("expected , or }")
		}
	}
}

// value reads any value at the cursor: a string's content, or the raw bytes of a
// number, object, array or literal.
func (s *scanner) value() (kind byte, v []byte, escaped bool, err error) {
	s.ws()
	if s.i >= len(s.b) {
		return 0, nil, false, s.errorf("unexpected end")
	}
	start := s.i
	switch c := s.b[s.i]; {
	case c == '"':
		v, escaped, err = s.str()
		return kString, v, escaped, err
	case c == '{' || c == '[':
		if err := s.skipNested(); err != nil {
			return 0, nil, false, err
		}
		k := kObject
		if c == '[' {
			k = kArray
		}
		return k, s.b[start:s.i], false, nil
	case c == '-' || (c >= '0' && c <= '9'):
		for s.i < len(s.b) {
			switch s.b[s.i] {
			case ',', '}', ']', ' ', '\n', '\t', '\r':
				return kNumber, s.b[start:s.i], false, nil
			}
			s.i++
		}
		return kNumber, s.b[start:s.i], false, nil
	}
	for _, lit := range literals {
		if bytes.HasPrefix(s.b[s.i:], lit) {
			s.i += len(lit)
			if lit[0] == 'n' {
				return kNull, s.b[start:s.i], false, nil
			}
			return kBool, s.b[start:s.i], false, nil
		}
	}
	return 0, nil, false, s.errorf("unexpected %q", s.b[s.i])
}

// skipNested moves past the object or array at the cursor, minding strings.
func (s *scanner) skipNested() error {
	depth := 0
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case '"':
			if _, _, err := s.str(); err != nil {
				return err
			}
			continue
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				s.i++
				return nil
			}
		}
		s.i++
	}
	return s.errorf("unterminated object or array")
}

// object calls fn for each key and value of the object at the cursor.
func (s *scanner) object(fn func(key []byte, kind byte, v []byte, escaped bool) error) error {
	return s.fields(func(key []byte) error {
		kind, v, esc, err := s.value()
		if err != nil {
			return err
		}
		return fn(key, kind, v, esc)
	})
}

// array calls fn with a scanner positioned at each element of the array at the
// cursor; fn must consume the element.
func (s *scanner) array(fn func(s *scanner) error) error {
	if err := s.expect('['); err != nil {
		return err
	}
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == ']' {
		s.i++
		return nil
	}
	for {
		if err := fn(s); err != nil {
			return err
		}
		s.ws()
		if s.i >= len(s.b) {
			return s.errorf("unterminated array")
		}
		switch s.b[s.i] {
		case ',':
			s.i++
		case ']':
			s.i++
			return nil
		default:
			return s.errorf("expected , or ]")
		}
	}
}

// eachDataRow calls fn with a scanner at each element of the body's "data" array.
// A body without "data" is an error: it is not a page.
func eachDataRow(body []byte, fn func(s *scanner) error) error {
	s := &scanner{b: body}
	found := false
	err := s.fields(func(key []byte) error {
		if string(key) != "data" {
			return s.skip()
		}
		found = true
		if s.i >= len(s.b) || s.b[s.i] != '[' {
			return fmt.Errorf("%w: data is not a list", errSyntax)
		}
		// Parse the rows in place: skipping the list first would scan it twice.
		return s.array(fn)
	})
	if err != nil {
		return err
	}
	if !found {
		return fmt.Errorf("%w: the page has no data list", errSyntax)
	}
	return nil
}

// unescape decodes a string's content that holds escapes.
func unescape(v []byte) (string, error) {
	var out string
	q := make([]byte, 0, len(v)+2)
	q = append(append(append(q, '"'), v...), '"')
	if err := json.Unmarshal(q, &out); err != nil {
		return "", fmt.Errorf("%w: bad string escape", errSyntax)
	}
	return out, nil
}

var pow10 = [...]float64{1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22}

// parseNumber parses a decimal such as "5339.5", "-0.25" or "361324" without
// allocating. Mantissas under 2^53 with at most 22 decimals are exact in one division
// (the classic fast path); anything else goes to strconv.
func parseNumber(b []byte) (float64, error) {
	i, neg := 0, false
	if len(b) > 0 && b[0] == '-' {
		neg, i = true, 1
	}
	var mant uint64
	digits, frac, dot := 0, 0, false
	for ; i < len(b); i++ {
		c := b[i]
		switch {
		case c >= '0' && c <= '9':
			if digits < 19 {
				mant = mant*10 + uint64(c-'0')
				digits++
				if dot {
					frac++
				}
			} else {
				return slowNumber(b)
			}
		case c == '.' && !dot:
			dot = true
		default:
			return slowNumber(b)
		}
	}
	if digits == 0 || mant >= 1<<53 || frac >= len(pow10) {
		return slowNumber(b)
	}
	v := float64(mant) / pow10[frac]
	if neg {
		v = -v
	}
	return v, nil
}

func slowNumber(b []byte) (float64, error) {
	v, err := strconv.ParseFloat(string(b), 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("%w: %q is not a number", errSyntax, b)
	}
	return v, nil
}
