// Package vip owns a virtual IP address on this host: adding it to an
// interface with a kernel lifetime (so that an address whose process died,
// even by SIGKILL, leaves the kernel by itself), removing it, asking whether
// the interface has it, and announcing it to the segment (announce.go:
// gratuitous ARP for IPv4, unsolicited neighbour advertisements for IPv6).
//
// It does no policy: the cluster's state machine decides when a node holds a
// VIP, and this package only carries it out. Every function acts in the
// network namespace of the calling thread, which is the process's unless a
// caller switched its locked thread. The functions are safe for concurrent
// use (each asks the kernel afresh).
package vip

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Address is one VIP: the address with its prefix length (the prefix route
// for the subnet is added with it, as IPaddr2 and keepalived do), on a named
// interface.
type Address struct {
	Prefix    netip.Prefix // e.g. 10.99.0.100/24; the host bits are the VIP
	Interface string
}

func (a Address) String() string { return a.Prefix.String() + " dev " + a.Interface }

// ErrAddress: the Address is not a unicast IPv4 or IPv6 address with a
// prefix length.
var ErrAddress = errors.New("invalid VIP address")

func (a Address) check() error {
	ip := a.Prefix.Addr()
	if !a.Prefix.IsValid() || ip.Is4In6() || ip.Zone() != "" || ip.IsUnspecified() || ip.IsMulticast() || ip.IsLoopback() {
		return fmt.Errorf("%w %v", ErrAddress, a.Prefix)
	}
	if a.Interface == "" {
		return fmt.Errorf("%w %v: no interface", ErrAddress, a.Prefix)
	}
	return nil
}

func (a Address) family() int {
	if a.Prefix.Addr().Is4() {
		return netlink.FAMILY_V4
	}
	return netlink.FAMILY_V6
}

func (a Address) link() (netlink.Link, error) {
	if err := a.check(); err != nil {
		return nil, err
	}
	l, err := netlink.LinkByName(a.Interface)
	if err != nil {
		return nil, fmt.Errorf("vip %v: interface %s: %w", a.Prefix, a.Interface, err)
	}
	return l, nil
}

// Add adds the address, or renews it if the interface has it: an
// RTM_NEWADDR with NLM_F_REPLACE, so calling it again only resets the
// lifetime. validFor is the kernel lifetime, valid_lft = preferred_lft =
// validFor rounded up to whole seconds (the kernel's unit); 0 means forever.
// When the lifetime runs out without a renewal the kernel deletes the
// address (and its prefix route) itself.
//
// IPv6 addresses are added with nodad: a VIP must answer the moment it is
// added, and whether another node still holds it is the cluster's question,
// which duplicate address detection (a second, after which the address is
// dropped, not fought for) cannot answer. The prefix route is added as
// usual (no noprefixroute), as IPaddr2 and keepalived do, so clients in the
// VIP's subnet are reachable even on an interface whose own address is in
// another one.
func Add(a Address, validFor time.Duration) error {
	l, err := a.link()
	if err != nil {
		return err
	}
	addr := a.netlinkAddr()
	if a.family() == netlink.FAMILY_V6 {
		addr.Flags = unix.IFA_F_NODAD
	}
	if validFor < 0 {
		return fmt.Errorf("vip %v: negative lifetime %v", a.Prefix, validFor)
	}
	if validFor > 0 {
		// Without IFA_CACHEINFO (both 0) the kernel makes the address
		// permanent, which is what forever means.
		secs := math.Ceil(validFor.Seconds())
		if secs >= math.MaxUint32 { // 0xffffffff is the kernel's infinity
			secs = math.MaxUint32 - 1
		}
		addr.ValidLft = int(secs)
		addr.PreferedLft = int(secs)
	}
	if err := netlink.AddrReplace(l, addr); err != nil {
		return fmt.Errorf("vip: adding %v: %w", a, err)
	}
	return nil
}

func (a Address) netlinkAddr() *netlink.Addr {
	bits := a.Prefix.Addr().BitLen()
	return &netlink.Addr{IPNet: &net.IPNet{
		IP:   a.Prefix.Addr().AsSlice(),
		Mask: net.CIDRMask(a.Prefix.Bits(), bits),
	}}
}

// Remove deletes the address from the interface: every copy of the VIP's IP
// there, whatever its prefix length, since any of them would answer for it.
// An address that is not there is not an error; an interface that does not
// exist is.
func Remove(a Address) error {
	l, err := a.link()
	if err != nil {
		return err
	}
	copies, err := find(l, a)
	if err != nil {
		return err
	}
	for _, c := range copies {
		err := netlink.AddrDel(l, &c)
		if err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.ESRCH) {
			// EADDRNOTAVAIL and friends: gone meanwhile (its lifetime ran
			// out, someone else removed it), which is what we wanted.
			return fmt.Errorf("vip: removing %v: %w", a, err)
		}
	}
	return nil
}

// Has reports whether the interface has the VIP's IP, with any prefix
// length (an address that answers ARP is held, whatever its mask).
func Has(a Address) (bool, error) {
	l, err := a.link()
	if err != nil {
		return false, err
	}
	copies, err := find(l, a)
	return len(copies) > 0, err
}

// find lists the addresses on l whose IP is the VIP's.
func find(l netlink.Link, a Address) ([]netlink.Addr, error) {
	all, err := netlink.AddrList(l, a.family())
	if err != nil {
		return nil, fmt.Errorf("vip: listing the addresses of %s: %w", a.Interface, err)
	}
	var out []netlink.Addr
	for _, x := range all {
		if ip, ok := netip.AddrFromSlice(x.IP); ok && ip.Unmap() == a.Prefix.Addr() {
			out = append(out, x)
		}
	}
	return out, nil
}

// RemoveAll removes every address (Remove), going on past failures, and
// returns them joined. At startup it clears VIPs a crashed process left
// behind, before this node joins the cluster.
func RemoveAll(addrs []Address) error {
	var errs []error
	for _, a := range addrs {
		if err := Remove(a); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
