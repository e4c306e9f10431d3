package config

import (
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"
)

// Defaults of the cluster section: lease and the ARP burst are IPaddr2's
// and a two-second lease (so failover well inside three seconds), fencing
// Pacemaker's stonith-timeout.
const (
	DefaultClusterDataDir = "/var/lib/halo/cluster"
	DefaultLease          = 2 * time.Second
	DefaultARPCount       = 5
	DefaultARPInterval    = 200 * time.Millisecond
	DefaultARPRefresh     = 10 * time.Second
	DefaultFenceTimeout   = 60 * time.Second
	DefaultFenceAction    = "off"
	DefaultWatchdogTime   = 10 * time.Second
	maxVoters             = 7
)

// buildCluster checks and converts the cluster section.
func (p *parser) buildCluster(cfg *Config, fc *fileConfig) {
	f := fc.Cluster
	if f == nil {
		return
	}
	const path = "cluster"
	c := &Cluster{
		Node:       or("", f.Node),
		Bind:       or("", f.Bind),
		DataDir:    p.relative(or(DefaultClusterDataDir, f.DataDir)),
		EvenVoters: or("", f.EvenVoters),
		Lease:      dur(DefaultLease, f.Lease),
	}
	peers := p.buildPeers(c, f)
	if c.Node == "" {
		p.at(path, "the cluster needs node: the name of this node, one of peers")
	} else if _, ok := peers[c.Node]; !ok && len(peers) > 0 {
		p.at(path+".node", "node %q is not one of peers (%s)", c.Node, strings.Join(sortedNames(peers), ", "))
	}
	if c.Bind == "" {
		p.at(path, "the cluster needs bind: the HOST:PORT its consensus transport listens on")
	} else if err := hostPort(c.Bind); err != nil {
		p.at(path+".bind", "bind %q: %v", c.Bind, err)
	}
	if c.Lease < 500*time.Millisecond || c.Lease > time.Minute {
		p.at(path+".lease", "lease %s: between 500ms and 1m", c.Lease)
	}
	p.buildVIPs(c, f, peers)
	c.ARP = ARP{Count: DefaultARPCount, Interval: DefaultARPInterval, Refresh: DefaultARPRefresh}
	if a := f.ARP; a != nil {
		c.ARP = ARP{Count: or(DefaultARPCount, a.Count), Interval: dur(DefaultARPInterval, a.Interval), Refresh: dur(DefaultARPRefresh, a.Refresh)}
		if c.ARP.Interval < 10*time.Millisecond || c.ARP.Interval > 10*time.Second {
			p.at(path+".arp.interval", "interval %s: between 10ms and 10s", c.ARP.Interval)
		}
		if c.ARP.Refresh != 0 && c.ARP.Refresh < time.Second {
			p.at(path+".arp.refresh", "refresh %s: 0 (none) or at least 1s", c.ARP.Refresh)
		}
	}
	p.buildFencing(c, f, peers)
	if w := f.Watchdog; w != nil {
		c.Watchdog = &Watchdog{Device: or("", w.Device), Timeout: dur(DefaultWatchdogTime, w.Timeout)}
		if c.Watchdog.Device == "" {
			p.at(path+".watchdog", "a watchdog needs device (for example /dev/watchdog)")
		} else if !filepath.IsAbs(c.Watchdog.Device) {
			p.at(path+".watchdog.device", "device %q is not an absolute path", c.Watchdog.Device)
		}
		if c.Watchdog.Timeout < time.Second || c.Watchdog.Timeout > time.Minute {
			p.at(path+".watchdog.timeout", "timeout %s: between 1s and 1m", c.Watchdog.Timeout)
		}
	}
	cfg.Cluster = c
}

func hostPort(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("want HOST:PORT (%v)", err)
	}
	if host == "" {
		return fmt.Errorf("the host is empty: the other voters dial this address")
	}
	if port == "" || port == "0" {
		return fmt.Errorf("needs a fixed port: the other voters dial it")
	}
	return checkPort(port)
}

// peerName is what a node's name may be: it names the node in raft, in
// fencing.nodes, in logs and in `halo cluster status`.
var peerName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$`)

// interfaceName is a Linux network interface name (IFNAMSIZ): at most 15
// bytes, no '/', no white space, and no ':' (an alias label names no link).
var interfaceName = regexp.MustCompile(`^[^/:\s]{1,15}$`)

func sortedNames[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// buildPeers converts the voters and checks their number: 3, 5 or 7, or
// an even number with a stated reason; never fewer than 3.
func (p *parser) buildPeers(c *Cluster, f *fileCluster) map[string]Peer {
	peers := map[string]Peer{}
	addrs := map[string]string{}
	dropped := false // an entry was refused: counting the rest says nothing
	for i, fp := range f.Peers {
		pp := fmt.Sprintf("cluster.peers[%d]", i)
		if fp == nil || fp.Name == nil || *fp.Name == "" {
			p.at(pp, "a peer needs a name")
			dropped = true
			continue
		}
		peer := Peer{Name: *fp.Name, Address: or("", fp.Address), Witness: or(false, fp.Witness)}
		if !peerName.MatchString(peer.Name) {
			p.at(pp+".name", "peer name %q: letters, digits, '-', '_' and '.', at most 63, starting with a letter or digit", peer.Name)
		}
		if _, dup := peers[peer.Name]; dup {
			p.at(pp+".name", "peer %q is listed twice", peer.Name)
			dropped = true
			continue
		}
		if peer.Address == "" {
			p.at(pp, "peer %q needs an address (HOST:PORT of its bind)", peer.Name)
		} else if err := hostPort(peer.Address); err != nil {
			p.at(pp+".address", "address %q: %v", peer.Address, err)
		} else if other, dup := addrs[peer.Address]; dup {
			p.at(pp+".address", "address %s is also peer %q's", peer.Address, other)
		}
		addrs[peer.Address] = peer.Name
		peers[peer.Name] = peer
	}
	for _, name := range sortedNames(peers) {
		c.Peers = append(c.Peers, peers[name])
	}
	holders := 0
	for _, peer := range peers {
		if !peer.Witness {
			holders++
		}
	}
	n := len(peers)
	switch {
	case len(f.Peers) == 0:
		p.at("cluster", "the cluster needs peers: every voter, this node included (3 or 5)")
	case dropped:
	case n == 1:
		p.at("cluster.peers", "a one-node cluster has no node to move a VIP to: list every voter, this node included (3 or 5; two nodes need a third, quorum-only witness)")
	case n == 2:
		p.at("cluster.peers", "a two-node cluster cannot tell a dead peer from a cut link, so it has no quorum after one failure: add a third voter, a quorum-only witness (a peer with witness: true, running `halo run` with a cluster section and no frontends; see docs/cluster.md)")
	case n > maxVoters:
		p.at("cluster.peers", "%d voters: at most %d (each one slows every commit; use 3 or 5)", n, maxVoters)
	case n%2 == 0 && c.EvenVoters == "":
		p.at("cluster.peers", "%d voters survive no more failures than %d: use an odd number, or say why with even-voters: \"REASON\"", n, n-1)
	case n%2 == 1 && c.EvenVoters != "":
		p.at("cluster.even-voters", "even-voters states why the number of voters is even, but there are %d", n)
		c.EvenVoters = ""
	}
	if !dropped && n >= 3 && holders < 2 {
		p.at("cluster.peers", "only %d peer can hold a VIP (the others are witnesses): a VIP could never move", holders)
	}
	return peers
}

func (p *parser) buildVIPs(c *Cluster, f *fileCluster, peers map[string]Peer) {
	seen := map[netip.Addr]int{}
	for i, fv := range f.VIPs {
		vp := fmt.Sprintf("cluster.vips[%d]", i)
		if fv == nil || fv.Address == nil {
			p.at(vp, "a VIP needs an address (ADDRESS/PREFIXLEN)")
			continue
		}
		pfx, err := netip.ParsePrefix(*fv.Address)
		if err != nil {
			p.at(vp+".address", "address %q: want ADDRESS/PREFIXLEN, such as 10.0.0.100/24 or 2001:db8::100/64", *fv.Address)
			continue
		}
		a := pfx.Addr()
		if a.Is4In6() {
			if pfx.Bits() >= 96 {
				p.at(vp+".address", "%s is an IPv4-mapped IPv6 address: write %s", pfx, netip.PrefixFrom(a.Unmap(), pfx.Bits()-96))
			} else {
				p.at(vp+".address", "%s is an IPv4-mapped IPv6 address: write the IPv4 address with its own prefix length", pfx)
			}
			continue
		}
		if msg := notHostAddress(pfx); msg != "" {
			p.at(vp+".address", "%s", msg)
		}
		if j, dup := seen[a]; dup {
			p.at(vp+".address", "VIP %s is also cluster.vips[%d]", a, j)
		}
		seen[a] = i
		v := VIP{Prefix: pfx, Interface: or("", fv.Interface), Prefer: or("", fv.Prefer), Require: VIPRequire(or(string(RequireListening), fv.Require))}
		if v.Interface == "" {
			p.at(vp, "VIP %s needs interface: the network interface it is added to", pfx)
		} else if !interfaceName.MatchString(v.Interface) || v.Interface == "." || v.Interface == ".." {
			p.at(vp+".interface", "interface %q is not a network interface name (at most 15 characters, no '/', ':' or white space)", v.Interface)
		}
		if v.Prefer != "" {
			if peer, ok := peers[v.Prefer]; !ok {
				p.at(vp+".prefer", "prefer %q is not one of peers", v.Prefer)
			} else if peer.Witness {
				p.at(vp+".prefer", "prefer %q is a witness, which never holds a VIP", v.Prefer)
			}
		}
		c.VIPs = append(c.VIPs, v)
	}
}

// notHostAddress says why pfx's address cannot be held by a host as a VIP,
// or "". IPv4's /31 and /32 and IPv6's /127 and /128 have no network or
// broadcast address to avoid (RFC 3021, RFC 6164).
func notHostAddress(pfx netip.Prefix) string {
	a := pfx.Addr()
	switch {
	case a.IsUnspecified() || a.IsLoopback() || a.IsMulticast():
		return fmt.Sprintf("%s cannot be a VIP", a)
	case a.Is4() && pfx.Bits() < 31 && a == pfx.Masked().Addr():
		return fmt.Sprintf("%s is the network address of %s, not a host's", a, pfx.Masked())
	case a.Is4() && pfx.Bits() < 31 && isBroadcast(pfx):
		return fmt.Sprintf("%s is the broadcast address of %s, not a host's", a, pfx.Masked())
	case a.Is6() && pfx.Bits() < 127 && a == pfx.Masked().Addr():
		return fmt.Sprintf("%s is the subnet-router anycast address of %s, not a host's", a, pfx.Masked())
	}
	return ""
}

func isBroadcast(pfx netip.Prefix) bool {
	b := pfx.Addr().As4()
	host := 32 - pfx.Bits()
	for i := 0; i < host; i++ {
		if b[3-i/8]&(1<<(i%8)) == 0 {
			return false
		}
	}
	return true
}
