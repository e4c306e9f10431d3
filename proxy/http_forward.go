package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"math"
	"net"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/halo-lb/halo/proxy/h1"

	"github.com/valyala/fasthttp"
)

// smallBody is the largest response body that is read whole before it is
// sent on; anything larger, or of unknown length, streams through a
// fixed-size buffer so a multi-GiB image download costs no memory.
const smallBody = 64 << 10

// streamChunk is the buffer a streamed body moves through.
const streamChunk = 32 << 10

func (be *backend) newHostClient(srv *server) *fasthttp.HostClient {
	return &fasthttp.HostClient{
		Addr: srv.addr,
		Dial: func(string) (net.Conn, error) {
			c, err := srv.dialServer(&be.dialer, nil, "")
			if err != nil {
				return nil, &dialError{err}
			}
			return c, nil
		},
		MaxConns:                      math.MaxInt32, // per-server maxconn and queues come with the balancing issue
		MaxIdleConnDuration:           10 * time.Second,
		ReadBufferSize:                16 << 10,
		WriteBufferSize:               16 << 10,
		DisableHeaderNamesNormalizing: true,
		DisablePathNormalizing:        true,
		NoDefaultUserAgentHeader:      true,
	}
}

// forward sends ctx's request to srv and reads the response into ctx. A
// response body up to smallBody is read whole; a larger or unsized one is
// handed to the client side as a stream that pulls from the server
// connection as the client reads, with inactivity deadlines on both sides.
//
// A request body up to smallBody is buffered first so that the request can
// be replayed if a kept-alive connection turns out to be stale. A larger one
// streams as it arrives and so cannot be replayed: it always gets a new
// connection, which is closed afterwards.
//
// It reports whether the response body streams: then the stream, not the
// caller, writes the access log line once the body is sent.
func (srv *server) forward(ctx *fasthttp.RequestCtx, fe *frontend, serverTimeout time.Duration, ex *exchange) (streamed bool, err error) {
	clientTimeout := fe.cfg.Timeouts.Client
	req := &ctx.Request
	bigRequest := req.IsBodyStream() && !fitsSmall(req.Header.ContentLength())
	if req.IsBodyStream() && !bigRequest {
		if err := readSmallBody(req, ex); err != nil {
			return false, err
		}
	}
	if ex.hostless || len(req.Header.Host()) == 0 {
		// An HTTP/1.0 request without Host: halo sends HTTP/1.1, which
		// needs one, and names the server it goes to (each retry's), as
		// nginx does.
		ex.hostless = true
		req.Header.SetHost(srv.addr)
	}
	hc := srv.http
	// fresh: the connection serves this request only and is closed after
	// it (see privateClient for why some servers need that).
	fresh := bigRequest || srv.transport.private
	switch {
	case srv.transport.private:
		hc = srv.be.privateClient(srv, ctx)
	case bigRequest:
		hc = srv.httpFresh
	}
	// A fresh connection is closed after this request: telling the pool
	// so keeps a private client from starting an idle-connection cleaner
	// goroutine that would outlive the request.
	cc, err := hc.AcquireConn(0, srv.transport.private)
	if err != nil {
		return false, err
	}
	reused := !cc.LastUseTime().IsZero()
	if reused {
		// A kept-alive connection was there at once: Tc is 0, as HAProxy
		// logs it, and the clock need not be read for it.
		ex.connected = ex.queued + reusedAtOnce
	} else {
		ex.connected = ex.since()
	}
	conn := cc.Conn()
	if err = srv.sendRequest(ctx, fe, hc, conn, bigRequest, serverTimeout); err != nil {
		hc.CloseConn(cc)
		if reused && !bigRequest {
			return false, &staleError{err}
		}
		return false, err
	}
	br := hc.AcquireReader(conn)
	resp := &ctx.Response
	var head int64 // the response heads' bytes, counted with the body's
	var switched bool
	if head, switched, err = readResponseHead(&resp.Header, br, ex.upgrading); err != nil {
		hc.ReleaseReader(br)
		hc.CloseConn(cc)
		if reused && !bigRequest && idempotent(req) && closedBeforeResponse(err) {
			return false, &staleError{err}
		}
		return false, err
	}
	ex.responded, ex.srvHead = ex.since(), head
	if err = ex.retryStatus(ctx); err != nil {
		hc.ReleaseReader(br)
		hc.CloseConn(cc) // as HAProxy, which resets the server connection
		return false, err
	}
	if switched {
		err = srv.switchProtocols(ctx, fe, conn, br, head, ex)
		hc.ReleaseReader(br)
		hc.CloseConn(cc) // a switched connection never goes back to the pool
		return false, err
	}
	cl := resp.Header.ContentLength()
	// A body delimited by the server closing (neither Content-Length nor
	// chunked, cl == -2) leaves nothing to reuse.
	keepConn := !resp.Header.ConnectionClose() && !fresh && cl != -2 && !ex.closeServer
	cleanResponse(&resp.Header)
	noBody := req.Header.IsHead() || resp.Header.StatusCode() == fasthttp.StatusNoContent ||
		resp.Header.StatusCode() == fasthttp.StatusNotModified
	switch {
	case noBody:
		resp.SkipBody = req.Header.IsHead()
		fe.countBytes(srv, 0, head)
	case fitsSmall(cl):
		err = readSmallResponseBody(resp, br)
		fe.countBytes(srv, 0, int64(cl)+head)
		ex.bytes = int64(cl)
	default:
		fe.countBytes(srv, 0, head)
		s := streamPool.Get().(*bodyStream)
		s.start(ctx, fe, srv, hc, conn, br, cl, keepConn, clientTimeout, serverTimeout)
		s.ex = *ex
		// fasthttp's connection type is unexported, so the stream keeps
		// the pool's verdict as a closure: one allocation per streamed
		// body, never on the small-response path.
		s.release = func(reuse bool) {
			if reuse {
				hc.ReleaseConn(cc)
			} else {
				hc.CloseConn(cc)
			}
		}
		if err = s.up.ReadBody(br, 0); err != nil {
			s.abandon()
			return false, &bodyError{err}
		}
		resp.SetBodyStream(s, max(cl, -1))
		// The head goes to the client before the body's first read, as
		// HAProxy sends it: a server that breaks off at once still
		// leaves the client a 200 whose body it sees cut short, rather
		// than nothing at all.
		resp.ImmediateHeaderFlush = true
		return true, nil
	}
	keepConn = keepConn && br.Buffered() == 0 && !srv.be.retired.Load()
	hc.ReleaseReader(br)
	if err != nil || !keepConn {
		hc.CloseConn(cc)
	} else {
		hc.ReleaseConn(cc)
	}
	return false, err
}

// readSmallResponseBody reads a body of at most smallBody bytes whole. Its
// temporaries are off forward's frame (see handleHTTP).
//
//go:noinline
func readSmallResponseBody(resp *fasthttp.Response, br *bufio.Reader) error {
	switch err := resp.ReadBody(br, smallBody); {
	case err != nil:
		return &bodyError{err}
	case br.Buffered() > 0:
		// More than Content-Length: whatever the server meant, the
		// response cannot be trusted, nor the connection.
		return &bodyError{&serverProtocolError{err: errLongerThanLength}}
	}
	return nil
}

// sendRequest writes the request to the server connection: from memory,
// or streaming a large body from the client as it arrives. It sets the
// server side's deadline for the wait that follows.
func (srv *server) sendRequest(ctx *fasthttp.RequestCtx, fe *frontend, hc *fasthttp.HostClient, conn net.Conn, bigRequest bool, serverTimeout time.Duration) error {
	if serverTimeout > 0 {
		_ = conn.SetDeadline(time.Now().Add(serverTimeout))
	}
	req := &ctx.Request
	bw := hc.AcquireWriter(conn)
	sent := int64(max(req.Header.ContentLength(), 0))
	var err error
	if bigRequest {
		sent, err = writeStreamedRequest(ctx, bw, conn, fe.cfg.Timeouts.Client, serverTimeout)
	} else {
		err = req.Write(bw)
	}
	if err == nil {
		err = bw.Flush()
	}
	hc.ReleaseWriter(bw)
	if err != nil {
		return err
	}
	fe.countBytes(srv, sent+requestHeadLen(&req.Header), 0)
	// The wait for the response starts now, however long the request
	// body took to send. A request sent from memory took no time worth
	// a second deadline update.
	if serverTimeout > 0 && bigRequest {
		_ = conn.SetReadDeadline(time.Now().Add(serverTimeout))
	}
	return nil
}

// requestHeadLen is how many bytes the request's head took as the client
// sent it (its request line and fields), counted in bin as HAProxy counts
// them: what fasthttp parsed, read off without serializing anything.
func requestHeadLen(h *fasthttp.RequestHeader) int64 {
	line := len(h.Method()) + 1 + len(h.RequestURI()) + 1 + len(h.Protocol()) + 2
	return int64(line + len(h.RawHeaders()))
}

// readResponseHead reads the server's response head, skipping interim
// (1xx) responses, and returns how many bytes the heads took (counted in
// bout as HAProxy counts them). For a request that asked to switch
// protocols (upgrading), a 101 ends it: switched, with the 101 head left
// in br as the server wrote it, for the tunnel to send on.
func readResponseHead(h *fasthttp.ResponseHeader, br *bufio.Reader, upgrading bool) (total int64, switched bool, err error) {
	h.DisableNormalizing()
	for {
		n, err := checkResponseHead(br)
		if err != nil {
			return total, false, err
		}
		total += int64(n)
		if switched, err := check101(h, br, n, upgrading); switched || err != nil {
			return total, switched, err
		}
		if err := h.Read(br); err != nil {
			return total, false, headReadError(err)
		}
		sc := h.StatusCode()
		if sc >= 200 || sc < 100 {
			return total, false, nil
		}
	}
}

// check101 reports whether the head of n bytes at the start of br is a
// 101, and refuses one the request did not ask for. Its temporaries are off
// readResponseHead's frame, part of every request's stack.
//
//go:noinline
func check101(h *fasthttp.ResponseHeader, br *bufio.Reader, n int, upgrading bool) (bool, error) {
	raw, _ := br.Peek(n)
	switch {
	case !is101(raw):
		return false, nil
	case !upgrading:
		return false, &serverProtocolError{err: errUnaskedSwitch, head: bytes.Clone(raw)}
	}
	h.SetStatusCode(fasthttp.StatusSwitchingProtocols)
	return true, nil
}

func idempotent(req *fasthttp.Request) bool {
	h := &req.Header
	return h.IsGet() || h.IsHead() || h.IsPut() || h.IsDelete() || h.IsOptions() || h.IsTrace()
}

// closedBeforeResponse reports whether a response read failed before its
// first byte because the server had closed or reset the connection.
func closedBeforeResponse(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

func fitsSmall(contentLength int) bool { return contentLength >= 0 && contentLength <= smallBody }

var (
	errLongerThanLength = errors.New("body longer than its Content-Length")
	// errUnaskedSwitch is a 101 to a request that did not ask to switch.
	errUnaskedSwitch = errors.New("server switched protocols though the request asked for no upgrade")
)

// smallBodies holds the buffers request bodies up to smallBody are read
// into before they are sent.
var smallBodies = sync.Pool{New: func() any {
	b := make([]byte, smallBody)
	return &b
}}

// readSmallBody reads the whole request body into a buffer the exchange
// keeps until it ends. fasthttp's Request.Body would replace a body it
// failed to read with the error's text, which would then be sent.
func readSmallBody(req *fasthttp.Request, ex *exchange) error {
	buf := smallBodies.Get().(*[]byte)
	b := (*buf)[:req.Header.ContentLength()]
	if _, err := io.ReadFull(req.BodyStream(), b); err != nil {
		smallBodies.Put(buf)
		return &clientError{err}
	}
	req.SetBodyRaw(b)
	ex.body = buf
	return nil
}

// responseLimits bound a server's response head: what the server
// connection's read buffer holds, and no bound on fields beyond that.
var responseLimits = h1.Limits{MaxHead: 16 << 10, MaxFields: 1 << 16}

// checkResponseHead holds the response head that br starts with to
// package h1's rules before fasthttp parses it, reading until the head is
// complete, and returns the head's length.
func checkResponseHead(br *bufio.Reader) (int, error) {
	for n := 1; ; {
		if _, err := br.Peek(n); err != nil {
			return 0, err
		}
		buf, _ := br.Peek(br.Buffered())
		end, herr := h1.CheckResponseHead(buf, responseLimits)
		switch {
		case herr != nil:
			return 0, &serverProtocolError{err: herr, head: append([]byte(nil), buf...)}
		case end > 0:
			return end, nil
		case len(buf) >= br.Size():
			return 0, &serverProtocolError{err: errors.New("response head larger than " + strconv.Itoa(br.Size()) + " bytes")}
		}
		n = len(buf) + 1
	}
}
