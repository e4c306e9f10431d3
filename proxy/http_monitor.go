package proxy

import (
	"bytes"

	"github.com/halo-lb/halo/config"
	"github.com/halo-lb/halo/proxy/rules"

	"github.com/valyala/fasthttp"
)

// monitor is a frontend's monitor-uri with its monitor fail conditions.
type monitor struct {
	uri  []byte
	fail []*rules.Cond
}

// buildHTTPExtras compiles what the frontend's monitor, forwardfor,
// originalto and capture lines need, with the snapshot's rules
// compiler (the conditions' ACLs are the frontend's).
func (fe *frontend) buildHTTPExtras(c *rules.Compiler) error {
	// Mode tcp has capture slots too (declare capture, tcp-request
	// content capture), which capture.req.hdr reads.
	fe.captures = newCaptures(fe.cfg.Captures)
	if fe.cfg.Mode != config.ModeHTTP {
		return nil
	}
	if uri := fe.cfg.MonitorURI; uri != "" {
		m := &monitor{uri: []byte(uri)}
		for _, lc := range fe.cfg.MonitorFail {
			cond, err := c.CompileCond(lc, rules.ACLs(fe.cfg.Rules.ACLs))
			if err != nil {
				return err
			}
			m.fail = append(m.fail, cond)
		}
		fe.monitor = m
	}
	fe.fwd = newForwarded(&fe.cfg.Options)
	return fe.buildUniqueID(c)
}

// answerMonitor answers a request for the monitor URI itself: 200, or 503
// while a monitor fail condition holds. As HAProxy, it runs before any
// rule, the request is counted but not logged, and the answer is the
// error page for its status (an errorfile 200 or 503 replaces it).
//
//go:noinline
func (fe *frontend) answerMonitor(ctx *fasthttp.RequestCtx) bool {
	m := fe.monitor
	if !bytes.Equal(ctx.Request.Header.RequestURI(), m.uri) {
		return false
	}
	status := fasthttp.StatusOK
	if len(m.fail) > 0 {
		t := fe.startTxn(ctx)
		for _, c := range m.fail {
			if c.Eval(t) || t.Expired() {
				// A condition past the deadline fails the check: the
				// monitor cannot say the site is well.
				status = fasthttp.StatusServiceUnavailable
				break
			}
		}
		endTxn(t)
	}
	fe.setError(&ctx.Response, nil, status, false)
	fe.state.Requests.Add(1)
	fe.state.HTTPStatus[status/100].Add(1)
	return true
}
