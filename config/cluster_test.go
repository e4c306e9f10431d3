package config

import (
	"net/netip"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// clusterFile is the name the cluster tests parse under: relative paths
// (secrets, data-dir) resolve in its directory.
const clusterFile = "testdata/cluster/halo.yaml"

// cluster3 is a valid three-node cluster in 12 lines; a case appends keys
// to it from line 13 on.
const cluster3 = `cluster:
  node: ctl1
  bind: "10.99.0.1:7946"
  peers:
    - {name: ctl1, address: "10.99.0.1:7946"}
    - {name: ctl2, address: "10.99.0.2:7946"}
    - {name: ctl3, address: "10.99.0.3:7946"}
  fencing:
    nodes:
      ctl1: {agent: /bin/true}
      ctl2: {agent: /bin/true}
      ctl3: {agent: /bin/true}
`

// witness3 is cluster3 with ctl3 a witness, so without its fencing entry
// (11 lines).
var witness3 = strings.Replace(strings.Replace(cluster3, `"10.99.0.3:7946"}`, `"10.99.0.3:7946", witness: true}`, 1),
	"      ctl3: {agent: /bin/true}\n", "", 1)

// peersHead is cluster3 up to its peers key (4 lines): a case lists the
// peers from line 5 on, and the rest of the section after them.
const peersHead = `cluster:
  node: ctl1
  bind: "10.99.0.1:7946"
  peers:
`

// fence3 is the fencing of ctl1..ctl3, for cases that write their own peers.
const fence3 = `  fencing:
    nodes:
      ctl1: {agent: /bin/true}
      ctl2: {agent: /bin/true}
      ctl3: {agent: /bin/true}
`

// fenceHead is cluster3 up to its fencing key (7 lines): a case writes
// fencing from line 8 on.
const fenceHead = peersHead + `    - {name: ctl1, address: "10.99.0.1:7946"}
    - {name: ctl2, address: "10.99.0.2:7946"}
    - {name: ctl3, address: "10.99.0.3:7946"}
`

// Each invalid cluster section fails with exactly these errors, each at
// FILE:LINE:COL of the key it is about.
func TestClusterErrors(t *testing.T) {
	const f = clusterFile + ":"
	for _, tc := range []struct {
		name string
		yaml string
		want []string
	}{
		// node and bind
		{"no node", strings.Replace(cluster3, "  node: ctl1\n", "  data-dir: x\n", 1),
			[]string{f + `1:1: cluster: the cluster needs node: the name of this node, one of peers`}},
		{"node not a peer", strings.Replace(cluster3, "node: ctl1", "node: ctl9", 1),
			[]string{f + `2:3: cluster.node: node "ctl9" is not one of peers (ctl1, ctl2, ctl3)`}},
		{"no bind", strings.Replace(cluster3, "  bind: \"10.99.0.1:7946\"\n", "  data-dir: x\n", 1),
			[]string{f + `1:1: cluster: the cluster needs bind: the HOST:PORT its consensus transport listens on`}},
		{"bind without port", strings.Replace(cluster3, `bind: "10.99.0.1:7946"`, `bind: "10.99.0.1"`, 1),
			[]string{f + `3:3: cluster.bind: bind "10.99.0.1": want HOST:PORT (address 10.99.0.1: missing port in address)`}},
		{"bind port zero", strings.Replace(cluster3, `bind: "10.99.0.1:7946"`, `bind: "10.99.0.1:0"`, 1),
			[]string{f + `3:3: cluster.bind: bind "10.99.0.1:0": needs a fixed port: the other voters dial it`}},
		{"bind port a name", strings.Replace(cluster3, `bind: "10.99.0.1:7946"`, `bind: "10.99.0.1:raft"`, 1),
			[]string{f + `3:3: cluster.bind: bind "10.99.0.1:raft": port "raft" is not a number from 1 to 65535`}},
		{"bind without host", strings.Replace(cluster3, `bind: "10.99.0.1:7946"`, `bind: ":7946"`, 1),
			[]string{f + `3:3: cluster.bind: bind ":7946": the host is empty: the other voters dial this address`}},
		{"unknown key", cluster3 + "  vip: []\n",
			[]string{f + `13:3: cluster.vip: unknown key "vip" (did you mean "vips"?)`}},

		// peers: how many, and each one
		{"no peers", "cluster:\n  node: ctl1\n  bind: \"10.99.0.1:7946\"\n", []string{
			f + `1:1: cluster: the cluster needs peers: every voter, this node included (3 or 5)`}},
		{"one voter", peersHead + "    - {name: ctl1, address: \"10.99.0.1:7946\"}\n  fencing: {nodes: {ctl1: {agent: /bin/true}}}\n",
			[]string{f + `4:3: cluster.peers: a one-node cluster has no node to move a VIP to: list every voter, this node included (3 or 5; two nodes need a third, quorum-only witness)`}},
		{"two voters", peersHead + "    - {name: ctl1, address: \"10.99.0.1:7946\"}\n    - {name: ctl2, address: \"10.99.0.2:7946\"}\n" + fence3[:len(fence3)-len("      ctl3: {agent: /bin/true}\n")],
			[]string{f + "4:3: cluster.peers: a two-node cluster cannot tell a dead peer from a cut link, so it has no quorum after one failure: add a third voter, a quorum-only witness (a peer with witness: true, running `halo run` with a cluster section and no frontends; see docs/cluster.md)"}},
		{"four voters without a reason", fenceHead + "    - {name: ctl4, address: \"10.99.0.4:7946\"}\n" + fence3 + "      ctl4: {agent: /bin/true}\n",
			[]string{f + `4:3: cluster.peers: 4 voters survive no more failures than 3: use an odd number, or say why with even-voters: "REASON"`}},
		{"even-voters with three", cluster3 + "  even-voters: \"just because\"\n",
			[]string{f + `13:3: cluster.even-voters: even-voters states why the number of voters is even, but there are 3`}},
		{"eight voters", peersHead + eightPeers + "  even-voters: \"a reason\"\n",
			[]string{f + `4:3: cluster.peers: 8 voters: at most 7 (each one slows every commit; use 3 or 5)`}},
		{"one holder and two witnesses", fenceHead[:len(fenceHead)-len("    - {name: ctl2, address: \"10.99.0.2:7946\"}\n    - {name: ctl3, address: \"10.99.0.3:7946\"}\n")] +
			"    - {name: w1, address: \"10.99.0.2:7946\", witness: true}\n    - {name: w2, address: \"10.99.0.3:7946\", witness: true}\n  fencing: {nodes: {ctl1: {agent: /bin/true}}}\n",
			[]string{f + `4:3: cluster.peers: only 1 peer can hold a VIP (the others are witnesses): a VIP could never move`}},
		{"peer without name", fenceHead + "    - {address: \"10.99.0.4:7946\"}\n" + fence3,
			[]string{f + `8:7: cluster.peers[3]: a peer needs a name`}},
		{"peer listed twice", fenceHead + "    - {name: ctl3, address: \"10.99.0.4:7946\"}\n" + fence3,
			[]string{f + `8:8: cluster.peers[3].name: peer "ctl3" is listed twice`}},
		{"peer name with a space", strings.Replace(cluster3, "{name: ctl3,", "{name: \"ctl 3\",", 1), []string{
			f + `7:8: cluster.peers[2].name: peer name "ctl 3": letters, digits, '-', '_' and '.', at most 63, starting with a letter or digit`,
			f + `9:5: cluster.fencing.nodes: no fence agent for peer ctl 3: a VIP moves off a silent node only once it is fenced, so every node that can hold one needs fencing.nodes.ctl 3`,
			f + `12:7: cluster.fencing.nodes.ctl3: "ctl3" is not one of peers`}},
		{"peer without address", strings.Replace(cluster3, `{name: ctl3, address: "10.99.0.3:7946"}`, `{name: ctl3}`, 1),
			[]string{f + `7:7: cluster.peers[2]: peer "ctl3" needs an address (HOST:PORT of its bind)`}},
		{"peer address without port", strings.Replace(cluster3, `"10.99.0.3:7946"}`, `"10.99.0.3"}`, 1),
			[]string{f + `7:20: cluster.peers[2].address: address "10.99.0.3": want HOST:PORT (address 10.99.0.3: missing port in address)`}},
		{"peer address twice", strings.Replace(cluster3, `"10.99.0.3:7946"}`, `"10.99.0.2:7946"}`, 1),
			[]string{f + `7:20: cluster.peers[2].address: address 10.99.0.2:7946 is also peer "ctl2"'s`}},
		{"witness not a bool", strings.Replace(cluster3, `"10.99.0.3:7946"}`, `"10.99.0.3:7946", witness: "yes"}`, 1),
			[]string{f + `7:56: cluster.peers[2].witness: expected true or false, found "yes"`}},

		// lease
		{"lease too short", cluster3 + "  lease: 100ms\n",
			[]string{f + `13:3: cluster.lease: lease 100ms: between 500ms and 1m`}},
		{"lease too long", cluster3 + "  lease: 2m\n",
			[]string{f + `13:3: cluster.lease: lease 2m0s: between 500ms and 1m`}},
		{"lease not a duration", cluster3 + "  lease: soon\n",
			[]string{f + `13:10: cluster.lease: invalid duration "soon": want a whole number with an optional unit us, ms, s, m, h or d (a bare number is milliseconds)`}},

		// vips
		{"VIP without address", cluster3 + "  vips:\n    - {interface: eth0}\n",
			[]string{f + `14:7: cluster.vips[0]: a VIP needs an address (ADDRESS/PREFIXLEN)`}},
		{"VIP without prefix length", cluster3 + "  vips:\n    - {address: 10.99.0.100, interface: eth0}\n",
			[]string{f + `14:8: cluster.vips[0].address: address "10.99.0.100": want ADDRESS/PREFIXLEN, such as 10.0.0.100/24 or 2001:db8::100/64`}},
		{"VIP without interface", cluster3 + "  vips:\n    - {address: 10.99.0.100/24}\n",
			[]string{f + `14:7: cluster.vips[0]: VIP 10.99.0.100/24 needs interface: the network interface it is added to`}},
		{"VIP with an alias label", cluster3 + "  vips:\n    - {address: 10.99.0.100/24, interface: \"eth0:1\"}\n",
			[]string{f + `14:33: cluster.vips[0].interface: interface "eth0:1" is not a network interface name (at most 15 characters, no '/', ':' or white space)`}},
		{"VIP interface too long", cluster3 + "  vips:\n    - {address: 10.99.0.100/24, interface: enp0s31f6abcdefgh}\n",
			[]string{f + `14:33: cluster.vips[0].interface: interface "enp0s31f6abcdefgh" is not a network interface name (at most 15 characters, no '/', ':' or white space)`}},
		{"VIP network address", cluster3 + "  vips:\n    - {address: 10.99.0.0/24, interface: eth0}\n",
			[]string{f + `14:8: cluster.vips[0].address: 10.99.0.0 is the network address of 10.99.0.0/24, not a host's`}},
		{"VIP broadcast address", cluster3 + "  vips:\n    - {address: 10.99.1.255/23, interface: eth0}\n",
			[]string{f + `14:8: cluster.vips[0].address: 10.99.1.255 is the broadcast address of 10.99.0.0/23, not a host's`}},
		{"VIP IPv6 subnet-router anycast", cluster3 + "  vips:\n    - {address: \"2001:db8:1::/64\", interface: eth0}\n",
			[]string{f + `14:8: cluster.vips[0].address: 2001:db8:1:: is the subnet-router anycast address of 2001:db8:1::/64, not a host's`}},
		{"VIP IPv4-mapped", cluster3 + "  vips:\n    - {address: \"::ffff:10.99.0.100/120\", interface: eth0}\n",
			[]string{f + `14:8: cluster.vips[0].address: ::ffff:10.99.0.100/120 is an IPv4-mapped IPv6 address: write 10.99.0.100/24`}},
		{"VIP loopback", cluster3 + "  vips:\n    - {address: 127.0.0.2/8, interface: lo}\n",
			[]string{f + `14:8: cluster.vips[0].address: 127.0.0.2 cannot be a VIP`}},
		{"VIP twice", cluster3 + "  vips:\n    - {address: 10.99.0.100/24, interface: eth0}\n    - {address: 10.99.0.100/32, interface: eth1}\n",
			[]string{f + `15:8: cluster.vips[1].address: VIP 10.99.0.100 is also cluster.vips[0]`}},
		{"VIP prefers a stranger", cluster3 + "  vips:\n    - {address: 10.99.0.100/24, interface: eth0, prefer: ctl7}\n",
			[]string{f + `14:50: cluster.vips[0].prefer: prefer "ctl7" is not one of peers`}},
		{"VIP prefers a witness", witness3 + "  vips:\n    - {address: 10.99.0.100/24, interface: eth0, prefer: ctl3}\n",
			[]string{f + `13:50: cluster.vips[0].prefer: prefer "ctl3" is a witness, which never holds a VIP`}},
		{"VIP requires something else", cluster3 + "  vips:\n    - {address: 10.99.0.100/24, interface: eth0, require: sometimes}\n",
			[]string{f + `14:50: cluster.vips[0].require: "sometimes" is not supported: must be one of listening, servers-up`}},

		// arp
		{"ARP count negative", cluster3 + "  arp: {count: -1}\n",
			[]string{f + `13:9: cluster.arp.count: -1 is too small: must be at least 0`}},
		{"ARP count too large", cluster3 + "  arp: {count: 101}\n",
			[]string{f + `13:9: cluster.arp.count: 101 is too large: must be at most 100`}},
		{"ARP interval too short", cluster3 + "  arp: {interval: 5ms}\n",
			[]string{f + `13:9: cluster.arp.interval: interval 5ms: between 10ms and 10s`}},
		{"ARP refresh too short", cluster3 + "  arp: {refresh: 500ms}\n",
			[]string{f + `13:9: cluster.arp.refresh: refresh 500ms: 0 (none) or at least 1s`}},

		// fencing
		{"no fencing", fenceHead,
			[]string{
				f + `1:1: cluster: no fence agent for peer ctl1: a VIP moves off a silent node only once it is fenced, so every node that can hold one needs fencing.nodes.ctl1`,
				f + `1:1: cluster: no fence agent for peer ctl2: a VIP moves off a silent node only once it is fenced, so every node that can hold one needs fencing.nodes.ctl2`,
				f + `1:1: cluster: no fence agent for peer ctl3: a VIP moves off a silent node only once it is fenced, so every node that can hold one needs fencing.nodes.ctl3`}},
		{"fencing without nodes", fenceHead + "  fencing:\n    timeout: 30s\n    action: reboot\n", []string{
			f + `8:3: cluster.fencing: no fence agent for peer ctl1: a VIP moves off a silent node only once it is fenced, so every node that can hold one needs fencing.nodes.ctl1`,
			f + `8:3: cluster.fencing: no fence agent for peer ctl2: a VIP moves off a silent node only once it is fenced, so every node that can hold one needs fencing.nodes.ctl2`,
			f + `8:3: cluster.fencing: no fence agent for peer ctl3: a VIP moves off a silent node only once it is fenced, so every node that can hold one needs fencing.nodes.ctl3`}},
		{"fencing entry missing", cluster3[:len(cluster3)-len("      ctl3: {agent: /bin/true}\n")],
			[]string{f + `9:5: cluster.fencing.nodes: no fence agent for peer ctl3: a VIP moves off a silent node only once it is fenced, so every node that can hold one needs fencing.nodes.ctl3`}},
		{"fencing a stranger", cluster3 + "      ctl5: {agent: /bin/true}\n",
			[]string{f + `13:7: cluster.fencing.nodes.ctl5: "ctl5" is not one of peers`}},
		{"fencing a witness", witness3 + "      ctl3: {agent: /bin/true}\n",
			[]string{f + `12:7: cluster.fencing.nodes.ctl3: "ctl3" is a witness: it never holds a VIP, so it is never fenced`}},
		{"fencing timeout too short", fenceHead + "  fencing:\n    timeout: 0s\n" + fence3[len("  fencing:\n"):],
			[]string{f + `9:5: cluster.fencing.timeout: timeout 0s: between 1s and 10m`}},
		{"fencing action", fenceHead + "  fencing:\n    action: poweroff\n" + fence3[len("  fencing:\n"):],
			[]string{f + `9:5: cluster.fencing.action: "poweroff" is not supported: must be one of off, reboot`}},
		{"fence agent missing", strings.Replace(cluster3, "ctl3: {agent: /bin/true}", "ctl3: {options: {ip: 192.0.2.13}}", 1),
			[]string{f + `12:7: cluster.fencing.nodes.ctl3: node ctl3 needs agent: the fence agent's absolute path (such as /usr/sbin/fence_ipmilan)`}},
		{"fence agent relative", strings.Replace(cluster3, "ctl3: {agent: /bin/true}", "ctl3: {agent: fence_ipmilan}", 1),
			[]string{f + `12:14: cluster.fencing.nodes.ctl3.agent: agent "fence_ipmilan" is not an absolute path`}},
		{"fence agent absent", strings.Replace(cluster3, "ctl3: {agent: /bin/true}", "ctl3: {agent: /nonexistent/fence_x}", 1),
			[]string{f + `12:14: cluster.fencing.nodes.ctl3.agent: agent /nonexistent/fence_x: stat /nonexistent/fence_x: no such file or directory`}},
		{"fence agent not executable", strings.Replace(cluster3, "ctl3: {agent: /bin/true}", "ctl3: {agent: "+notAnAgent+"}", 1),
			[]string{f + `12:14: cluster.fencing.nodes.ctl3.agent: agent ` + notAnAgent + ` is not an executable file`}},
		{"fence agent a directory", strings.Replace(cluster3, "ctl3: {agent: /bin/true}", "ctl3: {agent: /}", 1),
			[]string{f + `12:14: cluster.fencing.nodes.ctl3.agent: agent / is not an executable file`}},
		{"fence option action", strings.Replace(cluster3, "ctl3: {agent: /bin/true}", "ctl3: {agent: /bin/true, options: {action: reboot}}", 1),
			[]string{f + `12:42: cluster.fencing.nodes.ctl3.options.action: "action" is set by halo for each run (off, status, on), not in options`}},
		{"fence option key with a space", strings.Replace(cluster3, "ctl3: {agent: /bin/true}", "ctl3: {agent: /bin/true, options: {\"ip addr\": x}}", 1),
			[]string{f + `12:42: cluster.fencing.nodes.ctl3.options.ip addr: option "ip addr": a fence agent option is a name of letters, digits, '_', '-' and '.' (a key=value line on the agent's stdin)`}},
		{"fence option without value", strings.Replace(cluster3, "ctl3: {agent: /bin/true}", "ctl3: {agent: /bin/true, options: {ip: }}", 1),
			[]string{f + `12:42: cluster.fencing.nodes.ctl3.options.ip: option ip has no value (write "" for an empty one)`}},
		{"fence option with a line break", strings.Replace(cluster3, "ctl3: {agent: /bin/true}", "ctl3: {agent: /bin/true, options: {ip: \"a\\nb\"}}", 1),
			[]string{f + `12:42: cluster.fencing.nodes.ctl3.options.ip: option ip has a line break or NUL: each option is one line on the agent's stdin`}},
		{"fence option a mapping", strings.Replace(cluster3, "ctl3: {agent: /bin/true}", "ctl3: {agent: /bin/true, options: {ip: {a: b}}}", 1),
			[]string{f + `12:46: cluster.fencing.nodes.ctl3.options.ip: expected a single value, found a mapping`}},
		{"password and password-file", strings.Replace(cluster3, "ctl3: {agent: /bin/true}", "ctl3: {agent: /bin/true, options: {password: x, password-file: ipmi.secret}}", 1),
			[]string{f + `12:55: cluster.fencing.nodes.ctl3.options.password-file: password and password-file exclude each other`}},
		{"secret file missing", strings.Replace(cluster3, "ctl3: {agent: /bin/true}", "ctl3: {agent: /bin/true, options: {password-file: no-such.secret}}", 1),
			[]string{f + `12:42: cluster.fencing.nodes.ctl3.options.password-file: reading password-file: open testdata/cluster/no-such.secret: no such file or directory`}},
		{"secret file empty name", strings.Replace(cluster3, "ctl3: {agent: /bin/true}", "ctl3: {agent: /bin/true, options: {password-file: \"\"}}", 1),
			[]string{f + `12:42: cluster.fencing.nodes.ctl3.options.password-file: password-file needs a file name`}},
		{"secret file of two lines", strings.Replace(cluster3, "ctl3: {agent: /bin/true}", "ctl3: {agent: /bin/true, options: {password-file: two-lines.secret}}", 1),
			[]string{f + `12:42: cluster.fencing.nodes.ctl3.options.password-file: password-file two-lines.secret has more than one line`}},
		{"secret file for action", strings.Replace(cluster3, "ctl3: {agent: /bin/true}", "ctl3: {agent: /bin/true, options: {action-file: ipmi.secret}}", 1),
			[]string{f + `12:42: cluster.fencing.nodes.ctl3.options.action-file: "action" is set by halo for each run (off, status, on), not in options`}},

		// watchdog
		{"watchdog without device", cluster3 + "  watchdog: {timeout: 10s}\n",
			[]string{f + `13:3: cluster.watchdog: a watchdog needs device (for example /dev/watchdog)`}},
		{"watchdog device relative", cluster3 + "  watchdog: {device: watchdog}\n",
			[]string{f + `13:14: cluster.watchdog.device: device "watchdog" is not an absolute path`}},
		{"watchdog timeout too short", cluster3 + "  watchdog: {device: /dev/watchdog, timeout: 500ms}\n",
			[]string{f + `13:37: cluster.watchdog.timeout: timeout 500ms: between 1s and 1m`}},
		{"watchdog timeout too long", cluster3 + "  watchdog: {device: /dev/watchdog, timeout: 61s}\n",
			[]string{f + `13:37: cluster.watchdog.timeout: timeout 1m1s: between 1s and 1m`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(clusterFile, []byte(tc.yaml))
			if err == nil {
				t.Fatalf("parsed without error:\n%s", tc.yaml)
			}
			if got, want := err.Error(), strings.Join(tc.want, "\n"); got != want {
				t.Errorf("errors differ\n--- got ---\n%s\n--- want ---\n%s\n--- file ---\n%s", got, want, tc.yaml)
			}
		})
	}
}

// notAnAgent is a file in testdata that exists but is not executable.
var notAnAgent = func() string {
	abs, err := filepath.Abs("testdata/cluster/not-an-agent")
	if err != nil {
		panic(err)
	}
	return abs
}()

// eightPeers lists ctl1..ctl8 (lines 5 to 12).
var eightPeers = func() string {
	var b strings.Builder
	for i := 1; i <= 8; i++ {
		b.WriteString("    - {name: ctl" + string(rune('0'+i)) + ", address: \"10.99.0." + string(rune('0'+i)) + ":7946\"}\n")
	}
	b.WriteString("  fencing:\n    nodes:\n")
	for i := 1; i <= 8; i++ {
		b.WriteString("      ctl" + string(rune('0'+i)) + ": {agent: /bin/true}\n")
	}
	return b.String()
}()

// The contract of issue 14 loads as written, with defaults where it sets
// nothing: secrets read (and marked), option scalars as text, relative
// paths resolved against the file's directory, peers sorted.
func TestClusterContract(t *testing.T) {
	const file = `frontends:
  keystone:
    bind: "10.99.0.100:5000"
    default_backend: keystone
backends:
  keystone:
    servers: [{name: ctl1, address: "10.99.0.1:5000"}]
cluster:
  node: ctl1
  bind: "10.99.0.1:7946"
  data-dir: state
  peers:
    - {name: ctl3, address: "10.99.0.3:7946"}
    - {name: ctl1, address: "10.99.0.1:7946"}
    - {name: ctl2, address: "10.99.0.2:7946"}
    - {name: wit, address: "10.99.0.9:7946", witness: true}
  even-voters: "a fourth controller is being added"
  lease: 3s
  vips:
    - {address: "10.99.0.100/24", interface: eth0, prefer: ctl1, require: listening}
    - {address: "2001:db8::100/64", interface: eth1}
    - {address: "192.0.2.7/32", interface: eth0, require: servers-up}
  arp: {count: 0, refresh: 0}
  fencing:
    nodes:
      ctl1: {agent: /bin/true, options: {ip: 192.0.2.11, username: admin, password-file: ipmi.secret}}
      ctl2: {agent: /bin/true, options: {ipport: 623, lanplus: true, delay: 1.5, token-file: /dev/null}}
      ctl3: {agent: /bin/true, options: {ip: "", plug: "2001-01-01"}}
  watchdog: {device: /dev/watchdog}
`
	cfg, err := Parse(clusterFile, []byte(file))
	if err != nil {
		t.Fatal(err)
	}
	c := cfg.Cluster
	want := &Cluster{
		Node:    "ctl1",
		Bind:    "10.99.0.1:7946",
		DataDir: "testdata/cluster/state",
		Peers: []Peer{
			{Name: "ctl1", Address: "10.99.0.1:7946"},
			{Name: "ctl2", Address: "10.99.0.2:7946"},
			{Name: "ctl3", Address: "10.99.0.3:7946"},
			{Name: "wit", Address: "10.99.0.9:7946", Witness: true},
		},
		EvenVoters: "a fourth controller is being added",
		Lease:      3 * time.Second,
		VIPs: []VIP{
			{Prefix: netip.MustParsePrefix("10.99.0.100/24"), Interface: "eth0", Prefer: "ctl1", Require: RequireListening},
			{Prefix: netip.MustParsePrefix("2001:db8::100/64"), Interface: "eth1", Require: RequireListening},
			{Prefix: netip.MustParsePrefix("192.0.2.7/32"), Interface: "eth0", Require: RequireServersUp},
		},
		ARP: ARP{Count: 0, Interval: DefaultARPInterval, Refresh: 0},
		Fencing: Fencing{Timeout: DefaultFenceTimeout, Action: "off", Nodes: map[string]FenceAgent{
			"ctl1": {Agent: "/bin/true", Options: map[string]string{"ip": "192.0.2.11", "username": "admin", "password": "ipmi-secret"}, Secret: map[string]bool{"password": true}},
			"ctl2": {Agent: "/bin/true", Options: map[string]string{"ipport": "623", "lanplus": "true", "delay": "1.5", "token": ""}, Secret: map[string]bool{"token": true}},
			"ctl3": {Agent: "/bin/true", Options: map[string]string{"ip": "", "plug": "2001-01-01"}, Secret: map[string]bool{}},
		}},
		Watchdog: &Watchdog{Device: "/dev/watchdog", Timeout: DefaultWatchdogTime},
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("cluster =\n%+v\nwant\n%+v", c, want)
	}
	if !cfg.Frontends[0].Binds[0].Socket.FreeBind {
		t.Error("the bind of a VIP has no IP_FREEBIND")
	}
}

// Without a cluster section there is no Cluster; with one and nothing
// else, the defaults apply and the file is valid (a witness needs no
// frontends).
func TestClusterDefaults(t *testing.T) {
	cfg, err := Parse(clusterFile, []byte("frontends: {}\n"))
	if err != nil || cfg.Cluster != nil {
		t.Fatalf("no cluster section: %v, %+v", err, cfg)
	}
	cfg, err = Parse(clusterFile, []byte(cluster3))
	if err != nil {
		t.Fatal(err)
	}
	c := cfg.Cluster
	if c.DataDir != DefaultClusterDataDir || c.Lease != 2*time.Second || c.ARP != (ARP{5, 200 * time.Millisecond, 10 * time.Second}) ||
		c.Fencing.Timeout != time.Minute || c.Fencing.Action != "off" || c.Watchdog != nil || c.VIPs != nil || len(cfg.Frontends) != 0 {
		t.Errorf("defaults: %+v", c)
	}
}
