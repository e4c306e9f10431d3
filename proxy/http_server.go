package proxy

import (
	"cmp"
	"context"
	"math"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/halo-lb/halo/config"
	"github.com/halo-lb/halo/proxy/h1"
	"github.com/valyala/fasthttp"
	"go.uber.org/zap"
)

// httpSettings are the frontend settings a fasthttp.Server is built with; a
// reload that leaves them unchanged keeps the running server, so its
// kept-alive connections are not disturbed.
type httpSettings struct {
	requestTimeout, keepAliveTimeout, clientTimeout time.Duration
	limits                                          h1.Limits
}

// httpSettings resolves the HTTP timeouts as HAProxy does: waiting for a
// request head is bounded by timeout http-request, else timeout client;
// waiting for the next request on a kept-alive connection by timeout
// http-keep-alive, else http-request, else client.
func (fe *frontend) httpSettings(g *config.Global) httpSettings {
	t := fe.cfg.Timeouts
	request := cmp.Or(t.HTTPRequest, t.Client)
	keepAlive := cmp.Or(t.HTTPKeepAlive, t.HTTPRequest, t.Client)
	return httpSettings{request, keepAlive, t.Client, h1.Limits{MaxHead: g.BufSize, MaxFields: g.HTTPMaxHdr}}
}

// httpServer is one generation of a frontend's fasthttp.Server: the
// settings it was built with and the connections it serves. A reload that
// keeps the settings keeps the generation, so kept-alive connections are
// not disturbed; one that changes them, or removes the frontend, retires
// it.
type httpServer struct {
	srv      *fasthttp.Server
	settings httpSettings
	conns    connSet
	// last is the latest frontend in mode http this generation served
	// for. Requests go to the frontend live now (frontendState.live);
	// when a reload switched that one to mode tcp, the requests still
	// arriving on the generation's connections go here instead, and
	// their connections close as the generation retires.
	last atomic.Pointer[frontend]
	// retiring is set by Apply, before it returns, when a reload
	// replaces or removes this generation: a response finished after
	// that says "Connection: close" even if fasthttp's own shutdown,
	// which runs in the background, has not begun yet.
	retiring atomic.Bool
	// park is the listener Serve waits on (see httpServerFor).
	park *parkedListener
}

// shutdown stops the generation as fasthttp's graceful shutdown does, and
// ends its Serve for certain: a generation retired as soon as it started
// may be shut down before its Serve has registered the listener, which
// fasthttp would then never close.
func (h *httpServer) shutdown(ctx context.Context) error {
	err := h.srv.ShutdownWithContext(ctx)
	h.park.Close()
	return err
}

// httpServerFor returns the frontend's running generation if its settings
// are unchanged, or starts a new one and retires the old one in the
// background. Called by Apply, under p.mu, once the build has succeeded.
func (p *Proxy) httpServerFor(fe *frontend, g *config.Global) *httpServer {
	fs := fe.state
	want := fe.httpSettings(g)
	hardStop := g.HardStopAfter
	old := fs.http.Load()
	if old != nil && old.settings == want {
		old.last.Store(fe)
		return old
	}
	h := &httpServer{settings: want, park: newParkedListener()}
	h.last.Store(fe)
	h.srv = newFastHTTPServer(fs, h, want)
	// halo accepts connections itself and hands them to ServeConn, but
	// fasthttp's graceful shutdown only closes idle kept-alive connections
	// of a server that has a listener: give it one that never accepts.
	go func() { _ = h.srv.Serve(h.park) }()
	p.httpMu.Lock()
	p.httpServers[h] = struct{}{}
	p.httpMu.Unlock()
	// The new generation is in place before the old one stops taking
	// connections: a connection that still picked the old one moves on to
	// this one (see serve) instead of being closed.
	fs.http.Store(h)
	if old != nil {
		p.startDraining(fs, old, hardStop)
	}
	return h
}

// startDraining retires a generation a reload replaced while its
// frontend lives on: from now on its responses say "Connection: close",
// and drainHTTP ends it in the background.
func (p *Proxy) startDraining(fs *frontendState, h *httpServer, hardStop time.Duration) {
	h.retiring.Store(true)
	fs.drainingMu.Lock()
	fs.draining = append(fs.draining, h)
	fs.drainingMu.Unlock()
	go p.drainHTTP(fs, h, hardStop)
}

func newFastHTTPServer(fs *frontendState, h *httpServer, want httpSettings) *fasthttp.Server {
	return &fasthttp.Server{
		Handler: func(ctx *fasthttp.RequestCtx) {
			// Requests are routed by the frontend live now, so kept-alive
			// connections follow reloads.
			fe := fs.live.Load()
			if fe.cfg.Mode != config.ModeHTTP {
				fe = h.last.Load()
			}
			fe.handleHTTP(ctx)
			gc, _ := ctx.Conn().(*guardConn)
			if h.retiring.Load() || (gc != nil && gc.closeNext) {
				ctx.SetConnectionClose()
			}
			if gc != nil {
				gc.awaiting, gc.closeNext = true, false
			}
		},
		ErrorHandler: func(ctx *fasthttp.RequestCtx, err error) {
			fe := fs.live.Load()
			if fe.cfg.Mode != config.ModeHTTP {
				fe = h.last.Load()
			}
			fe.answerClientError(ctx, err)
		},
		ReadTimeout:        want.requestTimeout,
		IdleTimeout:        want.keepAliveTimeout,
		WriteTimeout:       want.clientTimeout,
		StreamRequestBody:  true,
		MaxRequestBodySize: math.MaxInt32,
		// Room for the largest head the guard lets through, and a
		// little: the guard, not fasthttp, answers an oversized one.
		ReadBufferSize: want.limits.MaxHead + 4096,
		// A response of an OpenStack API (ten header fields and a JSON
		// body of 2 to 8 KiB) goes out in one write, not two or three
		// (measured with perf stat: 2.50 writes per request with
		// fasthttp's 4 KiB, 2.02 with 16 KiB); the buffer goes back to
		// fasthttp's pool between requests (ReduceMemoryUsage).
		WriteBufferSize:               16 << 10,
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
}

// drainHTTP ends a generation a reload replaced while its frontend lives
// on (new HTTP settings, or a switch to mode tcp). Unlike a soft stop it
// closes no idle kept-alive connection: a client may be sending its next
// request on it at that very moment, and would see a reset for a request
// it had every right to send. Each connection instead serves its next
// request, with the live frontend's rules, and closes after the response
// ("Connection: close", see retiring), or ends by the generation's own
// keep-alive timeout as any idle connection does. A response in progress
// (a long download) is never cut: the frontend stays, as its sessions
// do. Only connections still idle at hard-stop-after, which a keep-alive
// timeout longer than that leaves, are closed then.
func (p *Proxy) drainHTTP(fs *frontendState, h *httpServer, hardStop time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), hardStop)
	defer cancel()
	// Its connections that are parked (parking.go) have left its set;
	// idle still at hard-stop-after, they close then as the others do.
	time.AfterFunc(hardStop, func() { p.parking.closeServedBy(h) })
	// What fasthttp may count open besides the set's connections are
	// tunnels, which are their frontend's sessions now (see tunnel) and
	// must not be waited for: a context already done makes shutdown
	// close the idle connections and end the generation's Serve at once.
	now, cancelNow := context.WithCancel(context.Background())
	cancelNow()
	if !h.conns.wait(ctx) {
		// Past hard-stop-after: shut down for as long as the set holds
		// connections, so that fasthttp keeps closing those that go idle
		// (a response streamed since before the reload said nothing of
		// closing) and stop stays 1 (CloseOnShutdown) for the busy ones.
		untilEmpty, emptied := context.WithCancel(context.Background())
		go func() { h.conns.wait(context.Background()); emptied() }()
		_ = h.shutdown(untilEmpty)
		emptied()
	} else {
		_ = h.shutdown(now)
	}
	fs.drainingMu.Lock()
	fs.draining = slices.DeleteFunc(fs.draining, func(d *httpServer) bool { return d == h })
	fs.drainingMu.Unlock()
	p.forgetHTTPServer(h)
}

// retireHTTP stops a generation as HAProxy's soft stop does: its idle
// kept-alive connections close at once, busy ones after their current
// response (which says "Connection: close"), and those still open when
// hard-stop-after runs out are closed.
func (p *Proxy) retireHTTP(h *httpServer, hardStop time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), hardStop)
	defer cancel()
	if err := h.shutdown(ctx); err != nil {
		// fasthttp gave up at the deadline and leaves the rest running.
		if n := h.conns.drain(ctx); n > 0 {
			p.log.Warn("connections closed at hard-stop-after", zap.Int("connections", n))
		}
	} else {
		h.conns.drain(ctx)
	}
	p.forgetHTTPServer(h)
}

func (p *Proxy) forgetHTTPServer(h *httpServer) {
	p.httpMu.Lock()
	delete(p.httpServers, h)
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
