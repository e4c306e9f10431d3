package balancer

import (
	"encoding/json"
	"testing"
	"time"
)

// What one process counted reaches the next: read, encoded, decoded and
// added, then only what was counted since is added again.
func TestCountersCarry(t *testing.T) {
	var old, next Counters
	old.TotalConns.Add(10)
	old.BytesOut.Add(1 << 40)
	old.HTTPStatus[2].Add(7)
	old.MaxConns.Note(5)
	first := old.Values()
	b, err := json.Marshal(first)
	if err != nil {
		t.Fatal(err)
	}
	var got CounterValues
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	next.TotalConns.Add(3) // the new process's own
	next.MaxConns.Note(2)
	next.Add(got)
	old.TotalConns.Add(4) // while the old one drains
	old.HTTPStatus[2].Add(1)
	next.Add(old.Values().Since(first))
	if n := next.TotalConns.Load(); n != 17 {
		t.Errorf("stot %d, want 10+3+4", n)
	}
	if n := next.BytesOut.Load(); n != 1<<40 {
		t.Errorf("bout %d", n)
	}
	if n := next.HTTPStatus[2].Load(); n != 8 {
		t.Errorf("hrsp_2xx %d, want 8", n)
	}
	if n := next.MaxConns.Load(); n != 5 {
		t.Errorf("smax %d, want the higher 5", n)
	}
	var cleared CounterValues
	if d := cleared.Since(first); d.TotalConns != 0 || d.HTTPStatus[2] != 0 {
		t.Errorf("a delta across a clear is %+v, want no negative wrap", d)
	}
}

func TestServerValuesCarry(t *testing.T) {
	r := NewRegistry()
	old := r.Server("be", "s1")
	old.TotalConns.Add(9)
	old.ChecksDown.Add(2)
	old.Timings.Observe(0, time.Millisecond, 30*time.Millisecond, 2*time.Second)
	old.SetHealthy(false)
	old.SetHealthy(true) // some downtime before the last change
	v := old.Values()
	next := NewRegistry().Server("be", "s1")
	next.AddValues(v)
	if next.TotalConns.Load() != 9 || next.ChecksDown.Load() != 3 || next.Timings.Count.Load() != 1 {
		t.Errorf("stot %d chkdown %d timed %d", next.TotalConns.Load(), next.ChecksDown.Load(), next.Timings.Count.Load())
	}
	if h := next.Timings.Read(TimeTotal); h.Count != 1 || h.Max != 2*time.Second || h.Cumulative[6] != 1 || h.Cumulative[5] != 0 {
		t.Errorf("total-time histogram %+v", h)
	}
	if next.Downtime() != old.Downtime() {
		t.Errorf("downtime %v, want %v", next.Downtime(), old.Downtime())
	}
}

// A restored runtime weight and admin state survive the configuration
// applied next unless it changed them, as HAProxy's server-state rules
// say.
func TestRestoredStateMeetsConfiguration(t *testing.T) {
	r := NewRegistry()
	s := r.Server("be", "kept")
	s.Restore(Restored{Up: false, Admin: AdminDrain, ConfigWeight: 10, UserWeight: 3, LastChange: time.Now().Add(-time.Minute)})
	s.SetConfigWeight(10)
	s.SetConfigAdmin(false)
	if s.Weight(10) != 3 || s.Admin() != AdminDrain || s.Up() {
		t.Errorf("weight %d admin %v up %v, want 3, DRAIN, DOWN", s.Weight(10), s.Admin(), s.Up())
	}
	if d := time.Since(s.LastChange()); d < 59*time.Second {
		t.Errorf("last change %v ago, want a minute", d)
	}
	c := r.Server("be", "changed")
	c.Restore(Restored{Up: true, Admin: AdminMaint, ConfigDisabled: true, ConfigWeight: 10, UserWeight: 3})
	c.SetConfigWeight(20)
	c.SetConfigAdmin(false)
	if c.Weight(20) != 20 || c.Admin() != AdminReady {
		t.Errorf("weight %d admin %v, want the file's 20 and READY", c.Weight(20), c.Admin())
	}
	c.Restore(Restored{Admin: AdminMaint})
	if c.Admin() != AdminReady || !c.Up() {
		t.Error("Restore changed a server a configuration uses")
	}
}
