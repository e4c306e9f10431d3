package cluster

import (
	"fmt"
	"strings"
)

// The simulation's world (the faults it injects and the repairs an
// operator makes) and its checks, asserted after every step.

// world injects faults and repairs them.
func (s *sim) world() {
	for i, n := range s.nodes {
		switch {
		case n.proc == paused && s.now >= n.resumeAt:
			n.proc = running
			s.logf("%s resumes (%d queued messages)", n.name, len(n.inbox))
			in := n.inbox
			n.inbox = nil
			s.do(i, n.m.Tick(s.now))
			for _, m := range in {
				s.deliver(i, m.ev)
			}
			if n.leader > 0 && n.leader != s.term {
				s.tellLeadership(i, false)
			}
		case n.proc == dead && n.restart > 0 && s.now >= n.restart && (n.link || s.rng.IntN(2) == 0):
			s.start(i)
		}
		if n.isolated && s.now >= n.healAt {
			n.isolated = false
			s.logf("%s rejoins the network", n.name)
			if n.leader > 0 && n.leader != s.term && n.proc == running {
				s.tellLeadership(i, false)
			}
		}
		if !n.healthy && s.now >= n.healthAt {
			n.healthy = true
			s.deliver(i, Health{VIP: simVIP, Healthy: true})
		}
		// Repair of a fenced node: an operator restarts its halo (while its
		// link is still down), then asks a node to unfence it; without a
		// leader (two nodes fenced) the operator turns its port back on by
		// hand first.
		fenced := s.table().Fenced[n.name] != 0
		switch {
		case n.link && !fenced:
			n.repaired = false
		case !n.link && !n.repaired && n.proc != paused && s.rng.IntN(60) == 0:
			s.kill(i)
			s.start(i)
			n.repaired = true
		case (n.repaired || n.link) && s.rng.IntN(40) == 0:
			switch {
			case s.leader >= 0 && fenced:
				s.deliver(s.rng.IntN(len(s.nodes)), UnfenceAsked{Node: n.name})
			case !n.link:
				n.link = true
				s.logf("operator turns %s's port back on", n.name)
			}
		}
	}
	if s.fenceMode != "ok" && s.now >= s.fenceModeTo {
		s.fenceMode = "ok"
	}
	if s.faults <= 0 || s.rng.IntN(120) != 0 {
		return
	}
	s.faults--
	s.stats.faults++
	i := s.holderOrAny()
	n := s.nodes[i]
	switch f := s.rng.IntN(9); f {
	case 0:
		s.logf("FAULT kill -9 %s", n.name)
		s.kill(i)
	case 1:
		if n.proc == running {
			n.proc = paused
			n.resumeAt = s.now + int64(10+s.rng.IntN(300))
			s.logf("FAULT SIGSTOP %s until %d", n.name, n.resumeAt)
		}
	case 2, 3:
		n.isolated = true
		n.healAt = s.now + int64(10+s.rng.IntN(300))
		s.logf("FAULT partition %s until %d", n.name, n.healAt)
	case 4:
		n.healthy = false
		n.healthAt = s.now + int64(10+s.rng.IntN(200))
		s.deliver(i, Health{VIP: simVIP, Healthy: false})
		s.logf("FAULT %s unhealthy until %d", n.name, n.healthAt)
	case 5:
		if s.leader >= 0 {
			s.logf("FAULT kill -9 the leader %s", s.nodes[s.leader].name)
			s.kill(s.leader)
		}
	case 6:
		s.fenceMode = []string{"fail", "hang"}[s.rng.IntN(2)]
		s.fenceModeTo = s.now + int64(50+s.rng.IntN(300))
		s.logf("FAULT fence agent %s until %d", s.fenceMode, s.fenceModeTo)
	case 7:
		s.lossUntil = s.now + int64(20+s.rng.IntN(100))
		s.logf("FAULT message loss until %d", s.lossUntil)
	case 8:
		j := (i + 1 + s.rng.IntN(2)) % len(s.nodes)
		s.nodes[j].isolated = true
		s.nodes[j].healAt = s.now + int64(10+s.rng.IntN(300))
		s.logf("FAULT partition of a follower %s until %d", s.nodes[j].name, s.nodes[j].healAt)
	}
}

func (s *sim) holderOrAny() int {
	for i, n := range s.nodes {
		if n.kernel[simVIP] {
			return i
		}
	}
	return s.rng.IntN(len(s.nodes))
}

// table is the committed table.
func (s *sim) table() Table {
	t := NewTable()
	for i, e := range s.log {
		t.Apply(uint64(i+1), e)
	}
	return t
}

// check asserts the invariants after every step.
func (s *sim) check() {
	s.stats.ticks++
	active := []string{}
	for _, n := range s.nodes {
		if n.kernel[simVIP] && n.link {
			active = append(active, n.name)
		}
	}
	if len(active) > 1 {
		s.fail("two nodes answer for the VIP: %v", active)
	}
	if len(active) == 1 {
		s.stats.heldTicks++
	}
	// The log: no assign applies unless the previous holding was freed.
	t := NewTable()
	for i, e := range s.log {
		before := t.VIPs[e.VIP]
		if t.Apply(uint64(i+1), e) && e.Op == OpAssign && before.Holder != "" {
			s.fail("entry %d assigned a held VIP", i+1)
		}
	}
}

func (s *sim) fail(format string, a ...any) {
	s.t.Helper()
	if s.lyingFence {
		if s.failed == "" {
			s.failed = fmt.Sprintf(format, a...)
		}
		return
	}
	s.t.Fatalf("seed %d (HALO_SIM_SEED=%d), tick %d: %s\n%s", s.seed, s.seed, s.now, fmt.Sprintf(format, a...), strings.Join(s.trace, "\n"))
}

// quiet runs with no faults until the VIP is held again, for liveness.
func (s *sim) quiet(limit int64) {
	s.faults = 0
	for _, n := range s.nodes {
		n.isolated = false
		if n.proc == paused {
			n.resumeAt = s.now
		}
		if !n.healthy {
			n.healthAt = s.now
		}
	}
	s.fenceMode, s.lossUntil = "ok", 0
	end := s.now + limit
	for s.now < end {
		s.step()
		held := false
		for _, n := range s.nodes {
			held = held || n.kernel[simVIP] && n.link
		}
		if held {
			return
		}
	}
	s.fail("the VIP is not held %d ticks after the last fault", limit)
}
