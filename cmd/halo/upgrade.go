package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cloudflare/tableflip"
	"github.com/halo-lb/halo/cluster"
	"github.com/halo-lb/halo/config"
	"github.com/halo-lb/halo/handover"
	"github.com/halo-lb/halo/proxy"
	"github.com/halo-lb/halo/serverstate"
	"github.com/halo-lb/halo/stats"
	"go.uber.org/zap"
)

// Binary upgrades (SIGUSR2, or "upgrade" on the runtime API): the running
// halo starts the binary at the path it was started from as a new process
// (tableflip), which inherits every listening socket, the runtime API's
// included, and a pipe of handover messages. Once the new one is ready the
// old one stops answering, hands over its counters, leaves the cluster,
// drains within hard-stop-after and exits 0. docs/operations.md says what
// an operator sees.

// handoverFile is the name the handover pipe passes under.
const handoverFile = "halo-handover"

// upgrades is a running halo's side of binary upgrades.
type upgrades struct {
	upg *tableflip.Upgrader
	log *zap.Logger
	// exe is the binary a new process runs: the path this one was
	// started from, resolved when it started.
	exe string
	// path is the configuration file, checked before a new process is
	// started.
	path string
	// requests are "upgrade" commands of the runtime API, for the main
	// loop; busy refuses one while another runs.
	requests chan chan string
	busy     atomic.Bool
	// parent is the pid of the process this one replaced while it
	// drains, 0 once it has exited (or there was none).
	parent atomic.Int64
	// w is the handover pipe of the upgrade that succeeded.
	w *handover.Writer
	f *os.File
}

// newUpgrades sets up tableflip; nil (and a log line) where it cannot be,
// and then halo runs without upgrades. It must run before anything reads
// os.Args[0], which it makes the binary's absolute path: tableflip starts
// that.
func newUpgrades(path string, log *zap.Logger) *upgrades {
	exe, err := binaryPath()
	if err != nil {
		log.Warn("binary upgrades are off: cannot tell which binary runs", zap.Error(err))
		return nil
	}
	upg, err := tableflip.New(tableflip.Options{})
	if err != nil {
		log.Warn("binary upgrades are off", zap.Error(err))
		return nil
	}
	os.Args[0] = exe
	u := &upgrades{upg: upg, log: log.Named("upgrade"), exe: exe, path: path, requests: make(chan chan string)}
	if upg.HasParent() {
		u.parent.Store(int64(os.Getppid()))
		go func() {
			err := upg.WaitForParent(context.Background())
			u.log.Info("the previous process has exited", zap.Int64("pid", u.parent.Load()), zap.Error(err))
			u.parent.Store(0)
		}()
	}
	return u
}

// binaryPath is the path halo was started from, absolute: a package
// upgrade renames a new binary into that path, so starting it runs the
// new one (the running process's own file is then "(deleted)"). A path
// without "/" was found on PATH.
func binaryPath() (string, error) {
	arg := os.Args[0]
	if !strings.Contains(arg, "/") {
		found, err := exec.LookPath(arg)
		if err != nil {
			return os.Executable()
		}
		arg = found
	}
	return filepath.Abs(arg)
}

// inherit has the proxy and the runtime API take the sockets the previous
// process passed on, if any.
func (u *upgrades) inherit(p *proxy.Proxy, st *stats.Stats) {
	p.Inherit(func(name string) (*net.TCPListener, error) {
		ln, err := u.upg.Fds.Listener("tcp", name)
		if ln == nil || err != nil {
			return nil, err
		}
		tl, ok := ln.(*net.TCPListener)
		if !ok {
			ln.Close()
			return nil, fmt.Errorf("socket %s is not TCP", name)
		}
		return tl, nil
	})
	st.Inherit(func(path string) (*net.UnixListener, error) {
		ln, err := u.upg.Fds.Listener("unix", path)
		if ln == nil || err != nil {
			return nil, err
		}
		ul, ok := ln.(*net.UnixListener)
		if !ok {
			ln.Close()
			return nil, fmt.Errorf("socket %s is not a UNIX socket", path)
		}
		return ul, nil
	})
}

// listen is net.Listen for a socket of halo's own beside the proxy's (the
// pprof address), passed on across upgrades like the others.
func (u *upgrades) listen(addr string) (net.Listener, error) {
	if u == nil {
		return net.Listen("tcp", addr)
	}
	return u.upg.Fds.Listen("tcp", addr)
}

// takeOver reads what the previous process left, when there is one: the
// first handover message, and the reader of the ones that follow. nil
// when this process replaced none.
func (u *upgrades) takeOver(st *stats.Stats) (*proxy.Carried, *handover.Reader, *handover.Message) {
	if u == nil || !u.upg.HasParent() {
		return nil, nil, nil
	}
	f, err := u.upg.Fds.File(handoverFile)
	if err != nil || f == nil {
		u.log.Warn("the previous process passed no handover: starting without its state and counters", zap.Error(err))
		return nil, nil, nil
	}
	r := handover.NewReader(f)
	m, err := r.Next()
	if err != nil || m.Kind != handover.KindState {
		u.log.Warn("no state from the previous process: starting without its state and counters", zap.Error(err), zap.String("kind", m.Kind))
		return nil, nil, nil
	}
	c := &proxy.Carried{Totals: m.Totals, Servers: map[[2]string]serverstate.Line{}}
	sf, errs := serverstate.Parse(strings.NewReader(m.ServersState), "the previous process's server state")
	for _, err := range errs {
		u.log.Error("server state of the previous process: line not loaded", zap.String("error", err.Error()))
	}
	if sf != nil {
		c.Servers = sf.Global()
	}
	if m.IDs != nil {
		st.SetIDs(*m.IDs)
	}
	u.log.Info("taking over from the previous process", zap.Int("pid", m.PID), zap.String("its_version", m.Release),
		zap.Int("servers", len(c.Servers)))
	return c, r, &m
}

// Upgrade is the runtime API's "upgrade": it asks the main loop and
// waits for the outcome.
func (u *upgrades) Upgrade() string {
	if u.busy.Load() {
		return "Upgrade refused: an upgrade is already under way.\n"
	}
	answer := make(chan string, 1)
	u.requests <- answer
	return <-answer
}

// start runs one upgrade attempt: it checks the configuration and the
// binary, writes the server state file, passes every socket and the
// handover pipe to a new process of the binary and waits until it is
// ready or has failed. ok means it is ready: the caller hands over and
// exits. The answer is for the operator either way.
func (u *upgrades) start(p *proxy.Proxy, st *stats.Stats, cl *clusterNode) (answer string, ok bool) {
	if !u.busy.CompareAndSwap(false, true) {
		return "Upgrade refused: an upgrade is already under way.\n", false
	}
	defer func() {
		if !ok {
			u.busy.Store(false)
		}
	}()
	if pid := u.parent.Load(); pid != 0 {
		return fmt.Sprintf("Upgrade refused: the previous process (pid %d) is still draining its connections; try again once it has exited.\n", pid), false
	}
	began := time.Now()
	cfg, err := config.Load(u.path)
	if err != nil {
		for _, e := range config.Errors(err) {
			u.log.Error("upgrade refused: invalid configuration; still serving", zap.String("error", e.Error()))
		}
		return fmt.Sprintf("Upgrade refused: the configuration does not load; this process keeps serving.\n%v\n", err), false
	}
	if fi, err := os.Stat(u.exe); err != nil || fi.Mode()&0o111 == 0 {
		return fmt.Sprintf("Upgrade refused: no executable binary at %s (%v); this process keeps serving.\n", u.exe, err), false
	}
	live := p.Snapshot().Config()
	writeServerState(live, st, u.log)
	rd, wr, err := os.Pipe()
	if err != nil {
		return fmt.Sprintf("Upgrade failed: %v; this process keeps serving.\n", err), false
	}
	err = u.upg.Fds.AddFile(handoverFile, rd)
	rd.Close() // the Fds hold their own copy
	for _, l := range p.PassListeners() {
		err = errors.Join(err, u.upg.Fds.AddListener("tcp", l.Name, l.Listener))
	}
	for _, s := range st.PassSockets() {
		err = errors.Join(err, u.upg.Fds.AddListener("unix", s.Path, s.Listener))
	}
	if err != nil {
		wr.Close()
		return fmt.Sprintf("Upgrade failed: passing the sockets: %v; this process keeps serving.\n", err), false
	}
	w := handover.NewWriter(wr)
	ids := st.IDs()
	state := handover.Message{Kind: handover.KindState, PID: os.Getpid(), Release: version,
		ServersState: string(st.ServersState("")), IDs: &ids, Totals: p.Totals(), Cluster: cl.running()}
	sent := make(chan error, 1)
	go func() { sent <- w.Send(state) }() // the new process reads it as it starts
	u.log.Info("upgrade: starting a new process", zap.String("binary", u.exe), zap.String("config", cfg.File))
	if err := u.upg.Upgrade(); err != nil {
		wr.Close() // ends the send if the new process never read it
		<-sent
		u.log.Error("upgrade failed; this process keeps serving", zap.Error(err))
		return fmt.Sprintf("Upgrade failed: %v; this process keeps serving (the new process's own log says why it stopped).\n", err), false
	}
	if err := <-sent; err != nil {
		u.log.Warn("upgrade: the state did not reach the new process", zap.Error(err))
	}
	u.w, u.f = w, wr
	u.log.Info("upgrade: the new process is ready", zap.Duration("took", time.Since(began)))
	return fmt.Sprintf("Upgraded: a new process of %s serves; this one (pid %d) hands over and exits within hard-stop-after (%v).\n",
		u.exe, os.Getpid(), live.Global.HardStopAfter), true
}

// handOver is the old process's end after a successful start: it stops
// answering on the runtime API and sends its counters, leaves the
// cluster, drains its connections within hard-stop-after, sends its last
// counters and returns the exit code.
func (u *upgrades) handOver(p *proxy.Proxy, st *stats.Stats, cl *clusterNode, began time.Time) int {
	send := func(m handover.Message) {
		if err := u.w.Send(m); err != nil {
			u.log.Warn("upgrade: the new process did not take a message", zap.String("kind", m.Kind), zap.Error(err))
		}
	}
	st.HandOver(5 * time.Second)
	send(handover.Message{Kind: handover.KindCounters, PID: os.Getpid(), Totals: p.Totals()})
	if cl.stop() {
		u.log.Info("upgrade: left the cluster; the new process's node takes over")
		send(handover.Message{Kind: handover.KindClusterLeft, PID: os.Getpid()})
	}
	hardStop := p.Snapshot().Config().Global.HardStopAfter
	ctx, cancel := context.WithTimeout(context.Background(), hardStop)
	err := p.Handover(ctx)
	cancel()
	send(handover.Message{Kind: handover.KindFinal, PID: os.Getpid(), Totals: p.Totals()})
	u.f.Close()
	if err != nil {
		u.log.Warn("upgrade: hard stop", zap.Error(err))
	}
	u.log.Info("upgrade: handed over; exiting", zap.Duration("since_the_upgrade_began", time.Since(began)))
	return 0
}

// follow is the new process's side of the handover, until the old process
// exits (handover.Follow).
func (u *upgrades) follow(r *handover.Reader, base *proxy.Totals, p *proxy.Proxy, st *stats.Stats, cl *clusterNode) {
	handover.Follow(r, base, follower{p: p, st: st, cl: cl, log: u.log}, 10*time.Second)
}

type follower struct {
	p   *proxy.Proxy
	st  *stats.Stats
	cl  *clusterNode
	log *zap.Logger
}

func (f follower) AddTotals(t *proxy.Totals)       { f.p.AddTotals(t) }
func (f follower) StatsReady()                     { f.st.Release() }
func (f follower) ClusterFree()                    { f.cl.startNow() }
func (f follower) Logf(format string, args ...any) { f.log.Info(fmt.Sprintf(format, args...)) }

// clusterNode is the cluster node of a process, started at once or, when
// it replaced a process that ran one, once that one's node has left:
// never two processes acting as the node (the raft store is a file one
// process opens).
type clusterNode struct {
	mu      sync.Mutex
	cfg     *config.Cluster
	p       *proxy.Proxy
	st      *stats.Stats
	log     *zap.Logger
	c       *cluster.Cluster
	pending bool
	stopped bool
	// start is cluster.Start (a variable for tests).
	start func(*config.Cluster, cluster.LocalHealth, *zap.Logger) (*cluster.Cluster, error)
}

func newClusterNode(cfg *config.Cluster, p *proxy.Proxy, st *stats.Stats, log *zap.Logger) *clusterNode {
	return &clusterNode{cfg: cfg, p: p, st: st, log: log, start: cluster.Start}
}

// startNow starts the node, if there is one to start and it has not
// started (or the process is stopping).
func (n *clusterNode) startNow() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.pending = false
	if n.cfg == nil || n.c != nil || n.stopped {
		return nil
	}
	c, err := n.start(n.cfg, n.p, n.log)
	if err != nil {
		n.log.Error("cannot start the cluster node", zap.Error(err))
		return err
	}
	n.c = c
	n.st.SetCluster(c)
	return nil
}

// later marks the node to be started by startNow from the handover.
func (n *clusterNode) later() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.pending = n.cfg != nil
}

// running reports whether this process runs (or will run) a node.
func (n *clusterNode) running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.c != nil || n.pending
}

// stop leaves the cluster (the VIPs released, the store closed) and
// reports whether there was a node; none starts after it.
func (n *clusterNode) stop() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.stopped = true
	if n.c == nil {
		return false
	}
	n.c.Stop()
	n.c = nil
	return true
}
