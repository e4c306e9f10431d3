//go:build !linux

package health

// startTCPProbe: outside Linux, TCP checks run in a loop of their own.
func startTCPProbe(*Monitor) schedule { return nil }
