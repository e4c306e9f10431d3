package vip

import (
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

const forever = 0xffffffff // the kernel's INFINITY_LIFE_TIME

func TestAddRemoveHas(t *testing.T) {
	for _, vip := range []netip.Prefix{vip4, vip6} {
		t.Run(vip.Addr().String(), func(t *testing.T) {
			l := newLab(t)
			a := Address{Prefix: vip, Interface: nodeIf}
			has := func() bool {
				var got bool
				l.onNode(func() (err error) { got, err = Has(a); return err })
				return got
			}
			if has() {
				t.Fatal("Has before Add")
			}
			l.onNode(func() error { return Add(a, 0) })
			l.onNode(func() error { return Add(a, 0) }) // idempotent
			if !has() {
				t.Fatal("Has after Add = false")
			}
			got := l.nodeAddrs(vip.Addr())
			if len(got) != 1 {
				t.Fatalf("the interface has %d copies of the VIP: %v", len(got), got)
			}
			x := got[0]
			if ones, _ := x.Mask.Size(); ones != vip.Bits() {
				t.Errorf("prefix length %d, want %d", ones, vip.Bits())
			}
			if x.ValidLft != forever || x.PreferedLft != forever || x.Flags&unix.IFA_F_PERMANENT == 0 {
				t.Errorf("lifetime %d/%d flags %#x, want forever and permanent", x.ValidLft, x.PreferedLft, x.Flags)
			}
			if vip.Addr().Is6() && (x.Flags&unix.IFA_F_NODAD == 0 || x.Flags&unix.IFA_F_TENTATIVE != 0) {
				t.Errorf("IPv6 flags %#x, want nodad and not tentative", x.Flags)
			}
			if x.Flags&unix.IFA_F_NOPREFIXROUTE != 0 {
				t.Errorf("flags %#x: noprefixroute, want the prefix route as IPaddr2 adds it", x.Flags)
			}

			l.onNode(func() error { return Remove(a) })
			if has() {
				t.Fatal("Has after Remove")
			}
			l.onNode(func() error { return Remove(a) }) // absent is not an error
		})
	}
}

// The VIP's prefix route is there while it is held, also where the
// interface's own address is in another subnet.
func TestAddKeepsPrefixRoute(t *testing.T) {
	l := newLab(t)
	a := Address{Prefix: netip.MustParsePrefix("10.88.5.100/24"), Interface: nodeIf}
	l.onNode(func() error { return Add(a, 0) })
	link := l.link(l.nodeH, nodeIf)
	routes, err := l.nodeH.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{LinkIndex: link.Attrs().Index, Dst: ipnet(a.Prefix.Masked())},
		netlink.RT_FILTER_OIF|netlink.RT_FILTER_DST)
	if err != nil {
		t.Fatal(err)
	}
	if len(routes) != 1 {
		t.Fatalf("routes to %v via %s: %v, want the prefix route", a.Prefix.Masked(), nodeIf, routes)
	}
	l.onNode(func() error { return Remove(a) })
	routes, _ = l.nodeH.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{LinkIndex: link.Attrs().Index, Dst: ipnet(a.Prefix.Masked())},
		netlink.RT_FILTER_OIF|netlink.RT_FILTER_DST)
	if len(routes) != 0 {
		t.Errorf("the prefix route outlived the VIP: %v", routes)
	}
}

// Add sets valid_lft = preferred_lft = the lifetime rounded up to seconds,
// and a renewal replaces it, also back to forever.
func TestAddSetsAndRenewsLifetime(t *testing.T) {
	for _, vip := range []netip.Prefix{vip4, vip6} {
		t.Run(vip.Addr().String(), func(t *testing.T) {
			l := newLab(t)
			a := Address{Prefix: vip, Interface: nodeIf}
			for _, step := range []struct {
				validFor time.Duration
				want     int
			}{{1500 * time.Millisecond, 2}, {30 * time.Second, 30}, {0, forever}, {3 * time.Second, 3}} {
				l.onNode(func() error { return Add(a, step.validFor) })
				got := l.nodeAddrs(vip.Addr())
				if len(got) != 1 {
					t.Fatalf("after Add(%v): %d copies", step.validFor, len(got))
				}
				// The kernel counts down in whole seconds: allow one tick.
				if v, p := got[0].ValidLft, got[0].PreferedLft; v > step.want || v < step.want-1 || p != v {
					t.Errorf("Add(%v): valid_lft %d preferred_lft %d, want %d", step.validFor, v, p, step.want)
				}
			}
		})
	}
}

// The point of the lifetime: an address nobody renews leaves the kernel by
// itself, IPv4 included, and a renewal keeps it.
func TestLifetimeExpires(t *testing.T) {
	for _, vip := range []netip.Prefix{vip4, vip6} {
		t.Run(vip.Addr().String(), func(t *testing.T) {
			t.Parallel()
			l := newLab(t)
			a := Address{Prefix: vip, Interface: nodeIf}

			// Not renewed: gone about a second after it was added.
			l.onNode(func() error { return Add(a, time.Second) })
			t.Logf("%v with valid_lft 1s: gone %v after Add", vip.Addr(), l.waitGone(a, time.Second))

			// Renewed halfway, it outlives its first lifetime, and goes
			// one lifetime after the renewal.
			const life = 2 * time.Second
			l.onNode(func() error { return Add(a, life) })
			time.Sleep(life / 2)
			l.onNode(func() error { return Add(a, life) })
			time.Sleep(life * 3 / 4) // past the first lifetime, inside the renewal's
			if len(l.nodeAddrs(vip.Addr())) != 1 {
				t.Fatalf("gone %v after the first Add with a lifetime of %v, though renewed", life*5/4, life)
			}
			gone := life*3/4 + l.waitGone(a, life/4)
			t.Logf("%v with valid_lft %v: gone %v after its renewal", vip.Addr(), life, gone.Round(10*time.Millisecond))
		})
	}
}

// waitGone waits for the VIP, whose lifetime ends in left, to leave the
// interface, and returns how long that took. The kernel's expiry work runs
// about once a second: gone before left minus a second, or still there
// three seconds after left, fails the test.
func (l *lab) waitGone(a Address, left time.Duration) time.Duration {
	l.t.Helper()
	start := time.Now()
	for len(l.nodeAddrs(a.Prefix.Addr())) != 0 {
		if time.Since(start) > left+3*time.Second {
			l.t.Fatalf("%v still there %v after its lifetime ended", a, time.Since(start)-left)
		}
		time.Sleep(10 * time.Millisecond)
	}
	took := time.Since(start)
	if took < left-time.Second {
		l.t.Errorf("%v gone after %v, before its lifetime of %v ended", a, took, left)
	}
	return took
}

// Remove takes every copy of the VIP's IP, whatever its prefix length, and
// Has sees any of them.
func TestRemoveAnyPrefixLength(t *testing.T) {
	l := newLab(t)
	host := netip.PrefixFrom(vip4.Addr(), 32)
	if err := l.nodeH.AddrAdd(l.link(l.nodeH, nodeIf), &netlink.Addr{IPNet: ipnet(host)}); err != nil {
		t.Fatal(err)
	}
	a := Address{Prefix: vip4, Interface: nodeIf}
	l.onNode(func() error {
		if has, err := Has(a); !has || err != nil {
			return errors.New("Has does not see the /32 copy")
		}
		if err := Add(a, 0); err != nil {
			return err
		}
		return Remove(a)
	})
	if got := l.nodeAddrs(vip4.Addr()); len(got) != 0 {
		t.Errorf("left %v", got)
	}
}

func TestRemoveAll(t *testing.T) {
	l := newLab(t)
	held := []Address{{Prefix: vip4, Interface: nodeIf}, {Prefix: vip6, Interface: nodeIf}}
	absent := Address{Prefix: netip.MustParsePrefix("10.77.0.101/24"), Interface: nodeIf}
	missing := Address{Prefix: netip.MustParsePrefix("10.77.0.102/24"), Interface: "nosuch0"}
	l.onNode(func() error {
		for _, a := range held {
			if err := Add(a, time.Minute); err != nil {
				return err
			}
		}
		return RemoveAll(append(held, absent))
	})
	for _, a := range held {
		if got := l.nodeAddrs(a.Prefix.Addr()); len(got) != 0 {
			t.Errorf("RemoveAll left %v", got)
		}
	}
	l.onNode(func() error {
		if err := Add(held[0], 0); err != nil {
			return err
		}
		if err := RemoveAll([]Address{missing, held[0]}); err == nil {
			return errors.New("RemoveAll with a missing interface: no error")
		}
		return nil
	})
	if got := l.nodeAddrs(vip4.Addr()); len(got) != 0 {
		t.Errorf("RemoveAll stopped at the missing interface and left %v", got)
	}
}

func TestMissingInterfaceAndBadAddress(t *testing.T) {
	l := newLab(t)
	l.onNode(func() error {
		missing := Address{Prefix: vip4, Interface: "nosuch0"}
		if err := Add(missing, 0); err == nil {
			return errors.New("Add on a missing interface: no error")
		}
		if _, err := Has(missing); err == nil {
			return errors.New("Has on a missing interface: no error")
		}
		if err := Remove(missing); err == nil {
			return errors.New("Remove on a missing interface: no error")
		}
		for _, p := range []string{"0.0.0.0/0", "224.0.0.5/32", "::/0", "ff02::1/128", "::ffff:10.0.0.1/120", "127.0.0.2/8"} {
			bad := Address{Prefix: netip.MustParsePrefix(p), Interface: nodeIf}
			if err := Add(bad, 0); !errors.Is(err, ErrAddress) {
				return errors.New("Add(" + p + ") = " + errString(err) + ", want ErrAddress")
			}
		}
		if err := Add(Address{Prefix: vip4}, 0); !errors.Is(err, ErrAddress) {
			return errors.New("Add without interface: " + errString(err))
		}
		if err := Add(Address{Prefix: vip4, Interface: nodeIf}, -time.Second); err == nil {
			return errors.New("Add with a negative lifetime: no error")
		}
		return nil
	})
}

func errString(err error) string {
	if err == nil {
		return "nil"
	}
	return err.Error()
}
