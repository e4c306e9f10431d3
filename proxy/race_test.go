//go:build race

package proxy

// The race detector's runtime allocates on its own, so allocation counts
// are only asserted in normal builds.
const raceEnabled = true
