package nstest

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/halo-lb/halo/cluster/fence"
)

// TestProbesSeeHoldersAndDuplicates checks the probes against VIPs added
// by hand, with no halo: each node serves HTTP on :80 and answers with its
// name. A VIP on one node is seen by the client, the ARP watcher and the
// ground truth as that node; a fenced or tc-partitioned holder is no
// holder; and when two nodes have the VIP at once, the ARP watcher, the
// ground truth and arping -D all see it and the judge fails it. A check
// that could not fail would prove nothing.
func TestProbesSeeHoldersAndDuplicates(t *testing.T) {
	w := &world{topo: newTopo(t), opts: clusterOpts{lease: 2 * time.Second}}
	for _, n := range w.nodes {
		w.serve(n, ":80")
	}
	w.r = w.startProbes()
	r := w.r
	n1, n2, n3 := w.nodes[0], w.nodes[1], w.nodes[2]
	addVIP := func(n *node) { w.ip("-n", n.ns, "addr", "add", vipPrefix, "dev", "eth0") }
	delVIP := func(n *node) { w.ip("-n", n.ns, "addr", "del", vipPrefix, "dev", "eth0") }
	announce := func(n *node) { // as halo does after adding it: gratuitous ARP
		w.ip("netns", "exec", n.ns, "arping", "-U", "-c", "1", "-I", "eth0", vip)
	}
	answeredBy := func(name string) func() bool {
		return func() bool {
			as := r.answersSince(time.Now().Add(-3 * pollEvery))
			return len(as) > 0 && as[len(as)-1].node == name
		}
	}
	probed := func(since time.Time, want ...string) func() bool {
		return func() bool {
			rec := r.snapshot()
			for _, p := range slices.Backward(rec.probes) {
				if p.at.After(since) && slices.Equal(p.nodes, want) {
					return true
				}
			}
			return false
		}
	}
	truthIs := func(want ...string) func() bool {
		return func() bool { return slices.Equal(w.holders(), want) }
	}

	// Nobody holds it: errors, silence, no holder.
	time.Sleep(300 * time.Millisecond)
	for _, a := range r.answersSince(time.Now().Add(-200 * time.Millisecond)) {
		if a.node != "" {
			t.Fatalf("answered by %s with no VIP anywhere", a.node)
		}
	}
	for _, p := range r.snapshot().probes {
		if len(p.nodes) > 0 {
			t.Fatalf("ARP answered by %v with no VIP anywhere", p.nodes)
		}
	}

	// ctl2 holds it.
	t0 := time.Now()
	addVIP(n2)
	announce(n2)
	w.waitFor(5*time.Second, "the client answered by ctl2", answeredBy(n2.name))
	w.waitFor(2*time.Second, "an ARP probe answered by ctl2 alone", probed(t0, n2.name))
	w.waitFor(time.Second, "the ground truth to name ctl2", truthIs(n2.name))

	// Fenced by the agent (port down): no longer a holder, though its
	// kernel has the VIP; ARP gets no answer.
	agent := fence.Agent{Path: agentPath(), Options: map[string]string{"plug": n2.name, "switch": w.sw}, Timeout: 5 * time.Second}
	if _, err := agent.Fence(context.Background(), "off"); err != nil {
		t.Fatal(err)
	}
	t1 := time.Now()
	w.waitFor(time.Second, "no holder once ctl2 is fenced", truthIs())
	w.waitFor(2*time.Second, "an unanswered ARP probe", probed(t1))
	if _, err := agent.Unfence(context.Background()); err != nil {
		t.Fatal(err)
	}
	w.waitFor(time.Second, "ctl2 a holder again", truthIs(n2.name))

	// An ingress qdisc without its filter drops nothing (silentCut adds
	// the qdisc first): still the holder, still answering.
	w.tc(n2.ns, "qdisc", "add", "dev", "eth0", "ingress")
	if !slices.Equal(w.holders(), []string{n2.name}) {
		t.Fatalf("an ingress qdisc with no filter made ctl2 no holder: %+v", w.state(n2))
	}
	w.waitFor(2*time.Second, "the client answered by ctl2 through an empty ingress qdisc", answeredBy(n2.name))
	w.tc(n2.ns, "qdisc", "del", "dev", "eth0", "ingress")

	// Partitioned by tc, its link up: no holder either.
	heal := w.partition(n2, "part-tc")
	t2 := time.Now()
	w.waitFor(time.Second, "no holder while ctl2 is partitioned by tc", truthIs())
	w.waitFor(2*time.Second, "an unanswered ARP probe", probed(t2))
	heal()
	w.waitFor(time.Second, "ctl2 a holder again", truthIs(n2.name))

	// A clean handover to ctl3: removed first, then added and announced.
	delVIP(n2)
	t3 := time.Now()
	addVIP(n3)
	announce(n3)
	w.waitFor(5*time.Second, "the client answered by ctl3", answeredBy(n3.name))
	w.waitFor(2*time.Second, "an ARP probe answered by ctl3 alone", probed(t3, n3.name))
	if v := judge(r.snapshot()); !v.clean() {
		t.Fatalf("one holder at a time, judged unclean: %+v", v)
	}

	// Two holders: ctl1 gets it too.
	t4 := time.Now()
	addVIP(n1)
	w.waitFor(2*time.Second, "an ARP probe answered by ctl1 and ctl3", probed(t4, n1.name, n3.name))
	w.waitFor(time.Second, "the ground truth to name ctl1 and ctl3", truthIs(n1.name, n3.name))
	w.waitFor(5*time.Second, "arping -D to find the duplicate", func() bool { return len(r.snapshot().dups) > 0 })
	delVIP(n1)
	r.close()
	v := judge(r.snapshot())
	if len(v.dualARP) == 0 || len(v.dualHolder) == 0 || len(v.arpingDup) == 0 {
		t.Fatalf("a dual holder went unjudged: %d dual ARP probes, %d dual samples, %d arping duplicates", len(v.dualARP), len(v.dualHolder), len(v.arpingDup))
	}
	for _, x := range append(append(v.dualARP, v.dualHolder...), v.arpingDup...) {
		if x.at.Before(t4) {
			t.Errorf("a violation before the dual holder was made: %s %s", x.at.Format("15:04:05.000"), x.what)
		}
	}
	t.Logf("the dual holder was seen by %d ARP probes, %d ground-truth samples and %d arping -D runs; first: %s",
		len(v.dualARP), len(v.dualHolder), len(v.arpingDup), v.dualARP[0].what)
}
