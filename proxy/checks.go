package proxy

import (
	"net"
	"reflect"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/halo-lb/halo/config"
	"github.com/halo-lb/halo/health"
	"go.uber.org/zap"
)

// serverChecks is the health checking of one server: its monitor (check)
// and its agent (agent-check). It is kept with the server's state across
// reloads, so that a reload which leaves a server's check settings alone
// keeps its monitor: the rise/fall counter, the last result and the
// schedule. Verdicts go to the server as the live configuration sees it.
//
// Concurrency: live and monitor are read from any goroutine (the data path
// reports passive checks through monitor); everything else belongs to
// Apply, under Proxy.mu.
type serverChecks struct {
	live    atomic.Pointer[server]
	monitor atomic.Pointer[health.Monitor]
	// spec and method are what monitor was started with; spec's Up and
	// Draining, which only seed a new monitor, are left zero.
	spec   health.Spec
	method checkMethod
	agent  *health.Agent
	// agentSpec is what agent was started with.
	agentSpec health.AgentSpec
	// resume and agentPaused are where a previous process left the
	// checks (carry.go), for the first monitor and agent started.
	resume      *health.Resumed
	agentPaused bool
}

func newServerChecks() *serverChecks { return &serverChecks{} }

// checkMethod is the part of a backend's configuration that decides what a
// monitor runs (see checker).
type checkMethod struct {
	http *config.HTTPCheck
	tcp  []config.TCPStep
	db   *config.DBCheck
	// tls and proxy are the server's check-ssl and check-send-proxy, as
	// configured; transport is what they build to (compared through
	// them, since a new *tls.Config is built by every reload).
	tls       *config.ServerTLS
	proxy     config.ProxyProtocol
	transport *health.Transport
}

func methodOf(be *config.Backend, srv *server) checkMethod {
	return checkMethod{http: be.HTTPCheck, tcp: be.TCPCheck, db: be.DBCheck,
		tls: srv.cfg.CheckTLS, proxy: srv.cfg.CheckSendProxy, transport: srv.checkTransport}
}

// same reports whether two methods check the same way. The configurations
// are separate values from separate parses, so they are compared by value;
// their compiled regular expressions compare equal when compiled from the
// same pattern.
func (m checkMethod) same(o checkMethod) bool {
	return reflect.DeepEqual(m.http, o.http) && reflect.DeepEqual(m.tcp, o.tcp) && reflect.DeepEqual(m.db, o.db) &&
		reflect.DeepEqual(m.tls, o.tls) && m.proxy == o.proxy
}

// observed reports one use of the server by traffic to its passive check
// (observe). Callers test srv.observe first, so that servers without one
// pay a byte compare.
func (srv *server) observed(ok bool) {
	if m := srv.checks.monitor.Load(); m != nil {
		m.Observed(ok)
	}
}

// syncChecks brings every server's checks in line with the snapshot about
// to go live: each server's checks report to its new view, a monitor or
// agent whose settings are unchanged keeps running, a changed one is
// replaced (a monitor carrying its counter and last result over), and one
// the file no longer asks for stops, its probe in flight finished. Called
// by Apply, under p.mu, once the build has succeeded.
func (s *Snapshot) syncChecks(log *zap.Logger) {
	for _, be := range s.backends {
		for _, srv := range be.servers {
			c := srv.checks
			c.live.Store(srv)
			c.syncMonitor(s.monitorSpec(be, srv), methodOf(be.cfg, srv), srv, log)
			c.syncAgent(agentSpec(be, srv), log)
		}
	}
}

// syncMonitor starts, keeps, replaces or stops the server's monitor; spec
// is nil when the server has no check.
func (c *serverChecks) syncMonitor(spec *health.Spec, method checkMethod, srv *server, log *zap.Logger) {
	old := c.monitor.Load()
	if spec == nil {
		if old != nil {
			old.Stop()
			c.monitor.Store(nil)
		}
		return
	}
	if old != nil && c.spec == *spec && c.method.same(method) {
		return
	}
	c.spec, c.method = *spec, method
	start := *spec
	start.Up, start.Draining = srv.state.Up(), srv.state.LagDrained()
	var m *health.Monitor
	switch {
	case old != nil:
		old.Stop()
		m = health.StartAfter(old, start, method.checker(), c, log)
	case c.resume != nil:
		m = health.StartResumed(start, *c.resume, method.checker(), c, log)
	default:
		m = health.Start(start, method.checker(), c, log)
	}
	c.monitor.Store(m)
}

// syncAgent starts, keeps, replaces or stops the server's agent; spec is
// nil when the server has no agent-check.
func (c *serverChecks) syncAgent(spec *health.AgentSpec, log *zap.Logger) {
	if c.agent != nil && (spec == nil || *spec != c.agentSpec) {
		c.agent.Stop()
		c.agent = nil
	}
	if spec != nil && c.agent == nil {
		c.agent, c.agentSpec = health.StartAgent(*spec, c, log), *spec
		if c.agentPaused {
			c.agent.SetPaused(true)
		}
	}
	c.resume, c.agentPaused = nil, false
}

// stop ends the server's checks; the server left the configuration or the
// proxy is shutting down.
func (c *serverChecks) stop() {
	if m := c.monitor.Swap(nil); m != nil {
		m.Stop()
	}
	if c.agent != nil {
		c.agent.Stop()
		c.agent = nil
	}
}

// monitorSpec is what the server's monitor checks and how often, nil
// without check.
func (s *Snapshot) monitorSpec(be *backend, srv *server) *health.Spec {
	if !srv.cfg.Check {
		return nil
	}
	host, port, _ := net.SplitHostPort(srv.addr)
	if srv.checkHost != "" {
		host = srv.checkHost
	}
	if srv.cfg.CheckPort != 0 {
		port = strconv.Itoa(srv.cfg.CheckPort)
	}
	spec := &health.Spec{
		Backend: be.cfg.Name, Server: srv.cfg.Name, Addr: net.JoinHostPort(host, port),
		Inter: srv.cfg.Inter, FastInter: srv.cfg.FastInter, DownInter: srv.cfg.DownInter,
		Spread: s.cfg.Global.SpreadChecks, Timeout: checkTimeout(be.cfg, srv.cfg),
		Rise: srv.cfg.Rise, Fall: srv.cfg.Fall,
		DrainOnLag: be.cfg.DBCheck != nil && be.cfg.DBCheck.DrainOnLag,
	}
	if srv.cfg.Observe != "" {
		spec.ErrorLimit, spec.OnError = srv.cfg.ErrorLimit, srv.cfg.OnError
	}
	return spec
}

// agentSpec is where the server's agent listens and how often to ask it,
// nil without agent-check.
func agentSpec(be *backend, srv *server) *health.AgentSpec {
	a := srv.cfg.Agent
	if a == nil {
		return nil
	}
	host, _, _ := net.SplitHostPort(srv.addr)
	if srv.agentHost != "" {
		host = srv.agentHost
	}
	return &health.AgentSpec{
		Backend: be.cfg.Name, Server: srv.cfg.Name, Addr: net.JoinHostPort(host, strconv.Itoa(a.Port)),
		Send: a.Send, Inter: a.Inter, Timeout: checkTimeout(be.cfg, srv.cfg),
	}
}

// checker is the checker the method asks for: a database check, HTTP with
// option httpchk, a tcp-check script with option tcp-check (or
// redis-check), otherwise a TCP connect. It is called once per monitor:
// the database checkers keep a connection of their own.
func (m checkMethod) checker() health.Checker {
	if db := m.db; db != nil {
		switch db.Kind {
		case config.DBMySQL:
			return health.MySQLChecker{Spec: db, Transport: m.transport}
		case config.DBPgSQL:
			return health.PgSQLChecker{Spec: db, Transport: m.transport}
		case config.DBGalera:
			c := health.NewGaleraChecker(db)
			c.Transport = m.transport
			return c
		case config.DBMySQLReplica:
			c := health.NewMySQLReplicaChecker(db)
			c.Transport = m.transport
			return c
		case config.DBPgSQLStandby:
			c := health.NewPgSQLStandbyChecker(db)
			c.Transport = m.transport
			return c
		}
		panic("proxy: unknown database check " + string(db.Kind)) // config validates Kind
	}
	if m.http != nil {
		return health.HTTPChecker{Spec: m.http, Transport: m.transport}
	}
	if m.tcp != nil {
		return health.TCPScriptChecker{Script: m.tcp, Transport: m.transport}
	}
	if m.transport != nil {
		return health.ConnChecker{Transport: m.transport}
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
