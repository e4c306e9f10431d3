package proxy

import (
	"context"
	"math"
	"net"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

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
