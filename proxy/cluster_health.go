package proxy

import (
	"net"
	"net/netip"

	"github.com/halo-lb/halo/config"
)

// VIPHealthy answers the cluster's one question of the proxy: may this node
// hold the virtual IP addr? It may when a frontend bound to addr (or to the
// wildcard address of its family) is listening and, with servers-up, that
// frontend's default backend has a usable server. It reads the current
// snapshot only; the cluster calls it from its control loop.
func (p *Proxy) VIPHealthy(addr netip.Addr, require config.VIPRequire) bool {
	s := p.current.Load()
	if s == nil {
		return false
	}
	addr = addr.Unmap()
	for _, fe := range s.frontends {
		if !fe.boundTo(addr) {
			continue
		}
		if require != config.RequireServersUp {
			return true
		}
		if be := fe.defaultBackend; be != nil && be.hasUsable() {
			return true
		}
	}
	return false
}

func (fe *frontend) boundTo(addr netip.Addr) bool {
	for _, l := range fe.listeners {
		if l.closed.Load() || l.ln == nil {
			continue
		}
		ta, ok := l.ln.Addr().(*net.TCPAddr)
		if !ok {
			continue
		}
		la, ok := netip.AddrFromSlice(ta.IP)
		if !ok {
			continue
		}
		la = la.Unmap()
		if la == addr || la.IsUnspecified() && (la.Is6() || addr.Is4()) { // [::] takes IPv4 too unless v6only
			return true
		}
	}
	return false
}

func (be *backend) hasUsable() bool {
	for i := range be.servers {
		if be.pool.Usable(i) {
			return true
		}
	}
	return false
}
