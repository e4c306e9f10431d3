package config

import (
	"encoding/json"
	"net/netip"
	"time"
)

// Cluster is the "cluster" section: the voters that agree on who holds each
// virtual IP, the VIPs themselves, and how to fence a node. nil when the file
// has no cluster section.
type Cluster struct {
	// Node is this process's name; one of Peers.
	Node string
	// Bind is the consensus transport's listening address (host:port).
	Bind string
	// DataDir holds the raft log, its snapshots and the control socket.
	DataDir string
	// Peers are the voters, this node included, sorted by name.
	Peers []Peer
	// EvenVoters is the stated reason for an even number of voters ("" when
	// the number is odd).
	EvenVoters string
	// Lease is how long a grant from the leader lets a node hold its VIPs,
	// and how long a silent node is waited for before it is suspected.
	Lease time.Duration
	VIPs  []VIP
	ARP   ARP
	// Fencing is how a silent holder is confirmed off.
	Fencing Fencing
	// Watchdog is nil unless a watchdog device is configured.
	Watchdog *Watchdog
}

// Peer is one voter of the cluster.
type Peer struct {
	Name    string
	Address string // host:port of its consensus transport
	// Witness is a quorum-only voter: it never holds a VIP and needs no
	// fencing entry.
	Witness bool
}

// VIPRequire is what a node must have for a VIP to be held there.
type VIPRequire string

// The local health a VIP may require.
const (
	// RequireListening: a frontend bound to the VIP's address (or to the
	// wildcard address) is listening.
	RequireListening VIPRequire = "listening"
	// RequireServersUp: as listening, and that frontend's default backend
	// has at least one usable server.
	RequireServersUp VIPRequire = "servers-up"
)

// VIP is one virtual IP address the cluster keeps on exactly one node.
type VIP struct {
	// Prefix is the address with its prefix length ("10.99.0.100/24").
	Prefix    netip.Prefix
	Interface string
	// Prefer is the node that gets the VIP when it is free and that node is
	// eligible ("" for none).
	Prefer  string
	Require VIPRequire
}

// ARP is how a new holder announces a VIP: Count gratuitous ARPs (unsolicited
// neighbour advertisements for IPv6) Interval apart, then one every Refresh
// while it holds it.
type ARP struct {
	Count    int
	Interval time.Duration
	Refresh  time.Duration
}

// Fencing says how each node is fenced.
type Fencing struct {
	// Timeout bounds one run of a fence agent; running out is a failure.
	Timeout time.Duration
	// Action is "off" (then "status" must report off) or "reboot".
	Action string
	// Nodes maps each non-witness peer to its fence agent.
	Nodes map[string]FenceAgent
}

// FenceAgent is a program speaking the fence-agents API and its options.
type FenceAgent struct {
	// Agent is the program's absolute path.
	Agent string
	// Options are written to the agent's stdin as key=value lines, secrets
	// already read from their files.
	Options map[string]string
	// Secret names the Options read from files, never to be logged.
	Secret map[string]bool
}

// Watchdog is a device petted while this node holds a valid lease.
type Watchdog struct {
	Device  string
	Timeout time.Duration
}

// MarshalJSON shows a fence agent with its secrets redacted, as Secret
// does: a configuration dump never carries a password.
func (a FenceAgent) MarshalJSON() ([]byte, error) {
	opts := make(map[string]string, len(a.Options))
	for k, v := range a.Options {
		if a.Secret[k] {
			v = Secret(v).String()
		}
		opts[k] = v
	}
	return json.Marshal(struct {
		Agent   string
		Options map[string]string
	}{a.Agent, opts})
}
