package config

import (
	"cmp"
	"fmt"
	"net"
)

// checkWildcardOverlap rejects a specific address and a wildcard on the same
// port: the second bind would fail at run time with "address in use".
func (p *parser) checkWildcardOverlap(binds map[string]string) {
	for norm, path := range binds {
		host, port, _ := net.SplitHostPort(norm)
		if host == "0.0.0.0" || host == "::" {
			continue
		}
		for _, wild := range []string{"0.0.0.0", "::"} {
			wildPath, ok := binds[net.JoinHostPort(wild, port)]
			if !ok {
				continue
			}
			// Report it where the second of the two is written.
			a, b := p.positions[path], p.positions[wildPath]
			if cmp.Or(cmp.Compare(a.line, b.line), cmp.Compare(a.col, b.col)) > 0 {
				p.at(path, "port %s is already bound on every address by %s", port, wildPath)
			} else {
				p.at(wildPath, "port %s on every address overlaps %s", port, path)
			}
		}
	}
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
