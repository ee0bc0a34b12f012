package graph

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"reflect"
	"strconv"
	"strings"
)

// EndpointTemplate turns a request path into the label-safe template used in
// metrics, logs and errors: "act_123/insights" -> "/act_{id}/insights",
// "v27.0/123456" -> "/{id}". Segments made only of lower-case letters and
// underscores (edge names) are kept; every other segment is an id. The result
// has bounded cardinality and never carries an id or a token.
func EndpointTemplate(path string) string {
	if i := strings.IndexAny(path, "?#"); i >= 0 {
		path = path[:i]
	}
	path = strings.Trim(path, "/")
	if path == "" {
		return "/"
	}
	segs := strings.Split(path, "/")
	if len(segs) > 0 && isVersion(segs[0]) {
		segs = segs[1:]
	}
	var b strings.Builder
	for _, s := range segs {
		if s == "" {
			continue
		}
		b.WriteByte('/')
		switch {
		case strings.HasPrefix(s, "act_"):
			b.WriteString("act_{id}")
		case isEdgeName(s):
			b.WriteString(s)
		default:
			b.WriteString("{id}")
		}
	}
	if b.Len() == 0 {
		return "/"
	}
	return b.String()
}

func isVersion(s string) bool {
	if len(s) < 2 || s[0] != 'v' {
		return false
	}
	for _, c := range s[1:] {
		if (c < '0' || c > '9') && c != '.' {
			return false
		}
	}
	return true
}

func isEdgeName(s string) bool {
	if len(s) > 64 {
		return false
	}
	for _, c := range []byte(s) {
		if (c < 'a' || c > 'z') && c != '_' {
			return false
		}
	}
	return true
}

// accountOf returns the act_ id a path starts with, or "".
func accountOf(path string) string {
	path = strings.TrimLeft(path, "/")
	if i := strings.IndexByte(path, '/'); i >= 0 {
		if isVersion(path[:i]) {
			path = path[i+1:]
		}
	}
	if !strings.HasPrefix(path, "act_") {
		return ""
	}
	end := strings.IndexAny(path, "/?")
	if end < 0 {
		end = len(path)
	}
	return path[:end]
}

// EncodeValue renders one parameter value the way the official SDK does
// (graph-api 2.3): strings as they are, numbers in decimal, bools as
// "true"/"false", and lists, maps and structs as compact JSON with map keys
// sorted and no HTML escaping.
func EncodeValue(v any) (string, error) {
	switch x := v.(type) {
	case nil:
		return "", nil
	case string:
		return x, nil
	case fmt.Stringer:
		return x.String(), nil
	case bool:
		return strconv.FormatBool(x), nil
	case int:
		return strconv.Itoa(x), nil
	case int64:
		return strconv.FormatInt(x, 10), nil
	case int32:
		return strconv.FormatInt(int64(x), 10), nil
	case uint64:
		return strconv.FormatUint(x, 10), nil
	case uint:
		return strconv.FormatUint(uint64(x), 10), nil
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), nil
	case float32:
		return strconv.FormatFloat(float64(x), 'f', -1, 32), nil
	case json.RawMessage:
		var buf bytes.Buffer
		if err := json.Compact(&buf, x); err != nil {
			return "", err
		}
		return buf.String(), nil
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.String:
		return rv.String(), nil
	case reflect.Bool:
		return strconv.FormatBool(rv.Bool()), nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return strconv.FormatInt(rv.Int(), 10), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return strconv.FormatUint(rv.Uint(), 10), nil
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return "", err
	}
	return strings.TrimSuffix(buf.String(), "\n"), nil
}

// Params builds url.Values from Go values with EncodeValue, e.g.
// Params(map[string]any{"fields": "id,name", "effective_status": []string{"ACTIVE"}}).
func Params(m map[string]any) (url.Values, error) {
	v := make(url.Values, len(m))
	for k, x := range m {
		s, err := EncodeValue(x)
		if err != nil {
			return nil, fmt.Errorf("graph: parameter %q: %w", k, err)
		}
		v.Set(k, s)
	}
	return v, nil
}
