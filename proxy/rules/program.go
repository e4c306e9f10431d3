package rules

import (
	"regexp"

	"github.com/halo-lb/halo/config/lang"
)

// Verdict is what a rule set decided.
type Verdict uint8

// The verdicts. Continue: every rule ran and none ended the set.
const (
	Continue Verdict = iota
	Allow            // allow, accept: stop this rule set, go on
	Deny             // deny, reject, tarpit: answer Rule.Status (or close, in mode tcp)
	Tarpit
	Return   // return: answer with the rule's reply
	Redirect // redirect: answer with Location
	Auth     // auth: 401 with a realm
	// Timeout: the rules ran past the request's deadline (Txn.SetDeadline)
	// and stopped where they were; the request is answered with a 500.
	Timeout
)

// Rule is a compiled rule.
type Rule struct {
	action string
	cond   *Cond
	name   []byte
	// nameBit is name's signature bit (txn.go), computed once.
	nameBit uint
	value   *format
	re      *regexp.Regexp
	expr    *sample
	match   lang.Method
	// Status is the status deny, tarpit, return and redirect answer
	// with, and set-status sets.
	Status int
	// reason is the phrase set-status without a reason writes: HAProxy's
	// standard one for Status, built once here.
	reason   []byte
	reply    *reply
	redirect *redirect
	varSlot  int
	proc     *procVar // set-var's and unset-var's of a proc. variable
	logLevel int8
	stick    *stickRule
	// capSlot is capture's slot, of the response's slots when
	// capResponse.
	capSlot     int
	capResponse bool
	// Realm is auth's realm.
	Realm string
}

type reply struct {
	contentType []byte
	body        *format
	hdrs        []replyHeader
}

type replyHeader struct {
	name  []byte
	value *format
}

type redirect struct {
	kind        string
	target      *format
	dropQuery   bool
	appendSlash bool
	ignoreEmpty bool
	setCookie   []byte
	clearCookie []byte
}

// Program is a compiled rule set.
type Program struct{ rules []Rule }

// Empty reports whether the program has no rule, so that the proxy can
// skip preparing a Txn for it.
func (p *Program) Empty() bool { return p == nil || len(p.rules) == 0 }

// CompileRules builds a rule set over the section's ACLs. files holds the
// contents of the files that return and deny read (lang.Reply.File), by
// path.
func (c *Compiler) CompileRules(lrs []*lang.Rule, acls ACLs, files map[string][]byte) (*Program, error) {
	p := &Program{}
	for _, lr := range lrs {
		r, err := c.compileRule(lr, acls, files)
		if err != nil {
			return nil, err
		}
		p.rules = append(p.rules, r)
	}
	return p, nil
}

func (c *Compiler) compileRule(lr *lang.Rule, acls ACLs, files map[string][]byte) (Rule, error) {
	r := Rule{action: lr.Action, Status: lr.Status, match: lr.Match, varSlot: -1, Realm: lr.Name}
	var err error
	if r.cond, err = c.CompileCond(lr.Cond, acls); err != nil {
		return r, err
	}
	r.name = []byte(lr.Name)
	r.nameBit = nameBit(r.name)
	if r.value, err = c.compileFormat(lr.Value); err != nil {
		return r, err
	}
	if lr.Regex != nil {
		expr := lr.Regex.Text
		if r.re, err = regexp.Compile(expr); err != nil {
			return r, &PosError{lr.Regex.Pos, err.Error()}
		}
	}
	if lr.Expr != nil {
		if r.expr, err = c.compileSample(lr.Expr); err != nil {
			return r, err
		}
	}
	switch lr.Action {
	case "set-var", "set-var-fmt", "unset-var":
		if isProc(lr.Name) {
			r.proc = c.procVar(lr.Name)
		} else {
			r.varSlot = c.varSlot(lr.Name)
		}
	case "track-sc0", "track-sc1", "track-sc2", "sc-inc-gpc0", "sc-inc-gpc1", "sc-clr-gpc0":
		if err := c.compileStickRule(lr, &r); err != nil {
			return r, err
		}
	case "capture":
		r.capSlot, r.capResponse = lr.Slot, lr.Response
	case "set-status":
		if r.value == nil {
			r.reason = []byte(reasonPhrase(r.Status))
		}
	case "set-log-level":
		// syslog's levels as zap's: HAProxy's logs go to syslog at the
		// level, halo's access lines to the access logger at it.
		r.logLevel = map[string]int8{"silent": LogSilent, "emerg": 2, "alert": 2, "crit": 2, "err": 2,
			"warning": 1, "notice": 0, "info": 0, "debug": -1}[lr.Name]
	case "del-header":
		if r.match == lang.MatchReg {
			if r.re, err = regexp.Compile(lr.Name); err != nil {
				return r, &PosError{lr.NamePos, err.Error()}
			}
		}
	}
	if lr.Reply != nil {
		rep := &reply{contentType: []byte(lr.Reply.ContentType)}
		switch {
		case lr.Reply.Body != nil:
			if rep.body, err = c.compileFormat(lr.Reply.Body); err != nil {
				return r, err
			}
		case lr.Reply.File != nil:
			rep.body = &format{lit: files[lr.Reply.File.Path], isLit: true}
		}
		for _, h := range lr.Reply.Hdrs {
			f, err := c.compileFormat(h.Value)
			if err != nil {
				return r, err
			}
			rep.hdrs = append(rep.hdrs, replyHeader{name: []byte(h.Name), value: f})
		}
		r.reply = rep
	}
	if rd := lr.Redirect; rd != nil {
		r.redirect = &redirect{kind: rd.Type, dropQuery: rd.DropQuery, appendSlash: rd.AppendSlash, ignoreEmpty: rd.IgnoreEmpty}
		if r.redirect.target, err = c.compileFormat(rd.Target); err != nil {
			return r, err
		}
		// The Set-Cookie values are constant, as HAProxy 2.6.12 writes them
		// (the name as given, "=" or not): built once here.
		if rd.SetCookie != "" {
			r.redirect.setCookie = []byte(rd.SetCookie + "; path=/;")
		}
		if rd.ClearCookie != "" {
			r.redirect.clearCookie = []byte(rd.ClearCookie + "; path=/; Max-Age=0;")
		}
	}
	return r, nil
}

// Run evaluates the rules in order until one ends the set, and returns
// the verdict with the rule that gave it (nil for Continue).
func (p *Program) Run(t *Txn) (Verdict, *Rule) {
	if p == nil {
		return Continue, nil
	}
	for i := range p.rules {
		r := &p.rules[i]
		ok := r.cond.Eval(t)
		if t.expired {
			// The condition's answer is incomplete: nothing is applied.
			return Timeout, r
		}
		if !ok {
			continue
		}
		if v := r.apply(t); v != Continue || t.expired {
			if t.expired {
				return Timeout, r
			}
			return v, r
		}
	}
	return Continue, nil
}

// setVar stores v in the rule's variable: the process-wide one, or t's
// slot.
func (r *Rule) setVar(t *Txn, v *value) {
	if r.proc != nil {
		r.proc.set(v)
		return
	}
	t.setVar(r.varSlot, v)
}

// apply does what the rule does; final actions return their verdict.
func (r *Rule) apply(t *Txn) Verdict {
	switch r.action {
	case "allow", "accept":
		return Allow
	case "deny", "reject":
		return Deny
	case "tarpit":
		return Tarpit
	case "return":
		return Return
	case "redirect":
		if r.redirect.ignoreEmpty && r.redirect.emptyTarget(t) {
			return Continue // ignore-empty: as if the condition were false
		}
		return Redirect
	case "auth":
		return Auth
	case "set-var":
		v := t.push()
		mark := len(t.buf)
		if r.expr.eval(t, 0, v) {
			r.setVar(t, v)
		}
		t.buf = t.buf[:mark]
		t.pop(v)
	case "set-var-fmt":
		mark := len(t.buf)
		v := t.push()
		v.setStr(r.value.eval(t))
		r.setVar(t, v)
		t.buf = t.buf[:mark]
		t.pop(v)
	case "set-log-level":
		t.LogLevel = r.logLevel
	case "track-sc0", "track-sc1", "track-sc2":
		r.track(t)
	case "sc-inc-gpc0", "sc-inc-gpc1", "sc-clr-gpc0":
		r.gpc(t)
	case "capture":
		r.capture(t)
	case "expect-proxy":
		t.ExpectProxy = true
	case "unset-var":
		if r.proc != nil {
			r.proc.unset()
		} else if s := t.varAt(r.varSlot); s != nil {
			s.set = false
		}
	default:
		if t.Ctx != nil {
			r.applyHTTP(t)
		}
	}
	return Continue
}
