package vip

import (
	"net"
	"net/netip"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/halo-lb/halo/internal/testnet"
)

// A lab is two fresh network namespaces joined by a veth pair: the node,
// where the code under test runs, and a peer on the same segment that
// captures what the node sends and keeps a neighbour cache of its own.
type lab struct {
	t          *testing.T
	node, peer testnet.NetNS
	nodeH      *netlink.Handle // for looking at the node from the test's goroutine
	peerH      *netlink.Handle
}

const (
	nodeIf = "halo0"
	peerIf = "peer0"
)

// The segment's addresses: the node's own, the peer's, and the VIP.
var (
	node4, peer4, vip4 = netip.MustParsePrefix("10.77.0.1/24"), netip.MustParsePrefix("10.77.0.2/24"), netip.MustParsePrefix("10.77.0.100/24")
	node6, peer6, vip6 = netip.MustParsePrefix("fd00:77::1/64"), netip.MustParsePrefix("fd00:77::2/64"), netip.MustParsePrefix("fd00:77::100/64")
)

func newLab(t *testing.T) *lab {
	t.Helper()
	l := &lab{t: t, node: testnet.NewNetNS(t, "vip"), peer: testnet.NewNetNS(t, "vippeer")}
	testnet.Veth(t, l.node, nodeIf, l.peer, peerIf)
	var err error
	if l.nodeH, err = netlink.NewHandleAt(l.node.Handle); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.nodeH.Close)
	if l.peerH, err = netlink.NewHandleAt(l.peer.Handle); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.peerH.Close)
	l.addOwn(l.nodeH, nodeIf, node4, node6)
	l.addOwn(l.peerH, peerIf, peer4, peer6)
	return l
}

// addOwn gives an end of the veth its own permanent addresses (nodad, so
// IPv6 is usable at once).
func (l *lab) addOwn(h *netlink.Handle, iface string, ps ...netip.Prefix) {
	l.t.Helper()
	link := l.link(h, iface)
	for _, p := range ps {
		a := &netlink.Addr{IPNet: ipnet(p)}
		if p.Addr().Is6() {
			a.Flags = unix.IFA_F_NODAD
		}
		if err := h.AddrAdd(link, a); err != nil {
			l.t.Fatalf("adding %v to %s: %v", p, iface, err)
		}
	}
}

func ipnet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

func (l *lab) link(h *netlink.Handle, iface string) netlink.Link {
	l.t.Helper()
	link, err := h.LinkByName(iface)
	if err != nil {
		l.t.Fatal(err)
	}
	return link
}

// onNode runs f in the node's namespace, as the cluster driver runs in its
// host's.
func (l *lab) onNode(f func() error) {
	l.t.Helper()
	if err := l.node.Do(f); err != nil {
		l.t.Fatal(err)
	}
}

// nodeAddrs lists the node interface's addresses that are ip.
func (l *lab) nodeAddrs(ip netip.Addr) []netlink.Addr {
	l.t.Helper()
	family := netlink.FAMILY_V4
	if ip.Is6() {
		family = netlink.FAMILY_V6
	}
	all, err := l.nodeH.AddrList(l.link(l.nodeH, nodeIf), family)
	if err != nil {
		l.t.Fatal(err)
	}
	var out []netlink.Addr
	for _, a := range all {
		if x, _ := netip.AddrFromSlice(a.IP); x.Unmap() == ip {
			out = append(out, a)
		}
	}
	return out
}

func (l *lab) nodeMAC() net.HardwareAddr {
	return l.link(l.nodeH, nodeIf).Attrs().HardwareAddr
}
