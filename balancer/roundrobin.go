package balancer

import (
	"container/heap"
	"sync/atomic"
)

// roundRobin cycles through a precomputed smooth weighted sequence, so Pick
// is one atomic add and one index. Each server appears in proportion to its
// weight, interleaved rather than in runs.
//
// The sequence is built as the EEVDF scheduler orders work: at turn t a
// server is eligible while its count is at most its exact share t·w/total,
// and among the eligible ones the one whose next turn is due first,
// (count+1)/w, goes. That keeps every server's count after any prefix of the
// sequence strictly within one of its exact share, so a run of picks of one
// server is at most one longer than ceil(w/(total−w)), the shortest runs any
// sequence of those weights can have.
type roundRobin struct {
	seq     []int32
	cursor  *atomic.Uint64
	members []Member
	usable  []int
	limited bool // some member has a maxconn
}

var _ Policy = (*roundRobin)(nil)

func newRoundRobin(members []Member, p *pool, cursor *atomic.Uint64) *roundRobin {
	r := &roundRobin{seq: smoothSequence(p.usable, p.weight), cursor: cursor, members: members, usable: p.usable}
	for _, i := range p.usable {
		r.limited = r.limited || members[i].MaxConn > 0
	}
	return r
}

// Pick takes the next turn. When that server is at its maxconn, the next
// usable server with a free slot, in configuration order from a rotating
// start, goes instead: O(n) in servers rather than O(total weight), and only
// while servers are full.
func (r *roundRobin) Pick(uint64) int {
	n := uint64(len(r.seq))
	if n == 0 {
		return -1
	}
	c := r.cursor.Add(1) - 1
	i := int(r.seq[c%n])
	if !r.limited || !r.members[i].full() {
		return i
	}
	start := int(c % uint64(len(r.usable)))
	for k := range r.usable {
		i = r.usable[(start+k)%len(r.usable)]
		if !r.members[i].full() {
			return i
		}
	}
	return -1
}

// mapBased is "hash-type map-based": the key modulo the total weight
// indexes a table in which each server holds as many slots as its weight.
// It is O(1), but a change of the pool remaps most keys.
type mapBased struct {
	table []int32
}

var _ Policy = (*mapBased)(nil)

func newMapBased(p *pool) *mapBased {
	return &mapBased{table: smoothSequence(p.usable, p.weight)}
}

func (m *mapBased) Pick(key uint64) int {
	if len(m.table) == 0 {
		return -1
	}
	return int(m.table[key%uint64(len(m.table))])
}

// smoothSequence returns one cycle of the weighted sequence over usable
// (weights by member index), reduced by the weights' greatest common
// divisor. It takes O(total · log n).
func smoothSequence(usable []int, weight []int) []int32 {
	g := 0
	for _, i := range usable {
		g = gcd(g, weight[i])
	}
	if g == 0 {
		return nil
	}
	total := int64(0)
	waiting := turnHeap{byStart: true}
	for _, i := range usable {
		w := int64(weight[i] / g)
		total += w
		waiting.turns = append(waiting.turns, turn{member: int32(i), weight: w})
	}
	heap.Init(&waiting)
	eligible := turnHeap{}
	seq := make([]int32, 0, total)
	for t := range total {
		// Servers whose count is within their share at turn t: taken/w ≤ t/total.
		for waiting.Len() > 0 && waiting.turns[0].taken*total <= t*waiting.turns[0].weight {
			heap.Push(&eligible, heap.Pop(&waiting))
		}
		next := heap.Pop(&eligible).(turn)
		seq = append(seq, next.member)
		next.taken++
		heap.Push(&waiting, next)
	}
	return seq
}

// turn is a server's place in the sequence: it has had taken turns, and is
// due its next one at (taken+1)/weight.
type turn struct {
	member int32
	weight int64
	taken  int64
}

// turnHeap orders turns by when they are due, or with byStart by when they
// become eligible (taken/weight); ties go to the earlier member.
type turnHeap struct {
	turns   []turn
	byStart bool
}

func (h *turnHeap) Len() int { return len(h.turns) }
func (h *turnHeap) Less(a, b int) bool {
	x, y := h.turns[a], h.turns[b]
	nx, ny := x.taken+1, y.taken+1
	if h.byStart {
		nx, ny = x.taken, y.taken
	}
	l, r := nx*y.weight, ny*x.weight
	if l != r {
		return l < r
	}
	return x.member < y.member
}
func (h *turnHeap) Swap(a, b int) { h.turns[a], h.turns[b] = h.turns[b], h.turns[a] }
func (h *turnHeap) Push(x any)    { h.turns = append(h.turns, x.(turn)) }
func (h *turnHeap) Pop() any {
	x := h.turns[len(h.turns)-1]
	h.turns = h.turns[:len(h.turns)-1]
	return x
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}
