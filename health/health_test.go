package health

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
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

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return ln
}

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
