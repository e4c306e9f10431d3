package proxy

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/halo-lb/halo/balancer"
)

// modeCase runs a scenario in one proxy mode: backends of the right kind
// and a client that asks once and returns which server answered.
type modeCase struct {
	mode    string
	start   func(t *testing.T, name string) *testBackend
	restart func(b *testBackend, t *testing.T)
	client  func(addr string) func() (string, error)
}

var modes = []modeCase{
	{
		mode:    "tcp",
		start:   startTCPBackend,
		restart: (*testBackend).restartTCP,
		client: func(addr string) func() (string, error) {
			return func() (string, error) { return tcpAsk(addr) }
		},
	},
	{
		mode:    "http",
		start:   func(t *testing.T, name string) *testBackend { return startHTTPBackend(t, name, nil) },
		restart: (*testBackend).restartHTTP,
		client: func(addr string) func() (string, error) {
			c := &http.Client{Timeout: 5 * time.Second}
			return func() (string, error) {
				body, code, err := httpGet(c, "http://"+addr+"/")
				if err == nil && code != 200 {
					err = fmt.Errorf("status %d: %s", code, body)
				}
				return body, err
			}
		},
	},
}

func TestRoundRobinByWeight(t *testing.T) {
	for _, m := range modes {
		t.Run(m.mode, func(t *testing.T) {
			a, b, c := m.start(t, "a"), m.start(t, "b"), m.start(t, "c")
			p := startProxy(t, `
defaults: {mode: `+m.mode+`, timeout: {connect: 1s, client: 5s, server: 5s}}
frontends:
  fe: {bind: "127.0.0.1:0", default_backend: be}
backends:
  be:
    servers:
      - {name: a, address: "{{a}}", weight: 1}
      - {name: b, address: "{{b}}", weight: 2}
      - {name: c, address: "{{c}}", weight: 3}
`, a, b, c)
			got := tally(t, m.client(frontendAddr(t, p, "fe")), 60)
			if got["a"] != 10 || got["b"] != 20 || got["c"] != 30 {
				t.Fatalf("answers by server = %v, want a:10 b:20 c:30", got)
			}
		})
	}
}

func TestBackupOnlyWhenEveryPrimaryIsDown(t *testing.T) {
	for _, m := range modes {
		t.Run(m.mode, func(t *testing.T) {
			p1, p2, bk := m.start(t, "p1"), m.start(t, "p2"), m.start(t, "bk")
			p := startProxy(t, `
defaults: {mode: `+m.mode+`, timeout: {connect: 1s, client: 5s, server: 5s}}
frontends:
  fe: {bind: "127.0.0.1:0", default_backend: be}
backends:
  be:
    default-server: {check: true, inter: 50ms, rise: 1, fall: 1}
    servers:
      - {name: p1, address: "{{p1}}"}
      - {name: p2, address: "{{p2}}"}
      - {name: bk, address: "{{bk}}", backup: true}
`, p1, p2, bk)
			ask := m.client(frontendAddr(t, p, "fe"))
			if got := tally(t, ask, 20); got["bk"] != 0 || got["p1"] != 10 || got["p2"] != 10 {
				t.Fatalf("all primaries up: %v, want p1:10 p2:10 and no backup", got)
			}
			p1.kill()
			reg := p.Registry()
			waitFor(t, 5*time.Second, "p1 DOWN", func() bool { return !reg.Lookup("be", "p1").Up() })
			if got := tally(t, ask, 10); got["p2"] != 10 {
				t.Fatalf("p1 down: %v, want everything on p2", got)
			}
			p2.kill()
			waitFor(t, 5*time.Second, "p2 DOWN", func() bool { return !reg.Lookup("be", "p2").Up() })
			if got := tally(t, ask, 10); got["bk"] != 10 {
				t.Fatalf("every primary down: %v, want everything on the backup", got)
			}
			m.restart(p1, t)
			waitFor(t, 5*time.Second, "p1 UP again", func() bool { return reg.Lookup("be", "p1").Up() })
			if got := tally(t, ask, 10); got["p1"] != 10 {
				t.Fatalf("p1 back: %v, want everything on p1", got)
			}
		})
	}
}

// A server killed under load is marked DOWN within inter x fall while every
// request or connection still succeeds: the failed connects are retried on
// the other servers, and once DOWN the server gets no more traffic.
func TestKilledServerMarkedDownTrafficContinues(t *testing.T) {
	const inter, fall = 200 * time.Millisecond, 3
	for _, m := range modes {
		t.Run(m.mode, func(t *testing.T) {
			a, b, c := m.start(t, "a"), m.start(t, "b"), m.start(t, "c")
			p := startProxy(t, fmt.Sprintf(`
defaults: {mode: %s, timeout: {connect: 1s, client: 5s, server: 5s}}
frontends:
  fe: {bind: "127.0.0.1:0", default_backend: be}
backends:
  be:
    default-server: {check: true, inter: %s, rise: 2, fall: %d}
    servers:
      - {name: a, address: "{{a}}"}
      - {name: b, address: "{{b}}"}
      - {name: c, address: "{{c}}"}
`, m.mode, inter, fall), a, b, c)
			ask := m.client(frontendAddr(t, p, "fe"))
			reg := p.Registry()
			stop := make(chan struct{})
			// The kill lands between two requests: a request in flight on
			// b when it dies cannot be saved (HAProxy answers 502 too), and
			// what this test asks is that no later one fails.
			var inFlight sync.Mutex
			done := askUntil(ask, stop, &inFlight)
			time.Sleep(300 * time.Millisecond)
			inFlight.Lock()
			b.kill()
			inFlight.Unlock()
			took := waitFor(t, 10*time.Second, "b DOWN", func() bool { return !reg.Lookup("be", "b").Up() })
			bAtDown := reg.Lookup("be", "b").TotalConns.Load()
			time.Sleep(300 * time.Millisecond)
			close(stop)
			r := <-done
			t.Logf("b marked DOWN %v after the kill (inter x fall = %v); %d ok, %d failed, by server %v", took, inter*fall, r.ok, r.failed, r.byServer)
			// One interval of scheduling slack on top of inter x fall.
			if took > inter*fall+inter {
				t.Errorf("b marked DOWN %v after the kill, want within inter x fall = %v", took, inter*fall)
			}
			if r.failed != 0 {
				t.Errorf("%d requests failed during the kill, first: %v", r.failed, r.firstErr)
			}
			if got := reg.Lookup("be", "b").TotalConns.Load(); got != bAtDown {
				t.Errorf("b got %d connections after it was marked DOWN", got-bAtDown)
			}
			if r.byServer["a"] == 0 || r.byServer["c"] == 0 {
				t.Errorf("traffic did not continue on a and c: %v", r.byServer)
			}
		})
	}
}

// askResult tallies the answers of a load loop.
type askResult struct {
	ok, failed int
	byServer   map[string]int
	firstErr   error
}

// askUntil asks in a loop, each request under inFlight, until stop is
// closed (at most 100,000 requests or 20 seconds), then sends the tally.
func askUntil(ask func() (string, error), stop chan struct{}, inFlight *sync.Mutex) chan askResult {
	done := make(chan askResult)
	go func() {
		r := askResult{byServer: map[string]int{}}
		deadline := time.Now().Add(20 * time.Second)
		for i := 0; i < 100000 && time.Now().Before(deadline); i++ {
			select {
			case <-stop:
				done <- r
				return
			default:
			}
			inFlight.Lock()
			name, err := ask()
			inFlight.Unlock()
			if err != nil {
				r.failed++
				if r.firstErr == nil {
					r.firstErr = err
				}
				continue
			}
			r.ok++
			r.byServer[name]++
		}
		done <- r
	}()
	return done
}

func TestDisabledServerGetsNoTraffic(t *testing.T) {
	a, b := startTCPBackend(t, "a"), startTCPBackend(t, "b")
	p := startProxy(t, `
frontends:
  fe: {bind: "127.0.0.1:0", default_backend: be}
backends:
  be:
    servers:
      - {name: a, address: "{{a}}"}
      - {name: b, address: "{{b}}", disabled: true}
`, a, b)
	for range 5 {
		if name, err := tcpAsk(frontendAddr(t, p, "fe")); err != nil || name != "a" {
			t.Fatalf("got %q, %v; want a", name, err)
		}
	}
	if got := p.Registry().Lookup("be", "b").Admin(); got != balancer.AdminMaint {
		t.Fatalf("disabled server admin state = %v, want MAINT", got)
	}
}

// tally asks n times and counts the answers by server name.
func tally(t *testing.T, ask func() (string, error), n int) map[string]int {
	t.Helper()
	got := map[string]int{}
	for range n {
		name, err := ask()
		if err != nil {
			t.Fatal(err)
		}
		got[name]++
	}
	return got
}
