package rules

import (
	"bytes"
	"regexp"

	"github.com/halo-lb/halo/config/lang"
)

// addHeader and delHeaderBytes change the request's or the response's
// header block (see visitHeaders for why the types are named).
func addHeader(t *Txn, response bool, k, v []byte) {
	t.added(response, k)
	if response {
		t.Ctx.Response.Header.AddBytesKV(k, v)
	} else {
		t.Ctx.Request.Header.AddBytesKV(k, v)
	}
}

// setHeader adds a field whose name (signature bit kBit) is not in the
// header (set-header deleted it): fasthttp's SetCanonical skips the copy
// and check of the name AddBytesKV makes, which the config's parser made
// of the rule's name once. The value's CR and LF are still replaced, as
// AddBytesKV would.
func setHeader(t *Txn, response bool, k []byte, kBit uint, v []byte) {
	t.addedBit(response, kBit)
	if response {
		t.Ctx.Response.Header.SetCanonical(k, v)
	} else {
		t.Ctx.Request.Header.SetCanonical(k, v)
	}
}

func delHeaderBytes(t *Txn, response bool, k []byte) {
	t.occKnown = false
	if response {
		t.Ctx.Response.Header.DelBytes(k)
	} else {
		t.Ctx.Request.Header.DelBytes(k)
	}
}

// applyHTTP does the rules that change the request or the response.
func (r *Rule) applyHTTP(t *Txn) {
	mark := len(t.buf)
	defer func() { t.buf = t.buf[:mark] }()
	req := &t.Ctx.Request
	switch r.action {
	case "set-path", "set-pathq", "set-query", "set-uri":
		t.uriRewritten()
	case "set-method":
		t.saveRequestLine()
	}
	switch r.action {
	case "set-header":
		// The value may point into a field's memory (%[req.hdr(Y)]),
		// which the deletion below reuses: copy it first.
		v := r.value.eval(t)
		start := len(t.buf)
		t.buf = append(t.buf, v...)
		v = t.buf[start:len(t.buf):len(t.buf)]
		if t.mayHaveBit(t.Response, r.nameBit) {
			delHeader(t, t.Response, r.name, lang.MatchStr, nil)
		}
		setHeader(t, t.Response, r.name, r.nameBit, v)
	case "add-header":
		addHeader(t, t.Response, r.name, r.value.eval(t))
	case "del-header":
		if r.match != lang.MatchStr || t.mayHaveBit(t.Response, r.nameBit) {
			delHeader(t, t.Response, r.name, r.match, r.re)
		}
	case "replace-header", "replace-value":
		replaceHeader(t, r, t.Response, r.action == "replace-value")
	case "set-path":
		req.URI().SetPathBytes(r.value.eval(t))
	case "set-pathq":
		setPathQ(t, r.value.eval(t))
	case "set-query":
		req.URI().SetQueryStringBytes(r.value.eval(t))
	case "set-uri":
		setURI(t, r.value.eval(t))
	case "set-method":
		req.Header.SetMethodBytes(r.value.eval(t))
	case "replace-path":
		u := req.URI()
		if out, ok := replaceWhole(t, r, u.PathOriginal()); ok {
			t.uriRewritten()
			u.SetPathBytes(out)
		}
	case "replace-pathq":
		if out, ok := replaceWhole(t, r, req.URI().RequestURI()); ok {
			t.uriRewritten()
			setPathQ(t, out)
		}
	case "replace-uri":
		var v value
		fetchURL(t, nil, 0, &v)
		if out, ok := replaceWhole(t, r, v.b); ok {
			t.uriRewritten()
			setURI(t, out)
		}
	case "set-status":
		if t.Response {
			t.Ctx.Response.Header.SetStatusCode(r.Status)
			if r.value != nil {
				t.Ctx.Response.Header.SetStatusMessage(r.value.eval(t))
			} else {
				t.Ctx.Response.Header.SetStatusMessage(r.reason)
			}
		}
	}
}

// uriRewritten notes, before a rule rewrites the request-target, that url,
// url32 and the like must read it from the parsed URI from now on (which
// drops an empty query's "?"); a replace rule whose expression does not
// match leaves the target as received.
func (t *Txn) uriRewritten() {
	t.saveRequestLine()
	t.uriChanged, t.occKnown = true, false
}

// setURI replaces the whole request-target; the URI is parsed again from
// it, keeping the path as written.
func setURI(t *Txn, uri []byte) {
	req := &t.Ctx.Request
	req.SetRequestURIBytes(uri)
	req.URI().DisablePathNormalizing = true
}

// setPathQ sets the path and the query from "path?query".
func setPathQ(t *Txn, pq []byte) {
	u := t.Ctx.Request.URI()
	p, q, _ := bytes.Cut(pq, []byte("?"))
	u.SetPathBytes(p)
	u.SetQueryStringBytes(q)
}

// replaceWhole applies a replace-* rule to in: when the expression
// matches, the result is the rule's format with \1..\9 replaced by the
// groups of the match, as HAProxy's replace rules build it.
func replaceWhole(t *Txn, r *Rule, in []byte) ([]byte, bool) {
	loc := r.re.FindSubmatchIndex(in)
	if loc == nil {
		return nil, false
	}
	subst := r.value.eval(t)
	start := len(t.buf)
	t.buf = expandSubst(t.buf, subst, in, loc)
	return t.buf[start:len(t.buf):len(t.buf)], true
}

// delHeader deletes every field whose name matches: spelled in any case
// (halo keeps names as the client sent them), or by -m beg, end, sub or
// reg. The fields after a deleted one keep their order, as in HAProxy:
// fasthttp's own deletion moves the last field into the hole, so those
// fields are deleted and added again in order.
func delHeader(t *Txn, response bool, name []byte, m lang.Method, re *regexp.Regexp) {
	if m == lang.MatchStr && !t.mayHave(response, name) {
		return
	}
	// One pass: the spellings to delete, and every other field in order
	// (copied, since deleting reuses their memory), noting whether one
	// comes after a deleted field.
	t.spans = t.spans[:0]
	mark := len(t.buf)
	defer func() { t.buf = t.buf[:mark] }()
	var doomed [8][2]int
	nd, moved := 0, false
	visitHeaders(t, response, func(k, v []byte) {
		if nameMatches(k, name, m, re) {
			if nd < len(doomed) {
				s := len(t.buf)
				t.buf = append(t.buf, k...)
				doomed[nd] = [2]int{s, len(t.buf)}
				nd++
			}
			return
		}
		if special(k, response) {
			return
		}
		moved = moved || nd > 0
		ks := len(t.buf)
		t.buf = append(t.buf, k...)
		vs := len(t.buf)
		t.buf = append(t.buf, v...)
		t.spans = append(t.spans, [4]int{ks, vs, vs, len(t.buf)})
	})
	for i := range nd {
		delHeaderBytes(t, response, t.buf[doomed[i][0]:doomed[i][1]])
	}
	if nd == len(doomed) {
		delHeader(t, response, name, m, re) // more spellings than one pass holds
		return
	}
	if !moved {
		return
	}
	for _, sp := range t.spans {
		delHeaderBytes(t, response, t.buf[sp[0]:sp[1]])
	}
	for _, sp := range t.spans {
		if response {
			t.Ctx.Response.Header.AddBytesKV(t.buf[sp[0]:sp[1]], t.buf[sp[2]:sp[3]])
		} else {
			t.Ctx.Request.Header.AddBytesKV(t.buf[sp[0]:sp[1]], t.buf[sp[2]:sp[3]])
		}
	}
}

// special reports whether fasthttp keeps field k apart from the list of
// fields (and so out of the reordering of a deletion).
func special(k []byte, response bool) bool {
	switch len(k) {
	case 4:
		return !response && equalFold(k, hdrHost)
	case 6:
		return (!response && equalFold(k, hdrCookie)) || (response && equalFold(k, hdrServer))
	case 10:
		return (!response && equalFold(k, hdrUserAgent)) || equalFold(k, hdrConnection) || (response && equalFold(k, hdrSetCookie))
	case 12:
		return equalFold(k, hdrContentType)
	case 14:
		return equalFold(k, hdrContentLength)
	case 17:
		return equalFold(k, hdrTransferEncoding)
	}
	return false
}

var (
	hdrHost             = []byte("Host")
	hdrServer           = []byte("Server")
	hdrUserAgent        = []byte("User-Agent")
	hdrConnection       = []byte("Connection")
	hdrContentType      = []byte("Content-Type")
	hdrContentLength    = []byte("Content-Length")
	hdrTransferEncoding = []byte("Transfer-Encoding")
)

func nameMatches(k, name []byte, m lang.Method, re *regexp.Regexp) bool {
	switch m {
	case lang.MatchBeg:
		return len(k) >= len(name) && equalFold(k[:len(name)], name)
	case lang.MatchEnd:
		return len(k) >= len(name) && equalFold(k[len(k)-len(name):], name)
	case lang.MatchSub:
		for i := 0; i+len(name) <= len(k); i++ {
			if equalFold(k[i:i+len(name)], name) {
				return true
			}
		}
		return false
	case lang.MatchReg:
		return re.Match(k)
	}
	return equalFold(k, name)
}

// replaceHeader rewrites the values of header r.name: each whole value
// (replace-header) or each comma-separated value (replace-value) that
// the expression matches is replaced.
func replaceHeader(t *Txn, r *Rule, response bool, perValue bool) {
	if !t.mayHave(response, r.name) {
		return
	}
	// Copy the values out: deleting the fields reuses their memory.
	start := len(t.buf)
	var spans [16][2]int
	vals := spans[:0]
	visitHeaders(t, response, func(k, v []byte) {
		if equalFold(k, r.name) && len(vals) < cap(vals) {
			s := len(t.buf)
			t.buf = append(t.buf, v...)
			vals = append(vals, [2]int{s, len(t.buf)})
		}
	})
	if len(vals) == 0 {
		return
	}
	changed := false
	var out [16][2]int
	news := out[:0]
	for _, sp := range vals {
		v := t.buf[sp[0]:sp[1]]
		s := len(t.buf)
		if !perValue {
			if nv, ok := replaceWhole(t, r, v); ok {
				changed = true
				t.buf = append(t.buf[:s], nv...)
			} else {
				t.buf = append(t.buf, v...)
			}
		} else {
			// Each comma-separated value, as hdr() splits them (a comma in
			// a quoted string is part of its value).
			for rest, first := v, true; ; first = false {
				part, end := rest, valueEnd(rest)
				if end >= 0 {
					part, rest = rest[:end], rest[end+1:]
				}
				if !first {
					t.buf = append(t.buf, ',')
				}
				lead := len(part) - len(bytes.TrimLeft(part, " \t"))
				trimmed := trimOWS(part)
				mark := len(t.buf)
				if nv, ok := replaceWhole(t, r, trimmed); ok {
					// A replaced value loses the blanks before it, as
					// HAProxy writes it ("a, b, a" -> "A, b,A").
					changed = true
					t.buf = append(t.buf[:mark], nv...)
				} else {
					t.buf = append(append(t.buf[:mark], part[:lead]...), trimmed...)
				}
				if end < 0 {
					break
				}
			}
		}
		news = append(news, [2]int{s, len(t.buf)})
	}
	if !changed {
		t.buf = t.buf[:start]
		return
	}
	delHeader(t, response, r.name, lang.MatchStr, nil)
	for _, sp := range news {
		addHeader(t, response, r.name, t.buf[sp[0]:sp[1]])
	}
}
