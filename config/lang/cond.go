package lang

// Cond is a rule's condition: "if" or "unless" and ACL terms, ORed groups
// of ANDed terms, as HAProxy evaluates them (no parentheses; AND binds
// tighter than OR).
type Cond struct {
	Pos    int
	Unless bool
	Or     [][]Term
}

// Term is one ACL of a condition: named, or anonymous ({ ... }), maybe
// negated.
type Term struct {
	Pos  int
	Not  bool
	Name string // a named ACL; "" when Anon is set
	Anon *Match
}

// ParseACL parses an ACL definition's line: "fetch [flags] [patterns]".
func ParseACL(line string, where Where) (*Match, error) {
	ws, err := Split(line)
	if err != nil {
		return nil, err
	}
	var e errs
	if len(ws) == 0 {
		e.at(0, "the ACL is empty: it needs a fetch, like path_beg /v3")
		return nil, e.err()
	}
	m := parseMatch(&e, ws, where)
	return m, e.err()
}

// parseCond parses the words after "if" or "unless" (kw).
func parseCond(e *errs, kw Word, ws []Word, where Where) *Cond {
	c := &Cond{Pos: kw.Pos(), Unless: kw.Text == "unless"}
	if len(ws) == 0 {
		e.at(kw.Pos(), "%q needs a condition", kw.Text)
		return c
	}
	var and []Term
	for i := 0; i < len(ws); i++ {
		w := ws[i]
		if w.is("||") || w.is("or") {
			if len(and) == 0 {
				e.at(w.Pos(), "%q needs a term on each side", w.Text)
			}
			c.Or = append(c.Or, and)
			and = nil
			continue
		}
		t := Term{Pos: w.Pos()}
		text := w.Text
		if !w.Quoted && len(text) > 0 && text[0] == '!' {
			t.Not = true
			text = text[1:]
			if text == "" { // "! name"
				if i+1 == len(ws) {
					e.at(w.Pos(), "'!' negates nothing")
					break
				}
				i++
				w = ws[i]
				text = w.Text
			} else {
				w = w.sub(1, len(w.Text))
			}
		}
		if text == "{" && !w.Quoted {
			end := -1
			for j := i + 1; j < len(ws); j++ {
				if ws[j].is("}") {
					end = j
					break
				}
			}
			if end < 0 {
				e.at(w.Pos(), "the '{' of an anonymous ACL is not closed by a '}' (braces are words of their own: { ssl_fc })")
				return c
			}
			if end == i+1 {
				e.at(w.Pos(), "the anonymous ACL { } is empty")
			} else {
				t.Anon = parseMatch(e, ws[i+1:end], where)
			}
			i = end
		} else {
			switch {
			case text == "}":
				e.at(w.Pos(), "a '}' closes nothing")
				continue
			case len(text) > 1 && text[0] == '{':
				e.at(w.Pos(), "a '{' must be a word of its own: write { %s", text[1:])
				continue
			case text == "if" || text == "unless":
				e.at(w.Pos(), "a second %q in one condition", text)
				continue
			}
			if !validACLName(text) {
				e.at(w.Pos(), "%q is not an ACL name (letters, digits, '-', '_', '.' and ':')", text)
				continue
			}
			t.Name = text
		}
		and = append(and, t)
	}
	if len(and) == 0 && len(c.Or) > 0 {
		e.at(ws[len(ws)-1].Pos(), "the condition ends with an OR")
	}
	c.Or = append(c.Or, and)
	return c
}

// validACLName reports whether s can name an ACL, as HAProxy's
// invalid_char() allows.
func validACLName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '-' || c == '_' || c == '.' || c == ':' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			return false
		}
	}
	return true
}

// ValidACLName reports whether s can name an ACL.
func ValidACLName(s string) bool { return validACLName(s) }

// Predefined are HAProxy's predefined ACLs, written in the language.
var Predefined = map[string]string{
	"TRUE":           "always_true",
	"FALSE":          "always_false",
	"LOCALHOST":      "src 127.0.0.1/8 ::1",
	"HTTP":           "req.proto_http",
	"HTTP_2.0":       "req.ver 2.0",
	"HTTP_3.0":       "req.ver 3.0",
	"RDP_COOKIE":     "req.rdp_cookie_cnt gt 0",
	"WAIT_END":       "wait_end",
	"HTTP_1.0":       "req.ver 1.0",
	"HTTP_1.1":       "req.ver 1.1",
	"HTTP_URL_ABS":   "url_reg ^[^/:]*://",
	"HTTP_URL_SLASH": "url_beg /",
	"HTTP_URL_STAR":  "url *",
	"HTTP_CONTENT":   "req.hdr_val(content-length) gt 0",
	"METH_CONNECT":   "method CONNECT",
	"METH_DELETE":    "method DELETE",
	"METH_GET":       "method GET HEAD",
	"METH_HEAD":      "method HEAD",
	"METH_OPTIONS":   "method OPTIONS",
	"METH_POST":      "method POST",
	"METH_PUT":       "method PUT",
	"METH_TRACE":     "method TRACE",
	"REQ_CONTENT":    "req.len gt 0",
}
