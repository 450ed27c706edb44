package keepalived

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// node is one keyword line of a keepalived configuration with its
// arguments and, when it opens a block, the lines inside it.
type node struct {
	Key      string
	Args     []string
	Block    bool // followed by { ... }
	Children []*node
	Pos      Pos
}

// Pos is where something was written.
type Pos struct {
	File string
	Line int
}

func (p Pos) String() string { return fmt.Sprintf("%s:%d", p.File, p.Line) }

// SyntaxError is a configuration keepalived itself would not read: braces
// that do not pair, a quote that does not end, an include that loops.
type SyntaxError struct {
	Pos Pos
	Msg string
}

func (e *SyntaxError) Error() string { return e.Pos.String() + ": " + e.Msg }

// maxIncludeDepth bounds nested includes, so that a file including itself
// is an error rather than a loop.
const maxIncludeDepth = 32

// token is a word, a brace, or the end of a line.
type token struct {
	text string
	kind tokenKind
	pos  Pos
}

type tokenKind int

const (
	tokWord tokenKind = iota
	tokOpen
	tokClose
	tokEOL
)

// parser reads a file and what it includes into nodes.
type parser struct {
	opts   Options
	report func(Pos, string, ...any)
	defs   map[string]string // $NAME=value definitions
}

// parseFile reads path (and its includes) into the top-level nodes.
func (p *parser) parseFile(path string) ([]*node, error) {
	toks, err := p.tokens(path, 0)
	if err != nil {
		return nil, err
	}
	return p.tree(toks)
}

// tokens lexes path, with its includes expanded in place. depth counts
// the includes above it.
func (p *parser) tokens(path string, depth int) ([]token, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read keepalived configuration: %w", err)
	}
	var out []token
	lines := strings.Split(string(data), "\n")
	for i := 0; i < len(lines); i++ {
		pos := Pos{File: path, Line: i + 1}
		line := strings.TrimRight(lines[i], "\r")
		// A definition may go on over lines that end with a backslash.
		if d := strings.TrimSpace(line); strings.HasPrefix(d, "$") && strings.Contains(d, "=") {
			for strings.HasSuffix(line, "\\") && i+1 < len(lines) {
				i++
				line = strings.TrimSuffix(line, "\\") + "\n" + strings.TrimRight(lines[i], "\r")
			}
		}
		line, keep := p.conditional(line, pos)
		if !keep {
			continue
		}
		if name, value, ok := definition(line); ok {
			p.defs[name] = value
			continue
		}
		line, err := p.expand(line, pos)
		if err != nil {
			return nil, err
		}
		for _, sub := range strings.Split(line, "\n") {
			words, err := split(sub, pos)
			if err != nil {
				return nil, err
			}
			if len(words) > 0 && isInclude(words[0].text) {
				inc, err := p.include(words, path, depth)
				if err != nil {
					return nil, err
				}
				out = append(out, inc...)
				continue
			}
			out = append(out, words...)
			out = append(out, token{kind: tokEOL, pos: pos})
		}
	}
	return out, nil
}

// conditional applies keepalived's conditional configuration (-i): a line
// that starts with @ID is read only when ID is the configuration id, one
// that starts with @^ID only when it is not.
func (p *parser) conditional(line string, pos Pos) (string, bool) {
	t := strings.TrimLeft(line, " \t")
	if !strings.HasPrefix(t, "@") {
		return line, true
	}
	id, rest, _ := strings.Cut(t[1:], " ")
	if i := strings.IndexByte(id, '\t'); i >= 0 {
		id, rest = id[:i], id[i+1:]+" "+rest
	}
	if neg, ok := strings.CutPrefix(id, "^"); ok {
		return rest, neg != p.opts.ConfigID
	}
	if id == p.opts.ConfigID {
		return rest, true
	}
	if p.opts.ConfigID == "" {
		p.report(pos, "@%s: a line of configuration id %q (keepalived -i %s): not supported without -config-id %s; skipped", id, id, id, id)
	}
	return "", false
}

// definition recognises "$NAME=value".
func definition(line string) (string, string, bool) {
	t := strings.TrimSpace(line)
	if !strings.HasPrefix(t, "$") {
		return "", "", false
	}
	name, value, ok := strings.Cut(t[1:], "=")
	if !ok || name == "" || strings.ContainsAny(name, " \t{}") {
		return "", "", false
	}
	return name, strings.TrimSpace(value), true
}

// expand replaces $NAME and ${NAME} with their definitions.
func (p *parser) expand(line string, pos Pos) (string, error) {
	if !strings.Contains(line, "$") {
		return line, nil
	}
	var b strings.Builder
	for depth := 0; ; depth++ {
		if depth > 16 {
			return "", &SyntaxError{Pos: pos, Msg: "definitions expand into each other without end"}
		}
		b.Reset()
		changed := false
		for i := 0; i < len(line); i++ {
			if line[i] != '$' {
				b.WriteByte(line[i])
				continue
			}
			var name string
			j := i + 1
			if j < len(line) && line[j] == '{' {
				end := strings.IndexByte(line[j:], '}')
				if end < 0 {
					b.WriteByte('$')
					continue
				}
				name, j = line[j+1:j+end], j+end+1
			} else {
				for j < len(line) && (line[j] == '_' || line[j] >= 'A' && line[j] <= 'Z' || line[j] >= 'a' && line[j] <= 'z' || line[j] >= '0' && line[j] <= '9') {
					j++
				}
				name = line[i+1 : j]
			}
			v, ok := p.defs[name]
			if !ok || name == "" {
				b.WriteByte('$')
				continue
			}
			b.WriteString(v)
			changed = true
			i = j - 1
		}
		line = b.String()
		if !changed {
			return line, nil
		}
	}
}

// split cuts a line into words and braces: blanks separate words, quotes
// (" or ') group them, # and ! outside quotes start a comment, and braces
// are tokens of their own even when written against a word.
func split(line string, pos Pos) ([]token, error) {
	var out []token
	var cur strings.Builder
	in := false // inside a word
	flush := func() {
		if in {
			out = append(out, token{text: cur.String(), pos: pos})
			cur.Reset()
			in = false
		}
	}
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == '"' || c == '\'':
			end := strings.IndexByte(line[i+1:], c)
			if end < 0 {
				return nil, &SyntaxError{Pos: pos, Msg: fmt.Sprintf("unterminated %c quote", c)}
			}
			cur.WriteString(unescape(line[i+1 : i+1+end]))
			in = true
			i += end + 1
		case c == '#' || c == '!':
			flush()
			return out, nil
		case c == ' ' || c == '\t':
			flush()
		case c == '{' || c == '}':
			flush()
			k := tokOpen
			if c == '}' {
				k = tokClose
			}
			out = append(out, token{text: string(c), kind: k, pos: pos})
		default:
			cur.WriteByte(c)
			in = true
		}
	}
	flush()
	return out, nil
}

// unescape applies the shell-like escapes keepalived reads in quoted
// strings.
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	r := strings.NewReplacer(`\\`, `\`, `\"`, `"`, `\'`, `'`, `\n`, "\n", `\t`, "\t", `\r`, "\r")
	return r.Replace(s)
}

func isInclude(w string) bool {
	switch w {
	case "include", "includer", "includem", "includew", "includeb", "includea":
		return true
	}
	return false
}

// include expands an include line: its pattern is a glob, relative to the
// directory of the file that includes it, whose files are read in order.
// A pattern that matches nothing is reported (keepalived skips it).
func (p *parser) include(words []token, from string, depth int) ([]token, error) {
	pos := words[0].pos
	if len(words) < 2 {
		return nil, &SyntaxError{Pos: pos, Msg: words[0].text + " needs a file name"}
	}
	if depth >= maxIncludeDepth {
		return nil, &SyntaxError{Pos: pos, Msg: fmt.Sprintf("includes nested more than %d deep (does a file include itself?)", maxIncludeDepth)}
	}
	var out []token
	for _, w := range words[1:] {
		pattern := w.text
		if !filepath.IsAbs(pattern) {
			pattern = filepath.Join(filepath.Dir(from), pattern)
		}
		files, err := filepath.Glob(pattern)
		if err != nil {
			return nil, &SyntaxError{Pos: pos, Msg: fmt.Sprintf("include %s: %v", w.text, err)}
		}
		sort.Strings(files)
		if len(files) == 0 {
			p.report(pos, "include %s: no file matches; nothing included", w.text)
		}
		for _, f := range files {
			if st, err := os.Stat(f); err != nil || st.IsDir() {
				continue
			}
			toks, err := p.tokens(f, depth+1)
			if err != nil {
				var se *SyntaxError
				if errors.As(err, &se) {
					return nil, err
				}
				return nil, &SyntaxError{Pos: pos, Msg: err.Error()}
			}
			out = append(out, toks...)
		}
	}
	return out, nil
}

// tree builds nodes from tokens: words up to the end of a line make a
// keyword line; one followed by { opens a block that } closes.
func (p *parser) tree(toks []token) ([]*node, error) {
	type frame struct {
		n     *node
		nodes []*node
	}
	stack := []frame{{}}
	var words []token
	emit := func() {
		if len(words) == 0 {
			return
		}
		n := &node{Key: words[0].text, Pos: words[0].pos}
		for _, w := range words[1:] {
			n.Args = append(n.Args, w.text)
		}
		top := &stack[len(stack)-1]
		top.nodes = append(top.nodes, n)
		words = nil
	}
	for _, t := range toks {
		switch t.kind {
		case tokWord:
			words = append(words, t)
		case tokEOL:
			emit()
		case tokOpen:
			if len(words) == 0 {
				return nil, &SyntaxError{Pos: t.pos, Msg: "{ without a keyword before it"}
			}
			emit()
			top := &stack[len(stack)-1]
			n := top.nodes[len(top.nodes)-1]
			n.Block = true
			stack = append(stack, frame{n: n})
		case tokClose:
			emit()
			if len(stack) == 1 {
				return nil, &SyntaxError{Pos: t.pos, Msg: "} without a { to close"}
			}
			top := stack[len(stack)-1]
			top.n.Children = top.nodes
			stack = stack[:len(stack)-1]
		}
	}
	emit()
	if len(stack) > 1 {
		n := stack[len(stack)-1].n
		return nil, &SyntaxError{Pos: n.Pos, Msg: fmt.Sprintf("the { of %s is never closed", n.Key)}
	}
	return stack[0].nodes, nil
}
