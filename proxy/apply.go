package proxy

import (
	"errors"

	"github.com/halo-lb/halo/balancer"
	"github.com/halo-lb/halo/config"
	"go.uber.org/zap"
)

// Apply builds a snapshot from cfg and, if that succeeds, makes it the one
// served: listeners whose address is unchanged keep their socket, new ones
// are opened, removed ones closed, health checks restarted with the current
// server states. On error nothing changes and the old snapshot keeps serving.
func (p *Proxy) Apply(cfg *config.Config) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopping.Load() {
		return errors.New("proxy is shutting down")
	}
	next, opened, err := p.build(cfg)
	if err != nil {
		for _, l := range opened {
			l.close()
		}
		return err
	}
	for _, fe := range next.frontends {
		if fe.cfg.Mode == config.ModeHTTP {
			fe.http = p.httpServerFor(fe, cfg.Global.HardStopAfter)
		}
	}
	// The build can no longer fail: bring kept state in line with the new
	// file before any connection can use the new snapshot.
	next.applyState()
	prev := p.current.Swap(next)
	for _, fe := range next.frontends {
		fe.state.live.Store(fe)
		for _, l := range fe.listeners {
			l.frontend.Store(fe)
		}
	}
	for _, l := range opened {
		go l.serve(p)
		p.log.Info("listening", zap.String("frontend", l.frontend.Load().cfg.Name), zap.String("bind", l.ln.Addr().String()))
	}
	used := map[string]bool{}
	for _, fe := range next.frontends {
		for _, l := range fe.listeners {
			used[l.key] = true
		}
	}
	for key, l := range p.listeners {
		if !used[key] {
			l.close()
			delete(p.listeners, key)
			p.log.Info("listener closed", zap.String("bind", l.ln.Addr().String()))
		}
	}
	for _, l := range opened {
		p.listeners[l.key] = l
	}
	p.global.setMax(cfg.Global.MaxConn)
	if prev != nil {
		prev.retire()
	}
	next.startChecks(p.log.Named("health"))
	p.registry.Retain(func(backend, server string) bool {
		be := next.backendsByName[backend]
		return be != nil && be.hasServer(server)
	})
	for st := range p.sessions {
		if p.registry.Lookup(st.Backend, st.Name) != st {
			delete(p.sessions, st)
		}
	}
	return nil
}

// sessionSetFor returns the session set of a server's state, shared by
// every snapshot that uses it, so that a session begun before a reload is
// closed as well. Called with p.mu held (during a build).
func (p *Proxy) sessionSetFor(st *balancer.Server) *sessionSet {
	s := p.sessions[st]
	if s == nil {
		s = newSessionSet()
		p.sessions[st] = s
	}
	return s
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
