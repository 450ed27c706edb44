package config

import (
	"bytes"
	"strconv"
	"strings"
)

// lineIndex maps the path of every table, key and array element of a TOML
// document to the line it starts on. Paths are dotted keys with array
// indexes, as the decoder builds them: "service[1].real[0].weight".
//
// The toml package checks the syntax but keeps no position per array
// element (its key positions are private and collapse [[service]] entries
// into one), so lineIndex rescans the source. It runs only on documents the
// toml package has accepted, and on anything it does not understand it
// stops, leaving later lines unknown rather than wrong.
type lineIndex map[string]int

// lineOf returns the line of path, or of its nearest ancestor with a known
// line (a missing key is reported at its table), or 0.
func (li lineIndex) lineOf(path string) int {
	for {
		if l, ok := li[path]; ok {
			return l
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			return 0
		}
		path = path[:i]
	}
}

// maxDepth bounds the nesting of arrays and inline tables the scanner
// follows, so that a hostile file cannot make it recurse without end.
const maxDepth = 64

type scanStop struct{}

type lineScanner struct {
	src    []byte
	pos    int
	line   int
	depth  int
	lines  lineIndex
	arrays map[string]int // resolved path of each array of tables -> its length so far
}

func indexLines(src []byte) (li lineIndex) {
	s := &lineScanner{
		src:    bytes.TrimPrefix(src, []byte("\xef\xbb\xbf")),
		line:   1,
		lines:  make(lineIndex),
		arrays: make(map[string]int),
	}
	li = s.lines // what was found before a stop
	defer func() {
		if r := recover(); r != nil {
			if _, ok := r.(scanStop); !ok {
				panic(r)
			}
		}
	}()
	s.document()
	return li
}

func (s *lineScanner) stop() { panic(scanStop{}) }

func (s *lineScanner) peek() byte {
	if s.pos < len(s.src) {
		return s.src[s.pos]
	}
	return 0
}

func (s *lineScanner) at(prefix string) bool {
	return bytes.HasPrefix(s.src[s.pos:], []byte(prefix))
}

func (s *lineScanner) advance(n int) {
	for ; n > 0 && s.pos < len(s.src); n-- {
		if s.src[s.pos] == '\n' {
			s.line++
		}
		s.pos++
	}
}

func (s *lineScanner) expect(c byte) {
	if s.peek() != c {
		s.stop()
	}
	s.advance(1)
}

func (s *lineScanner) record(path string) {
	if _, ok := s.lines[path]; !ok {
		s.lines[path] = s.line
	}
}

// skipSpace skips blanks within a line.
func (s *lineScanner) skipSpace() {
	for c := s.peek(); c == ' ' || c == '\t' || c == '\r'; c = s.peek() {
		s.advance(1)
	}
}

// skipSpaceNL skips blanks, newlines and comments.
func (s *lineScanner) skipSpaceNL() {
	for {
		switch s.peek() {
		case ' ', '\t', '\r', '\n':
			s.advance(1)
		case '#':
			for s.pos < len(s.src) && s.peek() != '\n' {
				s.advance(1)
			}
		default:
			return
		}
	}
}

func (s *lineScanner) document() {
	var table string // resolved path of the current table
	for {
		s.skipSpaceNL()
		if s.pos >= len(s.src) {
			return
		}
		switch {
		case s.at("[["):
			s.advance(2)
			table = s.resolve(s.key(), true)
			s.skipSpace()
			s.expect(']')
			s.expect(']')
			s.record(table)
			// The array itself is where its first element starts.
			s.record(table[:strings.LastIndexByte(table, '[')])
		case s.peek() == '[':
			s.advance(1)
			table = s.resolve(s.key(), false)
			s.skipSpace()
			s.expect(']')
			s.record(table)
		default:
			s.keyValue(table)
		}
	}
}

// resolve turns a header's key into a path: an array of tables named on
// the way stands for its last element, and a [[header]] adds an element.
func (s *lineScanner) resolve(parts []string, array bool) string {
	var p string
	for i, part := range parts {
		p = joinKey(p, part)
		if n, ok := s.arrays[p]; ok && !(array && i == len(parts)-1) {
			p = indexKey(p, n-1)
		}
	}
	if array {
		n := s.arrays[p]
		s.arrays[p] = n + 1
		p = indexKey(p, n)
	}
	return p
}

func (s *lineScanner) keyValue(table string) {
	line := s.line
	path := table
	for _, part := range s.key() {
		path = joinKey(path, part)
	}
	if _, ok := s.lines[path]; !ok {
		s.lines[path] = line
	}
	s.expect('=')
	s.skipSpace()
	s.value(path)
}

// key reads a possibly dotted key and the blanks around it.
func (s *lineScanner) key() []string {
	var parts []string
	for {
		s.skipSpace()
		parts = append(parts, s.keyPart())
		s.skipSpace()
		if s.peek() != '.' {
			return parts
		}
		s.advance(1)
	}
}

func (s *lineScanner) keyPart() string {
	switch s.peek() {
	case '"':
		start := s.pos
		s.basicString()
		raw := string(s.src[start:s.pos])
		if k, err := strconv.Unquote(raw); err == nil {
			return k
		}
		return raw[1 : len(raw)-1]
	case '\'':
		start := s.pos
		s.literalString()
		return string(s.src[start+1 : s.pos-1])
	}
	start := s.pos
	for c := s.peek(); c == '_' || c == '-' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'; c = s.peek() {
		s.advance(1)
	}
	if s.pos == start {
		s.stop()
	}
	return string(s.src[start:s.pos])
}

func (s *lineScanner) value(path string) {
	s.depth++
	if s.depth > maxDepth {
		s.stop()
	}
	defer func() { s.depth-- }()
	switch {
	case s.at(`"""`):
		s.multiline(`"""`, true)
	case s.at(`'''`):
		s.multiline(`'''`, false)
	case s.peek() == '"':
		s.basicString()
	case s.peek() == '\'':
		s.literalString()
	case s.peek() == '[':
		s.array(path)
	case s.peek() == '{':
		s.inlineTable(path)
	default: // number, boolean, date-time (which may hold a space)
		for s.pos < len(s.src) && strings.IndexByte(",]}#\n", s.peek()) < 0 {
			s.advance(1)
		}
	}
}

func (s *lineScanner) basicString() {
	s.advance(1)
	for {
		switch s.peek() {
		case 0, '\n':
			s.stop()
		case '\\':
			s.advance(2)
		case '"':
			s.advance(1)
			return
		default:
			s.advance(1)
		}
	}
}

func (s *lineScanner) literalString() {
	s.advance(1)
	i := bytes.IndexAny(s.src[s.pos:], "'\n")
	if i < 0 || s.src[s.pos+i] != '\'' {
		s.stop()
	}
	s.advance(i + 1)
}

// multiline skips a """ or ”' string. Up to two quotes right before the
// closing delimiter belong to the string.
func (s *lineScanner) multiline(delim string, escapes bool) {
	s.advance(3)
	for {
		switch {
		case s.pos >= len(s.src):
			s.stop()
		case escapes && s.peek() == '\\':
			s.advance(2)
		case s.at(delim):
			s.advance(3)
			for i := 0; i < 2 && s.peek() == delim[0]; i++ {
				s.advance(1)
			}
			return
		default:
			s.advance(1)
		}
	}
}

func (s *lineScanner) array(path string) {
	s.advance(1)
	for i := 0; ; i++ {
		s.skipSpaceNL()
		if s.peek() == ']' {
			s.advance(1)
			return
		}
		elem := indexKey(path, i)
		s.record(elem)
		s.value(elem)
		s.skipSpaceNL()
		switch s.peek() {
		case ',':
			s.advance(1)
		case ']':
		default:
			s.stop()
		}
	}
}

func (s *lineScanner) inlineTable(path string) {
	s.advance(1)
	for {
		s.skipSpaceNL()
		if s.peek() == '}' {
			s.advance(1)
			return
		}
		s.keyValue(path)
		s.skipSpaceNL()
		switch s.peek() {
		case ',':
			s.advance(1)
		case '}':
		default:
			s.stop()
		}
	}
}

func joinKey(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func indexKey(path string, i int) string {
	return path + "[" + strconv.Itoa(i) + "]"
}
