package proxy

import (
	"github.com/halo-lb/halo/proxy/rules"

	"github.com/valyala/fasthttp"
)

// buildUniqueID compiles the frontend's unique-id-format.
func (fe *frontend) buildUniqueID(c *rules.Compiler) error {
	if fe.cfg.UniqueIDFormat == nil {
		return nil
	}
	f, err := c.CompileFormat(fe.cfg.UniqueIDFormat)
	if err != nil {
		return err
	}
	fe.uniqueID = f
	if fe.cfg.UniqueIDHeader != "" {
		fe.uniqueIDHeader = []byte(fe.cfg.UniqueIDHeader)
	}
	return nil
}

// addUniqueID makes the request's unique ID where HAProxy 2.6 makes it,
// after the frontend's and the backend's http-request rules and before
// option forwardfor (an http-response rule, or a later %ID, sees the
// same one), and adds it to the request as unique-id-header when there
// is one: added, not set, as HAProxy adds it. It allocates nothing once
// the Txn's ID buffer and the header's have grown.
func (fe *frontend) addUniqueID(ctx *fasthttp.RequestCtx, t *rules.Txn) {
	id, ok := t.UniqueID()
	if !ok || fe.uniqueIDHeader == nil {
		return
	}
	ctx.Request.Header.AddBytesKV(fe.uniqueIDHeader, id)
	t.HeadersChanged()
}
