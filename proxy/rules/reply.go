package rules

import "bytes"

// HasReply reports whether a deny or tarpit rule has its own reply
// (content-type, body, headers) rather than the proxy's error page.
func (r *Rule) HasReply() bool { return r.reply != nil }

var (
	hdrLocation = []byte("Location")
	hdrCacheCtl = []byte("Cache-Control")
	noCache     = []byte("no-cache")
)

// WriteReply answers the request with the rule's reply: its status,
// content-type, headers and body (return; deny and tarpit with a reply).
func (r *Rule) WriteReply(t *Txn) {
	resp := &t.Ctx.Response
	resp.Reset()
	resp.SetStatusCode(r.Status)
	resp.Header.SetNoDefaultContentType(true)
	rep := r.reply
	if rep == nil {
		return
	}
	mark := len(t.buf)
	if len(rep.contentType) > 0 {
		resp.Header.SetContentTypeBytes(rep.contentType)
	}
	for i := range rep.hdrs {
		h := &rep.hdrs[i]
		resp.Header.AddBytesKV(h.name, h.value.eval(t))
	}
	if rep.body != nil {
		resp.SetBodyRaw(nil)
		resp.AppendBody(rep.body.eval(t))
	}
	t.buf = t.buf[:mark]
}

// emptyTarget reports whether the redirect's target evaluates to nothing
// (ignore-empty: a map that has no entry for the path).
func (rd *redirect) emptyTarget(t *Txn) bool {
	mark := len(t.buf)
	empty := len(rd.target.eval(t)) == 0
	t.buf = t.buf[:mark]
	return empty
}

// WriteRedirect answers the request with the rule's redirect: its code
// and a Location built as HAProxy builds it.
func (r *Rule) WriteRedirect(t *Txn) {
	rd := r.redirect
	mark := len(t.buf)
	target := rd.target.eval(t)
	start := len(t.buf)
	req := &t.Ctx.Request
	u := req.URI()
	path, query := u.PathOriginal(), u.QueryString()
	hasQuery := len(query) > 0 || bytes.IndexByte(u.RequestURI(), '?') >= 0
	switch rd.kind {
	case "location":
		t.buf = append(t.buf, target...)
	case "prefix":
		// A prefix "/" adds nothing: the path is kept as is.
		if !(len(target) == 1 && target[0] == '/') {
			t.buf = append(t.buf, target...)
		}
		t.buf = append(t.buf, path...)
		if rd.appendSlash && (len(path) == 0 || path[len(path)-1] != '/') {
			t.buf = append(t.buf, '/')
		}
		if !rd.dropQuery && hasQuery {
			t.buf = append(append(t.buf, '?'), query...)
		}
	case "scheme":
		t.buf = append(t.buf, target...)
		t.buf = append(t.buf, "://"...)
		t.buf = append(t.buf, req.Header.Host()...)
		t.buf = append(t.buf, path...)
		if rd.appendSlash && (len(path) == 0 || path[len(path)-1] != '/') {
			t.buf = append(t.buf, '/')
		}
		if !rd.dropQuery && hasQuery {
			t.buf = append(append(t.buf, '?'), query...)
		}
	}
	loc := t.buf[start:]
	resp := &t.Ctx.Response
	resp.Reset()
	resp.SetStatusCode(r.Status)
	resp.Header.SetNoDefaultContentType(true)
	resp.Header.SetBytesKV(hdrLocation, loc)
	resp.Header.SetBytesKV(hdrCacheCtl, noCache)
	if rd.setCookie != nil {
		resp.Header.AddBytesKV([]byte("Set-Cookie"), rd.setCookie)
	}
	if rd.clearCookie != nil {
		resp.Header.AddBytesKV([]byte("Set-Cookie"), rd.clearCookie)
	}
	t.buf = t.buf[:mark]
}
