package proxy

import (
	"bytes"

	"github.com/halo-lb/halo/config"

	"github.com/valyala/fasthttp"
)

// captures are a frontend's capture lines, for its httplog lines.
type captures struct {
	req, resp []capture
	cookie    *capture
}

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
		k := capture{name: []byte(cc.Name), len: cc.Len}
		switch cc.Kind {
		case config.CaptureRequest:
			c.req = append(c.req, k)
		case config.CaptureResponse:
			c.resp = append(c.resp, k)
		case config.CaptureCookie:
			c.cookie = &k // HAProxy keeps one: the last line
		}
	}
	return c
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

// appendHeaders writes HAProxy's %hr %hs: " {v1|v2}" for the request
// captures, then " {v}" for the response's, each value cut at its len;
// a missing header is empty. The response's are only a server's (server
// false: halo answered itself, and HAProxy captures nothing).
func (c *captures) appendHeaders(b []byte, ctx *fasthttp.RequestCtx, server bool) []byte {
	if c == nil {
		return b
	}
	if len(c.req) > 0 {
		b = append(b, " {"...)
		for i, k := range c.req {
			if i > 0 {
				b = append(b, '|')
			}
			var found []byte
			for name, v := range ctx.Request.Header.All() {
				if bytes.EqualFold(name, k.name) {
					found = v // the last field of that name, as HAProxy
				}
			}
			if bytes.EqualFold(k.name, headerHost) && found == nil {
				found = ctx.Request.Header.Host()
			}
			b = appendCaptured(b, found, k.len, false)
		}
		b = append(b, '}')
	}
	if len(c.resp) > 0 {
		b = append(b, " {"...)
		for i, k := range c.resp {
			if i > 0 {
				b = append(b, '|')
			}
			if !server {
				continue
			}
			var found []byte
			for name, v := range ctx.Response.Header.All() {
				if bytes.EqualFold(name, k.name) {
					found = v
				}
			}
			if found == nil && bytes.EqualFold(k.name, headerContentType) {
				found = ctx.Response.Header.ContentType()
			}
			b = appendCaptured(b, found, k.len, false)
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
