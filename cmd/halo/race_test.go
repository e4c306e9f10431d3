//go:build race

package main

// The race detector slows this test binary (the clients, not halo, which
// is built without it) several times over: measurements that need the
// clients at full speed run only in normal builds (scripts/test runs them
// so).
const raceEnabled = true
