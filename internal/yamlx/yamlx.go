// Package yamlx decodes YAML strictly, with a file:line:col position for every
// problem, and reports all the problems of a document rather than the first.
//
// It decodes from yaml.Node trees instead of through yaml.v3's Decoder because the
// Decoder's strict mode stops at the first unknown key and reports only its line;
// marketers fixing a rule file deserve every mistake at once, with its column and a
// suggestion for a typo.
package yamlx

import (
	"fmt"
	"math"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/rulesd/rulesd/internal/diag"
)

// NodeDecoder is implemented by types that decode themselves from a node, such as
// values written either as a scalar or as a mapping.
type NodeDecoder interface {
	DecodeYAML(d *Decoder, n *yaml.Node, key string)
}

// Decoder decodes the nodes of one file, collecting problems in Diags.
type Decoder struct {
	File  string
	Diags *diag.List
	// Src is the file's text; with it, positions inside scalar values (a column
	// inside an expression) map back to the file.
	Src []byte
}

// Pos returns the position of n in the decoder's file.
func (d *Decoder) Pos(n *yaml.Node) diag.Pos {
	if n == nil {
		return diag.Pos{File: d.File}
	}
	return diag.Pos{File: d.File, Line: n.Line, Col: n.Column}
}

// Errorf records an error at n.
func (d *Decoder) Errorf(n *yaml.Node, format string, args ...any) {
	d.Diags.Errorf(d.Pos(n), format, args...)
}

var syntaxLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// Parse parses src into its document node; a syntax error is recorded with its line
// and nil returned. An empty document yields an empty mapping.
func Parse(file string, src []byte, diags *diag.List) *yaml.Node {
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		msg := err.Error()
		pos := diag.Pos{File: file, Line: 1, Col: 1}
		if m := syntaxLine.FindStringSubmatch(msg); m != nil {
			pos.Line, _ = strconv.Atoi(m[1])
			msg = m[2]
			// yaml.v3 gives no column: point at the line's first character.
			if lines := strings.Split(string(src), "\n"); pos.Line <= len(lines) {
				line := lines[pos.Line-1]
				pos.Col = len(line) - len(strings.TrimLeft(line, " \t")) + 1
			}
		} else {
			msg = strings.TrimPrefix(msg, "yaml: ")
		}
		diags.Errorf(pos, "YAML syntax error: %s", msg)
		return nil
	}
	if len(doc.Content) == 0 {
		return &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: 1, Column: 1}
	}
	return doc.Content[0]
}

// Decode decodes n into the value out points to. Struct fields are matched by their
// `yaml:"name"` tag; `yaml:"name,required"` marks a required key; a field of type
// diag.Pos tagged `yaml:"-"` receives the mapping's position, and its `kind:"rule"`
// tag names the mapping in messages; a *yaml.Node field tagged `yaml:"-"` receives the
// mapping's node.
func (d *Decoder) Decode(n *yaml.Node, out any) {
	d.decode(n, reflect.ValueOf(out).Elem(), "")
}

// DecodeField decodes n into out, naming the key in messages.
func (d *Decoder) DecodeField(n *yaml.Node, out any, key string) {
	d.decode(n, reflect.ValueOf(out).Elem(), key)
}

var (
	nodeDecoderType = reflect.TypeFor[NodeDecoder]()
	posType         = reflect.TypeFor[diag.Pos]()
	nodeType        = reflect.TypeFor[yaml.Node]()
	nodePtrType     = reflect.TypeFor[*yaml.Node]()
)

func (d *Decoder) decode(n *yaml.Node, v reflect.Value, key string) {
	for n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if v.CanAddr() && v.Addr().Type().Implements(nodeDecoderType) {
		v.Addr().Interface().(NodeDecoder).DecodeYAML(d, n, key)
		return
	}
	if v.Type() == nodeType {
		v.Set(reflect.ValueOf(*n))
		return
	}
	if isNull(n) {
		return // an empty value leaves the default; required keys are checked by the caller
	}
	switch v.Kind() {
	case reflect.Pointer:
		// Set the pointer only when its value decoded cleanly, so later checks never
		// see a half-decoded value as written.
		before := len(*d.Diags)
		p := reflect.New(v.Type().Elem())
		d.decode(n, p.Elem(), key)
		if len(*d.Diags) == before {
			v.Set(p)
		}
	case reflect.Struct:
		d.decodeStruct(n, v, key)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.Errorf(n, "%s must be a list%s", describe(key), got(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, item := range n.Content {
			d.decode(item, s.Index(i), fmt.Sprintf("item %d of %s", i+1, quoted(key)))
		}
		v.Set(s)
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			d.Errorf(n, "%s must be a mapping of names to values%s", describe(key), got(n))
			return
		}
		m := reflect.MakeMapWithSize(v.Type(), len(n.Content)/2)
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			if seen[k.Value] {
				d.Errorf(k, "duplicate key %q", k.Value)
				continue
			}
			seen[k.Value] = true
			elem := reflect.New(v.Type().Elem()).Elem()
			d.decode(val, elem, k.Value)
			m.SetMapIndex(reflect.ValueOf(k.Value).Convert(v.Type().Key()), elem)
		}
		v.Set(m)
	case reflect.Interface:
		var x any
		if err := n.Decode(&x); err != nil {
			d.Errorf(n, "%s: %v", describe(key), err)
			return
		}
		if x != nil {
			v.Set(reflect.ValueOf(x))
		}
	default:
		d.decodeScalar(n, v, key)
	}
}

func (d *Decoder) decodeScalar(n *yaml.Node, v reflect.Value, key string) {
	if n.Kind != yaml.ScalarNode {
		d.Errorf(n, "%s must be a single value, not a %s", describe(key), kindName(n))
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(n.Value)
	case reflect.Bool:
		b, ok := ParseBool(n)
		if !ok {
			d.Errorf(n, "%s must be true or false, not %q", describe(key), n.Value)
			return
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int64, reflect.Int32:
		i, err := strconv.ParseInt(strings.ReplaceAll(n.Value, "_", ""), 0, 64)
		if err != nil || n.Tag != "!!int" {
			d.Errorf(n, "%s must be a whole number, not %q", describe(key), n.Value)
			return
		}
		v.SetInt(i)
	case reflect.Float64:
		f, ok := ParseNumber(n)
		if !ok {
			d.Errorf(n, "%s must be a number, not %q", describe(key), n.Value)
			return
		}
		v.SetFloat(f)
	default:
		d.Errorf(n, "%s: unsupported type %s", describe(key), v.Type())
	}
}

// ParseBool reads a YAML boolean scalar.
func ParseBool(n *yaml.Node) (bool, bool) {
	if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" {
		return false, false
	}
	b, err := strconv.ParseBool(strings.ToLower(n.Value))
	return b, err == nil
}

// ParseNumber reads a YAML int or float scalar as float64.
func ParseNumber(n *yaml.Node) (float64, bool) {
	if n.Kind != yaml.ScalarNode || (n.Tag != "!!int" && n.Tag != "!!float") {
		return 0, false
	}
	f, err := strconv.ParseFloat(strings.ReplaceAll(n.Value, "_", ""), 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, false
	}
	return f, true
}

type field struct {
	name     string
	index    int
	required bool
}

func (d *Decoder) decodeStruct(n *yaml.Node, v reflect.Value, key string) {
	t := v.Type()
	kind, posIndex := key, -1
	var fields []field
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Type == nodePtrType && f.Tag.Get("yaml") == "-" {
			v.Field(i).Set(reflect.ValueOf(n))
			continue
		}
		if f.Type == posType && f.Tag.Get("yaml") == "-" {
			posIndex = i
			if k := f.Tag.Get("kind"); k != "" {
				kind = k
			}
			continue
		}
		tag := f.Tag.Get("yaml")
		if tag == "-" || !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		fields = append(fields, field{name: name, index: i, required: opts == "required"})
	}
	if posIndex >= 0 {
		v.Field(posIndex).Set(reflect.ValueOf(d.Pos(n)))
	}
	if n.Kind != yaml.MappingNode {
		d.Errorf(n, "%s must be a mapping of keys to values%s", describe(kind), got(n))
		return
	}
	names := make([]string, len(fields))
	for i, f := range fields {
		names[i] = f.name
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if seen[k.Value] {
			d.Errorf(k, "duplicate key %q", k.Value)
			continue
		}
		seen[k.Value] = true
		fi := -1
		for j, f := range fields {
			if f.name == k.Value {
				fi = j
				break
			}
		}
		if fi < 0 {
			where := ""
			if kind != "" {
				where = " in " + kind
			}
			d.Errorf(k, "unknown key %q%s%s", k.Value, where, diag.DidYouMean(k.Value, names))
			continue
		}
		if fields[fi].required && isNull(val) {
			d.Errorf(val, "%q must not be empty", k.Value)
			continue
		}
		d.decode(val, v.Field(fields[fi].index), k.Value)
	}
	what := "mapping"
	if kind != "" {
		what = kind
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == "name" && n.Content[i+1].Kind == yaml.ScalarNode {
			what += " " + strconv.Quote(n.Content[i+1].Value)
		}
	}
	for _, f := range fields {
		if f.required && !seen[f.name] {
			d.Errorf(n, "%s is missing the required key %q", what, f.name)
		}
	}
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

// Describe names a key in a message: the quoted key, or "the value" without one.
func Describe(key string) string { return describe(key) }

func describe(key string) string {
	if key == "" {
		return "the value"
	}
	if strings.HasPrefix(key, "item ") {
		return key
	}
	return strconv.Quote(key)
}

func quoted(key string) string {
	if strings.HasPrefix(key, "item ") || key == "" {
		return "the list"
	}
	return strconv.Quote(key)
}

func got(n *yaml.Node) string {
	if n.Kind == yaml.ScalarNode {
		return fmt.Sprintf(", not %q", n.Value)
	}
	return ", not a " + kindName(n)
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "list"
	case yaml.MappingNode:
		return "mapping"
	}
	return "value"
}
