package proxy

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"math"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"
)

// smallBody is the largest response body that is read whole before it is
// sent on; anything larger, or of unknown length, streams through a
// fixed-size buffer so a multi-GiB image download costs no memory.
const smallBody = 64 << 10

// streamChunk is the buffer a streamed body moves through.
const streamChunk = 32 << 10

// countBytes adds body bytes moved for this frontend to the frontend's,
// backend's and server's counters.
func (fe *frontend) countBytes(srv *server, in, out int64) {
	if in > 0 {
		fe.state.BytesIn.Add(uint64(in))
		fe.backend.counters.BytesIn.Add(uint64(in))
		srv.state.BytesIn.Add(uint64(in))
	}
	if out > 0 {
		fe.state.BytesOut.Add(uint64(out))
		fe.backend.counters.BytesOut.Add(uint64(out))
		srv.state.BytesOut.Add(uint64(out))
	}
}

// Errors of the L7 exchange, mapped to a status in one place (statusFor).
var (
	errNoServer = errors.New("no server available")
	// errDial marks a failure to connect: nothing was sent, so the
	// request may always be retried on another server.
	errDial = errors.New("connecting to server")
	// errStale marks a kept-alive server connection that turned out to be
	// closed before any response byte came back: the server did not
	// process the request, so a replayable one may be retried.
	errStale = errors.New("server closed a kept-alive connection")
)

type staleError struct{ err error }

func (e *staleError) Error() string { return errStale.Error() + ": " + e.err.Error() }
func (e *staleError) Unwrap() []error {
	return []error{errStale, e.err}
}

type dialError struct{ err error }

func (e *dialError) Error() string { return errDial.Error() + ": " + e.err.Error() }
func (e *dialError) Unwrap() []error {
	return []error{errDial, e.err}
}

func (be *backend) newHostClient(srv *server) *fasthttp.HostClient {
	return &fasthttp.HostClient{
		Addr: srv.addr,
		Dial: func(addr string) (net.Conn, error) {
			c, err := be.dialer.Dial("tcp", addr)
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

// httpSettings are the frontend settings a fasthttp.Server is built with; a
// reload that leaves them unchanged keeps the running server, so its
// kept-alive connections are not disturbed.
type httpSettings struct {
	requestTimeout, keepAliveTimeout, clientTimeout time.Duration
}

func (fe *frontend) httpSettings() httpSettings {
	t := fe.cfg.Timeouts
	return httpSettings{t.HTTPRequest, t.HTTPKeepAlive, t.Client}
}

// httpServerFor returns the frontend's running fasthttp.Server if its
// settings are unchanged, or starts a new one and retires the old one in
// the background (its idle connections close, busy ones close after their
// current response, all within hard-stop-after).
func (p *Proxy) httpServerFor(fe *frontend, hardStop time.Duration) *fasthttp.Server {
	fs := fe.state
	want := fe.httpSettings()
	if fs.http != nil && fs.httpSettings == want {
		return fs.http
	}
	if old := fs.http; old != nil {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), hardStop)
			defer cancel()
			_ = old.ShutdownWithContext(ctx)
			p.forgetHTTPServer(old)
		}()
	}
	srv := &fasthttp.Server{
		Handler: func(ctx *fasthttp.RequestCtx) {
			// Requests are routed by the frontend live now, so kept-alive
			// connections follow reloads.
			fs.live.Load().handleHTTP(ctx)
		},
		ReadTimeout:                   want.requestTimeout,
		IdleTimeout:                   want.keepAliveTimeout,
		WriteTimeout:                  want.clientTimeout,
		StreamRequestBody:             true,
		MaxRequestBodySize:            math.MaxInt32,
		ReadBufferSize:                16 << 10,
		DisableHeaderNamesNormalizing: true,
		DisablePreParseMultipartForm:  true,
		NoDefaultServerHeader:         true,
		NoDefaultDate:                 true,
		NoDefaultContentType:          true,
		CloseOnShutdown:               true,
		LazyRequestTime:               true, // nothing reads RequestCtx.Time: spare fasthttp a clock read per request
		ReduceMemoryUsage:             true, // idle keep-alive connections hand their write buffer back
		Logger:                        discardLogger{},
	}
	// halo accepts connections itself and hands them to ServeConn, but
	// fasthttp's graceful shutdown only closes idle kept-alive connections
	// of a server that has a listener: give it one that never accepts.
	go func() { _ = srv.Serve(newParkedListener()) }()
	fs.http, fs.httpSettings = srv, want
	p.httpMu.Lock()
	p.httpServers[srv] = struct{}{}
	p.httpMu.Unlock()
	return srv
}

func (p *Proxy) forgetHTTPServer(srv *fasthttp.Server) {
	p.httpMu.Lock()
	delete(p.httpServers, srv)
	p.httpMu.Unlock()
}

// parkedListener is a net.Listener whose Accept blocks until Close.
type parkedListener struct {
	closed chan struct{}
	once   sync.Once
}

func newParkedListener() *parkedListener { return &parkedListener{closed: make(chan struct{})} }

func (l *parkedListener) Accept() (net.Conn, error) {
	<-l.closed
	return nil, net.ErrClosed
}

func (l *parkedListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *parkedListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4zero} }

type discardLogger struct{}

func (discardLogger) Printf(string, ...any) {}

// handleHTTP forwards one request to a server of the frontend's backend.
//
// Its frame is kept small on purpose: forward, called from here, reaches
// the deepest point of a connection's stack, and a goroutine keeps the
// stack it grew for its first request while its connection idles. Taking
// a server slot and answering an error run in functions of their own so
// that their temporaries are not part of this frame (measured: 9,800 idle
// connections hold 4 KiB stacks each instead of 8 KiB).
func (fe *frontend) handleHTTP(ctx *fasthttp.RequestCtx) {
	be := fe.backend
	fe.state.Requests.Add(1)
	be.counters.Requests.Add(1)
	prepareRequest(ctx, fe.cfg.Options.ForwardFor)
	ex := exchange{timed: fe.access != nil}
	ex.start = ex.now()
	var (
		srv      *server
		streamed bool
	)
	idx, err := be.acquireFor(ctx, &ex)
	for attempt := 0; err == nil; attempt++ {
		srv = be.servers[idx]
		ex.srv = srv
		streamed, err = srv.forward(ctx, fe, be.cfg.Timeouts.Server, &ex)
		if err == nil || !(errors.Is(err, errDial) || errors.Is(err, errStale)) {
			break
		}
		if errors.Is(err, errDial) {
			srv.state.ConnErrors.Add(1)
			if srv.observe != 0 {
				srv.observed(false)
			}
		}
		var again bool
		if idx, again = be.retryTarget(idx, attempt); !again {
			break
		}
		srv = be.servers[idx]
		err = nil
		ex.retries++
	}
	// A streamed response holds its server slot until its body is sent;
	// the stream releases it.
	if srv != nil && !streamed {
		be.queue.release(srv.member)
	}
	if err != nil {
		fe.answerError(ctx, err, srv)
	}
	class := ctx.Response.StatusCode() / 100
	if class < 1 || class > 5 {
		class = 0
	}
	fe.state.HTTPStatus[class].Add(1)
	be.counters.HTTPStatus[class].Add(1)
	if srv != nil && err == nil {
		srv.state.HTTPStatus[class].Add(1)
	}
	if srv != nil && srv.observe != 0 && !errors.Is(err, errDial) {
		srv.observeResponse(ctx.Response.StatusCode(), err)
	}
	// A streamed response is logged by its stream, once the body is sent.
	if fe.access != nil && !streamed {
		ex.err = err
		fe.logHTTP(ctx, &ex, terminationFor(err))
	}
}

// observeResponse reports a request the server took to its passive check:
// with observe layer7, an error or a 5xx status other than 501 and 505
// (HAProxy's list) counts as an error; with layer4, reaching the server
// was the success.
//
//go:noinline
func (srv *server) observeResponse(status int, err error) {
	ok := true
	if srv.observe == 7 {
		ok = err == nil && (status < 500 || status == 501 || status == 505)
	}
	srv.observed(ok)
}

// acquireFor takes a server slot for the request, computing the key of a
// hashing algorithm and waiting in the queue when servers are full; it
// records the wait in ex.
//
//go:noinline
func (be *backend) acquireFor(ctx *fasthttp.RequestCtx, ex *exchange) (int, error) {
	key, hasKey := uint64(0), false
	if be.hashed {
		key, hasKey = keyOf(&be.cfg.Balance, be.header, ctx)
	}
	idx, waited, err := be.queue.acquire(key, hasKey)
	ex.queued = waited
	return idx, err
}

// answerError replaces the response with HAProxy's error page for err and
// counts the error where it belongs.
//
//go:noinline
func (fe *frontend) answerError(ctx *fasthttp.RequestCtx, err error, srv *server) {
	status := statusFor(err)
	if errors.Is(err, errNoServer) || errors.Is(err, errDial) || errors.Is(err, errQueueTimeout) || errors.Is(err, errQueueFull) {
		fe.backend.counters.Denied.Add(1)
	} else if srv != nil {
		srv.state.RespErrors.Add(1)
	}
	fe.state.Errors.Add(1)
	ctx.Response.Reset()
	ctx.Response.SetStatusCode(status)
	ctx.Response.Header.SetContentTypeBytes(textHTML)
	ctx.Response.SetBodyRaw(errorPages[status])
	ctx.Response.SetConnectionClose()
}

// exchange records one request's way through halo for its httplog line.
// Times are only taken when the frontend logs.
type exchange struct {
	timed     bool
	start     time.Time     // request handed to halo's handler
	queued    time.Duration // waiting for a server slot
	connected time.Time     // server connection ready (dialed or reused)
	responded time.Time     // response head received from the server
	srv       *server
	retries   int
	err       error
	bytes     int64 // response body bytes sent to the client
}

func (ex *exchange) now() time.Time {
	if !ex.timed {
		return time.Time{}
	}
	return time.Now()
}

// terminationFor is HAProxy's four-character termination state for an
// exchange that ended in the handler: who ended it and in which phase (C:
// connecting, H: waiting for the response head), then the unused
// persistence characters.
func terminationFor(err error) string {
	switch {
	case err == nil:
		return "----"
	case statusFor(err) == fasthttp.StatusGatewayTimeout:
		return "sH--"
	case errors.Is(err, errQueueTimeout), errors.Is(err, errQueueFull):
		t := queueTermination(err)
		return string(t[:]) + "--"
	case statusFor(err) == fasthttp.StatusServiceUnavailable:
		return "SC--"
	default:
		return "SH--"
	}
}

// statusFor maps an exchange error to the status HAProxy would send.
func statusFor(err error) int {
	var ne net.Error
	switch {
	case errors.Is(err, errNoServer), errors.Is(err, errDial), errors.Is(err, errQueueTimeout), errors.Is(err, errQueueFull):
		return fasthttp.StatusServiceUnavailable
	case errors.Is(err, fasthttp.ErrTimeout), errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return fasthttp.StatusGatewayTimeout
	default:
		return fasthttp.StatusBadGateway
	}
}

var (
	textHTML   = []byte("text/html")
	errorPages = map[int][]byte{
		fasthttp.StatusBadGateway:         []byte("<html><body><h1>502 Bad Gateway</h1>\nThe server returned an invalid or incomplete response.\n</body></html>\n"),
		fasthttp.StatusServiceUnavailable: []byte("<html><body><h1>503 Service Unavailable</h1>\nNo server is available to handle this request.\n</body></html>\n"),
		fasthttp.StatusGatewayTimeout:     []byte("<html><body><h1>504 Gateway Time-out</h1>\nThe server didn't respond in time.\n</body></html>\n"),
	}
)

// Hop-by-hop headers (RFC 9110 section 7.6.1) that a proxy must not forward.
// Transfer-Encoding is handled by fasthttp's framing.
var hopHeaders = [][]byte{
	[]byte("Connection"), []byte("Keep-Alive"), []byte("Proxy-Connection"), []byte("Proxy-Authenticate"),
	[]byte("Proxy-Authorization"), []byte("Te"), []byte("Trailer"), []byte("Upgrade"),
}

// isHopHeader reports whether name is one of hopHeaders or Expect, in any
// case.
func isHopHeader(name []byte) bool {
	switch len(name) {
	case 2, 6, 7, 10, 16, 18, 19:
	default:
		return false
	}
	for _, k := range hopHeaders {
		if bytes.EqualFold(name, k) {
			return true
		}
	}
	return bytes.EqualFold(name, headerExpect)
}

// rawHasHopHeader reports whether a header block as received ("Name:
// value" lines, CRLF or LF separated) names a hop-by-hop header or Expect.
func rawHasHopHeader(raw []byte) bool {
	for len(raw) > 0 {
		line := raw
		if i := bytes.IndexByte(raw, '\n'); i >= 0 {
			line, raw = raw[:i], raw[i+1:]
		} else {
			raw = nil
		}
		if i := bytes.IndexByte(line, ':'); i > 0 && isHopHeader(bytes.TrimRight(line[:i], " \t")) {
			return true
		}
	}
	return false
}

var (
	headerXFF    = []byte("X-Forwarded-For")
	headerExpect = []byte("Expect")
)

func prepareRequest(ctx *fasthttp.RequestCtx, forwardFor bool) {
	h := &ctx.Request.Header
	// Each deletion scans every header; most requests carry none of
	// these, which one pass over the received header block tells.
	if rawHasHopHeader(h.RawHeaders()) {
		for _, k := range hopHeaders {
			h.DelBytes(k)
		}
		// halo answered any "Expect: 100-continue" itself while reading
		// the body.
		h.DelBytes(headerExpect)
	}
	// The server connection is ours to keep alive whatever the client
	// asked; fasthttp has already noted a client's "Connection: close".
	h.ResetConnectionClose()
	if forwardFor {
		if ip, ok := netip.AddrFromSlice(ctx.RemoteIP()); ok {
			var buf [48]byte
			h.AddBytesKV(headerXFF, ip.Unmap().AppendTo(buf[:0]))
		}
	}
}

func cleanResponse(h *fasthttp.ResponseHeader) {
	// As for requests, delete only when one pass finds something to; the
	// header must not change while it is being iterated.
	found := false
	for k := range h.All() {
		if found = isHopHeader(k); found {
			break
		}
	}
	if found {
		for _, k := range hopHeaders {
			h.DelBytes(k)
		}
	}
	// Whether the client connection stays open is decided on the client
	// side; the server closing its connection does not close the client's.
	h.ResetConnectionClose()
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
		req.Body() // reads the small body into fasthttp's pooled buffer
	}
	hc := srv.http
	if bigRequest {
		hc = srv.httpFresh
	}
	cc, err := hc.AcquireConn(0, false)
	if err != nil {
		return false, err
	}
	ex.connected = ex.now()
	reused := !cc.LastUseTime().IsZero()
	conn := cc.Conn()
	if serverTimeout > 0 {
		_ = conn.SetDeadline(time.Now().Add(serverTimeout))
	}
	bw := hc.AcquireWriter(conn)
	sent := int64(max(req.Header.ContentLength(), 0))
	if bigRequest {
		sent, err = writeStreamedRequest(ctx, bw, conn, clientTimeout, serverTimeout)
	} else {
		err = req.Write(bw)
	}
	if err == nil {
		err = bw.Flush()
	}
	hc.ReleaseWriter(bw)
	if err != nil {
		hc.CloseConn(cc)
		if reused && !bigRequest {
			return false, &staleError{err}
		}
		return false, err
	}
	fe.countBytes(srv, sent, 0)
	// The wait for the response starts now, however long the request
	// body took to send. A request sent from memory took no time worth
	// a second deadline update.
	if serverTimeout > 0 && bigRequest {
		_ = conn.SetReadDeadline(time.Now().Add(serverTimeout))
	}

	br := hc.AcquireReader(conn)
	resp := &ctx.Response
	resp.Header.DisableNormalizing()
	for {
		if err = resp.Header.Read(br); err != nil {
			break
		}
		// Skip interim responses; 101 would be a protocol switch, which
		// is not supported yet and fails below as an invalid exchange.
		if sc := resp.Header.StatusCode(); sc >= 200 || sc < 100 || sc == fasthttp.StatusSwitchingProtocols {
			break
		}
	}
	if err == nil && resp.Header.StatusCode() == fasthttp.StatusSwitchingProtocols {
		err = errors.New("server switched protocols: upgrades are not supported in mode http yet")
	}
	if err != nil {
		hc.ReleaseReader(br)
		hc.CloseConn(cc)
		if reused && !bigRequest && idempotent(req) && closedBeforeResponse(err) {
			return false, &staleError{err}
		}
		return false, err
	}
	ex.responded = ex.now()
	cl := resp.Header.ContentLength()
	// A body delimited by the server closing (neither Content-Length nor
	// chunked, cl == -2) leaves nothing to reuse.
	keepConn := !resp.Header.ConnectionClose() && !bigRequest && cl != -2
	cleanResponse(&resp.Header)
	noBody := req.Header.IsHead() || resp.Header.StatusCode() == fasthttp.StatusNoContent ||
		resp.Header.StatusCode() == fasthttp.StatusNotModified
	switch {
	case noBody:
		resp.SkipBody = req.Header.IsHead()
	case fitsSmall(cl):
		err = resp.ReadBody(br, smallBody)
		fe.countBytes(srv, 0, int64(cl))
		ex.bytes = int64(cl)
	default:
		s := streamPool.Get().(*bodyStream)
		s.start(ctx, fe, srv, conn, br, cl, keepConn, clientTimeout, serverTimeout)
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
			return false, err
		}
		resp.SetBodyStream(s, max(cl, -1))
		return true, nil
	}
	hc.ReleaseReader(br)
	if err != nil || !keepConn {
		hc.CloseConn(cc)
	} else {
		hc.ReleaseConn(cc)
	}
	return false, err
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
			return sent, rerr
		}
	}
	if cl >= 0 && sent != int64(cl) {
		return sent, io.ErrUnexpectedEOF
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
	up         fasthttp.Response // owns the server-side body reader
	ctx        *fasthttp.RequestCtx
	fe         *frontend
	srv        *server
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
	ex         exchange // for the access log line, written on Close
	upErr      error    // the server side failed mid-body
}

func (s *bodyStream) start(ctx *fasthttp.RequestCtx, fe *frontend, srv *server, conn net.Conn, br *bufio.Reader, cl int, keepConn bool, clientIdle, serverIdle time.Duration) {
	s.up.Reset()
	s.ctx, s.srv, s.conn, s.br, s.eof, s.keepConn = ctx, srv, conn, br, false, keepConn
	s.fe, s.clientIdle, s.serverIdle, s.refreshed, s.active = fe, clientIdle, serverIdle, time.Time{}, true
	s.every = refreshInterval(clientIdle, serverIdle)
	s.up.StreamBody = true
	s.up.Header.SetContentLength(cl)
}

func (s *bodyStream) Read(p []byte) (int, error) {
	if now := time.Now(); now.Sub(s.refreshed) >= s.every {
		s.refreshed = now
		if s.serverIdle > 0 {
			_ = s.conn.SetReadDeadline(now.Add(s.serverIdle))
		}
		if s.clientIdle > 0 {
			_ = s.ctx.Conn().SetWriteDeadline(now.Add(s.clientIdle))
		}
	}
	n, err := s.up.BodyStream().Read(p)
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
	reuse := s.eof && s.keepConn
	_ = s.up.CloseBodyStream()
	if s.fe.access != nil {
		term := "----"
		switch {
		case s.upErr != nil:
			term = "SD--" // the server broke off the body
			s.ex.err = s.upErr
		case !s.eof:
			term = "CD--" // the client went away first
		}
		s.fe.logHTTP(s.ctx, &s.ex, term)
	}
	// The server slot was the handler's until the stream took over;
	// an abandoned stream leaves it to the handler.
	s.srv.be.queue.release(s.srv.member)
	s.finish(reuse)
	return nil
}

// abandon gives up on a stream whose body could not even be started.
func (s *bodyStream) abandon() {
	_ = s.up.CloseBodyStream()
	s.finish(false)
}

func (s *bodyStream) finish(reuse bool) {
	s.srv.http.ReleaseReader(s.br)
	if s.release != nil {
		s.release(reuse)
	}
	s.up.Reset()
	s.ctx, s.fe, s.srv, s.conn, s.br, s.release, s.active = nil, nil, nil, nil, nil, nil, false
	s.ex, s.upErr = exchange{}, nil
	streamPool.Put(s)
}
