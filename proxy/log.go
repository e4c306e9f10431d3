package proxy

import (
	"net"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"
)

// HAProxy's log date format: [24/Nov/2026:19:14:05.123].
const logTime = "02/Jan/2006:15:04:05.000"

func appendMs(b []byte, d time.Duration) []byte {
	return strconv.AppendInt(b, d.Milliseconds(), 10)
}

// logTCP writes HAProxy's tcplog line for a closed L4 session:
// client [accept date] frontend backend/server Tw/Tc/Tt bytes termination
// actconn/feconn/beconn/srv_conn/retries srv_queue/backend_queue
func (fe *frontend) logTCP(c *net.TCPConn, ss *session) {
	if fe.access == nil {
		return
	}
	now := time.Now()
	b := make([]byte, 0, 256)
	b = append(b, c.RemoteAddr().String()...)
	b = append(b, " ["...)
	b = ss.accepted.AppendFormat(b, logTime)
	b = append(b, "] "...)
	b = append(b, fe.cfg.Name...)
	b = append(b, ' ')
	b = append(b, fe.backend.cfg.Name...)
	b = append(b, '/')
	tc := time.Duration(-1)
	if ss.srv != nil {
		b = append(b, ss.srv.cfg.Name...)
		tc = ss.connected.Sub(ss.accepted)
	} else {
		b = append(b, "<NOSRV>"...)
	}
	b = append(b, " 0/"...)
	if tc < 0 {
		b = append(b, "-1"...)
	} else {
		b = appendMs(b, tc)
	}
	b = append(b, '/')
	b = appendMs(b, now.Sub(ss.accepted))
	b = append(b, ' ')
	b = strconv.AppendInt(b, ss.out, 10)
	b = append(b, ' ')
	b = append(b, ss.termination[:]...)
	b = fe.appendConnCounts(b, ss.srv, ss.retries)
	b = append(b, " 0/0"...)
	fe.access.Info(string(b))
}

// logHTTP writes HAProxy's httplog line for one request:
// client [request date] frontend backend/server TR/Tw/Tc/Tr/Ta status bytes
// - - termination conn counts queues "request line"
func (fe *frontend) logHTTP(ctx *fasthttp.RequestCtx, srv *server, start time.Time, retries int, err error) {
	b := make([]byte, 0, 256)
	b = append(b, ctx.RemoteAddr().String()...)
	b = append(b, " ["...)
	b = start.AppendFormat(b, logTime)
	b = append(b, "] "...)
	b = append(b, fe.cfg.Name...)
	b = append(b, ' ')
	b = append(b, fe.backend.cfg.Name...)
	b = append(b, '/')
	if srv != nil && err == nil {
		b = append(b, srv.cfg.Name...)
	} else {
		b = append(b, "<NOSRV>"...)
	}
	total := time.Since(start)
	b = append(b, " 0/0/-1/"...)
	b = appendMs(b, total)
	b = append(b, '/')
	b = appendMs(b, total)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(ctx.Response.StatusCode()), 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(max(ctx.Response.Header.ContentLength(), 0)), 10)
	b = append(b, " - - "...)
	switch {
	case err == nil:
		b = append(b, "----"...)
	case statusFor(err) == fasthttp.StatusGatewayTimeout:
		b = append(b, "sH--"...)
	case statusFor(err) == fasthttp.StatusServiceUnavailable:
		b = append(b, "SC--"...)
	default:
		b = append(b, "SH--"...)
	}
	b = fe.appendConnCounts(b, srv, retries)
	b = append(b, " 0/0 \""...)
	b = append(b, ctx.Method()...)
	b = append(b, ' ')
	b = append(b, ctx.RequestURI()...)
	b = append(b, ' ')
	b = append(b, ctx.Request.Header.Protocol()...)
	b = append(b, '"')
	fe.access.Info(string(b))
}

func (fe *frontend) appendConnCounts(b []byte, srv *server, retries int) []byte {
	b = append(b, ' ')
	b = strconv.AppendInt(b, fe.listeners[0].global.current(), 10)
	b = append(b, '/')
	b = strconv.AppendInt(b, fe.state.CurConns.Load(), 10)
	b = append(b, '/')
	b = strconv.AppendInt(b, fe.backend.counters.CurConns.Load(), 10)
	b = append(b, '/')
	if srv != nil {
		b = strconv.AppendInt(b, srv.state.CurConns.Load(), 10)
	} else {
		b = append(b, '0')
	}
	b = append(b, '/')
	return strconv.AppendInt(b, int64(retries), 10)
}
