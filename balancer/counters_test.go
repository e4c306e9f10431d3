package balancer

import "testing"

// A server counts a session from the Acquire, AcquireExcept or TryAcquire
// that assigned it to the Release that ends it, whichever of those took
// the slot, and a session turned away at maxconn counts nowhere.
func TestServerConnectionCounters(t *testing.T) {
	reg := NewRegistry()
	a, b := member(reg, "a", 1, false), member(reg, "b", 1, false)
	a.MaxConn = 1
	be := newTestBackend(t, rr(), a, b)
	first, r := be.Acquire(0, false)
	if r != Assigned {
		t.Fatal(r)
	}
	second, r := be.AcquireExcept(first)
	if r != Assigned || second == first {
		t.Fatalf("AcquireExcept(%d) = %d, %v", first, second, r)
	}
	st := []*Server{a.State, b.State}
	if st[first].CurConns() != 1 || st[second].CurConns() != 1 || st[0].TotalConns.Load() != 1 || st[1].TotalConns.Load() != 1 {
		t.Fatalf("two sessions: current %d/%d, total %d/%d; want 1/1 and 1/1",
			st[0].CurConns(), st[1].CurConns(), st[0].TotalConns.Load(), st[1].TotalConns.Load())
	}
	if be.TryAcquire(0) {
		t.Fatal("a took a second session past its maxconn of 1")
	}
	be.Release(first)
	be.Release(second)
	if !be.TryAcquire(0) {
		t.Fatal("a did not take a session once its slot was free")
	}
	be.Release(0)
	if st[0].CurConns() != 0 || st[1].CurConns() != 0 || st[0].TotalConns.Load() != 2 || st[1].TotalConns.Load() != 1 {
		t.Fatalf("after release: current %d/%d, total %d/%d; want 0/0 and 2/1",
			st[0].CurConns(), st[1].CurConns(), st[0].TotalConns.Load(), st[1].TotalConns.Load())
	}
}
