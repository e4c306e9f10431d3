package nstest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mdlayher/arp"

	"github.com/halo-lb/halo/cluster/fence"
)

// The harness's own tests: each piece the campaign relies on, checked on
// its own against the real namespaces, with no halo. They run as root (and
// skip without, unless HALO_INTEGRATION=1).

// TestTopologyUpAndDown builds the network, checks that the client
// reaches every node at the MAC the probes map to it and that every
// backend answers with its node's name, and that teardown leaves no
// namespace and no process behind.
func TestTopologyUpAndDown(t *testing.T) {
	var w *topo
	var names []string
	var sleeper *proc
	t.Run("up", func(t *testing.T) {
		w = newTopo(t)
		names = w.namespaces()
		for _, ns := range names {
			if !slices.Contains(listNamespaces(), ns) {
				t.Errorf("namespace %s missing", ns)
			}
		}
		macs := map[string]bool{}
		for _, n := range w.nodes {
			macs[n.mac.String()] = true
			if s := w.state(n); s.kernel || !s.reach {
				t.Errorf("%s: ground truth %+v, want no VIP and a live link", n.name, s)
			}
			if body, err := getIn(n.ns, backendAddr); err != nil || body != n.name {
				t.Errorf("%s's backend: %q, %v", n.name, body, err)
			}
		}
		if len(macs) != 3 {
			t.Errorf("node MACs not distinct: %v", macs)
		}
		for _, n := range w.nodes {
			got, err := resolveFromClient(w, n.addr)
			if err != nil || got != n.mac.String() {
				t.Errorf("client ARP for %s: %s, %v; want %s", n.addr, got, err, n.mac)
			}
		}
		// A process left running in a node namespace is killed by teardown.
		var err error
		if sleeper, err = startIn(w.nodes[0].ns, filepath.Join(t.TempDir(), "sleep.log"), "sleep", "60"); err != nil {
			t.Fatal(err)
		}
	})
	if w == nil {
		return
	}
	for _, ns := range names {
		if slices.Contains(listNamespaces(), ns) {
			t.Errorf("namespace %s left after teardown", ns)
		}
	}
	if sleeper != nil {
		select {
		case <-sleeper.exited:
		case <-time.After(5 * time.Second):
			t.Errorf("a process in a node namespace outlived teardown")
			sleeper.kill()
		}
	}
}

// TestSweepOfACrashedRun: namespaces named for a PID that no longer runs
// are deleted, and the processes inside killed, by the next run.
func TestSweepOfACrashedRun(t *testing.T) {
	_ = newTopo(t) // root, tools
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	ns := fmt.Sprintf("%s%d-sw", nsPrefix, dead.Process.Pid)
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	t.Cleanup(func() { _ = removeNamespace(ns) })
	p, err := startIn(ns, filepath.Join(t.TempDir(), "sleep.log"), "sleep", "60")
	if err != nil {
		t.Fatal(err)
	}
	defer p.kill()
	deadline := time.Now().Add(5 * time.Second)
	for len(nsPIDs(ns)) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	sweepLeftovers(t)
	if slices.Contains(listNamespaces(), ns) {
		t.Errorf("%s not swept", ns)
	}
	select {
	case <-p.exited:
	case <-time.After(5 * time.Second):
		t.Error("the leftover's process was not killed")
	}
}

// TestFenceAgent drives the test's fence agent against the real switch
// namespace, through halo's own runner (cluster/fence): off takes the
// node's bridge port down and status confirms it, on brings it back,
// reboot is an off only, and the failure modes fail or hang (the hang is
// killed with its process group, here inside a node namespace as halo
// runs it).
func TestFenceAgent(t *testing.T) {
	w := newTopo(t)
	ctrl := t.TempDir()
	n := w.nodes[1]
	agent := fence.Agent{Path: agentPath(), Options: map[string]string{"plug": n.name, "switch": w.sw, "control": ctrl}, Timeout: 5 * time.Second}
	ctx := context.Background()
	portUp := func() bool { return w.state(n).reach }
	status := func() int { return agent.Run(ctx, "status").ExitCode }

	if status() != 0 || !portUp() {
		t.Fatalf("before: status %d, port up %v", status(), portUp())
	}
	if _, err := agent.Fence(ctx, "off"); err != nil {
		t.Fatalf("off: %v", err)
	}
	if s := w.state(n); s.reach || s.why != "bridge port down (fenced)" {
		t.Errorf("after off: %+v", s)
	}
	if c := status(); c != fence.ExitOff {
		t.Errorf("status after off: exit %d, want 2", c)
	}
	for _, other := range []*node{w.nodes[0], w.nodes[2]} {
		if !w.state(other).reach {
			t.Errorf("fencing %s took %s's port down too", n.name, other.name)
		}
	}
	if _, err := agent.Unfence(ctx); err != nil || !portUp() || status() != 0 {
		t.Errorf("on: %v, port up %v", err, portUp())
	}
	if r := agent.Run(ctx, "reboot"); r.Err != nil || portUp() {
		t.Errorf("reboot: %v, port up %v (fabric fencing: an off only)", r.Err, portUp())
	}
	if _, err := agent.Unfence(ctx); err != nil || !portUp() {
		t.Fatalf("on: %v", err)
	}
	if r := agent.Run(ctx, "monitor"); r.ExitCode != 0 {
		t.Errorf("monitor: exit %d", r.ExitCode)
	}
	if r := agent.Run(ctx, "list"); r.Err != nil || !strings.Contains(r.Output, "ctl1,") || !strings.Contains(r.Output, "ctl3,") {
		t.Errorf("list: %v %q", r.Err, r.Output)
	}

	// fail: every action fails, nothing is done.
	if err := os.WriteFile(filepath.Join(ctrl, "fail"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := agent.Fence(ctx, "off"); !errors.Is(err, fence.ErrFailed) || !portUp() {
		t.Errorf("off in fail mode: %v, port up %v", err, portUp())
	}
	if c := status(); c != fence.ExitFailure {
		t.Errorf("status in fail mode: exit %d, want 1", c)
	}
	os.Remove(filepath.Join(ctrl, "fail"))

	// hang: halo's timeout kills it, and what it started, in a node's
	// namespace (halo runs the agent in its own).
	if err := os.WriteFile(filepath.Join(ctrl, "hang"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	inNode := filepath.Join(t.TempDir(), "agent-in-node")
	script := fmt.Sprintf("#!/bin/sh\nexec ip netns exec %s %s \"$@\"\n", w.nodes[0].ns, agentPath())
	if err := os.WriteFile(inNode, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	hung := agent
	hung.Path, hung.Timeout = inNode, time.Second
	start := time.Now()
	_, err := hung.Fence(ctx, "off")
	if took := time.Since(start); !errors.Is(err, fence.ErrTimeout) || took > 3*time.Second || !portUp() {
		t.Errorf("off in hang mode: %v after %s, port up %v", err, took, portUp())
	}
	deadline := time.Now().Add(3 * time.Second)
	for len(nsPIDs(w.nodes[0].ns)) > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if pids := nsPIDs(w.nodes[0].ns); len(pids) > 0 {
		t.Errorf("the hung agent left processes %v in %s", pids, w.nodes[0].ns)
	}
	os.Remove(filepath.Join(ctrl, "hang"))
	hung.Timeout = 5 * time.Second
	if _, err := hung.Fence(ctx, "off"); err != nil || portUp() {
		t.Errorf("off from inside a node namespace: %v, port up %v", err, portUp())
	}
	if _, err := agent.Unfence(ctx); err != nil {
		t.Fatal(err)
	}

	// The API's input rules, on raw stdin and on the command line.
	for _, c := range []struct {
		input string
		args  []string
		want  int
	}{
		{input: "# a comment\n  plug=" + n.name + "\nswitch=" + w.sw + "\naction=STATUS\n", want: 0},
		{input: "port=" + n.name + "\nswitch=" + w.sw + "\nunknown=1\noption=status\n", want: 0},
		{input: "nodename=" + n.name + "\nswitch=" + w.sw + "\naction=status", want: 0}, // no final newline
		{input: "plug=ctl9\nswitch=" + w.sw + "\naction=status\n", want: 1},
		{input: "plug=" + n.name + "\naction=status\n", want: 1},
		{input: "plug=a;b\nswitch=" + w.sw + "\naction=off\n", want: 1},
		{input: "plug=" + n.name + "\nswitch=" + w.sw + "\naction=dance\n", want: 1},
		{args: []string{"--plug=" + n.name, "--switch=" + w.sw, "-o", "status"}, want: 0},
		{args: []string{"-o", "metadata"}, want: 0},
	} {
		cmd := exec.Command(agentPath(), c.args...)
		cmd.Stdin = strings.NewReader(c.input)
		out, _ := cmd.CombinedOutput()
		if got := cmd.ProcessState.ExitCode(); got != c.want {
			t.Errorf("agent %q %v: exit %d, want %d: %s", c.input, c.args, got, c.want, out)
		}
	}
	calls, _ := os.ReadFile(filepath.Join(ctrl, "calls.log"))
	for _, want := range []string{" off " + n.name + " exit=0", " status " + n.name + " exit=2", " off " + n.name + " exit=1 fail", " off " + n.name + " hang"} {
		if !strings.Contains(string(calls), want) {
			t.Errorf("calls.log lacks %q:\n%s", want, calls)
		}
	}
}

// getIn asks addr (host:port) for / from inside namespace ns. The dial
// is made on the namespace's thread itself: net/http would dial from
// another goroutine, outside it.
func getIn(ns, addr string) (string, error) {
	var body string
	err := inNS(ns, func() error {
		c, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(2 * time.Second))
		fmt.Fprint(c, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		body = strings.TrimSpace(string(b))
		return err
	})
	return body, err
}

// resolveFromClient asks for addr's MAC by ARP from the client.
func resolveFromClient(w *topo, addr string) (string, error) {
	var mac string
	err := inNS(w.client, func() error {
		ifi, err := net.InterfaceByName("eth0")
		if err != nil {
			return err
		}
		c, err := arp.Dial(ifi)
		if err != nil {
			return err
		}
		defer c.Close()
		if err := c.SetDeadline(time.Now().Add(2 * time.Second)); err != nil {
			return err
		}
		hw, err := c.Resolve(netip.MustParseAddr(addr))
		mac = hw.String()
		return err
	})
	return mac, err
}
