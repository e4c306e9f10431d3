package health

import (
	"testing"
	"time"

	"go.uber.org/zap"
)

func TestCarryHealth(t *testing.T) {
	for _, c := range []struct {
		health, oldRise, oldFall, rise, fall, want int
	}{
		{4, 2, 3, 2, 3, 4}, // fully UP stays fully UP
		{3, 2, 3, 2, 3, 3}, // one failure seen, same settings: unchanged
		{3, 2, 3, 5, 5, 8}, // one failure seen: top 9 minus one
		{3, 2, 3, 2, 1, 2}, // fall 1 leaves no room: UP at rise, the next failure takes it DOWN
		{2, 2, 3, 3, 2, 3}, // one failure from DOWN stays UP
		{0, 2, 3, 2, 3, 0}, // DOWN stays DOWN
		{1, 2, 3, 4, 3, 1}, // one success seen of a DOWN server is kept
		{2, 3, 3, 2, 3, 1}, // two successes of a DOWN server, but rise 2 would make it UP: capped at 1
	} {
		if got := carryHealth(c.health, c.oldRise, c.oldFall, c.rise, c.fall); got != c.want {
			t.Errorf("carryHealth(%d, rise %d fall %d → rise %d fall %d) = %d, want %d", c.health, c.oldRise, c.oldFall, c.rise, c.fall, got, c.want)
		}
		wasUp := c.health >= c.oldRise
		if isUp := carryHealth(c.health, c.oldRise, c.oldFall, c.rise, c.fall) >= c.rise; isUp != wasUp {
			t.Errorf("carryHealth(%d, rise %d fall %d → rise %d fall %d) changed UP=%v to %v", c.health, c.oldRise, c.oldFall, c.rise, c.fall, wasUp, isUp)
		}
	}
}

// A resumed monitor continues from the counter, result and pause a
// previous process left: a server resumed DOWN with an empty counter
// needs rise good checks, and reports only that edge.
func TestStartResumed(t *testing.T) {
	ln := listen(t)
	e := &edges{ch: make(chan bool, 10)}
	last := &Checked{Result: Result{Status: L4CON}, At: time.Now().Add(-time.Minute)}
	started := time.Now()
	m := StartResumed(Spec{Addr: ln.Addr().String(), Inter: 20 * time.Millisecond, Timeout: time.Second, Rise: 2, Fall: 3},
		Resumed{Health: 0, Last: last}, TCPChecker{}, e, zap.NewNop())
	defer m.Stop()
	// The first probe may land before this read (inter 20 ms, a busy
	// machine): then the result is that probe's, dated after the start.
	if got, ok := m.Last(); !ok || (got.Status != L4CON && got.At.Before(started)) {
		t.Errorf("last result %q of %v before any probe, want the resumed L4CON", got.Status, got.At)
	}
	select {
	case up := <-e.ch:
		if !up {
			t.Fatal("a DOWN edge from a monitor resumed DOWN")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the resumed server never rose")
	}
	if p := m.Progress(); p.Health < 2 {
		t.Errorf("counter %d after rising, want at least rise", p.Health)
	}
	paused := StartResumed(Spec{Addr: ln.Addr().String(), Inter: time.Hour, Timeout: time.Second, Rise: 2, Fall: 3},
		Resumed{Health: 99, Paused: true}, TCPChecker{}, e, zap.NewNop())
	defer paused.Stop()
	if p := paused.Progress(); !p.Paused || p.Health != 4 {
		t.Errorf("progress %+v, want paused with the counter held at 4", p)
	}
}
