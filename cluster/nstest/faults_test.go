package nstest

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"syscall"
	"time"
)

// The faults of the campaign. Each is injected into a steady cluster, its
// outcome awaited (the VIP answered by a new holder, or kept where it
// was), then repaired, and the cluster made whole again before the next.

var allKinds = []string{
	"kill",        // kill -9 of the holder's halo
	"sigstop",     // SIGSTOP of the holder (its kernel still answers ARP: needs the fence)
	"part-link",   // the holder's eth0 set down
	"part-tc",     // tc drops every frame to and from the holder; its link stays up (silentCut)
	"part-detach", // the holder's bridge port detached from the bridge (carrier stays up)
	"follower",    // a node that holds nothing and does not lead, partitioned (part-link or part-tc)
	"leader-part", // the raft leader partitioned (part-link or part-tc); it may hold the VIP
	"leader-kill", // kill -9 of the raft leader (which may hold the VIP)
	"fence-fail",  // the agent fails, then works, under a holder fault
	"fence-hang",  // the agent hangs (halo's fencing.timeout kills it), then works
}

// holderFaults are what fence-fail and fence-hang combine with.
var holderFaults = []string{"kill", "sigstop", "part-link", "part-tc"}

// breakHolder injects a fault into n and returns its repair.
func (w *world) breakHolder(n *node, how string) func() {
	w.t.Helper()
	switch how {
	case "kill":
		w.killHalo(n)
		return func() { w.startHalo(n) } // it clears what its kernel kept
	case "sigstop":
		n.proc.signal(syscall.SIGSTOP)
		p := n.proc
		return func() { p.signal(syscall.SIGCONT) }
	case "part-link", "part-tc":
		return w.partition(n, how)
	case "part-detach":
		w.ip("-n", w.sw, "link", "set", n.port, "nomaster")
		return func() { w.ip("-n", w.sw, "link", "set", n.port, "master", "br0") }
	}
	w.t.Fatalf("no fault %q", how)
	return nil
}

// partition cuts n off: its eth0 down (part-link), or every frame
// dropped both ways while the link stays up (part-tc, silentCut).
func (w *world) partition(n *node, how string) func() {
	w.t.Helper()
	if how == "part-link" {
		w.ip("-n", n.ns, "link", "set", "eth0", "down")
		return func() { w.ip("-n", n.ns, "link", "set", "eth0", "up") }
	}
	healNode := w.silentCut(n.ns, "eth0")
	healPort := w.silentCut(w.sw, n.port)
	return func() { healNode(); healPort() }
}

// runFault injects one fault of kind into the steady cluster, waits for
// its outcome and repairs it.
func (w *world) runFault(kind string, rng *rand.Rand) fault {
	w.t.Helper()
	h := w.steady(60 * time.Second)
	f := fault{kind: kind, holder: h.name}
	var repairs []func()
	switch kind {
	case "kill", "sigstop", "part-link", "part-tc", "part-detach":
		f.at = time.Now()
		repairs = append(repairs, w.breakHolder(h, kind))
		w.awaitMove(&f, h, time.Time{})
	case "fence-fail", "fence-hang":
		how := holderFaults[rng.IntN(len(holderFaults))]
		mode, need := "fail", 2 // two failed runs: the retry was refused too
		if kind == "fence-hang" {
			mode, need = "hang", 1 // one run killed by fencing.timeout
		}
		f.note = "with " + how
		w.fenceMode(mode, true)
		f.at = time.Now()
		repairs = append(repairs, w.breakHolder(h, how))
		within := w.opts.lease + time.Duration(need)*(w.opts.fenceTimeout+2*time.Second) + 10*time.Second
		w.waitFor(within, "the fence agent to fail (or time out) on "+h.name, func() bool {
			failed, _ := w.fenceRuns(h.name, f.at)
			return failed >= need
		})
		fixed := time.Now()
		w.fenceMode(mode, false)
		w.noMove(h, f.at, "while its fence agent was made to "+mode)
		w.awaitMove(&f, h, fixed)
		f.note += ", " + ms(f.failover-fixed.Sub(f.at)) + " ms after the agent was fixed"
	case "follower", "leader-part":
		// follower: a node that neither holds the VIP nor leads;
		// leader-part: the raft leader, which may hold the VIP.
		leader := w.node(w.leader())
		if leader == nil {
			w.fatal("no leader")
		}
		var target *node
		if kind == "leader-part" {
			target = leader
		} else {
			var cands []*node
			for _, n := range w.nodes {
				if n != h && n != leader {
					cands = append(cands, n)
				}
			}
			target = cands[rng.IntN(len(cands))]
		}
		how := []string{"part-link", "part-tc"}[rng.IntN(2)]
		f.note = target.name + " by " + how
		if target == h {
			f.note += ", the leader held the VIP"
			f.at = time.Now()
			repairs = append(repairs, w.breakHolder(h, how))
			w.awaitMove(&f, h, time.Time{})
			break
		}
		f.at = time.Now()
		heal := w.partition(target, how)
		w.waitFor(10*time.Second, "the holder to notice the partitioned "+target.name, func() bool {
			st, err := h.status()
			if err != nil {
				return false
			}
			for _, m := range st.Members {
				if m.Name == target.name && m.HeardAgo > w.opts.lease {
					return true
				}
			}
			return false
		})
		heal()
		w.noMove(h, f.at, "when "+target.name+" was partitioned")
		f.lost = errorsBetween(w.r.answersSince(f.at), f.at, time.Now())
	case "leader-kill":
		l := w.node(w.leader())
		if l == nil {
			w.fatal("no leader to kill")
		}
		f.note = "leader " + l.name
		if l == h {
			f.note += " held the VIP"
			f.at = time.Now()
			repairs = append(repairs, w.breakHolder(h, "kill"))
			w.awaitMove(&f, h, time.Time{})
			break
		}
		f.at = time.Now()
		w.killHalo(l)
		// A new leader, and the holder's lease carried past the last grant
		// the old one could have given.
		var elected time.Duration // when the holder first named a new leader
		w.waitFor(10*time.Second, "a new leader after killing "+l.name, func() bool {
			st, err := h.status()
			newLeader := err == nil && st.Leader != "" && st.Leader != l.name
			if newLeader && elected == 0 {
				elected = time.Since(f.at)
			}
			return newLeader && time.Since(f.at) > w.opts.lease+500*time.Millisecond
		})
		f.note += fmt.Sprintf(", %s named a new leader after %d ms", h.name, elected.Milliseconds())
		w.noMove(h, f.at, fmt.Sprintf("when the leader %s was killed (%s named a new leader after %d ms)", l.name, h.name, elected.Milliseconds()))
		f.lost = errorsBetween(w.r.answersSince(f.at), f.at, time.Now())
		w.startHalo(l)
	default:
		w.t.Fatalf("no fault kind %q", kind)
	}
	outcome := time.Now()
	for _, r := range repairs {
		r()
	}
	w.unfenceAll(30 * time.Second)
	w.steady(60 * time.Second)
	f.repair = time.Since(outcome)
	return f
}

// awaitMove waits (40 s at most) for the first request sent after the
// fault and answered by another node than h, and fills in the failover.
// No answer from another node may come before notBefore. Without a
// watchdog, h cannot have released the VIP (it is dead, stopped or cut
// off), so the agent must have confirmed it off before the new holder
// answered: the rule that keeps two holders from ever answering.
func (w *world) awaitMove(f *fault, h *node, notBefore time.Time) {
	w.t.Helper()
	var first *answer
	w.waitFor(40*time.Second, "the VIP to be answered by another node than "+h.name, func() bool {
		for _, a := range w.r.answersSince(f.at) {
			if a.node != "" && a.node != h.name {
				first = &a
				return true
			}
		}
		return false
	})
	if first.at.Before(notBefore) {
		w.fatal("%s answered for the VIP at %s, before the fence agent was fixed at %s: %s was taken over without being fenced",
			first.node, first.at.Format("15:04:05.000"), notBefore.Format("15:04:05.000"), h.name)
	}
	if w.opts.watchdog == nil {
		if off := w.fencedOK(h.name, f.at); off.IsZero() || off.After(first.at) {
			w.fatal("%s answered for the VIP at %s but the agent confirmed %s off only at %v (fault %s at %s)",
				first.node, first.at.Format("15:04:05.000"), h.name, off, f.kind, f.at.Format("15:04:05.000"))
		}
	}
	f.moved, f.newer = true, first.node
	f.failover = first.at.Sub(f.at)
	f.lost = errorsBetween(w.r.answersSince(f.at), f.at, first.sent)
}

// noMove checks that since t0 only h answered the client and no other
// node held the VIP.
func (w *world) noMove(h *node, t0 time.Time, when string) {
	w.t.Helper()
	for _, a := range w.r.answersSince(t0) {
		if a.node != "" && a.node != h.name {
			w.fatal("%s answered for the VIP at %s %s, though %s held it and was not at fault", a.node, a.at.Format("15:04:05.000"), when, h.name)
		}
	}
	rec := w.r.snapshot()
	i, _ := slices.BinarySearchFunc(rec.truths, t0, func(tr truth, t time.Time) int { return tr.start.Compare(t) })
	for _, tr := range rec.truths[i:] {
		for _, x := range tr.holders {
			if x != h.name {
				w.fatal("%s held the VIP at %s %s, though %s held it and was not at fault", x, tr.start.Format("15:04:05.000"), when, h.name)
			}
		}
	}
}
