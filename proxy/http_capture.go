package proxy

import (
	"bytes"
	"iter"
	"sync"

	"github.com/halo-lb/halo/config"
	"github.com/halo-lb/halo/proxy/rules"

	"github.com/valyala/fasthttp"
)

// captures are a frontend's capture slots and its capture cookie line,
// for its httplog lines. The slots' values are taken per request into a
// rules.Captures the exchange holds until its line is written: the
// headers' as the request and the response arrive, before any rule
// changes them (HAProxy captures them as it parses the message), the
// capture rules' as they run.
type captures struct {
	req, resp []capture
	// reqLens, respLens are the slots' lengths, for rules.Captures.Reset.
	reqLens, respLens []int
	cookie            *capture
}

// capture is a slot; a nil name is a slot no header fills (declare
// capture, capture ... len N).
type capture struct {
	name []byte
	len  int
}

func newCaptures(cs []config.Capture) *captures {
	if len(cs) == 0 {
		return nil
	}
	c := &captures{}
	for _, cc := range cs {
		k := capture{len: cc.Len}
		if cc.Name != "" {
			k.name = []byte(cc.Name)
		}
		switch cc.Kind {
		case config.CaptureRequest:
			c.req, c.reqLens = append(c.req, k), append(c.reqLens, k.len)
		case config.CaptureResponse:
			c.resp, c.respLens = append(c.resp, k), append(c.respLens, k.len)
		case config.CaptureCookie:
			c.cookie = &k // HAProxy keeps one: the last line
		}
	}
	return c
}

// capturePool holds the requests' capture slots between requests; a
// rules.Captures keeps its buffers.
var capturePool = sync.Pool{New: func() any { return new(rules.Captures) }}

// start takes the slots for a request and fills the request header ones.
func (c *captures) start(ctx *fasthttp.RequestCtx) *rules.Captures {
	rc := c.slots()
	for i, k := range c.req {
		if k.name == nil {
			continue
		}
		found := lastField(ctx.Request.Header.All(), k.name)
		if found == nil && bytes.EqualFold(k.name, headerHost) {
			found = ctx.Request.Header.Host()
		}
		if found != nil {
			rc.Set(false, i, found)
		}
	}
	return rc
}

// slots takes empty slots from the pool (mode tcp's, which no header
// fills).
func (c *captures) slots() *rules.Captures {
	rc := capturePool.Get().(*rules.Captures)
	rc.Reset(c.reqLens, c.respLens)
	return rc
}

// response fills the response header slots from a server's response,
// before the http-response rules run.
func (c *captures) response(ctx *fasthttp.RequestCtx, rc *rules.Captures) {
	for i, k := range c.resp {
		if k.name == nil {
			continue
		}
		found := lastField(ctx.Response.Header.All(), k.name)
		if found == nil && bytes.EqualFold(k.name, headerContentType) {
			found = ctx.Response.Header.ContentType()
		}
		if found != nil {
			rc.Set(true, i, found)
		}
	}
}

// lastField is the value of the last field called name (in any case),
// the one HAProxy captures; nil for none.
func lastField(fields iter.Seq2[[]byte, []byte], name []byte) []byte {
	var found []byte
	for k, v := range fields {
		if bytes.EqualFold(k, name) {
			found = v
		}
	}
	return found
}

// endCaptures hands a request's slots back once its line is written.
func endCaptures(rc *rules.Captures) {
	if rc != nil {
		capturePool.Put(rc)
	}
}

// appendCookies writes HAProxy's %CC %CS: the captured cookie of the
// request and of the response ("NAME=value", cut at len), "-" for none.
// Without a capture cookie line both are "-".
func (c *captures) appendCookies(b []byte, ctx *fasthttp.RequestCtx, server bool) []byte {
	if c == nil || c.cookie == nil {
		return append(b, " - - "...)
	}
	k := c.cookie
	b = append(b, ' ')
	var found []byte
	for name, v := range ctx.Request.Header.All() {
		if bytes.EqualFold(name, headerCookie) {
			if at := cookieAt(v, k.name); at != nil {
				end := bytes.IndexByte(at, ';')
				if end < 0 {
					end = len(at)
				}
				found = bytes.TrimRight(at[:end], " \t")
			}
		}
	}
	b = appendCaptured(b, found, k.len, true)
	b = append(b, ' ')
	found = nil
	if server {
		for name, v := range ctx.Response.Header.All() {
			if bytes.EqualFold(name, headerSetCookie) && bytes.HasPrefix(v, k.name) && len(v) > len(k.name) && v[len(k.name)] == '=' {
				found = v
			}
		}
	}
	b = appendCaptured(b, found, k.len, true)
	return append(b, ' ')
}

// cookieAt returns the Cookie value from the cookie called name on.
func cookieAt(v, name []byte) []byte {
	for len(v) > 0 {
		v = bytes.TrimLeft(v, " \t;")
		if bytes.HasPrefix(v, name) && len(v) > len(name) && v[len(name)] == '=' {
			return v
		}
		i := bytes.IndexByte(v, ';')
		if i < 0 {
			return nil
		}
		v = v[i+1:]
	}
	return nil
}

// appendHeaders writes HAProxy's %hr %hs: " {v1|v2}" for the request's
// slots, then " {v}" for the response's, each value as captured (cut at
// its len); an empty slot writes nothing between the bars. rc is nil for
// a request halo could not read (then c is too: no braces at all).
func (c *captures) appendHeaders(b []byte, rc *rules.Captures) []byte {
	if c == nil {
		return b
	}
	for side, n := range [2]int{len(c.req), len(c.resp)} {
		if n == 0 {
			continue
		}
		b = append(b, " {"...)
		for i := range n {
			if i > 0 {
				b = append(b, '|')
			}
			v, _ := rc.Get(side == 1, i)
			b = appendCaptured(b, v, len(v), false)
		}
		b = append(b, '}')
	}
	return b
}

// appendCaptured writes a value cut at n bytes, with the bytes HAProxy
// escapes in captures (controls, DEL and above, '"', '#', and '{', '|',
// '}' which delimit them) as #XX; dash writes "-" for no value.
func appendCaptured(b, v []byte, n int, dash bool) []byte {
	if v == nil && dash {
		return append(b, '-')
	}
	if len(v) > n {
		v = v[:n]
	}
	const hex = "0123456789ABCDEF"
	for _, c := range v {
		if c < 0x20 || c >= 0x7f || c == '"' || c == '#' || c == '{' || c == '|' || c == '}' {
			b = append(b, '#', hex[c>>4], hex[c&15])
			continue
		}
		b = append(b, c)
	}
	return b
}

var (
	headerCookie      = []byte("Cookie")
	headerSetCookie   = []byte("Set-Cookie")
	headerContentType = []byte("Content-Type")
)
