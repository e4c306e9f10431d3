package nstest

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/halo-lb/halo/cluster"
	"github.com/halo-lb/halo/internal/testnet"
)

// The topology: a switch namespace with a bridge, three node namespaces
// (10.99.0.1-3 on their eth0, port p-ctlN on the bridge) and a client
// (10.99.0.200). Names carry the test's PID so a leftover of a crashed run
// never collides, and everything is deleted by name at the end.

const vip = "10.99.0.100"

var haloBin string

func TestMain(m *testing.M) { testnet.MainWithBinary(m, "../../cmd/halo", &haloBin) }

type node struct {
	name, ns, dir, cfg string
	cmd                *exec.Cmd
	log                *os.File
	mac                net.HardwareAddr
	stopped            bool // SIGSTOPped
	h                  *netlink.Handle
}

type world struct {
	t      *testing.T
	dir    string
	sw     string // switch namespace
	client string
	nodes  []*node
	swh    *netlink.Handle
	ctrl   string // the fence agent's control directory
}

func run(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func handleIn(t *testing.T, ns string) *netlink.Handle {
	t.Helper()
	nsh, err := netns.GetFromName(ns)
	if err != nil {
		t.Fatalf("namespace %s: %v", ns, err)
	}
	h, err := netlink.NewHandleAt(nsh)
	nsh.Close()
	if err != nil {
		t.Fatalf("netlink in %s: %v", ns, err)
	}
	return h
}

func newWorld(t *testing.T) *world {
	testnet.NeedRoot(t, "the cluster test creates network namespaces")
	for _, tool := range []string{"ip", "arping"} {
		if _, err := exec.LookPath(tool); err != nil {
			testnet.SkipOrFail(t, tool+" is not installed (scripts/install-deps installs it)")
		}
	}
	prefix := fmt.Sprintf("hn%d", os.Getpid())
	w := &world{t: t, dir: t.TempDir(), sw: prefix + "-sw", client: prefix + "-c"}
	w.ctrl = filepath.Join(w.dir, "fence-control")
	if err := os.Mkdir(w.ctrl, 0o755); err != nil {
		t.Fatal(err)
	}
	// A previous run killed halfway may have left namespaces behind.
	if out, err := exec.Command("ip", "netns", "list").Output(); err == nil {
		for _, line := range strings.Split(string(out), "\n") {
			if f := strings.Fields(line); len(f) > 0 && strings.HasPrefix(f[0], "hn") && strings.Contains(f[0], "-") {
				if pid := strings.TrimPrefix(strings.SplitN(f[0], "-", 2)[0], "hn"); !processAlive(pid) {
					_ = exec.Command("ip", "netns", "del", f[0]).Run()
				}
			}
		}
	}
	t.Cleanup(w.teardown)
	run(t, "ip", "netns", "add", w.sw)
	run(t, "ip", "-n", w.sw, "link", "add", "br0", "type", "bridge")
	run(t, "ip", "-n", w.sw, "link", "set", "br0", "up")
	w.swh = handleIn(t, w.sw)
	port := func(ns, peer, addr string) {
		run(t, "ip", "netns", "add", ns)
		run(t, "ip", "-n", ns, "link", "set", "lo", "up")
		run(t, "ip", "link", "add", "eth0", "netns", ns, "type", "veth", "peer", "name", peer, "netns", w.sw)
		run(t, "ip", "-n", w.sw, "link", "set", peer, "master", "br0")
		run(t, "ip", "-n", w.sw, "link", "set", peer, "up")
		run(t, "ip", "-n", ns, "addr", "add", addr+"/24", "dev", "eth0")
		run(t, "ip", "-n", ns, "link", "set", "eth0", "up")
	}
	port(w.client, "p-client", "10.99.0.200")
	for i := 1; i <= 3; i++ {
		n := &node{name: fmt.Sprintf("ctl%d", i), ns: fmt.Sprintf("%s-n%d", prefix, i), dir: filepath.Join(w.dir, fmt.Sprintf("ctl%d", i))}
		port(n.ns, "p-"+n.name, fmt.Sprintf("10.99.0.%d", i))
		n.h = handleIn(t, n.ns)
		l, err := n.h.LinkByName("eth0")
		if err != nil {
			t.Fatal(err)
		}
		n.mac = l.Attrs().HardwareAddr
		w.nodes = append(w.nodes, n)
		w.backend(n)
		w.writeConfig(n, i)
	}
	return w
}

// inNS runs f on a thread in the named namespace and waits for it. The
// thread stays locked and dies with the goroutine. Sockets f opens stay in
// the namespace.
func inNS(name string, f func() error) error {
	h, err := netns.GetFromName(name)
	if err != nil {
		return err
	}
	defer h.Close()
	return testnet.NetNS{Name: name, Handle: h}.Do(f)
}

func processAlive(pid string) bool {
	var p int
	if _, err := fmt.Sscan(pid, &p); err != nil || p <= 0 {
		return false
	}
	return syscall.Kill(p, 0) == nil
}

// backend serves the node's name on 127.0.0.1:8000 inside its namespace:
// the socket stays in the namespace it was opened in.
func (w *world) backend(n *node) {
	var ln net.Listener
	err := inNS(n.ns, func() (err error) {
		ln, err = net.Listen("tcp", "127.0.0.1:8000")
		return err
	})
	if err != nil {
		w.t.Fatalf("backend in %s: %v", n.ns, err)
	}
	name := n.name
	srv := &http.Server{Handler: http.HandlerFunc(func(rw http.ResponseWriter, _ *http.Request) { fmt.Fprintln(rw, name) })}
	go srv.Serve(ln) //nolint:errcheck // ends with Close
	w.t.Cleanup(func() { srv.Close() })
}

func (w *world) writeConfig(n *node, i int) {
	var peers, fencing strings.Builder
	for j := 1; j <= 3; j++ {
		fmt.Fprintf(&peers, "    - {name: ctl%d, address: \"10.99.0.%d:7946\"}\n", j, j)
		fmt.Fprintf(&fencing, "      ctl%d: {agent: %s, options: {plug: ctl%d, switch: %s, control: %s}}\n", j, agentPath(w.t), j, w.sw, w.ctrl)
	}
	cfg := fmt.Sprintf(`global: {log-level: info}
frontends:
  api:
    bind: ["%s:80"]
    mode: http
    default_backend: local
backends:
  local:
    mode: http
    servers:
      - {name: %s, address: "127.0.0.1:8000"}
cluster:
  node: %s
  bind: "10.99.0.%d:7946"
  data-dir: %s
  peers:
%s  lease: 2s
  vips:
    - {address: "%s/24", interface: eth0, prefer: ctl1, require: listening}
  arp: {count: 5, interval: 200ms, refresh: 10s}
  fencing:
    timeout: 3s
    nodes:
%s`, vip, n.name, n.name, i, n.dir, peers.String(), vip, fencing.String())
	n.cfg = filepath.Join(w.dir, n.name+".yaml")
	if err := os.WriteFile(n.cfg, []byte(cfg), 0o644); err != nil {
		w.t.Fatal(err)
	}
}

func agentPath(t *testing.T) string {
	p, err := filepath.Abs("testdata/fence_fabric")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// start runs halo in n's namespace (ip netns exec execs it: the PID is
// halo's).
func (w *world) start(n *node) {
	w.t.Helper()
	f, err := os.OpenFile(filepath.Join(w.dir, n.name+".log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		w.t.Fatal(err)
	}
	fmt.Fprintf(f, "==== start at %s\n", time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command("ip", "netns", "exec", n.ns, haloBin, "run", "-c", n.cfg)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		w.t.Fatal(err)
	}
	n.cmd, n.log, n.stopped = cmd, f, false
	go cmd.Wait() //nolint:errcheck // reaped; state is read from the kernel
}

func (w *world) kill(n *node) {
	if n.cmd == nil {
		return
	}
	_ = syscall.Kill(-n.cmd.Process.Pid, syscall.SIGKILL)
	_ = syscall.Kill(n.cmd.Process.Pid, syscall.SIGKILL)
	for i := 0; i < 100 && syscall.Kill(n.cmd.Process.Pid, 0) == nil; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	n.cmd, n.stopped = nil, false
	if n.log != nil {
		n.log.Close()
	}
}

func (w *world) signal(n *node, sig syscall.Signal) {
	if n.cmd != nil {
		_ = syscall.Kill(n.cmd.Process.Pid, sig)
		n.stopped = sig == syscall.SIGSTOP
	}
}

func (w *world) teardown() {
	for _, n := range w.nodes {
		if n.stopped {
			w.signal(n, syscall.SIGCONT)
		}
		w.kill(n)
		if n.h != nil {
			n.h.Close()
		}
	}
	if w.swh != nil {
		w.swh.Close()
	}
	for _, ns := range append([]string{w.sw, w.client}, w.nsNames()...) {
		_ = exec.Command("ip", "netns", "del", ns).Run()
	}
}

func (w *world) nsNames() []string {
	var out []string
	for _, n := range w.nodes {
		out = append(out, n.ns)
	}
	return out
}

// status asks n's halo for its view, through its control socket (a file:
// no namespace needed).
func (n *node) status() (cluster.Status, error) {
	var st cluster.Status
	out, err := cluster.Ask(n.dir, []string{"status", "json"})
	if err != nil {
		return st, err
	}
	err = jsonUnmarshal([]byte(out), &st)
	return st, err
}

// logTail is the end of n's log, for failure messages.
func (w *world) logTail(n *node, lines int) string {
	b, _ := os.ReadFile(filepath.Join(w.dir, n.name+".log"))
	all := bytes.Split(b, []byte("\n"))
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return string(bytes.Join(all, []byte("\n")))
}
