package proxy

import (
	"net"
	"sync"

	"github.com/halo-lb/halo/balancer"
	"github.com/halo-lb/halo/health"
	"go.uber.org/zap"
)

// sessionSet holds the established L4 sessions of one server, for
// "on-marked-down shutdown-sessions" and "on-marked-up
// shutdown-backup-sessions". Only servers that one of those options may
// reach have one, so other sessions pay nothing; a tracked session costs a
// lock to join and one to leave.
type sessionSet struct {
	mu       sync.Mutex
	sessions map[*net.TCPConn]*net.TCPConn // client → server connection
}

func newSessionSet() *sessionSet {
	return &sessionSet{sessions: map[*net.TCPConn]*net.TCPConn{}}
}

func (s *sessionSet) add(client, server *net.TCPConn) {
	s.mu.Lock()
	s.sessions[client] = server
	s.mu.Unlock()
}

func (s *sessionSet) remove(client *net.TCPConn) {
	s.mu.Lock()
	delete(s.sessions, client)
	s.mu.Unlock()
}

// closeAll closes both connections of every session: the relay of each
// ends at once and the clients see their connection close, as with
// HAProxy's shutdown-sessions. It returns how many sessions it closed.
func (s *sessionSet) closeAll() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	for client, server := range s.sessions {
		client.Close()
		server.Close()
	}
	return len(s.sessions)
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

// shutdownSessions closes the server's established sessions: its tracked
// L4 sessions and, in mode http, its idle kept-alive connections.
func (srv *server) shutdownSessions(why string) {
	n := 0
	if srv.sessions != nil {
		n = srv.sessions.closeAll()
	}
	if srv.http != nil {
		srv.http.CloseIdleConnections()
	}
	if n > 0 {
		srv.be.log.Info("sessions shut down", zap.String("backend", srv.be.cfg.Name), zap.String("server", srv.cfg.Name),
			zap.Int("sessions", n), zap.String("reason", why))
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
