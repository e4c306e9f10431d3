package config

import (
	"cmp"
	"fmt"
	"net"
	"slices"
	"strings"
)

// Bind is one "bind" line of a frontend.
type Bind struct {
	// Address is IP:PORT or [IPv6]:PORT, normalized: "*:PORT" and ":PORT"
	// are "0.0.0.0:PORT", every IPv4 address, as in HAProxy. Port 0 asks
	// the kernel for a free port.
	Address string
	// Socket holds the options that act on the listening socket: a reload
	// that changes any of them opens a new socket for the address; one
	// that changes none keeps the running socket.
	Socket SocketOptions
	// TLS is the bind's "ssl": nil when it serves plain TCP.
	TLS *BindTLS
	// AcceptProxy is "accept-proxy": nil when connections carry no PROXY
	// protocol header.
	AcceptProxy *AcceptProxy
	// src is the bind as written, for the build.
	src *fileBind
}

// SocketOptions are HAProxy's bind options that act on the listening
// socket. The struct is comparable: together with the address it is what
// identifies a listener across reloads.
type SocketOptions struct {
	// V4V6 ("v4v6") has an IPv6 socket accept IPv4 too (IPV6_V6ONLY off);
	// V6Only ("v6only") keeps it to IPv6. Without either, an IPv6
	// wildcard [::] accepts IPv4 too.
	V4V6   bool
	V6Only bool
	// Interface ("interface NAME") binds to one network interface
	// (SO_BINDTODEVICE): only traffic arriving there is accepted.
	Interface string
	// Transparent ("transparent") binds an address this host does not
	// have (IP_TRANSPARENT), such as a VIP held by another node; it needs
	// CAP_NET_ADMIN.
	Transparent bool
	// FreeBind ("freebind") binds an address before it is configured on
	// any interface (IP_FREEBIND), without privileges.
	FreeBind bool
}

// shorthandKey lets a bind be written as its address alone.
func (*fileBind) shorthandKey() string { return "address" }

// bindRef is one bind of a frontend, with where it is written.
type bindRef struct {
	path    string // the bind's key path, e.g. frontends.fe.bind[0]
	bind    *Bind
	spelled string // the address as written
	pos     position
	// addressPath is where its address is written: the bind itself in
	// the string form, its address key in the mapping form.
	addressPath string
}

// buildBinds normalizes every frontend's bind addresses and checks them:
// valid, their options consistent, and no two the same socket. Binds are
// visited in file order, so that a conflict is reported where it is written
// a second time.
//
// Two binds are the same socket when they have the same address and port
// and the same interface, or either has none: the kernel would refuse the
// second, or, as halo sets SO_REUSEPORT, share connections between the two
// frontends at random. A specific address next to a wildcard on the same
// port is not a conflict: the kernel gives each connection to the most
// specific bind, as it does for HAProxy.
func (p *parser) buildBinds(cfg *Config, fc *fileConfig) {
	var refs []bindRef
	defTLS := p.buildDefaultBindTLS(fc.Global)
	for _, fe := range cfg.Frontends {
		path := sectionPath(fc, "frontends", fe.Name)
		if len(fe.Binds) == 0 {
			p.at(path, "no bind address: a frontend needs at least one")
		}
		if fe.HTTPSRedirect != 0 && fe.Mode != ModeHTTP {
			p.at(path+".https-redirect", "https-redirect answers HTTP requests and needs mode http; this section is in mode %s", fe.Mode)
		}
		for i := range fe.Binds {
			bp := fmt.Sprintf("%s.bind[%d]", path, i)
			r := bindRef{path: bp, bind: &fe.Binds[i], spelled: fe.Binds[i].Address, pos: p.positions[bp], addressPath: bp}
			if _, ok := p.positions[bp+".address"]; ok {
				r.addressPath = bp + ".address"
			}
			refs = append(refs, r)
			fe.Binds[i].TLS = p.buildBindTLS(r, fe.Mode, defTLS)
			fe.Binds[i].AcceptProxy = p.buildAcceptProxy(r)
			fe.Binds[i].src = nil
		}
	}
	slices.SortFunc(refs, func(a, b bindRef) int {
		return cmp.Or(cmp.Compare(a.pos.line, b.pos.line), cmp.Compare(a.pos.col, b.pos.col))
	})
	bound := map[string][]bindRef{} // normalized address -> its binds so far
	for _, r := range refs {
		if !p.buildBind(r) || strings.HasSuffix(r.bind.Address, ":0") {
			continue // each port-0 bind gets its own free port
		}
		if first := sameSocket(bound[r.bind.Address], r); first != nil {
			p.at(r.addressPath, "%q is already bound by %s", r.spelled, first.path)
			continue
		}
		bound[r.bind.Address] = append(bound[r.bind.Address], r)
	}
}

// sameSocket returns the bind among binds (all of one address) that r
// would share a socket with, or nil.
func sameSocket(binds []bindRef, r bindRef) *bindRef {
	for i, b := range binds {
		bi, ri := b.bind.Socket.Interface, r.bind.Socket.Interface
		if bi == ri || bi == "" || ri == "" {
			return &binds[i]
		}
	}
	return nil
}

// buildBind normalizes one bind's address and checks its options; false
// when it is in error.
func (p *parser) buildBind(r bindRef) bool {
	b := r.bind
	if b.Address == "" {
		p.at(r.path, "bind has no address")
		return false
	}
	norm, err := normalizeBind(b.Address)
	if err != nil {
		p.at(r.addressPath, "%v", err)
		return false
	}
	b.Address = norm
	ok := true
	ipv6 := strings.HasPrefix(norm, "[")
	switch o := &b.Socket; {
	case o.V4V6 && o.V6Only:
		p.at(r.path+".v6only", "v4v6 and v6only exclude each other")
		ok = false
	case (o.V4V6 || o.V6Only) && !ipv6:
		key := "v4v6"
		if o.V6Only {
			key = "v6only"
		}
		p.at(r.path+"."+key, "%s applies to IPv6 sockets; %s is an IPv4 address", key, norm)
		ok = false
	}
	if name := b.Socket.Interface; name != "" && (len(name) > 15 || strings.ContainsAny(name, "/ \t\x00")) {
		p.at(r.path+".interface", "invalid interface name %q: want 1 to 15 characters without '/' or spaces, as ip link shows them", name)
		ok = false
	}
	return ok
}

// normalizeBind turns "*:80", ":80" and "0.0.0.0:80" into one spelling.
func normalizeBind(bind string) (string, error) {
	host, port, err := net.SplitHostPort(bind)
	if err != nil {
		return "", fmt.Errorf("invalid bind address %q: want ADDRESS:PORT, *:PORT or [IPv6]:PORT", bind)
	}
	// Port 0 lets the kernel choose a free port (tests use it); any other
	// port must be a valid one.
	if err := checkPort(port); err != nil && port != "0" {
		return "", fmt.Errorf("invalid bind address %q: %v", bind, err)
	}
	switch host {
	case "", "*":
		host = "0.0.0.0"
	default:
		ip := net.ParseIP(host)
		if ip == nil {
			return "", fmt.Errorf("invalid bind address %q: %q is not an IP address", bind, host)
		}
		host = ip.String()
	}
	return net.JoinHostPort(host, port), nil
}
