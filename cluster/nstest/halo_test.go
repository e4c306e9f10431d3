package nstest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/halo-lb/halo/cluster"
)

// This file runs halo in the node namespaces: the configuration (the
// contract of the issue, with a frontend on the VIP), the process (kill -9,
// SIGSTOP, SIGCONT, restart) and what the test asks it (status, unfence).

// The programs the tests run, built once by TestMain: halo, and the fake
// watchdog (cluster/watchdog/fakewatchdog) that stands in for
// /dev/watchdog by killing a halo's process group when its pets stop.
var haloBin, fakeDogBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "halo-nstest")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	haloBin, fakeDogBin = filepath.Join(dir, "halo"), filepath.Join(dir, "fakewatchdog")
	for bin, pkg := range map[string]string{haloBin: "../../cmd/halo", fakeDogBin: "../watchdog/fakewatchdog"} {
		build := exec.Command("go", "build", "-o", bin, pkg)
		build.Stderr = os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "building", pkg+":", err)
			os.RemoveAll(dir)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// clusterOpts are the parts of the configuration a scenario chooses.
type clusterOpts struct {
	lease        time.Duration
	fenceTimeout time.Duration
	watchdog     func(n *node) string // the watchdog line, or ""
}

// writeConfig writes n's configuration: a frontend on the VIP (halo binds
// it with IP_FREEBIND before it holds it) to the local backend, and the
// cluster section with every node fenced by the test's fabric agent.
func (w *topo) writeConfig(n *node, agent, control string, o clusterOpts) {
	w.t.Helper()
	var peers, fencing strings.Builder
	for _, p := range w.nodes {
		fmt.Fprintf(&peers, "    - {name: %s, address: \"%s:7946\"}\n", p.name, p.addr)
		fmt.Fprintf(&fencing, "      %s: {agent: %s, options: {plug: %s, switch: %s, control: %s}}\n", p.name, agent, p.name, w.sw, control)
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
      - {name: %s, address: "%s"}
cluster:
  node: %s
  bind: "%s:7946"
  data-dir: %s
  peers:
%s  lease: %s
  vips:
    - {address: "%s", interface: eth0, prefer: ctl1, require: listening}
  arp: {count: 5, interval: 200ms, refresh: 10s}
  fencing:
    timeout: %s
    nodes:
%s`, vip, n.name, backendAddr, n.name, n.addr, n.dir, peers.String(), o.lease, vipPrefix, o.fenceTimeout, fencing.String())
	if o.watchdog != nil {
		cfg += o.watchdog(n)
	}
	n.cfg = filepath.Join(w.dir, n.name+".yaml")
	if err := os.WriteFile(n.cfg, []byte(cfg), 0o644); err != nil {
		w.t.Fatal(err)
	}
}

// proc is one halo process (or any program the test runs in a namespace
// in a process group of its own).
type proc struct {
	cmd     *exec.Cmd
	exited  chan struct{}
	stopped bool // SIGSTOPped and not resumed
}

// startIn runs args in namespace ns (ip netns exec execs the program, so
// the PID is the program's), in its own process group, its output
// appended to logPath.
func startIn(ns, logPath string, args ...string) (*proc, error) {
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, err
	}
	defer f.Close() // the child has its own copy
	fmt.Fprintf(f, "==== %s: %s\n", time.Now().Format("15:04:05.000"), strings.Join(args, " "))
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &proc{cmd: cmd, exited: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) alive() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// kill sends SIGKILL to the process group and waits (bounded) for the
// process to be reaped.
func (p *proc) kill() {
	_ = syscall.Kill(-p.pid(), syscall.SIGKILL)
	select {
	case <-p.exited:
	case <-time.After(5 * time.Second):
	}
}

func (p *proc) signal(sig syscall.Signal) {
	_ = syscall.Kill(p.pid(), sig)
	switch sig {
	case syscall.SIGSTOP:
		p.stopped = true
	case syscall.SIGCONT:
		p.stopped = false
	}
}

// startHalo starts n's halo; a previous one must have been killed.
func (w *topo) startHalo(n *node) {
	w.t.Helper()
	p, err := startIn(n.ns, n.logPath, haloBin, "run", "-c", n.cfg)
	if err != nil {
		w.t.Fatalf("starting halo on %s: %v", n.name, err)
	}
	n.proc = p
}

// killHalo is kill -9 of n's halo (its kernel keeps what it had).
func (w *topo) killHalo(n *node) {
	if n.proc != nil {
		n.proc.kill()
		n.proc = nil
	}
}

// running: n's halo runs and is not stopped.
func (n *node) running() bool { return n.proc != nil && n.proc.alive() && !n.proc.stopped }

// status is n's view of the cluster, through its control socket (the one
// halo cluster status -c uses: a file in the data-dir, no namespace).
func (n *node) status() (cluster.Status, error) {
	var st cluster.Status
	if !n.running() {
		return st, fmt.Errorf("%s: halo is not running", n.name)
	}
	out, err := cluster.Ask(n.dir, []string{"status", "json"})
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		return st, fmt.Errorf("%s: status json: %w: %q", n.name, err, out)
	}
	return st, nil
}

// cli runs halo cluster ARGS -c n.cfg inside n's namespace, as an
// operator would, bounded by 10 s.
func (w *topo) cli(n *node, args ...string) (string, error) {
	cmd := exec.Command("ip", append([]string{"netns", "exec", n.ns, haloBin, "cluster"}, append(args, "-c", n.cfg)...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return "", err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return out.String(), err
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		return out.String(), fmt.Errorf("halo cluster %s on %s: no answer in 10s", strings.Join(args, " "), n.name)
	}
}

// leader is the raft leader as the running nodes see it ("" if none or
// they disagree).
func (w *topo) leader() string {
	seen := ""
	for _, n := range w.nodes {
		st, err := n.status()
		if err != nil {
			continue
		}
		if st.Leader == "" || seen != "" && st.Leader != seen {
			return ""
		}
		seen = st.Leader
	}
	return seen
}

// tail is the last lines of a file.
func tail(path string, lines int) string {
	b, _ := os.ReadFile(path)
	all := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return string(bytes.Join(all, []byte("\n")))
}

// dump is what a failure message shows: each node's kernel and link, its
// halo cluster status, and its log's tail.
func (w *topo) dump(logLines int) string {
	var b strings.Builder
	for _, n := range w.nodes {
		s := w.state(n)
		fmt.Fprintf(&b, "\n==== %s: VIP in kernel %v, reachable %v (%s), halo running %v\n", n.name, s.kernel, s.reach, s.why, n.running())
		if n.running() {
			out, err := w.cli(n, "status")
			fmt.Fprintf(&b, "$ halo cluster status -c %s\n%s", filepath.Base(n.cfg), out)
			if err != nil {
				fmt.Fprintf(&b, "(%v)\n", err)
			}
		}
		fmt.Fprintf(&b, "---- log tail\n%s\n", tail(n.logPath, logLines))
	}
	return b.String()
}
