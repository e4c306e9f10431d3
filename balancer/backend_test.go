package balancer

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

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

func TestLeastConnTakesTurnsAmongEquals(t *testing.T) {
	reg := NewRegistry()
	b := newTestBackend(t, Spec{Algorithm: "leastconn"}, member(reg, "a", 1, false), member(reg, "b", 1, false), member(reg, "c", 1, false))
	seen := map[int]int{}
	for range 30 {
		seen[pick(b, 0)]++
	}
	if seen[0] != 10 || seen[1] != 10 || seen[2] != 10 {
		t.Fatalf("idle leastconn picks = %v, want 10 each", seen)
	}
}

func TestLeastConnFollowsWeights(t *testing.T) {
	reg := NewRegistry()
	b := newTestBackend(t, Spec{Algorithm: "leastconn"}, member(reg, "a", 1, false), member(reg, "b", 3, false))
	held := map[int]int{}
	for range 400 {
		i, _ := b.Acquire(0, false)
		held[i]++
	}
	if held[0] != 100 || held[1] != 300 {
		t.Fatalf("400 held sessions = %v, want 100/300 by weight", held)
	}
}

func TestFirst(t *testing.T) {
	reg := NewRegistry()
	ms := []Member{member(reg, "a", 1, false), member(reg, "b", 1, false), member(reg, "c", 1, false)}
	for k := range ms {
		ms[k].MaxConn = 2
	}
	b := newTestBackend(t, Spec{Algorithm: "first"}, ms...)
	var got []int
	for range 5 {
		i, _ := b.Acquire(0, false)
		got = append(got, i)
	}
	if fmt.Sprint(got) != "[0 0 1 1 2]" {
		t.Fatalf("first fills %v, want [0 0 1 1 2]", got)
	}
	b.Release(0)
	if i, _ := b.Acquire(0, false); i != 0 {
		t.Fatalf("after a release on a: %d, want 0 (the lowest with a free slot)", i)
	}
	reg.Server("be", "a").SetHealthy(false)
	b.Release(1)
	if i, _ := b.Acquire(0, false); i != 1 {
		t.Fatalf("a down: %d, want 1", i)
	}
}

// TestLeastConnBeatsRoundRobinOnSkewedDurations simulates a stream of
// requests, one per tick, of which one in ten lasts 60 ticks instead of 1,
// and compares the busiest server's peak load under each algorithm.
func TestLeastConnBeatsRoundRobinOnSkewedDurations(t *testing.T) {
	peak := func(alg string) (int64, float64) {
		reg := NewRegistry()
		var ms []Member
		for k := range 5 {
			ms = append(ms, member(reg, fmt.Sprint(alg, k), 1, false))
		}
		b := newTestBackend(t, Spec{Algorithm: config.Algorithm(alg)}, ms...)
		rng := rand.New(rand.NewPCG(7, 7))
		ends := map[int][]int{} // tick → members whose session ends then
		var worst int64
		var sumMax float64
		const ticks = 20_000
		for tick := range ticks {
			for _, i := range ends[tick] {
				b.Release(i)
			}
			delete(ends, tick)
			i, _ := b.Acquire(0, false)
			d := 1
			if rng.IntN(10) == 0 {
				d = 60
			}
			ends[tick+d] = append(ends[tick+d], i)
			var m int64
			for _, mb := range ms {
				m = max(m, mb.State.Served())
			}
			worst = max(worst, m)
			sumMax += float64(m)
		}
		return worst, sumMax / ticks
	}
	lcPeak, lcMean := peak("leastconn")
	rrPeak, rrMean := peak("roundrobin")
	t.Logf("busiest server: leastconn peak %d, mean %.2f; roundrobin peak %d, mean %.2f", lcPeak, lcMean, rrPeak, rrMean)
	if lcMean >= rrMean || lcPeak >= rrPeak {
		t.Fatalf("leastconn (peak %d, mean %.2f) does not beat roundrobin (peak %d, mean %.2f)", lcPeak, lcMean, rrPeak, rrMean)
	}
}

// TestRandomTwoChoicesLowerMaxLoad places 100 sessions per server on 100
// servers and holds them: the busiest server under random(2) carries less
// than under random(1).
func TestRandomTwoChoicesLowerMaxLoad(t *testing.T) {
	maxLoad := func(draws int) int64 {
		reg := NewRegistry()
		var ms []Member
		for k := range 100 {
			ms = append(ms, member(reg, fmt.Sprint(draws, "-", k), 1, false))
		}
		b := newTestBackend(t, Spec{Algorithm: "random", Draws: draws}, ms...)
		for range 100 * len(ms) {
			b.Acquire(0, false)
		}
		var m int64
		for _, mb := range ms {
			m = max(m, mb.State.Served())
		}
		return m
	}
	one, two := maxLoad(1), maxLoad(2)
	t.Logf("100 servers, 10,000 held sessions (mean 100): busiest has %d with random(1), %d with random(2)", one, two)
	if two >= one || two > 105 {
		t.Fatalf("random(2) busiest %d, random(1) busiest %d", two, one)
	}
}

// TestRandomFollowsWeights: over 200,000 independent picks, random(1)
// gives each server its weight share within 1 percentage point.
func TestRandomFollowsWeights(t *testing.T) {
	reg := NewRegistry()
	weights := []int{1, 2, 5, 12, 30}
	var ms []Member
	total := 0
	for k, w := range weights {
		ms = append(ms, member(reg, fmt.Sprint(k), w, false))
		total += w
	}
	b := newTestBackend(t, Spec{Algorithm: "random", Draws: 1}, ms...)
	const n = 200_000
	got := counts(b, n)
	for k, w := range weights {
		share, want := float64(got[k])/n, float64(w)/float64(total)
		if math.Abs(share-want) > 0.01 {
			t.Fatalf("server %d (weight %d): share %.4f, want %.4f ± 0.01", k, w, share, want)
		}
	}
}

func TestSetWeight(t *testing.T) {
	reg := NewRegistry()
	a, c := member(reg, "a", 10, false), member(reg, "c", 10, false)
	a.State.SetConfigWeight(10)
	c.State.SetConfigWeight(10)
	b := newTestBackend(t, rr(), a, c)
	if err := b.SetWeight("a", 50, true); err != nil {
		t.Fatal(err)
	}
	if got := b.EffectiveWeight(0); got != 5 {
		t.Fatalf("50%% of 10 = %d, want 5", got)
	}
	if err := b.SetWeight("a", 0, false); err != nil || b.UsableCount() != 1 {
		t.Fatalf("weight 0: err %v, usable %d; want 1 (no new traffic)", err, b.UsableCount())
	}
	if err := b.SetWeight("a", 257, false); err == nil {
		t.Fatal("weight 257 accepted")
	}
	if err := b.SetWeight("nope", 1, false); err == nil {
		t.Fatal("unknown server accepted")
	}
	// A reload that keeps the file's weight keeps the override; one that
	// changes it drops the override.
	a.State.SetConfigWeight(10)
	if b.EffectiveWeight(0) != 0 {
		t.Fatal("an unchanged configured weight dropped the runtime override")
	}
	a.State.SetConfigWeight(20)
	if got := b.EffectiveWeight(0); got != 20 {
		t.Fatalf("file changed the weight to 20: effective %d", got)
	}
	st := newTestBackend(t, Spec{Algorithm: "static-rr"}, member(reg, "s", 4, false))
	reg.Server("be", "s").SetConfigWeight(4)
	if err := st.SetWeight("s", 2, false); err == nil {
		t.Fatal("static-rr accepted weight 2 of 4")
	}
	if err := st.SetWeight("s", 0, true); err != nil {
		t.Fatalf("static-rr refused 0%%: %v", err)
	}
	if err := st.SetWeight("s", 100, true); err != nil || st.EffectiveWeight(0) != 4 {
		t.Fatalf("static-rr 100%%: %v, weight %d", err, st.EffectiveWeight(0))
	}
}

func TestSlowStartRamps(t *testing.T) {
	reg := NewRegistry()
	m := member(reg, "a", 100, false)
	m.SlowStart = time.Second
	other := member(reg, "b", 100, false)
	b := newTestBackend(t, rr(), m, other)
	if got := b.EffectiveWeight(0); got != 100 {
		t.Fatalf("up since start: weight %d, want 100 (slowstart applies after a return only)", got)
	}
	m.State.SetHealthy(false)
	start := time.Now()
	m.State.SetHealthy(true)
	w0 := b.EffectiveWeight(0)
	time.Sleep(500 * time.Millisecond)
	w1 := b.EffectiveWeight(0)
	elapsed := time.Since(start)
	time.Sleep(700 * time.Millisecond)
	w2 := b.EffectiveWeight(0)
	t.Logf("weights at 0, %v and 1.2 s: %d, %d, %d", elapsed.Round(time.Millisecond), w0, w1, w2)
	if w0 < 1 || w0 > 10 {
		t.Fatalf("weight at return = %d, want 1..10", w0)
	}
	// The ramp steps every 100 ms, so at 500 ms it is 40..60% of the way.
	if w1 < 35 || w1 > 65 {
		t.Fatalf("weight half-way = %d, want 35..65", w1)
	}
	if w2 != 100 {
		t.Fatalf("weight after the period = %d, want 100", w2)
	}
	st := newTestBackend(t, Spec{Algorithm: "static-rr"}, Member{State: reg.Server("be", "s"), Weight: 7, SlowStart: time.Hour})
	reg.Server("be", "s").SetHealthy(false)
	reg.Server("be", "s").SetHealthy(true)
	if got := st.EffectiveWeight(0); got != 7 {
		t.Fatalf("static-rr with slowstart: weight %d, want 7 (static weights do not ramp)", got)
	}
}

// TestConcurrentAcquireRelease hammers every policy from several
// goroutines; under the race detector it checks the lock-free structures,
// and afterwards that maxconn was never passed and every count returned
// to zero.
func TestConcurrentAcquireRelease(t *testing.T) {
	for _, spec := range allSpecs() {
		t.Run(spec.name, func(t *testing.T) {
			reg := NewRegistry()
			var ms []Member
			for k := range 37 {
				m := member(reg, fmt.Sprint(k), 1+k%7, false)
				m.MaxConn = 3
				ms = append(ms, m)
			}
			b := newTestBackend(t, spec.Spec, ms...)
			var wg sync.WaitGroup
			var over sync.Once
			for g := range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for k := range 5000 {
						i, r := b.Acquire(uint64(g*5000+k)*0x9e3779b97f4a7c15, true)
						if r != Assigned {
							continue
						}
						if ms[i].State.Served() > 3 {
							over.Do(func() { t.Errorf("member %d served %d > maxconn 3", i, ms[i].State.Served()) })
						}
						b.Release(i)
					}
				}()
			}
			wg.Wait()
			for k, m := range ms {
				if n := m.State.Served(); n != 0 {
					t.Fatalf("member %d still serves %d after every release", k, n)
				}
			}
			if tree := treeOf(b.pool.Load().policy); tree != nil {
				checkTree(t, tree)
			}
			if lc, ok := b.pool.Load().policy.(*leastConn); ok {
				for _, i := range b.pool.Load().usable {
					if got, want := lc.keys[lc.leaf[i]].Load()>>32, lc.key(i)>>32; got != want {
						t.Fatalf("member %d: leaf load %d, its count says %d", i, got, want)
					}
				}
			}
			if i, r := b.Acquire(1, true); r != Assigned {
				t.Fatalf("after the storm Acquire = %d, %v", i, r)
			}
		})
	}
}

func treeOf(p Policy) *minTree {
	switch t := p.(type) {
	case *leastConn:
		return t.minTree
	case *first:
		return t.minTree
	}
	return nil
}

// checkTree verifies, once the writers are done, that every inner node
// names the child winner with the smaller key: the lock-free refreshes left
// no stale node behind.
func checkTree(t *testing.T, tr *minTree) {
	t.Helper()
	for n := tr.inner - 1; n >= 0; n-- {
		want := tr.winner(fanout*n + 1)
		for c := fanout*n + 2; c <= fanout*n+fanout; c++ {
			if w := tr.winner(c); tr.keys[w].Load() < tr.keys[want].Load() {
				want = w
			}
		}
		if got := tr.winner(n); tr.keys[got].Load() != tr.keys[want].Load() {
			t.Fatalf("node %d names leaf %d (key %#x); its children's best is leaf %d (key %#x)", n, got, tr.keys[got].Load(), want, tr.keys[want].Load())
		}
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

// TestLeastConnAcrossReload: sessions begun under the old configuration's
// Backend end there, and the live Backend's leastconn sees them end.
func TestLeastConnAcrossReload(t *testing.T) {
	reg := NewRegistry()
	old := newTestBackend(t, Spec{Algorithm: "leastconn"}, member(reg, "a", 1, false), member(reg, "b", 1, false))
	old.Activate()
	var held []int
	for range 10 {
		i, _ := old.Acquire(0, false)
		held = append(held, i)
	}
	// The reload: a new Backend over the same servers, in another order.
	live := newTestBackend(t, Spec{Algorithm: "leastconn"}, member(reg, "b", 1, false), member(reg, "a", 1, false))
	live.Activate()
	old.Close()
	for _, i := range held {
		if old.members[i].State.Name == "a" {
			old.Release(i)
		}
	}
	// a (member 1 of live) now serves 0 and b 5: leastconn must see it.
	for k := range 5 {
		if i, _ := live.Acquire(0, false); i != 1 {
			t.Fatalf("pick %d after a's old sessions ended: member %d, want 1 (a)", k, i)
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

// TestSlowStartRampsMaxConn: during a slow start the maxconn grows from 1
// as the weight does, with static algorithms too, whose weights stay put.
func TestSlowStartRampsMaxConn(t *testing.T) {
	for _, alg := range []string{"roundrobin", "static-rr", "first"} {
		t.Run(alg, func(t *testing.T) {
			t.Parallel()
			reg := NewRegistry()
			m := Member{State: reg.Server("be", alg), Weight: 10, MaxConn: 100, SlowStart: time.Second}
			b := newTestBackend(t, Spec{Algorithm: config.Algorithm(alg)}, m)
			m.State.SetHealthy(false)
			m.State.SetHealthy(true)
			held := 0
			for {
				if _, r := b.Acquire(0, false); r != Assigned {
					break
				}
				held++
			}
			if held < 1 || held > 10 {
				t.Fatalf("right after the return %d sessions were taken, want 1..10 of maxconn 100", held)
			}
			if alg == "static-rr" && b.EffectiveWeight(0) != 10 {
				t.Fatalf("static-rr weight during slow start = %d, want 10", b.EffectiveWeight(0))
			}
			time.Sleep(1100 * time.Millisecond)
			for {
				if _, r := b.Acquire(0, false); r != Assigned {
					break
				}
				held++
			}
			if held != 100 {
				t.Fatalf("after the slow start %d sessions are held, want maxconn 100", held)
			}
		})
	}
}
