// Package nstest is the cluster's proof in real network namespaces: three
// halo processes on a bridge, a client polling their VIP over HTTP and ARP,
// a fabric-fencing agent, and a seeded campaign of faults (kill -9,
// SIGSTOP, partitions, leader kills, failing and hanging fence agents)
// with the invariants checked across the whole run. It has only tests.
package nstest
