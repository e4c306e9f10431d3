package nstest

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/halo-lb/halo/internal/testnet"
)

// The topology: a switch namespace with a bridge br0, three node
// namespaces (eth0 = 10.99.0.1-3/24, whose peer p-ctlN is a port of the
// bridge) and a client namespace (10.99.0.200/24, port p-client). Every
// name starts with hn<PID>- so that runs never collide, everything is
// deleted by name (and every process in it killed by PID) when the test
// ends, and a run sweeps what a crashed run with a dead PID left behind.

const (
	vip       = "10.99.0.100"
	vipPrefix = vip + "/24"
	nsPrefix  = "hn"
	// backendAddr is where each node's backend listens, in its namespace.
	backendAddr = "127.0.0.1:8000"
)

// node is one controller: its namespace, its address and MAC on the
// bridge, and its halo process (halo_test.go).
type node struct {
	name    string // ctl1
	ns      string // hn<PID>-n1
	addr    string // 10.99.0.1
	port    string // its veth's peer on the bridge, in the switch namespace
	mac     net.HardwareAddr
	h       *netlink.Handle // netlink in ns
	dir     string          // the cluster's data-dir
	cfg     string          // halo's configuration file
	logPath string
	proc    *proc // the running halo, nil when none
	dog     *proc // its fake watchdog, in the watchdog scenario
}

// topo is the network of one test.
type topo struct {
	t      testing.TB
	prefix string // hn<PID>
	dir    string
	sw     string // the switch namespace
	swh    *netlink.Handle
	client string
	nodes  []*node
	closer []func()
	netem  bool            // the kernel has sch_netem
	sinks  map[string]bool // namespaces that have the hsink device
}

// newTopo builds the network, skipping (or failing under HALO_INTEGRATION)
// without root or ip. It is torn down when the test ends.
func newTopo(t testing.TB) *topo {
	t.Helper()
	testnet.NeedRoot(t, "the cluster's namespace test creates network namespaces")
	for _, tool := range []string{"ip", "tc", "arping"} {
		if _, err := exec.LookPath(tool); err != nil {
			testnet.SkipOrFail(t, tool+" is not installed (scripts/install-deps installs it)")
		}
	}
	sweepLeftovers(t)
	w := &topo{t: t, prefix: fmt.Sprintf("%s%d", nsPrefix, os.Getpid()), dir: t.TempDir()}
	w.sw, w.client = w.prefix+"-sw", w.prefix+"-c"
	// Names of this PID, left by an earlier test of this process that
	// failed halfway through its cleanup.
	for _, ns := range w.namespaces() {
		removeNamespace(ns)
	}
	t.Cleanup(w.teardown)
	w.ip("netns", "add", w.sw)
	w.ip("-n", w.sw, "link", "set", "lo", "up")
	w.ip("-n", w.sw, "link", "add", "br0", "type", "bridge")
	w.ip("-n", w.sw, "link", "set", "br0", "up")
	w.swh = w.handle(w.sw)
	w.netem = exec.Command("ip", "netns", "exec", w.sw, "tc", "qdisc", "add", "dev", "lo", "root", "netem", "loss", "0%").Run() == nil
	if w.netem {
		w.tc(w.sw, "qdisc", "del", "dev", "lo", "root")
	}
	w.attach(w.client, "p-client", "10.99.0.200")
	for i := 1; i <= 3; i++ {
		n := &node{name: fmt.Sprintf("ctl%d", i), ns: fmt.Sprintf("%s-n%d", w.prefix, i), addr: fmt.Sprintf("10.99.0.%d", i)}
		n.port = "p-" + n.name
		n.dir = filepath.Join(w.dir, n.name)
		n.logPath = filepath.Join(w.dir, n.name+".log")
		w.attach(n.ns, n.port, n.addr)
		n.h = w.handle(n.ns)
		l, err := n.h.LinkByName("eth0")
		if err != nil {
			t.Fatalf("eth0 in %s: %v", n.ns, err)
		}
		n.mac = l.Attrs().HardwareAddr
		w.nodes = append(w.nodes, n)
		w.serve(n, backendAddr)
	}
	return w
}

// namespaces are this topology's namespace names, whether they exist or not.
func (w *topo) namespaces() []string {
	out := []string{w.sw, w.client}
	for i := 1; i <= 3; i++ {
		out = append(out, fmt.Sprintf("%s-n%d", w.prefix, i))
	}
	return out
}

// attach makes namespace ns with lo up and an eth0 whose peer is port on
// the bridge.
func (w *topo) attach(ns, port, addr string) {
	w.ip("netns", "add", ns)
	w.ip("-n", ns, "link", "set", "lo", "up")
	w.ip("link", "add", "eth0", "netns", ns, "type", "veth", "peer", "name", port, "netns", w.sw)
	w.ip("-n", w.sw, "link", "set", port, "master", "br0")
	w.ip("-n", w.sw, "link", "set", port, "up")
	w.ip("-n", ns, "addr", "add", addr+"/24", "dev", "eth0")
	w.ip("-n", ns, "link", "set", "eth0", "up")
}

// ip runs ip(8) and fails the test if it fails.
func (w *topo) ip(args ...string) {
	w.t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		w.t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// tc runs tc(8) in namespace ns and fails the test if it fails.
func (w *topo) tc(ns string, args ...string) {
	w.t.Helper()
	args = append([]string{"netns", "exec", ns, "tc"}, args...)
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		w.t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// silentCut drops every frame through dev in namespace ns while its link
// stays up, and returns the undo. With netem (tc qdisc netem loss 100%)
// it drops what dev sends; where the kernel has no sch_netem (this
// project's machines: CONFIG_NET_SCH_NETEM is off) an ingress u32 filter
// redirects every frame dev receives to a veth that is down, which drops
// it. A partition cuts both ends of a node's cable, so both work: egress
// at eth0 and the bridge port, or ingress at both. The ground truth reads
// either back from the kernel (lossy).
func (w *topo) silentCut(ns, dev string) func() {
	w.t.Helper()
	if w.netem {
		w.tc(ns, "qdisc", "add", "dev", dev, "root", "netem", "loss", "100%")
		return func() { w.tc(ns, "qdisc", "del", "dev", dev, "root") }
	}
	if !w.sinks[ns] {
		w.ip("-n", ns, "link", "add", "hsink", "type", "veth", "peer", "name", "hsink-peer")
		if w.sinks == nil {
			w.sinks = map[string]bool{}
		}
		w.sinks[ns] = true
	}
	w.tc(ns, "qdisc", "add", "dev", dev, "ingress")
	w.tc(ns, "filter", "add", "dev", dev, "parent", "ffff:", "protocol", "all", "u32", "match", "u32", "0", "0",
		"action", "mirred", "egress", "redirect", "dev", "hsink")
	return func() { w.tc(ns, "qdisc", "del", "dev", dev, "ingress") }
}

// handle is a netlink handle in ns, closed at teardown.
func (w *topo) handle(ns string) *netlink.Handle {
	w.t.Helper()
	nsh, err := netns.GetFromName(ns)
	if err != nil {
		w.t.Fatalf("namespace %s: %v", ns, err)
	}
	defer nsh.Close()
	h, err := netlink.NewHandleAt(nsh)
	if err != nil {
		w.t.Fatalf("netlink in %s: %v", ns, err)
	}
	w.closer = append(w.closer, h.Close)
	return h
}

// serve runs an HTTP server in n's namespace on addr that answers every
// request with the node's name. The socket is opened in the namespace and
// served from the test process: nothing to build, nothing to reap.
func (w *topo) serve(n *node, addr string) {
	w.t.Helper()
	var ln net.Listener
	err := inNS(n.ns, func() (err error) {
		ln, err = net.Listen("tcp", addr)
		return err
	})
	if err != nil {
		w.t.Fatalf("backend in %s on %s: %v", n.ns, addr, err)
	}
	name := n.name
	srv := &http.Server{
		Handler:     http.HandlerFunc(func(rw http.ResponseWriter, _ *http.Request) { fmt.Fprintln(rw, name) }),
		ReadTimeout: 5 * time.Second, IdleTimeout: 5 * time.Second,
	}
	go srv.Serve(ln) //nolint:errcheck // ends with Close
	w.closer = append(w.closer, func() { srv.Close() })
}

// inNS runs f on a locked thread in the named namespace and waits for it.
// Sockets f opens stay in the namespace wherever they are used.
func inNS(name string, f func() error) error {
	h, err := netns.GetFromName(name)
	if err != nil {
		return err
	}
	defer h.Close()
	return testnet.NetNS{Name: name, Handle: h}.Do(f)
}

func (w *topo) node(name string) *node {
	for _, n := range w.nodes {
		if n.name == name {
			return n
		}
	}
	return nil
}

// nodeOfMAC names the node whose eth0 has mac, or returns mac itself.
func (w *topo) nodeOfMAC(mac string) string {
	for _, n := range w.nodes {
		if n.mac.String() == mac {
			return n.name
		}
	}
	return mac
}

// teardown stops every halo, kills whatever still runs in the namespaces
// (a hung fence agent outlives a halo killed with -9), and deletes them.
func (w *topo) teardown() {
	for _, n := range w.nodes {
		for _, p := range []*proc{n.proc, n.dog} {
			if p != nil {
				p.kill()
			}
		}
	}
	for i := len(w.closer) - 1; i >= 0; i-- {
		w.closer[i]()
	}
	for _, ns := range w.namespaces() {
		if err := removeNamespace(ns); err != nil {
			w.t.Errorf("cleanup: %v", err)
		}
	}
	w.keepLogs()
}

// keepLogs copies the halos' logs and configurations and the fence
// agent's calls into $HALO_NSTEST_LOGS/<test>/, when it is set.
func (w *topo) keepLogs() {
	root := os.Getenv("HALO_NSTEST_LOGS")
	if root == "" {
		return
	}
	dst := filepath.Join(root, strings.ReplaceAll(w.t.Name(), "/", "_"))
	if err := os.MkdirAll(dst, 0o755); err != nil {
		w.t.Logf("HALO_NSTEST_LOGS: %v", err)
		return
	}
	_ = filepath.WalkDir(w.dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !(strings.HasSuffix(p, ".log") || strings.HasSuffix(p, ".yaml")) {
			return nil
		}
		if b, err := os.ReadFile(p); err == nil {
			_ = os.WriteFile(filepath.Join(dst, filepath.Base(p)), b, 0o644)
		}
		return nil
	})
	w.t.Logf("logs kept in %s", dst)
}

// removeNamespace kills every process in ns by PID and deletes it. A
// namespace that does not exist is no error.
func removeNamespace(ns string) error {
	if _, err := os.Stat(filepath.Join("/run/netns", ns)); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	for range 50 {
		pids := nsPIDs(ns)
		if len(pids) == 0 {
			break
		}
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if pids := nsPIDs(ns); len(pids) > 0 {
		return fmt.Errorf("processes %v still run in namespace %s", pids, ns)
	}
	if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
		// A file left without a mount (a creation that failed halfway).
		if rmErr := os.Remove(filepath.Join("/run/netns", ns)); rmErr != nil && !errors.Is(rmErr, os.ErrNotExist) {
			return fmt.Errorf("deleting namespace %s: %v: %s", ns, err, out)
		}
	}
	return nil
}

// nsPIDs are the processes in ns, as ip netns pids lists them.
func nsPIDs(ns string) []int {
	out, _ := exec.Command("ip", "netns", "pids", ns).Output()
	var pids []int
	for _, f := range strings.Fields(string(out)) {
		if pid, err := strconv.Atoi(f); err == nil && pid > 1 && pid != os.Getpid() {
			pids = append(pids, pid)
		}
	}
	return pids
}

// sweepLeftovers removes the namespaces of earlier runs, named
// hn<PID>-..., whose PID no longer runs: a test killed before its cleanup
// (a timeout's panic, SIGKILL) leaves them, with its halos inside.
func sweepLeftovers(t testing.TB) {
	t.Helper()
	for _, ns := range listNamespaces() {
		pid, ok := leftoverPID(ns)
		if !ok || pid == os.Getpid() || syscall.Kill(pid, 0) == nil {
			continue
		}
		if err := removeNamespace(ns); err != nil {
			t.Logf("sweeping a crashed run's leftover: %v", err)
		} else {
			t.Logf("swept %s, left by a run (PID %d) that no longer runs", ns, pid)
		}
	}
}

// leftoverPID parses hn<PID>-<suffix>.
func leftoverPID(ns string) (int, bool) {
	rest, ok := strings.CutPrefix(ns, nsPrefix)
	if !ok {
		return 0, false
	}
	num, _, ok := strings.Cut(rest, "-")
	if !ok {
		return 0, false
	}
	pid, err := strconv.Atoi(num)
	return pid, err == nil && pid > 1
}

func listNamespaces() []string {
	out, _ := exec.Command("ip", "netns", "list").Output()
	var names []string
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			names = append(names, f[0])
		}
	}
	return names
}
