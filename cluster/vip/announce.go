package vip

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
	"github.com/mdlayher/ndp"
	"github.com/mdlayher/packet"
	"golang.org/x/net/bpf"
	"golang.org/x/net/ipv6"
)

// Announcer tells the segment that the VIP is at this interface's MAC, so
// that hosts and switches whose caches still point at a previous holder
// correct them.
//
// For IPv4 it sends a gratuitous ARP in the request form: an ARP request,
// Ethernet broadcast, with sender and target protocol address both the VIP,
// sender hardware address the interface's MAC and target hardware address
// ff:ff:ff:ff:ff:ff, byte for byte what keepalived's send_gratuitous_arp and
// IPaddr2's send_arp -U (iputils arping -U) send. The request form rather
// than a reply, because it is what those two send by default, so the
// switches and hosts operators already trust with them see the same frames,
// and RFC 5227 (section 3) makes the request form the announcement. Linux
// receivers update an existing entry from it (as a gratuitous ARP it
// overrides the entry's locktime) whatever arp_accept says.
//
// For IPv6 it sends an unsolicited neighbour advertisement (RFC 4861 7.2.6)
// to all-nodes ff02::1, from the VIP, hop limit 255, with the override flag
// set (so receivers replace the link-layer address they have), solicited
// and router clear, and a target link-layer address option with the MAC,
// as keepalived and the kernel's own ndisc_notify send it.
//
// The MAC is the interface's when NewAnnouncer ran. An Announcer may be used
// from several goroutines; it opens its socket in the network namespace of
// the thread that called NewAnnouncer, and stays there.
type Announcer struct {
	addr Address

	arp   *packet.Conn // IPv4: a raw AF_PACKET socket that receives nothing
	frame []byte       // IPv4: the Ethernet frame, built once

	ndp *ndp.Conn // IPv6: a raw ICMPv6 socket that receives nothing
	na  *ndp.NeighborAdvertisement
	cm  *ipv6.ControlMessage
	ifi *net.Interface
}

// ErrNoMAC: the interface has no Ethernet address (loopback, a tunnel), so
// there is nothing to announce and no neighbour cache to correct.
var ErrNoMAC = errors.New("interface has no Ethernet address")

// NewAnnouncer opens the socket that announces a. The address need not be
// on the interface yet; for IPv6 it must be by the time Announce is called
// (the advertisement's source is the VIP, which the kernel sends only from
// an address the interface has).
func NewAnnouncer(a Address) (*Announcer, error) {
	if err := a.check(); err != nil {
		return nil, err
	}
	ifi, err := net.InterfaceByName(a.Interface)
	if err != nil {
		return nil, fmt.Errorf("vip %v: interface %s: %w", a.Prefix, a.Interface, err)
	}
	if len(ifi.HardwareAddr) != 6 {
		return nil, fmt.Errorf("vip %v: %s: %w", a.Prefix, a.Interface, ErrNoMAC)
	}
	an := &Announcer{addr: a, ifi: ifi}
	if a.Prefix.Addr().Is4() {
		err = an.openARP()
	} else {
		err = an.openNDP()
	}
	if err != nil {
		return nil, fmt.Errorf("vip: announcer for %v: %w", a, err)
	}
	return an, nil
}

// dropAll is a socket filter that accepts no packet: the announcer's
// sockets only send, and must not queue what the segment says.
var dropAll = mustAssemble(bpf.RetConstant{Val: 0})

func mustAssemble(prog ...bpf.Instruction) []bpf.RawInstruction {
	raw, err := bpf.Assemble(prog)
	if err != nil {
		panic(err)
	}
	return raw
}

func (an *Announcer) openARP() error {
	vip := an.addr.Prefix.Addr()
	p, err := arp.NewPacket(arp.OperationRequest, an.ifi.HardwareAddr, vip, ethernet.Broadcast, vip)
	if err != nil {
		return err
	}
	payload, err := p.MarshalBinary()
	if err != nil {
		return err
	}
	f := &ethernet.Frame{
		Destination: ethernet.Broadcast,
		Source:      an.ifi.HardwareAddr,
		EtherType:   ethernet.EtherTypeARP,
		Payload:     payload,
	}
	if an.frame, err = f.MarshalBinary(); err != nil {
		return err
	}
	an.arp, err = packet.Listen(an.ifi, packet.Raw, int(ethernet.EtherTypeARP), &packet.Config{Filter: dropAll})
	return err
}

func (an *Announcer) openNDP() error {
	c, _, err := ndp.Listen(an.ifi, ndp.Unspecified)
	if err != nil {
		return err
	}
	var none ipv6.ICMPFilter
	none.SetAll(true) // block every type
	if err := c.SetICMPFilter(&none); err != nil {
		c.Close()
		return err
	}
	vip := an.addr.Prefix.Addr()
	an.ndp = c
	an.na = &ndp.NeighborAdvertisement{
		Override:      true,
		TargetAddress: vip,
		Options:       []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Target, Addr: an.ifi.HardwareAddr}},
	}
	an.cm = &ipv6.ControlMessage{HopLimit: ndp.HopLimit, Src: vip.AsSlice(), IfIndex: an.ifi.Index}
	return nil
}

// Announce sends one gratuitous ARP or unsolicited neighbour advertisement.
// The caller paces them (a burst after adding the address, then a refresh).
func (an *Announcer) Announce() error {
	var err error
	if an.arp != nil {
		_, err = an.arp.WriteTo(an.frame, &packet.Addr{HardwareAddr: ethernet.Broadcast})
	} else {
		err = an.ndp.WriteTo(an.na, an.cm, netip.IPv6LinkLocalAllNodes())
	}
	if err != nil {
		return fmt.Errorf("vip: announcing %v: %w", an.addr, err)
	}
	return nil
}

// Close closes the announcer's socket.
func (an *Announcer) Close() error {
	if an.arp != nil {
		return an.arp.Close()
	}
	return an.ndp.Close()
}
