package lang

import (
	"strconv"
	"strings"
)

// RuleSet is which list a rule is in: it decides which actions and
// fetches the rule may use.
type RuleSet uint8

// The rule sets.
const (
	HTTPRequest RuleSet = iota + 1
	HTTPResponse
	TCPConnection
	TCPContent
	TCPSession
)

func (s RuleSet) String() string {
	return [...]string{"", "http-request", "http-response", "tcp-request connection", "tcp-request content", "tcp-request session"}[s]
}

// Where is where the rule set runs, for the fetches it may use.
func (s RuleSet) Where() Where {
	switch s {
	case HTTPRequest:
		return AtRequest
	case HTTPResponse:
		return AtResponse
	case TCPConnection:
		return AtConn
	case TCPSession:
		return AtSession
	}
	return AtContent
}

// Rule is one rule of a rule set: an action, its arguments and its
// condition.
type Rule struct {
	Pos    int
	Action string // HAProxy's word: set-header, deny, track-sc0, ...
	// Response: the rule is an http-response one (a capture fills a
	// response slot).
	Response bool
	Cond     *Cond // nil: always
	// The arguments each action takes, as the action's doc says.
	Name    string // header, variable, userlist realm, log level, backend
	NamePos int
	Value   *Format // a header's value, a path, a URI, a status reason
	Regex   *Arg    // replace-header, replace-value, replace-path, replace-uri
	Expr    *Sample // set-var, track-sc*, capture, stick
	Match   Method  // del-header -m
	Status  int     // deny, tarpit, return, set-status, redirect code
	// StatusPos is where a deny's, tarpit's or return's status is (the
	// action's position when it has none).
	StatusPos int
	// Reply is the body of deny, tarpit and return.
	Reply    *Reply
	Redirect *Redirect
	Counter  int // track-sc0/1/2, sc-inc-gpc0(N)
	Table    string
	TablePos int
	// Len is capture's len N (a new slot), 0 for id N; Slot is the
	// slot: id's N, or the index the config gives a len rule's slot.
	Len     int
	Slot    int
	SlotPos int // id's N, for an error about the slot
}

// actions lists which actions each rule set takes.
var actions = map[RuleSet]map[string]bool{
	HTTPRequest: set("allow", "deny", "tarpit", "auth", "redirect", "return",
		"set-header", "add-header", "del-header", "replace-header", "replace-value",
		"set-path", "set-pathq", "replace-path", "replace-pathq", "set-query", "set-uri", "replace-uri", "set-method",
		"set-var", "set-var-fmt", "unset-var", "track-sc0", "track-sc1", "track-sc2",
		"sc-inc-gpc0", "sc-inc-gpc1", "sc-clr-gpc0", "set-log-level", "capture"),
	HTTPResponse: set("allow", "deny", "redirect", "return",
		"set-header", "add-header", "del-header", "replace-header", "replace-value", "set-status",
		"set-var", "set-var-fmt", "unset-var", "track-sc0", "track-sc1", "track-sc2",
		"sc-inc-gpc0", "sc-inc-gpc1", "sc-clr-gpc0", "set-log-level", "capture"),
	TCPConnection: set("accept", "reject", "track-sc0", "track-sc1", "track-sc2", "sc-inc-gpc0", "sc-inc-gpc1", "set-var", "set-var-fmt", "unset-var", "expect-proxy"),
	TCPContent:    set("accept", "reject", "track-sc0", "track-sc1", "track-sc2", "sc-inc-gpc0", "sc-inc-gpc1", "set-var", "set-var-fmt", "unset-var", "capture", "set-log-level"),
	TCPSession:    set("accept", "reject", "track-sc0", "track-sc1", "track-sc2", "sc-inc-gpc0", "sc-inc-gpc1", "set-var", "set-var-fmt", "unset-var"),
}

func set(ws ...string) map[string]bool {
	m := map[string]bool{}
	for _, w := range ws {
		m[w] = true
	}
	return m
}

// ParseRule parses one rule of the rule set rs.
func ParseRule(line string, rs RuleSet) (*Rule, error) {
	ws, err := Split(line)
	if err != nil {
		return nil, err
	}
	var e errs
	r := parseRule(&e, ws, rs, 0, 0)
	return r, e.err()
}

// condStart finds the "if" or "unless" that starts a rule's condition.
func condStart(ws []Word) int {
	for i, w := range ws {
		if w.is("if") || w.is("unless") {
			return i
		}
	}
	return len(ws)
}

// splitCond parses the condition at the end of ws and returns the words
// before it.
func splitCond(e *errs, ws []Word, where Where) ([]Word, *Cond) {
	i := condStart(ws)
	if i == len(ws) {
		return ws, nil
	}
	return ws[:i], parseCond(e, ws[i], ws[i+1:], where)
}

// parseRule parses the rule in ws[from:]; its fetches may read what rs
// sees, and also.
func parseRule(e *errs, ws []Word, rs RuleSet, from int, also Where) *Rule {
	if len(ws) <= from {
		e.at(0, "the rule is empty: it needs an action")
		return nil
	}
	where := rs.Where() | also
	// The action reads its arguments first, as HAProxy's parser does, so
	// that a value may be the word "if" ("set-header X-A unless" sets
	// "unless"); the condition is what follows them.
	args := ws[from:]
	act := args[0]
	if act.is("if") || act.is("unless") {
		e.at(act.Pos(), "the rule has a condition but no action")
		return nil
	}
	r := &Rule{Pos: act.Pos(), Action: act.Text, Response: rs == HTTPResponse}
	name, inner := act.Text, ""
	if i := strings.IndexByte(act.Text, '('); i > 0 && strings.HasSuffix(act.Text, ")") {
		name, inner = act.Text[:i], act.Text[i+1:len(act.Text)-1]
		r.Action = name
	}
	if !actions[rs][name] {
		e.at(act.Pos(), "unknown %s action %q", rs, act.Text)
		return nil
	}
	a := argReader{e: e, ws: args[1:], at: act}
	defer func() { r.Cond = a.cond(where) }()
	switch name {
	case "allow", "accept", "reject", "expect-proxy":
		if name == "expect-proxy" {
			a.keyword("layer4")
		}
	case "deny", "tarpit", "return":
		r.Status = map[string]int{"deny": 403, "tarpit": 500, "return": 200}[name]
		r.Reply = a.reply(r, where, name)
	case "auth":
		if a.more() {
			a.keyword("realm")
			r.Name = a.word().Text
		}
	case "redirect":
		r.Redirect, r.Status = a.redirect(where, rs)
	case "set-header", "add-header":
		r.Name, r.NamePos = a.header()
		r.Value = a.format(where)
	case "del-header":
		r.Name, r.NamePos = a.header()
		r.Match = MatchStr
		if a.peek("-m") {
			a.word()
			w := a.word()
			m, ok := methodNames[w.Text]
			if !ok || (m != MatchStr && m != MatchBeg && m != MatchEnd && m != MatchSub && m != MatchReg) {
				e.at(w.Pos(), "del-header -m takes str, beg, end, sub or reg")
			}
			r.Match = m
		}
	case "replace-header", "replace-value":
		r.Name, r.NamePos = a.header()
		r.Regex = a.regex()
		r.Value = a.format(where)
	case "set-path", "set-pathq", "set-query", "set-uri", "set-method":
		r.Value = a.format(where)
	case "replace-path", "replace-pathq", "replace-uri":
		r.Regex = a.regex()
		r.Value = a.format(where)
	case "set-status":
		w := a.word()
		r.Status = status(e, w, 100, 999)
		if a.peek("reason") {
			a.word()
			r.Value = a.format(where)
		}
	case "set-var", "set-var-fmt", "unset-var":
		r.Name, r.NamePos = inner, act.Off(len(name)+1)
		if _, _, msg := splitVar(inner); msg != "" {
			e.at(r.NamePos, "%s", msg)
		}
		switch name {
		case "set-var":
			r.Expr = a.sample(where)
		case "set-var-fmt":
			r.Value = a.format(where)
		}
	case "track-sc0", "track-sc1", "track-sc2":
		r.Counter = int(name[len(name)-1] - '0')
		r.Expr = a.sample(where)
		if a.peek("table") {
			a.word()
			t := a.word()
			r.Table, r.TablePos = t.Text, t.Pos()
		}
	case "sc-inc-gpc0", "sc-inc-gpc1", "sc-clr-gpc0":
		r.Counter = 0
		if inner != "" {
			n, err := strconv.Atoi(inner)
			if err != nil || n < 0 || n > 2 {
				e.at(act.Off(len(name)+1), "%s(N) takes a tracking counter 0, 1 or 2", name)
			}
			r.Counter = n
		}
	case "set-log-level":
		w := a.word()
		switch w.Text {
		case "silent", "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug":
		default:
			e.at(w.Pos(), "unknown log level %q (silent, emerg, alert, crit, err, warning, notice, info, debug)", w.Text)
		}
		r.Name = w.Text
	case "capture":
		// len N makes a new slot of the frontend's (request slots only);
		// id N fills one the frontend declares. http-response capture
		// takes id alone and tcp-request content capture len alone, as
		// in HAProxy.
		r.Expr = a.sample(where)
		switch {
		case a.peek("len") && rs != HTTPResponse:
			a.word()
			r.Len = a.int(1, 65536)
		case a.peek("id") && rs != TCPContent:
			a.word()
			r.SlotPos = a.next()
			r.Slot = a.int(0, 1000)
		case rs == HTTPResponse:
			e.at(a.next(), "http-response capture needs id N (a response slot the frontend declares)")
			a.skip()
		case rs == TCPContent:
			e.at(a.next(), "tcp-request content capture needs len N")
			a.skip()
		default:
			e.at(a.next(), "capture needs len N or id N")
			a.skip()
		}
	}
	if name != "set-var" && name != "set-var-fmt" && name != "unset-var" && !strings.HasPrefix(name, "sc-") && inner != "" {
		e.at(act.Pos(), "action %q takes no parenthesized argument", name)
	}
	a.done()
	return r
}

func status(e *errs, w Word, lo, hi int) int {
	n, err := strconv.Atoi(w.Text)
	if err != nil || n < lo || n > hi {
		e.at(w.Pos(), "status %q is not a code from %d to %d", w.Text, lo, hi)
	}
	return n
}

// argReader reads an action's arguments in order.
type argReader struct {
	e  *errs
	ws []Word
	i  int
	at Word // the action, for "missing" errors
}

// more reports whether an optional argument follows: not at the end,
// nor at the if or unless that starts the condition.
func (a *argReader) more() bool {
	return a.i < len(a.ws) && !a.ws[a.i].is("if") && !a.ws[a.i].is("unless")
}

func (a *argReader) end() int {
	if a.i > 0 && a.i <= len(a.ws) {
		w := a.ws[a.i-1]
		return w.Off(len(w.Text))
	}
	return a.at.Off(len(a.at.Text))
}

// next is the offset of the next argument, or of the end of the last
// one when there is none.
func (a *argReader) next() int {
	if a.more() {
		return a.ws[a.i].Pos()
	}
	return a.end()
}

// skip passes the arguments left, once an error about them is reported.
func (a *argReader) skip() {
	for a.more() {
		a.i++
	}
}

func (a *argReader) peek(k string) bool { return a.more() && a.ws[a.i].is(k) }

func (a *argReader) word() Word {
	if a.i >= len(a.ws) {
		a.e.at(a.end(), "%s needs more arguments", a.at.Text)
		return Word{at: []int{a.end()}}
	}
	w := a.ws[a.i]
	a.i++
	return w
}

func (a *argReader) keyword(k string) {
	w := a.word()
	if w.Text != k && w.Text != "" {
		a.e.at(w.Pos(), "expected %q, found %q", k, w.Text)
	}
}

func (a *argReader) int(lo, hi int) int {
	w := a.word()
	n, err := strconv.Atoi(w.Text)
	if err != nil || n < lo || n > hi {
		a.e.at(w.Pos(), "%q is not a number from %d to %d", w.Text, lo, hi)
	}
	return n
}

func (a *argReader) header() (string, int) {
	w := a.word()
	if w.Text == "" {
		return "", w.Pos()
	}
	for i := 0; i < len(w.Text); i++ {
		if !isTokenChar(w.Text[i]) {
			a.e.at(w.Off(i), "header name %q holds %q, which no header name may", w.Text, w.Text[i])
			break
		}
	}
	return w.Text, w.Pos()
}

func (a *argReader) format(where Where) *Format {
	w := a.word()
	return parseFormat(a.e, w, where, false)
}

func (a *argReader) sample(where Where) *Sample {
	w := a.word()
	if w.Text == "" {
		return nil
	}
	return parseSample(a.e, w, where)
}

func (a *argReader) regex() *Arg {
	w := a.word()
	checkRegex(a.e, w)
	return &Arg{Pos: w.Pos(), Text: w.Text, Set: true}
}

func (a *argReader) done() {
	if a.more() {
		w := a.ws[a.i]
		a.e.at(w.Pos(), "unexpected %q after %s's arguments (a condition starts with if or unless)", w.Text, a.at.Text)
		a.i = len(a.ws)
	}
}

// cond parses the condition after the arguments, nil without one.
func (a *argReader) cond(where Where) *Cond {
	if a.i >= len(a.ws) {
		return nil
	}
	kw := a.ws[a.i]
	if !kw.is("if") && !kw.is("unless") {
		return nil
	}
	return parseCond(a.e, kw, a.ws[a.i+1:], where)
}

func isTokenChar(c byte) bool {
	return c > 0x20 && c < 0x7f && !strings.ContainsRune("\"(),/:;<=>?@[\\]{}", rune(c))
}

// ActionNames are the actions rule set rs takes, for docs and for the
// differential test's check that each is compared with HAProxy.
func ActionNames(rs RuleSet) []string {
	var names []string
	for n := range actions[rs] {
		names = append(names, n)
	}
	return names
}

// RuleSets are every rule set, for the callers of ActionNames.
var RuleSets = []RuleSet{HTTPRequest, HTTPResponse, TCPConnection, TCPContent, TCPSession}
