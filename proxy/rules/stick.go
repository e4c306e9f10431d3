package rules

import (
	"fmt"
	"strings"

	"github.com/halo-lb/halo/config"
	"github.com/halo-lb/halo/config/lang"
	"github.com/halo-lb/halo/sticktable"
)

// This file is the rules' side of stick tables: track-sc0/1/2 and
// sc-inc-gpc0/1, sc-clr-gpc0 as actions, the sc_*, scN_* and src_*
// fetches, and a Txn's tracked entries. An entry a rule tracks is
// referenced (neither evicted nor expired) until Untrack.

// tracked is one tracking counter of a Txn.
type tracked struct {
	e   *sticktable.Entry
	t   *sticktable.Table
	key sticktable.Key
	// own holds a string key's bytes, which key refers to: the Txn's
	// buffer they were computed in is reused.
	own []byte
	// counted: the request has been counted in e's http_req_cnt.
	counted bool
}

// stickFetch is a compiled stick-table fetch.
type stickFetch struct {
	data    sticktable.Data
	special string // get_gpc0, inc_gpc0, ..., trackers, tracked, kbytes_in/out; "" for plain data
	counter int    // 0-2, or lang.CounterArg / lang.CounterSrc
	table   *sticktable.Table
	// creates: src_inc_gpc0/1 and src_clr_gpc0/1 create the client's
	// entry when it has none, as HAProxy's do (they count in it); every
	// other src_* fetch only reads.
	creates bool
}

// stickData maps lang's stick data names to the table's data, and what
// the special ones read.
var stickData = map[string]sticktable.Data{
	"conn_cur": sticktable.ConnCur, "conn_cnt": sticktable.ConnCnt, "conn_rate": sticktable.ConnRate,
	"sess_cnt": sticktable.SessCnt, "sess_rate": sticktable.SessRate,
	"http_req_cnt": sticktable.HTTPReqCnt, "http_req_rate": sticktable.HTTPReqRate,
	"http_err_cnt": sticktable.HTTPErrCnt, "http_err_rate": sticktable.HTTPErrRate,
	"bytes_in_cnt": sticktable.BytesInCnt, "bytes_in_rate": sticktable.BytesInRate,
	"bytes_out_cnt": sticktable.BytesOutCnt, "bytes_out_rate": sticktable.BytesOutRate,
	"kbytes_in": sticktable.BytesInCnt, "kbytes_out": sticktable.BytesOutCnt,
	"get_gpc0": sticktable.GPC0, "inc_gpc0": sticktable.GPC0, "clr_gpc0": sticktable.GPC0, "gpc0_rate": sticktable.GPC0Rate,
	"get_gpc1": sticktable.GPC1, "inc_gpc1": sticktable.GPC1, "clr_gpc1": sticktable.GPC1,
}

// table resolves a table argument: the named section's, else the
// section being compiled's.
func (c *Compiler) table(name string, pos int) (*sticktable.Table, error) {
	if name == "" {
		name = c.Section
	}
	t := c.Names.Tables[name]
	if t == nil {
		return nil, &PosError{pos, fmt.Sprintf("section %q has no stick-table", name)}
	}
	return t, nil
}

func (c *Compiler) compileStickFetch(ls *lang.Sample, f *fetch) error {
	d := ls.Fetch.Stick
	sf := &stickFetch{counter: d.Counter}
	switch d.Data {
	case "trackers", "tracked", "get_gpc0", "inc_gpc0", "clr_gpc0", "get_gpc1", "inc_gpc1", "clr_gpc1", "kbytes_in", "kbytes_out":
		sf.special = d.Data
	}
	sf.data = stickData[d.Data]
	tableArg := 0
	if d.Counter == lang.CounterArg {
		n := ls.Args[0].Int
		if n < 0 || n > 2 {
			return &PosError{ls.Args[0].Pos, "the tracking counter is 0, 1 or 2"}
		}
		sf.counter = int(n)
		tableArg = 1
	}
	if a := ls.Args[tableArg]; a.Set {
		t, err := c.table(a.Text, a.Pos)
		if err != nil {
			return err
		}
		sf.table = t
	} else if d.Counter == lang.CounterSrc {
		t, err := c.table("", ls.Pos)
		if err != nil {
			return err
		}
		sf.table = t
	}
	sf.creates = d.Counter == lang.CounterSrc && (strings.HasPrefix(d.Data, "inc_") || strings.HasPrefix(d.Data, "clr_"))
	f.stick, f.fn = sf, fetchStick
	return nil
}

// fetchStick reads a stick-table entry's data: the entry a counter
// tracks (in its own table, or the key it tracks looked up in another),
// or the client address's in a table (src_*). As HAProxy 2.6's fetches
// (stick_table.c): an untracked counter gives no value; no entry (a
// client address without one, a tracked key missing from another table)
// reads as 0, whatever the table stores; data the table does not store
// on an entry that exists gives no value. src_inc_* and src_clr_* create
// the entry first (see stickFetch.creates).
func fetchStick(t *Txn, f *fetch, _ int, out *value) bool {
	sf := f.stick
	now := sticktable.Now()
	var e *sticktable.Entry
	switch {
	case sf.counter == lang.CounterSrc:
		k := sf.table.AddrKey(t.Src.Addr())
		if sf.creates {
			e = sf.table.Touch(k, now) // nil when the table is full (nopurge): 0, as HAProxy
		} else {
			e = sf.table.Get(k, now)
		}
		if e == nil {
			if sf.special == "tracked" {
				out.setBool(false)
			} else {
				out.setInt(0)
			}
			return true
		}
	default:
		tr := t.counter(sf.counter)
		if sf.special == "tracked" {
			out.setBool(tr.e != nil)
			return true
		}
		if tr.e == nil {
			return false
		}
		e = tr.e
		if sf.table != nil && sf.table != tr.t {
			// The key the counter tracks, in another table.
			if e = sf.table.Get(tr.key, now); e == nil {
				out.setInt(0)
				return true
			}
		}
	}
	switch sf.special {
	case "trackers":
		out.setInt(int64(e.Refs()))
		return true
	case "inc_gpc0":
		return e.Stores(sf.data) && setUint(out, e.IncGPC0(now))
	case "clr_gpc0":
		return e.Stores(sf.data) && setUint(out, e.ClearGPC0(now))
	case "inc_gpc1":
		return e.Stores(sf.data) && setUint(out, e.IncGPC1(now))
	case "clr_gpc1":
		return e.Stores(sf.data) && setUint(out, e.ClearGPC1(now))
	case "kbytes_in", "kbytes_out":
		return e.Stores(sf.data) && setUint(out, e.Value(sf.data, now)/1024)
	}
	return e.Stores(sf.data) && setUint(out, e.Value(sf.data, now))
}

func setUint(out *value, v uint64) bool {
	out.setInt(int64(v))
	return true
}

// stickRule is a compiled track-sc or sc-*-gpc rule.
type stickRule struct {
	table   *sticktable.Table
	counter int
}

func (c *Compiler) compileStickRule(lr *lang.Rule, r *Rule) error {
	r.stick = &stickRule{counter: lr.Counter}
	if lr.Action == "track-sc0" || lr.Action == "track-sc1" || lr.Action == "track-sc2" {
		t, err := c.table(lr.Table, lr.TablePos)
		if err != nil {
			return err
		}
		r.stick.table = t
	}
	return nil
}

// track starts tracking the rule's key in counter n, unless n tracks
// already (HAProxy ignores the rule then). An HTTP request is counted
// at once when it has begun (an http-request or http-response rule), so
// that a rate limit after it sees this request too; tracked by
// tcp-request content rules, it is counted when it passes them
// (BeginRequest), as HAProxy counts it when its HTTP processing starts,
// so that a request they reject is not counted.
func (r *Rule) track(t *Txn) {
	sr := r.stick
	if t.counter(sr.counter).e != nil {
		return // tracked already, by this request or its connection, as HAProxy ignores it
	}
	tr := &t.sc[sr.counter]
	v := t.push()
	defer t.pop(v)
	mark := len(t.buf)
	defer func() { t.buf = t.buf[:mark] }()
	if !r.expr.eval(t, 0, v) {
		return
	}
	if ty := sr.table.Type(); ty == config.StickString || ty == config.StickBinary {
		v.asStr(t)
		tr.own = append(tr.own[:0], v.b...)
		v.setStr(tr.own)
	}
	k := keyOf(sr.table, t, v)
	now := sticktable.Now()
	e := sr.table.Track(k, now)
	if e == nil {
		return // a key of the wrong type, or the table full (nopurge)
	}
	tr.e, tr.t, tr.key = e, sr.table, k
	// HAProxy starts a tracked stream's counters whatever the rule set:
	// conn_cur (until the request or connection ends), conn_cnt and
	// conn_rate count it; an HTTP request counts as one too.
	e.ConnStart(now)
	if t.Ctx != nil {
		if t.reqBegun {
			e.HTTPRequest(now)
			tr.counted = true
		}
		if t.Response && t.errCounted {
			// An http-response track-sc after the server's 4xx was
			// counted: HAProxy counts it in the new entry too.
			e.HTTPError(now)
		}
	} else {
		e.Session(now)
	}
}

// keyOf makes v a key of table st's type.
func keyOf(st *sticktable.Table, t *Txn, v *value) sticktable.Key {
	switch st.Type() {
	case config.StickIP, config.StickIPv6:
		if v.asIP() {
			return st.AddrKey(v.ip)
		}
	case config.StickInteger:
		if v.asInt() {
			return st.IntKey(v.i)
		}
	default:
		v.asStr(t)
		return st.BytesKey(v.b)
	}
	return sticktable.Key{}
}

// gpc is sc-inc-gpc0/1 and sc-clr-gpc0 on the entry counter n tracks.
func (r *Rule) gpc(t *Txn) {
	e := t.counter(r.stick.counter).e
	if e == nil {
		return
	}
	now := sticktable.Now()
	switch r.action {
	case "sc-inc-gpc0":
		e.IncGPC0(now)
	case "sc-inc-gpc1":
		e.IncGPC1(now)
	case "sc-clr-gpc0":
		e.ClearGPC0(now)
	}
}

// Untrack ends the Txn's tracking: a request's answer is counted (as an
// HTTP error when HTTPErr says so, in mode http) with the bytes it moved,
// a connection's end in mode tcp, and the entries are released. The
// proxy calls it when the request (mode http) or connection (mode tcp)
// ends; a second call for the same request counts nothing again.
func (t *Txn) Untrack(in, out int64) {
	if t.untracked {
		return
	}
	t.untracked = true
	if c := t.Conn; c != nil && c.tracks() && t.Ctx != nil {
		// The connection's counters count each of its requests' answers
		// and bytes; they are released with the connection.
		now := sticktable.Now()
		for i := range c.sc {
			if e := c.sc[i].e; e != nil {
				countEnd(e, true, t.HTTPErr && !t.errCounted, in, out, now)
			}
		}
	}
	if !t.tracks() {
		return // nothing tracked: no clock read
	}
	now := sticktable.Now()
	for i := range t.sc {
		tr := &t.sc[i]
		if tr.e == nil {
			continue
		}
		countEnd(tr.e, t.Ctx != nil, t.HTTPErr && !t.errCounted, in, out, now)
		tr.e.ConnEnd(now)
		tr.e.Release(now)
		*tr = tracked{own: tr.own[:0]}
	}
}

// CountHTTPError counts the request as an HTTP error in what it tracks
// now, not at its end, as HAProxy counts a server's 4xx when the
// response's head arrives: the http-response rules that read
// sc_http_err_cnt then see it. Untrack does not count it again.
func (t *Txn) CountHTTPError() {
	if t.errCounted || t.untracked {
		return
	}
	t.HTTPErr, t.errCounted = true, true
	conn := t.Conn != nil && t.Conn.tracks() && t.Ctx != nil
	if !conn && !t.tracks() {
		return
	}
	now := sticktable.Now()
	if conn {
		for i := range t.Conn.sc {
			if e := t.Conn.sc[i].e; e != nil {
				e.HTTPError(now)
			}
		}
	}
	if t.Ctx != nil {
		for i := range t.sc {
			if e := t.sc[i].e; e != nil {
				e.HTTPError(now)
			}
		}
	}
}

// CountsBytes reports whether Untrack counts bytes: the request or its
// connection tracks a counter. The proxy measures what it would pass
// only then.
func (t *Txn) CountsBytes() bool {
	return !t.untracked && (t.tracks() || t.Conn != nil && t.Conn.tracks() && t.Ctx != nil)
}

// countEnd counts the end of a request (an HTTP error or not) or a
// connection in e, with the bytes they moved.
func countEnd(e *sticktable.Entry, request, httpErr bool, in, out int64, now int64) {
	if request && httpErr {
		e.HTTPError(now)
	}
	if in > 0 {
		e.BytesIn(in, now)
	}
	if out > 0 {
		e.BytesOut(out, now)
	}
}

// tracks reports whether t tracks a counter.
func (t *Txn) tracks() bool {
	return t.sc[0].e != nil || t.sc[1].e != nil || t.sc[2].e != nil
}

// counter is tracking counter n as a request sees it: its own, else its
// connection's.
func (t *Txn) counter(n int) *tracked {
	if tr := &t.sc[n]; tr.e != nil || t.Conn == nil {
		return tr
	}
	return &t.Conn.sc[n]
}

// BeginRequest counts a request in the counters its connection tracks,
// as HAProxy counts each request of a session in them, and in those its
// tcp-request content rules tracked; from then on, a rule that tracks
// counts the request at once. The proxy calls it when the request has
// passed the frontend's tcp-request content rules, with Conn set, and
// again when it has passed the backend's (after HoldRequestCount).
func (t *Txn) BeginRequest() {
	t.reqBegun = true
	c := t.Conn
	conn := !t.connCounted && c != nil && c.tracks()
	if !conn && !t.tracks() {
		return
	}
	t.connCounted = true
	now := sticktable.Now()
	if conn {
		for i := range c.sc {
			if e := c.sc[i].e; e != nil {
				e.HTTPRequest(now)
			}
		}
	}
	for i := range t.sc {
		if tr := &t.sc[i]; tr.e != nil && !tr.counted {
			tr.e.HTTPRequest(now)
			tr.counted = true
		}
	}
}

// HoldRequestCount makes the tracking that follows count the request
// only at the next BeginRequest: the proxy calls it before a backend's
// tcp-request content rules, whose tracking HAProxy counts when the
// backend's HTTP processing starts (not for a request they reject).
func (t *Txn) HoldRequestCount() { t.reqBegun = false }

// Stick is a compiled stick rule (stick on, match, store-request,
// store-response): its condition, the key's expression and table.
type Stick struct {
	Kind  string
	cond  *Cond
	expr  *sample
	table *sticktable.Table
}

// CompileStick builds a stick rule over the section's ACLs; its table is
// the one named, else the section's own.
func (c *Compiler) CompileStick(ls *lang.Stick, acls ACLs) (*Stick, error) {
	s := &Stick{Kind: ls.Kind}
	var err error
	if s.cond, err = c.CompileCond(ls.Cond, acls); err != nil {
		return nil, err
	}
	if s.expr, err = c.compileSample(ls.Expr); err != nil {
		return nil, err
	}
	if s.table, err = c.table(ls.Table, ls.TablePos); err != nil {
		return nil, err
	}
	return s, nil
}

// Matches reports whether the rule is a match rule (stick match, stick
// on), a store-request one (stick store-request, stick on), or a
// store-response one.
func (s *Stick) Matches() bool       { return s.Kind == "on" || s.Kind == "match" }
func (s *Stick) StoresRequest() bool { return s.Kind == "on" || s.Kind == "store-request" }

// Server is the server id the key of t has in the rule's table (0: none,
// or the rule's condition does not hold).
func (s *Stick) Server(t *Txn) int {
	if !s.cond.Eval(t) {
		return 0
	}
	k, ok := s.key(t)
	if !ok {
		return 0
	}
	e := s.table.Get(k, sticktable.Now())
	if e == nil {
		return 0
	}
	id, _ := e.ServerID()
	return id
}

// Store records that the key of t goes to server id (1-based), when the
// rule's condition holds.
func (s *Stick) Store(t *Txn, id int) {
	if !s.cond.Eval(t) {
		return
	}
	k, ok := s.key(t)
	if !ok {
		return
	}
	now := sticktable.Now()
	if e := s.table.Touch(k, now); e != nil {
		e.SetServerID(id, now)
	}
}

func (s *Stick) key(t *Txn) (sticktable.Key, bool) {
	v := t.push()
	defer t.pop(v)
	mark := len(t.buf)
	defer func() { t.buf = t.buf[:mark] }()
	if !s.expr.eval(t, 0, v) {
		return sticktable.Key{}, false
	}
	k := keyOf(s.table, t, v)
	return k, k.Valid()
}
