package proxy

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"time"

	"github.com/halo-lb/halo/balancer"
	"github.com/halo-lb/halo/config"
	"github.com/halo-lb/halo/health"
	"github.com/valyala/fasthttp"
)

// This file is the proxy's side of the stats package's Source: read-only
// views of the live snapshot's counters and state, and the runtime API's
// setters. Everything here is control path; it reads the live snapshot
// through its atomic pointer and never waits on a reload.

// ErrNoSuchServer is returned for a backend/server the live configuration
// does not have.
var ErrNoSuchServer = errors.New("no such server")

// Config returns the live configuration, nil before the first Apply.
func (p *Proxy) Config() *config.Config {
	if s := p.current.Load(); s != nil {
		return s.cfg
	}
	return nil
}

func (p *Proxy) liveServer(backend, server string) (*server, error) {
	s := p.current.Load()
	if s == nil || s.backendsByName[backend] == nil {
		return nil, ErrNoSuchServer
	}
	for _, srv := range s.backendsByName[backend].servers {
		if srv.cfg.Name == server {
			return srv, nil
		}
	}
	return nil, ErrNoSuchServer
}

// Server returns the state of backend/server in the live configuration.
func (p *Proxy) Server(backend, server string) *balancer.Server {
	if srv, err := p.liveServer(backend, server); err == nil {
		return srv.state
	}
	return nil
}

// CheckProgress returns where the server's health check counter stands;
// false without a running check.
func (p *Proxy) CheckProgress(backend, server string) (health.Progress, bool) {
	srv, err := p.liveServer(backend, server)
	if err != nil {
		return health.Progress{}, false
	}
	m := srv.checks.monitor.Load()
	if m == nil {
		return health.Progress{}, false
	}
	return m.Progress(), true
}

// AgentPaused reports whether the server's agent-check is disabled; has is
// false without an agent.
func (p *Proxy) AgentPaused(backend, server string) (paused, has bool) {
	srv, err := p.liveServer(backend, server)
	if err != nil || srv.checks.agent == nil {
		return false, false
	}
	return srv.checks.agent.Paused(), true
}

// QueueLengths returns how many sessions wait for any server of the
// backend, and for each server (in configuration order) in servers, which
// must have room for them.
func (p *Proxy) QueueLengths(backend string, servers []int) int {
	s := p.current.Load()
	if s == nil || s.backendsByName[backend] == nil {
		return 0
	}
	q := s.backendsByName[backend].queue
	if q.waiting.Load() == 0 {
		clear(servers)
		return 0
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	for i := range servers {
		if i < len(q.servers) {
			servers[i] = q.servers[i].n
		}
	}
	return q.any.n
}

// ServerConns returns how many connections halo has open to the server
// in mode http (busy and idle), 0 in mode tcp where each session has one.
func (p *Proxy) ServerConns(backend, server string) int {
	srv, err := p.liveServer(backend, server)
	if err != nil || srv.http == nil {
		return 0
	}
	return srv.http.ConnsCount() + srv.httpFresh.ConnsCount()
}

// FrontendMaxConn returns the frontend's maxconn as applied now (0: no
// limit of its own).
func (p *Proxy) FrontendMaxConn(name string) int {
	if s := p.current.Load(); s != nil {
		if fe := s.frontendsByName[name]; fe != nil {
			if m := fe.state.limit.max.Load(); m < 1<<62 {
				return int(m)
			}
		}
	}
	return 0
}

// ActiveConns is how many client connections are being served (actconn).
func (p *Proxy) ActiveConns() int64 { return p.active.Load() }

// GlobalMaxConn is the process-wide maxconn as applied now.
func (p *Proxy) GlobalMaxConn() int {
	if m := p.global.max.Load(); m < 1<<62 {
		return int(m)
	}
	return 0
}

// Listeners is how many listening sockets are open. It reads a count that
// Apply keeps, so that it never waits on a reload.
func (p *Proxy) Listeners() int { return int(p.listenerCount.Load()) }

// Stopping reports whether Shutdown has begun.
func (p *Proxy) Stopping() bool { return p.stopping.Load() }

// EachSession calls f for every client connection being served: an ID
// unique among them (for "shutdown session"), its frontend and mode, the
// client's and halo's addresses, and how long it has been open.
func (p *Proxy) EachSession(f func(id, frontend, mode string, client, local net.Addr, age time.Duration)) {
	s := p.current.Load()
	if s == nil {
		return
	}
	now := time.Now().UnixNano()
	for _, fe := range s.frontends {
		visit := func(mode string, conns map[net.Conn]connEntry) {
			for c, e := range conns {
				f(sessionID(c), fe.cfg.Name, mode, c.RemoteAddr(), c.LocalAddr(), time.Duration(now-e.since))
			}
		}
		visit("tcp", fe.state.tcp.snapshot())
		for _, conns := range fe.state.httpConns() {
			visit("http", conns)
		}
	}
}

func sessionID(c net.Conn) string { return fmt.Sprintf("%p", c) }

// ShutdownSession closes the client connection with the given ID (as
// EachSession gives it); false if there is none.
func (p *Proxy) ShutdownSession(id string) bool {
	s := p.current.Load()
	if s == nil {
		return false
	}
	for _, fe := range s.frontends {
		sets := append([]map[net.Conn]connEntry{fe.state.tcp.snapshot()}, fe.state.httpConns()...)
		for _, conns := range sets {
			for c := range conns {
				if sessionID(c) == id {
					if !p.parking.closeConn(c) {
						c.Close()
					}
					return true
				}
			}
		}
	}
	return false
}

// SetHealthPaused is "disable health" (true) and "enable health".
func (p *Proxy) SetHealthPaused(backend, server string, paused bool) error {
	srv, err := p.liveServer(backend, server)
	if err != nil {
		return err
	}
	m := srv.checks.monitor.Load()
	if m == nil {
		return fmt.Errorf("server %s/%s has no health check", backend, server)
	}
	m.SetPaused(paused)
	return nil
}

// ForceHealth is "set server B/S health up|down": the check counter and
// the server jump to the state given.
func (p *Proxy) ForceHealth(backend, server string, up bool) error {
	srv, err := p.liveServer(backend, server)
	if err != nil {
		return err
	}
	if m := srv.checks.monitor.Load(); m != nil {
		m.Force(up)
		return nil
	}
	srv.state.SetHealthy(up)
	return nil
}

// SetAgentPaused is "disable agent" (true) and "enable agent".
func (p *Proxy) SetAgentPaused(backend, server string, paused bool) error {
	srv, err := p.liveServer(backend, server)
	if err != nil {
		return err
	}
	if srv.checks.agent == nil {
		return fmt.Errorf("server %s/%s has no agent-check", backend, server)
	}
	srv.checks.agent.SetPaused(paused)
	return nil
}

// SetFrontendMaxConn is "set maxconn frontend NAME N" (0: no limit of its
// own). A reload applies the file's maxconn again.
func (p *Proxy) SetFrontendMaxConn(name string, n int) error {
	s := p.current.Load()
	if s == nil || s.frontendsByName[name] == nil {
		return fmt.Errorf("no such frontend %q", name)
	}
	s.frontendsByName[name].state.limit.setMax(n)
	return nil
}

// SetGlobalMaxConn is "set maxconn global N". A reload applies the file's
// maxconn again.
func (p *Proxy) SetGlobalMaxConn(n int) { p.global.setMax(n) }

// ShutdownServerSessions is "shutdown sessions server B/S": it closes the
// server's established sessions (every L4 session through it, and its
// idle kept-alive connections in mode http) and returns how many L4
// sessions it closed.
func (p *Proxy) ShutdownServerSessions(backend, server string) (int, error) {
	srv, err := p.liveServer(backend, server)
	if err != nil {
		return 0, err
	}
	n := 0
	if srv.http != nil {
		srv.http.CloseIdleConnections()
	}
	// An L4 session ends when its client connection closes (the relay
	// closes the server side); they are found in the frontends' sets.
	// Sessions a reload carried over are under the previous snapshot's
	// server, of the same state.
	for _, fe := range p.current.Load().frontends {
		for c, e := range fe.state.tcp.snapshot() {
			if e.srv != nil && e.srv.state == srv.state {
				c.Close()
				n++
			}
		}
	}
	return n, nil
}

// ClearCounters is "clear counters" (maxima only) and "clear counters
// all" (everything but the current sessions), over every frontend,
// backend and server of the live configuration.
func (p *Proxy) ClearCounters(all bool) {
	s := p.current.Load()
	if s == nil {
		return
	}
	clearC := func(c *balancer.Counters) {
		if all {
			c.Clear()
		} else {
			c.ClearMax()
		}
	}
	for _, fe := range s.frontends {
		clearC(&fe.state.Counters)
	}
	for _, be := range s.backends {
		clearC(be.counters)
		for _, srv := range be.servers {
			srv.state.ClearCounters(!all)
		}
	}
}

// StatsPage serves a frontend's stats page; the stats package implements
// it. It runs on the frontend's own HTTP server, in the handler.
type StatsPage interface {
	ServeStats(ctx *fasthttp.RequestCtx, frontend string, page *config.StatsPage)
}

// SetStatsPage installs the handler of every frontend's stats page
// ("stats enable"). Until it is set, such requests are proxied as any
// other.
func (p *Proxy) SetStatsPage(h StatsPage) { p.statsPage.Store(&h) }

// statsRoute is a frontend's "stats enable": which requests are the stats
// page's, and the handler that serves them.
type statsRoute struct {
	page    *config.StatsPage
	uri     []byte // page.URI, as the request's bytes are compared with it
	handler *atomic.Pointer[StatsPage]
}

// serves reports whether the request is for the stats page or the metrics
// endpoint: its URI starts with the page's uri (as HAProxy's "stats uri"
// matches), or its path is the metrics path.
func (r *statsRoute) serves(ctx *fasthttp.RequestCtx) bool {
	uri := ctx.Request.Header.RequestURI()
	if bytes.HasPrefix(uri, r.uri) {
		return true
	}
	if r.page.Prometheus == "" {
		return false
	}
	path, _, _ := bytes.Cut(uri, []byte("?"))
	return string(path) == r.page.Prometheus
}

// serveStats answers a stats page request, counting it on the frontend
// as HAProxy counts requests its stats applet answers.
//
//go:noinline
func (fe *frontend) serveStats(ctx *fasthttp.RequestCtx) {
	fe.state.Requests.Add(1)
	if h := fe.stats.handler.Load(); h != nil {
		(*h).ServeStats(ctx, fe.cfg.Name, fe.stats.page)
	} else {
		setErrorResponse(&ctx.Response, fasthttp.StatusServiceUnavailable, false)
	}
	class := ctx.Response.StatusCode() / 100
	if class < 1 || class > 5 {
		class = 0
	}
	fe.state.HTTPStatus[class].Add(1)
}

// BackendUpDown returns how often the backend went DOWN (no usable
// server), when its state last changed and how long it has been DOWN in
// all; false for a backend the live configuration does not have.
func (p *Proxy) BackendUpDown(name string) (downs uint64, lastChange time.Time, downtime time.Duration, ok bool) {
	s := p.current.Load()
	if s == nil || s.backendsByName[name] == nil {
		return 0, time.Time{}, 0, false
	}
	downs, lastChange, downtime = s.backendsByName[name].state.upDownTimes()
	return downs, lastChange, downtime, true
}

// EffectiveWeight is the weight the server has in its backend's pool now:
// its weight during a slow start, 0 while it is not usable.
func (p *Proxy) EffectiveWeight(backend, server string) int {
	srv, err := p.liveServer(backend, server)
	if err != nil {
		return 0
	}
	return srv.be.pool.EffectiveWeight(srv.member)
}
