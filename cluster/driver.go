package cluster

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"go.uber.org/zap"

	"github.com/halo-lb/halo/config"
)

// This file is the driver's set-up and loop: it owns the raft node, the
// ping links and the machine, feeds the machine ticks and events, and hands
// its actions to act (driver_actions.go).

// Tick is the machine's unit of time.
const Tick = 50 * time.Millisecond

// LocalHealth is what the cluster asks of the proxy: may this node hold addr?
type LocalHealth interface {
	VIPHealthy(addr netip.Addr, require config.VIPRequire) bool
}

// Cluster is a running cluster node.
type Cluster struct {
	cfg    *config.Cluster
	log    *zap.Logger
	health LocalHealth

	start  time.Time
	m      *Machine
	events chan Event
	stop   chan struct{}
	done   chan struct{}

	control net.Listener
	raft    *raft.Raft
	fsm     *fsm
	store   *raftboltdb.BoltStore
	mux     *mux
	links   map[string]*link
	peers   map[string]bool
	vips    map[string]config.VIP
	hw      hardware
	metrics *metrics

	statusMu sync.Mutex
	status   Status
	history  []FenceRecord

	verifying bool
	grants    []SendGrant
	crashed   bool // tests: stop as if killed, releasing nothing
	// local: events the loop gives itself (our own ping and grant),
	// handled after the current ones; never through events, which the
	// loop itself drains.
	local []Event
}

// ticks converts a duration to ticks, at least one.
func ticks(d time.Duration) int64 {
	t := int64(d / Tick)
	if t < 1 {
		t = 1
	}
	return t
}

// Start joins the cluster described by cfg: it clears the VIPs a previous
// process may have left in the kernel, opens the raft log in the data
// directory (bootstrapping the voters on first start), and starts the loop.
func Start(cfg *config.Cluster, health LocalHealth, log *zap.Logger) (*Cluster, error) {
	return start(cfg, health, log, newSystem(cfg, log.Named("cluster")))
}

func start(cfg *config.Cluster, health LocalHealth, log *zap.Logger, hw hardware) (*Cluster, error) {
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("cluster data-dir: %w", err)
	}
	c := &Cluster{
		cfg: cfg, log: log.Named("cluster"), health: health,
		events: make(chan Event, 1024), stop: make(chan struct{}), done: make(chan struct{}),
		links: map[string]*link{}, peers: map[string]bool{}, vips: map[string]config.VIP{},
		metrics: newMetrics(cfg.Lease),
	}
	c.hw = hw
	for _, v := range cfg.VIPs {
		c.vips[v.Prefix.String()] = v
	}
	// A previous process (killed, or the machine rebooted) may have left
	// addresses behind: nothing is held before the table says so.
	c.hw.clearAll()

	p := Params{
		Self: cfg.Node, Witness: map[string]bool{},
		Lease: ticks(cfg.Lease), Ping: max(ticks(cfg.Lease)/4, 1),
		ARPCount: cfg.ARP.Count, ARPInterval: ticks(cfg.ARP.Interval),
		FenceBackoff: ticks(time.Second), FenceBackoffMax: ticks(30 * time.Second),
	}
	if cfg.ARP.Refresh > 0 {
		p.ARPRefresh = ticks(cfg.ARP.Refresh)
	}
	if cfg.Watchdog != nil {
		p.Watchdog = ticks(cfg.Watchdog.Timeout)
	}
	for _, peer := range cfg.Peers {
		p.Peers = append(p.Peers, peer.Name)
		c.peers[peer.Name] = true
		if peer.Witness {
			p.Witness[peer.Name] = true
		}
	}
	for _, v := range cfg.VIPs {
		p.VIPs = append(p.VIPs, VIPParams{Name: v.Prefix.String(), Prefer: v.Prefer})
	}

	store, err := raftboltdb.NewBoltStore(filepath.Join(cfg.DataDir, "raft.db"))
	if err != nil {
		return nil, fmt.Errorf("cluster raft log in %s: %w", cfg.DataDir, err)
	}
	c.store = store
	last, err := store.LastIndex()
	if err != nil {
		store.Close()
		return nil, fmt.Errorf("cluster raft log: %w", err)
	}
	p.StartIndex = last
	c.m = NewMachine(p)
	if err := c.startRaft(); err != nil {
		store.Close()
		return nil, err
	}
	if err := c.serveControl(); err != nil {
		_ = c.raft.Shutdown().Error()
		store.Close()
		return nil, err
	}
	c.start = time.Now()
	go c.loop()
	c.log.Info("cluster node started", zap.String("node", cfg.Node), zap.String("bind", cfg.Bind),
		zap.Int("voters", len(cfg.Peers)), zap.Uint64("start_index", last))
	return c, nil
}

func (c *Cluster) startRaft() error {
	cfg := c.cfg
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.Node)
	// Failure detection is the lease's job; raft's timeouts are set so an
	// election (a follower notices within 1-2 heartbeat timeouts, then a
	// pre-vote and a vote round) finishes well inside one lease, and a
	// holder keeps its lease while the leader that granted it is replaced.
	rc.HeartbeatTimeout = max(cfg.Lease/8, 50*time.Millisecond)
	rc.ElectionTimeout = rc.HeartbeatTimeout
	rc.LeaderLeaseTimeout = rc.HeartbeatTimeout / 2
	rc.CommitTimeout = 20 * time.Millisecond
	rc.SnapshotThreshold = 1024
	rc.Logger = hclog.New(&hclog.LoggerOptions{Name: "raft", Level: hclog.Warn, Output: zapWriter{c.log.Named("raft")}})

	snaps, err := raft.NewFileSnapshotStoreWithLogger(cfg.DataDir, 2, rc.Logger)
	if err != nil {
		return fmt.Errorf("cluster snapshots in %s: %w", cfg.DataDir, err)
	}
	ln, err := net.Listen("tcp", cfg.Bind)
	if err != nil {
		return fmt.Errorf("cluster bind %s: %w", cfg.Bind, err)
	}
	self := map[string]bool{}
	for n := range c.peers {
		self[n] = true
	}
	c.mux = newMux(ln, func(conn net.Conn) { readWires(conn, self, c.fromWire) })
	trans := raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream: raftLayer{c.mux}, MaxPool: 3, Timeout: cfg.Lease, Logger: rc.Logger,
	})
	c.fsm = &fsm{table: NewTable(), post: c.post}
	r, err := raft.NewRaft(rc, c.fsm, c.store, c.store, snaps, trans)
	if err != nil {
		ln.Close()
		return fmt.Errorf("cluster raft: %w", err)
	}
	c.raft = r
	has, err := raft.HasExistingState(c.store, c.store, snaps)
	if err != nil {
		return fmt.Errorf("cluster raft state: %w", err)
	}
	if !has {
		var servers []raft.Server
		for _, p := range cfg.Peers {
			servers = append(servers, raft.Server{ID: raft.ServerID(p.Name), Address: raft.ServerAddress(p.Address)})
		}
		// Every voter bootstraps the same configuration, which raft allows.
		if err := r.BootstrapCluster(raft.Configuration{Servers: servers}).Error(); err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
			return fmt.Errorf("cluster bootstrap: %w", err)
		}
	}
	for _, p := range cfg.Peers {
		if p.Name != cfg.Node {
			c.links[p.Name] = newLink(p.Address, cfg.Lease/2)
		}
	}
	go c.watchLeadership()
	return nil
}

// zapWriter takes raft's log lines into halo's log.
type zapWriter struct{ l *zap.Logger }

func (w zapWriter) Write(b []byte) (int, error) {
	w.l.Warn(strings.TrimSpace(string(b)))
	return len(b), nil
}

func (c *Cluster) watchLeadership() {
	gen := 0
	for {
		select {
		case <-c.stop:
			return
		case leader := <-c.raft.LeaderCh():
			gen++
			c.post(Leadership{Leader: leader})
			if leader {
				go c.barrier(gen)
			}
		}
	}
}

// barrier tells the machine it may act as leader once raft applied every
// entry committed before this leadership.
func (c *Cluster) barrier(gen int) {
	for {
		err := c.raft.Barrier(c.cfg.Lease).Error()
		if c.raft.State() != raft.Leader {
			return
		}
		if err == nil {
			c.post(Leadership{Leader: true, Ready: true})
			return
		}
		select {
		case <-c.stop:
			return
		case <-time.After(Tick):
		}
	}
}

func (c *Cluster) fromWire(w wire) {
	var ev Event
	switch w.Kind {
	case "ping":
		st := PeerStatus{}
		if w.Status != nil {
			st = *w.Status
		}
		ev = PingIn{From: w.From, Seq: w.Seq, Status: st}
	case "grant":
		ev = GrantIn{From: w.From, Seq: w.Seq, Index: w.Index}
	default:
		return
	}
	c.post(ev)
}

// post hands the loop an event from another goroutine; after Stop it is
// dropped rather than left blocking.
func (c *Cluster) post(ev Event) {
	select {
	case c.events <- ev:
	case <-c.stop:
	}
}

func (c *Cluster) now() int64 { return int64(time.Since(c.start) / Tick) }

func (c *Cluster) loop() {
	defer close(c.done)
	t := time.NewTicker(Tick)
	defer t.Stop()
	healthy := map[string]bool{}
	for name, v := range c.vips {
		healthy[name] = c.health.VIPHealthy(v.Prefix.Addr(), v.Require)
		c.act(c.m.Step(Health{VIP: name, Healthy: healthy[name]}))
	}
	for {
		select {
		case <-c.stop:
			c.shutdown()
			return
		case ev := <-c.events:
			if v, ok := ev.(verified); ok {
				c.sendGrants(v)
			} else {
				c.act(c.m.Step(ev))
			}
		case <-t.C:
			for name, v := range c.vips {
				h := c.health.VIPHealthy(v.Prefix.Addr(), v.Require)
				if h != healthy[name] {
					healthy[name] = h
					c.act(c.m.Step(Health{VIP: name, Healthy: h}))
				}
			}
			c.act(c.m.Tick(c.now()))
			c.publish()
		}
		for len(c.local) > 0 {
			ev := c.local[0]
			c.local = c.local[1:]
			c.act(c.m.Step(ev))
		}
	}
}

// shutdown removes what this node holds, tells the others it released it,
// and leaves raft. A clean stop never needs a fence.
func (c *Cluster) shutdown() {
	if !c.crashed {
		c.act(c.m.Leave())
		time.Sleep(2 * Tick) // let the ping saying so leave
		if c.raft.State() == raft.Leader {
			// Hand leadership over rather than make the others wait an
			// election timeout to act on the release.
			_ = c.raft.LeadershipTransfer().Error()
		}
	}
	c.hw.close()
	if c.control != nil {
		c.control.Close()
		_ = os.Remove(ControlSocket(c.cfg.DataDir))
	}
	for _, l := range c.links {
		l.close()
	}
	_ = c.raft.Shutdown().Error()
	c.store.Close()
	_ = c.mux.close()
}

// Stop leaves the cluster cleanly.
func (c *Cluster) Stop() {
	select {
	case <-c.stop:
	default:
		close(c.stop)
	}
	<-c.done
}
