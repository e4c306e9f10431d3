package nstest

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mdlayher/arp"
	"github.com/vishvananda/netlink"
)

// This file watches the VIP from outside halo: the client's HTTP requests,
// an ARP watcher that collects every MAC answering one request, iputils
// arping as a cross-check, and the ground truth sampled from the kernels.
// What they see goes to a recorder; invariants_test.go judges it.

// answer is one client request: who answered, or the error.
type answer struct {
	sent, at time.Time
	node     string // "" on error
	err      string
}

// arpProbe is one ARP request from the client with every node (or MAC)
// that answered it within the window.
type arpProbe struct {
	at    time.Time
	nodes []string
}

// truth is one sample of the ground truth, taken between start and end:
// the nodes whose kernel has the VIP (kernels) and, of them, those whose
// link reaches the bridge (holders: they answer clients), and those whose
// kernel could not be read (unknown: judged as maybe holding).
type truth struct {
	start, end time.Time
	kernels    []string
	holders    []string
	unknown    []string
}

// arpingDup is a duplicate iputils arping found.
type arpingDup struct {
	at   time.Time
	what string
}

// recording is everything the probes saw, in time order per kind.
type recording struct {
	answers []answer
	probes  []arpProbe
	truths  []truth
	dups    []arpingDup
	arpings int // arping runs
}

type recorder struct {
	mu   sync.Mutex
	rec  recording
	stop chan struct{}
	wg   sync.WaitGroup
}

// The probes' periods and bounds.
const (
	pollEvery   = 25 * time.Millisecond
	pollTimeout = 300 * time.Millisecond
	arpEvery    = 50 * time.Millisecond
	arpWindow   = 40 * time.Millisecond
	truthEvery  = 20 * time.Millisecond
)

// startProbes starts every probe; stop them with close.
func (w *topo) startProbes() *recorder {
	w.t.Helper()
	r := &recorder{stop: make(chan struct{})}
	w.t.Cleanup(r.close)
	w.poll(r)
	if err := w.watchARP(r); err != nil {
		w.t.Fatalf("ARP watcher: %v", err)
	}
	w.sample(r)
	w.arping(r)
	return r
}

// close stops the probes and waits for them; it may be called twice.
func (r *recorder) close() {
	select {
	case <-r.stop:
	default:
		close(r.stop)
	}
	r.wg.Wait()
}

func (r *recorder) stopped() bool {
	select {
	case <-r.stop:
		return true
	default:
		return false
	}
}

// snapshot is a copy of what was recorded so far.
func (r *recorder) snapshot() recording {
	r.mu.Lock()
	defer r.mu.Unlock()
	return recording{
		answers: slices.Clone(r.rec.answers), probes: slices.Clone(r.rec.probes),
		truths: slices.Clone(r.rec.truths), dups: slices.Clone(r.rec.dups), arpings: r.rec.arpings,
	}
}

// answersSince are the answers to requests sent at or after t0.
func (r *recorder) answersSince(t0 time.Time) []answer {
	r.mu.Lock()
	defer r.mu.Unlock()
	i, _ := slices.BinarySearchFunc(r.rec.answers, t0, func(a answer, t time.Time) int { return a.sent.Compare(t) })
	return slices.Clone(r.rec.answers[i:])
}

func (r *recorder) every(d time.Duration, f func()) {
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		t := time.NewTicker(d)
		defer t.Stop()
		for {
			select {
			case <-r.stop:
				return
			case <-t.C:
				f()
			}
		}
	}()
}

// poll sends GET / to the VIP from the client every pollEvery, each on a
// new connection (so a moved VIP and a changed ARP entry are seen at
// once), each bounded by pollTimeout.
func (w *topo) poll(r *recorder) {
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		// The whole loop runs on a thread in the client's namespace: a
		// dial from there opens its socket there.
		_ = inNS(w.client, func() error {
			d := net.Dialer{Timeout: pollTimeout}
			for !r.stopped() {
				sent := time.Now()
				node, err := get(d)
				a := answer{sent: sent, at: time.Now(), node: node}
				if err != nil {
					a.err = err.Error()
				}
				r.mu.Lock()
				r.rec.answers = append(r.rec.answers, a)
				r.mu.Unlock()
				time.Sleep(time.Until(sent.Add(pollEvery)))
			}
			return nil
		})
	}()
}

// get asks the VIP once and returns the body (the backend's node name).
func get(d net.Dialer) (string, error) {
	c, err := d.Dial("tcp", vip+":80")
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(pollTimeout))
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: vip\r\nConnection: close\r\n\r\n"); err != nil {
		return "", err
	}
	b, err := io.ReadAll(bufio.NewReader(io.LimitReader(c, 4096)))
	s := string(b)
	if !strings.HasPrefix(s, "HTTP/1.1 200") {
		if err == nil {
			err = errShort(s)
		}
		return "", err
	}
	_, body, _ := strings.Cut(s, "\r\n\r\n")
	return strings.TrimSpace(body), nil
}

type errShort string

func (e errShort) Error() string {
	line, _, _ := strings.Cut(string(e), "\r\n")
	return "not a 200: " + line
}

// watchARP asks who has the VIP every arpEvery from the client's eth0 and
// records every MAC answering within arpWindow: two is a dual holder.
func (w *topo) watchARP(r *recorder) error {
	var c *arp.Client
	err := inNS(w.client, func() error {
		ifi, err := net.InterfaceByName("eth0")
		if err != nil {
			return err
		}
		c, err = arp.Dial(ifi)
		return err
	})
	if err != nil {
		return err
	}
	target := netip.MustParseAddr(vip)
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		defer c.Close()
		for !r.stopped() {
			start := time.Now()
			if err := c.Request(target); err == nil {
				seen := map[string]bool{}
				_ = c.SetReadDeadline(start.Add(arpWindow))
				for {
					p, _, err := c.Read()
					if err != nil {
						break // the deadline
					}
					if p.Operation == arp.OperationReply && p.SenderIP == target {
						seen[w.nodeOfMAC(p.SenderHardwareAddr.String())] = true
					}
				}
				pr := arpProbe{at: start}
				for n := range seen {
					pr.nodes = append(pr.nodes, n)
				}
				slices.Sort(pr.nodes)
				r.mu.Lock()
				r.rec.probes = append(r.rec.probes, pr)
				r.mu.Unlock()
			}
			time.Sleep(time.Until(start.Add(arpEvery)))
		}
	}()
	return nil
}

// sample records the ground truth every truthEvery.
func (w *topo) sample(r *recorder) {
	r.every(truthEvery, func() {
		tr := truth{start: time.Now()}
		for _, n := range w.nodes {
			s := w.state(n)
			if s.unknown {
				tr.unknown = append(tr.unknown, n.name)
			}
			if s.kernel {
				tr.kernels = append(tr.kernels, n.name)
				if s.reach {
					tr.holders = append(tr.holders, n.name)
				}
			}
		}
		tr.end = time.Now()
		r.mu.Lock()
		r.rec.truths = append(r.rec.truths, tr)
		r.mu.Unlock()
	})
}

// nodeState is the ground truth for one node.
type nodeState struct {
	kernel  bool   // some interface of the node has the VIP
	reach   bool   // its eth0 gets frames to and from the bridge
	unknown bool   // the kernel could not be read (netlink failed 10 times)
	why     string // why not
}

// state reads n's ground truth from the kernels: the VIP on any of its
// interfaces; its eth0 up; its bridge port up and attached (a fabric fence
// sets it down); no frames dropped by tc at either end (silentCut). A
// netlink dump that a concurrent change interrupted (as adding the VIP
// does) is read again: its partial answer may lack the very address.
func (w *topo) state(n *node) nodeState {
	var err error
	for range 10 {
		var s nodeState
		if s, err = w.readState(n); err == nil {
			return s
		}
	}
	return nodeState{unknown: true, why: "netlink: " + err.Error()}
}

func (w *topo) readState(n *node) (nodeState, error) {
	var s nodeState
	addrs, err := n.h.AddrList(nil, netlink.FAMILY_V4)
	if err != nil {
		return s, err
	}
	for _, a := range addrs {
		s.kernel = s.kernel || a.IP.String() == vip
	}
	eth0, err := n.h.LinkByName("eth0")
	if err != nil {
		return s, err
	}
	lossyEth0, err := lossy(n.h, eth0)
	if err != nil {
		return s, err
	}
	port, err := w.swh.LinkByName(n.port)
	if err != nil {
		return s, err
	}
	lossyPort, err := lossy(w.swh, port)
	if err != nil {
		return s, err
	}
	switch {
	case eth0.Attrs().Flags&net.FlagUp == 0:
		s.why = "eth0 down"
	case lossyEth0:
		s.why = "frames dropped by tc on eth0"
	case port.Attrs().Flags&net.FlagUp == 0:
		s.why = "bridge port down (fenced)"
	case port.Attrs().MasterIndex == 0:
		s.why = "detached from the bridge"
	case lossyPort:
		s.why = "frames dropped by tc on the bridge port"
	default:
		s.reach = true
	}
	return s, nil
}

// lossy: l drops frames by tc, as silentCut makes it: a netem qdisc with
// loss, or a filter on its ingress qdisc (the test adds one only to drop
// everything). The filter, not the qdisc: silentCut adds the qdisc first,
// and until the filter follows, frames still pass.
func lossy(h *netlink.Handle, l netlink.Link) (bool, error) {
	qs, err := h.QdiscList(l)
	if err != nil {
		return false, err
	}
	for _, q := range qs {
		switch q := q.(type) {
		case *netlink.Netem:
			if q.Loss > 0 {
				return true, nil
			}
		case *netlink.Ingress:
			fs, err := h.FilterList(l, netlink.HANDLE_MIN_INGRESS)
			if err != nil {
				return false, err
			}
			if len(fs) > 0 {
				return true, nil
			}
		}
	}
	return false, nil
}

// holders are the nodes that hold the VIP now, by the ground truth.
func (w *topo) holders() []string {
	var out []string
	for _, n := range w.nodes {
		if s := w.state(n); s.kernel && s.reach {
			out = append(out, n.name)
		}
	}
	return out
}

var arpingReply = regexp.MustCompile(`reply from \S+ \[([0-9A-Fa-f:]{17})\]`)

// arping cross-checks the ARP watcher with iputils arping, back to back:
// every node that holds the VIP runs duplicate address detection for it
// (arping -D -c 1 -w 1, one probe from 0.0.0.0, a second for replies),
// and a reply while it still holds the VIP is another node answering for
// the same address. (arping without -D cannot be the check: it stops at
// the first reply, so it never sees a second MAC.)
func (w *topo) arping(r *recorder) {
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		for !r.stopped() {
			hs := w.holders()
			if len(hs) == 0 {
				time.Sleep(100 * time.Millisecond)
				continue
			}
			var wg sync.WaitGroup
			for _, name := range hs {
				n := w.node(name)
				wg.Add(1)
				go func() {
					defer wg.Done()
					out, err := exec.Command("ip", "netns", "exec", n.ns, "arping", "-D", "-c", "1", "-w", "1", "-I", "eth0", vip).CombinedOutput()
					var macs []string
					for _, m := range arpingReply.FindAllStringSubmatch(string(out), -1) {
						macs = append(macs, w.nodeOfMAC(strings.ToLower(m[1])))
					}
					ee, ok := err.(*exec.ExitError)
					dup := ok && ee.ExitCode() == 1 && len(macs) > 0
					if s := w.state(n); dup && !(s.kernel && s.reach) {
						dup = false // it gave the VIP up meanwhile: a handover, not two holders
					}
					r.mu.Lock()
					r.rec.arpings++
					if dup {
						r.rec.dups = append(r.rec.dups, arpingDup{at: time.Now(), what: fmt.Sprintf("arping -D on %s answered by %v: %s", n.name, macs, oneLine(out))})
					}
					r.mu.Unlock()
				}()
			}
			wg.Wait()
		}
	}()
}

func oneLine(b []byte) string { return strings.Join(strings.Fields(string(b)), " ") }
