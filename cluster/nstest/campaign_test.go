package nstest

import (
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"
)

// TestFailoverCampaign is proof layer 3 of the cluster: three halos with
// the configuration (lease 2s), HALO_NSTEST_FAULTS faults (100 by
// default, one round of every kind with -short) drawn from a seed (printed;
// HALO_NSTEST_SEED replays it), every kind once per round in a random
// order. Across the whole run it asserts the invariants (invariants_test.go)
// and that the VIP comes back after every fault; it reports the failover
// times (HALO_NSTEST_REPORT=FILE writes the table to FILE too).
func TestFailoverCampaign(t *testing.T) {
	faults := 100
	if testing.Short() {
		faults = len(allKinds)
	}
	if v := os.Getenv("HALO_NSTEST_FAULTS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			t.Fatalf("HALO_NSTEST_FAULTS=%q: want a count", v)
		}
		faults = n
	}
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("HALO_NSTEST_SEED"); v != "" {
		s, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("HALO_NSTEST_SEED=%q: want a number", v)
		}
		seed = s
	}
	w := newWorld(t, clusterOpts{lease: 2 * time.Second, fenceTimeout: 2 * time.Second})
	t.Logf("%d faults from seed %d (HALO_NSTEST_SEED=%d replays the order)", faults, seed, seed)
	for _, n := range w.nodes {
		w.startHalo(n)
	}
	start := time.Now()
	w.steady(60 * time.Second)
	t.Logf("steady after %s: holder %s, leader %s", time.Since(start).Round(time.Millisecond), w.holders(), w.leader())

	rng := rand.New(rand.NewPCG(seed, 0x4a4c4f))
	var done []fault
	var order []string
	stoppedEarly := ""
	for i := range faults {
		if dl, ok := t.Deadline(); ok && time.Until(dl) < 90*time.Second {
			stoppedEarly = fmt.Sprintf("stopped after %d of %d faults: the test's -timeout is near", i, faults)
			break
		}
		if len(order) == 0 {
			order = slices.Clone(allKinds)
			rng.Shuffle(len(order), func(a, b int) { order[a], order[b] = order[b], order[a] })
		}
		kind := order[0]
		order = order[1:]
		f := w.runFault(kind, rng)
		done = append(done, f)
		if f.moved {
			t.Logf("fault %3d at %s %-11s %s -> %s in %5d ms, %3d lost, whole again in %4d ms  %s", i+1, f.at.Format("15:04:05.000"), kind, f.holder, f.newer, f.failover.Milliseconds(), f.lost, f.repair.Milliseconds(), f.note)
		} else {
			t.Logf("fault %3d at %s %-11s %s kept it,        %3d lost, whole again in %4d ms  %s", i+1, f.at.Format("15:04:05.000"), kind, f.holder, f.lost, f.repair.Milliseconds(), f.note)
		}
	}
	w.steady(60 * time.Second) // the last repair took
	w.finish(t, done, seed, start)
	if stoppedEarly != "" {
		t.Error(stoppedEarly)
	}
}

// finish stops the probes, judges the whole recording, logs the report
// (and adds it to HALO_NSTEST_REPORT) and fails the test on every
// violation.
func (w *world) finish(t *testing.T, done []fault, seed uint64, start time.Time) {
	t.Helper()
	w.r.close()
	rec := w.r.snapshot()
	v := judge(rec)
	text := report(done, v, rec, time.Since(start), seed)
	t.Log("\n" + text)
	if err := writeReport(t.Name(), text); err != nil {
		t.Errorf("HALO_NSTEST_REPORT: %v", err)
	}
	failOn(t, "an ARP request answered by two MACs", v.dualARP)
	failOn(t, "two holders at once (ground truth)", v.dualHolder)
	failOn(t, "an answer from a node that did not hold the VIP", v.nonHolder)
	failOn(t, "a duplicate found by arping", v.arpingDup)
}

// failOn reports the first violations of one invariant.
func failOn(t *testing.T, what string, vs []violation) {
	t.Helper()
	for i, x := range vs {
		if i == 10 {
			t.Errorf("... and %d more of: %s", len(vs)-i, what)
			break
		}
		t.Errorf("%s: %s: %s", x.at.Format("15:04:05.000"), what, x.what)
	}
}
