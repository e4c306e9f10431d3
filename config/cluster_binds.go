package config

import (
	"net"
	"net/netip"
)

// freeBindVIPs sets IP_FREEBIND on every bind whose address is one of the
// cluster's VIPs: such an address is only local while this node holds it,
// and a listener must be able to bind it before (and keep it after). No
// net.ipv4.ip_nonlocal_bind sysctl is needed. HAProxy needs "freebind"
// written on the bind line or the sysctl; halo knows which addresses are
// VIPs.
func freeBindVIPs(cfg *Config) {
	if cfg.Cluster == nil || len(cfg.Cluster.VIPs) == 0 {
		return
	}
	vips := map[netip.Addr]bool{}
	for _, v := range cfg.Cluster.VIPs {
		vips[v.Prefix.Addr().Unmap()] = true
	}
	for _, fe := range cfg.Frontends {
		for i := range fe.Binds {
			host, _, err := net.SplitHostPort(fe.Binds[i].Address)
			if err != nil {
				continue
			}
			if a, err := netip.ParseAddr(host); err == nil && vips[a.Unmap()] {
				fe.Binds[i].Socket.FreeBind = true
			}
		}
	}
}
