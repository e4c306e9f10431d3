package balancer

import (
	"math/rand/v2"
)

// random is HAProxy's "balance random(N)": draw N servers at random in
// proportion to their weights and take the least loaded of them ("power of
// N choices"). N = 1 is plain weighted random; N = 2, the default, already
// keeps the busiest server far below what N = 1 gives.
//
// Draws use Vose's alias table, built with the pool, so each one costs
// O(1): one random number picks a column and a coin within it.
type random struct {
	members []Member
	weight  []int
	limits  limits
	draws   int
	column  []int32  // member of each column
	alias   []int32  // member taking the column when the coin says so
	coin    []uint32 // chance, out of 2^32, that the column keeps its own member
}

var _ Policy = (*random)(nil)

func newRandom(members []Member, p *pool, draws int) *random {
	r := &random{members: members, weight: p.weight, limits: p.maxconn, draws: draws}
	n := len(p.usable)
	if n == 0 {
		return r
	}
	r.column = make([]int32, n)
	r.alias = make([]int32, n)
	r.coin = make([]uint32, n)
	scaled := make([]float64, n)
	var small, large []int
	for k, i := range p.usable {
		r.column[k] = int32(i)
		r.alias[k] = int32(i)
		scaled[k] = float64(p.weight[i]) * float64(n) / float64(p.total)
		if scaled[k] < 1 {
			small = append(small, k)
		} else {
			large = append(large, k)
		}
	}
	for len(small) > 0 && len(large) > 0 {
		s, l := small[len(small)-1], large[len(large)-1]
		small = small[:len(small)-1]
		r.coin[s] = uint32(scaled[s] * (1 << 32))
		r.alias[s] = r.column[l]
		scaled[l] -= 1 - scaled[s]
		if scaled[l] < 1 {
			large = large[:len(large)-1]
			small = append(small, l)
		}
	}
	// What is left is 1 up to rounding: such a column keeps its member.
	for _, k := range append(small, large...) {
		r.coin[k] = 1<<32 - 1
	}
	return r
}

func (r *random) draw() int {
	x := rand.Uint64()
	k := (x >> 32) * uint64(len(r.column)) >> 32
	if uint32(x) < r.coin[k] {
		return int(r.column[k])
	}
	return int(r.alias[k])
}

// lighter reports whether member a would be less loaded than b after one
// more session, relative to their weights.
func (r *random) lighter(a, b int) bool {
	la := (r.members[a].State.served.Load() + 1) * int64(r.weight[b])
	lb := (r.members[b].State.served.Load() + 1) * int64(r.weight[a])
	return la < lb
}

func (r *random) Pick(uint64) int {
	if len(r.column) == 0 {
		return -1
	}
	best := -1
	for range r.draws {
		i := r.draw()
		if r.limits.full(r.members, i) {
			continue
		}
		if best < 0 || r.lighter(i, best) {
			best = i
		}
	}
	if best >= 0 {
		return best
	}
	// Every draw was full: look for any free server from a random column.
	start := int(rand.Uint64() % uint64(len(r.column)))
	for k := range r.column {
		i := int(r.column[(start+k)%len(r.column)])
		if !r.limits.full(r.members, i) {
			return i
		}
	}
	return -1
}
