package cluster

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/halo-lb/halo/config"
	"github.com/halo-lb/halo/internal/testnet"
)

// The driver with real raft and real ping links on 127.0.0.1, and the
// hardware replaced by a shared fake world: which node's "kernel" has the
// VIP, and a fence that cuts a node off by stopping its process. The
// namespace test (cluster/nstest) runs the real hardware.

type fakeWorld struct {
	mu      sync.Mutex
	kernel  map[string]bool // node → has the VIP
	fenced  map[string]bool
	failing bool
	nodes   map[string]*Cluster
	dual    int
}

type fakeHW struct {
	w    *fakeWorld
	node string
}

func (h fakeHW) clearAll()       { h.set(false) }
func (h fakeHW) add(string)      { h.set(true) }
func (h fakeHW) remove(string)   { h.set(false) }
func (h fakeHW) announce(string) {}
func (h fakeHW) pet()            {}
func (h fakeHW) close()          {}

func (h fakeHW) set(on bool) {
	h.w.mu.Lock()
	defer h.w.mu.Unlock()
	h.w.kernel[h.node] = on
	n := 0
	for node, has := range h.w.kernel {
		if has && !h.w.fenced[node] {
			n++
		}
	}
	if n > 1 {
		h.w.dual++
	}
}

func (h fakeHW) fence(_ context.Context, node string) (string, error) {
	h.w.mu.Lock()
	defer h.w.mu.Unlock()
	if h.w.failing {
		return "", errors.New("agent exited 1")
	}
	h.w.fenced[node] = true // its "link" is down: it answers nobody
	return "off", nil
}

func (h fakeHW) unfence(_ context.Context, node string) (string, error) {
	h.w.mu.Lock()
	defer h.w.mu.Unlock()
	h.w.fenced[node] = false
	return "on", nil
}

// crash stops c as kill -9 would: nothing released, nothing said.
func crash(c *Cluster) {
	c.crashed = true
	c.Stop()
}

type alwaysHealthy struct{}

func (alwaysHealthy) VIPHealthy(netip.Addr, config.VIPRequire) bool { return true }

func testCluster(t *testing.T, lease time.Duration) (*fakeWorld, []*config.Cluster) {
	w := &fakeWorld{kernel: map[string]bool{}, fenced: map[string]bool{}, nodes: map[string]*Cluster{}}
	names := []string{"ctl1", "ctl2", "ctl3"}
	var peers []config.Peer
	for _, n := range names {
		peers = append(peers, config.Peer{Name: n, Address: testnet.FreeAddr(t)})
	}
	var cfgs []*config.Cluster
	for i, n := range names {
		cfgs = append(cfgs, &config.Cluster{
			Node: n, Bind: peers[i].Address, DataDir: t.TempDir(), Peers: peers, Lease: lease,
			VIPs:    []config.VIP{{Prefix: netip.MustParsePrefix("10.99.0.100/24"), Interface: "eth0", Prefer: "ctl1", Require: config.RequireListening}},
			ARP:     config.ARP{Count: 5, Interval: 200 * time.Millisecond, Refresh: 10 * time.Second},
			Fencing: config.Fencing{Timeout: 5 * time.Second, Action: "off"},
		})
	}
	return w, cfgs
}

func (w *fakeWorld) start(t *testing.T, cfg *config.Cluster) *Cluster {
	t.Helper()
	log := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	c, err := start(cfg, alwaysHealthy{}, log, fakeHW{w: w, node: cfg.Node})
	if err != nil {
		t.Fatal(err)
	}
	w.mu.Lock()
	w.nodes[cfg.Node] = c
	w.mu.Unlock()
	return c
}

// holder waits for exactly one unfenced node to have the VIP.
func (w *fakeWorld) holder(t *testing.T, not string, within time.Duration) (string, time.Duration) {
	t.Helper()
	start := time.Now()
	for time.Since(start) < within {
		w.mu.Lock()
		got := ""
		for n, has := range w.kernel {
			if has && !w.fenced[n] && n != not {
				got = n
			}
		}
		w.mu.Unlock()
		if got != "" {
			return got, time.Since(start)
		}
		time.Sleep(10 * time.Millisecond)
	}
	var b strings.Builder
	for _, c := range w.nodes {
		b.WriteString(c.Status().Text())
	}
	t.Fatalf("no holder other than %q after %s\n%s", not, within, b.String())
	return "", 0
}

func TestDriverFailsOverAfterFencing(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a three-node raft cluster for several seconds")
	}
	w, cfgs := testCluster(t, time.Second)
	for _, cfg := range cfgs {
		w.start(t, cfg)
	}
	first, took := w.holder(t, "", 10*time.Second)
	t.Logf("%s holds the VIP %s after start", first, took)
	if first != "ctl1" {
		t.Errorf("the VIP went to %s, not to ctl1 (prefer)", first)
	}
	// The holder stops answering: its process is gone but its kernel (the
	// fake's) keeps the address, as after kill -9. Only a fence may move it.
	crash(w.nodes[first])
	w.mu.Lock()
	w.kernel[first] = true
	w.mu.Unlock()
	next, took := w.holder(t, first, 10*time.Second)
	t.Logf("%s holds the VIP %s after %s stopped answering", next, took, first)
	w.mu.Lock()
	fenced, dual := w.fenced[first], w.dual
	w.mu.Unlock()
	if !fenced {
		t.Fatalf("%s took over without %s being fenced", next, first)
	}
	if dual != 0 {
		t.Fatalf("%d moments with two holders", dual)
	}
	// The status is published at the end of the step that acted: poll
	// for it briefly rather than race the loop.
	st := w.nodes[next].Status()
	for wait := time.Now().Add(2 * time.Second); !strings.Contains(st.Text(), "FENCED") && time.Now().Before(wait); st = w.nodes[next].Status() {
		time.Sleep(10 * time.Millisecond)
	}
	if !strings.Contains(st.Text(), "FENCED") {
		t.Errorf("status does not show the fenced node:\n%s", st.Text())
	}
	// Repair: the fenced node's halo starts again on its old data-dir. It
	// holds nothing while fenced; an operator unfences it from another node.
	var cfgFirst *config.Cluster
	for _, cfg := range cfgs {
		if cfg.Node == first {
			cfgFirst = cfg
		}
	}
	back := w.start(t, cfgFirst)
	if out := w.nodes[next].Command([]string{"unfence", first}); strings.HasPrefix(out, "error") {
		t.Fatal(out)
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if st := back.Status(); len(st.Members) > 0 && !strings.Contains(st.Text(), "FENCED") && st.Quorum {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if text := back.Status().Text(); strings.Contains(text, "FENCED") || !back.Status().Quorum {
		t.Fatalf("%s is not back after unfence:\n%s\nleader:\n%s", first, text, w.nodes[next].Status().Text())
	}
	if h, _ := w.holder(t, "", time.Second); h != next {
		t.Errorf("the VIP moved to %s when %s came back (no failback expected)", h, first)
	}
	for _, c := range w.nodes {
		c.Stop()
	}
}

func TestDriverCleanStopMovesWithoutFencing(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a three-node raft cluster for several seconds")
	}
	w, cfgs := testCluster(t, 2*time.Second)
	for _, cfg := range cfgs {
		w.start(t, cfg)
	}
	first, _ := w.holder(t, "", 10*time.Second)
	start := time.Now()
	w.nodes[first].Stop()
	next, _ := w.holder(t, first, 10*time.Second)
	took := time.Since(start)
	w.mu.Lock()
	fenced := w.fenced[first]
	w.mu.Unlock()
	if fenced {
		t.Fatalf("%s was fenced although it stopped cleanly", first)
	}
	if took > 2*time.Second {
		t.Errorf("a clean stop took %s to move the VIP: it should not wait for the lease (2s)", took)
	}
	t.Logf("%s stopped cleanly; %s holds the VIP %s later, no fencing", first, next, took)
	for n, c := range w.nodes {
		if n != first {
			c.Stop()
		}
	}
}

func TestDriverKeepsTheVIPDownWhenFencingFails(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a three-node raft cluster for several seconds")
	}
	w, cfgs := testCluster(t, time.Second)
	for _, cfg := range cfgs {
		w.start(t, cfg)
	}
	first, _ := w.holder(t, "", 10*time.Second)
	w.mu.Lock()
	w.failing = true
	w.mu.Unlock()
	crash(w.nodes[first])
	w.mu.Lock()
	w.kernel[first] = true // paused, say: its kernel still answers
	w.mu.Unlock()
	time.Sleep(5 * time.Second)
	w.mu.Lock()
	holders := 0
	for n, has := range w.kernel {
		if has && n != first {
			holders++
		}
	}
	w.mu.Unlock()
	if holders != 0 {
		t.Fatal("the VIP moved although fencing failed")
	}
	var leader *Cluster
	for n, c := range w.nodes {
		if n != first && c.Status().IsLeader {
			leader = c
		}
	}
	if leader == nil {
		t.Fatal("no leader among the two left")
	}
	if text := leader.Status().Text(); !strings.Contains(text, "FAILED") {
		t.Errorf("the leader's status does not show the failed fencing:\n%s", text)
	}
	// The agent works again: the retry (with backoff) fences, the VIP moves.
	w.mu.Lock()
	w.failing = false
	w.mu.Unlock()
	next, took := w.holder(t, first, 20*time.Second)
	t.Logf("fencing works again: %s holds the VIP %s later", next, took)
	for n, c := range w.nodes {
		if n != first {
			c.Stop()
		}
	}
}

// TestMetricsDocumented: every cluster metric is listed in docs/cluster.md.
func TestMetricsDocumented(t *testing.T) {
	doc, err := os.ReadFile("../docs/cluster.md")
	if err != nil {
		t.Fatal(err)
	}
	m := newMetrics(time.Second)
	m.update(&Status{Node: "a", Members: []Member{{Name: "a"}}, VIPs: []VIPStatus{{Address: "10.0.0.1/24"}}})
	m.fenced(FenceRecord{Node: "b", Action: "off", OK: true})
	fams, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if len(fams) < 8 {
		t.Fatalf("only %d metric families", len(fams))
	}
	for _, f := range fams {
		if !strings.Contains(string(doc), "`"+f.GetName()) {
			t.Errorf("docs/cluster.md does not list %s", f.GetName())
		}
	}
}
