package cluster

import "context"

// hardware is what the driver touches outside the process: the VIPs in the
// kernel, ARP/NA announcements, fence agents and the watchdog device. The
// driver's tests replace it; system is the real one.
type hardware interface {
	clearAll()
	add(vip string)
	remove(vip string)
	announce(vip string)
	pet()
	close()
	fence(ctx context.Context, node string) (detail string, err error)
	unfence(ctx context.Context, node string) (detail string, err error)
}
