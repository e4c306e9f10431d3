package cluster

import "sort"

// Params are a machine's fixed inputs, in ticks: the driver converts the
// configuration's durations once.
type Params struct {
	Self    string
	Peers   []string // every voter, Self included, sorted
	Witness map[string]bool
	// StartIndex is the last index of the raft log when the process
	// started (0 for a new node): assignments at or before it are from a
	// previous life of this process and are released, never held.
	StartIndex uint64
	VIPs       []VIPParams
	// Lease: a grant lets a node hold its VIPs until it sent the ping + Lease;
	// a node not heard from for Lease is suspect.
	Lease int64
	// Ping: how often a node pings every voter (Lease / 4).
	Ping int64
	// Watchdog is the watchdog timeout, 0 without one. With one, a silent
	// holder is expired once Lease×2 + Watchdog×2 has passed since its last
	// grant (SBD's msgwait is twice the watchdog timeout).
	Watchdog int64
	// ARPCount announcements ARPInterval apart after an address is added,
	// then one each ARPRefresh (0: none).
	ARPCount    int
	ARPInterval int64
	ARPRefresh  int64
	// FenceBackoff is the wait after the first failed fence; it doubles up
	// to FenceBackoffMax.
	FenceBackoff    int64
	FenceBackoffMax int64
}

// VIPParams is one VIP as the machine knows it: by name only; the driver
// knows its address and interface.
type VIPParams struct {
	Name   string
	Prefer string
}

// PeerStatus is what a node tells every voter in each ping.
type PeerStatus struct {
	// Healthy: the VIPs the node may hold (local health).
	Healthy map[string]bool `json:"healthy,omitempty"`
	// Kernel: the VIPs in the node's kernel (for status only).
	Kernel map[string]bool `json:"kernel,omitempty"`
	// Released: for each VIP, the epoch the node removed and will never add
	// again.
	Released map[string]uint64 `json:"released,omitempty"`
	// Unfence: nodes an operator asked, on this node, to unfence, each
	// with the index of the fencing to undo.
	Unfence map[string]uint64 `json:"unfence,omitempty"`
	// Index: the table index the node has applied.
	Index uint64 `json:"index"`
}

// Event is an input of a machine: something the driver saw.
type Event interface{ isEvent() }

// The events.
type (
	// Committed: the raft log applied an entry (in log order).
	Committed struct {
		Index uint64
		Entry Entry
	}
	// Restored: the table was replaced from a raft snapshot.
	Restored struct{ Table Table }
	// Leadership: raft made this node leader, or it lost leadership. Ready
	// is sent once, after the new leader applied every entry committed
	// before it (raft's barrier): only then may it grant.
	Leadership struct {
		Leader bool
		Ready  bool
	}
	// PingIn: a voter's ping arrived.
	PingIn struct {
		From   string
		Seq    uint64
		Status PeerStatus
	}
	// GrantIn: the leader answered our ping Seq, having verified its
	// leadership; the grant counts once our table is at Index.
	GrantIn struct {
		From  string
		Seq   uint64
		Index uint64
	}
	// Health: local health of one VIP changed.
	Health struct {
		VIP     string
		Healthy bool
	}
	// FenceDone: a fence (or unfence) of Node finished.
	FenceDone struct {
		Node    string
		Unfence bool
		OK      bool
		Detail  string
	}
	// UnfenceAsked: an operator asked, on this node, to unfence Node.
	UnfenceAsked struct{ Node string }
	// ProposeFailed: raft refused an entry (not leader any more, timeout).
	ProposeFailed struct{ Entry Entry }
)

func (Committed) isEvent()     {}
func (Restored) isEvent()      {}
func (Leadership) isEvent()    {}
func (PingIn) isEvent()        {}
func (GrantIn) isEvent()       {}
func (Health) isEvent()        {}
func (FenceDone) isEvent()     {}
func (UnfenceAsked) isEvent()  {}
func (ProposeFailed) isEvent() {}

// Action is an output of a machine: something the driver must do.
type Action interface{ isAction() }

// The actions.
type (
	// AddVIP adds (or renews the lifetime of) a VIP in the kernel.
	AddVIP struct{ VIP string }
	// RemoveVIP removes it.
	RemoveVIP struct {
		VIP    string
		Reason string
	}
	// Announce sends one gratuitous ARP / unsolicited NA for a held VIP.
	Announce struct{ VIP string }
	// SendPing sends ping Seq with Status to every voter, this node
	// included.
	SendPing struct {
		Seq    uint64
		Status PeerStatus
	}
	// SendGrant answers To's ping Seq, if raft still confirms this node is
	// leader; Index is the table index the grant requires.
	SendGrant struct {
		To    string
		Seq   uint64
		Index uint64
	}
	// Propose appends an entry to the raft log (leader only).
	Propose struct{ Entry Entry }
	// Fence runs Node's fence agent (off and status, or reboot).
	Fence struct {
		Node    string
		Attempt int
	}
	// Unfence runs Node's fence agent with action=on.
	Unfence struct{ Node string }
	// PetWatchdog keeps the watchdog from resetting the node.
	PetWatchdog struct{}
	// Log records a decision and its reason.
	Log struct {
		Level string // "info", "warn", "error"
		Msg   string
	}
)

func (AddVIP) isAction()      {}
func (RemoveVIP) isAction()   {}
func (Announce) isAction()    {}
func (SendPing) isAction()    {}
func (SendGrant) isAction()   {}
func (Propose) isAction()     {}
func (Fence) isAction()       {}
func (Unfence) isAction()     {}
func (PetWatchdog) isAction() {}
func (Log) isAction()         {}

// Machine is one node's cluster logic: deterministic, no I/O, no clock.
// The driver feeds it ticks and events and carries out the actions it
// returns. Nothing in it may depend on anything but those inputs, which is
// what lets the simulation replay any schedule from a seed.
type Machine struct {
	p   Params
	now int64

	table Table

	// Lease, from grants to our pings.
	seq        uint64
	sentAt     map[uint64]int64 // outstanding pings, by seq
	leaseUntil int64
	pending    []grant // grants waiting for our table to reach their index
	nextPing   int64

	// Local state.
	healthy  map[string]bool
	kernel   map[string]bool   // what we put in the kernel
	released map[string]uint64 // epochs we removed
	nextARP  map[string]int64
	arpLeft  map[string]int
	renewAt  map[string]int64
	unfence  map[string]uint64 // asked here: node → its fencing's index

	// What we heard from the others.
	lastHeard map[string]int64
	lastPing  map[string]uint64 // the seq of each voter's latest ping
	status    map[string]PeerStatus

	// Leader state; reset when leadership changes.
	leader      bool
	ready       bool
	leaderSince int64
	lastGrant   map[string]int64
	fencing     map[string]*fenceState
	unfencing   map[string]bool
	inflight    map[string]int64 // proposals by key, with when proposed

	out []Action
}

type grant struct {
	until int64
	index uint64
}

type fenceState struct {
	running bool
	attempt int
	nextAt  int64
	done    bool // confirmed; waiting for "fenced" to apply
}

// NewMachine makes the machine of p.Self at tick 0.
func NewMachine(p Params) *Machine {
	sort.Strings(p.Peers)
	m := &Machine{
		p:         p,
		table:     NewTable(),
		sentAt:    map[uint64]int64{},
		healthy:   map[string]bool{},
		kernel:    map[string]bool{},
		released:  map[string]uint64{},
		nextARP:   map[string]int64{},
		arpLeft:   map[string]int{},
		renewAt:   map[string]int64{},
		unfence:   map[string]uint64{},
		lastHeard: map[string]int64{},
		lastPing:  map[string]uint64{},
		status:    map[string]PeerStatus{},
	}
	m.resetLeader(false)
	return m
}

func (m *Machine) resetLeader(leader bool) {
	m.leader, m.ready = leader, false
	m.leaderSince = m.now
	m.lastGrant = map[string]int64{}
	m.fencing = map[string]*fenceState{}
	m.unfencing = map[string]bool{}
	m.inflight = map[string]int64{}
}

func (m *Machine) emit(a Action) { m.out = append(m.out, a) }

func (m *Machine) logf(level, msg string) { m.emit(Log{Level: level, Msg: msg}) }

// take returns the actions produced so far and forgets them.
func (m *Machine) take() []Action {
	out := m.out
	m.out = nil
	return out
}

// Now is the machine's tick.
func (m *Machine) Now() int64 { return m.now }

// Table is the table as this node has applied it.
func (m *Machine) Table() *Table { return &m.table }

// IsLeader says whether this node leads and may act as leader.
func (m *Machine) IsLeader() bool { return m.leader && m.ready }

// LeaseValid says whether this node may hold VIPs now.
func (m *Machine) LeaseValid() bool { return m.now < m.leaseUntil }

// Kernel says whether this machine put VIP v in the kernel.
func (m *Machine) Kernel(v string) bool { return m.kernel[v] }

// LastHeard is the tick this node last heard from peer (-1: never).
func (m *Machine) LastHeard(peer string) int64 {
	t, ok := m.lastHeard[peer]
	if !ok {
		return -1
	}
	return t
}

func (m *Machine) heardEver(peer string) bool {
	_, ok := m.status[peer]
	return ok
}

// Fencing reports, for each node this leader is fencing, the attempts so far.
func (m *Machine) Fencing() map[string]int {
	out := map[string]int{}
	for n, f := range m.fencing {
		out[n] = f.attempt
	}
	return out
}
