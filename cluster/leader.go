package cluster

import "fmt"

// This file is the part of the machine only the leader runs: freeing VIPs
// that were released, fencing (or waiting out) silent holders, assigning
// free VIPs, unfencing, and granting leases.

// suspect: a voter other than us we have not heard from for a lease.
func (m *Machine) suspect(n string) bool {
	return n != m.p.Self && m.now-m.lastHeard[n] > m.p.Lease
}

func (m *Machine) heard(n string) bool {
	return n == m.p.Self || m.now-m.lastHeard[n] <= m.p.Lease
}

func (m *Machine) peerStatus(n string) PeerStatus {
	if n == m.p.Self {
		return m.selfStatus()
	}
	return m.status[n]
}

// grantable: whether a ping from n earns it a lease. Not while we are
// expiring it (the bound counts from its last grant) or once it is fenced.
func (m *Machine) grantable(n string) bool {
	if m.table.Fenced[n] != 0 {
		return false
	}
	if _, ok := m.inflight[Entry{Op: OpExpired, Node: n}.String()]; ok {
		return false
	}
	if f := m.fencing[n]; f != nil && f.done {
		return false
	}
	return true
}

func (m *Machine) grant(n string, seq uint64) {
	m.lastGrant[n] = m.now
	m.emit(SendGrant{To: n, Seq: seq, Index: m.table.Index})
}

// grantLatestPings answers, once a new leader is ready, the latest ping of
// every voter heard within a ping interval. Those pings arrived before we
// could grant; without an answer now a holder's lease would have to outlast
// the election plus a whole ping interval, and a slow election would move
// its VIPs although nothing is wrong with it. Answering late is safe: the
// lease counts from when the node sent the ping, and the grant still waits
// for raft to confirm our quorum.
func (m *Machine) grantLatestPings() {
	for _, n := range m.p.Peers {
		seq, ok := m.lastPing[n]
		if ok && m.now-m.lastHeard[n] <= m.p.Ping && m.grantable(n) {
			m.grant(n, seq)
		}
	}
}

func (m *Machine) propose(e Entry) {
	k := e.String()
	if t, ok := m.inflight[k]; ok && m.now-t < m.p.Lease {
		return
	}
	m.inflight[k] = m.now
	m.emit(Propose{Entry: e})
}

func (m *Machine) lead() {
	if !m.IsLeader() {
		return
	}
	m.freeReleased()
	m.handleSilent()
	m.assignFree()
	m.runUnfences()
}

func (m *Machine) freeReleased() {
	for _, vp := range m.p.VIPs {
		h := m.table.VIPs[vp.Name]
		if h.Holder == "" {
			continue
		}
		if m.peerStatus(h.Holder).Released[vp.Name] == h.Epoch {
			m.propose(Entry{Op: OpRelease, VIP: vp.Name, Node: h.Holder, Epoch: h.Epoch, Reason: "the holder removed it"})
		}
	}
}

// handleSilent fences every silent holder, and with a watchdog also waits
// out its self-fencing bound; whichever confirms first frees its VIPs.
func (m *Machine) handleSilent() {
	for _, n := range m.p.Peers {
		holds := m.table.Held()[n] > 0
		f := m.fencing[n]
		if !holds || m.table.Fenced[n] != 0 || !m.suspect(n) {
			if f != nil && !f.running && !f.done {
				delete(m.fencing, n)
				m.logf("info", fmt.Sprintf("%s answers again: no more fencing of it", n))
			}
			continue
		}
		if f == nil {
			f = &fenceState{nextAt: m.now}
			m.fencing[n] = f
			m.logf("warn", fmt.Sprintf("%s holds VIPs and has not been heard for %d ticks: fencing it", n, m.now-m.lastHeard[n]))
		}
		if !f.running && !f.done && m.now >= f.nextAt {
			f.running = true
			f.attempt++
			m.emit(Fence{Node: n, Attempt: f.attempt})
		}
		if m.p.Watchdog > 0 {
			base := max(m.leaderSince, m.lastGrant[n])
			if m.now >= base+2*m.p.Lease+2*m.p.Watchdog {
				m.propose(Entry{Op: OpExpired, Node: n, Reason: fmt.Sprintf("its watchdog bound ran out %d ticks after its last grant", m.now-base)})
			}
		}
	}
}

func (m *Machine) fenceDone(e FenceDone) {
	if !m.IsLeader() {
		return
	}
	if e.Unfence {
		if !e.OK {
			delete(m.unfencing, e.Node) // asked again, it runs again
		}
		if e.OK {
			m.propose(Entry{Op: OpUnfence, Node: e.Node, Fence: m.table.Fenced[e.Node], Reason: "an operator unfenced it; its agent turned it on"})
		} else {
			m.logf("error", fmt.Sprintf("unfencing %s failed: %s", e.Node, e.Detail))
		}
		return
	}
	f := m.fencing[e.Node]
	if f == nil {
		// A result for a fencing this leader no longer tracks: a failure
		// changes nothing, a success still means the node is off.
		if e.OK {
			m.propose(Entry{Op: OpFenced, Node: e.Node, Reason: "its fence agent confirmed it off: " + e.Detail})
		}
		return
	}
	f.running = false
	if e.OK {
		f.done = true
		m.propose(Entry{Op: OpFenced, Node: e.Node, Reason: "its fence agent confirmed it off: " + e.Detail})
		return
	}
	back := m.p.FenceBackoff << min(f.attempt-1, 20)
	if back > m.p.FenceBackoffMax || back <= 0 {
		back = m.p.FenceBackoffMax
	}
	f.nextAt = m.now + back
	m.logf("error", fmt.Sprintf("fencing %s failed (attempt %d): %s; its VIPs stay down until it is fenced or answers again; retrying in %d ticks", e.Node, f.attempt, e.Detail, back))
}

func (m *Machine) eligible(n, v string) bool {
	if m.p.Witness[n] || m.table.Fenced[n] != 0 || !m.heard(n) || m.fencing[n] != nil {
		return false
	}
	if _, ok := m.inflight[Entry{Op: OpExpired, Node: n}.String()]; ok {
		return false
	}
	if n == m.p.Self {
		return m.healthy[v] // the leader's own lease follows its next ping
	}
	return m.peerStatus(n).Healthy[v]
}

// assignFree gives each free VIP to its preferred node if that node is
// eligible, otherwise to the eligible node holding the fewest (ties by name).
func (m *Machine) assignFree() {
	held := m.table.Held()
	for _, vp := range m.p.VIPs {
		h := m.table.VIPs[vp.Name]
		if h.Holder != "" {
			continue
		}
		pick := ""
		if vp.Prefer != "" && m.eligible(vp.Prefer, vp.Name) {
			pick = vp.Prefer
		} else if vp.Prefer != "" && vp.Prefer != m.p.Self && !m.heardEver(vp.Prefer) && m.now-m.leaderSince <= m.p.Lease {
			// A new leader has not heard the preferred node yet (the
			// cluster is starting): give it a lease to show up.
			continue
		} else {
			for _, n := range m.p.Peers {
				if m.eligible(n, vp.Name) && (pick == "" || held[n] < held[pick]) {
					pick = n
				}
			}
		}
		if pick == "" {
			continue
		}
		held[pick]++
		m.propose(Entry{Op: OpAssign, VIP: vp.Name, Node: pick, Epoch: h.Epoch + 1})
	}
}

func (m *Machine) runUnfences() {
	for _, n := range m.p.Peers {
		st := m.peerStatus(n)
		for f, at := range st.Unfence {
			if at != 0 && m.table.Fenced[f] == at && !m.unfencing[f] {
				m.unfencing[f] = true
				m.logf("info", fmt.Sprintf("unfencing %s, as asked on %s", f, n))
				m.emit(Unfence{Node: f})
			}
		}
	}
}
