package config

import (
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"

	"gopkg.in/yaml.v3"
)

// position is where a YAML node starts in its file.
type position struct{ line, col int }

// decoder walks a yaml.v3 node tree into the raw file structs by reflection.
// Unlike yaml.v3's own decoder it reports every problem (not just the first)
// with its line, column and key path, rejects unknown keys, and records the
// position of every key so later validation errors can point at them too.
type decoder struct {
	file      string
	errs      ErrorList
	positions map[string]position
	// values are the scalar nodes decoded, by path, so that an error
	// about a word inside a string written in one of HAProxy's small
	// languages can point at the word's own line and column
	// (valueOffsets, in src).
	values map[string]*yaml.Node
	src    *source
	// offsets caches valueOffsets by path: a nil entry is a value whose
	// words cannot be placed.
	offsets map[string][]int
}

var (
	durationType    = reflect.TypeOf(Duration(0))
	anyScalarString = reflect.TypeOf(fenceOptionValue(""))
)

func (d *decoder) fail(n *yaml.Node, path, format string, args ...any) {
	d.errs = append(d.errs, &Error{File: d.file, Line: n.Line, Col: n.Column, Path: path, Msg: fmt.Sprintf(format, args...)})
}

func joinPath(parent, key string) string {
	if parent == "" {
		return key
	}
	return parent + "." + key
}

func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if path != "" {
		if _, seen := d.positions[path]; !seen {
			d.positions[path] = position{n.Line, n.Column}
		}
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return // an explicit null leaves the field unset
	}
	switch v.Kind() {
	case reflect.Pointer:
		elem := reflect.New(v.Type().Elem())
		before := len(d.errs)
		d.decode(n, elem.Elem(), path)
		// A value that failed to decode stays unset, so that validation
		// does not report its zero value as a second error ("0s is too
		// small" after "invalid duration"). A section keeps what did
		// decode, so that its other keys are still checked.
		if len(d.errs) == before || elem.Elem().Kind() == reflect.Struct {
			v.Set(elem)
		}
	case reflect.Struct:
		d.decodeStruct(n, v, path)
	case reflect.Map:
		d.decodeMap(n, v, path)
	case reflect.Slice:
		d.decodeSlice(n, v, path)
	default:
		d.decodeScalar(n, v, path)
	}
}

// shorthand is a file type that may be written as a plain value instead of
// a mapping: the value is its shorthandKey's (a bind's address).
type shorthand interface {
	shorthandKey() string
}

// takesShorthand reports whether values of t (a struct or a pointer to
// one) may be written as a plain value.
func takesShorthand(t reflect.Type) bool {
	if t.Kind() != reflect.Pointer {
		t = reflect.PointerTo(t)
	}
	return t.Implements(reflect.TypeFor[shorthand]())
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind == yaml.ScalarNode && takesShorthand(v.Type()) {
		key := v.Addr().Interface().(shorthand).shorthandKey()
		d.decode(n, v.Field(yamlFields(v.Type())[key]), path)
		return
	}
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, "expected a mapping, found %s", describe(n))
		return
	}
	fields := yamlFields(v.Type())
	seen := make(map[string]bool, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		key := k.Value
		kp := joinPath(path, key)
		if seen[key] {
			d.fail(k, kp, "duplicate key %q", key)
			continue
		}
		seen[key] = true
		idx, ok := fields[key]
		if !ok {
			d.fail(k, kp, "unknown key %q%s", key, suggest(key, fields))
			continue
		}
		d.positions[kp] = position{k.Line, k.Column}
		d.decode(val, v.Field(idx), kp)
	}
}

func (d *decoder) decodeMap(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, "expected a mapping of name to section, found %s", describe(n))
		return
	}
	if v.IsNil() {
		v.Set(reflect.MakeMap(v.Type()))
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		kp := joinPath(path, k.Value)
		if v.MapIndex(reflect.ValueOf(k.Value)).IsValid() {
			d.fail(k, kp, "duplicate name %q", k.Value)
			continue
		}
		d.positions[kp] = position{k.Line, k.Column}
		elem := reflect.New(v.Type().Elem()).Elem()
		d.decode(val, elem, kp)
		v.SetMapIndex(reflect.ValueOf(k.Value), elem)
	}
}

func (d *decoder) decodeSlice(n *yaml.Node, v reflect.Value, path string) {
	one := n.Kind == yaml.ScalarNode && (v.Type().Elem().Kind() == reflect.String || takesShorthand(v.Type().Elem()))
	one = one || (n.Kind == yaml.MappingNode && takesShorthand(v.Type().Elem()))
	if one {
		// bind: "127.0.0.1:80" (or one bind's mapping) is accepted as a
		// one-element list.
		n = &yaml.Node{Kind: yaml.SequenceNode, Line: n.Line, Column: n.Column, Content: []*yaml.Node{n}}
	}
	if n.Kind != yaml.SequenceNode {
		d.fail(n, path, "expected a list, found %s", describe(n))
		return
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, item := range n.Content {
		d.decode(item, s.Index(i), fmt.Sprintf("%s[%d]", path, i))
	}
	v.Set(s)
}

func (d *decoder) decodeScalar(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.ScalarNode {
		d.fail(n, path, "expected a single value, found %s", describe(n))
		return
	}
	if d.values != nil {
		d.values[path] = n
	}
	if v.Type() == durationType {
		dur, err := ParseDuration(n.Value)
		if err != nil {
			d.fail(n, path, "%v", err)
			return
		}
		v.SetInt(int64(dur))
		return
	}
	switch v.Kind() {
	case reflect.String:
		if v.Type() == anyScalarString {
			v.SetString(n.Value) // a number or a boolean, as written
			return
		}
		if n.Tag != "!!str" && n.Tag != "!!int" && n.Tag != "!!float" {
			d.fail(n, path, "expected a string, found %s", describe(n))
			return
		}
		if e, ok := v.Interface().(enum); ok {
			if msg := enumError(e, n.Value); msg != "" {
				d.fail(n, path, "%s", msg)
				return
			}
		}
		v.SetString(n.Value)
	case reflect.Bool:
		if n.Tag != "!!bool" {
			d.fail(n, path, "expected true or false, found %q", n.Value)
			return
		}
		v.SetBool(n.Value == "true" || n.Value == "True" || n.Value == "TRUE")
	case reflect.Int:
		i, err := strconv.ParseInt(n.Value, 10, 64)
		if n.Tag != "!!int" || err != nil || i > math.MaxInt32 || i < math.MinInt32 {
			d.fail(n, path, "expected a whole number, found %q", n.Value)
			return
		}
		v.SetInt(i)
	default:
		panic(fmt.Sprintf("config: field kind %s has no decoder", v.Kind()))
	}
}

// yamlFields maps the yaml tag of each field of t to its index. The map is
// built once per type and shared: callers only read it. Built per call it
// was 61% of parsing a file of 1,000 backends (the validation asks it for
// every key of every section), 150 ms of the reload.
func yamlFields(t reflect.Type) map[string]int {
	if m, ok := yamlFieldsByType.Load(t); ok {
		return m.(map[string]int)
	}
	m, _ := yamlFieldsByType.LoadOrStore(t, buildYAMLFields(t))
	return m.(map[string]int)
}

var yamlFieldsByType sync.Map // reflect.Type -> map[string]int

func buildYAMLFields(t reflect.Type) map[string]int {
	m := make(map[string]int, t.NumField())
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if name != "" && name != "-" {
			m[name] = i
		}
	}
	return m
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	default:
		return fmt.Sprintf("%q", n.Value)
	}
}

// suggest names the closest known key when the unknown one looks like a typo
// or uses an underscore where HAProxy uses a dash (or the reverse).
func suggest(key string, fields map[string]int) string {
	best, bestDist := "", 3
	norm := func(s string) string { return strings.ReplaceAll(s, "_", "-") }
	for name := range fields {
		if norm(name) == norm(key) {
			return fmt.Sprintf(" (did you mean %q?)", name)
		}
		if dist := editDistance(key, name); dist < bestDist || (dist == bestDist && name < best) {
			best, bestDist = name, dist
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// Duration is a time span written as HAProxy writes it: a number followed by
// us, ms, s, m, h or d, or a bare number meaning milliseconds.
type Duration time.Duration

var durationUnits = []struct {
	suffix string
	unit   time.Duration
}{
	{"us", time.Microsecond}, {"ms", time.Millisecond}, {"s", time.Second},
	{"m", time.Minute}, {"h", time.Hour}, {"d", 24 * time.Hour},
}

// ParseDuration parses an HAProxy time value such as "500ms", "10s", "90m" or
// "2000" (milliseconds).
func ParseDuration(s string) (time.Duration, error) {
	if s == "" {
		return 0, fmt.Errorf("empty duration")
	}
	num, unit := s, time.Millisecond
	for _, u := range durationUnits {
		if strings.HasSuffix(s, u.suffix) {
			// "ms" also ends in "s": the longest matching suffix wins below.
			if len(u.suffix) == 1 && (strings.HasSuffix(s, "ms") || strings.HasSuffix(s, "us")) {
				continue
			}
			num, unit = strings.TrimSuffix(s, u.suffix), u.unit
			break
		}
	}
	n, err := strconv.ParseUint(num, 10, 63)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q: want a whole number with an optional unit us, ms, s, m, h or d (a bare number is milliseconds)", s)
	}
	if n > uint64(math.MaxInt64/int64(unit)) {
		return 0, fmt.Errorf("duration %q is too large", s)
	}
	return time.Duration(n) * unit, nil
}
