package lang

import "time"

// ParseTCPRequest parses a tcp-request line: "connection|content|session
// ACTION ... [if|unless COND]" or "inspect-delay TIME". For inspect-delay
// the rule is nil and the delay set. In a mode http section (http), a
// content rule runs on each request and may read it, as in HAProxy.
func ParseTCPRequest(line string, http bool, parseDuration func(string) (time.Duration, error)) (*Rule, RuleSet, time.Duration, error) {
	ws, err := Split(line)
	if err != nil {
		return nil, 0, 0, err
	}
	var e errs
	if len(ws) == 0 {
		e.at(0, "the tcp-request line is empty")
		return nil, 0, 0, e.err()
	}
	var rs RuleSet
	switch ws[0].Text {
	case "inspect-delay":
		if len(ws) != 2 {
			e.at(ws[0].Pos(), "inspect-delay takes one time, like inspect-delay 5s")
			return nil, 0, 0, e.err()
		}
		d, err := parseDuration(ws[1].Text)
		if err != nil {
			e.at(ws[1].Pos(), "%v", err)
		}
		return nil, 0, d, e.err()
	case "connection":
		rs = TCPConnection
	case "content":
		rs = TCPContent
	case "session":
		rs = TCPSession
	default:
		e.at(ws[0].Pos(), "tcp-request takes connection, session, content or inspect-delay, found %q", ws[0].Text)
		return nil, 0, 0, e.err()
	}
	var also Where
	if http && rs == TCPContent {
		also = AtRequest
	}
	r := parseRule(&e, ws, rs, 1, also)
	return r, rs, 0, e.err()
}

// Target is a line that names something and may have a condition:
// use_backend NAME [if COND], use-server NAME [if COND], and the
// conditions alone of force-persist, ignore-persist and monitor fail.
type Target struct {
	Pos  int
	Name *Format // a backend or server; a format for use_backend %[...]
	Cond *Cond
}

// ParseTarget parses "NAME [if|unless COND]"; with nameless, the line is
// a condition alone ("if COND").
func ParseTarget(line string, where Where, nameless bool) (*Target, error) {
	ws, err := Split(line)
	if err != nil {
		return nil, err
	}
	var e errs
	args, cond := splitCond(&e, ws, where)
	t := &Target{Cond: cond}
	switch {
	case nameless && len(args) > 0:
		e.at(args[0].Pos(), "unexpected %q: expected if or unless and a condition", args[0].Text)
	case nameless && cond == nil:
		e.at(0, "a condition is needed: if or unless and ACLs")
	case !nameless && len(args) == 0:
		e.at(0, "a name is needed before the condition")
	case !nameless:
		t.Pos = args[0].Pos()
		t.Name = parseFormat(&e, args[0], where, false)
		if len(args) > 1 {
			e.at(args[1].Pos(), "unexpected %q after the name (a condition starts with if or unless)", args[1].Text)
		}
	}
	return t, e.err()
}

// Stick is a stick rule: "on|match|store-request|store-response EXPR
// [table NAME] [if|unless COND]".
type Stick struct {
	Pos      int
	Kind     string
	Expr     *Sample
	Table    string
	TablePos int
	Cond     *Cond
}

// StickKinds are the words after "stick", store-response last (it alone
// reads the response).
var StickKinds = []string{"on", "match", "store-request", "store-response"}

// ParseStick parses a stick line (the word "stick" left out).
func ParseStick(line string) (*Stick, error) {
	ws, err := Split(line)
	if err != nil {
		return nil, err
	}
	var e errs
	if len(ws) == 0 {
		e.at(0, "the stick line is empty: on, match, store-request or store-response and a sample")
		return nil, e.err()
	}
	s := &Stick{Pos: ws[0].Pos(), Kind: ws[0].Text}
	where := AtRequest
	switch s.Kind {
	case StickKinds[0], StickKinds[1], StickKinds[2]:
	case StickKinds[3]:
		where = AtResponse
	default:
		e.at(ws[0].Pos(), "stick takes on, match, store-request or store-response, found %q", s.Kind)
		return nil, e.err()
	}
	args, cond := splitCond(&e, ws[1:], where|AtContent)
	s.Cond = cond
	a := argReader{e: &e, ws: args, at: ws[0]}
	w := a.word()
	if w.Text != "" {
		s.Expr = parseSample(&e, w, 0)
	}
	if a.peek("table") {
		a.word()
		t := a.word()
		s.Table, s.TablePos = t.Text, t.Pos()
	}
	a.done()
	return s, e.err()
}
