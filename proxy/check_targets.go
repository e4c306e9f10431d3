package proxy

import (
	"github.com/halo-lb/halo/balancer"
	"github.com/halo-lb/halo/health"
	"go.uber.org/zap"
)

// The verdicts of a server's checks act on the server as the live
// configuration sees it (serverChecks.live), whichever configuration
// started the check.
var (
	_ health.StatusSetter = (*serverChecks)(nil)
	_ health.Drainer      = (*serverChecks)(nil)
	_ health.AgentTarget  = (*serverChecks)(nil)
)

// SetLagDrain carries a lag check's verdict ("on-lag drain") to the
// server's state.
func (c *serverChecks) SetLagDrain(lagging bool) { c.live.Load().state.SetLagDrain(lagging) }

// SetHealthy records a health edge in the server's state (rebuilding the
// pools), then carries out on-marked-down and on-marked-up.
func (c *serverChecks) SetHealthy(up bool) {
	srv := c.live.Load()
	srv.state.SetHealthy(up)
	switch {
	case !up && srv.cfg.ShutdownOnDown:
		srv.shutdownSessions("marked DOWN")
	case up && srv.cfg.ShutdownBackupsOnUp && !srv.cfg.Backup && srv.be.pool.Usable(srv.member):
		// As HAProxy: only a non-backup server that takes traffic now
		// (weight above 0, not in maintenance) sends it back to itself.
		for _, b := range srv.be.servers {
			if b.cfg.Backup {
				b.shutdownSessions("a non-backup server is UP")
			}
		}
	}
}

// AgentReport applies what a server's agent-check reports: a weight as a
// percentage of the configured one, an admin state, a maxconn, and "up" or
// "down", which holds the server out of its pool whatever its health check
// says (and closes its sessions with on-marked-down shutdown-sessions).
func (c *serverChecks) AgentReport(r health.AgentReport) {
	srv := c.live.Load()
	st := srv.state
	if r.WeightPercent >= 0 {
		if err := st.SetWeight(r.WeightPercent, true, srv.be.pool.Spec().Static()); err != nil && srv.be.log.Core().Enabled(zap.WarnLevel) {
			srv.be.log.Warn("agent weight not applied", zap.String("backend", srv.be.cfg.Name), zap.String("server", srv.cfg.Name), zap.Error(err))
		}
	}
	switch r.Admin {
	case health.AgentReady:
		st.SetAdmin(balancer.AdminReady)
	case health.AgentDrain:
		st.SetAdmin(balancer.AdminDrain)
	case health.AgentMaint:
		st.SetAdmin(balancer.AdminMaint)
	}
	if r.MaxConn >= 0 {
		st.SetMaxConn(r.MaxConn)
	}
	switch r.Health {
	case health.AgentUp:
		st.SetAgentUp(true)
	case health.AgentDown:
		wasUp := st.AgentUp()
		st.SetAgentUp(false)
		if wasUp && srv.cfg.ShutdownOnDown {
			srv.shutdownSessions("agent reported down")
		}
	}
}
