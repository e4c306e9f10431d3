package proxy

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/halo-lb/halo/balancer"
	"github.com/halo-lb/halo/health"
	"github.com/halo-lb/halo/proxy/rules"
	"github.com/halo-lb/halo/sticktable"
	"github.com/halo-lb/halo/tlsfront"
	"go.uber.org/zap"
)

// Proxy runs one configuration at a time and swaps to a new one on Apply.
type Proxy struct {
	log      *zap.Logger
	registry *balancer.Registry
	global   *limiter
	// active counts the client connections being served, over every
	// frontend (HAProxy's actconn).
	active atomic.Int64

	mu        sync.Mutex // serializes Apply and Shutdown
	current   atomic.Pointer[Snapshot]
	listeners map[listenerKey]*listener // by address and socket options
	// listenerCount is len(listeners), for readers that must not take mu.
	listenerCount atomic.Int64
	// The state that outlives snapshots besides server state (registry),
	// one owner for each kind: frontend state by name, backend counters
	// by name, and by server state each server's session set and health
	// checks. Only Apply and Shutdown touch these (under mu); readers go
	// through the live snapshot.
	frontends *kept[string, *frontendState]
	backends  *kept[string, *backendState]
	sessions  *kept[*balancer.Server, *sessionSet]
	checks    *kept[*balancer.Server, *serverChecks]
	conns     sync.WaitGroup // every client connection being served
	// acceptLoops are the running accept loops, each of which adds to
	// conns: Shutdown and Handover wait for them to end before they
	// wait on conns, as a WaitGroup's Add must not race its Wait.
	acceptLoops sync.WaitGroup
	// connEnded wakes accept loops backing off after a failed accept
	// (out of descriptors) when a client connection ends.
	connEnded endSignal
	stopping  atomic.Bool
	workers   *workers      // goroutines that serve connections
	parking   *parking      // idle kept-alive connections parked
	stopSweep chan struct{} // closed by Shutdown

	// statsOn is whether the configuration being built has a stats
	// socket or page (statsRead); only build touches it, under mu.
	statsOn   bool
	statsPage atomic.Pointer[StatsPage]

	httpMu      sync.Mutex
	httpServers map[*httpServer]struct{} // running, including retiring ones

	// tickets seal the TLS session tickets of every bind, across
	// reloads.
	tickets *tlsfront.Tickets
	// tables are the stick tables, across reloads (sticktables.go).
	tables *sticktable.Registry
	// procVars are the rules' process-wide variables (proc.NAME),
	// across reloads.
	procVars *rules.ProcVars

	// carried is what a previous process left for the first Apply
	// (carry.go); inherit gives the listening sockets it passed on
	// (upgrade.go). Both under mu.
	carried *Carried
	inherit func(name string) (*net.TCPListener, error)
}

// New returns a Proxy with no configuration; call Apply to start serving.
func New(log *zap.Logger) *Proxy {
	pk := newParking(nil)
	p := &Proxy{
		log:       log,
		registry:  balancer.NewRegistry(),
		global:    newLimiter(0),
		tickets:   tlsfront.NewTickets(0),
		tables:    sticktable.NewRegistry(),
		procVars:  rules.NewProcVars(),
		listeners: map[listenerKey]*listener{},
		frontends: newKept[string](func() *frontendState { return &frontendState{limit: newLimiter(0), parking: pk} }),
		backends:  newKept[string](func() *backendState { return &backendState{} }),
		sessions:  newKept[*balancer.Server](newSessionSet),
		checks:    newKept[*balancer.Server](newServerChecks),
		workers:   newWorkers(),
		stopSweep: make(chan struct{}),

		httpServers: map[*httpServer]struct{}{},
	}
	p.global.freed = &p.connEnded
	pk.p, p.parking = p, pk
	go p.sweepWorkers()
	return p
}

// sweepWorkers retires idle workers now and then until Shutdown.
func (p *Proxy) sweepWorkers() {
	t := time.NewTicker(workerIdleTimeout / 2)
	defer t.Stop()
	for {
		select {
		case now := <-t.C:
			p.workers.sweep(now)
		case <-p.stopSweep:
			return
		}
	}
}

// Registry returns the server state registry (for stats and tests).
func (p *Proxy) Registry() *balancer.Registry { return p.registry }

// SetWeight is the runtime API's "set weight BACKEND/SERVER WEIGHT[%]" on
// the live configuration: an absolute weight from 0 to 256, or with
// relative set a percentage of the configured weight. The weight is kept
// with the server's state, so it survives reloads that leave the server's
// configured weight unchanged.
func (p *Proxy) SetWeight(backend, server string, value int, relative bool) error {
	s := p.current.Load()
	if s == nil {
		return fmt.Errorf("no configuration is loaded")
	}
	be := s.backendsByName[backend]
	if be == nil {
		return fmt.Errorf("no such backend %q", backend)
	}
	return be.pool.SetWeight(server, value, relative)
}

// LastCheck returns the last health-check result of backend/server in the
// live configuration, for the stats socket; false when the server has no
// check or has not been checked yet.
func (p *Proxy) LastCheck(backend, server string) (health.Checked, bool) {
	s := p.current.Load()
	if s == nil || s.backendsByName[backend] == nil {
		return health.Checked{}, false
	}
	for _, srv := range s.backendsByName[backend].servers {
		if srv.cfg.Name == server {
			if m := srv.checks.monitor.Load(); m != nil {
				return m.Last()
			}
		}
	}
	return health.Checked{}, false
}

// Snapshot returns the configuration being served, or nil before Apply.
func (p *Proxy) Snapshot() *Snapshot { return p.current.Load() }

// FrontendCounters returns the counters of the named frontend in the live
// configuration, or nil. It reads the live snapshot, so it never waits on
// a reload.
func (p *Proxy) FrontendCounters(name string) *balancer.Counters {
	if s := p.current.Load(); s != nil {
		if fe := s.frontendsByName[name]; fe != nil {
			return &fe.state.Counters
		}
	}
	return nil
}

// BackendCounters returns the counters of the named backend in the live
// configuration, or nil, without waiting on a reload.
func (p *Proxy) BackendCounters(name string) *balancer.Counters {
	if s := p.current.Load(); s != nil {
		if be := s.backendsByName[name]; be != nil {
			return be.counters
		}
	}
	return nil
}

// Addrs returns the bound address of every listener of the named frontend,
// in bind order; a test binding port 0 learns its port here.
func (p *Proxy) Addrs(frontend string) []net.Addr {
	s := p.current.Load()
	if s == nil {
		return nil
	}
	fe := s.frontendsByName[frontend]
	if fe == nil {
		return nil
	}
	addrs := make([]net.Addr, len(fe.listeners))
	for i, l := range fe.listeners {
		addrs[i] = l.ln.Addr()
	}
	return addrs
}

// stopAccepting is where Shutdown and Handover begin: the process-wide
// machinery stops, every listener is closed by closeL, the generations
// in mode http start answering "Connection: close" when retire says so,
// and it returns the health checks for the caller to stop outside p.mu.
func (p *Proxy) stopAccepting(closeL func(*listener), retire bool) []*serverChecks {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.stopping.Swap(true) {
		close(p.stopSweep)
		p.tables.Close()
		p.tickets.Stop()
	}
	for key, l := range p.listeners {
		closeL(l)
		delete(p.listeners, key)
	}
	p.listenerCount.Store(0)
	checks := make([]*serverChecks, 0, len(p.checks.entries))
	for _, c := range p.checks.entries {
		checks = append(checks, c)
	}
	if retire {
		for _, fs := range p.frontends.entries {
			if h := fs.http.Load(); h != nil {
				h.retiring.Store(true)
			}
		}
	}
	return checks
}

// Shutdown stops accepting, lets in-flight connections and requests finish,
// and returns when they have or when ctx is done (with ctx's error); the
// caller then exits, which closes whatever is left, as HAProxy's
// hard-stop-after does.
func (p *Proxy) Shutdown(ctx context.Context) error {
	// For good: a copy of a descriptor (tableflip's, after an upgrade
	// or a failed one) would keep the socket listening, its backlog
	// unserved, while this drains.
	checks := p.stopAccepting((*listener).closeForGood, false)
	for _, c := range checks {
		c.stop()
	}
	// Parked connections are idle ones: they close now, as fasthttp's
	// shutdown below closes those idle in it.
	p.parking.shutdown()
	done := make(chan struct{})
	go func() {
		p.acceptLoops.Wait() // stopped above: no more conns.Add
		p.conns.Wait()
		close(done)
	}()
	var httpServers sync.WaitGroup
	p.httpMu.Lock()
	for srv := range p.httpServers {
		httpServers.Add(1)
		go func() {
			defer httpServers.Done()
			_ = srv.shutdown(ctx)
		}()
	}
	p.httpMu.Unlock()
	select {
	case <-done:
		httpServers.Wait()
		if s := p.current.Load(); s != nil {
			s.closeServerConns()
		}
		deadline, ok := ctx.Deadline()
		if !ok {
			deadline = time.Now().Add(time.Second)
		}
		p.workers.close(deadline)
		return nil
	case <-ctx.Done():
		p.workers.close(time.Now()) // the idle ones now, the busy ones as they finish
		return fmt.Errorf("connections still open at hard-stop-after: %w", ctx.Err())
	}
}
