package proxy

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/halo-lb/halo/balancer"
	"github.com/halo-lb/halo/config"
	"go.uber.org/zap"
)

// Apply builds a snapshot from cfg and, if that succeeds, makes it the one
// served: listeners whose address and socket options are unchanged keep
// their socket, new ones are opened, removed ones closed; health checks
// whose settings are unchanged keep running; state the new file no longer
// uses is released. On error nothing changes and the old snapshot keeps
// serving.
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
	// The build can no longer fail: bring kept state in line with the new
	// file before any connection can use the new snapshot. Checks first:
	// a check the new file drops is stopped (its probe in flight
	// finished) before applyState forces its server UP, so that no late
	// verdict of it can stick.
	next.restore(p.carried)
	p.carried = nil
	p.syncHTTPServers(next)
	next.syncChecks(p.log.Named("health"))
	next.applyState()
	p.installStickTables(next)
	prev := p.current.Swap(next)
	for _, fe := range next.frontends {
		fe.state.live.Store(fe)
		for i, l := range fe.listeners {
			l.side.Store(fe.sides[i])
			if old := l.frontend.Swap(fe); old != nil && old.state != fe.state {
				old.state.limit.wake() // its accept loop may wait for a slot of old's
			}
		}
	}
	p.swapListeners(next, opened)
	p.global.setMax(cfg.Global.MaxConn)
	if prev != nil {
		prev.retire()
	}
	p.prune(next)
	if prev != nil {
		p.endRemovedServersSessions(prev, next.cfg.Global.HardStopAfter)
	}
	return nil
}

// endRemovedServersSessions closes, once hard-stop-after has run out, the
// sessions (mode tcp, and tunnels in mode http) still relayed to servers
// that prev had and the registry no longer knows: the new file removed
// them. With HAProxy they end when the old process stops; here sessions of
// the servers that stay are not touched at all.
func (p *Proxy) endRemovedServersSessions(prev *Snapshot, hardStop time.Duration) {
	removed := map[*balancer.Server]bool{}
	for _, be := range prev.backends {
		for _, srv := range be.servers {
			if p.registry.Lookup(srv.state.Backend, srv.state.Name) != srv.state {
				removed[srv.state] = true
			}
		}
	}
	if len(removed) == 0 {
		return
	}
	time.AfterFunc(hardStop, func() {
		s := p.current.Load()
		n := 0
		for _, fe := range s.frontends {
			for c, e := range fe.state.tcp.snapshot() {
				if e.srv != nil && removed[e.srv.state] {
					c.Close()
					n++
				}
			}
		}
		if n > 0 {
			p.log.Warn("sessions to servers a reload removed closed at hard-stop-after", zap.Int("sessions", n))
		}
	})
}

// syncHTTPServers gives each frontend in mode http the fasthttp server its
// settings need, retiring generations that a frontend no longer uses (its
// settings changed, or it went to mode tcp).
func (p *Proxy) syncHTTPServers(next *Snapshot) {
	hardStop := next.cfg.Global.HardStopAfter
	for _, fe := range next.frontends {
		if fe.cfg.Mode == config.ModeHTTP {
			p.httpServerFor(fe, &next.cfg.Global)
		} else if old := fe.state.http.Swap(nil); old != nil {
			p.startDraining(fe.state, old, hardStop)
			p.parking.closeFrontend(fe.state) // idle, and no longer in mode http
		}
	}
}

// swapListeners starts the accept loops of the listeners the build opened
// and closes those that no frontend of next uses.
func (p *Proxy) swapListeners(next *Snapshot, opened []*listener) {
	for _, l := range opened {
		p.acceptLoops.Add(1)
		go func() {
			defer p.acceptLoops.Done()
			l.serve(p)
		}()
		p.log.Info("listening", zap.String("frontend", l.frontend.Load().cfg.Name), zap.String("bind", l.ln.Addr().String()))
	}
	used := map[listenerKey]bool{}
	for _, fe := range next.frontends {
		for _, l := range fe.listeners {
			used[l.key] = true
		}
	}
	for key, l := range p.listeners {
		if !used[key] {
			l.closeForGood()
			delete(p.listeners, key)
			p.log.Info("listener closed", zap.String("bind", l.ln.Addr().String()))
		}
	}
	for _, l := range opened {
		p.listeners[l.key] = l
	}
	p.listenerCount.Store(int64(len(p.listeners)))
}

// prune releases the kept state that next no longer uses: frontends it
// removed are retired, backend counters dropped, server states forgotten
// with their health checks (stopped) and session sets.
func (p *Proxy) prune(next *Snapshot) {
	hardStop := next.cfg.Global.HardStopAfter
	p.frontends.retain(func(name string) bool { return next.frontendsByName[name] != nil },
		func(name string, fs *frontendState) {
			fs.removed.Store(true)
			if h := fs.http.Load(); h != nil {
				h.retiring.Store(true)
			}
			go p.retireFrontend(name, fs, hardStop)
		})
	p.backends.retain(func(name string) bool { return next.backendsByName[name] != nil }, nil)
	p.registry.Retain(func(backend, server string) bool {
		be := next.backendsByName[backend]
		return be != nil && be.hasServer(server)
	})
	known := func(st *balancer.Server) bool { return p.registry.Lookup(st.Backend, st.Name) == st }
	p.sessions.retain(known, nil)
	p.checks.retain(known, func(_ *balancer.Server, c *serverChecks) { c.stop() })
}

// retireFrontend ends a frontend that a reload removed. Its listeners are
// closed already; its connections in mode http finish their current
// request and close (idle kept-alive ones at once), in mode tcp they run
// on; whatever is still open when hard-stop-after runs out is closed, as
// an old HAProxy process is stopped then.
func (p *Proxy) retireFrontend(name string, fs *frontendState, hardStop time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), hardStop)
	defer cancel()
	p.parking.closeFrontend(fs) // idle: they close at once
	var wg sync.WaitGroup
	if h := fs.http.Load(); h != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.retireHTTP(h, hardStop)
		}()
	}
	if n := fs.tcp.drain(ctx); n > 0 {
		p.log.Warn("connections of a removed frontend closed at hard-stop-after", zap.String("frontend", name), zap.Int("connections", n))
	}
	wg.Wait()
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
		be.noteUsable()
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
			if srv.cfg.Agent == nil {
				// Nor can an agent end what an agent of the previous
				// configuration said: "down", or a maxconn. (Its
				// weight and drain/maint are the runtime settings an
				// operator's "set weight" and "set server state" also
				// make, and stay as those do.)
				srv.state.SetAgentUp(true)
				srv.state.SetMaxConn(-1)
			}
		}
	}
}

// retire is called once a newer snapshot is live. Connections already
// established keep running on their own; this stops what only the old
// configuration needs.
func (s *Snapshot) retire() {
	for _, be := range s.backends {
		be.pool.Close()
	}
	s.closeServerConns()
}

// closeServerConns closes the idle kept-alive server connections of the
// snapshot's backends, and has those still serving a request closed
// when it ends (backend.retired): no request of this snapshot's will
// take them again.
func (s *Snapshot) closeServerConns() {
	for _, be := range s.backends {
		be.retired.Store(true)
		for _, srv := range be.servers {
			if srv.http != nil {
				srv.http.CloseIdleConnections()
			}
		}
	}
}
