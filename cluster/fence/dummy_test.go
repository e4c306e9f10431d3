package fence

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/halo-lb/halo/internal/testnet"
)

// fenceDummy is fence-agents' own test agent (Debian package fence-agents),
// built on the fencing.py library every fence_* agent uses: it keeps the
// power state in a file.
const fenceDummy = "/usr/sbin/fence_dummy"

// The real thing: a fence-agents agent reads our stdin, fences, and its
// status confirms; a failing one is a failure.
func TestFenceAgentsDummy(t *testing.T) {
	if _, err := os.Stat(fenceDummy); err != nil {
		testnet.SkipOrFail(t, fenceDummy+" is not installed (Debian package fence-agents; scripts/install-deps installs it)")
	}
	status := filepath.Join(t.TempDir(), "status")
	a := Agent{Path: fenceDummy, Options: map[string]string{"type": "file", "status_file": status}, Timeout: 30 * time.Second}
	ctx := context.Background()

	if rs, err := a.Unfence(ctx); err != nil {
		t.Fatalf("on: %v %+v", err, rs)
	}
	if r := a.Run(ctx, "status"); r.Err != nil || r.ExitCode != ExitSuccess {
		t.Fatalf("status after on = %+v, want 0 (on)", r)
	}
	rs, err := a.Fence(ctx, "off")
	if err != nil {
		t.Fatalf("Fence(off): %v %+v", err, rs)
	}
	if len(rs) != 2 || rs[1].ExitCode != ExitOff {
		t.Fatalf("results = %+v, want off then status 2", rs)
	}
	if b, _ := os.ReadFile(status); string(b) != "off" {
		t.Errorf("status file = %q, want off", b)
	}
	if r := a.Run(ctx, "monitor"); r.Err != nil {
		t.Errorf("monitor = %+v", r)
	}

	// type=fail never reaches the off state; power_timeout makes it say so
	// in a second instead of twenty.
	failing := Agent{Path: fenceDummy, Options: map[string]string{"type": "fail", "power_timeout": "1"}, Timeout: 30 * time.Second}
	rs, err = failing.Fence(ctx, "off")
	if !errors.Is(err, ErrFailed) || len(rs) != 1 || rs[0].ExitCode != ExitFailure {
		t.Fatalf("failing Fence(off) = %+v, %v; want exit 1", rs, err)
	}
	t.Logf("failing agent said: %s", rs[0].Output)
}
