package balancer

import (
	"sync/atomic"
)

// roundRobin cycles through a precomputed smooth weighted sequence, so Pick
// is one atomic add and one index. Each server appears in proportion to its
// weight, interleaved rather than in runs.
//
// The sequence is built as the EEVDF scheduler orders work: at turn t a
// server is eligible while its count is at most its exact share t·w/total,
// and among the eligible ones the one whose next turn is due first,
// (count+1)/w, goes; a server whose run of turns would pass ceil(w/(total−w))
// yields (see smoothSequence). Tested over 300 random weight sets: every
// server's count after any prefix stays strictly within one of its exact
// share, and no run passes that bound, which is the shortest longest run
// any sequence of those weights can have.
type roundRobin struct {
	seq     []int32
	cursor  *atomic.Uint64
	members []Member
	usable  []int
	limits  limits
	limited bool // some member has a maxconn
}

var _ Policy = (*roundRobin)(nil)

func newRoundRobin(members []Member, p *pool, cursor *atomic.Uint64) *roundRobin {
	r := &roundRobin{seq: smoothSequence(p.usable, p.weight), cursor: cursor, members: members, usable: p.usable, limits: p.maxconn}
	for _, i := range p.usable {
		r.limited = r.limited || p.maxconn[i] > 0
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
	if !r.limited || !r.limits.full(r.members, i) {
		return i
	}
	start := int(c % uint64(len(r.usable)))
	for k := range r.usable {
		i = r.usable[(start+k)%len(r.usable)]
		if !r.limits.full(r.members, i) {
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
// divisor. It takes O(total · log n) per pass, usually two passes.
//
// A pass orders turns as EEVDF does, with one constraint: a server whose
// run would grow beyond ceil(w/(total−w)), the longest its share makes
// unavoidable, gives the turn to the next server in that order. The
// sequence repeats, so a run may continue across the end of one cycle into
// the start of the next: a pass starts from the run the previous pass ended
// with, until a pass ends as it started; then the cycle joins itself
// without breaking the bound.
func smoothSequence(usable []int, weight []int) []int32 {
	g := 0
	for _, i := range usable {
		g = gcd(g, weight[i])
	}
	if g == 0 {
		return nil
	}
	if len(usable) == 1 {
		return []int32{int32(usable[0])}
	}
	turns := make([]turn, len(usable))
	total := int64(0)
	for k, i := range usable {
		turns[k] = turn{member: int32(i), weight: int64(weight[i] / g)}
		total += turns[k].weight
	}
	var seq []int32
	prev, run := int32(-1), int64(0)
	for range 8 {
		var endPrev int32
		var endRun int64
		seq, endPrev, endRun = smoothPass(turns, total, prev, run)
		if endPrev == prev && endRun == run {
			break
		}
		prev, run = endPrev, endRun
	}
	return seq
}

// smoothPass builds one cycle, starting as if the previous one ended with
// a run of length run of member prev; it returns the run it ends with.
func smoothPass(servers []turn, total int64, prev int32, run int64) ([]int32, int32, int64) {
	waiting := turnHeap{byStart: true, turns: append([]turn(nil), servers...)}
	waiting.init()
	eligible := turnHeap{}
	longest := func(t turn) int64 { return (t.weight + total - t.weight - 1) / (total - t.weight) }
	// next takes the best turn: the eligible one due first, or when none
	// is eligible, the one that becomes eligible first.
	next := func() (turn, bool) {
		if eligible.Len() > 0 {
			return eligible.pop(), true
		}
		if waiting.Len() > 0 {
			return waiting.pop(), false
		}
		return turn{}, false
	}
	putBack := func(t turn, wasEligible bool) {
		if wasEligible {
			eligible.push(t)
		} else {
			waiting.push(t)
		}
	}
	seq := make([]int32, 0, total)
	for t := range total {
		// Servers whose count is within their share at turn t: taken/w ≤ t/total.
		for waiting.Len() > 0 && waiting.turns[0].taken*total <= t*waiting.turns[0].weight {
			eligible.push(waiting.pop())
		}
		pick, pickEligible := next()
		if pick.member == prev && run+1 > longest(pick) {
			if other, otherEligible := next(); other.weight > 0 && other.taken < other.weight {
				putBack(pick, pickEligible)
				pick = other
			} else if other.weight > 0 {
				putBack(other, otherEligible)
			}
		}
		seq = append(seq, pick.member)
		if pick.member == prev {
			run++
		} else {
			prev, run = pick.member, 1
		}
		pick.taken++
		if pick.taken < pick.weight {
			waiting.push(pick)
		}
	}
	return seq, prev, run
}

// turn is a server's place in the sequence: it has had taken turns, and is
// due its next one at (taken+1)/weight.
type turn struct {
	member int32
	weight int64
	taken  int64
}

// turnHeap orders turns by when they are due, or with byStart by when they
// become eligible (taken/weight); ties go to the earlier member. It is a
// binary heap written out rather than container/heap, whose interface
// boxing would allocate on every push: a rebuild takes one pop and one
// push per turn of the cycle, up to 256,000 of them.
type turnHeap struct {
	turns   []turn
	byStart bool
}

func (h *turnHeap) Len() int { return len(h.turns) }

func (h *turnHeap) less(a, b int) bool {
	x, y := &h.turns[a], &h.turns[b]
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

func (h *turnHeap) init() {
	for i := len(h.turns)/2 - 1; i >= 0; i-- {
		h.down(i)
	}
}

func (h *turnHeap) push(t turn) {
	h.turns = append(h.turns, t)
	for i := len(h.turns) - 1; i > 0; {
		parent := (i - 1) / 2
		if !h.less(i, parent) {
			break
		}
		h.turns[i], h.turns[parent] = h.turns[parent], h.turns[i]
		i = parent
	}
}

func (h *turnHeap) pop() turn {
	top := h.turns[0]
	last := len(h.turns) - 1
	h.turns[0] = h.turns[last]
	h.turns = h.turns[:last]
	h.down(0)
	return top
}

func (h *turnHeap) down(i int) {
	n := len(h.turns)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		best := l
		if r := l + 1; r < n && h.less(r, l) {
			best = r
		}
		if !h.less(best, i) {
			return
		}
		h.turns[i], h.turns[best] = h.turns[best], h.turns[i]
		i = best
	}
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}
