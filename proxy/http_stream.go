package proxy

import (
	"bufio"
	"io"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// writeStreamedRequest sends a large or chunked request body from the client
// to the server as it arrives, refreshing both sides' deadlines as bytes
// move so that a long upload is bounded by inactivity, not total time.
func writeStreamedRequest(ctx *fasthttp.RequestCtx, bw *bufio.Writer, upstream net.Conn, clientTimeout, serverTimeout time.Duration) (sent int64, err error) {
	cl := ctx.Request.Header.ContentLength()
	if cl < 0 {
		ctx.Request.Header.SetContentLength(-1) // chunked
	}
	if err := ctx.Request.Header.Write(bw); err != nil {
		return 0, err
	}
	buf := chunkPool.Get().(*[]byte)
	defer chunkPool.Put(buf)
	body := ctx.RequestBodyStream()
	every := refreshInterval(clientTimeout, serverTimeout)
	var refreshed time.Time
	for {
		if now := time.Now(); now.Sub(refreshed) >= every {
			refreshed = now
			if clientTimeout > 0 {
				_ = ctx.Conn().SetReadDeadline(now.Add(clientTimeout))
			}
			if serverTimeout > 0 {
				_ = upstream.SetWriteDeadline(now.Add(serverTimeout))
			}
		}
		n, rerr := body.Read(*buf)
		if n > 0 {
			sent += int64(n)
			if cl < 0 {
				if _, err := bw.WriteString(strconv.FormatInt(int64(n), 16) + "\r\n"); err != nil {
					return sent, err
				}
			}
			if _, err := bw.Write((*buf)[:n]); err != nil {
				return sent, err
			}
			if cl < 0 {
				if _, err := bw.WriteString("\r\n"); err != nil {
					return sent, err
				}
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return sent, &clientError{rerr}
		}
	}
	if cl >= 0 && sent != int64(cl) {
		return sent, &clientError{io.ErrUnexpectedEOF}
	}
	if cl < 0 {
		if _, err := bw.WriteString("0\r\n\r\n"); err != nil {
			return sent, err
		}
	}
	return sent, nil
}

// refreshInterval is how often a streaming copy pushes its inactivity
// deadlines out: often enough that no pause shorter than the smallest
// timeout can trip one, and no more than once a second.
func refreshInterval(timeouts ...time.Duration) time.Duration {
	every := time.Second
	for _, t := range timeouts {
		if t > 0 {
			every = min(every, t/4)
		}
	}
	return every
}

var chunkPool = sync.Pool{New: func() any { b := make([]byte, streamChunk); return &b }}

var streamPool = sync.Pool{New: func() any { return &bodyStream{} }}

// bodyStream is a response body being relayed from a server connection to
// the client. fasthttp reads it while writing the response and closes it
// when done (or when the client went away), which returns the server
// connection to the pool only if the body was read to its end.
type bodyStream struct {
	up  fasthttp.Response // owns the server-side body reader
	ctx *fasthttp.RequestCtx
	fe  *frontend
	srv *server
	// hc is the client the server connection and br came from (the
	// server's pooled one, or the one for fresh connections): br goes
	// back to its pool.
	hc         *fasthttp.HostClient
	conn       net.Conn
	release    func(reuse bool)
	br         *bufio.Reader
	eof        bool
	keepConn   bool
	clientIdle time.Duration
	serverIdle time.Duration
	refreshed  time.Time
	every      time.Duration
	active     bool
	// dropped: an http-response rule replaced the response before its
	// body was sent (dropStream); Close then only closes the server's
	// side, and the handler logs and releases, as for a small response.
	dropped bool
	ex      exchange // for the access log line, written on Close
	upErr   error    // the server side failed mid-body
	sized   bool     // the body has a Content-Length: WriteTo sends it
}

func (s *bodyStream) start(ctx *fasthttp.RequestCtx, fe *frontend, srv *server, hc *fasthttp.HostClient, conn net.Conn, br *bufio.Reader, cl int, keepConn bool, clientIdle, serverIdle time.Duration) {
	s.up.Reset()
	s.ctx, s.srv, s.hc, s.conn, s.br, s.eof, s.keepConn = ctx, srv, hc, conn, br, false, keepConn
	s.fe, s.clientIdle, s.serverIdle, s.refreshed, s.active = fe, clientIdle, serverIdle, time.Time{}, true
	s.every = refreshInterval(clientIdle, serverIdle)
	s.up.StreamBody = true
	s.up.Header.SetContentLength(cl)
	s.sized = cl >= 0
}

// streamBufs are WriteTo's buffers: a server read of up to 32 KiB (twice
// the server side's read buffer, so that a bulk body bypasses it) is one
// write to the client.
var streamBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// SupportsBodyWriteTo tells fasthttp to hand a body with a
// Content-Length to WriteTo. A chunked body goes through fasthttp's
// chunk writer, which flushes every chunk.
func (s *bodyStream) SupportsBodyWriteTo() bool { return s.sized }

// WriteTo sends a body with a Content-Length to the client as its bytes
// come from the server: each read is written to the client's connection
// at once, as HAProxy forwards what it has. Through fasthttp's writer, a
// body's bytes waited in its 4 KiB buffer until it was full or the body
// ended (measured: a server that sent 70 KiB and 1,000 bytes and paused
// 2 s had 3,045 of them held back for the pause), and a server that broke
// off the body lost the client the ones still buffered (102,400 of
// 103,400 reached it). The writer is empty when fasthttp calls WriteTo:
// the head was flushed (ImmediateHeaderFlush) and nothing else is
// written to it; w, its size-checking wrapper, is not used, since the
// server side's reader already stops at the Content-Length.
func (s *bodyStream) WriteTo(_ io.Writer) (int64, error) {
	bp := streamBufs.Get().(*[]byte)
	defer streamBufs.Put(bp)
	c := s.ctx.Conn()
	var total int64
	for {
		n, err := s.Read(*bp)
		if n > 0 {
			w, werr := c.Write((*bp)[:n])
			total += int64(w)
			if werr != nil {
				return total, werr
			}
		}
		switch {
		case err == io.EOF:
			return total, nil
		case err != nil:
			return total, err
		}
	}
}

func (s *bodyStream) Read(p []byte) (n int, err error) {
	defer s.recoverRead(&n, &err)
	if h := panicHook.Load(); h != nil {
		(*h)(hookStreamRead, s)
	}
	if now := time.Now(); now.Sub(s.refreshed) >= s.every {
		s.refreshed = now
		if s.serverIdle > 0 {
			_ = s.conn.SetReadDeadline(now.Add(s.serverIdle))
		}
		if s.clientIdle > 0 {
			_ = s.ctx.Conn().SetWriteDeadline(now.Add(s.clientIdle))
		}
	}
	n, err = s.up.BodyStream().Read(p)
	s.fe.countBytes(s.srv, 0, int64(n))
	s.ex.bytes += int64(n)
	switch {
	case err == io.EOF:
		s.eof = true
	case err != nil:
		s.upErr = err
	}
	return n, err
}

// Close returns the server connection to its pool (or closes it if the body
// was not read to the end) and the stream to its pool. It is idempotent.
func (s *bodyStream) Close() error {
	if !s.active {
		return nil
	}
	if s.dropped {
		s.abandon()
		return nil
	}
	defer s.recoverClose()
	if h := panicHook.Load(); h != nil {
		(*h)(hookStreamClose, s.ctx)
	}
	reuse := s.eof && s.keepConn
	_ = s.up.CloseBodyStream()
	// A server that broke off the body counts a response error, one that
	// stalled past timeout server does not, as HAProxy counts them.
	stalled := s.upErr != nil && isTimeout(s.upErr)
	if s.upErr != nil && !stalled && s.upErr != errPanicked {
		s.srv.state.RespErrors.Add(1)
	}
	if s.fe.access != nil {
		term := "----"
		switch {
		case s.upErr == errPanicked:
			term = "ID--" // Read panicked (recoverRead)
		case stalled:
			term = "sD--"
		case s.upErr != nil:
			term = "SD--" // the server broke off the body
		case !s.eof:
			term = "CD--" // the client went away first
		}
		s.fe.logHTTP(s.ctx, &s.ex, term, s.upErr == nil)
	}
	endCaptures(s.ex.caps)
	s.ex.caps = nil
	if s.ex.timed {
		s.srv.recordTimes(&s.ex)
	}
	s.releaseSlot()
	s.finish(reuse)
	return nil
}

// releaseSlot gives back the server slot and the backend's session, which
// were the handler's until the stream took over (an abandoned stream
// leaves them to the handler), once: s.ex.be is nil after.
func (s *bodyStream) releaseSlot() {
	if s.ex.be != nil {
		s.srv.be.queue.release(s.srv.member)
		s.ex.be.endSession()
		s.ex.be = nil
	}
}

// dropStream gives up on the response's body stream, if it has one, before
// a rule replaces the response: what the stream would have done on Close
// (the access line, the server slot, the captures) stays the handler's,
// whose exchange goes on as a response that did not stream. It reports
// whether there was a stream.
func dropStream(ctx *fasthttp.RequestCtx) bool {
	s, ok := ctx.Response.BodyStream().(*bodyStream)
	if ok && s.active {
		s.dropped = true
	}
	return ok
}

// abandon gives up on a stream whose body could not even be started.
func (s *bodyStream) abandon() {
	_ = s.up.CloseBodyStream()
	s.finish(false)
}

func (s *bodyStream) finish(reuse bool) {
	// Bytes after the body's end are not a response to anything: the
	// connection cannot be trusted with another request.
	reuse = reuse && s.br.Buffered() == 0 && !s.srv.be.retired.Load()
	s.hc.ReleaseReader(s.br)
	if release := s.release; release != nil {
		s.release = nil // once, even if what follows panics (recoverClose)
		release(reuse)
	}
	s.up.Reset()
	s.ctx, s.fe, s.srv, s.hc, s.conn, s.br, s.release, s.active, s.dropped = nil, nil, nil, nil, nil, nil, nil, false, false
	s.ex, s.upErr = exchange{}, nil
	streamPool.Put(s)
}
