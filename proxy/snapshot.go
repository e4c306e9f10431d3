package proxy

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/halo-lb/halo/balancer"
	"github.com/halo-lb/halo/config"
	"github.com/halo-lb/halo/health"
	"github.com/valyala/fasthttp"
	"go.uber.org/zap"
)

// Snapshot is the runtime form of one configuration: frontends wired to their
// listeners and backends, backends wired to server state. It is immutable
// once built; Apply publishes it with an atomic swap.
type Snapshot struct {
	cfg            *config.Config
	frontends      []*frontend
	backends       []*backend
	backendsByName map[string]*backend
	monitors       []*health.Monitor
	agents         []*health.Agent
}

// Config returns the configuration this snapshot was built from.
func (s *Snapshot) Config() *config.Config { return s.cfg }

type frontend struct {
	cfg       *config.Frontend
	state     *frontendState
	backend   *backend
	listeners []*listener
	log       *zap.Logger
	access    *zap.Logger      // nil unless option tcplog / httplog
	http      *fasthttp.Server // mode http; shared with other snapshots while its settings hold
	workers   *workers         // the Proxy's, for the second direction of L4 sessions
}

type backend struct {
	cfg      *config.Backend
	pool     *balancer.Backend
	queue    *queue
	servers  []*server // indexed like the members given to pool
	counters *Counters
	dialer   net.Dialer
	header   []byte // balance hdr(NAME)'s NAME
	hashed   bool   // the balance algorithm hashes a key of the request
	bySource bool   // balance source: the key is the client address
	log      *zap.Logger
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
	monitor   atomic.Pointer[health.Monitor]
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
}

func (p *Proxy) build(cfg *config.Config) (s *Snapshot, opened []*listener, err error) {
	s = &Snapshot{cfg: cfg, backendsByName: map[string]*backend{}}
	for _, bc := range cfg.Backends {
		be, err := p.buildBackend(bc)
		if err != nil {
			return nil, opened, err
		}
		s.backends = append(s.backends, be)
		s.backendsByName[bc.Name] = be
	}
	accessLog := p.log.Named("access")
	for _, fc := range cfg.Frontends {
		fs := p.frontends[fc.Name]
		if fs == nil {
			fs = &frontendState{limit: newLimiter(fc.MaxConn)}
			p.frontends[fc.Name] = fs
		}
		fe := &frontend{cfg: fc, state: fs, backend: s.backendsByName[fc.DefaultBackend], log: p.log.Named("proxy"), workers: p.workers}
		if (fc.Mode == config.ModeTCP && fc.Options.TCPLog) || (fc.Mode == config.ModeHTTP && fc.Options.HTTPLog) {
			fe.access = accessLog
		}
		for _, bind := range fc.Binds {
			l, isNew, err := p.listenerFor(bind)
			if err != nil {
				return nil, opened, fmt.Errorf("frontend %s: %w", fc.Name, err)
			}
			if isNew {
				opened = append(opened, l)
			}
			fe.listeners = append(fe.listeners, l)
		}
		s.frontends = append(s.frontends, fe)
	}
	return s, opened, nil
}

// listenerFor returns the running listener for bind, or opens a new one.
func (p *Proxy) listenerFor(bind string) (l *listener, isNew bool, err error) {
	host, port, _ := net.SplitHostPort(bind)
	if host == "*" {
		host = ""
	}
	addr := net.JoinHostPort(host, port)
	// Port 0 asks the kernel for a free port, so it is never "the same
	// address" as a running listener.
	if port != "0" {
		if l := p.listeners[addr]; l != nil {
			return l, false, nil
		}
	}
	// Accepted connections get no TCP keep-alive probes unless "option
	// clitcpka" asks (as in HAProxy); Go's default would cost four
	// setsockopt calls per connection.
	lc := net.ListenConfig{KeepAlive: -1}
	ln, err := lc.Listen(context.Background(), "tcp", addr)
	if err != nil {
		return nil, false, fmt.Errorf("binding %s: %w", bind, err)
	}
	key := addr
	if port == "0" {
		key = ln.Addr().String()
	}
	return &listener{key: key, ln: ln.(*net.TCPListener), global: p.global}, true, nil
}

func (p *Proxy) buildBackend(bc *config.Backend) (*backend, error) {
	counters := p.backends[bc.Name]
	if counters == nil {
		counters = &Counters{}
		p.backends[bc.Name] = counters
	}
	be := &backend{cfg: bc, counters: counters, log: p.log.Named("proxy")}
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
		tcpAddr, err := net.ResolveTCPAddr("tcp", sc.Address)
		if err != nil {
			return nil, fmt.Errorf("backend %s: server %s: resolving %s: %w", bc.Name, sc.Name, sc.Address, err)
		}
		st := p.registry.Server(bc.Name, sc.Name)
		srv := &server{cfg: sc, addr: tcpAddr.String(), state: st, be: be, member: i}
		switch sc.Observe {
		case "layer4":
			srv.observe = 4
		case "layer7":
			srv.observe = 7
		}
		if sc.CheckAddr != "" {
			ip, err := net.ResolveIPAddr("ip", sc.CheckAddr)
			if err != nil {
				return nil, fmt.Errorf("backend %s: server %s: resolving check address %s: %w", bc.Name, sc.Name, sc.CheckAddr, err)
			}
			srv.checkHost = ip.String()
		}
		if sc.Agent != nil && sc.Agent.Addr != "" {
			ip, err := net.ResolveIPAddr("ip", sc.Agent.Addr)
			if err != nil {
				return nil, fmt.Errorf("backend %s: server %s: resolving agent address %s: %w", bc.Name, sc.Name, sc.Agent.Addr, err)
			}
			srv.agentHost = ip.String()
		}
		if sc.ShutdownOnDown || (sc.Backup && backupsShutDown) {
			srv.sessions = p.sessionSetFor(st)
		}
		if bc.Mode == config.ModeHTTP {
			srv.http = be.newHostClient(srv)
			srv.httpFresh = be.newHostClient(srv)
		}
		be.servers = append(be.servers, srv)
		members[i] = balancer.Member{State: st, Weight: sc.Weight, Backup: sc.Backup, MaxConn: sc.MaxConn, SlowStart: sc.SlowStart}
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
	be.queue = newQueue(pool, members, maxQueue, bc.Timeouts.Queue)
	be.header = []byte(bc.Balance.Header)
	be.hashed = bc.Balance.Hashed()
	be.bySource = bc.Balance.Algorithm == "source"
	return be, nil
}

// applyState brings the state kept across reloads (frontend maxconn, server
// admin state and weight) in line with the configuration, where the
// configuration changed them. It runs once the build has succeeded, never
// during it: a build that fails must not touch the state the running
// snapshot uses.
func (s *Snapshot) applyState() {
	for _, fe := range s.frontends {
		fe.state.limit.setMax(fe.cfg.MaxConn)
	}
	for _, be := range s.backends {
		be.pool.Activate()
		for _, srv := range be.servers {
			srv.state.SetConfigWeight(srv.cfg.Weight)
			srv.state.SetConfigAdmin(srv.cfg.Disabled)
			if !srv.cfg.Check {
				srv.state.SetHealthy(true) // a server without checks is always UP
			}
			if !srv.cfg.Check || be.cfg.DBCheck == nil || !be.cfg.DBCheck.DrainOnLag {
				// No check of this configuration can end a lag drain
				// set under the previous one.
				srv.state.SetLagDrain(false)
			}
		}
	}
}

// observed reports one use of the server by traffic to its passive check
// (observe). Callers test srv.observe first, so that servers without one
// pay a byte compare.
func (srv *server) observed(ok bool) {
	if m := srv.monitor.Load(); m != nil {
		m.Observed(ok)
	}
}

// startChecks starts a health monitor for every server with check enabled,
// and an agent for every server with agent-check.
func (s *Snapshot) startChecks(log *zap.Logger) {
	for _, be := range s.backends {
		for _, srv := range be.servers {
			if a := srv.cfg.Agent; a != nil {
				host, _, _ := net.SplitHostPort(srv.addr)
				if srv.agentHost != "" {
					host = srv.agentHost
				}
				s.agents = append(s.agents, health.StartAgent(health.AgentSpec{
					Backend: be.cfg.Name, Server: srv.cfg.Name, Addr: net.JoinHostPort(host, strconv.Itoa(a.Port)),
					Send: a.Send, Inter: a.Inter, Timeout: checkTimeout(be.cfg, srv.cfg),
				}, agentTarget{srv}, log))
			}
			if !srv.cfg.Check {
				continue
			}
			host, port, _ := net.SplitHostPort(srv.addr)
			if srv.checkHost != "" {
				host = srv.checkHost
			}
			if srv.cfg.CheckPort != 0 {
				port = strconv.Itoa(srv.cfg.CheckPort)
			}
			spec := health.Spec{
				Backend: be.cfg.Name, Server: srv.cfg.Name, Addr: net.JoinHostPort(host, port),
				Inter: srv.cfg.Inter, FastInter: srv.cfg.FastInter, DownInter: srv.cfg.DownInter,
				Spread: s.cfg.Global.SpreadChecks, Timeout: checkTimeout(be.cfg, srv.cfg),
				Rise: srv.cfg.Rise, Fall: srv.cfg.Fall, Up: srv.state.Up(),
				DrainOnLag: be.cfg.DBCheck != nil && be.cfg.DBCheck.DrainOnLag,
				Draining:   srv.state.LagDrained(),
			}
			if srv.cfg.Observe != "" {
				spec.ErrorLimit, spec.OnError = srv.cfg.ErrorLimit, health.OnError(srv.cfg.OnError)
			}
			m := health.Start(spec, checkerFor(be.cfg), checkEdges{srv}, log)
			srv.monitor.Store(m)
			s.monitors = append(s.monitors, m)
		}
	}
}

// checkerFor is the checker the backend's configuration asks for: HTTP with
// option httpchk, a tcp-check script with option tcp-check (or
// redis-check), a database check, otherwise a TCP connect. It is called
// once per server: the database checkers keep a connection of their own.
func checkerFor(be *config.Backend) health.Checker {
	if db := be.DBCheck; db != nil {
		switch db.Kind {
		case config.DBMySQL:
			return health.MySQLChecker{Spec: db}
		case config.DBPgSQL:
			return health.PgSQLChecker{Spec: db}
		case config.DBGalera:
			return health.NewGaleraChecker(db)
		case config.DBMySQLReplica:
			return health.NewMySQLReplicaChecker(db)
		case config.DBPgSQLStandby:
			return health.NewPgSQLStandbyChecker(db)
		}
		panic("proxy: unknown database check " + db.Kind) // config validates Kind
	}
	if be.HTTPCheck != nil {
		return health.HTTPChecker{Spec: be.HTTPCheck}
	}
	if be.TCPCheck != nil {
		return health.TCPScriptChecker{Script: be.TCPCheck}
	}
	return health.TCPChecker{}
}

// checkTimeout is how long a TCP check may take: "timeout check" when set,
// otherwise as HAProxy, the smaller of "timeout connect" and inter.
func checkTimeout(be *config.Backend, srv *config.Server) time.Duration {
	if be.Timeouts.Check > 0 {
		return be.Timeouts.Check
	}
	if be.Timeouts.Connect > 0 {
		return min(be.Timeouts.Connect, srv.Inter)
	}
	return srv.Inter
}

func (s *Snapshot) stopChecks() {
	for _, m := range s.monitors {
		m.Stop()
	}
	s.monitors = nil
	for _, a := range s.agents {
		a.Stop()
	}
	s.agents = nil
}

// retire is called once a newer snapshot is live. Connections already
// established keep running on their own; this stops what only the old
// configuration needs.
func (s *Snapshot) retire() {
	s.stopChecks()
	for _, be := range s.backends {
		be.pool.Close()
		for _, srv := range be.servers {
			if srv.http != nil {
				srv.http.CloseIdleConnections()
			}
		}
	}
}
