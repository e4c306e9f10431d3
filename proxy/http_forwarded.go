package proxy

import (
	"bytes"
	"net/netip"

	"github.com/halo-lb/halo/config"

	"github.com/valyala/fasthttp"
)

// forwarded is a section's option forwardfor and originalto.
type forwarded struct {
	xff, xot             bool
	ifNone               bool
	xffName, xotName     []byte
	xffExcept, xotExcept netip.Prefix
}

func newForwarded(o *config.Options) *forwarded {
	if !o.ForwardFor && !o.OriginalTo {
		return nil
	}
	return &forwarded{
		xff: o.ForwardFor, xot: o.OriginalTo, ifNone: o.XFF.IfNone,
		xffName: []byte(o.XFF.Header), xotName: []byte(o.XOT.Header),
		xffExcept: o.XFF.Except, xotExcept: o.XOT.Except,
	}
}

// addForwarded adds X-Forwarded-For and X-Original-To once the request is
// routed, as HAProxy does after the http-request rules: an option of the
// frontend or of the backend turns a header on, the backend's arguments
// win over the frontend's, and an address in either's except network
// gets none.
func (fe *frontend) addForwarded(ctx *fasthttp.RequestCtx, be *backend) {
	f, b := fe.fwd, be.fwd
	h := &ctx.Request.Header
	var buf [48]byte
	if f.on(true) || b.on(true) {
		o := pickForwarded(f, b, true)
		ip, ok := netip.AddrFromSlice(ctx.RemoteIP())
		ip = ip.Unmap()
		if ok && !f.excepts(true, ip) && !b.excepts(true, ip) && !(o.ifNone && hasHeader(h, o.xffName)) {
			h.AddBytesKV(o.xffName, ip.AppendTo(buf[:0]))
		}
	}
	if f.on(false) || b.on(false) {
		o := pickForwarded(f, b, false)
		ip := addrPortOf(ctx.LocalAddr()).Addr().Unmap()
		if ip.IsValid() && !f.excepts(false, ip) && !b.excepts(false, ip) {
			h.AddBytesKV(o.xotName, ip.AppendTo(buf[:0]))
		}
	}
}

// on reports whether f sets forwardfor (xff) or originalto.
func (f *forwarded) on(xff bool) bool {
	return f != nil && (xff && f.xff || !xff && f.xot)
}

func (f *forwarded) excepts(xff bool, ip netip.Addr) bool {
	if !f.on(xff) {
		return false
	}
	if xff {
		return f.xffExcept.IsValid() && f.xffExcept.Contains(ip)
	}
	return f.xotExcept.IsValid() && f.xotExcept.Contains(ip)
}

func pickForwarded(f, b *forwarded, xff bool) *forwarded {
	if b.on(xff) {
		return b
	}
	return f
}

// hasHeader reports whether the request has a field called name in any
// case (names are not normalised, so Peek would match the case only).
func hasHeader(h *fasthttp.RequestHeader, name []byte) bool {
	for k := range h.All() {
		if bytes.EqualFold(k, name) {
			return true
		}
	}
	return false
}
