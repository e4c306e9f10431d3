package proxy

import (
	"fmt"
	"net"
	"sync/atomic"

	"github.com/halo-lb/halo/balancer"
	"github.com/halo-lb/halo/config"
	"github.com/halo-lb/halo/health"
	"github.com/halo-lb/halo/proxy/rules"
	"github.com/halo-lb/halo/sticktable"
	"github.com/valyala/fasthttp"
	"go.uber.org/zap"
)

// Snapshot is the runtime form of one configuration: frontends wired to their
// listeners and backends, backends wired to server state. It is immutable
// once built; Apply publishes it with an atomic swap. What outlives it
// (server state, counters, health checks, listeners) is owned elsewhere and
// only referenced from here.
type Snapshot struct {
	cfg             *config.Config
	frontends       []*frontend
	frontendsByName map[string]*frontend
	backends        []*backend
	backendsByName  map[string]*backend
	// vars is how many variable slots the snapshot's rules use.
	vars int
	// tables are the stick tables, by section (sticktables.go).
	tables map[string]*sticktable.Table
}

// Config returns the configuration this snapshot was built from.
func (s *Snapshot) Config() *config.Config { return s.cfg }

type frontend struct {
	cfg   *config.Frontend
	state *frontendState
	// defaultBackend is read by the routing step only (route).
	defaultBackend *backend
	listeners      []*listener
	// sides are the binds' accept sides, indexed like listeners (and
	// cfg.Binds).
	sides  []*bindSide
	log    *zap.Logger
	access *zap.Logger // nil unless option tcplog / httplog
	// lines is where access lines go as bytes when the process's log
	// core takes them (AccessLines); nil: through access.
	lines AccessLines
	// timed is whether requests are timed: for the access log, or for
	// the servers' latency histograms when a stats socket, page or
	// metrics endpoint can read them. Otherwise nobody would, and the
	// clock reads are spared.
	timed bool
	// stats is the frontend's stats page, nil without "stats enable".
	stats   *statsRoute
	workers *workers      // the Proxy's, for the second direction of L4 sessions
	active  *atomic.Int64 // the Proxy's count of client connections
	// The request language (rules_build.go): the compiled rule sets,
	// use_backend lines, and what the rules' Txn needs.
	rules       sectionRules
	tcp         tcpRules
	useBackends []useBackend
	// backendsByName is the snapshot's, for use_backend %[...].
	backendsByName map[string]*backend
	hasRules       bool
	tcpRouted      bool // mode tcp: routeTCP runs (content rules, use_backend, inspect-delay)
	connRules      bool // a connection's rules share a Txn from accept to close (connTxn)
	index          int
	vars           int
	env            rules.Env
	// pages are the error pages (http_errorfiles.go), monitor the
	// monitor-uri (http_monitor.go), fwd the forwardfor and originalto
	// headers (http_forwarded.go), captures the capture lines
	// (http_capture.go).
	pages    customPages
	monitor  *monitor
	fwd      *forwarded
	captures *captures
	// uniqueID is unique-id-format compiled (nil: none), uniqueIDHeader
	// the field it is sent in (nil: not sent), http_unique_id.go.
	uniqueID       *rules.Format
	uniqueIDHeader []byte
}

type backend struct {
	cfg      *config.Backend
	pool     *balancer.Backend
	queue    *queue
	servers  []*server          // indexed like the members given to pool
	counters *balancer.Counters // state's
	state    *backendState
	dialer   net.Dialer
	header   []byte // balance hdr(NAME)'s NAME
	hashed   bool   // the balance algorithm hashes a key of the request
	bySource bool   // balance source: the key is the client address
	log      *zap.Logger
	// rules are the backend's own rule sets (rules_build.go).
	rules      sectionRules
	tcpContent *rules.Program // tcp-request content, in mode tcp
	// sticks are the backend's stick lines (stick_persist.go).
	sticks   []*rules.Stick
	hasRules bool
	index    int
	// cookie is cookie persistence (http_cookie.go), nil without.
	cookie *persistence
	pages  customPages
	fwd    *forwarded
	// retired is set once a newer snapshot serves, or the proxy shut
	// down: a server connection this backend's requests still use is
	// then closed after its request instead of going back to an idle
	// pool that nothing would take it from again.
	retired atomic.Bool
}

// noteUsable tells the kept state whether the backend has a usable server
// (a backend without servers counts as UP, as HAProxy shows it).
func (be *backend) noteUsable() {
	be.state.noteUsable(len(be.servers) == 0 || be.pool.UsableCount() > 0)
}

func (be *backend) hasServer(name string) bool {
	for _, s := range be.servers {
		if s.cfg.Name == name {
			return true
		}
	}
	return false
}

// server is one configuration's view of a backend server.
type server struct {
	cfg       *config.Server
	addr      string // resolved IP:port
	checkHost string // resolved check address ("addr"), "" for the server's own
	agentHost string // resolved agent address ("agent-addr"), "" for the server's own
	// checks are the server's health checks, kept with its state.
	checks *serverChecks
	// observe is the passive check: 0 (none), 4 (layer4) or 7 (layer7).
	observe uint8
	// sessions tracks the established L4 sessions when on-marked-down or
	// on-marked-up may close them; nil otherwise.
	sessions *sessionSet
	state    *balancer.Server
	be       *backend
	member   int                  // index in be.servers and be.pool
	http     *fasthttp.HostClient // mode http only
	// httpFresh dials a new connection for each request whose body streams
	// (and so cannot be replayed on a stale kept-alive connection); its
	// connections are always closed after use, never pooled.
	httpFresh *fasthttp.HostClient
	// transport is the PROXY header and TLS the server's connections
	// carry (server_dial.go).
	transport serverTransport
	// checkTransport is check-ssl and check-send-proxy, nil for plain
	// checks.
	checkTransport *health.Transport
}

// build builds the snapshot of cfg, opening the listeners of new binds. On
// error it returns the listeners it opened, for the caller to close, and
// detaches the pools it built; the kept state it took entries from is
// otherwise untouched (a new entry is dropped by the next reload that
// succeeds).
func (p *Proxy) build(cfg *config.Config) (s *Snapshot, opened []*listener, err error) {
	s = &Snapshot{cfg: cfg, frontendsByName: map[string]*frontend{}, backendsByName: map[string]*backend{}}
	p.statsOn = statsRead(cfg)
	defer func() {
		if err != nil {
			for _, be := range s.backends {
				be.pool.Close()
			}
		}
	}()
	for _, bc := range cfg.Backends {
		be, err := p.buildBackend(bc)
		if err != nil {
			return s, opened, err
		}
		s.backends = append(s.backends, be)
		s.backendsByName[bc.Name] = be
	}
	for _, fc := range cfg.Frontends {
		def := s.backendsByName[fc.DefaultBackend]
		if def == nil {
			if def, err = p.frontendAsBackend(fc); err != nil {
				return s, opened, err
			}
		}
		fe := &frontend{cfg: fc, state: p.frontends.take(fc.Name), defaultBackend: def,
			log: p.log.Named("proxy"), workers: p.workers, active: &p.active}
		if (fc.Mode == config.ModeTCP && fc.Options.TCPLog) || (fc.Mode == config.ModeHTTP && fc.Options.HTTPLog) {
			fe.access = p.log.Named("access")
			fe.lines, _ = p.log.Core().(AccessLines)
		}
		fe.timed = fe.access != nil || p.statsOn
		if fc.Stats != nil {
			fe.stats = &statsRoute{page: fc.Stats, uri: []byte(fc.Stats.URI), handler: &p.statsPage}
		}
		for i := range fc.Binds {
			fe.sides = append(fe.sides, p.newBindSide(fc.Name, &fc.Binds[i]))
		}
		s.frontends = append(s.frontends, fe)
		s.frontendsByName[fc.Name] = fe
	}
	p.prepareStickTables(s, cfg)
	if err = s.compileRules(cfg, p.procVars); err != nil {
		return s, nil, err
	}
	if err = s.buildPages(); err != nil {
		return s, nil, err
	}
	opened, err = p.openListeners(s)
	return s, opened, err
}

// statsRead reports whether cfg has a way to read counters and timings: a
// stats socket or a stats page.
func statsRead(cfg *config.Config) bool {
	if len(cfg.Global.Stats.Sockets) > 0 {
		return true
	}
	for _, fc := range cfg.Frontends {
		if fc.Stats != nil {
			return true
		}
	}
	return false
}

// openListeners gives every frontend of s its listeners: the running one
// for a bind whose address and socket options are unchanged, a new one
// otherwise. Each new socket is test-bound first (probeBind), and only once
// every one of them can be bound do they listen: a socket that listened
// and was closed again when a later bind failed would have reset the
// connections the kernel had queued on it, and where SO_REUSEPORT has it
// share the port of a running listener, those are the running
// configuration's clients.
func (p *Proxy) openListeners(s *Snapshot) (opened []*listener, err error) {
	for _, fe := range s.frontends {
		for _, bind := range fe.cfg.Binds {
			if p.runningListener(bind) == nil {
				if err := probeBind(bind); err != nil {
					return nil, fmt.Errorf("frontend %s: binding %s: %w", fe.cfg.Name, bind.Address, err)
				}
			}
		}
	}
	for _, fe := range s.frontends {
		for _, bind := range fe.cfg.Binds {
			l := p.runningListener(bind)
			if l == nil {
				if l, err = p.listen(bind); err != nil {
					return opened, fmt.Errorf("frontend %s: %w", fe.cfg.Name, err)
				}
				opened = append(opened, l)
			}
			fe.listeners = append(fe.listeners, l)
		}
	}
	return opened, nil
}

func (p *Proxy) buildBackend(bc *config.Backend) (*backend, error) {
	return p.buildBackendWith(bc, p.backends.take(bc.Name))
}

// frontendAsBackend is where a frontend without default_backend sends what
// no use_backend line routes: itself, as HAProxy does, a backend of the
// frontend's name without servers, so that the request is answered 503
// and logged FRONTEND/<NOSRV> with termination state SC. It is no
// backend of the configuration's: stats do not list it (HAProxy shows the
// frontend's FRONTEND line alone) and rules see no backend (index -1).
func (p *Proxy) frontendAsBackend(fc *config.Frontend) (*backend, error) {
	bc := &config.Backend{Name: fc.Name, Mode: fc.Mode, Timeouts: fc.Timeouts, Options: fc.Options,
		Balance: config.Balance{Algorithm: config.AlgoRoundRobin}}
	be, err := p.buildBackendWith(bc, &backendState{})
	if be != nil {
		be.index = -1
	}
	return be, err
}

func (p *Proxy) buildBackendWith(bc *config.Backend, st *backendState) (*backend, error) {
	be := &backend{cfg: bc, counters: &st.Counters, state: st, log: p.log.Named("proxy")}
	be.dialer = net.Dialer{Timeout: bc.Timeouts.Connect, KeepAlive: -1}
	if bc.Options.SrvTCPKA {
		be.dialer.KeepAlive = 0 // Go's default keep-alive probes
	}
	members := make([]balancer.Member, len(bc.Servers))
	maxQueue := make([]int, len(bc.Servers))
	backupsShutDown := false // some server's on-marked-up closes backup sessions
	for _, sc := range bc.Servers {
		backupsShutDown = backupsShutDown || (sc.ShutdownBackupsOnUp && !sc.Backup)
	}
	for i := range bc.Servers {
		sc := &bc.Servers[i]
		srv, err := p.buildServer(be, sc, i, backupsShutDown)
		if err != nil {
			return nil, fmt.Errorf("backend %s: server %s: %w", bc.Name, sc.Name, err)
		}
		be.servers = append(be.servers, srv)
		members[i] = balancer.Member{State: srv.state, Weight: sc.Weight, Backup: sc.Backup, MaxConn: sc.MaxConn, SlowStart: sc.SlowStart}
		maxQueue[i] = sc.MaxQueue
	}
	spec := balancer.Spec{
		Algorithm:     bc.Balance.Algorithm,
		Draws:         bc.Balance.Draws,
		Consistent:    bc.HashConsistent,
		BalanceFactor: bc.HashBalanceFactor,
		AllBackups:    bc.Options.AllBackups,
	}
	pool, err := balancer.NewBackend(bc.Name, spec, members)
	if err != nil {
		return nil, err
	}
	be.pool = pool
	be.queue = newQueue(pool, members, maxQueue, bc.Timeouts.Queue, be.counters)
	pool.SetOnChange(func() {
		be.queue.redistribute()
		be.noteUsable()
	})
	be.header = []byte(bc.Balance.Header)
	be.hashed = bc.Balance.Algorithm.Hashed()
	be.bySource = bc.Balance.Algorithm == config.AlgoSource
	return be, nil
}

// buildServer resolves a server's addresses and wires it to the state kept
// for it: its balancer state, its health checks and, when on-marked-down
// or on-marked-up may close them, its session set.
func (p *Proxy) buildServer(be *backend, sc *config.Server, member int, backupsShutDown bool) (*server, error) {
	tcpAddr, err := net.ResolveTCPAddr("tcp", sc.Address)
	if err != nil {
		return nil, fmt.Errorf("resolving %s: %w", sc.Address, err)
	}
	st := p.registry.Server(be.cfg.Name, sc.Name)
	srv := &server{cfg: sc, addr: tcpAddr.String(), state: st, be: be, member: member, checks: p.checks.take(st)}
	switch sc.Observe {
	case config.ObserveLayer4:
		srv.observe = 4
	case config.ObserveLayer7:
		srv.observe = 7
	}
	if sc.CheckAddr != "" {
		ip, err := net.ResolveIPAddr("ip", sc.CheckAddr)
		if err != nil {
			return nil, fmt.Errorf("resolving check address %s: %w", sc.CheckAddr, err)
		}
		srv.checkHost = ip.String()
	}
	if sc.Agent != nil && sc.Agent.Addr != "" {
		ip, err := net.ResolveIPAddr("ip", sc.Agent.Addr)
		if err != nil {
			return nil, fmt.Errorf("resolving agent address %s: %w", sc.Agent.Addr, err)
		}
		srv.agentHost = ip.String()
	}
	if sc.ShutdownOnDown || (sc.Backup && backupsShutDown) {
		srv.sessions = p.sessions.take(st)
	}
	if srv.transport, err = newServerTransport(sc); err != nil {
		return nil, err
	}
	if srv.checkTransport, err = newCheckTransport(sc); err != nil {
		return nil, err
	}
	if be.cfg.Mode == config.ModeHTTP {
		srv.http = be.newHostClient(srv)
		srv.httpFresh = be.newHostClient(srv)
	}
	return srv, nil
}
