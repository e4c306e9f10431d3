package nstest

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// TestWatchdogSelfFencing is the shorter scenario: every node has a
// watchdog (the fake one, which SIGKILLs halo's process group when the
// pets stop; never the real softdog on a shared machine), and the fence
// agent fails throughout each fault. A holder that is stopped, killed or
// cut off stops petting and is "reset" by its watchdog; the leader may
// then free its VIP once the self-fencing bound (last grant + 2 × lease +
// 2 × watchdog timeout) has run out, with no fence confirmed. The same
// invariants hold across the run: the bound must never let two nodes
// answer. HALO_NSTEST_WATCHDOG_FAULTS sets the count (4, or 2 with -short).
func TestWatchdogSelfFencing(t *testing.T) {
	faults := 4
	if testing.Short() {
		faults = 2
	}
	if v := os.Getenv("HALO_NSTEST_WATCHDOG_FAULTS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			t.Fatalf("HALO_NSTEST_WATCHDOG_FAULTS=%q: want a count", v)
		}
		faults = n
	}
	const dogTimeout = time.Second
	w := newWorld(t, clusterOpts{lease: 2 * time.Second, fenceTimeout: 2 * time.Second, watchdog: func(n *node) string {
		return fmt.Sprintf("  watchdog: {device: %s, timeout: %s}\n", dogPath(n), dogTimeout)
	}})
	for _, n := range w.nodes {
		w.startGuarded(n, dogTimeout)
	}
	start := time.Now()
	kinds := []string{"sigstop", "part-link", "kill", "part-tc"}
	var done []fault
	for i := range faults {
		kind := kinds[i%len(kinds)]
		h := w.steady(60 * time.Second)
		w.fenceMode("fail", true)
		f := fault{kind: "watchdog+" + kind, holder: h.name, at: time.Now(), note: "fence agent failing"}
		repair := w.breakHolder(h, kind)
		w.awaitMove(&f, h, time.Time{})
		if off := w.fencedOK(h.name, f.at); !off.IsZero() {
			w.fatal("%s was confirmed off at %s though its agent was failing", h.name, off.Format("15:04:05.000"))
		}
		// Its watchdog fired (or, for kill, nothing was left to fire at).
		p := h.proc
		if p != nil {
			w.waitFor(10*time.Second, "the watchdog to kill "+h.name+"'s halo", func() bool { return !p.alive() })
		}
		w.fenceMode("fail", false)
		outcome := time.Now()
		if kind != "kill" && kind != "sigstop" {
			repair() // heal the partition
		}
		w.killHalo(h)
		w.startGuarded(h, dogTimeout)
		w.unfenceAll(30 * time.Second)
		w.steady(60 * time.Second)
		f.repair = time.Since(outcome)
		done = append(done, f)
		t.Logf("fault %d %-18s %s -> %s in %5d ms, %3d lost, whole again in %4d ms", i+1, f.kind, f.holder, f.newer, f.failover.Milliseconds(), f.lost, f.repair.Milliseconds())
	}
	w.finish(t, done, 0, start)
}

// dogPath is the FIFO n's halo opens as its watchdog, beside its data-dir.
func dogPath(n *node) string { return filepath.Join(filepath.Dir(n.dir), n.name+".watchdog") }

// startGuarded starts n's halo and then its fake watchdog, aimed at the
// halo's process group (halo opens the FIFO on its first pet, and retries
// until the fake has made it).
func (w *world) startGuarded(n *node, timeout time.Duration) {
	w.t.Helper()
	if n.dog != nil {
		n.dog.kill()
		n.dog = nil
	}
	w.startHalo(n)
	d, err := startIn(n.ns, filepath.Join(w.dir, n.name+"-watchdog.log"), fakeDogBin,
		"-fifo", dogPath(n), "-timeout", timeout.String(), "-pgid", strconv.Itoa(n.proc.pid()))
	if err != nil {
		w.t.Fatalf("starting the fake watchdog of %s: %v", n.name, err)
	}
	n.dog = d
}
