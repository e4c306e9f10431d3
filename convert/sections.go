package convert

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Section is one section of the file: its header statement and body.
type Section struct {
	Kind, Name string
	// From is the defaults section named by "from" (frontend, backend,
	// listen and defaults).
	From   string
	Header *Stmt
	Body   []*Stmt
	// Head is the comment block written just above the header.
	Head string
	// Defaults is the defaults section this proxy takes (resolved).
	Defaults *Section
}

// sectionKinds are the keywords that open a section, and whether the name
// is required.
var sectionKinds = map[string]bool{
	"global": false, "defaults": false, "frontend": true, "backend": true, "listen": true,
	"userlist": true, "peers": true, "resolvers": true, "mailers": true, "program": true,
	"cache": true, "ring": true, "http-errors": true, "log-forward": true, "crt-store": false,
	"traces": false, "fcgi-app": true,
}

// commented is a statement with the comment lines written above it.
type commented struct {
	*Stmt
	head string
}

// reader turns the file into statements, evaluating .if blocks.
type reader struct {
	lex   lexer
	diags *diags
	// onStmt sees each statement as it is read (setenv changes how the
	// lines after it expand).
	onStmt func(*Stmt)
}

// statements reads src into statements, each with the comment block above
// it; the comments of the file's end come last with a nil statement.
func (r *reader) statements(src []byte) ([]commented, error) {
	var (
		out     []commented
		pending []string // comment lines since the last statement
		stack   []condBlock
	)
	active := func() bool { return len(stack) == 0 || stack[len(stack)-1].active }
	lines := strings.Split(string(src), "\n")
	if len(lines) > 0 && lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	for i, raw := range lines {
		n := i + 1
		raw = strings.TrimSuffix(raw, "\r")
		if !utf8.ValidString(raw) {
			return nil, &Error{File: r.lex.file, Line: n, Col: invalidUTF8(raw) + 1, Msg: "this byte is not UTF-8 text: halo's YAML holds text only"}
		}
		trimmed := strings.TrimLeft(raw, " \t")
		if strings.HasPrefix(trimmed, "#") {
			if active() {
				// One space after the '#' is the comment's own; the rest
				// is the author's indentation.
				text := strings.TrimPrefix(strings.TrimPrefix(trimmed, "#"), " ")
				pending = append(pending, strings.TrimRight(text, " \t"))
			}
			continue
		}
		if trimmed == "" {
			if len(pending) > 0 && pending[len(pending)-1] != "" {
				pending = append(pending, "")
			}
			continue
		}
		// HAProxy cuts every line into words, those of a block it
		// skips too, and refuses a line it cannot cut.
		st, err := r.lex.line(n, raw)
		if err != nil {
			return nil, err
		}
		if st == nil {
			continue
		}
		for _, w := range st.Words {
			if !utf8.ValidString(w.Text) {
				return nil, &Error{File: r.lex.file, Line: n, Col: w.Col, Msg: fmt.Sprintf("the word %q is not UTF-8 text once its escapes are read: halo's YAML holds text only", w.Text)}
			}
		}
		kw := st.Words[0]
		if !kw.Quoted && strings.HasPrefix(kw.Text, ".") {
			if err := r.directive(st, &stack, active()); err != nil {
				return nil, err
			}
			continue
		}
		if !active() {
			continue
		}
		if r.onStmt != nil {
			r.onStmt(st)
		}
		for _, name := range st.Env {
			if strings.HasPrefix(name, ".") {
				continue
			}
			v, ok := r.lex.lookup(name)
			if !ok {
				v = "(unset)"
			}
			r.diags.warn(st.Line, "$"+name, fmt.Sprintf("halo's YAML has no environment variables: expanded while converting, to %q, and that value is written", v))
		}
		out = append(out, commented{Stmt: st, head: strings.TrimRight(strings.Join(pending, "\n"), "\n")})
		pending = nil
	}
	if len(stack) > 0 {
		return nil, &Error{File: r.lex.file, Line: stack[len(stack)-1].line, Col: 1, Msg: ".if without .endif"}
	}
	if len(pending) > 0 {
		out = append(out, commented{head: strings.TrimRight(strings.Join(pending, "\n"), "\n")})
	}
	return out, nil
}

// directive handles .if, .elif, .else, .endif and the message directives.
func (r *reader) directive(st *Stmt, stack *[]condBlock, active bool) error {
	kw := st.Words[0]
	errAt := func(col int, format string, args ...any) error {
		return &Error{File: r.lex.file, Line: st.Line, Col: col, Msg: fmt.Sprintf(format, args...)}
	}
	eval := func() (bool, error) {
		v, err := condExpr(st.Words[1:], r.lex.lookup, func(msg string) { r.diags.note(st.Line, kw.Text, msg) })
		if err == nil {
			r.diags.note(st.Line, kw.Text, fmt.Sprintf("evaluated while converting: %v", v))
		}
		if err != nil {
			col := kw.Col
			if len(st.Words) > 1 {
				col = st.Words[1].Col
			}
			return false, errAt(col, "%s: %v", kw.Text, err)
		}
		return v, nil
	}
	top := func() *condBlock {
		if len(*stack) == 0 {
			return nil
		}
		return &(*stack)[len(*stack)-1]
	}
	switch kw.Text {
	case ".if":
		b := condBlock{line: st.Line, parent: active}
		if active {
			v, err := eval()
			if err != nil {
				return err
			}
			b.active, b.taken = v, v
		}
		*stack = append(*stack, b)
	case ".elif":
		b := top()
		if b == nil || b.hadElse {
			return errAt(kw.Col, ".elif without .if")
		}
		b.active = false
		if b.parent && !b.taken {
			v, err := eval()
			if err != nil {
				return err
			}
			b.active, b.taken = v, v
		}
	case ".else":
		b := top()
		if b == nil || b.hadElse {
			return errAt(kw.Col, ".else without .if")
		}
		b.hadElse = true
		b.active = b.parent && !b.taken
		b.taken = true
	case ".endif":
		if top() == nil {
			return errAt(kw.Col, ".endif without .if")
		}
		*stack = (*stack)[:len(*stack)-1]
	case ".diag", ".notice", ".warning", ".alert":
		if !active {
			return nil
		}
		msg := strings.Join(st.Texts()[1:], " ")
		switch kw.Text {
		case ".alert":
			return errAt(kw.Col, ".alert %q: HAProxy would refuse to start", msg)
		case ".warning":
			r.diags.warn(st.Line, kw.Text, fmt.Sprintf("the file's own warning %q", msg))
		default:
			r.diags.note(st.Line, kw.Text, fmt.Sprintf("the file's own message %q", msg))
		}
	default:
		if !active {
			return nil
		}
		return errAt(kw.Col, "unknown directive %q: HAProxy's are .if, .elif, .else, .endif, .diag, .notice, .warning and .alert", kw.Text)
	}
	return nil
}

// sections groups statements into sections and resolves each proxy's
// defaults as HAProxy does: the last defaults section before it, or the
// one "from" names.
func (r *reader) sections(stmts []commented) ([]*Section, string, error) {
	var (
		out      []*Section
		cur      *Section
		current  *Section // the defaults in force
		named    = map[string]*Section{}
		trailing string
	)
	errAt := func(st *Stmt, w int, format string, args ...any) error {
		return &Error{File: r.lex.file, Line: st.Line, Col: st.Words[w].Col, Msg: fmt.Sprintf(format, args...)}
	}
	for _, c := range stmts {
		st := c.Stmt
		if st == nil {
			trailing = c.head
			continue
		}
		kw := st.Words[0].Text
		needName, isSection := sectionKinds[kw]
		if !isSection || st.Words[0].Quoted {
			if cur == nil {
				return nil, "", errAt(st, 0, "%q outside of any section: a file starts with a section keyword (global, defaults, frontend, backend, listen, ...)", kw)
			}
			st.Head = c.head
			cur.Body = append(cur.Body, st)
			continue
		}
		s := &Section{Kind: kw, Header: st, Head: c.head}
		args := st.Words[1:]
		// A proxy's first word is its name, even "from"; a defaults
		// section's name is optional, so "defaults from X" takes X.
		if len(args) > 0 && (needName || args[0].Text != "from" || len(args) == 1) {
			s.Name = args[0].Text
			args = args[1:]
		}
		if needName && s.Name == "" {
			return nil, "", errAt(st, 0, "section %q needs a name", kw)
		}
		if len(args) >= 1 && args[0].Text == "from" {
			if len(args) != 2 {
				return nil, "", errAt(st, len(st.Words)-len(args), `"from" takes the name of a defaults section`)
			}
			s.From = args[1].Text
			d := named[s.From]
			if d == nil {
				return nil, "", errAt(st, len(st.Words)-1, "defaults section %q is not defined before this line", s.From)
			}
			args = nil
		} else if len(args) > 0 && (kw == "defaults" || kw == "frontend" || kw == "backend" || kw == "listen") {
			return nil, "", errAt(st, len(st.Words)-len(args), "unexpected %q after the section's name", args[0].Text)
		}
		switch kw {
		case "defaults":
			if s.From != "" {
				s.Defaults = named[s.From]
			}
			if s.Name != "" {
				named[s.Name] = s
			}
			current = s
		case "frontend", "backend", "listen":
			s.Defaults = current
			if s.From != "" {
				s.Defaults = named[s.From]
			}
		}
		out = append(out, s)
		cur = s
	}
	return out, trailing, nil
}

// invalidUTF8 is the offset of the first byte of s that is not UTF-8.
func invalidUTF8(s string) int {
	for i, r := range s {
		if r == utf8.RuneError {
			if _, size := utf8.DecodeRuneInString(s[i:]); size == 1 {
				return i
			}
		}
	}
	return len(s)
}
