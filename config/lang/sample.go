package lang

import (
	"regexp/syntax"
	"strconv"
	"strings"
)

// Sample is a sample expression: a fetch and the converters applied to
// its value, "req.hdr(host),lower,map_dom(hosts.map,other)".
type Sample struct {
	Pos   int
	Fetch *FetchDef
	Args  []Arg
	Convs []Conv
	// Out is the type of the expression's value, after the converters.
	Out Type
}

// Conv is one converter of a sample expression.
type Conv struct {
	Pos  int
	Def  *ConvDef
	Args []Arg
}

// Arg is one argument, as written (unquoted, unescaped), with its value
// read for its kind: Int for ArgInt, Regex checked for ArgRegex.
type Arg struct {
	Pos  int
	Text string
	Int  int64
	Set  bool // the argument was given (optional ones may not be)
}

// ParseSample parses a sample expression that is the whole word w.
func ParseSample(w Word, where Where) (*Sample, error) {
	var e errs
	s := parseSample(&e, w, where)
	return s, e.err()
}

func parseSample(e *errs, w Word, where Where) *Sample {
	parts := splitTop(w, ',')
	if len(parts) == 0 || parts[0].Text == "" {
		e.at(w.Pos(), "a sample fetch is missing")
		return nil
	}
	name, args, ok := call(e, parts[0])
	if !ok {
		return nil
	}
	f := Fetch(name.Text)
	if f == nil {
		msg := "unknown sample fetch %q"
		if _, m := aclFetch(name.Text); m != 0 {
			msg = "%q is an ACL spelling (a fetch with a match method): as a sample write the fetch alone"
		}
		e.at(name.Pos(), msg, name.Text)
		return nil
	}
	if where != 0 && f.Where&where == 0 {
		e.at(name.Pos(), "sample fetch %q is not available in %s rules (it reads what %s has)", name.Text, where, placesOf(f.Where))
	}
	s := &Sample{Pos: name.Pos(), Fetch: f, Out: f.Out}
	s.Args = parseArgs(e, name, args, f.Args, "fetch "+name.Text)
	checkFetchArgs(e, f, s.Args)
	for _, p := range parts[1:] {
		cname, cargs, ok := call(e, p)
		if !ok {
			continue
		}
		d := Converter(cname.Text)
		if d == nil {
			e.at(cname.Pos(), "unknown converter %q", cname.Text)
			continue
		}
		if !castable(s.Out, d.In) {
			e.at(cname.Pos(), "converter %q takes %s input, but it is given %s", cname.Text, d.In, s.Out)
		}
		c := Conv{Pos: cname.Pos(), Def: d, Args: parseArgs(e, cname, cargs, d.Args, "converter "+cname.Text)}
		s.Convs = append(s.Convs, c)
		s.Out = d.Out
	}
	return s
}

// placesOf names the first rule set where w's data exists.
func placesOf(w Where) string {
	switch {
	case w&AtConn != 0:
		return "a connection"
	case w&AtContent != 0:
		return "tcp-request content"
	case w&AtRequest != 0:
		return "an HTTP request"
	}
	return "an HTTP response"
}

// call splits "name(args)" into the name and the words of its arguments.
func call(e *errs, w Word) (name Word, args []Word, ok bool) {
	i := strings.IndexByte(w.Text, '(')
	if i < 0 {
		if j := strings.IndexByte(w.Text, ')'); j >= 0 {
			e.at(w.Off(j), "a ')' closes nothing")
			return w, nil, false
		}
		return w, nil, true
	}
	name = w.sub(0, i)
	if name.Text == "" {
		e.at(w.Pos(), "a '(' follows no name")
		return name, nil, false
	}
	end := closing(w.Text, i)
	if end < 0 {
		e.at(w.Off(i), "the '(' of %s( is not closed", name.Text)
		return name, nil, false
	}
	if end != len(w.Text)-1 {
		e.at(w.Off(end+1), "unexpected %q after %s(...)", w.Text[end+1:], name.Text)
		return name, nil, false
	}
	inner := w.sub(i+1, end)
	if inner.Text == "" {
		return name, []Word{}, true
	}
	return name, unquoteArgs(splitTop(inner, ',')), true
}

// closing finds the ')' that closes the '(' at i, counting nested
// parentheses (a regular expression's groups) and skipping escaped and
// quoted ones.
func closing(s string, i int) int {
	depth := 0
	var quote byte
	for j := i; j < len(s); j++ {
		c := s[j]
		switch {
		case c == '\\':
			j++
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '(':
			depth++
		case c == ')':
			depth--
			if depth == 0 {
				return j
			}
		}
	}
	return -1
}

// splitTop splits w at sep where it is outside parentheses, quotes and
// escapes.
func splitTop(w Word, sep byte) []Word {
	var parts []Word
	depth, start := 0, 0
	var quote byte
	for j := 0; j < len(w.Text); j++ {
		c := w.Text[j]
		switch {
		case c == '\\':
			j++
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '(':
			depth++
		case c == ')':
			depth--
		case c == sep && depth == 0:
			parts = append(parts, w.sub(start, j))
			start = j + 1
		}
	}
	return append(parts, w.sub(start, len(w.Text)))
}

// unquoteArgs removes the quotes of arguments and the backslashes that
// escape a quote, a comma, a parenthesis or a backslash: regsub(\,,x) or
// regsub("a,b",x).
func unquoteArgs(ws []Word) []Word {
	for k, w := range ws {
		if !strings.ContainsAny(w.Text, `"'\`) {
			continue
		}
		var b strings.Builder
		var at []int
		var quote byte
		for j := 0; j < len(w.Text); j++ {
			c := w.Text[j]
			switch {
			case quote == 0 && (c == '"' || c == '\''):
				quote = c
				continue
			case quote != 0 && c == quote:
				quote = 0
				continue
			case c == '\\' && quote != '\'' && j+1 < len(w.Text) && strings.IndexByte(`\\"',()`, w.Text[j+1]) >= 0:
				// Only what would end or open something is escaped:
				// a regular expression's \1 or \. keeps its backslash.
				j++
				c = w.Text[j]
			}
			b.WriteByte(c)
			at = append(at, w.Off(j))
		}
		ws[k] = Word{Text: b.String(), at: append(at, w.Off(len(w.Text))), Quoted: true, start: w.Pos()}
	}
	return ws
}

// parseArgs checks args against spec and reads their values.
func parseArgs(e *errs, name Word, args []Word, spec []argSpec, what string) []Arg {
	if len(args) > len(spec) {
		if len(spec) == 0 {
			e.at(args[0].Pos(), "%s takes no argument", what)
		} else {
			e.at(args[len(spec)].Pos(), "%s takes at most %d arguments", what, len(spec))
		}
		args = args[:len(spec)]
	}
	out := make([]Arg, len(spec))
	for i, sp := range spec {
		if i >= len(args) || (args[i].Text == "" && sp.optional) {
			if !sp.optional {
				e.at(name.Off(len(name.Text)), "%s needs %s as argument %d", what, argName(sp.kind), i+1)
			}
			continue
		}
		a := args[i]
		out[i] = Arg{Pos: a.Pos(), Text: a.Text, Set: true}
		checkArg(e, a, sp.kind, &out[i], what)
	}
	return out
}

func checkArg(e *errs, a Word, kind ArgKind, out *Arg, what string) {
	switch kind {
	case ArgInt:
		n, err := strconv.ParseInt(a.Text, 10, 64)
		if err != nil {
			e.at(a.Pos(), "%s: argument %q is not an integer", what, a.Text)
		}
		out.Int = n
	case ArgRegex:
		checkRegex(e, a)
	case ArgServer:
		if b, s, ok := strings.Cut(a.Text, "/"); !ok || b == "" || s == "" {
			e.at(a.Pos(), "%s: %q is not BACKEND/SERVER", what, a.Text)
		}
	case ArgVar:
		if _, _, err := splitVar(a.Text); err != "" {
			e.at(a.Pos(), "%s", err)
		}
	case ArgIPMask:
		if _, err := ParseIPMask(a.Text); err != "" {
			e.at(a.Pos(), "%s: %s", what, err)
		}
	case ArgBackend, ArgTable, ArgFile, ArgUserlist, ArgFrontend:
		if a.Text == "" {
			e.at(a.Pos(), "%s: %s is needed, the argument is empty", what, argName(kind))
		}
	}
}

func argName(k ArgKind) string {
	switch k {
	case ArgInt:
		return "an integer"
	case ArgBackend:
		return "a backend"
	case ArgServer:
		return "BACKEND/SERVER"
	case ArgVar:
		return "a variable"
	case ArgTable:
		return "a stick table"
	case ArgRegex:
		return "a regular expression"
	case ArgFile:
		return "a map file"
	case ArgUserlist:
		return "a userlist"
	case ArgFrontend:
		return "a frontend"
	case ArgIPMask:
		return "an address mask"
	}
	return "a string"
}

// checkRegex reports a regular expression that Go's RE2 cannot compile,
// naming PCRE-only syntax (backreferences, lookaround, possessive
// quantifiers, atomic groups) that HAProxy's PCRE would accept.
func checkRegex(e *errs, a Word) {
	if _, err := syntax.Parse(a.Text, syntax.Perl); err != nil {
		off := a.Pos()
		msg := err.Error()
		if se, ok := err.(*syntax.Error); ok {
			if i := strings.Index(a.Text, se.Expr); i >= 0 && se.Expr != "" {
				off = a.Off(i)
			}
			msg = se.Code.String() + ": `" + se.Expr + "`"
			if pcreOnly(se) {
				msg += " (PCRE syntax: halo's regular expressions are Go's RE2, which runs in linear time and has no backreferences or lookaround)"
			}
		}
		e.at(off, "bad regular expression: %s", msg)
	}
}

func pcreOnly(se *syntax.Error) bool {
	switch se.Code {
	case syntax.ErrInvalidPerlOp, syntax.ErrInvalidEscape, syntax.ErrInvalidRepeatOp, syntax.ErrInvalidNamedCapture:
		return true
	}
	return false
}

// splitVar splits a variable name into its scope and name, as HAProxy
// spells them: txn.name, sess.name, req.name, res.name, proc.name.
func splitVar(v string) (scope, name, err string) {
	scope, name, ok := strings.Cut(v, ".")
	switch {
	case !ok || name == "":
		return "", "", "variable " + strconv.Quote(v) + " needs a scope: txn.NAME, sess.NAME, req.NAME, res.NAME or proc.NAME"
	case scope != "txn" && scope != "sess" && scope != "req" && scope != "res" && scope != "proc":
		return "", "", "unknown variable scope " + strconv.Quote(scope) + " (txn, sess, req, res or proc)"
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c == '_' || c == '.' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			return "", "", "variable name " + strconv.Quote(name) + " may hold letters, digits, '.' and '_' only"
		}
	}
	return scope, name, ""
}
