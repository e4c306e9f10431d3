package nstest

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/netip"
	"os/exec"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mdlayher/arp"
	"github.com/vishvananda/netlink"
)

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

// answer is one client request to the VIP: who answered, or "" for an
// error.
type answer struct {
	at   time.Time // when the answer (or the error) came
	sent time.Time
	node string
}

// arpProbe is one ARP request for the VIP from the client, with every MAC
// that replied within the window.
type arpProbe struct {
	at   time.Time
	macs []string
}

// truth is one sample of who really holds the VIP: whose kernel has it
// while its port on the bridge is up and attached.
type truth struct {
	at      time.Time
	holders []string
}

type recorder struct {
	mu      sync.Mutex
	answers []answer
	probes  []arpProbe
	truths  []truth
	arping  []string // arping cross-checks that saw two MACs within 40 ms, or arping -D finding a duplicate
	// handovers: arping runs answered by two MACs more than 40 ms apart.
	handovers []string
	stop      chan struct{}
	wg        sync.WaitGroup
}

func newRecorder() *recorder { return &recorder{stop: make(chan struct{})} }

func (r *recorder) close() {
	close(r.stop)
	r.wg.Wait()
}

// poll sends GET / to the VIP every 25 ms from the client namespace, each on
// a new connection (so a moved VIP is seen at once), with a 300 ms bound.
func (w *world) poll(r *recorder) {
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		_ = inNS(w.client, func() error {
			d := net.Dialer{Timeout: 300 * time.Millisecond}
			for {
				select {
				case <-r.stop:
					return nil
				default:
				}
				sent := time.Now()
				got := get(d)
				r.mu.Lock()
				r.answers = append(r.answers, answer{at: time.Now(), sent: sent, node: got})
				r.mu.Unlock()
				time.Sleep(25 * time.Millisecond)
			}
		})
	}()
}

func get(d net.Dialer) string {
	c, err := d.Dial("tcp", vip+":80")
	if err != nil {
		return ""
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(300 * time.Millisecond))
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: vip\r\nConnection: close\r\n\r\n"); err != nil {
		return ""
	}
	b, err := io.ReadAll(bufio.NewReader(c))
	if err != nil && len(b) == 0 {
		return ""
	}
	s := string(b)
	if !strings.HasPrefix(s, "HTTP/1.1 200") {
		return ""
	}
	body := strings.TrimSpace(s[strings.LastIndex(s, "\r\n\r\n")+4:])
	return body
}

// watchARP asks "who has the VIP" every 50 ms from the client and records
// every distinct MAC answering within 40 ms.
func (w *world) watchARP(r *recorder) error {
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
		for {
			select {
			case <-r.stop:
				return
			default:
			}
			start := time.Now()
			if err := c.Request(target); err != nil {
				time.Sleep(50 * time.Millisecond)
				continue
			}
			seen := map[string]bool{}
			_ = c.SetReadDeadline(start.Add(40 * time.Millisecond))
			for {
				p, _, err := c.Read()
				if err != nil {
					break
				}
				if p.Operation == arp.OperationReply && p.SenderIP == target {
					seen[p.SenderHardwareAddr.String()] = true
				}
			}
			var macs []string
			for m := range seen {
				macs = append(macs, m)
			}
			r.mu.Lock()
			r.probes = append(r.probes, arpProbe{at: start, macs: macs})
			r.mu.Unlock()
			time.Sleep(time.Until(start.Add(50 * time.Millisecond)))
		}
	}()
	return nil
}

// sample records the ground truth every 20 ms, from the kernels.
func (w *world) sample(r *recorder) {
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		for {
			select {
			case <-r.stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			tr := truth{at: time.Now(), holders: w.holders()}
			r.mu.Lock()
			r.truths = append(r.truths, tr)
			r.mu.Unlock()
		}
	}()
}

// holders are the nodes whose kernel has the VIP and whose link reaches
// the bridge: those that answer clients for it.
func (w *world) holders() []string {
	var out []string
	for _, n := range w.nodes {
		if w.hasVIP(n) && w.linked(n) {
			out = append(out, n.name)
		}
	}
	return out
}

func (w *world) hasVIP(n *node) bool {
	l, err := n.h.LinkByName("eth0")
	if err != nil {
		return false
	}
	addrs, err := n.h.AddrList(l, netlink.FAMILY_V4)
	if err != nil {
		return false
	}
	for _, a := range addrs {
		if a.IP.String() == vip {
			return true
		}
	}
	return false
}

// linked: the node's eth0 is up and its bridge port is up and attached.
func (w *world) linked(n *node) bool {
	l, err := n.h.LinkByName("eth0")
	if err != nil || l.Attrs().Flags&net.FlagUp == 0 {
		return false
	}
	p, err := w.swh.LinkByName("p-" + n.name)
	return err == nil && p.Attrs().Flags&net.FlagUp != 0 && p.Attrs().MasterIndex != 0
}

var arpingReply = regexp.MustCompile(`reply from \S+ \[([0-9A-Fa-f:]+)\]\s+([0-9.]+)ms`)

// crossCheck runs iputils arping every 2 s: from the client, two MACs
// replying to one probe within 40 ms of each other (the ARP watcher's
// window) is a dual holder; replies further apart are a handover inside
// arping's one-second wait, and are only counted. On the holder, arping -D
// finding any reply is another host claiming the address.
func (w *world) crossCheck(r *recorder) {
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		for {
			select {
			case <-r.stop:
				return
			case <-time.After(2 * time.Second):
			}
			out, _ := exec.Command("ip", "netns", "exec", w.client, "arping", "-c", "2", "-w", "1", "-I", "eth0", vip).CombinedOutput()
			first := map[string]float64{}
			for _, m := range arpingReply.FindAllStringSubmatch(string(out), -1) {
				mac := strings.ToLower(m[1])
				if _, seen := first[mac]; !seen {
					first[mac], _ = strconv.ParseFloat(m[2], 64)
				}
			}
			if len(first) > 1 {
				var at []float64
				for _, ms := range first {
					at = append(at, ms)
				}
				sort.Float64s(at)
				r.mu.Lock()
				what := time.Now().Format(time.RFC3339Nano) + " arping from the client: " + strings.TrimSpace(string(out))
				if at[1]-at[0] <= 40 {
					r.arping = append(r.arping, what)
				} else {
					r.handovers = append(r.handovers, what)
				}
				r.mu.Unlock()
			}
			if hs := w.holders(); len(hs) == 1 {
				n := w.node(hs[0])
				cmd := exec.Command("ip", "netns", "exec", n.ns, "arping", "-D", "-c", "2", "-w", "1", "-I", "eth0", vip)
				out, err := cmd.CombinedOutput()
				if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() == 1 && w.hasVIP(n) && len(arpingReply.FindAllString(string(out), -1)) > 0 {
					r.mu.Lock()
					r.arping = append(r.arping, time.Now().Format(time.RFC3339Nano)+" arping -D on "+n.name+": "+strings.TrimSpace(string(out)))
					r.mu.Unlock()
				}
			}
		}
	}()
}

func (w *world) node(name string) *node {
	for _, n := range w.nodes {
		if n.name == name {
			return n
		}
	}
	return nil
}
