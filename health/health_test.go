package health

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/halo-lb/halo/config"
	"github.com/halo-lb/halo/internal/testnet"
)

type edges struct {
	mu  sync.Mutex
	got []bool
	ch  chan bool
}

func (e *edges) SetHealthy(up bool) {
	e.mu.Lock()
	e.got = append(e.got, up)
	e.mu.Unlock()
	e.ch <- up
}

// serveConns serves handle on a free loopback port.
func serveConns(t *testing.T, handle func(net.Conn)) net.Listener {
	return testnet.Serve(t, "127.0.0.1:0", handle)
}

// listen accepts connections and closes them at once.
func listen(t *testing.T) net.Listener { return serveConns(t, func(net.Conn) {}) }

func TestTCPChecker(t *testing.T) {
	ln := listen(t)
	addr := ln.Addr().String()
	if r := (TCPChecker{}).Check(context.Background(), addr); !r.OK || r.Status != L4OK {
		t.Fatalf("open port: %+v", r)
	}
	ln.Close()
	if r := (TCPChecker{}).Check(context.Background(), addr); r.OK || r.Status != L4CON {
		t.Fatalf("closed port: %+v", r)
	}
}

func TestRecordHysteresis(t *testing.T) {
	e := &edges{ch: make(chan bool, 10)}
	m := &Monitor{spec: Spec{Rise: 2, Fall: 3}, setter: e, log: zap.NewNop(), health: 2}
	ok, bad := Result{OK: true, Status: L4OK}, Result{Status: L4CON, Err: context.Canceled}
	// Starting fragile (health == rise): one success makes it solid,
	// then it takes fall failures to go DOWN.
	m.record(ok)
	for i := range 3 {
		if len(e.got) != 0 {
			t.Fatalf("edge after %d failures: %v", i, e.got)
		}
		m.record(bad)
	}
	if len(e.got) != 1 || e.got[0] {
		t.Fatalf("after 3 failures edges = %v, want [false]", e.got)
	}
	m.record(ok)
	if len(e.got) != 1 {
		t.Fatalf("one success should not rise with rise=2: %v", e.got)
	}
	m.record(bad) // resets progress
	m.record(ok)
	m.record(ok)
	if len(e.got) != 2 || !e.got[1] {
		t.Fatalf("after 2 successes edges = %v, want [false true]", e.got)
	}
}

func TestMonitorMarksDeadServerDown(t *testing.T) {
	ln := listen(t)
	e := &edges{ch: make(chan bool, 10)}
	inter := 50 * time.Millisecond
	m := Start(Spec{Backend: "b", Server: "s", Addr: ln.Addr().String(), Inter: inter, Timeout: time.Second, Rise: 2, Fall: 3, Up: true},
		TCPChecker{}, e, zap.NewNop())
	defer m.Stop()
	time.Sleep(3 * inter) // healthy for a while: no edge
	ln.Close()
	killed := time.Now()
	select {
	case up := <-e.ch:
		if up {
			t.Fatal("got UP edge, want DOWN")
		}
		// Three probes, each at most one interval apart, plus scheduling slack.
		if took := time.Since(killed); took > 3*inter+inter {
			t.Errorf("marked DOWN %v after the kill, want within inter x fall = %v", took, 3*inter)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("server never marked DOWN")
	}
}

// TestInterval: inter while fully UP, downinter while fully DOWN, fastinter
// in between, as HAProxy's srv_getinter; unset ones fall back to inter.
func TestInterval(t *testing.T) {
	spec := Spec{Inter: 2 * time.Second, FastInter: 100 * time.Millisecond, DownInter: 10 * time.Second, Rise: 2, Fall: 3}
	for health, want := range []time.Duration{10 * time.Second, 100 * time.Millisecond, 100 * time.Millisecond, 100 * time.Millisecond, 2 * time.Second} {
		m := &Monitor{spec: spec, health: health}
		if got := m.interval(); got != want {
			t.Errorf("health %d (rise 2, fall 3): interval %v, want %v", health, got, want)
		}
	}
	m := &Monitor{spec: Spec{Inter: time.Second, Rise: 2, Fall: 3}, health: 0}
	if got := m.interval(); got != time.Second {
		t.Errorf("no downinter: %v, want inter", got)
	}
	m.health = 1
	if got := m.interval(); got != time.Second {
		t.Errorf("no fastinter: %v, want inter", got)
	}
	// spread-checks 10: every interval within ±10%, and both sides used.
	m = &Monitor{spec: Spec{Inter: time.Second, Spread: 10, Rise: 2, Fall: 3}, health: 4}
	var below, above int
	for range 1000 {
		d := m.interval()
		if d < 900*time.Millisecond || d > 1100*time.Millisecond {
			t.Fatalf("spread 10%%: interval %v outside 0.9–1.1 s", d)
		}
		if d < time.Second {
			below++
		} else if d > time.Second {
			above++
		}
	}
	if below < 300 || above < 300 {
		t.Fatalf("spread 10%%: %d intervals below 1 s, %d above; want both about half", below, above)
	}
}

// countingChecker counts the real TCP probes it makes.
type countingChecker struct {
	TCPChecker
	n atomic.Int64
}

func (c *countingChecker) Check(ctx context.Context, addr string) Result {
	c.n.Add(1)
	return c.TCPChecker.Check(ctx, addr)
}

// TestFastInterMarksDownSooner: inter 1 s, fastinter 50 ms, fall 3: after
// the first failed probe the next two follow at fastinter, so a dead server
// is DOWN about 1.1 s after its kill rather than inter × fall = 3 s.
func TestFastInterMarksDownSooner(t *testing.T) {
	ln := listen(t)
	e := &edges{ch: make(chan bool, 10)}
	m := Start(Spec{Backend: "b", Server: "s", Addr: ln.Addr().String(), Inter: time.Second, FastInter: 50 * time.Millisecond,
		Timeout: time.Second, Rise: 2, Fall: 3, Up: true}, TCPChecker{}, e, zap.NewNop())
	defer m.Stop()
	time.Sleep(1500 * time.Millisecond) // at least one successful probe: fully UP
	ln.Close()
	killed := time.Now()
	select {
	case up := <-e.ch:
		took := time.Since(killed)
		t.Logf("marked DOWN %v after the kill (inter 1s, fastinter 50ms, fall 3)", took.Round(time.Millisecond))
		if up || took > 1500*time.Millisecond {
			t.Fatalf("edge up=%v after %v, want DOWN within inter + 2 × fastinter plus slack", up, took)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("server never marked DOWN")
	}
}

// TestDownInterSlowsProbesOfADownServer: a DOWN server is probed every
// downinter (300 ms), not every inter (20 ms); it comes back UP within
// downinter + fastinter of its restart.
func TestDownInterSlowsProbesOfADownServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	e := &edges{ch: make(chan bool, 10)}
	c := &countingChecker{}
	m := Start(Spec{Backend: "b", Server: "s", Addr: addr, Inter: 20 * time.Millisecond, FastInter: 20 * time.Millisecond,
		DownInter: 300 * time.Millisecond, Timeout: time.Second, Rise: 2, Fall: 3, Up: true}, c, e, zap.NewNop())
	defer m.Stop()
	if up := <-e.ch; up {
		t.Fatal("UP edge for a closed port")
	}
	before := c.n.Load()
	time.Sleep(1500 * time.Millisecond)
	probes := c.n.Load() - before
	t.Logf("probes of the DOWN server in 1.5 s: %d (downinter 300ms; inter 20ms would make 75)", probes)
	if probes < 3 || probes > 7 {
		t.Fatalf("%d probes in 1.5 s, want about 5", probes)
	}
	ln2, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("could not listen on %s again: %v", addr, err)
	}
	defer ln2.Close()
	restarted := time.Now()
	select {
	case up := <-e.ch:
		took := time.Since(restarted)
		t.Logf("UP %v after the restart", took.Round(time.Millisecond))
		if !up || took > 600*time.Millisecond {
			t.Fatalf("edge up=%v after %v, want UP within downinter + fastinter plus slack", up, took)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("server never marked UP")
	}
}

// The passive check's calls from the traffic path allocate nothing: a
// success, and errors below the limit.
func TestObservedAllocatesNothing(t *testing.T) {
	ln := listen(t)
	m := Start(Spec{Backend: "b", Server: "s", Addr: ln.Addr().String(), Inter: time.Hour, Timeout: time.Second,
		Rise: 2, Fall: 3, Up: true, ErrorLimit: 1 << 30, OnError: config.OnErrorMarkDown}, TCPChecker{}, &edges{ch: make(chan bool, 8)}, zap.NewNop())
	defer m.Stop()
	if n := testing.AllocsPerRun(1000, func() {
		m.Observed(true)
		m.Observed(false)
	}); n != 0 {
		t.Fatalf("Observed allocates %v per call pair", n)
	}
}

// A stopped monitor ignores errors still reported by sessions of a retired
// configuration: the server's state is no longer its business.
func TestObservedAfterStop(t *testing.T) {
	ln := listen(t)
	e := &edges{ch: make(chan bool, 8)}
	m := Start(Spec{Backend: "b", Server: "s", Addr: ln.Addr().String(), Inter: time.Hour, Timeout: time.Second,
		Rise: 2, Fall: 3, Up: true, ErrorLimit: 1, OnError: config.OnErrorMarkDown}, TCPChecker{}, e, zap.NewNop())
	m.Stop()
	m.Observed(false)
	if len(e.ch) != 0 {
		t.Fatal("a stopped monitor marked its server DOWN")
	}
}

// A monitor started for a server already drained for lag (by the monitor
// of the configuration before a reload) ends the drain once a check finds
// no lag.
func TestDrainingCarriedAcrossStart(t *testing.T) {
	ln := listen(t)
	w := &watched{up: true, draining: true, changed: make(chan struct{}, 1)}
	m := Start(Spec{Backend: "b", Server: "s", Addr: ln.Addr().String(), Inter: 20 * time.Millisecond, Timeout: time.Second,
		Rise: 1, Fall: 1, Up: true, DrainOnLag: true, Draining: true}, TCPChecker{}, w, zap.NewNop())
	defer m.Stop()
	waitUntil(t, w, m, "drain ended", time.Now(), time.Second, func(up, draining bool) bool { return up && !draining })
}
