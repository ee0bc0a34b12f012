package graph

import (
	"bytes"
	"encoding/json"
	"errors"
)

// topLevel is what scanTop learns about a response body without decoding it.
type topLevel struct {
	// next is the raw (still JSON-escaped) value of paging.next; nil when absent.
	next []byte
	// errVal is the raw value of a top-level "error" key; nil when absent.
	errVal []byte
}

var errTruncated = errors.New("unexpected end of JSON")

// scanTop walks the top level of a JSON body to find "paging": {"next": …}
// and a top-level "error", skipping every other value (above all the large
// "data" array) without decoding it: the caller decodes "data" itself with a
// faster decoder, and the insights path must sustain hundreds of MB/s.
// It is a structural scan, not a validator: it checks nesting and string
// termination, which is enough to notice a truncated or non-JSON body.
func scanTop(b []byte) (topLevel, error) {
	var t topLevel
	i := skipWS(b, 0)
	if i >= len(b) {
		return t, errors.New("empty body")
	}
	switch b[i] {
	case '[':
		j, err := skipNested(b, i)
		if err != nil {
			return t, err
		}
		return t, trailing(b, j)
	case '{':
	default:
		return t, errors.New("body is not a JSON object")
	}
	i++
	for {
		i = skipWS(b, i)
		if i >= len(b) {
			return t, errTruncated
		}
		if b[i] == '}' {
			return t, trailing(b, i+1)
		}
		if b[i] == ',' {
			i = skipWS(b, i+1)
			if i >= len(b) {
				return t, errTruncated
			}
		}
		if b[i] != '"' {
			return t, errors.New("malformed JSON object")
		}
		ks := i + 1
		ke, err := skipString(b, i)
		if err != nil {
			return t, err
		}
		key := b[ks : ke-1]
		i = skipWS(b, ke)
		if i >= len(b) || b[i] != ':' {
			return t, errors.New("malformed JSON object")
		}
		i = skipWS(b, i+1)
		if i >= len(b) {
			return t, errTruncated
		}
		vs := i
		if string(key) == "paging" {
			t.next = nil // the last "paging" wins, as in encoding/json
		}
		switch {
		case string(key) == "paging" && b[i] == '{':
			i, err = scanPaging(b, i, &t)
		default:
			i, err = skipValue(b, i)
			if err == nil && string(key) == "error" {
				t.errVal = b[vs:i]
			}
		}
		if err != nil {
			return t, err
		}
	}
}

// scanPaging walks the paging object starting at b[i] == '{' and records next.
func scanPaging(b []byte, i int, t *topLevel) (int, error) {
	i++
	for {
		i = skipWS(b, i)
		if i >= len(b) {
			return i, errTruncated
		}
		if b[i] == '}' {
			return i + 1, nil
		}
		if b[i] == ',' {
			i = skipWS(b, i+1)
			if i >= len(b) {
				return i, errTruncated
			}
		}
		if b[i] != '"' {
			return i, errors.New("malformed paging object")
		}
		ks := i + 1
		ke, err := skipString(b, i)
		if err != nil {
			return i, err
		}
		key := b[ks : ke-1]
		i = skipWS(b, ke)
		if i >= len(b) || b[i] != ':' {
			return i, errors.New("malformed paging object")
		}
		i = skipWS(b, i+1)
		if i >= len(b) {
			return i, errTruncated
		}
		vs := i
		if i, err = skipValue(b, i); err != nil {
			return i, err
		}
		if string(key) == "next" {
			t.next = nil
			if b[vs] == '"' {
				t.next = b[vs:i]
			}
		}
	}
}

func trailing(b []byte, i int) error {
	if skipWS(b, i) != len(b) {
		return errors.New("data after the top-level JSON value")
	}
	return nil
}

func skipWS(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// skipValue returns the index just past the JSON value starting at b[i].
func skipValue(b []byte, i int) (int, error) {
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		return skipNested(b, i)
	}
	// number, true, false, null
	j := i
	for j < len(b) {
		switch b[j] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			if j == i {
				return j, errors.New("malformed JSON value")
			}
			return j, nil
		}
		j++
	}
	return j, errTruncated
}

// skipString returns the index just past the string starting at b[i] == '"'.
// bytes.IndexByte is vectorised, which is what makes long strings cheap.
func skipString(b []byte, i int) (int, error) {
	j := i + 1
	for {
		k := bytes.IndexByte(b[j:], '"')
		if k < 0 {
			return len(b), errTruncated
		}
		q := j + k
		// An odd number of backslashes before the quote escapes it.
		n := 0
		for p := q - 1; p > i && b[p] == '\\'; p-- {
			n++
		}
		if n&1 == 0 {
			return q + 1, nil
		}
		j = q + 1
	}
}

// structural marks the bytes skipNested must look at.
var structural = [256]bool{'"': true, '{': true, '[': true, '}': true, ']': true}

// skipNested returns the index just past the object or array at b[i].
func skipNested(b []byte, i int) (int, error) {
	depth := 0
	n := len(b)
	for i < n {
		c := b[i]
		if !structural[c] {
			i++
			continue
		}
		switch c {
		case '"':
			j, err := skipString(b, i)
			if err != nil {
				return j, err
			}
			i = j
			continue
		case '{', '[':
			depth++
		default: // '}' or ']'
			depth--
			if depth == 0 {
				return i + 1, nil
			}
		}
		i++
	}
	return n, errTruncated
}

// NextPage returns paging.next of a page body ("" when absent), scanning only
// the top level of the body. Exposed for callers that fetch pages themselves.
func NextPage(body []byte) (string, error) {
	t, err := scanTop(body)
	if err != nil {
		return "", err
	}
	return unquote(t.next)
}

// unquote decodes a raw JSON string value; Graph escapes "/" as "\/".
func unquote(raw []byte) (string, error) {
	if len(raw) < 2 {
		return "", nil
	}
	in := raw[1 : len(raw)-1]
	if bytes.IndexByte(in, '\\') < 0 {
		return string(in), nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", err
	}
	return s, nil
}
