package proxy

import (
	"fmt"
	"net"
	"net/netip"
	"os"

	"github.com/halo-lb/halo/config"
	"golang.org/x/sys/unix"
)

// setSocketOptions sets a listening socket's options before it is bound:
//   - SO_REUSEPORT always, as HAProxy does, so that a reload which changes
//     an address's socket options can bind the new socket before the old
//     one closes;
//   - IPV6_V6ONLY on an IPv6 socket: on with v6only, otherwise off, so
//     that the wildcard [::] takes IPv4 too whatever net.ipv6.bindv6only
//     says (v4v6 states that default);
//   - SO_BINDTODEVICE for interface, IP(V6)_TRANSPARENT for transparent,
//     IP(V6)_FREEBIND for freebind.
func setSocketOptions(fd int, o config.SocketOptions, ipv6 bool) error {
	type opt struct {
		level, name, value int
		what               string
	}
	opts := []opt{{unix.SOL_SOCKET, unix.SO_REUSEPORT, 1, "SO_REUSEPORT"}}
	if ipv6 {
		opts = append(opts, opt{unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, boolInt(o.V6Only), "v6only (IPV6_V6ONLY)"})
	}
	if o.Transparent {
		if ipv6 {
			opts = append(opts, opt{unix.SOL_IPV6, unix.IPV6_TRANSPARENT, 1, "transparent (IPV6_TRANSPARENT, needs CAP_NET_ADMIN)"})
		} else {
			opts = append(opts, opt{unix.SOL_IP, unix.IP_TRANSPARENT, 1, "transparent (IP_TRANSPARENT, needs CAP_NET_ADMIN)"})
		}
	}
	if o.FreeBind {
		if ipv6 {
			opts = append(opts, opt{unix.SOL_IPV6, unix.IPV6_FREEBIND, 1, "freebind (IPV6_FREEBIND)"})
		} else {
			opts = append(opts, opt{unix.SOL_IP, unix.IP_FREEBIND, 1, "freebind (IP_FREEBIND)"})
		}
	}
	for _, s := range opts {
		if err := unix.SetsockoptInt(fd, s.level, s.name, s.value); err != nil {
			return fmt.Errorf("%s: %w", s.what, err)
		}
	}
	if o.Interface != "" {
		if err := unix.SetsockoptString(fd, unix.SOL_SOCKET, unix.SO_BINDTODEVICE, o.Interface); err != nil {
			return fmt.Errorf("interface %s (SO_BINDTODEVICE, needs CAP_NET_RAW): %w", o.Interface, err)
		}
	}
	return nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// probeBind binds a socket with the bind's address and options, then closes
// it without listening: it tells whether the listener can be opened before
// any new socket of a reload listens. A socket that does not listen takes no
// connection, even where SO_REUSEPORT has it share the port of a running
// listener.
func probeBind(bind config.Bind) error {
	ap, err := netip.ParseAddrPort(bind.Address)
	if err != nil {
		return err
	}
	ipv6 := ap.Addr().Is6()
	var family int
	var sa unix.Sockaddr
	if !ipv6 {
		family, sa = unix.AF_INET, &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}
	} else {
		sa6 := &unix.SockaddrInet6{Port: int(ap.Port()), Addr: ap.Addr().As16()}
		if zone := ap.Addr().Zone(); zone != "" {
			ifi, err := net.InterfaceByName(zone)
			if err != nil {
				return err
			}
			sa6.ZoneId = uint32(ifi.Index)
		}
		family, sa = unix.AF_INET6, sa6
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, unix.IPPROTO_TCP)
	if err != nil {
		return os.NewSyscallError("socket", err)
	}
	defer unix.Close(fd)
	// SO_REUSEADDR as Go's net sets it on every listener.
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
		return os.NewSyscallError("setsockopt", err)
	}
	if err := setSocketOptions(fd, bind.Socket, ipv6); err != nil {
		return err
	}
	if err := unix.Bind(fd, sa); err != nil {
		return os.NewSyscallError("bind", err)
	}
	return nil
}

// listening reports whether a socket passed on by a previous process
// still listens: one that a reload of that process removed was shut down
// (stopListening), though the descriptor passed on may have outlived it.
func listening(ln *net.TCPListener) bool {
	raw, err := ln.SyscallConn()
	if err != nil {
		return false
	}
	on := 0
	_ = raw.Control(func(fd uintptr) { on, _ = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_ACCEPTCONN) })
	return on == 1
}

// stopListening ends a listening socket for every process that holds it,
// not only this descriptor: the copy a binary upgrade hands to the next
// process would keep a closed bind listening, its backlog unserved.
// Linux stops listening on shutdown of the read side, and resets the
// connections queued then, as a close of the last descriptor does.
func stopListening(ln *net.TCPListener) {
	if raw, err := ln.SyscallConn(); err == nil {
		_ = raw.Control(func(fd uintptr) { _ = unix.Shutdown(int(fd), unix.SHUT_RD) })
	}
}
