package nstest

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// This file judges a recording against the invariants of the issue, with
// no I/O, so that a test can feed it made-up recordings and see it catch
// what it must catch:
//
//   - no ARP request answered by two MACs (the ARP watcher);
//   - no ground-truth sample with two holders (a kernel with the VIP on a
//     link that reaches the bridge);
//   - no client request answered by a node that did not hold the VIP at
//     that moment;
//   - no duplicate found by iputils arping.
//
// "At that moment": every time is read from the test process's one
// monotonic clock (there is no skew between hosts to allow for), but the
// ground truth is a sample every truthEvery. A request answered by N is
// judged against the samples from the last one that started before it was
// sent to the first one that ended after its answer arrived (so the window
// is the request's own span widened by about one sampling period, 20 ms,
// each side): N must be a holder in at least one of them.

type violation struct {
	at   time.Time
	what string
}

type verdict struct {
	dualARP    []violation // an ARP request answered by two MACs
	dualHolder []violation // a sample with two holders
	nonHolder  []violation // an answer from a node that did not hold the VIP
	arpingDup  []violation // iputils arping saw a duplicate
}

func (v verdict) clean() bool {
	return len(v.dualARP)+len(v.dualHolder)+len(v.nonHolder)+len(v.arpingDup) == 0
}

// judge checks every invariant over the whole recording.
func judge(rec recording) verdict {
	var v verdict
	for _, p := range rec.probes {
		if len(p.nodes) > 1 {
			v.dualARP = append(v.dualARP, violation{p.at, fmt.Sprintf("one ARP request answered by %v", p.nodes)})
		}
	}
	for _, tr := range rec.truths {
		if len(tr.holders) > 1 {
			v.dualHolder = append(v.dualHolder, violation{tr.start, fmt.Sprintf("%v all have the VIP on a live link", tr.holders)})
		}
	}
	for _, a := range rec.answers {
		if a.node == "" {
			continue
		}
		window, ok := truthWindow(rec.truths, a)
		if !ok {
			continue // before the first sample or after the last
		}
		held := false
		for _, tr := range window {
			held = held || slices.Contains(tr.holders, a.node) || slices.Contains(tr.unknown, a.node)
		}
		if !held {
			var seen []string
			for _, tr := range window {
				seen = append(seen, fmt.Sprintf("%s holders %v kernels %v", tr.start.Format("15:04:05.000"), tr.holders, tr.kernels))
			}
			v.nonHolder = append(v.nonHolder, violation{a.at, fmt.Sprintf("answered by %s (sent %s), which held the VIP in none of the samples %s",
				a.node, a.sent.Format("15:04:05.000"), strings.Join(seen, ", "))})
		}
	}
	for _, d := range rec.dups {
		v.arpingDup = append(v.arpingDup, violation(d))
	}
	return v
}

// truthWindow are the samples that bracket answer a: from the last one
// ended at or before a.sent to the first one started at or after a.at. A
// sample reads the nodes one after another between its start and its end,
// so one that started before the request may have read the answering
// node after it: only samples wholly before and wholly after the exchange
// bracket it (within a sample period, ~20 ms, as the report says).
func truthWindow(truths []truth, a answer) ([]truth, bool) {
	if len(truths) == 0 || truths[0].end.After(a.sent) || truths[len(truths)-1].start.Before(a.at) {
		return nil, false
	}
	// first: the last sample ended at or before a.sent.
	first, _ := slices.BinarySearchFunc(truths, a.sent, func(tr truth, t time.Time) int {
		if tr.end.After(t) {
			return 1
		}
		return -1
	})
	first = max(first-1, 0)
	last := first
	for last < len(truths)-1 && truths[last].start.Before(a.at) {
		last++
	}
	return truths[first : last+1], true
}

// fault is one injected fault and what it led to.
type fault struct {
	kind     string
	holder   string    // who held the VIP before
	at       time.Time // injected
	moved    bool      // the VIP was meant to move, and did
	newer    string    // who answered after
	failover time.Duration
	lost     int           // client requests that failed from the fault to the first answer after it (or to the repair, if it did not move)
	repair   time.Duration // from the outcome to a whole cluster again
	note     string
}

// counts are the violations of one verdict that fall in each fault's
// span (from its injection to the next one's), keyed by the fault's
// index; before the first fault is index -1.
type counts struct{ dualARP, dualHolder, nonHolder, arpingDup int }

func attribute(v verdict, faults []fault) map[int]*counts {
	out := map[int]*counts{}
	at := func(t time.Time) *counts {
		i := -1
		for j := range faults {
			if !faults[j].at.After(t) {
				i = j
			}
		}
		if out[i] == nil {
			out[i] = &counts{}
		}
		return out[i]
	}
	for _, x := range v.dualARP {
		at(x.at).dualARP++
	}
	for _, x := range v.dualHolder {
		at(x.at).dualHolder++
	}
	for _, x := range v.nonHolder {
		at(x.at).nonHolder++
	}
	for _, x := range v.arpingDup {
		at(x.at).arpingDup++
	}
	return out
}

// errorsBetween counts the failed requests sent in [from, to).
func errorsBetween(answers []answer, from, to time.Time) int {
	n := 0
	for _, a := range answers {
		if a.node == "" && !a.sent.Before(from) && a.sent.Before(to) {
			n++
		}
	}
	return n
}
