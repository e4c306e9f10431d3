package health

import (
	"context"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/halo-lb/halo/internal/panics"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// panicChecker panics on every check, as a checker with a bug would.
type panicChecker struct{ calls atomic.Int32 }

func (c *panicChecker) Check(context.Context, string) Result {
	c.calls.Add(1)
	panic("test panic in a checker")
}

// A checker that panics fails its checks with SOCKERR instead of taking
// the process down: the server goes DOWN after fall of them, the probes
// go on, and each panic is counted and logged with the server and stack.
func TestPanickingCheckFails(t *testing.T) {
	core, logs := observer.New(zap.ErrorLevel)
	e := &edges{ch: make(chan bool, 10)}
	c := &panicChecker{}
	before := panics.Count()
	m := Start(Spec{Backend: "b", Server: "s", Addr: "127.0.0.1:9", Inter: 20 * time.Millisecond, Timeout: time.Second,
		Rise: 2, Fall: 2, Up: true}, c, e, zap.New(core))
	select {
	case up := <-e.ch:
		if up {
			t.Fatal("the server went UP")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the server never went DOWN")
	}
	deadline := time.Now().Add(5 * time.Second)
	for c.calls.Load() < 4 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	m.Stop()
	calls := c.calls.Load()
	if calls < 4 {
		t.Fatalf("%d checks ran, want the probes to go on after the panics", calls)
	}
	if last, ok := m.Last(); !ok || last.OK || last.Status != SOCKERR || !strings.Contains(last.Desc, "panicked") {
		t.Errorf("last check: %+v, want a failed SOCKERR", last)
	}
	if got := panics.Count() - before; got != uint64(calls) {
		t.Errorf("%d panics counted, want %d", got, calls)
	}
	lines := logs.FilterMessage("panic in a health check")
	if lines.Len() != int(calls) {
		t.Fatalf("%d lines, want %d", lines.Len(), calls)
	}
	f := lines.All()[0].ContextMap()
	if f["backend"] != "b" || f["server"] != "s" || f["panic"] != "test panic in a checker" || !strings.Contains(f["stack"].(string), "panic_test.go") {
		t.Errorf("the line says %v", f)
	}
}

// panicTarget panics on every agent report.
type panicTarget struct{ reports atomic.Int32 }

func (p *panicTarget) AgentReport(AgentReport) {
	p.reports.Add(1)
	panic("test panic applying an agent report")
}

// A panic applying an agent's reply is counted and logged, and the agent
// is asked again at its next interval.
func TestPanickingAgentReportIsRecovered(t *testing.T) {
	ln := serveConns(t, func(c net.Conn) { io.WriteString(c, "75%\n") })
	core, logs := observer.New(zap.ErrorLevel)
	target := &panicTarget{}
	before := panics.Count()
	a := StartAgent(AgentSpec{Backend: "b", Server: "s", Addr: ln.Addr().String(), Inter: 20 * time.Millisecond, Timeout: time.Second},
		target, zap.New(core))
	deadline := time.Now().Add(5 * time.Second)
	for target.reports.Load() < 3 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	a.Stop()
	n := target.reports.Load()
	if n < 3 {
		t.Fatalf("the agent was asked %d times, want it asked again after a panic", n)
	}
	if got, lines := panics.Count()-before, logs.FilterMessage("panic in an agent check").Len(); got != uint64(n) || lines != int(n) {
		t.Errorf("%d panics counted and %d lines, want %d", got, lines, n)
	}
}
