// Package cluster owns halo's cluster module: membership and quorum (raft
// among the voters), the replicated table of which node holds each virtual
// IP, leases, fencing decisions, and the node's status, control socket and
// metrics.
//
// The logic is a deterministic state machine (Machine: machine.go, node.go,
// leader.go, table.go) that takes ticks and events and returns actions; the
// driver (driver.go, driver_actions.go, fsm.go, transport.go) does the I/O:
// raft and its log, the ping/grant links, and, through the hardware
// interface (hardware.go, system.go), the subpackages vip (addresses and
// gratuitous ARP/NA), fence (fence agents) and watchdog.
// docs/cluster-protocol.md is the protocol both follow; sim_test.go runs
// thousands of random schedules of three machines against it, model/ holds
// its SPIN model, and nstest runs three halo processes in network
// namespaces under faults.
package cluster
