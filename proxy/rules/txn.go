package rules

import (
	"crypto/tls"
	"encoding/binary"
	"net/netip"
	"time"

	"github.com/halo-lb/halo/config"

	"github.com/valyala/fasthttp"
)

// Env is what rules read of the running configuration, by the indexes
// the Compiler's Names gave: the proxy's snapshot implements it.
type Env interface {
	NbSrv(backend int) int
	SrvIsUp(backend, server int) bool
	SrvConn(backend, server int) int
	BeConn(backend int) int
	FeConn(frontend int) int
}

// Txn is one request (mode http) or connection (mode tcp) as rules see
// it. The proxy keeps one per connection and calls Reset before each
// request; nothing in it is safe for concurrent use.
type Txn struct {
	// Ctx is the request and, once it is read, the response (mode
	// http); nil in mode tcp.
	Ctx *fasthttp.RequestCtx
	// Response: the response head has arrived and http-response rules
	// run.
	Response bool
	Src, Dst netip.AddrPort
	TLS      *tls.Conn // the client's TLS, nil on a plain connection
	// Payload is the buffered start of a TCP stream (tcp-request
	// content).
	Payload []byte
	// Hello: the stream starts with a TLS ClientHello, whose server
	// name is HelloSNI (req.ssl_sni).
	Hello    bool
	HelloSNI []byte
	Env      Env
	// Conn is the Txn of the connection a request came on (mode http),
	// nil without one: its session variables (sess.NAME) and the
	// counters that tcp-request connection and session rules track,
	// which live as long as the connection. In mode tcp one Txn is the
	// connection's and Conn is nil.
	Conn *Txn
	// Frontend and Backend are the indexes of the frontend the request
	// came in and the backend it is routed to so far (-1: none yet),
	// for fe_conn and be_conn without an argument.
	Frontend, Backend int
	// ExpectProxy: a tcp-request connection expect-proxy layer4 rule
	// matched, and the connection must start with a PROXY header, as if
	// its bind had accept-proxy.
	ExpectProxy bool
	// HTTPErr: the request counts as an HTTP error in what it tracks
	// (http_err_cnt, http_err_rate), as the proxy decides by HAProxy's
	// rules: a deny, tarpit or auth, or a server's 4xx.
	HTTPErr bool
	// untracked: Untrack has counted this request's end.
	untracked bool
	// errCounted: CountHTTPError has counted the request as an HTTP
	// error already.
	errCounted bool
	// reqBegun: the request has passed the tcp-request content rules
	// (BeginRequest), so a track counts it at once; connCounted: the
	// connection's counters have counted it.
	reqBegun, connCounted bool
	// auth is the last credentials check of the request (authUser).
	auth authCheck
	// Caps are the request's capture slots, which capture rules fill
	// and capture.req.hdr reads; nil: the frontend has none.
	Caps *Captures
	// Start is when the request was accepted (%Ts); zero: the first
	// use reads the clock.
	Start time.Time
	// UniqueIDFormat is the frontend's unique-id-format, nil for none:
	// UniqueID makes the request's ID from it once.
	UniqueIDFormat *Format
	// LogLevel is what set-log-level chose for the request's access log
	// line: a zap level (0, info, by default) or LogSilent (no line).
	LogLevel int8

	buf    []byte // converted values and formats, reset per request
	vars   []varValue
	occs   [][]byte // a multi-valued fetch's occurrences (see occKey)
	fields [][]byte // field() and word()'s fields
	// occKey says what occs holds, so that an ACL trying each occurrence
	// of a header gathers them once, not once per occurrence (which
	// would cost time quadratic in what a client sends); occKnown: occs
	// is valid, until a header or the target changes.
	occKey   occKey
	occKnown bool
	// vals are the values being evaluated, a stack: a value handed to a
	// fetch or converter through a function value would otherwise
	// escape to the heap, once per evaluation.
	vals [16]value
	nval int
	// names are a signature of the header names present, one bit per
	// name's hash, request then response, computed on first use: a rule
	// about a header the message does not have (set-header of a new
	// field, del-header of one rarely sent) is then answered without a
	// scan of every field. A bit may be set for a name that is gone; a
	// clear bit always means absent.
	names      [2]signature
	namesKnown [2]bool
	// sc are the tracking counters 0-2 (stick.go).
	sc [3]tracked
	// spans are fields a deletion adds again (http_actions.go).
	spans [][4]int
	// uid is the request's unique ID once uidState is uidMade; its
	// buffer is kept from request to request.
	uid      []byte
	uidState uint8
	// seq is the request's number (%rt) once seqSet.
	seq    uint64
	seqSet bool
	// origMethod and origURI are the request line as received, kept
	// when a rule is about to change it (lineSaved).
	origMethod, origURI []byte
	lineSaved           bool
	// uriChanged: a rule rewrote the request-target, which url then
	// reads from the parsed URI rather than as received.
	uriChanged bool
	// deadline is when the rules must have finished (zero: never), work
	// the work counted since the clock was last read, expired whether
	// the deadline passed (deadline.go).
	deadline time.Time
	work     int
	expired  bool
}

// authCheck is a userlist check made for a request: for these
// credentials, that user (nil: refused). users nil: none made yet.
type authCheck struct {
	users      *config.Userlist
	user, pass []byte
	result     *config.User
}

// signature is a set of header names, one bit per name's hash of 128.
type signature [2]uint64

func (s *signature) add(name []byte) { s.addBit(nameBit(name)) }

func (s *signature) addBit(b uint) {
	s[b>>6] |= 1 << (b & 63)
}

func (s *signature) hasBit(b uint) bool {
	return s[b>>6]&(1<<(b&63)) != 0
}

// nameBit is the signature bit of a header name, case folded: a hash of
// its length and its first and last eight bytes, which is cheap and tells
// apart the names one request carries (X-Forwarded-Host, -Port and
// -Proto among them; a collision costs a scan, never a wrong answer).
// Setting bit 0x20 of every byte folds ASCII case: two names equal but
// for case always hash alike.
func nameBit(name []byte) uint {
	const fold = 0x2020202020202020
	n := len(name)
	var a, b uint64
	if n >= 8 {
		a = binary.LittleEndian.Uint64(name) | fold
		b = binary.LittleEndian.Uint64(name[n-8:]) | fold
	} else {
		for _, c := range name {
			a = a<<8 | uint64(c|0x20)
		}
	}
	h := a*0x9e3779b97f4a7c15 + b*0xc2b2ae3d27d4eb4f + uint64(n)
	h ^= h >> 29
	h *= 0x165667b19e3779f9
	return uint(h >> 57)
}

func side(response bool) int {
	if response {
		return 1
	}
	return 0
}

// mayHave reports whether the request's (or response's) header block
// may hold a field named name; false is certain.
func (t *Txn) mayHave(response bool, name []byte) bool {
	return t.mayHaveBit(response, nameBit(name))
}

// mayHaveBit is mayHave of a name whose signature bit is b.
func (t *Txn) mayHaveBit(response bool, b uint) bool {
	i := side(response)
	if !t.namesKnown[i] {
		var sig signature
		visitHeaders(t, response, func(k, _ []byte) { sig.add(k) })
		t.names[i], t.namesKnown[i] = sig, true
	}
	return t.names[i].hasBit(b)
}

// added notes a field a rule added.
func (t *Txn) added(response bool, name []byte) {
	t.addedBit(response, nameBit(name))
}

// addedBit is added of a name whose signature bit is b.
func (t *Txn) addedBit(response bool, b uint) {
	t.occKnown = false
	if i := side(response); t.namesKnown[i] {
		t.names[i].addBit(b)
	}
}

// HeadersChanged tells the Txn that the proxy changed the headers outside
// the rules (option forwardfor after the request rules): what it knows of
// them is computed again.
func (t *Txn) HeadersChanged() {
	t.namesKnown = [2]bool{}
	t.occKnown = false
}

// occKey identifies a list of occurrences: of which header (by the
// compiled name's bytes, which live as long as the program), split at
// commas or not, or a cookie or query parameter's.
type occKey struct {
	name     *byte
	kind     uint8 // occHeader, occCookie, occParam
	response bool
	split    bool
}

const (
	occHeader uint8 = iota + 1
	occCookie
	occParam
)

// cachedOccs returns occs when they are those of key.
func (t *Txn) cachedOccs(key occKey) ([][]byte, bool) {
	if t.occKnown && t.occKey == key && key.name != nil {
		return t.occs, true
	}
	t.occKey, t.occKnown = key, true
	t.occs = t.occs[:0]
	return nil, false
}

func keyName(name []byte) *byte {
	if len(name) == 0 {
		return nil
	}
	return &name[0]
}

// LogSilent is set-log-level silent: no access log line. The other
// values of LogLevel are zap's levels (zapcore.Level is an int8).
const LogSilent int8 = -101

// push returns a fresh value slot; pop releases the latest.
func (t *Txn) push() *value {
	if t.nval == len(t.vals) {
		return new(value) // nested beyond any real rule: correct, not free
	}
	v := &t.vals[t.nval]
	t.nval++
	*v = value{}
	return v
}

func (t *Txn) pop(v *value) {
	if t.nval > 0 && v == &t.vals[t.nval-1] {
		t.nval--
	}
}

// varValue is a variable's value; its bytes are its own, so that it
// survives the Txn's buffer being reused for other values.
type varValue struct {
	set bool
	v   value
	own []byte
}

// Reset readies t for a new request of a program set that uses nvars
// variables.
func (t *Txn) Reset(nvars int) {
	if t.sc[0].e != nil || t.sc[1].e != nil || t.sc[2].e != nil {
		t.Untrack(0, 0) // the proxy untracks first; never leak a reference
	}
	t.buf = t.buf[:0]
	t.nval = 0
	t.Response = false
	t.namesKnown = [2]bool{}
	t.occKnown = false
	t.uriChanged = false
	t.uidState, t.seqSet, t.lineSaved, t.Start = uidNone, false, false, time.Time{}
	t.deadline, t.work, t.expired = time.Time{}, 0, false
	t.LogLevel = 0
	t.HTTPErr, t.untracked, t.errCounted, t.ExpectProxy = false, false, false, false
	t.reqBegun, t.connCounted = false, false
	t.auth.users, t.auth.result = nil, nil
	t.Conn = nil
	if cap(t.vars) < nvars {
		t.vars = make([]varValue, nvars)
	}
	t.vars = t.vars[:nvars]
	for i := range t.vars {
		t.vars[i].set = false
	}
}

// varAt is variable slot i: a session variable's in the connection's
// Txn when there is one; nil for no slot.
func (t *Txn) varAt(i int) *varValue {
	if i < 0 {
		return nil
	}
	vt := t
	if i&sessSlot != 0 {
		i &^= sessSlot
		if t.Conn != nil {
			vt = t.Conn
		}
	}
	if i >= len(vt.vars) {
		return nil
	}
	return &vt.vars[i]
}

// setVar stores v (copying its bytes) in slot i.
func (t *Txn) setVar(i int, v *value) {
	s := t.varAt(i)
	if s == nil {
		return
	}
	s.set = true
	s.v = *v
	if v.b != nil {
		s.own = append(s.own[:0], v.b...)
		s.v.b = s.own
	}
}
