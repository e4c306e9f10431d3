package proxy

import (
	"time"

	"github.com/halo-lb/halo/balancer"
	"github.com/halo-lb/halo/health"
	"github.com/halo-lb/halo/serverstate"
)

// This file is the state a process takes over from the one before it: at
// a start, the server state of a server-state file; at a binary upgrade,
// the old process's server state and its counters, so that monitoring
// sees no reset.

// Carried is what a previous process left for this one's first
// configuration.
type Carried struct {
	// Servers are server-state lines by backend and server name: each
	// applies to the server of those names in the configuration.
	Servers map[[2]string]serverstate.Line
	// Totals are the old process's counters at an upgrade, nil at a
	// plain start.
	Totals *Totals
}

// Totals are a process's cumulative counters by name, the way they go
// from the old process to the new one at an upgrade. Gauges (current
// sessions, queues) are each process's own and are not in it.
type Totals struct {
	Frontends map[string]balancer.CounterValues `json:"frontends"`
	Backends  map[string]BackendTotals          `json:"backends"`
	// Servers are by backend, then server.
	Servers map[string]map[string]ServerTotals `json:"servers"`
}

// BackendTotals are a backend's counters and its own UP/DOWN history
// (HAProxy's backend chkdown, lastchg and downtime).
type BackendTotals struct {
	balancer.CounterValues
	Downs    uint64 `json:"chkdown,omitempty"`
	Downtime int64  `json:"downtime_ns,omitempty"` // before DownSince
	// DownSince is when the backend went DOWN (unix nanoseconds), 0
	// while it is UP; LastChange its last change.
	DownSince  int64 `json:"down_since_ns,omitempty"`
	LastChange int64 `json:"last_change_ns,omitempty"`
}

// ServerTotals are a server's counters and the time of its last change,
// to the nanosecond (the server-state file has seconds, and the downtime
// of a server DOWN across the upgrade counts from it).
type ServerTotals struct {
	balancer.ServerValues
	LastChange int64 `json:"last_change_ns,omitempty"`
}

// Restore has the next Apply, the first, start from what a previous
// process left: server state (admin state, weights, health as the
// server-state file says; see serverstate) and, at an upgrade, counters.
// Apply uses it once, after the build and before any connection can use
// the new snapshot.
func (p *Proxy) Restore(c *Carried) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.carried = c
}

// restore applies a Carried to a snapshot just built for the first
// configuration: the servers' state (with HAProxy's rule that what the
// configuration changed wins, applied by applyState), where their checks
// resume, and the counters. Under p.mu, before syncChecks and applyState.
func (s *Snapshot) restore(c *Carried) {
	if c == nil {
		return
	}
	for _, be := range s.backends {
		for _, srv := range be.servers {
			if l, ok := c.Servers[[2]string{be.cfg.Name, srv.cfg.Name}]; ok {
				restoreServer(srv, l)
			}
		}
	}
	if c.Totals != nil {
		s.restoreTotals(c.Totals)
	}
	for _, be := range s.backends {
		be.pool.Rebuild() // the pool was built from the state before
	}
}

func restoreServer(srv *server, l serverstate.Line) {
	sc := srv.cfg
	counter, up, nolb := l.Health(sc.Rise, sc.Fall)
	r := balancer.Restored{Up: up, NoLB: nolb, ConfigDisabled: l.ConfiguredMaint(),
		ConfigWeight: l.IWeight, UserWeight: l.UWeight, LastChange: time.Now().Add(-time.Duration(l.SinceChange) * time.Second)}
	switch {
	case l.Maint():
		r.Admin = balancer.AdminMaint
	case l.Drain():
		r.Admin = balancer.AdminDrain
	}
	if !sc.Check {
		r.Up, r.NoLB = true, false // a server without checks is always UP
	}
	srv.state.Restore(r)
	if sc.Check {
		res := &health.Resumed{Health: counter, Paused: l.CheckDisabled()}
		if st, ok := serverstate.StatusOf(l.CheckStatus); ok {
			res.Last = &health.Checked{Result: health.Result{Status: st, OK: l.CheckResult == serverstate.ResultPassed}, At: r.LastChange}
		}
		srv.checks.resume = res
	}
	if sc.Agent != nil && l.AgentDisabled() {
		srv.checks.agentPaused = true
	}
}

// restoreTotals starts the new snapshot's counters from an old process's
// and takes over the backends' UP/DOWN history, so that a backend DOWN
// across an upgrade is no new DOWN transition.
func (s *Snapshot) restoreTotals(t *Totals) {
	s.addTotals(t)
	for name, bt := range t.Backends {
		if be := s.backendsByName[name]; be != nil {
			st := be.state
			st.upDown.Lock()
			if st.lastChange.Load() == 0 {
				st.down = bt.DownSince != 0
				st.downSince.Store(bt.DownSince)
				st.lastChange.Store(bt.LastChange)
			}
			st.upDown.Unlock()
		}
	}
	for bname, servers := range t.Servers {
		for sname, v := range servers {
			if srv := s.server(bname, sname); srv != nil && v.LastChange != 0 {
				srv.state.SetLastChange(time.Unix(0, v.LastChange))
			}
		}
	}
}

func (s *Snapshot) server(backend, name string) *server {
	if be := s.backendsByName[backend]; be != nil {
		for _, srv := range be.servers {
			if srv.cfg.Name == name {
				return srv
			}
		}
	}
	return nil
}

// Totals reads every cumulative counter of the live configuration.
func (p *Proxy) Totals() *Totals {
	t := &Totals{Frontends: map[string]balancer.CounterValues{}, Backends: map[string]BackendTotals{},
		Servers: map[string]map[string]ServerTotals{}}
	s := p.current.Load()
	if s == nil {
		return t
	}
	for _, fe := range s.frontends {
		t.Frontends[fe.cfg.Name] = fe.state.Values()
	}
	for _, be := range s.backends {
		st := be.state
		st.upDown.Lock()
		bt := BackendTotals{CounterValues: be.counters.Values(), Downs: st.downs.Load(), Downtime: st.downtime.Load(),
			DownSince: st.downSince.Load(), LastChange: st.lastChange.Load()}
		st.upDown.Unlock()
		t.Backends[be.cfg.Name] = bt
		servers := map[string]ServerTotals{}
		for _, srv := range be.servers {
			servers[srv.cfg.Name] = ServerTotals{ServerValues: srv.state.Values(), LastChange: srv.state.LastChange().UnixNano()}
		}
		t.Servers[be.cfg.Name] = servers
	}
	return t
}

// Since is what the counters of t gained since prev, for a process that
// took prev over already; the times of last changes are t's.
func (t *Totals) Since(prev *Totals) *Totals {
	d := &Totals{Frontends: map[string]balancer.CounterValues{}, Backends: map[string]BackendTotals{},
		Servers: map[string]map[string]ServerTotals{}}
	for name, v := range t.Frontends {
		d.Frontends[name] = v.Since(prev.Frontends[name])
	}
	for name, v := range t.Backends {
		old := prev.Backends[name]
		v.CounterValues = v.CounterValues.Since(old.CounterValues)
		v.Downs -= min(v.Downs, old.Downs)
		v.Downtime = max(0, v.Downtime-old.Downtime)
		d.Backends[name] = v
	}
	for bname, servers := range t.Servers {
		out := map[string]ServerTotals{}
		for sname, v := range servers {
			v.ServerValues = v.ServerValues.Since(prev.Servers[bname][sname].ServerValues)
			out[sname] = v
		}
		d.Servers[bname] = out
	}
	return d
}

// AddTotals adds counters an old process counted (its last ones, while it
// drained) to the live configuration's, by name; names this
// configuration does not have are dropped.
func (p *Proxy) AddTotals(t *Totals) {
	if s := p.current.Load(); s != nil {
		s.addTotals(t)
	}
}

func (s *Snapshot) addTotals(t *Totals) {
	for name, v := range t.Frontends {
		if fe := s.frontendsByName[name]; fe != nil {
			fe.state.Add(v)
		}
	}
	for name, v := range t.Backends {
		if be := s.backendsByName[name]; be != nil {
			be.counters.Add(v.CounterValues)
			be.state.downs.Add(v.Downs)
			be.state.downtime.Add(v.Downtime)
		}
	}
	for bname, servers := range t.Servers {
		for sname, v := range servers {
			if srv := s.server(bname, sname); srv != nil {
				srv.state.AddValues(v.ServerValues)
			}
		}
	}
}
