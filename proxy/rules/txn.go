package rules

import (
	"crypto/tls"
	"net/netip"

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
	// Frontend and Backend are the indexes of the frontend the request
	// came in and the backend it is routed to so far (-1: none yet),
	// for fe_conn and be_conn without an argument.
	Frontend, Backend int

	buf  []byte // converted values and formats, reset per request
	vars []varValue
	// hdrBuf holds a header name being deleted (del-header), which
	// must not point into the header being changed.
	hdrBuf []byte
	occs   [][]byte // a multi-valued fetch's occurrences
	// vals are the values being evaluated, a stack: a value handed to a
	// fetch or converter through a function value would otherwise
	// escape to the heap, once per evaluation.
	vals [16]value
	nval int
}

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
	t.buf = t.buf[:0]
	t.nval = 0
	t.Response = false
	if cap(t.vars) < nvars {
		t.vars = make([]varValue, nvars)
	}
	t.vars = t.vars[:nvars]
	for i := range t.vars {
		t.vars[i].set = false
	}
}

// setVar stores v (copying its bytes) in slot i.
func (t *Txn) setVar(i int, v *value) {
	if i < 0 || i >= len(t.vars) {
		return
	}
	s := &t.vars[i]
	s.set = true
	s.v = *v
	if v.b != nil {
		s.own = append(s.own[:0], v.b...)
		s.v.b = s.own
	}
}
