package balancer

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/halo-lb/halo/config"
)

func newTestBackend(t testing.TB, spec Spec, members ...Member) *Backend {
	t.Helper()
	b, err := NewBackend("be", spec, members)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

func rr() Spec { return Spec{Algorithm: "roundrobin"} }

func member(reg *Registry, name string, weight int, backup bool) Member {
	return Member{State: reg.Server("be", name), Weight: weight, Backup: backup}
}

// pick acquires a server for key and releases it at once, as a session
// that ends before the next one starts.
func pick(b *Backend, key uint64) int {
	i, r := b.Acquire(key, true)
	if r == Assigned {
		b.Release(i)
	}
	return i
}

func counts(b *Backend, n int) map[int]int {
	c := map[int]int{}
	for range n {
		c[pick(b, 0)]++
	}
	return c
}

func TestRoundRobinWeights(t *testing.T) {
	reg := NewRegistry()
	b := newTestBackend(t, rr(), member(reg, "a", 1, false), member(reg, "b", 3, false), member(reg, "c", 2, false))
	got := counts(b, 600)
	want := map[int]int{0: 100, 1: 300, 2: 200}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Fatalf("picks by member = %v, want %v", got, want)
	}
}

func TestRoundRobinInterleaves(t *testing.T) {
	reg := NewRegistry()
	b := newTestBackend(t, rr(), member(reg, "a", 1, false), member(reg, "b", 1, false), member(reg, "c", 1, false))
	for i := range 9 {
		if got := pick(b, 0); got != i%3 {
			t.Fatalf("pick %d = member %d, want %d", i, got, i%3)
		}
	}
	reg2 := NewRegistry()
	w := newTestBackend(t, rr(), member(reg2, "a", 5, false), member(reg2, "b", 3, false))
	var seq []byte
	for range 8 {
		seq = append(seq, "ab"[pick(w, 0)])
	}
	if string(seq) != "ababaaba" {
		t.Fatalf("weights 5 and 3 give %s, want ababaaba", seq)
	}
}

// TestRoundRobinSmooth checks the stated bounds over many random weight
// sets: after any number t of picks, every server's count is within one of
// its share t·w/total, and no server gets a run of picks longer than
// ceil(w/(total−w)), the run its share makes unavoidable (1 for a server
// with less than half the weight), also across the end of a cycle.
func TestRoundRobinSmooth(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	worstDev := 0.0
	for trial := range 300 {
		reg := NewRegistry()
		n := 2 + rng.IntN(7)
		if trial%3 == 0 {
			n = 2 + rng.IntN(2) // two or three servers, where runs are long
		}
		var ms []Member
		for k := range n {
			ms = append(ms, member(reg, fmt.Sprint(trial, "-", k), 1+rng.IntN(MaxWeight), false))
		}
		b := newTestBackend(t, rr(), ms...)
		p := b.pool.Load()
		total := 0
		for _, w := range p.weight {
			total += w
		}
		cycle := len(p.rotation.seq)
		got := make([]int, n)
		run, prev := 0, -1
		for step := 1; step <= 2*cycle; step++ {
			i := pick(b, 0)
			got[i]++
			if i == prev {
				run++
			} else {
				run, prev = 1, i
			}
			w := p.weight[i]
			if limit := int(math.Ceil(float64(w) / float64(total-w))); run > limit {
				t.Fatalf("weights %v: member %d (weight %d) picked %d times in a row, bound %d", p.weight, i, w, run, limit)
			}
			for k := range n {
				dev := math.Abs(float64(got[k]) - float64(step)*float64(p.weight[k])/float64(total))
				worstDev = max(worstDev, dev)
				if dev >= 1 {
					t.Fatalf("weights %v: after %d picks member %d has %d, share %.2f", p.weight, step, k, got[k], float64(step)*float64(p.weight[k])/float64(total))
				}
			}
		}
	}
	t.Logf("largest deviation from the exact share after any prefix: %.3f picks", worstDev)
}

func TestBackupOnlyWhenNoPrimary(t *testing.T) {
	reg := NewRegistry()
	b := newTestBackend(t, rr(),
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
	if got, r := b.Acquire(0, false); got != -1 || r != NoServer {
		t.Fatalf("nothing usable, Acquire = %d, %v; want -1, NoServer", got, r)
	}
	reg.Server("be", "p1").SetHealthy(true)
	if got := counts(b, 10); got[0] != 10 {
		t.Fatalf("p1 back, picks = %v, want all on p1", got)
	}
}

func TestAllBackups(t *testing.T) {
	reg := NewRegistry()
	b := newTestBackend(t, Spec{Algorithm: "roundrobin", AllBackups: true},
		member(reg, "p", 1, false), member(reg, "b1", 1, true), member(reg, "b2", 3, true))
	reg.Server("be", "p").SetHealthy(false)
	if got := counts(b, 100); got[1] != 25 || got[2] != 75 {
		t.Fatalf("allbackups picks = %v, want 25/75 over both backups by weight", got)
	}
}

func TestDrainAndMaintTakeNoNewSessions(t *testing.T) {
	reg := NewRegistry()
	for _, alg := range []string{"roundrobin", "leastconn", "random", "first", "source"} {
		t.Run(alg, func(t *testing.T) {
			b := newTestBackend(t, Spec{Algorithm: config.Algorithm(alg)}, member(reg, alg+"a", 1, false), member(reg, alg+"b", 1, false), member(reg, alg+"c", 1, false))
			reg.Server("be", alg+"a").SetAdmin(AdminDrain)
			reg.Server("be", alg+"c").SetAdmin(AdminMaint)
			for k := range 200 {
				if got := pick(b, uint64(k)*0x9e3779b97f4a7c15); got != 1 {
					t.Fatalf("pick = %d, want only member 1 while 0 drains and 2 is in maintenance", got)
				}
			}
			reg.Server("be", alg+"a").SetAdmin(AdminReady)
			if got := counts(b, 300); got[0] == 0 || got[2] != 0 {
				t.Fatalf("a ready again, c still in maintenance: picks %v", got)
			}
		})
	}
}

func TestClosedBackendIgnoresChanges(t *testing.T) {
	reg := NewRegistry()
	b := newTestBackend(t, rr(), member(reg, "a", 1, false))
	b.Close()
	reg.Server("be", "a").SetHealthy(false)
	if pick(b, 0) != 0 {
		t.Fatal("a closed backend was rebuilt by a state change")
	}
}

func TestAcquireExcept(t *testing.T) {
	reg := NewRegistry()
	b := newTestBackend(t, rr(), member(reg, "a", 10, false), member(reg, "b", 1, false))
	for range 50 {
		got, r := b.AcquireExcept(0)
		if got != 1 || r != Assigned {
			t.Fatalf("AcquireExcept(0) = %d, %v; want 1", got, r)
		}
		b.Release(got)
	}
	reg.Server("be", "b").SetHealthy(false)
	served := reg.Server("be", "a").Served()
	if got, _ := b.AcquireExcept(0); got != 0 {
		t.Fatalf("only a usable: AcquireExcept(0) = %d, want 0", got)
	}
	if n := reg.Server("be", "a").Served(); n != served {
		t.Fatalf("falling back to a took another slot: served %d, was %d", n, served)
	}
	// The excluded server left the pool (a passive check took it DOWN on
	// the error that made the caller retry): the one left is picked.
	reg.Server("be", "b").SetHealthy(true)
	reg.Server("be", "a").SetHealthy(false)
	if got, r := b.AcquireExcept(0); got != 1 || r != Assigned {
		t.Fatalf("a left the pool: AcquireExcept(0) = %d, %v; want 1", got, r)
	}
}

// A lag drain takes the server out of the pool without touching its admin
// state, and gives it back.
func TestLagDrain(t *testing.T) {
	reg := NewRegistry()
	b := newTestBackend(t, rr(), member(reg, "a", 1, false), member(reg, "b", 1, false))
	a := reg.Server("be", "a")
	a.SetLagDrain(true)
	for range 10 {
		if got := pick(b, 0); got != 1 {
			t.Fatalf("a drained for lag was picked")
		}
	}
	if a.Admin() != AdminReady || !a.Up() {
		t.Fatalf("lag drain changed admin %v / up %v", a.Admin(), a.Up())
	}
	a.SetLagDrain(false)
	seen := map[int]bool{}
	for range 10 {
		seen[pick(b, 0)] = true
	}
	if !seen[0] {
		t.Fatal("a not picked after the lag drain ended")
	}
}

func TestMaxConn(t *testing.T) {
	for _, alg := range []string{"roundrobin", "static-rr", "leastconn", "first", "random"} {
		t.Run(alg, func(t *testing.T) {
			reg := NewRegistry()
			ms := []Member{member(reg, "a", 1, false), member(reg, "b", 2, false)}
			ms[0].MaxConn, ms[1].MaxConn = 2, 3
			b := newTestBackend(t, Spec{Algorithm: config.Algorithm(alg)}, ms...)
			got := map[int]int{}
			for range 5 {
				i, r := b.Acquire(0, false)
				if r != Assigned {
					t.Fatalf("Acquire = %d, %v before the servers are full", i, r)
				}
				got[i]++
			}
			if got[0] != 2 || got[1] != 3 {
				t.Fatalf("served = %v, want each server at its maxconn", got)
			}
			if i, r := b.Acquire(0, false); r != BackendFull {
				t.Fatalf("every server full: Acquire = %d, %v; want BackendFull", i, r)
			}
			b.Release(1)
			if i, r := b.Acquire(0, false); i != 1 || r != Assigned {
				t.Fatalf("after a release on b: Acquire = %d, %v; want 1", i, r)
			}
		})
	}
}

func TestHashedServerFull(t *testing.T) {
	reg := NewRegistry()
	ms := []Member{member(reg, "a", 1, false), member(reg, "b", 1, false)}
	ms[0].MaxConn, ms[1].MaxConn = 1, 1
	b := newTestBackend(t, Spec{Algorithm: "source"}, ms...)
	key := uint64(12345)
	first, r := b.Acquire(key, true)
	if r != Assigned {
		t.Fatalf("Acquire = %v", r)
	}
	if i, r := b.Acquire(key, true); i != first || r != ServerFull {
		t.Fatalf("same key, its server full: Acquire = %d, %v; want %d, ServerFull", i, r, first)
	}
	// Without a key the rotation may use the other server.
	if i, r := b.Acquire(0, false); i == first || r != Assigned {
		t.Fatalf("no key: Acquire = %d, %v; want the other server", i, r)
	}
}

type namedSpec struct {
	name string
	Spec
}

func allSpecs() []namedSpec {
	return []namedSpec{
		{"roundrobin", Spec{Algorithm: "roundrobin"}},
		{"static-rr", Spec{Algorithm: "static-rr"}},
		{"leastconn", Spec{Algorithm: "leastconn"}},
		{"first", Spec{Algorithm: "first"}},
		{"random", Spec{Algorithm: "random", Draws: 2}},
		{"hash-map-based", Spec{Algorithm: "source"}},
		{"hash-consistent", Spec{Algorithm: "source", Consistent: true}},
		{"hash-bounded", Spec{Algorithm: "source", Consistent: true, BalanceFactor: 125}},
	}
}

func TestAcquireAllocatesNothing(t *testing.T) {
	for _, spec := range allSpecs() {
		t.Run(spec.name, func(t *testing.T) {
			reg := NewRegistry()
			var ms []Member
			for k := range 100 {
				m := member(reg, fmt.Sprint(k), 1+k%5, k >= 98)
				m.MaxConn = 1000
				ms = append(ms, m)
			}
			b := newTestBackend(t, spec.Spec, ms...)
			key := uint64(1)
			n := testing.AllocsPerRun(2000, func() {
				key = key*6364136223846793005 + 1442695040888963407
				i, _ := b.Acquire(key, true)
				if j, _ := b.AcquireExcept(i); j != i {
					b.Release(j)
				}
				b.Release(i)
			})
			if n != 0 {
				t.Fatalf("Acquire/Release allocate %.1f times per call, want 0", n)
			}
		})
	}
}

// BenchmarkPick measures Acquire plus Release (a pick and its bookkeeping)
// for every policy at 3, 100 and 1,000 servers, from parallel goroutines.
func BenchmarkPick(b *testing.B) {
	for _, spec := range allSpecs() {
		for _, n := range []int{3, 100, 1000} {
			b.Run(fmt.Sprintf("%s/%d", spec.name, n), func(b *testing.B) {
				reg := NewRegistry()
				var ms []Member
				for k := range n {
					m := member(reg, fmt.Sprint(k), 1+k%4, false)
					if spec.Algorithm == "first" {
						m.MaxConn = 10_000
					}
					ms = append(ms, m)
				}
				be := newTestBackend(b, spec.Spec, ms...)
				b.ReportAllocs()
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					key := rand.Uint64()
					for pb.Next() {
						key = key*6364136223846793005 + 1442695040888963407
						if i, r := be.Acquire(key, true); r == Assigned {
							be.Release(i)
						}
					}
				})
			})
		}
	}
}

// BenchmarkRebuild measures a pool rebuild (a health edge, a weight change,
// a slow-start step) for 1,000 servers, of equal weights or of weights 1 to
// 256: the cold path that precomputes what Pick needs.
func BenchmarkRebuild(b *testing.B) {
	for _, alg := range []string{"roundrobin", "roundrobin-mixed", "leastconn", "random", "source"} {
		b.Run(alg, func(b *testing.B) {
			reg := NewRegistry()
			var ms []Member
			for k := range 1000 {
				w := 1
				if alg == "roundrobin-mixed" {
					w = 1 + k%256
				}
				ms = append(ms, member(reg, fmt.Sprint(k), w, false))
			}
			name, _, _ := strings.Cut(alg, "-")
			be := newTestBackend(b, Spec{Algorithm: config.Algorithm(name), Consistent: name == "source"}, ms...)
			b.ReportAllocs()
			for b.Loop() {
				be.Rebuild()
			}
		})
	}
}

// TryAcquireDirect takes a slot on a server outside the pool (draining,
// or DOWN: persistence decides which it accepts) within its maxconn, a
// runtime maxconn replacing the configured one; TryAcquire does not.
func TestTryAcquireDirect(t *testing.T) {
	reg := NewRegistry()
	a := member(reg, "a", 1, false)
	a.MaxConn = 2
	b := newTestBackend(t, rr(), a, member(reg, "b", 1, false))
	reg.Server("be", "a").SetAdmin(AdminDrain)
	if b.TryAcquire(0) {
		t.Fatal("TryAcquire took a slot on a draining server")
	}
	for range 2 {
		if !b.TryAcquireDirect(0) {
			t.Fatal("TryAcquireDirect refused a draining server with free slots")
		}
	}
	if b.TryAcquireDirect(0) {
		t.Fatal("TryAcquireDirect passed maxconn 2")
	}
	reg.Server("be", "a").SetMaxConn(3)
	if !b.TryAcquireDirect(0) {
		t.Fatal("TryAcquireDirect ignored a runtime maxconn of 3")
	}
	reg.Server("be", "b").SetHealthy(false)
	if !b.TryAcquireDirect(1) || b.TryAcquireDirect(-1) || b.TryAcquireDirect(2) {
		t.Fatal("TryAcquireDirect: a DOWN server without maxconn takes a slot; out-of-range members none")
	}
	for range 3 {
		b.Release(0)
	}
	b.Release(1)
	if n := reg.Server("be", "a").Served() + reg.Server("be", "b").Served(); n != 0 {
		t.Fatalf("%d sessions left after releasing all", n)
	}
}
