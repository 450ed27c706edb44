package config

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// decoder reads a document as the toml package decodes it (nested
// map[string]any), table by table and key by key, recording every problem
// with its line. This file holds what any schema needs; parse.go and its
// siblings hold xvs's schema.
type decoder struct {
	file  string
	lines lineIndex
	errs  Errors
}

// errorf records a problem at path, a key path with array indexes.
func (d *decoder) errorf(path, format string, args ...any) {
	d.errs = append(d.errs, &Error{File: d.file, Line: d.lines.lineOf(path), Msg: fmt.Sprintf(format, args...)})
}

// tomlTable is one TOML table being decoded, with the keys its schema allows.
type tomlTable struct {
	d     *decoder
	path  string // with indexes: service[1].real[0]
	name  string // as written in the file: [[service.real]]
	m     map[string]any
	known []string // in schema order, for messages
}

func (d *decoder) newTable(path, name string, m map[string]any, known ...string) *tomlTable {
	return &tomlTable{d: d, path: path, name: name, m: m, known: known}
}

func (t *tomlTable) keyPath(key string) string { return joinKey(t.path, key) }

// errorf records a problem with key, or with the table itself when key is "".
func (t *tomlTable) errorf(key, format string, args ...any) {
	path := t.path
	if key != "" {
		path = t.keyPath(key)
		format = "%s: " + format
		args = append([]any{displayKey(path)}, args...)
	}
	t.d.errorf(path, format, args...)
}

// displayKey drops the array indexes: users write service.real.port.
func displayKey(path string) string {
	var b strings.Builder
	for i := 0; i < len(path); i++ {
		if path[i] == '[' {
			for i < len(path) && path[i] != ']' {
				i++
			}
			continue
		}
		b.WriteByte(path[i])
	}
	return b.String()
}

func (t *tomlTable) has(key string) bool {
	_, ok := t.m[key]
	return ok
}

func (t *tomlTable) require(key string) {
	if !t.has(key) {
		t.errorf("", "%s is missing %s", t.name, key)
	}
}

// done reports the keys the schema does not know.
func (t *tomlTable) done() {
	var unknown []string
	for k := range t.m {
		if !slices.Contains(t.known, k) {
			unknown = append(unknown, k)
		}
	}
	slices.Sort(unknown)
	for _, k := range unknown {
		t.d.errorf(t.keyPath(k), "unknown key %q in %s (known keys: %s)", k, t.name, strings.Join(t.known, ", "))
	}
}

func typeName(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case int64:
		return "an integer"
	case float64:
		return "a float"
	case bool:
		return "a boolean"
	case []any:
		return "an array"
	case []map[string]any:
		return "an array of tables"
	case map[string]any:
		return "a table"
	}
	return "a date-time"
}

func (t *tomlTable) str(key string) (string, bool) {
	v, ok := t.m[key]
	if !ok {
		return "", false
	}
	s, ok := v.(string)
	if !ok {
		t.errorf(key, "want a string, got %s", typeName(v))
	}
	return s, ok
}

// enum reads a string that must be one of allowed.
func (t *tomlTable) enum(key string, allowed ...string) (string, bool) {
	return enumOf(t, key, allowed, func(s string) string { return s })
}

// enumOf reads a string that names one of values (as name names them),
// and returns that value.
func enumOf[T any](t *tomlTable, key string, values []T, name func(T) string) (T, bool) {
	var zero T
	s, ok := t.str(key)
	if !ok {
		return zero, false
	}
	names := make([]string, len(values))
	for i, v := range values {
		if names[i] = name(v); names[i] == s {
			return v, true
		}
	}
	t.errorf(key, "%q is not one of %s", s, strings.Join(names, ", "))
	return zero, false
}

func checkInt(v any, lo, hi int64) (int64, string) {
	n, ok := v.(int64)
	if !ok {
		return 0, fmt.Sprintf("want an integer, got %s", typeName(v))
	}
	if n < lo || n > hi {
		return 0, fmt.Sprintf("%d is out of range %d..%d", n, lo, hi)
	}
	return n, ""
}

func (t *tomlTable) integer(key string, lo, hi int64) (int64, bool) {
	v, ok := t.m[key]
	if !ok {
		return 0, false
	}
	n, msg := checkInt(v, lo, hi)
	if msg != "" {
		t.errorf(key, "%s", msg)
		return 0, false
	}
	return n, true
}

// array reads an array, calling elem for each element; elem returns a
// problem with it, or "".
func (t *tomlTable) array(key string, elem func(i int, v any) string) bool {
	v, ok := t.m[key]
	if !ok {
		return false
	}
	a, ok := v.([]any)
	if !ok {
		t.errorf(key, "want an array, got %s", typeName(v))
		return false
	}
	good := true
	for i, e := range a {
		if msg := elem(i, e); msg != "" {
			path := indexKey(t.keyPath(key), i)
			t.d.errorf(path, "%s: %s", displayKey(path), msg)
			good = false
		}
	}
	return good
}

// sub reads a table written [key].
func (t *tomlTable) sub(key string, known ...string) (*tomlTable, bool) {
	v, ok := t.m[key]
	if !ok {
		return nil, false
	}
	name := "[" + displayKey(t.keyPath(key)) + "]"
	switch v := v.(type) {
	case map[string]any:
		return t.d.newTable(t.keyPath(key), name, v, known...), true
	case []map[string]any:
		t.errorf(key, "write %s, a single table, not [%s]", name, name)
	default:
		t.errorf(key, "want a table %s, got %s", name, typeName(v))
	}
	return nil, false
}

// list reads an array of tables, written [[key]] or as an array of inline
// tables.
func (t *tomlTable) list(key string, known ...string) ([]*tomlTable, bool) {
	v, ok := t.m[key]
	if !ok {
		return nil, false
	}
	path := t.keyPath(key)
	name := "[[" + displayKey(path) + "]]"
	var out []*tomlTable
	switch v := v.(type) {
	case []map[string]any:
		for i, m := range v {
			out = append(out, t.d.newTable(indexKey(path, i), name, m, known...))
		}
	case []any:
		for i, e := range v {
			m, ok := e.(map[string]any)
			if !ok {
				t.d.errorf(indexKey(path, i), "%s: want a table, got %s", displayKey(path), typeName(e))
				continue
			}
			out = append(out, t.d.newTable(indexKey(path, i), name, m, known...))
		}
	case map[string]any:
		t.errorf(key, "write %s, an array of tables, not [%s]", name, displayKey(path))
		return nil, false
	default:
		t.errorf(key, "want an array of tables %s, got %s", name, typeName(v))
		return nil, false
	}
	return out, true
}

// nonEmpty reads a string that, when given, must not be empty.
func (t *tomlTable) nonEmpty(key string) string {
	str, ok := t.str(key)
	if ok && str == "" {
		t.errorf(key, "empty: leave it out instead")
	}
	return str
}

func (t *tomlTable) boolean(key string) (bool, bool) {
	v, ok := t.m[key]
	if !ok {
		return false, false
	}
	b, ok := v.(bool)
	if !ok {
		t.errorf(key, "want a boolean, got %s", typeName(v))
	}
	return b, ok
}

// span reads a duration as table.duration does, within lo..hi: a Go
// duration string, or an integer number of seconds.
func (t *tomlTable) span(key string, lo, hi time.Duration) (time.Duration, bool) {
	v, ok := t.m[key]
	if !ok {
		return 0, false
	}
	var dur time.Duration
	switch v := v.(type) {
	case int64:
		if v < 0 || v > int64(hi/time.Second) || time.Duration(v)*time.Second < lo {
			t.errorf(key, "%d seconds is out of range %v..%v", v, lo, hi)
			return 0, false
		}
		dur = time.Duration(v) * time.Second
	case string:
		var err error
		if dur, err = time.ParseDuration(v); err != nil {
			t.errorf(key, "%q is not a duration (write \"2s\", \"500ms\" or integer seconds)", v)
			return 0, false
		}
		if dur < lo || dur > hi {
			t.errorf(key, "%v is out of range %v..%v", dur, lo, hi)
			return 0, false
		}
	default:
		t.errorf(key, "want a duration string or integer seconds, got %s", typeName(v))
		return 0, false
	}
	return dur, true
}

// addrPort reads "address:port", the port not 0.
func (t *tomlTable) addrPort(key string) (netip.AddrPort, bool) {
	s, ok := t.str(key)
	if !ok {
		return netip.AddrPort{}, false
	}
	ap, err := netip.ParseAddrPort(s)
	if err != nil || ap.Port() == 0 {
		t.errorf(key, "%q is not an address:port", s)
		return netip.AddrPort{}, false
	}
	return ap, true
}
