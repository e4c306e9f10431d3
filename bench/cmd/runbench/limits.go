package main

import "syscall"

// hardFileLimit is this process's hard RLIMIT_NOFILE, which the proxies
// it starts inherit.
func hardFileLimit() int {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0
	}
	return int(lim.Max)
}

// idleCeiling is the most idle client connections HAProxy can be
// configured for under the hard file limit: it refuses to start when
// maxconn needs more descriptors than the limit, counting two per
// connection (client and server side) plus about 214 of its own
// (measured: maxconn 10100 wants 20214). The rest is kept as a margin and
// the result rounded down to hundreds.
func idleCeiling() int {
	return (hardFileLimit() - 300) / 2 / 100 * 100
}
