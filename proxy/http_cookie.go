package proxy

import (
	"bytes"
	"fmt"
	"sync"
	"time"

	"github.com/halo-lb/halo/balancer"
	"github.com/halo-lb/halo/config"
	"github.com/halo-lb/halo/proxy/rules"

	"github.com/valyala/fasthttp"
)

// persistence is a backend's cookie persistence ("cookie"), precomputed at
// build so that a request with a valid cookie costs a lookup and no
// allocation.
//
// Concurrency: immutable once built.
type persistence struct {
	cfg   *config.Cookie
	name  string
	nameB []byte
	// values are the servers' cookie values by member ("": none).
	values [][]byte
	// inserted are the Set-Cookie values insert mode sends, by member:
	// "NAME=VALUE; path=/" and the attributes, or for a server without
	// a value the deletion HAProxy sends. Only used without dates.
	inserted [][]byte
	// attrs is what follows "; path=/": domains, HttpOnly, Secure, attr.
	attrs      []byte
	persist    bool // option persist
	redispatch bool
	// force and ignore are force-persist and ignore-persist.
	force, ignore []*rules.Cond
	dated         bool // maxidle or maxlife: values carry dates
	maxIdle       int64
	maxLife       int64 // seconds
}

// cookieState is one request's persistence, for the response and the
// access log.
type cookieState struct {
	member int32 // the server the cookie chose, or -1
	// req and resp are HAProxy's cookie letters of the termination state:
	// what the client's cookie did (N, I, D, V, E, O, U) and what was done
	// with the response's (N, I, U, D, P, R).
	req, resp byte
	ignored   bool // ignore-persist matched
	forced    bool // force-persist matched
	// first and last are the dates the cookie carried, Unix seconds (0:
	// none), in 32 bits (until 2106) to keep handleHTTP's frame small.
	first, last uint32
}

var setCookieKey = []byte("Set-Cookie")

// The deletion insert mode sends for a server without a cookie value, so
// that a client does not stick to it (HAProxy's text).
const cookieDeletion = "=; Expires=Thu, 01-Jan-1970 00:00:01 GMT; path=/"

func newPersistence(be *backend, c *rules.Compiler) (*persistence, error) {
	bc := be.cfg
	ck := &persistence{cfg: bc.Cookie, name: bc.Cookie.Name, nameB: []byte(bc.Cookie.Name), persist: bc.Options.Persist, redispatch: bc.Options.Redispatch}
	var attrs []byte
	for _, d := range ck.cfg.Domains {
		attrs = append(append(attrs, "; domain="...), d...)
	}
	if ck.cfg.HTTPOnly {
		attrs = append(attrs, "; HttpOnly"...)
	}
	if ck.cfg.Secure {
		attrs = append(attrs, "; Secure"...)
	}
	for _, a := range ck.cfg.Attrs {
		attrs = append(append(attrs, "; "...), a...)
	}
	ck.attrs = attrs
	ck.maxIdle, ck.maxLife = int64(ck.cfg.MaxIdle/time.Second), int64(ck.cfg.MaxLife/time.Second)
	ck.dated = ck.maxIdle > 0 || ck.maxLife > 0
	for _, srv := range be.servers {
		v := []byte(srv.cfg.Cookie)
		if len(v) == 0 {
			v = nil
		}
		ck.values = append(ck.values, v)
		var ins []byte
		if v == nil {
			ins = append([]byte(ck.name), cookieDeletion...)
		} else {
			ins = append(append(append([]byte(ck.name), '='), v...), "; path=/"...)
		}
		ck.inserted = append(ck.inserted, append(ins, attrs...))
	}
	if p := bc.Persist; p != nil {
		for _, lc := range p.Force {
			cond, err := c.CompileCond(lc, rules.ACLs(p.ACLs))
			if err != nil {
				return nil, fmt.Errorf("force-persist: %w", err)
			}
			ck.force = append(ck.force, cond)
		}
		for _, lc := range p.Ignore {
			cond, err := c.CompileCond(lc, rules.ACLs(p.ACLs))
			if err != nil {
				return nil, fmt.Errorf("ignore-persist: %w", err)
			}
			ck.ignore = append(ck.ignore, cond)
		}
	}
	return ck, nil
}

// hasConds reports whether the persistence reads the request through
// conditions, which need the rules' Txn.
func (ck *persistence) hasConds() bool { return len(ck.force)+len(ck.ignore) > 0 }

// running is HAProxy's "not STOPPED": UP (by checks and agent) and not in
// maintenance. A draining server, or one whose weight is 0, is running and
// keeps its persistent clients.
func running(st *balancer.Server) bool {
	return st.Up() && st.AgentUp() && st.Admin() != balancer.AdminMaint
}

// acquire reads the request's persistence cookie and, when it names a
// server that may take the request, takes a slot there: ok reports that
// it did (or failed for good, with err). Otherwise the request is
// balanced as usual, and the response moves the client. It strips what
// indirect and prefix keep from the server.
func (ck *persistence) acquire(be *backend, ctx *fasthttp.RequestCtx, ex *exchange) (idx int, ok bool, err error) {
	st := &ex.ck
	*st = cookieState{member: -1, req: 'N', resp: 'N'}
	if t := ex.txn; t != nil && ck.hasConds() {
		st.ignored = anyCond(ck.ignore, t)
		st.forced = !st.ignored && anyCond(ck.force, t)
		if t.Expired() {
			return -1, true, errRulesTimedOut
		}
	}
	h := &ctx.Request.Header
	v := h.Cookie(ck.name)
	if v == nil {
		return -1, false, nil
	}
	mode := ck.cfg.Mode
	sv, rest := v, []byte(nil) // the server's part, and prefix mode's original value
	if mode == config.CookiePrefix {
		if i := bytes.IndexByte(v, '~'); i >= 0 {
			sv, rest = v[:i], v[i+1:]
		}
	} else if i := bytes.IndexByte(v, '|'); i >= 0 {
		sv = v[:i]
		last, first := cookieDates(v[i+1:])
		st.last, st.first = uint32(last), uint32(first)
	}
	now, first, last := time.Now().Unix(), int64(st.first), int64(st.last)
	switch {
	case first != 0 && ck.maxLife > 0 && (now-first > ck.maxLife || first-now > 86400):
		st.req, sv = 'O', nil
		st.first, st.last = 0, 0
	case last != 0 && ck.maxIdle > 0 && (now-last > ck.maxIdle || last-now > 86400):
		st.req, sv = 'E', nil
		st.first, st.last = 0, 0
	}
	chosen := -1
	if len(sv) > 0 && !st.ignored {
		for i, val := range ck.values {
			if val == nil || !bytes.Equal(val, sv) {
				continue
			}
			if up := running(be.servers[i].state); up || ck.persist || st.forced {
				chosen = i
				st.req = 'V'
				if !up {
					st.req = 'D'
				}
				break
			}
			st.req = 'D' // down: another server may share the value
		}
	}
	if chosen < 0 && st.req == 'N' {
		st.req = 'I'
		if st.ignored {
			st.req = 'U'
		}
	}
	switch {
	case rest != nil:
		// The server sees its own cookie, without halo's prefix. The
		// value moves within its own buffer, which fasthttp copies
		// onto itself.
		n := copy(v, rest)
		h.SetCookieBytesKV(ck.nameB, v[:n])
	case mode == config.CookieInsert && ck.cfg.Indirect:
		h.DelCookie(ck.name)
	}
	if chosen < 0 {
		return -1, false, nil
	}
	waited, err := be.queue.acquireDirect(chosen)
	ex.queued = waited
	switch {
	case err == nil:
		st.member = int32(chosen)
		return chosen, true, nil
	case err == errLeftPool, err == errQueueFull && ck.redispatch && !st.forced:
		// HAProxy redispatches a persistent request whose server's queue
		// is full under option redispatch; the client moves.
		st.req = 'D'
		return -1, false, nil
	}
	return -1, true, err
}

func anyCond(conds []*rules.Cond, t *rules.Txn) bool {
	for _, c := range conds {
		if c.Eval(t) {
			return true
		}
	}
	return false
}

// respond applies persistence to the server's response: the server's own
// cookie of the name is deleted, rewritten or prefixed as the mode says,
// and insert mode sets the cookie when the client did not present the
// right one (or its dates need refreshing).
func (ck *persistence) respond(ctx *fasthttp.RequestCtx, ex *exchange, streamed bool) {
	st, srv := &ex.ck, ex.srv
	if srv == nil {
		return
	}
	if streamed {
		// The stream writes the log line from its own copy.
		if s, ok := ctx.Response.BodyStream().(*bodyStream); ok {
			defer func() { s.ex.ck = ex.ck }()
		}
	}
	m := srv.member
	direct := int(st.member) == m
	if st.member >= 0 && !direct && st.req == 'V' {
		st.req = 'D' // a retry moved it to another server
	}
	h := &ctx.Response.Header
	cfg := ck.cfg
	found := false
	if !st.ignored {
		if sc := h.PeekCookie(ck.name); sc != nil {
			found, st.resp = true, 'P'
			switch {
			case cfg.Preserve:
			case cfg.Mode == config.CookieInsert || direct && cfg.Indirect:
				h.DelCookie(ck.name)
				st.resp = 'D'
			case ck.values[m] != nil && (cfg.Mode == config.CookieRewrite || cfg.Mode == config.CookiePrefix):
				ck.rewrite(h, sc, ck.values[m])
				st.resp = 'R'
			}
		}
	}
	if cfg.Mode != config.CookieInsert || st.ignored || found && cfg.Preserve ||
		cfg.PostOnly && !ctx.Request.Header.IsPost() {
		return
	}
	now, last := time.Now().Unix(), int64(st.last)
	refresh := ck.maxIdle > 0 || last != 0
	if direct && !(refresh && (last == 0 || last < now)) &&
		!(ck.maxLife > 0 && st.first == 0) && !(ck.maxLife == 0 && st.first != 0) {
		return
	}
	if ck.dated && ck.values[m] != nil {
		buf := cookieBufs.Get().(*[]byte)
		b := append(append(append((*buf)[:0], ck.name...), '='), ck.values[m]...)
		b = appendCookieDate(append(b, '|'), (now+3)>>2)
		if ck.maxLife > 0 {
			first := (now + 3) >> 2
			if st.first != 0 {
				first = int64(st.first) >> 2
			}
			b = appendCookieDate(append(b, '|'), first)
		}
		b = append(append(b, "; path=/"...), ck.attrs...)
		h.AddBytesKV(setCookieKey, b)
		*buf = b
		cookieBufs.Put(buf)
	} else {
		h.AddBytesKV(setCookieKey, ck.inserted[m])
	}
	st.resp = 'I'
	if direct && ck.values[m] != nil {
		st.resp = 'U' // the same server: only the dates changed
	}
	if cfg.NoCache && cacheable(ctx) {
		h.Add("Cache-Control", "private")
	}
}

// rewrite replaces the value of the server's Set-Cookie sc ("NAME=V;
// attributes") with the server's cookie value (rewrite) or prefixes it
// with it and '~' (prefix).
func (ck *persistence) rewrite(h *fasthttp.ResponseHeader, sc, value []byte) {
	eq := bytes.IndexByte(sc, '=')
	if eq < 0 {
		return
	}
	end := bytes.IndexByte(sc[eq:], ';')
	if end < 0 {
		end = len(sc)
	} else {
		end += eq
	}
	buf := cookieBufs.Get().(*[]byte)
	b := append(append((*buf)[:0], sc[:eq+1]...), value...)
	if ck.cfg.Mode == config.CookiePrefix {
		b = append(append(b, '~'), sc[eq+1:end]...)
	}
	b = append(b, sc[end:]...)
	h.DelCookie(ck.name)
	h.AddBytesKV(setCookieKey, b)
	*buf = b
	cookieBufs.Put(buf)
}

// cookieBufs are the scratch buffers of rewritten and dated cookies.
var cookieBufs = sync.Pool{New: func() any { b := make([]byte, 0, 256); return &b }}

// cacheable is HAProxy's verdict that a cache could keep the response
// (then nocache marks it private), as HAProxy 2.6.12 gives it: a safe
// method without Authorization or a request Cache-Control no-store; a
// status cacheable by default, or a response Cache-Control public; no
// response Pragma no-cache nor Cache-Control private, no-cache, no-store
// (with or without =...), max-age=0 (unless s-maxage is given) or
// s-maxage=0; and freshness (max-age, s-maxage, Expires) or a validator
// (ETag, Last-Modified), without which no cache would keep it.
func cacheable(ctx *fasthttp.RequestCtx) bool {
	req := &ctx.Request.Header
	ok := req.IsGet() || req.IsHead() || req.IsOptions() || req.IsTrace()
	if ok && req.Peek("Authorization") != nil {
		ok = false
	}
	if ok {
		for _, v := range req.PeekAll("Cache-Control") {
			if forEachElement(v, func(e []byte) bool { return hasPrefixFold(e, "no-store") }) {
				ok = false
			}
		}
	}
	switch ctx.Response.StatusCode() {
	case 200, 203, 204, 206, 300, 301, 404, 405, 410, 414, 501:
	default:
		ok = false
	}
	h := &ctx.Response.Header
	if bytes.EqualFold(bytes.TrimSpace(h.Peek("Pragma")), []byte("no-cache")) {
		return false
	}
	fresh, nullMaxAge := false, false
	for _, v := range h.PeekAll("Cache-Control") {
		forEachElement(v, func(e []byte) bool {
			switch {
			case bytes.EqualFold(e, []byte("public")):
				ok = true
			case bytes.EqualFold(e, []byte("max-age=0")):
				nullMaxAge = true
			case hasPrefixFold(e, "no-cache=\"set-cookie"):
			case bytes.EqualFold(e, []byte("private")), hasPrefixFold(e, "private="),
				bytes.EqualFold(e, []byte("no-cache")), hasPrefixFold(e, "no-cache="),
				bytes.EqualFold(e, []byte("no-store")), hasPrefixFold(e, "no-store="),
				bytes.EqualFold(e, []byte("s-maxage=0")):
				ok = false
			case hasPrefixFold(e, "s-maxage"):
				fresh, nullMaxAge = true, false
			case hasPrefixFold(e, "max-age"):
				fresh = true
			}
			return false
		})
	}
	if nullMaxAge {
		return false
	}
	return ok && (fresh || h.Peek("Expires") != nil || h.Peek("ETag") != nil || h.Peek("Last-Modified") != nil)
}

// forEachElement calls f on each comma-separated element of a field value,
// trimmed, until f returns true; it reports whether one did.
func forEachElement(v []byte, f func([]byte) bool) bool {
	for len(v) > 0 {
		e := v
		if i := bytes.IndexByte(v, ','); i >= 0 {
			e, v = v[:i], v[i+1:]
		} else {
			v = nil
		}
		if f(bytes.TrimSpace(e)) {
			return true
		}
	}
	return false
}

func hasPrefixFold(b []byte, prefix string) bool {
	return len(b) >= len(prefix) && bytes.EqualFold(b[:len(prefix)], []byte(prefix))
}

// The two-date alphabet: HAProxy writes a 30-bit count of 4-second units
// in five base64 digits, most significant first.
const cookieDigits = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

func appendCookieDate(b []byte, v int64) []byte {
	for i := 24; i >= 0; i -= 6 {
		b = append(b, cookieDigits[(v>>i)&0x3f])
	}
	return b
}

// cookieDate decodes five digits, or returns -1.
func cookieDate(s []byte) int64 {
	if len(s) < 5 {
		return -1
	}
	var v int64
	for _, c := range s[:5] {
		d := bytes.IndexByte([]byte(cookieDigits), c)
		if d < 0 {
			return -1
		}
		v = v<<6 | int64(d)
	}
	return v
}

// cookieDates reads "LAST[|FIRST]" after a server's value: Unix seconds,
// 0 where absent or unreadable.
func cookieDates(s []byte) (last, first int64) {
	if v := cookieDate(s); v > 0 {
		last = v << 2
	}
	if i := bytes.IndexByte(s, '|'); i >= 0 && len(s)-i > 5 {
		if v := cookieDate(s[i+1:]); v > 0 {
			first = v << 2
		}
	}
	return last, first
}
