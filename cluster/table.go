package cluster

import (
	"encoding/json"
	"fmt"
	"sort"
)

// Op names a change of the replicated table.
type Op string

// The table's entries (docs/cluster-protocol.md has the table of when each
// applies). There is deliberately no entry that moves a VIP from one holder
// to another: a VIP gets a new holder only after one of release, fenced or
// expired freed it.
const (
	OpAssign  Op = "assign"
	OpRelease Op = "release"
	OpFenced  Op = "fenced"
	OpExpired Op = "expired"
	OpUnfence Op = "unfence"
)

// Entry is one committed change of the table, as it travels through the raft
// log.
type Entry struct {
	Op    Op     `json:"op"`
	VIP   string `json:"vip,omitempty"`
	Node  string `json:"node"`
	Epoch uint64 `json:"epoch,omitempty"`
	// Fence, in an unfence entry, is the index of the fencing it undoes: a
	// request to unfence an earlier fencing of the node does nothing.
	Fence  uint64 `json:"fence,omitempty"`
	Reason string `json:"reason,omitempty"`
}

func (e Entry) String() string {
	switch e.Op {
	case OpAssign, OpRelease:
		return fmt.Sprintf("%s %s to %s (epoch %d)", e.Op, e.VIP, e.Node, e.Epoch)
	}
	return fmt.Sprintf("%s %s", e.Op, e.Node)
}

// Holding is who holds one VIP in the table.
type Holding struct {
	Holder string `json:"holder,omitempty"` // "" when free
	Epoch  uint64 `json:"epoch"`            // counts assignments
	// Since is the raft index of the assignment. A node that restarted
	// treats every assignment at or before its log's last index at start
	// as released: it may have removed that VIP and said so before it
	// stopped, and it no longer remembers.
	Since uint64 `json:"since,omitempty"`
}

// Table is the replicated state every node applies in one order: each VIP's
// holder and which nodes are fenced. Index is the raft index of the last
// entry applied, which is how a node knows it is at least as current as a
// grant requires.
type Table struct {
	VIPs map[string]Holding `json:"vips"`
	// Fenced: the fenced nodes, each with the index of its fencing.
	Fenced map[string]uint64 `json:"fenced"`
	Index  uint64            `json:"index"`
}

// NewTable is the empty table: every VIP free, nobody fenced.
func NewTable() Table {
	return Table{VIPs: map[string]Holding{}, Fenced: map[string]uint64{}}
}

// Apply applies e, committed at index, and says whether it changed
// anything. Each entry is checked against the table as it is now, not as it
// was when the entry was proposed, so an entry proposed by a deposed leader
// that commits late is a no-op where it no longer makes sense.
func (t *Table) Apply(index uint64, e Entry) bool {
	if index > t.Index {
		t.Index = index
	}
	switch e.Op {
	case OpAssign:
		h := t.VIPs[e.VIP]
		if h.Holder != "" || t.Fenced[e.Node] != 0 || e.Epoch != h.Epoch+1 {
			return false
		}
		t.VIPs[e.VIP] = Holding{Holder: e.Node, Epoch: e.Epoch, Since: index}
		return true
	case OpRelease:
		h := t.VIPs[e.VIP]
		if h.Holder != e.Node || h.Epoch != e.Epoch {
			return false
		}
		t.VIPs[e.VIP] = Holding{Epoch: h.Epoch}
		return true
	case OpFenced, OpExpired:
		changed := false
		if e.Op == OpFenced && t.Fenced[e.Node] == 0 {
			t.Fenced[e.Node] = index
			changed = true
		}
		for v, h := range t.VIPs {
			if h.Holder == e.Node {
				t.VIPs[v] = Holding{Epoch: h.Epoch}
				changed = true
			}
		}
		return changed
	case OpUnfence:
		if t.Fenced[e.Node] == 0 || t.Fenced[e.Node] != e.Fence {
			return false
		}
		delete(t.Fenced, e.Node)
		return true
	}
	return false
}

// Held counts the VIPs each node holds.
func (t *Table) Held() map[string]int {
	n := map[string]int{}
	for _, h := range t.VIPs {
		if h.Holder != "" {
			n[h.Holder]++
		}
	}
	return n
}

// Clone is a deep copy, for snapshots and status.
func (t *Table) Clone() Table {
	c := Table{VIPs: make(map[string]Holding, len(t.VIPs)), Fenced: make(map[string]uint64, len(t.Fenced)), Index: t.Index}
	for k, v := range t.VIPs {
		c.VIPs[k] = v
	}
	for k, v := range t.Fenced {
		c.Fenced[k] = v
	}
	return c
}

// FencedNodes lists the fenced nodes, sorted.
func (t *Table) FencedNodes() []string {
	var out []string
	for n := range t.Fenced {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func encodeEntry(e Entry) []byte {
	b, _ := json.Marshal(e) // an Entry always marshals
	return b
}

func decodeEntry(b []byte) (Entry, error) {
	var e Entry
	err := json.Unmarshal(b, &e)
	return e, err
}
