package testnet

import (
	"fmt"
	"net"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// settle bounds how long a leak check waits for what a test stopped to be
// gone: a closed connection's goroutines still have to be scheduled to see
// the close and return, and a socket's descriptor is only closed once the
// last goroutine using it has left the poller. Seconds, not milliseconds,
// so that a loaded machine does not make a clean test look leaky; a real
// leak stays past any wait.
const settle = 5 * time.Second

// Leaks is what a test process held at one moment, to compare with what
// it holds later: its goroutines (by goleak) and its open file
// descriptors (the entries of /proc/self/fd).
type Leaks struct {
	goroutines goleak.Option // the goroutines that were there
	fds        map[int]string
	lasting    []string
	ignore     []goleak.Option
}

// Snapshot records the goroutines and descriptors there are now. lasting
// are functions whose goroutines a later Check does not count as leaked
// (any goroutine with one of them on its stack): each caller names the few
// its package genuinely needs and says why.
func Snapshot(lasting ...string) (*Leaks, error) {
	fds, err := openFDs()
	if err != nil {
		return nil, err
	}
	l := &Leaks{goroutines: goleak.IgnoreCurrent(), fds: fds, lasting: lasting}
	for _, f := range lasting {
		l.ignore = append(l.ignore, goleak.IgnoreAnyFunction(f))
	}
	return l, nil
}

// Check waits up to a few seconds (settle) for every goroutine started
// since the snapshot to end and for the number of open descriptors to be
// back to what it was, and reports what is left when they are not: the
// goroutines' stacks and the descriptors opened since, with what they
// are (socket, pipe, file).
func (l *Leaks) Check() error {
	deadline := time.Now().Add(settle)
	for {
		// The runtime keeps the pipes of splice (mode tcp's relay) in a
		// sync.Pool, and closes one when a garbage collection drops it
		// from the pool (two collections: the pool's victim cache) and
		// its finalizer runs: collect, so that pooled pipes do not count
		// as leaked.
		runtime.GC()
		runtime.GC()
		gerr := goleak.Find(append([]goleak.Option{l.goroutines}, l.ignore...)...)
		fds, ferr := openFDs()
		if ferr != nil {
			return ferr
		}
		if gerr == nil && len(fds) <= len(l.fds) {
			return nil
		}
		if time.Now().After(deadline) {
			var msg []string
			if gerr != nil {
				msg = append(msg, gerr.Error())
			}
			if len(fds) > len(l.fds) {
				msg = append(msg, fmt.Sprintf("%d file descriptors open, %d before:\n%s", len(fds), len(l.fds), newFDs(l.fds, fds)))
			}
			return fmt.Errorf("leaked after %v of settling: %s", settle, strings.Join(msg, "\n"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Counts are the number of goroutines, less those of the lasting
// functions, and of open descriptors, for a test's log line.
func Counts(lasting ...string) (goroutines, fds int) {
	m, _ := openFDs()
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
stacks:
	for _, g := range strings.Split(string(buf), "\n\n") {
		for _, f := range lasting {
			if strings.Contains(g, "\n"+f+"(") {
				continue stacks
			}
		}
		goroutines++
	}
	return goroutines, len(m)
}

// CheckLeaks fails t if, once t and its cleanups are done, a goroutine
// started during t is still running or more descriptors are open than
// when it started. Call it first in the test: cleanups run last-in
// first-out, so the check runs after the cleanups of everything the test
// starts afterwards (servers, proxies, clients). It logs the counts
// before and after (goroutines less the lasting ones). Not for tests that run in parallel with others.
func CheckLeaks(t testing.TB, lasting ...string) {
	t.Helper()
	g0, _ := Counts(lasting...)
	l, err := Snapshot(lasting...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		err := l.Check()
		g1, f1 := Counts(lasting...)
		t.Logf("leak check: goroutines %d before, %d after; descriptors %d before, %d after", g0, g1, len(l.fds), f1)
		if err != nil {
			t.Error(err)
		}
	})
}

// MainCheckingLeaks runs a package's tests, then stop (when not nil: what
// the tests share and keep running from one test to the next, such as
// database servers), and then fails the run (exit status 1) if goroutines
// or descriptors the tests started are still there (see Leaks.Check),
// printing them and the counts. The snapshot is taken once the process's
// lasting descriptors exist: the network poller's (opened on first use,
// kept for the process's life).
func MainCheckingLeaks(m *testing.M, stop func(), lasting ...string) int {
	startPoller()
	g0, _ := Counts(lasting...)
	l, err := Snapshot(lasting...)
	if err != nil {
		fmt.Fprintln(os.Stderr, "leak check:", err)
		return 1
	}
	code := m.Run()
	if stop != nil {
		stop()
	}
	if err := l.Check(); err != nil {
		fmt.Fprintln(os.Stderr, "leak check after all tests:", err)
		if code == 0 {
			code = 1
		}
	}
	g1, f1 := Counts(lasting...)
	fmt.Fprintf(os.Stderr, "leak check after all tests: goroutines %d before, %d after; descriptors %d before, %d after\n", g0, g1, len(l.fds), f1)
	return code
}

// startPoller makes the runtime open the network poller's descriptors
// (an epoll instance and its wake-up eventfd), which it does on the first
// network operation and keeps until the process exits.
func startPoller() {
	if ln, err := net.Listen("tcp", "127.0.0.1:0"); err == nil {
		ln.Close()
	}
}

// openFDs lists the process's open descriptors and what each one is. The
// directory read itself holds one while it reads, every time alike.
func openFDs() (map[int]string, error) {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return nil, fmt.Errorf("counting open descriptors: %w", err)
	}
	fds := make(map[int]string, len(entries))
	for _, e := range entries {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		target, _ := os.Readlink("/proc/self/fd/" + e.Name())
		fds[n] = target
	}
	return fds, nil
}

// newFDs describes the descriptors of now that were not open (or were
// something else) in before.
func newFDs(before, now map[int]string) string {
	var lines []string
	for fd, target := range now {
		if before[fd] != target {
			lines = append(lines, fmt.Sprintf("  fd %d: %s", fd, target))
		}
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}
