package balancer

import (
	"fmt"
	"sync"
	"sync/atomic"
)

// Policy picks a server from the pool it was built for. Pick is on the hot
// path: it must not allocate, lock or block. It returns the index of the
// chosen Member in the Backend, or -1 when the pool is empty.
type Policy interface {
	Pick(key uint64) int
}

// Algorithm builds a Policy over the usable members (indices into members).
// It runs on the cold path, each time the pool changes, and may precompute
// whatever Pick needs. cursor is owned by the Backend and survives rebuilds,
// so a rotation does not restart from the first server after every change.
type Algorithm func(members []Member, usable []int, cursor *atomic.Uint64) Policy

// Algorithms by their HAProxy "balance" name.
var Algorithms = map[string]Algorithm{
	"roundrobin": NewRoundRobin,
}

// Member is a server as one configuration of a backend uses it.
type Member struct {
	State  *Server
	Weight int
	Backup bool
}

// Backend is one configuration's view of a backend: its members and the
// policy over the members usable right now. A reload builds a new Backend
// over the same Server states; Close detaches the old one.
type Backend struct {
	Name       string
	members    []Member
	algorithm  Algorithm
	allBackups bool
	cursor     atomic.Uint64

	mu     sync.Mutex // serializes Rebuild
	policy atomic.Pointer[policyBox]
	usable atomic.Int32
}

// policyBox lets an interface value be published through atomic.Pointer.
type policyBox struct{ Policy }

// NewBackend returns a backend balancing members with the named algorithm and
// subscribes it to its servers' state changes. allBackups uses every usable
// backup server when no primary is usable (HAProxy's "option allbackups");
// otherwise only the first one, in configuration order.
func NewBackend(name, algorithm string, members []Member, allBackups bool) (*Backend, error) {
	alg, ok := Algorithms[algorithm]
	if !ok {
		return nil, fmt.Errorf("backend %s: unknown balance algorithm %q", name, algorithm)
	}
	b := &Backend{Name: name, members: members, algorithm: alg, allBackups: allBackups}
	b.Rebuild()
	for _, m := range members {
		m.State.observe(b)
	}
	return b, nil
}

// Pick returns the index of the member to use for the next connection or
// request, or -1 if no server is usable.
func (b *Backend) Pick(key uint64) int {
	return b.policy.Load().Pick(key)
}

// PickExcept is Pick avoiding member except where another one is usable; a
// retry uses it to redispatch away from a server that just failed.
func (b *Backend) PickExcept(key uint64, except int) int {
	p := b.policy.Load()
	// A weighted rotation gives any server at most maxWeight turns before
	// every other usable server had one, so this bound always finds another.
	for range 2*maxWeight + 2 {
		i := p.Pick(key)
		if i != except || b.usable.Load() <= 1 {
			return i
		}
	}
	return except
}

// maxWeight is the largest weight a server may have, as in HAProxy.
const maxWeight = 256

// Usable is the number of servers currently in the pool.
func (b *Backend) Usable() int { return int(b.usable.Load()) }

// Rebuild recomputes the pool from the servers' current states. Servers call
// it on every state change; it is safe to call at any time.
func (b *Backend) Rebuild() {
	b.mu.Lock()
	defer b.mu.Unlock()
	var usable []int
	for i, m := range b.members {
		if !m.Backup && m.Weight > 0 && m.State.usable() {
			usable = append(usable, i)
		}
	}
	if len(usable) == 0 {
		for i, m := range b.members {
			if m.Backup && m.Weight > 0 && m.State.usable() {
				usable = append(usable, i)
				if !b.allBackups {
					break
				}
			}
		}
	}
	b.usable.Store(int32(len(usable)))
	b.policy.Store(&policyBox{b.algorithm(b.members, usable, &b.cursor)})
}

// Close detaches the backend from its servers' state changes.
func (b *Backend) Close() {
	for _, m := range b.members {
		m.State.unobserve(b)
	}
}

// roundRobin cycles through a precomputed smooth weighted sequence: each
// server appears in proportion to its weight, interleaved rather than in
// runs (the sequence nginx's smooth weighted round robin produces), so Pick
// is one atomic add and one index.
type roundRobin struct {
	seq    []int32
	cursor *atomic.Uint64
}

var _ Policy = (*roundRobin)(nil)

// NewRoundRobin is HAProxy's "balance roundrobin": weighted, in turn.
func NewRoundRobin(members []Member, usable []int, cursor *atomic.Uint64) Policy {
	g := 0
	for _, i := range usable {
		g = gcd(g, members[i].Weight)
	}
	total := 0
	weights := make([]int, len(usable))
	for k, i := range usable {
		weights[k] = members[i].Weight / g
		total += weights[k]
	}
	seq := make([]int32, 0, total)
	current := make([]int, len(usable))
	for range total {
		best := 0
		for k := range usable {
			current[k] += weights[k]
			if current[k] > current[best] {
				best = k
			}
		}
		current[best] -= total
		seq = append(seq, int32(usable[best]))
	}
	return &roundRobin{seq: seq, cursor: cursor}
}

func (r *roundRobin) Pick(uint64) int {
	if len(r.seq) == 0 {
		return -1
	}
	n := r.cursor.Add(1) - 1
	return int(r.seq[n%uint64(len(r.seq))])
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}
