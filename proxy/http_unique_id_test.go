package proxy

import (
	"strings"
	"testing"
)

// TestUniqueIDAllocatesNothing forwards requests through a frontend with
// OpenStack's unique-id-format and unique-id-header and no rule: making
// the ID and adding its header allocate nothing per request.
func TestUniqueIDAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector")
	}
	cfg := strings.Replace(forwardRulesConfig, "  fe:\n", "  fe:\n    unique-id-format: '%{+X}o\\ %ci:%cp_%fi:%fp_%Ts_%rt:%pid_%[base32]'\n    unique-id-header: X-Unique-ID\n", 1)
	if cfg == forwardRulesConfig {
		t.Fatal("the frontend was not found in the configuration")
	}
	r := newForwardRigConfig(t, cfg)
	for range 10 {
		r.forward(t)
	}
	if n := testing.AllocsPerRun(500, func() { r.forward(t) }); n != 0 {
		t.Fatalf("forward with a unique ID allocates %.1f times per request, want 0", n)
	}
}
