package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/halo-lb/halo/internal/testnet"
)

// The slowloris flood of slowloris_test.go: slow clients run by this test
// binary started again as a process of its own (see init).

// floodEnv, set in the environment of this test binary, makes it a flood
// process and nothing else: it holds the flood's settings (flood.spec).
const floodEnv = "HALO_TEST_SLOWLORIS_FLOOD"

func init() {
	if spec := os.Getenv(floodEnv); spec != "" {
		os.Exit(floodMain(spec, os.Stdout))
	}
}

// flood is one wave of slow clients.
type flood struct {
	addr    string        // where they connect; empty: the decoy
	decoy   bool          // at a listener of the flood process
	clients int           // how many
	timeout time.Duration // the decoy cuts its clients after this long
}

// How a wave's slow clients behave: each connects in the first second
// (so that all 5,000 are open at once), then sends a byte every 700 ms:
// at 0, 0.7, 1.4 and 2.1 s, so that it is reading, not writing, when it
// is cut at 2 s. One halo has not cut 10 s after its timeout gives up.
const (
	floodRamp    = time.Second
	floodTrickle = 700 * time.Millisecond
)

func (f flood) giveUp() time.Duration { return f.timeout + 10*time.Second }

// run runs the wave in a flood process and returns how each client ended
// and the CPU time the process used.
func (f flood) run(t *testing.T) ([]slowCut, time.Duration) {
	t.Helper()
	addr := f.addr
	if f.decoy {
		addr = "decoy"
	}
	cmd := exec.Command(needTool(t, "nice"), "-n", "19", os.Args[0])
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s %d %d", floodEnv, addr, f.clients, f.timeout))
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("the flood process: %v", err)
	}
	cpu := cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	cuts, err := parseCuts(out)
	if err != nil {
		t.Fatalf("the flood process's report: %v", err)
	}
	if len(cuts) != f.clients {
		t.Fatalf("the flood process reported %d clients, want %d", len(cuts), f.clients)
	}
	return cuts, cpu
}

// floodMain is the flood process: it runs the wave spec describes ("ADDR
// CLIENTS TIMEOUT", ADDR "decoy" for a listener of its own, TIMEOUT in
// nanoseconds) and writes how each client ended, one line each: the
// nanoseconds until it was cut and the status line it got, or "error" and
// why it was not cut. It runs at the lowest priority, so that its own work
// takes as little CPU from halo as the machine allows.
func floodMain(spec string, out io.Writer) int {
	var addr string
	var n int
	var timeout time.Duration
	if _, err := fmt.Sscan(spec, &addr, &n, &timeout); err != nil {
		fmt.Fprintln(os.Stderr, "bad", floodEnv, err)
		return 2
	}
	f := flood{addr: addr, clients: n, timeout: timeout}
	if addr == "decoy" {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer ln.Close()
		go serveDecoy(ln, timeout)
		f.addr = ln.Addr().String()
	}
	cuts := make([]slowCut, n)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range n {
		// Paced by the clock: sleeps shorter than a millisecond last
		// longer than asked.
		if ahead := time.Until(start.Add(floodRamp * time.Duration(i) / time.Duration(n))); ahead > 0 {
			time.Sleep(ahead)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			cuts[i] = slowClient(f.addr, floodTrickle, f.giveUp())
		}()
	}
	wg.Wait()
	w := bufio.NewWriter(out)
	for _, c := range cuts {
		if c.err != nil {
			fmt.Fprintf(w, "error %q\n", c.err.Error())
		} else {
			fmt.Fprintf(w, "%d %q\n", c.after, c.status)
		}
	}
	if err := w.Flush(); err != nil {
		return 1
	}
	return 0
}

// serveDecoy reads what each client sends until timeout after it
// connected, then answers 408 and closes, as halo does.
func serveDecoy(ln net.Listener, timeout time.Duration) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			c.SetReadDeadline(time.Now().Add(timeout))
			buf := make([]byte, 256)
			for {
				if _, err := c.Read(buf); err != nil {
					break
				}
			}
			io.WriteString(c, "HTTP/1.1 408 Request Time-out\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
		}()
	}
}

// parseCuts reads a flood process's report (see floodMain).
func parseCuts(out []byte) ([]slowCut, error) {
	var cuts []slowCut
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		first, rest, _ := strings.Cut(line, " ")
		msg, err := strconv.Unquote(rest)
		if err != nil {
			return nil, fmt.Errorf("line %q: %w", line, err)
		}
		if first == "error" {
			cuts = append(cuts, slowCut{err: errors.New(msg)})
			continue
		}
		ns, err := strconv.ParseInt(first, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("line %q: %w", line, err)
		}
		cuts = append(cuts, slowCut{after: time.Duration(ns), status: msg})
	}
	return cuts, nil
}

// measuredNice is the priority of halo and of the measuring client in the
// slowloris test: above the rest of a shared machine (root only; as
// another user they run at the usual 0).
const measuredNice = -10

// raisePriority gives this process's threads, and so those they start,
// measuredNice until the test ends, and then the priority they had. Without root it only logs that it
// cannot.
func raisePriority(t *testing.T) {
	t.Helper()
	renice := func(n int) error {
		entries, err := os.ReadDir("/proc/self/task")
		if err != nil {
			return err
		}
		for _, e := range entries {
			tid, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			if err := syscall.Setpriority(syscall.PRIO_PROCESS, tid, n); err != nil && !errors.Is(err, syscall.ESRCH) {
				return err
			}
		}
		return nil
	}
	if os.Geteuid() != 0 {
		t.Logf("not root: halo and the measuring client run at the usual priority, beside the rest of the machine")
		return
	}
	// The system call answers 20 - nice, so that it is never negative.
	raw, err := syscall.Getpriority(syscall.PRIO_PROCESS, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := renice(measuredNice); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = renice(20 - raw) })
}

// needFiles raises this process's soft RLIMIT_NOFILE to the hard limit and
// skips (fails under HALO_INTEGRATION=1) the test if that is under n.
func needFiles(t *testing.T, n uint64) {
	t.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			t.Fatal(err)
		}
	}
	if lim.Cur < n {
		testnet.SkipOrFail(t, fmt.Sprintf("the open file limit is %d, this test needs %d", lim.Cur, n))
	}
}

// slowCut is how a slow client ended: cut by halo after this long, with
// this status line (empty: closed without an answer), or err if halo never
// cut it.
type slowCut struct {
	after  time.Duration
	status string
	err    error
}

// slowClient connects and sends a request head a byte at a time, one
// every trickle, never ending it (after the request line and Host it sends
// an endless header value), until halo answers or closes.
func slowClient(addr string, trickle, giveUp time.Duration) slowCut {
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return slowCut{err: fmt.Errorf("connecting: %w", err)}
	}
	defer c.Close()
	start := time.Now()
	const head = "GET / HTTP/1.1\r\nHost: halo.test\r\nX-Slow: "
	buf := make([]byte, 256)
	for i := 0; time.Since(start) < giveUp; i++ {
		b := byte('x')
		if i < len(head) {
			b = head[i]
		}
		if _, err := c.Write([]byte{b}); err != nil {
			return slowCut{after: time.Since(start)} // closed by halo
		}
		c.SetReadDeadline(time.Now().Add(trickle))
		n, err := c.Read(buf)
		if n > 0 {
			after := time.Since(start)
			status, _, _ := strings.Cut(string(buf[:n]), "\r\n")
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			io.Copy(io.Discard, c) // halo closes after the answer
			return slowCut{after: after, status: status}
		}
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			return slowCut{after: time.Since(start)} // closed without an answer
		}
	}
	return slowCut{err: fmt.Errorf("still open after %v", giveUp)}
}
