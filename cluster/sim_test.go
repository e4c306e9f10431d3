package cluster

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"
)

// The deterministic simulation of the cluster: three machines, an abstract
// raft (one committed log, leaders elected only with a quorum connected,
// entries of a deposed leader committing late or never), a network that
// loses, delays and reorders, and a world that crashes, pauses, partitions,
// unhealths and fences nodes. After every step it asserts the invariants of
// docs/cluster-protocol.md. Everything random comes from one seed, printed
// on failure; HALO_SIM_SEED replays one.

var (
	simSchedules = flag.Int("sim.schedules", 1000, "random schedules to run")
	simTicks     = flag.Int("sim.ticks", 3000, "ticks per schedule")
)

const simVIP = "10.99.0.100/24"

type procState int

const (
	running procState = iota
	paused
	dead
)

type simNode struct {
	name     string
	m        *Machine
	proc     procState
	link     bool // off when fenced (fabric fencing)
	isolated bool // cut from the peers, still on the clients' network
	kernel   map[string]bool
	applied  int // committed entries applied
	healthy  bool
	inbox    []simMsg // held while paused
	leader   int      // the term it believes it leads, 0: none
	ready    bool
	armed    bool // watchdog opened
	lastPet  int64
	resumeAt int64
	healAt   int64
	healthAt int64
	restart  int64 // tick to restart a dead process, 0: none
	repaired bool  // fenced, and its halo restarted
}

type simMsg struct {
	at int64
	to int
	ev Event
}

type proposal struct {
	term  int
	entry Entry
}

type sim struct {
	t      *testing.T
	seed   uint64
	rng    *rand.Rand
	now    int64
	p      Params
	nodes  []*simNode
	log    []Entry
	props  []proposal
	term   int
	leader int // index of the current leader, -1: none
	// readyTerm is the newest term whose leader applied every earlier
	// entry: entries of older terms can no longer commit (raft: a new
	// leader's first commit decides all earlier entries in its log).
	readyTerm   int
	noLeaderFor int64
	msgs        []simMsg
	fenceMode   string // "ok", "fail", "hang"
	fenceModeTo int64
	lossUntil   int64
	faults      int
	trace       []string
	maxTrace    int
	stats       simStats
	// lyingFence makes the fence agent report success without fencing:
	// the invariants must then catch a dual holder (the checker can fail).
	lyingFence bool
	failed     string
}

type simStats struct {
	faults, fences, heldTicks, ticks int
}

func newSim(t *testing.T, seed uint64, watchdog bool) *sim {
	s := &sim{t: t, seed: seed, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), leader: -1, fenceMode: "ok", maxTrace: 400}
	s.p = Params{
		Peers: []string{"ctl1", "ctl2", "ctl3"}, Witness: map[string]bool{},
		VIPs:  []VIPParams{{Name: simVIP, Prefer: "ctl1"}},
		Lease: 40, Ping: 10, ARPCount: 5, ARPInterval: 4, ARPRefresh: 200,
		FenceBackoff: 20, FenceBackoffMax: 200,
	}
	if watchdog {
		s.p.Watchdog = 60
	}
	for _, n := range s.p.Peers {
		s.nodes = append(s.nodes, &simNode{name: n, link: true, kernel: map[string]bool{}, healthy: true})
	}
	for i := range s.nodes {
		s.start(i)
	}
	return s
}

func (s *sim) logf(format string, a ...any) {
	if len(s.trace) >= s.maxTrace {
		s.trace = s.trace[1:]
	}
	s.trace = append(s.trace, fmt.Sprintf("%5d ", s.now)+fmt.Sprintf(format, a...))
}

// start runs a new process on node i: it clears the VIPs its kernel has
// (as halo does at start) and replays the committed log from the start.
func (s *sim) start(i int) {
	n := s.nodes[i]
	p := s.p
	p.Self = n.name
	p.StartIndex = uint64(len(s.log))
	n.m = NewMachine(p)
	n.m.Tick(s.now)
	n.proc, n.applied, n.leader, n.ready, n.inbox, n.armed = running, 0, 0, false, nil, false
	n.kernel = map[string]bool{}
	n.m.Step(Health{VIP: simVIP, Healthy: n.healthy})
	s.logf("%s starts (start index %d)", n.name, p.StartIndex)
}

func (s *sim) connected(i int) bool {
	n := s.nodes[i]
	return n.proc == running && n.link && !n.isolated
}

func (s *sim) quorum(i int) bool {
	if !s.connected(i) {
		return false
	}
	c := 0
	for j := range s.nodes {
		if s.connected(j) {
			c++
		}
	}
	return c >= 2
}

func (s *sim) send(from, to int, ev Event, lossy bool) {
	if from != to && (!s.nodes[from].link || s.nodes[from].isolated) {
		return
	}
	if from != to && lossy && (s.rng.IntN(100) < 5 || s.now < s.lossUntil && s.rng.IntN(100) < 60) {
		return
	}
	delay := int64(0)
	if from != to {
		delay = int64(1 + s.rng.IntN(4))
		if s.rng.IntN(50) == 0 {
			delay += int64(s.rng.IntN(40)) // a late one
		}
	}
	s.msgs = append(s.msgs, simMsg{at: s.now + delay, to: to, ev: ev})
}

func (s *sim) deliver(i int, ev Event) {
	n := s.nodes[i]
	switch n.proc {
	case dead:
		return
	case paused:
		n.inbox = append(n.inbox, simMsg{to: i, ev: ev})
		return
	}
	s.do(i, n.m.Step(ev))
}

// do carries out a machine's actions, as the driver would.
func (s *sim) do(i int, acts []Action) {
	n := s.nodes[i]
	for _, a := range acts {
		switch a := a.(type) {
		case AddVIP:
			if !n.kernel[a.VIP] {
				s.logf("%s adds the VIP (epoch %d)", n.name, n.m.table.VIPs[a.VIP].Epoch)
			}
			n.kernel[a.VIP] = true
		case RemoveVIP:
			s.logf("%s removes the VIP: %s", n.name, a.Reason)
			n.kernel[a.VIP] = false
		case SendPing:
			for j := range s.nodes {
				s.send(i, j, PingIn{From: n.name, Seq: a.Seq, Status: a.Status}, true)
			}
		case SendGrant:
			// raft's VerifyLeader: a quorum follows this node right now.
			if n.leader == s.term && s.leader == i && s.quorum(i) {
				s.send(i, s.index(a.To), GrantIn{From: n.name, Seq: a.Seq, Index: a.Index}, true)
			}
		case Propose:
			if n.leader > 0 {
				s.props = append(s.props, proposal{term: n.leader, entry: a.Entry})
				s.logf("%s proposes %s (term %d)", n.name, a.Entry, n.leader)
			}
		case Fence:
			s.fence(i, a.Node)
		case Unfence:
			t := s.index(a.Node)
			s.nodes[t].link = true
			s.logf("%s unfences %s (link up)", n.name, a.Node)
			s.send(i, i, FenceDone{Node: a.Node, Unfence: true, OK: true}, false)
		case PetWatchdog:
			n.armed, n.lastPet = true, s.now
		case Log:
		}
	}
}

func (s *sim) index(name string) int {
	for i, n := range s.nodes {
		if n.name == name {
			return i
		}
	}
	panic("no node " + name)
}

// fence runs the fence agent: it takes the target's link down, or fails, or
// hangs until its timeout.
func (s *sim) fence(from int, target string) {
	s.stats.fences++
	t := s.index(target)
	mode := s.fenceMode
	delay := int64(2 + s.rng.IntN(10))
	switch mode {
	case "ok":
		if !s.lyingFence {
			s.nodes[t].link = false
		}
		s.logf("%s fences %s: link down", s.nodes[from].name, target)
		s.msgs = append(s.msgs, simMsg{at: s.now + delay, to: from, ev: FenceDone{Node: target, OK: true, Detail: "off"}})
	case "fail":
		s.msgs = append(s.msgs, simMsg{at: s.now + delay, to: from, ev: FenceDone{Node: target, Detail: "agent exited 1"}})
	case "hang":
		s.msgs = append(s.msgs, simMsg{at: s.now + 60, to: from, ev: FenceDone{Node: target, Detail: "timed out"}})
	}
}

func (s *sim) step() {
	s.now++
	s.world()
	s.consensus()
	// Deliver the messages due (in random order among those due: reordering).
	var due, later []simMsg
	for _, m := range s.msgs {
		if m.at <= s.now {
			due = append(due, m)
		} else {
			later = append(later, m)
		}
	}
	s.msgs = later
	s.rng.Shuffle(len(due), func(a, b int) { due[a], due[b] = due[b], due[a] })
	for _, m := range due {
		if g, ok := m.ev.(PingIn); ok && s.index(g.From) != m.to && (!s.nodes[m.to].link || s.nodes[m.to].isolated) {
			continue // cut off on arrival
		}
		if g, ok := m.ev.(GrantIn); ok && s.index(g.From) != m.to && (!s.nodes[m.to].link || s.nodes[m.to].isolated) {
			continue
		}
		s.deliver(m.to, m.ev)
	}
	for i, n := range s.nodes {
		if n.proc == running {
			s.do(i, n.m.Tick(s.now))
		}
	}
	s.watchdogs()
	s.check()
}

func (s *sim) consensus() {
	// The leader loses leadership when it cannot reach a quorum; a new one
	// is elected among the connected nodes after an election timeout.
	if s.leader >= 0 && !s.quorum(s.leader) {
		s.noLeaderFor++
		if s.noLeaderFor > 8 {
			s.logf("%s loses leadership (term %d)", s.nodes[s.leader].name, s.term)
			s.tellLeadership(s.leader, false)
			s.leader = -1
		}
	}
	if s.leader < 0 {
		var cand []int
		for i := range s.nodes {
			if s.quorum(i) {
				cand = append(cand, i)
			}
		}
		if len(cand) > 0 && s.rng.IntN(10) == 0 {
			s.term++
			s.leader = cand[s.rng.IntN(len(cand))]
			s.noLeaderFor = 0
			n := s.nodes[s.leader]
			n.leader, n.ready = s.term, false
			s.logf("%s is leader (term %d)", n.name, s.term)
			s.deliver(s.leader, Leadership{Leader: true})
		}
	} else {
		s.noLeaderFor = 0
	}
	// Commits: the current leader's entries commit while it has a quorum;
	// a deposed leader's entries may still commit until a newer leader is
	// ready, or never.
	var kept []proposal
	for _, p := range s.props {
		switch {
		case p.term < s.readyTerm:
			continue // overwritten
		case p.term == s.term && s.leader >= 0 && s.quorum(s.leader) && s.rng.IntN(3) == 0,
			p.term < s.term && s.leader >= 0 && s.quorum(s.leader) && s.rng.IntN(6) == 0:
			s.log = append(s.log, p.entry)
			s.logf("commit #%d %s", len(s.log), p.entry)
			continue
		case p.term < s.term && s.rng.IntN(20) == 0:
			continue // lost
		}
		kept = append(kept, p)
	}
	s.props = kept
	// Apply: connected nodes apply the next committed entries, some late.
	for i, n := range s.nodes {
		if n.proc != running || !n.link || n.isolated {
			continue
		}
		for n.applied < len(s.log) && s.rng.IntN(3) != 0 {
			n.applied++
			s.do(i, n.m.Step(Committed{Index: uint64(n.applied), Entry: s.log[n.applied-1]}))
		}
		if i == s.leader && n.leader == s.term && !n.ready && n.applied == len(s.log) && len(s.props) == 0 || i == s.leader && n.leader == s.term && !n.ready && n.applied == len(s.log) && s.rng.IntN(5) == 0 {
			// raft's barrier: the new leader has applied everything committed before it.
			s.dropOlder(s.term)
			n.ready = true
			s.readyTerm = s.term
			s.deliver(i, Leadership{Leader: true, Ready: true})
		}
	}
}

// dropOlder: once a leader is ready, the entries of earlier terms have
// either committed (with its first entry) or are gone.
func (s *sim) dropOlder(term int) {
	var kept []proposal
	for _, p := range s.props {
		if p.term >= term {
			kept = append(kept, p)
		} else if s.rng.IntN(2) == 0 {
			s.log = append(s.log, p.entry)
			s.logf("commit #%d %s (late, from term %d)", len(s.log), p.entry, p.term)
		}
	}
	s.props = kept
}

func (s *sim) tellLeadership(i int, leader bool) {
	n := s.nodes[i]
	n.leader, n.ready = 0, false
	s.deliver(i, Leadership{Leader: leader})
}

// watchdogs: a node whose watchdog is armed and not petted for the timeout
// resets: process and kernel addresses gone. A killed process does not
// disarm it: the kernel's watchdog keeps counting after an unexpected close.
func (s *sim) watchdogs() {
	if s.p.Watchdog == 0 {
		return
	}
	for i, n := range s.nodes {
		if n.armed && s.now-n.lastPet > s.p.Watchdog {
			s.logf("%s: watchdog reset", n.name)
			if n.proc != dead {
				s.kill(i)
			}
			n.kernel = map[string]bool{}
			n.armed = false
		}
	}
}

func (s *sim) kill(i int) {
	n := s.nodes[i]
	n.proc, n.inbox = dead, nil
	n.restart = s.now + int64(20+s.rng.IntN(200))
	if s.leader == i {
		s.leader = -1
	}
}

func runSims(t *testing.T, watchdog bool) {
	schedules, base := *simSchedules, uint64(time.Now().UnixNano())
	if v := os.Getenv("HALO_SIM_SEED"); v != "" {
		seed, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("HALO_SIM_SEED=%q: %v", v, err)
		}
		schedules, base = 1, seed
	}
	if testing.Short() {
		schedules /= 10
	}
	var total simStats
	for k := 0; k < schedules; k++ {
		seed := base + uint64(k)
		s := newSim(t, seed, watchdog)
		s.faults = 6 + s.rng.IntN(10)
		for int(s.now) < *simTicks {
			s.step()
		}
		s.quiet(2000)
		total.faults += s.stats.faults
		total.fences += s.stats.fences
		total.heldTicks += s.stats.heldTicks
		total.ticks += s.stats.ticks
	}
	t.Logf("%d schedules from seed %d: %d faults, %d fence runs, VIP held %.1f%% of %d ticks; every step checked", schedules, base, total.faults, total.fences, 100*float64(total.heldTicks)/float64(total.ticks), total.ticks)
}

func TestSimulation(t *testing.T) { runSims(t, false) }

// TestSimulationCatchesALyingFenceAgent: with an agent that says "off" and
// does nothing, the takeover it allows must show up as two holders.
func TestSimulationCatchesALyingFenceAgent(t *testing.T) {
	caught := 0
	for k := uint64(0); k < 100; k++ {
		s := newSim(t, k, false)
		s.lyingFence = true
		s.faults = 10
		for s.now < 3000 && s.failed == "" {
			s.step()
		}
		if s.failed != "" {
			caught++
		}
	}
	if caught == 0 {
		t.Fatal("100 schedules with a lying fence agent and no violation found: the invariants check nothing")
	}
	t.Logf("a lying fence agent caused a violation in %d of 100 schedules", caught)
}
func TestSimulationWatchdog(t *testing.T) { runSims(t, true) }
