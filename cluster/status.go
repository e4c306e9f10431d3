package cluster

import (
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"
)

// This file is what the cluster tells operators: Status, its text form
// (halo cluster status, the runtime API's "show cluster"), and the fencing
// history.

// Status is one node's view of the cluster.
type Status struct {
	Node     string        `json:"node"`
	Leader   string        `json:"leader"`
	IsLeader bool          `json:"is_leader"`
	Quorum   bool          `json:"quorum"` // this node's lease is valid
	Index    uint64        `json:"index"`
	Members  []Member      `json:"members"`
	VIPs     []VIPStatus   `json:"vips"`
	Fencing  []FenceRecord `json:"fencing"`
	At       time.Time     `json:"at"`
}

// Member is one voter as this node sees it.
type Member struct {
	Name    string `json:"name"`
	Address string `json:"address"`
	Witness bool   `json:"witness,omitempty"`
	Fenced  bool   `json:"fenced,omitempty"`
	// HeardAgo is how long since this node heard the member's ping (-1:
	// never); 0 for this node.
	HeardAgo time.Duration `json:"heard_ago"`
	Leader   bool          `json:"leader,omitempty"`
}

// VIPStatus is one VIP as this node sees it.
type VIPStatus struct {
	Address   string `json:"address"`
	Interface string `json:"interface"`
	Holder    string `json:"holder"`
	Epoch     uint64 `json:"epoch"`
	HeldHere  bool   `json:"held_here"` // in this node's kernel
	Healthy   bool   `json:"healthy_here"`
	Prefer    string `json:"prefer,omitempty"`
}

// FenceRecord is one run of a fence agent.
type FenceRecord struct {
	Node     string        `json:"node"`
	Action   string        `json:"action"`
	Attempt  int           `json:"attempt,omitempty"`
	Start    time.Time     `json:"start"`
	Duration time.Duration `json:"duration"`
	OK       bool          `json:"ok"`
	Detail   string        `json:"detail,omitempty"`
}

const historyLen = 32

func (c *Cluster) record(r FenceRecord) {
	c.statusMu.Lock()
	defer c.statusMu.Unlock()
	c.history = append(c.history, r)
	if len(c.history) > historyLen {
		c.history = c.history[len(c.history)-historyLen:]
	}
	c.metrics.fenced(r)
}

// publish copies the machine's state for readers on other goroutines; the
// loop calls it every tick.
func (c *Cluster) publish() {
	m := c.m
	st := Status{Node: c.cfg.Node, IsLeader: m.IsLeader(), Quorum: m.LeaseValid(), Index: m.table.Index, At: time.Now()}
	if _, id := c.raft.LeaderWithID(); id != "" {
		st.Leader = string(id)
	}
	for _, p := range c.cfg.Peers {
		mb := Member{Name: p.Name, Address: p.Address, Witness: p.Witness, Fenced: m.table.Fenced[p.Name] != 0, Leader: p.Name == st.Leader}
		switch {
		case p.Name == c.cfg.Node:
		case m.LastHeard(p.Name) < 0 || !m.heardEver(p.Name):
			mb.HeardAgo = -1
		default:
			mb.HeardAgo = time.Duration(m.now-m.LastHeard(p.Name)) * Tick
		}
		st.Members = append(st.Members, mb)
	}
	for _, v := range c.cfg.VIPs {
		name := v.Prefix.String()
		h := m.table.VIPs[name]
		st.VIPs = append(st.VIPs, VIPStatus{Address: name, Interface: v.Interface, Holder: h.Holder, Epoch: h.Epoch,
			HeldHere: m.Kernel(name), Healthy: m.healthy[name], Prefer: v.Prefer})
	}
	c.statusMu.Lock()
	st.Fencing = append([]FenceRecord(nil), c.history...)
	c.status = st
	c.statusMu.Unlock()
	c.metrics.update(&st)
}

// Status is the latest published status.
func (c *Cluster) Status() Status {
	c.statusMu.Lock()
	defer c.statusMu.Unlock()
	return c.status
}

// Unfence asks the cluster, through this node, to let node back in after
// repair: the leader runs its agent's "on" and clears the fencing.
func (c *Cluster) Unfence(node string) error {
	if !c.peers[node] {
		return fmt.Errorf("no node %q in the cluster", node)
	}
	st := c.Status()
	for _, m := range st.Members {
		if m.Name == node && !m.Fenced {
			return fmt.Errorf("%s is not fenced", node)
		}
	}
	c.post(UnfenceAsked{Node: node})
	return nil
}

// Text renders a status for people.
func (st Status) Text() string {
	var b strings.Builder
	leader := st.Leader
	if leader == "" {
		leader = "none"
	}
	q := "yes"
	if !st.Quorum {
		q = "NO (holds no VIP)"
	}
	fmt.Fprintf(&b, "node %s  leader %s  quorum %s  table index %d\n\n", st.Node, leader, q, st.Index)
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "MEMBER\tADDRESS\tROLE\tSTATE\tLAST HEARD")
	for _, m := range st.Members {
		role := "voter"
		if m.Witness {
			role = "witness"
		}
		if m.Leader {
			role += ", leader"
		}
		state := "member"
		if m.Fenced {
			state = "FENCED"
		}
		heard := "-"
		switch {
		case m.Name == st.Node:
			heard = "(this node)"
		case m.HeardAgo >= 0:
			heard = m.HeardAgo.Round(10*time.Millisecond).String() + " ago"
		default:
			heard = "never"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", m.Name, m.Address, role, state, heard)
	}
	fmt.Fprintln(tw, "\t\t\t\t")
	fmt.Fprintln(tw, "VIP\tINTERFACE\tHOLDER\tEPOCH\tHERE")
	for _, v := range st.VIPs {
		holder := v.Holder
		if holder == "" {
			holder = "NONE (down)"
		}
		here := "healthy"
		if !v.Healthy {
			here = "unhealthy"
		}
		if v.HeldHere {
			here = "held, " + here
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", v.Address, v.Interface, holder, v.Epoch, here)
	}
	tw.Flush()
	if len(st.Fencing) > 0 {
		b.WriteString("\nfencing (this node's runs, newest last):\n")
		for _, f := range st.Fencing {
			res := "ok"
			if !f.OK {
				res = "FAILED"
			}
			fmt.Fprintf(&b, "  %s  %s %s attempt %d: %s in %s  %s\n", f.Start.UTC().Format(time.RFC3339), f.Action, f.Node, f.Attempt, res, f.Duration.Round(time.Millisecond), f.Detail)
		}
	}
	return b.String()
}

// JSON renders a status for programs.
func (st Status) JSON() string {
	b, _ := json.MarshalIndent(st, "", "  ")
	return string(b) + "\n"
}
