package balancer

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"math"
	"slices"
	"testing"
)

var testKeys = func() []uint64 {
	keys := make([]uint64, 100_000)
	for k := range keys {
		keys[k] = HashString(fmt.Sprint("client-", k))
	}
	return keys
}()

// mapping returns the member each of the first n test keys goes to.
func mapping(b *Backend, n int) []int {
	out := make([]int, n)
	for k := range n {
		out[k] = pick(b, testKeys[k])
	}
	return out
}

func hashBackend(t *testing.T, reg *Registry, consistent bool, n int) (*Backend, []Member) {
	var ms []Member
	for k := range n {
		ms = append(ms, member(reg, fmt.Sprintf("controller-%d", k), 1, false))
	}
	return newTestBackend(t, Spec{Algorithm: "source", Consistent: consistent}, ms...), ms
}

// TestConsistentRemovalMovesFewKeys: with hash-type consistent, taking one
// of N servers out moves only that server's keys, at most 1/N + 5% of all.
func TestConsistentRemovalMovesFewKeys(t *testing.T) {
	const keys = 100_000
	for _, n := range []int{2, 3, 5, 10, 50} {
		reg := NewRegistry()
		b, ms := hashBackend(t, reg, true, n)
		before := mapping(b, keys)
		worst := 0.0
		for out := range n {
			ms[out].State.SetHealthy(false)
			after := mapping(b, keys)
			moved := 0
			for k := range keys {
				if before[k] != after[k] {
					moved++
					if before[k] != out {
						t.Fatalf("N=%d, server %d out: key %d moved from server %d, which stayed", n, out, k, before[k])
					}
				}
			}
			frac := float64(moved) / keys
			worst = max(worst, frac)
			if frac > 1/float64(n)+0.05 {
				t.Fatalf("N=%d: removing server %d moved %.3f of keys, bound %.3f", n, out, frac, 1/float64(n)+0.05)
			}
			ms[out].State.SetHealthy(true)
			if back := mapping(b, keys); !slices.Equal(back, before) {
				t.Fatalf("N=%d: server %d back, mapping differs from before", n, out)
			}
		}
		t.Logf("consistent, N=%d: removing one server moves at most %.1f%% of keys (1/N = %.1f%%)", n, 100*worst, 100/float64(n))
	}
}

// TestMapBasedRemovalMovesMostKeys measures what docs/configuration.md
// states: with map-based hashing, removing one of N servers moves about
// (N−1)/N of all keys, not 1/N.
func TestMapBasedRemovalMovesMostKeys(t *testing.T) {
	const keys = 100_000
	for _, n := range []int{2, 3, 5, 10, 50} {
		reg := NewRegistry()
		b, ms := hashBackend(t, reg, false, n)
		before := mapping(b, keys)
		ms[0].State.SetHealthy(false)
		after := mapping(b, keys)
		moved := 0
		for k := range keys {
			if before[k] != after[k] {
				moved++
			}
		}
		frac := float64(moved) / keys
		t.Logf("map-based, N=%d: removing the first server moves %.1f%% of keys", n, 100*frac)
		want := float64(n-1) / float64(n)
		if n == 2 {
			want = 0.5 // its keys must move; the other half stays on the survivor
		}
		if math.Abs(frac-want) > 0.05 {
			t.Fatalf("N=%d: map-based moved %.3f of keys, documented as about %.3f", n, frac, want)
		}
	}
}

// TestConsistentFollowsWeights: a server of weight 3 gets about three times
// the keys of one of weight 1.
func TestConsistentFollowsWeights(t *testing.T) {
	reg := NewRegistry()
	b := newTestBackend(t, Spec{Algorithm: "source", Consistent: true},
		member(reg, "a", 1, false), member(reg, "b", 3, false), member(reg, "c", 4, false))
	got := map[int]int{}
	for _, m := range mapping(b, 80_000) {
		got[m]++
	}
	for i, want := range []float64{0.125, 0.375, 0.5} {
		if share := float64(got[i]) / 80_000; math.Abs(share-want) > 0.03 {
			t.Fatalf("member %d: share %.3f, want %.3f ± 0.03 (%v)", i, share, want, got)
		}
	}
}

// TestBoundedLoad: with hash-balance-factor 125, even when every session
// hashes to the same few keys, no server holds more than 125% of the mean
// (rounded up, plus the session being placed).
func TestBoundedLoad(t *testing.T) {
	reg := NewRegistry()
	var ms []Member
	for k := range 8 {
		ms = append(ms, member(reg, fmt.Sprint("s", k), 1, false))
	}
	b := newTestBackend(t, Spec{Algorithm: "source", Consistent: true, BalanceFactor: 125}, ms...)
	for held := 1; held <= 4000; held++ {
		if _, r := b.Acquire(HashString(fmt.Sprint("hot-", held%3)), true); r != Assigned {
			t.Fatalf("session %d: %v", held, r)
		}
		limit := int64(math.Ceil(1.25*float64(held)/8)) + 1
		for k, m := range ms {
			if m.State.Served() > limit {
				t.Fatalf("after %d sessions server %d holds %d, above 125%% of the mean (%d)", held, k, m.State.Served(), limit)
			}
		}
	}
	// Without the factor the same keys pile onto at most three servers.
	reg2 := NewRegistry()
	var ms2 []Member
	for k := range 8 {
		ms2 = append(ms2, member(reg2, fmt.Sprint("s", k), 1, false))
	}
	plain := newTestBackend(t, Spec{Algorithm: "source", Consistent: true}, ms2...)
	for held := 1; held <= 4000; held++ {
		plain.Acquire(HashString(fmt.Sprint("hot-", held%3)), true)
	}
	busy := 0
	for _, m := range ms2 {
		if m.State.Served() > 0 {
			busy++
		}
	}
	if busy > 3 {
		t.Fatalf("without a factor %d servers took 3 keys", busy)
	}
}

// TestHashIsStable pins the hash: every halo of a cluster, of any version,
// must send a client to the same server. Its first stage is the standard
// library's FNV-1a.
func TestHashIsStable(t *testing.T) {
	for in, want := range map[string]uint64{
		"":          0xefd01f60ba992926,
		"10.0.0.1":  0xc879e56ddc6c5c88,
		"/v3/auth/": 0x2fde3a0ee7133362,
	} {
		if got := HashString(in); got != want || Hash([]byte(in)) != got {
			t.Errorf("HashString(%q) = %#x, Hash = %#x, want %#x", in, got, Hash([]byte(in)), want)
		}
		f := fnv.New64a()
		f.Write([]byte(in))
		if mix64(binary.BigEndian.Uint64(f.Sum(nil))) != want {
			t.Errorf("%q: first stage differs from hash/fnv's FNV-1a", in)
		}
	}
}
