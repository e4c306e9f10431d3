package nstest

import (
	"bufio"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// world is a topology with three halos, the fence agent's control
// directory and the probes: what a scenario drives.
type world struct {
	*topo
	r     *recorder
	ctrl  string // the fence agent's control directory
	agent string
	opts  clusterOpts
}

func agentPath() string {
	p, _ := filepath.Abs("testdata/fence_fabric")
	return p
}

// newWorld builds the topology, writes the configurations and starts the
// probes; the halos are started by the scenario.
func newWorld(t testing.TB, opts clusterOpts) *world {
	w := &world{topo: newTopo(t), agent: agentPath(), opts: opts}
	w.ctrl = filepath.Join(w.dir, "fence-control")
	if err := os.Mkdir(w.ctrl, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, n := range w.nodes {
		w.writeConfig(n, w.agent, w.ctrl, opts)
	}
	w.r = w.startProbes()
	return w
}

// fatal fails the test with the state of every node.
func (w *world) fatal(format string, a ...any) {
	w.t.Helper()
	w.t.Fatalf(format+"\n%s\n---- fence agent calls\n%s", append(a, w.dump(30), tail(filepath.Join(w.ctrl, "calls.log"), 15))...)
}

// waitFor polls cond every 20 ms until it holds, or fails the test after
// within with what was awaited.
func (w *world) waitFor(within time.Duration, what string, cond func() bool) {
	w.t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			w.fatal("waited %s for %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// fenceMode sets ("fail", "hang") or clears the agent's failure mode.
func (w *world) fenceMode(mode string, on bool) {
	p := filepath.Join(w.ctrl, mode)
	var err error
	if on {
		err = os.WriteFile(p, nil, 0o644)
	} else if err = os.Remove(p); os.IsNotExist(err) {
		err = nil
	}
	if err != nil {
		w.t.Fatal(err)
	}
}

// agentCall is one line of the agent's calls.log.
type agentCall struct {
	at     time.Time
	action string
	plug   string
	result string // exit=N ..., or hang
}

func (w *world) agentCalls() []agentCall {
	f, err := os.Open(filepath.Join(w.ctrl, "calls.log"))
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []agentCall
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 4 {
			continue
		}
		sec, err := strconv.ParseFloat(fs[0], 64)
		if err != nil {
			continue
		}
		at := time.Unix(0, int64(sec*1e9))
		out = append(out, agentCall{at: at, action: fs[1], plug: fs[2], result: strings.Join(fs[3:], " ")})
	}
	return out
}

// fencedOK is when the agent first confirmed node off (an off that
// exited 0) at or after t0, or the zero time.
func (w *world) fencedOK(node string, t0 time.Time) time.Time {
	for _, c := range w.agentCalls() {
		if c.plug == node && (c.action == "off" || c.action == "reboot") && c.result == "exit=0" && !c.at.Before(t0) {
			return c.at
		}
	}
	return time.Time{}
}

// fenceRuns are the fence runs (off) of node since t0 that the running
// halos record in their status, failed and succeeded.
func (w *world) fenceRuns(node string, t0 time.Time) (failed, ok int) {
	for _, n := range w.nodes {
		st, err := n.status()
		if err != nil {
			continue
		}
		for _, f := range st.Fencing {
			if f.Node == node && f.Action != "on" && !f.Start.Before(t0) {
				if f.OK {
					ok++
				} else {
					failed++
				}
			}
		}
	}
	return failed, ok
}

// members: every halo runs, has a valid lease (quorum), agrees on one
// leader and one holder of the VIP, sees no member fenced and has heard
// every other within half a lease.
func (w *world) members() (leader, holder string, ok bool) {
	for i, n := range w.nodes {
		st, err := n.status()
		if err != nil || !st.Quorum || st.Leader == "" || len(st.VIPs) != 1 {
			return "", "", false
		}
		if i == 0 {
			leader, holder = st.Leader, st.VIPs[0].Holder
		}
		if st.Leader != leader || st.VIPs[0].Holder != holder || holder == "" {
			return "", "", false
		}
		for _, m := range st.Members {
			if m.Fenced || m.Name != n.name && (m.HeardAgo < 0 || m.HeardAgo > w.opts.lease/2) {
				return "", "", false
			}
		}
	}
	return leader, holder, true
}

// steady waits until the cluster is whole (members), the ground truth has
// exactly the holder the table names, and the client's latest request was
// answered by it; it returns the holder.
func (w *world) steady(within time.Duration) *node {
	w.t.Helper()
	var holder string
	w.waitFor(within, "a steady cluster: three members with quorum, one leader, one holder answering the client", func() bool {
		_, h, ok := w.members()
		if !ok {
			return false
		}
		if hs := w.holders(); len(hs) != 1 || hs[0] != h {
			return false
		}
		as := w.r.answersSince(time.Now().Add(-4 * pollEvery))
		if len(as) == 0 || as[len(as)-1].node != h {
			return false
		}
		holder = h
		return true
	})
	return w.node(holder)
}

// unfenceAll lets every fenced node back once its kernel no longer has
// the VIP (a real fenced node was powered off; this one's halo removed
// the address when its lease ran out, or was restarted), with the
// operator's command: halo cluster unfence NODE, run on another node.
func (w *world) unfenceAll(within time.Duration) {
	w.t.Helper()
	asked := map[string]time.Time{}
	w.waitFor(within, "every fenced node to be let back (halo cluster unfence)", func() bool {
		var fenced []string
		var asker *node
		for _, n := range w.nodes {
			st, err := n.status()
			if err != nil || !st.Quorum {
				continue
			}
			asker = n
			for _, m := range st.Members {
				if m.Fenced && !slices.Contains(fenced, m.Name) {
					fenced = append(fenced, m.Name)
				}
			}
		}
		if asker != nil && len(fenced) == 0 {
			return true
		}
		for _, f := range fenced {
			fn := w.node(f)
			if s := w.state(fn); s.kernel || time.Since(asked[f]) < time.Second {
				continue
			}
			by := asker
			if by == fn || by == nil {
				continue
			}
			if out, err := w.cli(by, "unfence", f); err != nil && !strings.Contains(out, "not fenced") {
				w.t.Logf("halo cluster unfence %s on %s: %v: %s", f, by.name, err, strings.TrimSpace(out))
			}
			asked[f] = time.Now()
		}
		return false
	})
}
