// Package nstest is the cluster's proof in real network namespaces (layer
// 3 of issue 14). It has only tests, run as root (they skip without, and
// fail under HALO_INTEGRATION=1).
//
// The world (topology_test.go, halo_test.go): a switch namespace with a
// bridge; three node namespaces, eth0 10.99.0.1-3/24 on the bridge, each
// with a backend that answers with its node's name and a `halo run` with
// the cluster section (lease 2s, VIP 10.99.0.100/24 on eth0) and a
// frontend on the VIP; a client namespace, 10.99.0.200. Every name carries
// the test's PID; teardown kills every process in the namespaces by PID
// and deletes them by name, and a run sweeps what a crashed one left.
//
// Fencing (testdata/fence_fabric): a FenceAgentAPI agent that fences a
// node by setting its bridge port down in the switch namespace, with
// failure modes ("fail", "hang") switched by files in a control
// directory, and a log of its calls the test reads.
//
// The probes (probes_test.go): the client GETs the VIP every 25 ms on a
// new connection; an ARP watcher in the client asks who has the VIP every
// 50 ms and keeps every MAC answering one request; every node holding the
// VIP runs arping -D back to back; the ground truth, sampled from the
// kernels every 20 ms, is "the VIP on one of the node's interfaces, and
// its eth0 reaching the bridge": eth0 up, its port up and attached, no
// frames dropped by tc. The judge (invariants_test.go) asserts, over the
// whole run: no ARP request answered by two MACs, no sample with two
// holders, no answer from a node that held the VIP in none of the samples
// around the request, no duplicate found by arping -D.
//
// The campaign (campaign_test.go, faults_test.go): HALO_NSTEST_FAULTS
// faults (100) in rounds of every kind in a seeded order (HALO_NSTEST_SEED
// replays it): kill -9, SIGSTOP and partitions (link down, tc drop with
// the link up, detached from the bridge) of the holder, partitions of a
// follower and of the leader, kill of the leader, and a failing or hanging
// fence agent under a holder fault. After each: the VIP answered by a new
// holder (the agent having confirmed the old one off first), or kept where
// it was; then the repair, halo cluster unfence, and a whole cluster
// before the next. The report (report_test.go; HALO_NSTEST_REPORT=FILE
// writes it) gives failover median and p99 per kind, requests lost and the
// violations per kind. TestWatchdogSelfFencing runs a few holder faults
// with the fake watchdog and an agent that fails throughout.
// HALO_NSTEST_LOGS=DIR keeps the halos' logs.
//
// The harness's pieces have tests of their own that need no cluster
// (harness_test.go, probes_self_test.go, judge_test.go): among them a dual
// holder made by hand, which every probe must see and the judge must fail.
package nstest
