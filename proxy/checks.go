package proxy

import (
	"net"
	"strconv"
	"time"

	"github.com/halo-lb/halo/balancer"
	"github.com/halo-lb/halo/config"
	"github.com/halo-lb/halo/health"
	"go.uber.org/zap"
)

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

// checkEdges receives one server's health-check edges: it records them in
// the server's state (rebuilding the pools), then carries out
// on-marked-down and on-marked-up.
type checkEdges struct {
	srv *server
}

// SetLagDrain carries a lag check's verdict ("on-lag drain") to the
// server's state.
func (e checkEdges) SetLagDrain(lagging bool) { e.srv.state.SetLagDrain(lagging) }

func (e checkEdges) SetHealthy(up bool) {
	e.srv.state.SetHealthy(up)
	switch {
	case !up && e.srv.cfg.ShutdownOnDown:
		e.srv.shutdownSessions("marked DOWN")
	case up && e.srv.cfg.ShutdownBackupsOnUp && !e.srv.cfg.Backup && e.srv.be.pool.Usable(e.srv.member):
		// As HAProxy: only a non-backup server that takes traffic now
		// (weight above 0, not in maintenance) sends it back to itself.
		for _, b := range e.srv.be.servers {
			if b.cfg.Backup {
				b.shutdownSessions("a non-backup server is UP")
			}
		}
	}
}

// agentTarget applies what a server's agent-check reports: a weight as a
// percentage of the configured one, an admin state, a maxconn, and "up" or
// "down", which holds the server out of its pool whatever its health check
// says (and closes its sessions with on-marked-down shutdown-sessions).
type agentTarget struct {
	srv *server
}

func (a agentTarget) AgentReport(r health.AgentReport) {
	st := a.srv.state
	if r.WeightPercent >= 0 {
		if err := st.SetWeight(r.WeightPercent, true, a.srv.be.pool.Spec().Static()); err != nil && a.srv.be.log.Core().Enabled(zap.WarnLevel) {
			a.srv.be.log.Warn("agent weight not applied", zap.String("backend", a.srv.be.cfg.Name), zap.String("server", a.srv.cfg.Name), zap.Error(err))
		}
	}
	switch r.Admin {
	case "ready":
		st.SetAdmin(balancer.AdminReady)
	case "drain":
		st.SetAdmin(balancer.AdminDrain)
	case "maint":
		st.SetAdmin(balancer.AdminMaint)
	}
	if r.MaxConn >= 0 {
		st.SetMaxConn(r.MaxConn)
	}
	switch r.Health {
	case "up":
		st.SetAgentUp(true)
	case "down":
		wasUp := st.AgentUp()
		st.SetAgentUp(false)
		if wasUp && a.srv.cfg.ShutdownOnDown {
			a.srv.shutdownSessions("agent reported down")
		}
	}
}
