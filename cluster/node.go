package cluster

import "fmt"

// This file is the part of the machine every node runs, leader or not:
// pinging, the lease, and holding VIPs in the kernel exactly while the table,
// the lease and local health all allow it.

// Tick moves the machine's clock to now (ticks since the driver started;
// after a pause it jumps) and returns what to do.
func (m *Machine) Tick(now int64) []Action {
	if now > m.now {
		m.now = now
	}
	if m.now >= m.nextPing {
		m.ping()
	}
	m.promoteGrants()
	if m.LeaseValid() {
		m.emit(PetWatchdog{})
	}
	m.reconcile()
	m.lead()
	return m.take()
}

// Step applies one event and returns what to do.
func (m *Machine) Step(ev Event) []Action {
	switch e := ev.(type) {
	case Committed:
		m.commit(e)
	case Restored:
		m.table = e.Table.Clone()
		m.inflight = map[string]int64{}
	case Leadership:
		switch {
		case !e.Leader:
			if m.leader {
				m.logf("info", "no longer the leader")
			}
			m.resetLeader(false)
		case e.Ready:
			if m.leader && !m.ready { // a Ready after a loss is stale
				m.ready = true
				m.logf("info", "leader: the table is current, acting as leader")
				m.grantLatestPings()
			}
		default:
			m.resetLeader(true)
		}
	case PingIn:
		m.lastHeard[e.From] = m.now
		m.lastPing[e.From] = e.Seq
		m.status[e.From] = e.Status
		if m.IsLeader() && m.grantable(e.From) {
			m.grant(e.From, e.Seq)
		}
	case GrantIn:
		sent, ok := m.sentAt[e.Seq]
		if !ok {
			break // a grant for a ping we no longer wait for extends nothing
		}
		delete(m.sentAt, e.Seq)
		m.pending = append(m.pending, grant{until: sent + m.p.Lease, index: e.Index})
		m.promoteGrants()
	case Health:
		if m.healthy[e.VIP] != e.Healthy {
			m.logf("info", fmt.Sprintf("%s is %s here", e.VIP, healthWord(e.Healthy)))
		}
		m.healthy[e.VIP] = e.Healthy
	case FenceDone:
		m.fenceDone(e)
	case UnfenceAsked:
		if m.table.Fenced[e.Node] == 0 {
			m.logf("info", "asked to unfence "+e.Node+", which is not fenced")
			break
		}
		m.unfence[e.Node] = m.table.Fenced[e.Node]
		m.logf("info", "an operator asked to unfence "+e.Node)
	case ProposeFailed:
		delete(m.inflight, e.Entry.String())
	}
	m.promoteGrants()
	m.reconcile()
	return m.take()
}

func healthWord(ok bool) string {
	if ok {
		return "healthy"
	}
	return "unhealthy"
}

func (m *Machine) commit(e Committed) {
	changed := m.table.Apply(e.Index, e.Entry)
	delete(m.inflight, e.Entry.String())
	if !changed {
		return
	}
	switch e.Entry.Op {
	case OpUnfence:
		delete(m.unfencing, e.Entry.Node)
		delete(m.fencing, e.Entry.Node)
	case OpFenced, OpExpired:
		delete(m.fencing, e.Entry.Node)
	}
	// A request to unfence a fencing that is over is dropped.
	for n, at := range m.unfence {
		if m.table.Fenced[n] != at {
			delete(m.unfence, n)
		}
	}
	m.logf("info", "table: "+e.Entry.String()+reasonSuffix(e.Entry.Reason))
}

func reasonSuffix(r string) string {
	if r == "" {
		return ""
	}
	return ": " + r
}

func (m *Machine) ping() {
	m.seq++
	m.sentAt[m.seq] = m.now
	for s, t := range m.sentAt {
		if m.now-t > m.p.Lease {
			delete(m.sentAt, s) // its grant could extend nothing now
		}
	}
	m.nextPing = m.now + m.p.Ping
	m.emit(SendPing{Seq: m.seq, Status: m.selfStatus()})
}

// promoteGrants turns the grants whose index our table has reached into
// lease.
func (m *Machine) promoteGrants() {
	kept := m.pending[:0]
	for _, g := range m.pending {
		switch {
		case g.until <= m.now:
			// expired while waiting
		case g.index <= m.table.Index:
			if g.until > m.leaseUntil {
				m.leaseUntil = g.until
			}
		default:
			kept = append(kept, g)
		}
	}
	m.pending = kept
}

func (m *Machine) selfStatus() PeerStatus {
	st := PeerStatus{
		Healthy:  map[string]bool{},
		Kernel:   map[string]bool{},
		Released: map[string]uint64{},
		Index:    m.table.Index,
	}
	for v, ok := range m.healthy {
		if ok {
			st.Healthy[v] = true
		}
	}
	for v, ok := range m.kernel {
		if ok {
			st.Kernel[v] = true
		}
	}
	for v, e := range m.released {
		st.Released[v] = e
	}
	if len(m.unfence) > 0 {
		st.Unfence = map[string]uint64{}
		for n, at := range m.unfence {
			st.Unfence[n] = at
		}
	}
	return st
}

// reconcile holds each VIP in the kernel exactly while the table says it is
// ours (for an epoch we have not released), our lease is valid and it is
// healthy here; it removes an address before anything may report it
// released.
func (m *Machine) reconcile() {
	for _, vp := range m.p.VIPs {
		v := vp.Name
		h := m.table.VIPs[v]
		ours := h.Holder == m.p.Self && m.released[v] != h.Epoch
		why := ""
		switch {
		case ours && h.Since <= m.p.StartIndex:
			why = "it was assigned before this process started"
		case !ours:
			why = "the table gives it to " + holderWord(h.Holder)
		case m.table.Fenced[m.p.Self] != 0:
			why = "this node is fenced"
		case m.p.Witness[m.p.Self]:
			why = "this node is a witness"
		case !m.healthy[v]:
			why = "it is unhealthy here"
		case !m.LeaseValid():
			why = "the lease ran out (no grant from a leader with quorum)"
		}
		if why == "" {
			m.hold(v, h.Epoch)
			continue
		}
		if m.kernel[v] {
			m.emit(RemoveVIP{VIP: v, Reason: why})
			m.kernel[v] = false
			m.logf("warn", fmt.Sprintf("removed %s: %s", v, why))
			if h.Holder == m.p.Self {
				m.released[v] = h.Epoch
			}
			continue
		}
		if ours && why != "the lease ran out (no grant from a leader with quorum)" {
			// Assigned to us but we cannot hold it: say so, so the leader
			// moves it without waiting for anything.
			m.released[v] = h.Epoch
			m.logf("warn", fmt.Sprintf("releasing %s (epoch %d): %s", v, h.Epoch, why))
		}
	}
}

func holderWord(h string) string {
	if h == "" {
		return "nobody"
	}
	return h
}

func (m *Machine) hold(v string, epoch uint64) {
	if !m.kernel[v] {
		m.kernel[v] = true
		m.emit(AddVIP{VIP: v})
		m.renewAt[v] = m.now + m.p.Ping
		m.arpLeft[v] = m.p.ARPCount
		m.nextARP[v] = m.now
		m.logf("info", fmt.Sprintf("holding %s (epoch %d)", v, epoch))
	} else if m.now >= m.renewAt[v] {
		m.emit(AddVIP{VIP: v}) // renews the address's kernel lifetime
		m.renewAt[v] = m.now + m.p.Ping
	}
	if m.now < m.nextARP[v] {
		return
	}
	switch {
	case m.arpLeft[v] > 0:
		m.emit(Announce{VIP: v})
		m.arpLeft[v]--
		if m.arpLeft[v] > 0 {
			m.nextARP[v] = m.now + m.p.ARPInterval
		} else {
			m.nextARP[v] = m.now + m.p.ARPRefresh
		}
	case m.p.ARPRefresh > 0:
		m.emit(Announce{VIP: v})
		m.nextARP[v] = m.now + m.p.ARPRefresh
	default:
		m.nextARP[v] = 1 << 62
	}
}

// Leave is a clean stop: every VIP this node holds is removed and reported
// released at once, so the leader moves it without fencing anyone.
func (m *Machine) Leave() []Action {
	for _, vp := range m.p.VIPs {
		v := vp.Name
		h := m.table.VIPs[v]
		if m.kernel[v] {
			m.emit(RemoveVIP{VIP: v, Reason: "halo is stopping"})
			m.kernel[v] = false
		}
		if h.Holder == m.p.Self {
			m.released[v] = h.Epoch
		}
		m.healthy[v] = false
	}
	m.ping()
	return m.take()
}
