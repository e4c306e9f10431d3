package vip

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/mdlayher/packet"
	"github.com/vishvananda/netlink"
)

// staleMAC is where the peer's neighbour cache says the VIP is before the
// announcement: a previous holder's MAC.
var staleMAC = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x99}

// The gratuitous ARP, byte for byte, and its effect: the peer's stale cache
// entry for the VIP now points at the node.
func TestAnnounceIPv4(t *testing.T) {
	l := newLab(t)
	a := Address{Prefix: vip4, Interface: nodeIf}
	l.seedStale(vip4.Addr())
	c := l.capture(0x0806)
	an := l.announcer(a)
	mac := l.nodeMAC()
	vip := vip4.Addr().AsSlice()
	bcast := []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	want := cat(
		bcast, mac, []byte{0x08, 0x06}, // Ethernet: broadcast, from the node, ARP
		[]byte{0, 1, 0x08, 0x00, 6, 4}, // Ethernet/IPv4 ARP
		[]byte{0, 1},                   // request
		mac, vip,                       // sender: the node's MAC, the VIP
		bcast, vip, // target: broadcast, the VIP
	)
	frames := l.announce(an, c, 3, func(f []byte) bool { return len(f) >= 42 && bytes.Equal(f[28:32], vip) })
	for _, f := range frames {
		if !bytes.Equal(f[:len(want)], want) {
			t.Errorf("gratuitous ARP\n got % x\nwant % x", f[:len(want)], want)
		}
	}
	l.waitNeigh(vip4.Addr(), mac)
}

// The unsolicited neighbour advertisement, byte for byte, and its effect on
// the peer's cache.
func TestAnnounceIPv6(t *testing.T) {
	l := newLab(t)
	a := Address{Prefix: vip6, Interface: nodeIf}
	l.seedStale(vip6.Addr())
	c := l.capture(0x86dd)
	an := l.announcer(a)
	mac := l.nodeMAC()
	vip := vip6.Addr().AsSlice()
	allNodes := netip.MustParseAddr("ff02::1").AsSlice()
	want := cat(
		[]byte{0x33, 0x33, 0, 0, 0, 1}, mac, []byte{0x86, 0xdd}, // Ethernet: all-nodes multicast, from the node, IPv6
		[]byte{0x60, 0, 0, 0},  // IPv6 (traffic class and flow label: the kernel's, not compared)
		[]byte{0, 32, 58, 255}, // 32 bytes of ICMPv6, hop limit 255
		vip, allNodes,          // from the VIP to all nodes
		[]byte{136, 0}, // ICMPv6 neighbour advertisement, code 0
	)
	wantNA := cat(
		[]byte{0x20, 0, 0, 0}, // flags: override; not router, not solicited
		vip,                   // target
		[]byte{2, 1}, mac,     // option: target link-layer address (8 bytes), the node's MAC
	)
	isNA := func(f []byte) bool {
		return len(f) >= 86 && f[20] == 58 && f[54] == 136 && bytes.Equal(f[62:78], vip)
	}
	frames := l.announce(an, c, 3, isNA)
	for _, f := range frames {
		if f[14]>>4 != 6 || !bytes.Equal(f[:14], want[:14]) || !bytes.Equal(f[18:56], want[18:]) || !bytes.Equal(f[58:86], wantNA) {
			t.Errorf("neighbour advertisement\n got % x\nwant % x .. .. % x", f[:86], want, wantNA)
		}
	}
	// The peer's kernel checks the ICMPv6 checksum and the hop limit before
	// it takes the advertisement: its cache moving proves both.
	l.waitNeigh(vip6.Addr(), mac)
}

func TestNewAnnouncerErrors(t *testing.T) {
	l := newLab(t)
	l.onNode(func() error {
		if _, err := NewAnnouncer(Address{Prefix: vip4, Interface: "nosuch0"}); err == nil {
			return errors.New("NewAnnouncer on a missing interface: no error")
		}
		if _, err := NewAnnouncer(Address{Prefix: vip4, Interface: "lo"}); !errors.Is(err, ErrNoMAC) {
			return errors.New("NewAnnouncer on lo: " + errString(err) + ", want ErrNoMAC")
		}
		if _, err := NewAnnouncer(Address{Prefix: netip.MustParsePrefix("0.0.0.0/0"), Interface: nodeIf}); !errors.Is(err, ErrAddress) {
			return errors.New("NewAnnouncer for 0.0.0.0: " + errString(err))
		}
		return nil
	})
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// seedStale puts the VIP in the peer's neighbour cache at staleMAC, as a
// previous holder left it.
func (l *lab) seedStale(ip netip.Addr) {
	l.t.Helper()
	n := &netlink.Neigh{
		LinkIndex:    l.link(l.peerH, peerIf).Attrs().Index,
		Family:       family(ip),
		State:        netlink.NUD_STALE,
		IP:           ip.AsSlice(),
		HardwareAddr: staleMAC,
	}
	if err := l.peerH.NeighAdd(n); err != nil {
		l.t.Fatalf("seeding the peer's neighbour cache: %v", err)
	}
	if got := l.peerNeigh(ip); !bytes.Equal(got, staleMAC) {
		l.t.Fatalf("peer's entry for %v = %v, want %v", ip, got, staleMAC)
	}
}

func family(ip netip.Addr) int {
	if ip.Is4() {
		return netlink.FAMILY_V4
	}
	return netlink.FAMILY_V6
}

// peerNeigh returns the MAC the peer's cache has for ip (nil if none).
func (l *lab) peerNeigh(ip netip.Addr) net.HardwareAddr {
	l.t.Helper()
	ns, err := l.peerH.NeighList(l.link(l.peerH, peerIf).Attrs().Index, family(ip))
	if err != nil {
		l.t.Fatal(err)
	}
	for _, n := range ns {
		if x, _ := netip.AddrFromSlice(n.IP); x.Unmap() == ip {
			return n.HardwareAddr
		}
	}
	return nil
}

func (l *lab) waitNeigh(ip netip.Addr, mac net.HardwareAddr) {
	l.t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for {
		got := l.peerNeigh(ip)
		if bytes.Equal(got, mac) {
			return
		}
		if time.Now().After(deadline) {
			l.t.Fatalf("the peer's cache has %v at %v after the announcement, want %v", ip, got, mac)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// capture opens an AF_PACKET socket on the peer's end of the veth for
// ethertype, before anything is announced.
func (l *lab) capture(ethertype int) *packet.Conn {
	l.t.Helper()
	var c *packet.Conn
	err := l.peer.Do(func() error {
		ifi, err := net.InterfaceByName(peerIf)
		if err != nil {
			return err
		}
		c, err = packet.Listen(ifi, packet.Raw, ethertype, nil)
		return err
	})
	if err != nil {
		l.t.Fatal(err)
	}
	l.t.Cleanup(func() { c.Close() })
	return c
}

// announcer adds a on the node and opens its Announcer there.
func (l *lab) announcer(a Address) *Announcer {
	l.t.Helper()
	var an *Announcer
	l.onNode(func() (err error) {
		if err = Add(a, 0); err != nil {
			return err
		}
		an, err = NewAnnouncer(a)
		return err
	})
	l.t.Cleanup(func() {
		if err := an.Close(); err != nil {
			l.t.Error(err)
		}
	})
	return an
}

// announce calls Announce n times (from the test's goroutine: the socket
// is the node's wherever it is used) and returns the frames the peer
// captured that match, checking that each call sent exactly one.
func (l *lab) announce(an *Announcer, c *packet.Conn, n int, match func([]byte) bool) [][]byte {
	l.t.Helper()
	for i := 0; i < n; i++ {
		if err := an.Announce(); err != nil {
			l.t.Fatal(err)
		}
	}
	var frames [][]byte
	buf := make([]byte, 2048)
	// Read until a quiet half second after the last match.
	for {
		if err := c.SetReadDeadline(time.Now().Add(500 * time.Millisecond)); err != nil {
			l.t.Fatal(err)
		}
		k, _, err := c.ReadFrom(buf)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			break
		}
		if err != nil {
			l.t.Fatal(err)
		}
		if match(buf[:k]) {
			frames = append(frames, bytes.Clone(buf[:k]))
		}
	}
	if len(frames) != n {
		l.t.Fatalf("the peer saw %d announcements, want %d", len(frames), n)
	}
	return frames
}
