package cluster

import (
	"testing"
)

// Focused cases of the machine's rules; sim_test.go runs them all together
// under random schedules.

func testParams(self string) Params {
	return Params{
		Self: self, Peers: []string{"a", "b", "c"}, Witness: map[string]bool{},
		VIPs:  []VIPParams{{Name: "v", Prefer: "a"}},
		Lease: 40, Ping: 10, ARPCount: 2, ARPInterval: 4, ARPRefresh: 100,
		FenceBackoff: 20, FenceBackoffMax: 200,
	}
}

func lastPing(t *testing.T, acts []Action) SendPing {
	t.Helper()
	for i := len(acts) - 1; i >= 0; i-- {
		if p, ok := acts[i].(SendPing); ok {
			return p
		}
	}
	t.Fatal("no ping sent")
	return SendPing{}
}

func has[T Action](acts []Action) bool {
	for _, a := range acts {
		if _, ok := a.(T); ok {
			return true
		}
	}
	return false
}

// holding brings node "a" to holding "v": assigned at index 1, healthy,
// with a grant for a ping sent at tick 1.
func holding(t *testing.T) *Machine {
	m := NewMachine(testParams("a"))
	m.Step(Health{VIP: "v", Healthy: true})
	p := lastPing(t, m.Tick(1))
	m.Step(Committed{Index: 1, Entry: Entry{Op: OpAssign, VIP: "v", Node: "a", Epoch: 1}})
	acts := m.Step(GrantIn{From: "b", Seq: p.Seq, Index: 1})
	if !has[AddVIP](acts) {
		t.Fatalf("not holding after assignment and grant: %v", acts)
	}
	return m
}

func TestALateGrantExtendsNothing(t *testing.T) {
	m := NewMachine(testParams("a"))
	m.Step(Health{VIP: "v", Healthy: true})
	m.Step(Committed{Index: 1, Entry: Entry{Op: OpAssign, VIP: "v", Node: "a", Epoch: 1}})
	p := lastPing(t, m.Tick(1))
	// The process was paused; the grant for the ping sent at tick 1 is read
	// after the lease it could give has passed.
	m.Tick(1 + m.p.Lease + 1)
	acts := m.Step(GrantIn{From: "b", Seq: p.Seq, Index: 1})
	if m.LeaseValid() || has[AddVIP](acts) {
		t.Fatalf("a grant arriving %d ticks after its ping gave a lease: %v", m.p.Lease+1, acts)
	}
}

func TestAGrantCountsOnlyOnceTheTableIsAtItsIndex(t *testing.T) {
	m := NewMachine(testParams("a"))
	m.Step(Health{VIP: "v", Healthy: true})
	m.Step(Committed{Index: 1, Entry: Entry{Op: OpAssign, VIP: "v", Node: "a", Epoch: 1}})
	p := lastPing(t, m.Tick(1))
	acts := m.Step(GrantIn{From: "b", Seq: p.Seq, Index: 2})
	if m.LeaseValid() || has[AddVIP](acts) {
		t.Fatal("a grant at index 2 counted with the table at 1")
	}
	acts = m.Step(Committed{Index: 2, Entry: Entry{Op: OpExpired, Node: "a"}})
	if has[AddVIP](acts) {
		t.Fatal("added a VIP the entry at the grant's index took away")
	}
	if !m.LeaseValid() {
		t.Fatal("the grant did not count once the table reached its index")
	}
}

func TestRemovedBeforeReportedReleased(t *testing.T) {
	m := holding(t)
	acts := m.Step(Health{VIP: "v", Healthy: false})
	if !has[RemoveVIP](acts) {
		t.Fatalf("unhealthy, still held: %v", acts)
	}
	p := lastPing(t, m.Tick(m.Now()+m.p.Ping))
	if p.Status.Released["v"] != 1 {
		t.Fatalf("the ping after removal does not report epoch 1 released: %+v", p.Status)
	}
	// Healthy again, same epoch: never re-added.
	acts = m.Step(Health{VIP: "v", Healthy: true})
	if has[AddVIP](acts) {
		t.Fatal("re-added an epoch it had released")
	}
}

func TestARestartedNodeDoesNotHoldEarlierAssignments(t *testing.T) {
	p := testParams("a")
	p.StartIndex = 5 // the log had 5 entries when this process started
	m := NewMachine(p)
	m.Step(Health{VIP: "v", Healthy: true})
	m.Step(Committed{Index: 3, Entry: Entry{Op: OpAssign, VIP: "v", Node: "a", Epoch: 1}})
	ping := lastPing(t, m.Tick(1))
	acts := m.Step(GrantIn{From: "b", Seq: ping.Seq, Index: 3})
	if has[AddVIP](acts) {
		t.Fatal("held an assignment from before the restart")
	}
	ping = lastPing(t, m.Tick(1+m.p.Ping))
	if ping.Status.Released["v"] != 1 {
		t.Fatalf("did not report the old assignment released: %+v", ping.Status)
	}
	m.Step(Committed{Index: 6, Entry: Entry{Op: OpRelease, VIP: "v", Node: "a", Epoch: 1}})
	acts = m.Step(Committed{Index: 7, Entry: Entry{Op: OpAssign, VIP: "v", Node: "a", Epoch: 2}})
	if !has[AddVIP](acts) {
		t.Fatal("did not hold a new assignment made after the restart")
	}
}

func TestLeaderNeverMovesAHeldVIPWithoutFenceOrRelease(t *testing.T) {
	m := NewMachine(testParams("b"))
	m.Step(Leadership{Leader: true})
	m.Step(Leadership{Leader: true, Ready: true})
	m.Step(Health{VIP: "v", Healthy: true})
	m.Step(Committed{Index: 1, Entry: Entry{Op: OpAssign, VIP: "v", Node: "a", Epoch: 1}})
	var fenced bool
	for now := int64(1); now < 10*m.p.Lease; now++ {
		for _, a := range m.Tick(now) {
			switch a := a.(type) {
			case Propose:
				if a.Entry.Op == OpAssign || a.Entry.Op == OpExpired || a.Entry.Op == OpRelease {
					t.Fatalf("tick %d: proposed %s while a was silent and not fenced", now, a.Entry)
				}
			case Fence:
				if a.Node != "a" {
					t.Fatalf("fenced %s", a.Node)
				}
				fenced = true
				m.Step(FenceDone{Node: "a", OK: false, Detail: "exit 1"})
			}
		}
	}
	if !fenced {
		t.Fatal("a silent holder was never fenced")
	}
	if m.Fencing()["a"] < 2 {
		t.Fatalf("failed fencing was not retried: %v", m.Fencing())
	}
}

// A new leader answers the pings that reached it before it was ready, so a
// holder's lease need not outlast the election and a whole ping interval.
func TestNewLeaderGrantsThePingsItGotDuringTheElection(t *testing.T) {
	m := NewMachine(testParams("b"))
	m.Tick(1)
	m.Step(PingIn{From: "a", Seq: 7})
	m.Step(PingIn{From: "a", Seq: 8})
	m.Tick(2)
	m.Step(PingIn{From: "c", Seq: 3})
	if acts := m.Step(Leadership{Leader: true}); has[SendGrant](acts) {
		t.Fatal("granted before the barrier said the table is current")
	}
	acts := m.Step(Leadership{Leader: true, Ready: true})
	got := map[string]uint64{}
	for _, a := range acts {
		if g, ok := a.(SendGrant); ok {
			got[g.To] = g.Seq
		}
	}
	if got["a"] != 8 || got["c"] != 3 || len(got) != 2 {
		t.Fatalf("grants on becoming ready: %v, want a:8 c:3", got)
	}

	// A voter not heard within a ping interval gets nothing: its latest
	// ping is one its own lease has already counted past.
	m = NewMachine(testParams("b"))
	m.Tick(1)
	m.Step(PingIn{From: "a", Seq: 1})
	m.Tick(1 + m.p.Ping + 1)
	m.Step(Leadership{Leader: true})
	if acts := m.Step(Leadership{Leader: true, Ready: true}); has[SendGrant](acts) {
		t.Fatal("granted a ping older than a ping interval")
	}
}
