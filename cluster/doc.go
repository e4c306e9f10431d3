// Package cluster owns halo's cluster module: membership and quorum (raft
// among the voters), the replicated table of which node holds each virtual
// IP, fencing, the optional watchdog, and the VIPs themselves.
//
// The logic is a deterministic state machine (Machine: machine.go, node.go,
// leader.go, table.go) that takes ticks and events and returns actions; the
// driver (driver*.go) does the I/O: raft, the ping transport, netlink and
// ARP, fence agents, the watchdog device. docs/cluster-protocol.md is the
// protocol both follow; sim_test.go runs thousands of random schedules of
// three machines against it, and model/ holds its SPIN model.
package cluster
