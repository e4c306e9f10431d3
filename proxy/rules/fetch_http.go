package rules

import (
	"bytes"
)

// The HTTP fetches read the request (and response) as the rules before
// have left it: a header set by one rule is seen by the next, as in
// HAProxy.

func fetchMethod(t *Txn, _ *fetch, _ int, out *value) bool {
	if t.Ctx == nil {
		return false
	}
	out.setStr(t.Ctx.Request.Header.Method())
	return true
}

// target is the request-target as it will be sent: path, query.
func target(t *Txn) (path, query []byte, ok bool) {
	if t.Ctx == nil {
		return nil, nil, false
	}
	u := t.Ctx.Request.URI()
	return u.PathOriginal(), u.QueryString(), true
}

// fetchPath gives no value for a target without a path, as HAProxy's
// path: "OPTIONS *" (a format then writes nothing, -m found is false).
func fetchPath(t *Txn, _ *fetch, _ int, out *value) bool {
	p, _, ok := target(t)
	if !ok || len(p) == 0 || p[0] != '/' {
		return false
	}
	out.setStr(p)
	return true
}

func fetchQuery(t *Txn, _ *fetch, _ int, out *value) bool {
	_, q, ok := target(t)
	if !ok || (len(q) == 0 && !hasQuery(t)) {
		return false
	}
	out.setStr(q)
	return true
}

// hasQuery reports whether the target has a '?' (an empty query is still
// a query: HAProxy's query fetch then gives an empty string).
func hasQuery(t *Txn) bool {
	return bytes.IndexByte(t.Ctx.Request.URI().RequestURI(), '?') >= 0
}

func fetchPathQ(t *Txn, _ *fetch, _ int, out *value) bool {
	if t.Ctx == nil {
		return false
	}
	out.setStr(t.Ctx.Request.URI().RequestURI())
	return true
}

// fetchURL is the request-target as the client wrote it (absolute-form
// included), after the rules' changes.
func fetchURL(t *Txn, _ *fetch, _ int, out *value) bool {
	if t.Ctx == nil {
		return false
	}
	if !t.uriChanged {
		// As received: an absolute-form target, an empty query's "?".
		out.setStr(t.Ctx.Request.Header.RequestURI())
		return true
	}
	u := t.Ctx.Request.URI()
	start := len(t.buf)
	if raw := t.Ctx.Request.Header.RequestURI(); len(raw) > 0 && raw[0] != '/' && raw[0] != '*' {
		t.buf = append(t.buf, u.Scheme()...)
		t.buf = append(t.buf, "://"...)
		t.buf = append(t.buf, u.Host()...)
	}
	t.buf = append(t.buf, u.RequestURI()...)
	out.setStr(t.buf[start:len(t.buf):len(t.buf)])
	return true
}

// fetchBase is the first Host header and the path, as HAProxy builds it.
func fetchBase(t *Txn, _ *fetch, _ int, out *value) bool {
	p, _, ok := target(t)
	if !ok {
		return false
	}
	host := t.Ctx.Request.Header.Host()
	if len(host) == 0 {
		out.setStr(p)
		return true
	}
	start := len(t.buf)
	t.buf = append(append(t.buf, host...), p...)
	out.setStr(t.buf[start:len(t.buf):len(t.buf)])
	return true
}

func fetchReqVer(t *Txn, _ *fetch, _ int, out *value) bool {
	if t.Ctx == nil {
		return false
	}
	if t.Ctx.Request.Header.IsHTTP11() {
		out.setStr(ver11)
	} else {
		out.setStr(ver10)
	}
	return true
}

var (
	ver10 = []byte("1.0")
	ver11 = []byte("1.1")
)

func fetchResVer(t *Txn, _ *fetch, _ int, out *value) bool {
	if t.Ctx == nil || !t.Response {
		return false
	}
	if t.Ctx.Response.Header.IsHTTP11() {
		out.setStr(ver11)
	} else {
		out.setStr(ver10)
	}
	return true
}

func fetchStatus(t *Txn, _ *fetch, _ int, out *value) bool {
	if t.Ctx == nil || !t.Response {
		return false
	}
	out.setInt(int64(t.Ctx.Response.Header.StatusCode()))
	return true
}

// headersOf reports whether the request's (response false) or the
// response's header block can be read now.
func headersOf(t *Txn, response bool) bool {
	return t.Ctx != nil && (!response || t.Response)
}

// visitHeaders calls f on each field of the request's or the response's
// header block. The header types are named, not put behind an interface:
// a closure handed to an interface method escapes to the heap, one
// allocation per call.
//
// VisitAll rather than All: All's iterator, picked at run time between
// the two header types, would make every loop body escape as well.
func visitHeaders(t *Txn, response bool, f func(k, v []byte)) {
	if response {
		t.Ctx.Response.Header.VisitAll(f) //lint:ignore SA1019 see above
	} else {
		t.Ctx.Request.Header.VisitAll(f) //lint:ignore SA1019 see above
	}
}

// occurrences gathers the values of header name (all headers without a
// name) into t's occurrence list: each comma-separated value as one when
// split, as hdr() does and fhdr() does not.
func (t *Txn) occurrences(response bool, name []byte, split bool) [][]byte {
	if occs, ok := t.cachedOccs(occKey{name: keyName(name), kind: occHeader, response: response, split: split}); ok {
		return occs
	}
	if len(name) > 0 && !t.mayHave(response, name) {
		return t.occs
	}
	visitHeaders(t, response, func(k, v []byte) {
		if len(name) > 0 && !equalFold(k, name) {
			return
		}
		if !split {
			t.occs = append(t.occs, v)
			return
		}
		for {
			i := valueEnd(v)
			if i < 0 {
				t.occs = append(t.occs, trimOWS(v))
				break
			}
			t.occs = append(t.occs, trimOWS(v[:i]))
			v = v[i+1:]
		}
	})
	return t.occs
}

// valueEnd is the index of the comma that ends a header's first value,
// -1 for none: a comma inside a quoted string (RFC 9110 §5.6.4, with its
// backslash escapes) is part of the value, as HAProxy splits them. Every
// comma ends a value, even one with nothing before it: "a,,b" has three.
func valueEnd(v []byte) int {
	quoted, escaped := false, false
	for i, c := range v {
		switch {
		case escaped:
			escaped = false
		case quoted && c == '\\':
			escaped = true
		case c == '"':
			quoted = !quoted
		case c == ',' && !quoted:
			return i
		}
	}
	return -1
}

// pick returns occurrence occ (1-based from the start, negative from the
// end) of occs.
func pick(occs [][]byte, occ int) ([]byte, bool) {
	switch {
	case occ > 0 && occ <= len(occs):
		return occs[occ-1], true
	case occ < 0 && -occ <= len(occs):
		return occs[len(occs)+occ], true
	}
	return nil, false
}

func headerFetch(response, split bool) fetchFn {
	return func(t *Txn, f *fetch, occ int, out *value) bool {
		if !headersOf(t, response) {
			return false
		}
		if f.host && !response {
			// fasthttp keeps Host apart from the other fields, and the
			// guard lets one through at most: no scan, one occurrence.
			h := t.Ctx.Request.Header.Host()
			out.setStr(h)
			return len(h) > 0 && (occ == 1 || occ == -1)
		}
		v, ok := pick(t.occurrences(response, f.name, split), occ)
		out.setStr(v)
		return ok
	}
}

// headerCount is hdr_cnt (split: each comma-separated value counts) and
// fhdr_cnt (each field line counts).
func headerCount(response, split bool) fetchFn {
	return func(t *Txn, f *fetch, _ int, out *value) bool {
		if !headersOf(t, response) {
			return false
		}
		out.setInt(int64(len(t.occurrences(response, f.name, split))))
		return true
	}
}

func headerIP(response bool) fetchFn {
	str := headerFetch(response, true)
	return func(t *Txn, f *fetch, occ int, out *value) bool {
		return str(t, f, occ, out) && out.asIP()
	}
}

func headerVal(response bool) fetchFn {
	str := headerFetch(response, true)
	return func(t *Txn, f *fetch, occ int, out *value) bool {
		return str(t, f, occ, out) && out.fieldInt(true)
	}
}

// cookies gathers the values of the cookies named name from the Cookie
// headers (request) or the Set-Cookie headers (response).
func (t *Txn) cookies(response bool, name []byte) [][]byte {
	if occs, ok := t.cachedOccs(occKey{name: keyName(name), kind: occCookie, response: response}); ok {
		return occs
	}
	if response && !t.mayHave(true, hdrSetCookie) || !response && !t.mayHave(false, hdrCookie) {
		return t.occs
	}
	visitHeaders(t, response, func(k, v []byte) {
		if response {
			if !equalFold(k, hdrSetCookie) {
				return
			}
			// name=value; attributes
			pair, _, _ := bytes.Cut(v, semicolon)
			if n, val, ok := bytes.Cut(pair, equals); ok && (len(name) == 0 || bytes.Equal(trimOWS(n), name)) {
				t.occs = append(t.occs, trimOWS(val))
			}
			return
		}
		if !equalFold(k, hdrCookie) {
			return
		}
		for len(v) > 0 {
			var pair []byte
			pair, v, _ = bytes.Cut(v, semicolon)
			if n, val, ok := bytes.Cut(pair, equals); ok && (len(name) == 0 || bytes.Equal(trimOWS(n), name)) {
				t.occs = append(t.occs, trimOWS(val))
			}
		}
	})
	return t.occs
}

var (
	hdrCookie    = []byte("Cookie")
	hdrSetCookie = []byte("Set-Cookie")
	semicolon    = []byte(";")
	equals       = []byte("=")
)

func cookieFetch(response bool) fetchFn {
	return func(t *Txn, f *fetch, occ int, out *value) bool {
		if !headersOf(t, response) {
			return false
		}
		// As a sample, the default occurrence is the last, as HAProxy's
		// req.cook and res.cook; an ACL tries every occurrence.
		occs := t.cookies(response, f.name)
		v, ok := pick(occs, occ)
		out.setStr(v)
		return ok
	}
}

func cookieCount(response bool) fetchFn {
	return func(t *Txn, f *fetch, _ int, out *value) bool {
		if !headersOf(t, response) {
			return false
		}
		out.setInt(int64(len(t.cookies(response, f.name))))
		return true
	}
}

func cookieVal(response bool) fetchFn {
	str := cookieFetch(response)
	return func(t *Txn, f *fetch, occ int, out *value) bool {
		return str(t, f, occ, out) && out.fieldInt(false)
	}
}

// fetchURLParam finds parameter f.name in the query string (split at
// f.delim); without a name, every parameter's value.
func fetchURLParam(t *Txn, f *fetch, occ int, out *value) bool {
	_, q, ok := target(t)
	if !ok {
		return false
	}
	_, cached := t.cachedOccs(occKey{name: keyName(f.name), kind: occParam, split: f.delim == '&'})
	for !cached && len(q) > 0 {
		var pair []byte
		if i := bytes.IndexByte(q, f.delim); i >= 0 {
			pair, q = q[:i], q[i+1:]
		} else {
			pair, q = q, nil
		}
		n, v, _ := bytes.Cut(pair, equals)
		if len(f.name) == 0 || bytes.Equal(n, f.name) {
			t.occs = append(t.occs, v)
		}
	}
	if occ < 0 && f.occ == 0 {
		occ = 1 // the first, as HAProxy's url_param
	}
	v, ok := pick(t.occs, occ)
	out.setStr(v)
	return ok
}

func fetchURLParamVal(t *Txn, f *fetch, occ int, out *value) bool {
	return fetchURLParam(t, f, occ, out) && out.fieldInt(true)
}

// equalFold compares header names ignoring ASCII case.
func equalFold(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i]|0x20 != b[i]|0x20 {
			return false
		}
	}
	return true
}

func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}
