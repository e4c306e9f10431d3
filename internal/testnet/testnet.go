// Package testnet holds what tests of several packages need: a loopback
// listener that runs a handler on each connection, the rule for tests that
// lack something (skip, or fail in CI), the TestMain of tests that drive a
// real binary, leak checks (leaks.go: goroutines and descriptors a test or
// a whole package's tests left behind), and network namespaces (netns.go): creating one that is
// deleted by name when the test ends, running code inside it, and veth
// pairs between them.
package testnet

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// Serve listens on addr (e.g. "127.0.0.1:0") and runs handle on each
// connection in a goroutine of its own, closing the connection
// afterwards. The listener closes when the test ends.
func Serve(t testing.TB, addr string, handle func(net.Conn)) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				handle(c)
			}()
		}
	}()
	return ln
}

// SkipOrFail skips a test that lacks something it needs (a program, root),
// or fails it under HALO_INTEGRATION=1, which CI sets: there everything
// the tests need is installed, and such a test must run.
func SkipOrFail(t testing.TB, why string) {
	t.Helper()
	if os.Getenv("HALO_INTEGRATION") == "1" {
		t.Fatalf("HALO_INTEGRATION=1 and %s", why)
	}
	t.Skip(why)
}

// NeedRoot skips or fails (SkipOrFail) a test that needs root: a
// privileged socket option, a network namespace.
func NeedRoot(t testing.TB, what string) {
	t.Helper()
	if os.Geteuid() != 0 {
		SkipOrFail(t, "not root: "+what+" needs root")
	}
}

// MainWithBinary is the TestMain of tests that drive a real binary: it
// builds the Go package at pkg (a path as "go build" takes it) into a
// temporary directory, sets *bin to the binary, runs the tests and removes
// the directory.
func MainWithBinary(m *testing.M, pkg string, bin *string) {
	os.Exit(runWithBinary(pkg, bin, m.Run))
}

// MainWithBinaryCheckingLeaks is MainWithBinary whose tests must leave no
// goroutine and no descriptor behind (MainCheckingLeaks, with lasting).
func MainWithBinaryCheckingLeaks(m *testing.M, pkg string, bin *string, lasting ...string) {
	os.Exit(runWithBinary(pkg, bin, func() int { return MainCheckingLeaks(m, nil, lasting...) }))
}

func runWithBinary(pkg string, bin *string, run func() int) int {
	dir, err := os.MkdirTemp("", "halo-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	*bin = filepath.Join(dir, "halo")
	build := exec.Command("go", "build", "-o", *bin, pkg)
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building", pkg+":", err)
		return 1
	}
	return run()
}

// FreePort returns a loopback TCP port that was free a moment ago, for
// programs and configurations that cannot bind port 0 (HAProxy, a bind
// kept across reloads). The port is below the kernel's ephemeral range
// (net.ipv4.ip_local_port_range): a port from that range, once released,
// may be taken by any listener on port 0 or any outgoing connection (a
// health check, a load client) before the program it was meant for binds
// it, and CI once saw exactly that ("bind: address already in use"). A
// port is handed out once per test process. Each process walks those
// 20,000 ports in order from a random start and checks each is free: two
// test processes running side by side (go test runs packages in
// parallel) could both be handed a port before either bound it if they
// picked at random, once per port; walking, they meet only if their walks
// reach the same port within that moment.
func FreePort(t testing.TB) int {
	t.Helper()
	lo, hi := portsOutsideEphemeral()
	for range 1000 {
		given.Lock()
		if given.next < lo || given.next >= hi {
			given.next = lo + rand.IntN(hi-lo)
		}
		port := given.next
		given.next++
		dup := given.ports[port]
		given.ports[port] = true
		given.Unlock()
		if !dup && portIsFree(port) {
			return port
		}
	}
	t.Fatalf("no free loopback port in [%d, %d) that was not handed out already", lo, hi)
	return 0
}

// portsOutsideEphemeral is the range FreePort picks from: the 20,000
// ports below the ephemeral range (or from 1024, if that starts lower).
func portsOutsideEphemeral() (lo, hi int) {
	hi = 32768 // Linux's default first ephemeral port
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		var first, last int
		if n, _ := fmt.Sscanf(string(b), "%d %d", &first, &last); n == 2 && first > 1024+1000 {
			hi = first
		}
	}
	return max(1024, hi-20000), hi
}

// portIsFree reports whether both a TCP listener and a UDP socket can bind
// port on 127.0.0.1 now (a syslog sink or a cluster peer may want UDP).
func portIsFree(port int) bool {
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return false
	}
	ln.Close()
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		return false
	}
	pc.Close()
	return true
}

// given are the ports FreePort handed out.
var given = struct {
	sync.Mutex
	ports map[int]bool
	next  int // the next port of this process's walk
}{ports: map[int]bool{}}

// FreeAddr is FreePort as "127.0.0.1:PORT".
func FreeAddr(t testing.TB) string {
	return fmt.Sprintf("127.0.0.1:%d", FreePort(t))
}
