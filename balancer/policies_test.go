package balancer

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/halo-lb/halo/config"
)

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
