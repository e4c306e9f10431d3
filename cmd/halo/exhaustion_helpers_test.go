package main

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// What the exhaustion tests share: halo under a descriptor limit, its CPU
// time and descriptors read from /proc, and raw HTTP/1.1 exchanges on
// connections the test holds.

// startHaloLimited runs "halo ARGS" with RLIMIT_NOFILE set to nofile, soft
// and hard, through prlimit(1), which execs halo: the process the test
// watches is halo's. halo raises its soft limit to the hard one at start,
// so both must be set for the limit to hold.
func startHaloLimited(t *testing.T, nofile int, args ...string) *haloProc {
	t.Helper()
	prlimit := needTool(t, "prlimit")
	lim := fmt.Sprintf("--nofile=%d:%d", nofile, nofile)
	return startHaloCmd(t, exec.Command(prlimit, append([]string{lim, "--", haloBin}, args...)...))
}

// userHZ is the unit of the CPU times in /proc/PID/stat: Linux reports
// them in USER_HZ, 100 on every architecture, whatever the kernel's HZ.
const userHZ = 100

// procCPU returns the CPU time (user and system) a process has used.
func procCPU(t *testing.T, pid int) time.Duration {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// The command name, in parentheses, may hold spaces: fields count
	// from after its closing one (state is field 3, utime 14, stime 15).
	s := string(data)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		t.Fatalf("/proc/%d/stat: %q", pid, s)
	}
	return time.Duration(utime+stime) * time.Second / userHZ
}

// fdsBelow is the number of descriptors a process has open whose number
// is under limit: accept and socket fail with EMFILE once all are taken.
// (A descriptor inherited with a higher number, as a test runner's may be,
// does not count against RLIMIT_NOFILE's use.)
func fdsBelow(t *testing.T, pid, limit int) int {
	t.Helper()
	entries, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		if fd, err := strconv.Atoi(e.Name()); err == nil && fd < limit {
			n++
		}
	}
	return n
}

// vmRSS is a process's resident set size in bytes (VmRSS), or an error
// when it cannot be read.
func vmRSS(pid int) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}

// dialAll opens n connections to addr; each is closed when the test ends.
func dialAll(t *testing.T, addr string, n int) []net.Conn {
	t.Helper()
	conns := make([]net.Conn, 0, n)
	for range n {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatalf("connection %d of %d refused: %v", len(conns)+1, n, err)
		}
		conns = append(conns, c)
	}
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	return conns
}

// exchange sends a GET for path on c and reads the response, within wait.
// It returns the status code and the body.
func exchange(c net.Conn, path string, wait time.Duration) (int, string, error) {
	c.SetDeadline(time.Now().Add(wait))
	defer c.SetDeadline(time.Time{})
	if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: halo.test\r\n\r\n", path); err != nil {
		return 0, "", err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	var b strings.Builder
	_, err = bufio.NewReader(resp.Body).WriteTo(&b)
	return resp.StatusCode, b.String(), err
}

// concurrency tracks how many requests a set of backends handles at once,
// and the most it saw.
type concurrency struct{ cur, max atomic.Int64 }

func (c *concurrency) enter() {
	n := c.cur.Add(1)
	for m := c.max.Load(); n > m && !c.max.CompareAndSwap(m, n); m = c.max.Load() {
	}
}

func (c *concurrency) leave() { c.cur.Add(-1) }

// startHoldingBackend serves each request by holding it for hold (or the
// duration its query's hold= says), then answering name; each request
// counts in every tracker of track while it is held.
func startHoldingBackend(t *testing.T, name string, hold time.Duration, track ...*concurrency) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, c := range track {
			c.enter()
		}
		d := hold
		if q, err := time.ParseDuration(r.URL.Query().Get("hold")); err == nil {
			d = q
		}
		time.Sleep(d)
		for _, c := range track {
			c.leave()
		}
		io.WriteString(w, name)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// latencyProbe is one client sending GET requests on a kept-alive
// connection, one every couple of milliseconds, recording each one's
// latency, until stopped (and for ten minutes at most).
type latencyProbe struct {
	done    chan struct{}
	result  chan []latencySample
	errOnce error
}

type latencySample struct {
	at      time.Time
	latency time.Duration
}

func startLatencyProbe(url string) *latencyProbe {
	p := &latencyProbe{done: make(chan struct{}), result: make(chan []latencySample, 1)}
	go func() {
		client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
		defer client.CloseIdleConnections()
		var samples []latencySample
		for end := time.Now().Add(10 * time.Minute); time.Now().Before(end); {
			select {
			case <-p.done:
				p.result <- samples
				return
			default:
			}
			began := time.Now()
			resp, err := client.Get(url)
			if err == nil {
				_, err = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if err == nil && resp.StatusCode != 200 {
					err = fmt.Errorf("status %d", resp.StatusCode)
				}
			}
			if err != nil && p.errOnce == nil {
				p.errOnce = err
			}
			samples = append(samples, latencySample{began, time.Since(began)})
			time.Sleep(2 * time.Millisecond)
		}
		<-p.done
		p.result <- samples
	}()
	return p
}

// stop ends the probe and returns its samples and its first failure.
func (p *latencyProbe) stop() ([]latencySample, error) {
	close(p.done)
	s := <-p.result
	return s, p.errOnce
}

// window is a span of a test's time, with or without the load under test.
type window struct {
	start, end time.Time
	loaded     bool
}

// latencies are those of the samples taken within the window.
func (w window) latencies(samples []latencySample) []time.Duration {
	var lat []time.Duration
	for _, s := range samples {
		if !s.at.Before(w.start) && s.at.Before(w.end) {
			lat = append(lat, s.latency)
		}
	}
	return lat
}

// percentile is the q-quantile (0 < q ≤ 1) of d, by the nearest rank.
func percentile(d []time.Duration, q float64) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return s[max(i, 0)]
}

// median is the median of d (the mean of the middle two for an even count).
func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	if n := len(s); n%2 == 0 {
		return (s[n/2-1] + s[n/2]) / 2
	}
	return s[len(s)/2]
}
