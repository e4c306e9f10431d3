package balancer

import (
	"slices"
	"sync/atomic"
)

// Hash is the key hash of the hashing algorithms (source, uri, url_param,
// hdr): 64-bit FNV-1a followed by MurmurHash3's finalizer, so that keys
// differing in one byte land far apart on the ring. It is deterministic
// across processes and machines, so every halo of a cluster maps a key to
// the same server. It does not allocate.
func Hash(b []byte) uint64 {
	h := uint64(14695981039346656037)
	for _, c := range b {
		h ^= uint64(c)
		h *= 1099511628211
	}
	return mix64(h)
}

// HashString is Hash of a string, without converting it.
func HashString(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return mix64(h)
}

func mix64(h uint64) uint64 {
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}

// consistent is "hash-type consistent": a ring on which each server owns
// points in proportion to its weight; a key goes to the owner of the first
// point at or after its hash. A server's points are derived from its name,
// not its position, so adding, removing or reweighting one server moves
// only the keys of the points that changed hands: about 1/N of them when
// one of N equal servers leaves.
//
// With a balance factor (HAProxy's "hash-balance-factor", bounded-load
// consistent hashing), a server whose load would exceed factor% of the
// average relative to its weight is passed over for the next point's owner.
type consistent struct {
	points  []uint64 // sorted
	owner   []int32  // member owning points[k]
	members []Member
	weight  []int
	limits  limits
	cum     []int64 // by member: sum of the weights of pool members before it
	total   int64   // sum of weights in the pool
	factor  int64
	served  *atomic.Int64 // the Backend's total
}

var _ Policy = (*consistent)(nil)

// ringPointsPerWeight is how many ring points one unit of weight gets:
// as many as fit in ringPointBudget for the configured weights, between 1
// and ringMaxPointsPerWeight. It depends only on the configuration, so
// health changes never rescale the ring (which would move keys).
func ringPointsPerWeight(members []Member) int {
	sum := 0
	for _, m := range members {
		sum += max(m.Weight, 1)
	}
	return min(max(ringPointBudget/max(sum, 1), 1), ringMaxPointsPerWeight)
}

const (
	ringPointBudget        = 160_000
	ringMaxPointsPerWeight = 160
)

func newConsistent(members []Member, p *pool, factor int, served *atomic.Int64) *consistent {
	per := ringPointsPerWeight(members)
	type point struct {
		hash  uint64
		owner int32
	}
	var pts []point
	for _, i := range p.usable {
		base := HashString(members[i].State.Name)
		for k := range p.weight[i] * per {
			pts = append(pts, point{mix64(base + uint64(k)*0x9e3779b97f4a7c15), int32(i)})
		}
	}
	slices.SortFunc(pts, func(a, b point) int {
		switch {
		case a.hash < b.hash:
			return -1
		case a.hash > b.hash:
			return 1
		}
		return int(a.owner - b.owner)
	})
	c := &consistent{
		points: make([]uint64, len(pts)), owner: make([]int32, len(pts)),
		members: members, weight: p.weight, limits: p.maxconn, total: int64(p.total), factor: int64(factor), served: served,
	}
	for k, pt := range pts {
		c.points[k], c.owner[k] = pt.hash, pt.owner
	}
	c.cum = make([]int64, len(members))
	var cum int64
	for _, i := range p.usable {
		c.cum[i] = cum
		cum += int64(p.weight[i])
	}
	return c
}

func (c *consistent) Pick(key uint64) int {
	n := len(c.points)
	if n == 0 {
		return -1
	}
	k, _ := slices.BinarySearch(c.points, key)
	if k == n {
		k = 0
	}
	if c.factor == 0 {
		return int(c.owner[k])
	}
	// Bounded load, as HAProxy computes it: the backend has
	// ceil((served+1) · factor/100) slots, shared by weight (the remainder
	// spread by cumulative weight so the shares add up exactly); a server
	// takes the session while it serves fewer than its share. The shares
	// add up to more than the sessions, so some server always qualifies.
	slots := ((c.served.Load()+1)*c.factor + 99) / 100
	perWeight, rem := slots/c.total, slots%c.total
	for range n {
		i := int(c.owner[k])
		w, cum := int64(c.weight[i]), c.cum[i]
		// As in HAProxy, never a share of 0: at low load every server
		// may take one session, rather than the few the remainder reaches.
		share := max(perWeight*w+(cum+w)*rem/c.total-cum*rem/c.total, 1)
		if !c.limits.full(c.members, i) && c.members[i].State.served.Load() < share {
			return i
		}
		if k++; k == n {
			k = 0
		}
	}
	return -1
}
