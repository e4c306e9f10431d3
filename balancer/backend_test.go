package balancer

import (
	"testing"
)

func newTestBackend(t *testing.T, reg *Registry, specs ...Member) *Backend {
	t.Helper()
	b, err := NewBackend("be", "roundrobin", specs, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

func member(reg *Registry, name string, weight int, backup bool) Member {
	return Member{State: reg.Server("be", name), Weight: weight, Backup: backup}
}

func counts(b *Backend, n int) map[int]int {
	c := map[int]int{}
	for range n {
		c[b.Pick(0)]++
	}
	return c
}

func TestRoundRobinWeights(t *testing.T) {
	reg := NewRegistry()
	b := newTestBackend(t, reg, member(reg, "a", 1, false), member(reg, "b", 3, false), member(reg, "c", 2, false))
	got := counts(b, 600)
	want := map[int]int{0: 100, 1: 300, 2: 200}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Fatalf("picks by member = %v, want %v", got, want)
	}
}

func TestRoundRobinInterleaves(t *testing.T) {
	reg := NewRegistry()
	b := newTestBackend(t, reg, member(reg, "a", 1, false), member(reg, "b", 1, false), member(reg, "c", 1, false))
	for i := range 9 {
		if got := b.Pick(0); got != i%3 {
			t.Fatalf("pick %d = member %d, want %d", i, got, i%3)
		}
	}
	// Weighted: the heavier server never takes more than two turns in a row.
	reg2 := NewRegistry()
	w := newTestBackend(t, reg2, member(reg2, "a", 5, false), member(reg2, "b", 3, false))
	run, prev := 0, -1
	for range 80 {
		p := w.Pick(0)
		if p == prev {
			run++
		} else {
			run = 1
		}
		prev = p
		if run > 2 {
			t.Fatalf("member %d picked %d times in a row", p, run)
		}
	}
}

func TestBackupOnlyWhenNoPrimary(t *testing.T) {
	reg := NewRegistry()
	b := newTestBackend(t, reg,
		member(reg, "p1", 1, false), member(reg, "p2", 1, false),
		member(reg, "b1", 1, true), member(reg, "b2", 1, true))
	if got := counts(b, 100); got[2]+got[3] != 0 {
		t.Fatalf("backups used while primaries are up: %v", got)
	}
	reg.Server("be", "p1").SetHealthy(false)
	if got := counts(b, 100); got[1] != 100 {
		t.Fatalf("with p1 down, picks = %v, want all on p2", got)
	}
	reg.Server("be", "p2").SetAdmin(AdminMaint)
	if got := counts(b, 100); got[2] != 100 {
		t.Fatalf("with every primary out, picks = %v, want all on the first backup", got)
	}
	reg.Server("be", "b1").SetHealthy(false)
	if got := counts(b, 100); got[3] != 100 {
		t.Fatalf("with b1 down too, picks = %v, want all on b2", got)
	}
	reg.Server("be", "b2").SetHealthy(false)
	if got := b.Pick(0); got != -1 {
		t.Fatalf("nothing usable, Pick = %d, want -1", got)
	}
	reg.Server("be", "p1").SetHealthy(true)
	if got := counts(b, 10); got[0] != 10 {
		t.Fatalf("p1 back, picks = %v, want all on p1", got)
	}
}

func TestAllBackups(t *testing.T) {
	reg := NewRegistry()
	b, err := NewBackend("be", "roundrobin", []Member{member(reg, "p", 1, false), member(reg, "b1", 1, true), member(reg, "b2", 1, true)}, true)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	reg.Server("be", "p").SetHealthy(false)
	if got := counts(b, 100); got[1] != 50 || got[2] != 50 {
		t.Fatalf("allbackups picks = %v, want 50/50 over both backups", got)
	}
}

func TestClosedBackendIgnoresChanges(t *testing.T) {
	reg := NewRegistry()
	b := newTestBackend(t, reg, member(reg, "a", 1, false))
	b.Close()
	reg.Server("be", "a").SetHealthy(false)
	if b.Pick(0) != 0 {
		t.Fatal("a closed backend was rebuilt by a state change")
	}
}

func TestPickExcept(t *testing.T) {
	reg := NewRegistry()
	b := newTestBackend(t, reg, member(reg, "a", 10, false), member(reg, "b", 1, false))
	for range 50 {
		if got := b.PickExcept(0, 0); got != 1 {
			t.Fatalf("PickExcept(0) = %d, want 1", got)
		}
	}
	reg.Server("be", "b").SetHealthy(false)
	if got := b.PickExcept(0, 0); got != 0 {
		t.Fatalf("only a usable: PickExcept(0) = %d, want 0", got)
	}
}

func TestPickAllocatesNothing(t *testing.T) {
	reg := NewRegistry()
	b := newTestBackend(t, reg, member(reg, "a", 3, false), member(reg, "b", 2, false), member(reg, "c", 1, true))
	if n := testing.AllocsPerRun(1000, func() { b.Pick(0); b.PickExcept(0, 1) }); n != 0 {
		t.Fatalf("Pick allocates %.1f times per call, want 0", n)
	}
}

func BenchmarkPick(b *testing.B) {
	reg := NewRegistry()
	var ms []Member
	for _, n := range []string{"a", "b", "c", "d", "e"} {
		ms = append(ms, Member{State: reg.Server("be", n), Weight: 1 + len(ms)})
	}
	be, _ := NewBackend("be", "roundrobin", ms, false)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			be.Pick(0)
		}
	})
}
