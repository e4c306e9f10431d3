package balancer

import (
	"math"
	"sync/atomic"
)

// minTree is a tournament tree over the pool's members: each leaf holds a
// key, each inner node the leaf with the smallest key below it, so the root
// names the best member in O(1) and a key change costs O(log n). Each inner
// node has four children: half the levels of a binary tree, so a key change
// makes half the compare-and-swaps, for reads of children that mostly share
// a cache line.
//
// It is lock-free. An inner node is a version and a leaf index in one
// word, replaced by compare-and-swap. A key change refreshes every node on
// its path twice, each refresh reading the children and trying one CAS: if
// both CASes fail, a refresh by someone else that started after the key
// changed succeeded in between, so the node reflects the change either way
// (Jayanti's f-array argument). Readers may see a result a moment old,
// as with any load balancer under concurrent load.
type minTree struct {
	inner  int             // inner nodes; node 0 is the root
	nodes  []atomic.Uint64 // inner nodes: version<<32 | leaf
	keys   []atomic.Uint64 // by leaf; padding leaves hold noKey
	member []int32         // leaf → member index
	leaf   []int32         // member index → leaf, -1 outside the pool
	seq    atomic.Uint32   // tie-breaking clock for leastconn
}

// fanout is the number of children of an inner node.
const fanout = 4

const noKey = math.MaxUint64

func newMinTree(members []Member, usable []int) *minTree {
	leaves, inner := 1, 0
	for leaves < len(usable) {
		inner += leaves
		leaves *= fanout
	}
	t := &minTree{
		inner:  inner,
		nodes:  make([]atomic.Uint64, inner),
		keys:   make([]atomic.Uint64, leaves),
		member: make([]int32, leaves),
		leaf:   make([]int32, len(members)),
	}
	for i := range t.leaf {
		t.leaf[i] = -1
	}
	for l := range leaves {
		t.keys[l].Store(noKey)
		t.member[l] = -1
	}
	for l, i := range usable {
		t.member[l] = int32(i)
		t.leaf[i] = int32(l)
	}
	return t
}

// init computes every inner node bottom-up; it runs before the tree is
// published.
func (t *minTree) init() {
	for n := t.inner - 1; n >= 0; n-- {
		t.refresh(n)
	}
}

// winner is the leaf holding the smallest key under position p (an inner
// node below t.inner, a leaf from there on).
func (t *minTree) winner(p int) int {
	if p >= t.inner {
		return p - t.inner
	}
	return int(uint32(t.nodes[p].Load()))
}

func (t *minTree) refresh(n int) {
	first := fanout*n + 1
	for range 2 {
		old := t.nodes[n].Load()
		w := t.winner(first)
		best := t.keys[w].Load()
		for c := first + 1; c < first+fanout; c++ {
			cw := t.winner(c)
			if k := t.keys[cw].Load(); k < best {
				w, best = cw, k
			}
		}
		if t.nodes[n].CompareAndSwap(old, (old>>32+1)<<32|uint64(w)) {
			return
		}
	}
}

func (t *minTree) set(l int, key uint64) {
	t.keys[l].Store(key)
	for p := t.inner + l; p > 0; {
		p = (p - 1) / fanout
		t.refresh(p)
	}
}

// best is the member with the smallest key, or -1 if that key is noKey
// or above limit.
func (t *minTree) best(limit uint64) int {
	l := t.winner(0)
	if t.keys[l].Load() > limit {
		return -1
	}
	return int(t.member[l])
}

// leastConn is HAProxy's "balance leastconn": the server with the fewest
// sessions relative to its weight. Among equals the one whose load changed
// longest ago wins, which makes servers take turns.
type leastConn struct {
	*minTree
	members []Member
	weight  []int
	limits  limits
}

var (
	_ Policy      = (*leastConn)(nil)
	_ loadTracker = (*leastConn)(nil)
)

// fullLoad marks a server at its maxconn; loads are below it.
const fullLoad = math.MaxUint32

func newLeastConn(members []Member, p *pool) *leastConn {
	lc := &leastConn{minTree: newMinTree(members, p.usable), members: members, weight: p.weight, limits: p.maxconn}
	for _, i := range p.usable {
		lc.keys[lc.leaf[i]].Store(lc.key(i))
	}
	lc.init()
	return lc
}

// key is the load the server would have after one more session,
// (served+1)/weight in fixed point, above a tie-breaking sequence number.
func (lc *leastConn) key(i int) uint64 {
	seq := uint64(lc.seq.Add(1))
	if lc.limits.full(lc.members, i) {
		return fullLoad<<32 | seq
	}
	load := uint64(lc.members[i].State.served.Load()+1) << 16 / uint64(lc.weight[i])
	return min(load, fullLoad-1)<<32 | seq
}

func (lc *leastConn) Pick(uint64) int { return lc.best(fullLoad<<32 - 1) }

func (lc *leastConn) loadChanged(i int) {
	l := lc.leaf[i]
	if l < 0 {
		return
	}
	// Recompute until the count read is still current, so a slower
	// update cannot leave a stale key behind a faster one.
	for {
		n := lc.members[i].State.served.Load()
		lc.set(int(l), lc.key(i))
		if lc.members[i].State.served.Load() == n {
			return
		}
	}
}

// first is HAProxy's "balance first": the first server in configuration
// order that has a free slot, so that servers beyond what the load needs
// stay idle (and can be powered down). It needs maxconn on its servers.
type first struct {
	*minTree
	members []Member
	limits  limits
}

var (
	_ Policy      = (*first)(nil)
	_ loadTracker = (*first)(nil)
)

func newFirst(members []Member, p *pool) *first {
	f := &first{minTree: newMinTree(members, p.usable), members: members, limits: p.maxconn}
	for _, i := range p.usable {
		f.keys[f.leaf[i]].Store(f.key(i))
	}
	f.init()
	return f
}

// key orders members by position; a full one drops out.
func (f *first) key(i int) uint64 {
	if f.limits.full(f.members, i) {
		return noKey
	}
	return uint64(i)
}

func (f *first) Pick(uint64) int { return f.best(noKey - 1) }

func (f *first) loadChanged(i int) {
	l := f.leaf[i]
	if l < 0 {
		return
	}
	for {
		k := f.key(i)
		if f.keys[l].Load() != k {
			f.set(int(l), k)
		}
		if f.key(i) == k {
			return
		}
	}
}
