package health

import (
	"net"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// fullListener listens with a backlog of one and never accepts; once its
// queue is full the kernel drops further SYNs, so a connect hangs until
// its caller gives up: a real timeout on loopback.
func fullListener(t *testing.T) string {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, _ := unix.Getsockname(fd)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(sa.(*unix.SockaddrInet4).Port))
	// Fill the accept queue; the connects that do not fit hang, and are
	// abandoned after 100 ms.
	for range 4 {
		if c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond); err == nil {
			t.Cleanup(func() { c.Close() })
		}
	}
	return addr
}

func engineMonitor(t *testing.T, addr string, up bool) (*Monitor, *edges) {
	t.Helper()
	e := &edges{ch: make(chan bool, 16)}
	m := Start(Spec{Backend: "b", Server: "s", Addr: addr, Inter: 50 * time.Millisecond, Timeout: 200 * time.Millisecond,
		Rise: 1, Fall: 1, Up: up}, TCPChecker{}, e, zap.NewNop())
	t.Cleanup(m.Stop)
	if _, ok := m.sched.(*tcpProbe); !ok {
		t.Fatalf("a TCP check of %s did not run on the engine", addr)
	}
	return m, e
}

func TestTCPEngineTimeout(t *testing.T) {
	m, e := engineMonitor(t, fullListener(t), true)
	select {
	case up := <-e.ch:
		if up {
			t.Fatal("UP edge")
		}
	case <-time.After(2 * time.Second):
		t.Fatal("a server that never answers was not marked DOWN")
	}
	last, _ := m.Last()
	if last.Status != L4TOUT || last.Duration < 200*time.Millisecond || last.Duration > 400*time.Millisecond {
		t.Fatalf("last check %s after %v, want L4TOUT after the 200ms timeout", last.Status, last.Duration)
	}
	if d := describe(last.Result); d != "Layer4 timeout" {
		t.Errorf("description %q", d)
	}
}

func TestTCPEngineRefusedAndIPv6(t *testing.T) {
	dead := listen(t)
	deadAddr := dead.Addr().String()
	dead.Close()
	m, e := engineMonitor(t, deadAddr, true)
	if up := <-e.ch; up {
		t.Fatal("UP edge for a closed port")
	}
	if last, _ := m.Last(); last.Status != L4CON || describe(last.Result) != "Layer4 connection problem: Connection refused" {
		t.Fatalf("closed port: %s %q", last.Status, describe(last.Result))
	}
	ln6, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	defer ln6.Close()
	m6, e6 := engineMonitor(t, ln6.Addr().String(), false)
	if up := <-e6.ch; !up {
		t.Fatal("DOWN edge for a listening [::1] port")
	}
	if last, _ := m6.Last(); last.Status != L4OK {
		t.Fatalf("[::1]: %s", last.Status)
	}
}

// Many monitors share the engine; once Stop returns, a monitor's setter is
// never called again, and its checks stop.
func TestTCPEngineStop(t *testing.T) {
	ln := listen(t)
	var stopped atomic.Bool
	var lateCalls atomic.Int64
	var monitors []*Monitor
	for i := range 200 {
		addr := ln.Addr().String()
		up := i%2 == 0
		s := setterFunc(func(bool) {
			if stopped.Load() {
				lateCalls.Add(1)
			}
		})
		monitors = append(monitors, Start(Spec{Backend: "b", Server: strconv.Itoa(i), Addr: addr, Inter: 10 * time.Millisecond,
			Timeout: time.Second, Rise: 1, Fall: 1, Up: up}, TCPChecker{}, s, zap.NewNop()))
	}
	time.Sleep(200 * time.Millisecond)
	checked := 0
	for _, m := range monitors {
		if last, ok := m.Last(); ok && last.Status == L4OK {
			checked++
		}
	}
	if checked != len(monitors) {
		t.Fatalf("%d of %d monitors checked L4OK within 200ms at inter 10ms", checked, len(monitors))
	}
	for _, m := range monitors {
		m.Stop()
	}
	stopped.Store(true)
	at := make([]time.Time, len(monitors))
	for i, m := range monitors {
		last, _ := m.Last()
		at[i] = last.At
	}
	time.Sleep(100 * time.Millisecond)
	for i, m := range monitors {
		if last, _ := m.Last(); !last.At.Equal(at[i]) {
			t.Fatalf("monitor %d checked after Stop", i)
		}
	}
	if n := lateCalls.Load(); n != 0 {
		t.Fatalf("%d setter calls after Stop", n)
	}
}

type setterFunc func(bool)

func (f setterFunc) SetHealthy(up bool) { f(up) }
