package health

import (
	"container/heap"
	"errors"
	"math/rand/v2"
	"net/netip"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// The TCP connect checks of every monitor run in one goroutine around one
// epoll instance, rather than in a goroutine per server through net.Dial.
// A check is then seven system calls (socket, two setsockopt, connect,
// epoll_ctl, getsockopt, close; epoll_wait is shared by every check that
// completes together) and no goroutine wake-up: with net.Dial it was
// eleven calls, a context with its timer, a goroutine watching the context
// and a futex wake-up per check. For 2,000 servers checked every second
// this halves the CPU the checks cost (numbers in the README).

// startSlack is how early a check may start.
const startSlack = 5 * time.Millisecond

// tcpProbe is one monitored server in the engine.
type tcpProbe struct {
	m    *Monitor
	sa   unix.Sockaddr
	af   int
	due  time.Time // next start, or, in flight, the check's deadline
	idx  int       // in the engine's heap; -1 when out of it
	fd   int       // the check's socket while in flight, else -1
	t0   time.Time // when the check in flight started
	done chan struct{}
}

// tcpEngine schedules and runs the probes.
type tcpEngine struct {
	epfd, evfd int

	mu      sync.Mutex
	pending []func() // commands from other goroutines, run by the engine

	due      probeHeap         // engine goroutine only
	inFlight map[int]*tcpProbe // by socket
}

var (
	engine     *tcpEngine
	engineErr  error
	engineOnce sync.Once
)

// startTCPProbe hands a TCP connect check of m to the engine. It returns
// nil when the engine cannot take it (an address that is not IP:port, or
// no epoll), and the caller falls back to a loop of its own.
func startTCPProbe(m *Monitor) schedule {
	ap, err := netip.ParseAddrPort(m.spec.Addr)
	if err != nil {
		return nil
	}
	engineOnce.Do(func() { engine, engineErr = newTCPEngine() })
	if engineErr != nil {
		return nil
	}
	p := &tcpProbe{m: m, idx: -1, fd: -1, done: make(chan struct{})}
	if a := ap.Addr().Unmap(); a.Is4() {
		p.af, p.sa = unix.AF_INET, &unix.SockaddrInet4{Port: int(ap.Port()), Addr: a.As4()}
	} else {
		p.af, p.sa = unix.AF_INET6, &unix.SockaddrInet6{Port: int(ap.Port()), Addr: a.As16()}
	}
	// The first check comes after a random part of one interval, so that
	// servers configured together are not checked in step.
	first := rand.N(m.spec.Inter) + time.Millisecond
	engine.do(func() {
		p.due = time.Now().Add(first)
		heap.Push(&engine.due, p)
	})
	return p
}

func newTCPEngine() (*tcpEngine, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	evfd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		return nil, os.NewSyscallError("eventfd", err)
	}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, evfd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(evfd)}); err != nil {
		unix.Close(epfd)
		unix.Close(evfd)
		return nil, os.NewSyscallError("epoll_ctl", err)
	}
	e := &tcpEngine{epfd: epfd, evfd: evfd, inFlight: map[int]*tcpProbe{}}
	go e.run()
	return e, nil
}

// do runs f in the engine goroutine, soon.
func (e *tcpEngine) do(f func()) {
	e.mu.Lock()
	e.pending = append(e.pending, f)
	first := len(e.pending) == 1
	e.mu.Unlock()
	if first {
		var one = [8]byte{1}
		_, _ = unix.Write(e.evfd, one[:])
	}
}

func (p *tcpProbe) soon(d time.Duration) {
	engine.do(func() {
		if p.idx < 0 || p.fd >= 0 {
			return // stopped, or in flight: the next start follows it
		}
		if at := time.Now().Add(d); at.Before(p.due) {
			p.due = at
			heap.Fix(&engine.due, p.idx)
		}
	})
}

// stop takes the probe out of the engine, closing a check in flight, and
// returns once the engine will not touch the monitor again.
func (p *tcpProbe) stop() {
	engine.do(func() {
		if p.fd >= 0 {
			delete(engine.inFlight, p.fd)
			unix.Close(p.fd)
			p.fd = -1
		}
		if p.idx >= 0 {
			heap.Remove(&engine.due, p.idx)
		}
		close(p.done)
	})
	<-p.done
}

func (e *tcpEngine) run() {
	events := make([]unix.EpollEvent, 256)
	for {
		// The engine waits in epoll_wait, holding a thread (the runtime
		// hands its P to others meanwhile). Waiting in Go's poller
		// instead, with the epoll fd registered there, was measured: it
		// doubles the epoll_wait calls and cost 7.7% of a core against
		// 5.3% for this.
		wait := -1
		if len(e.due) > 0 {
			d := time.Until(e.due[0].due)
			wait = int((d + time.Millisecond - 1) / time.Millisecond)
			if wait < 0 {
				wait = 0
			}
		}
		n, err := unix.EpollWait(e.epfd, events, wait)
		if err != nil && !errors.Is(err, unix.EINTR) {
			panic("health: epoll_wait: " + err.Error()) // only on a bad epoll fd: a bug
		}
		for _, ev := range events[:max(n, 0)] {
			if int(ev.Fd) == e.evfd {
				e.runPending()
				continue
			}
			if p := e.inFlight[int(ev.Fd)]; p != nil {
				p.connected()
			}
		}
		// Checks due within startSlack start now: the engine then
		// wakes about once per startSlack to start checks, rather than
		// for each one (2,000 servers at inter 1s are a check every
		// 0.5 ms). Deadlines are kept exactly.
		now := time.Now()
		for len(e.due) > 0 {
			p := e.due[0]
			if p.fd >= 0 && !p.due.After(now) {
				p.finish(Result{Status: L4TOUT, Err: os.ErrDeadlineExceeded})
			} else if p.fd < 0 && p.due.Before(now.Add(startSlack)) {
				p.start(now)
			} else {
				break
			}
		}
	}
}

func (e *tcpEngine) runPending() {
	var buf [8]byte
	_, _ = unix.Read(e.evfd, buf[:])
	e.mu.Lock()
	cmds := e.pending
	e.pending = nil
	e.mu.Unlock()
	for _, f := range cmds {
		f()
	}
}

// start opens the check's socket and begins connecting. The socket closes
// with a reset (SO_LINGER 0) as HAProxy's checks do, and the last ACK of
// the handshake is delayed (TCP_QUICKACK off) so that the reset goes
// first: the server's application never has a connection to accept.
func (p *tcpProbe) start(now time.Time) {
	p.t0 = now
	fd, err := unix.Socket(p.af, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		p.fail(os.NewSyscallError("socket", err))
		return
	}
	p.fd = fd
	engine.inFlight[fd] = p
	_ = unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0})
	_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_QUICKACK, 0)
	switch err := unix.Connect(fd, p.sa); {
	case err == nil:
		p.finish(Result{Status: L4OK, OK: true})
		return
	case !errors.Is(err, unix.EINPROGRESS):
		p.fail(os.NewSyscallError("connect", err))
		return
	}
	ev := unix.EpollEvent{Events: unix.EPOLLOUT | unix.EPOLLONESHOT, Fd: int32(fd)}
	if err := unix.EpollCtl(engine.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		p.fail(os.NewSyscallError("epoll_ctl", err))
		return
	}
	p.due = now.Add(p.m.spec.Timeout)
	heap.Fix(&engine.due, p.idx)
}

// connected reads the outcome of the connection attempt.
func (p *tcpProbe) connected() {
	errno, err := unix.GetsockoptInt(p.fd, unix.SOL_SOCKET, unix.SO_ERROR)
	switch {
	case err != nil:
		p.fail(os.NewSyscallError("getsockopt", err))
	case errno != 0:
		p.fail(os.NewSyscallError("connect", unix.Errno(errno)))
	default:
		p.finish(Result{Status: L4OK, OK: true})
	}
}

func (p *tcpProbe) fail(err error) { p.finish(Result{Status: L4CON, Err: err}) }

// finish closes the socket, records the result and schedules the next
// check after the interval the monitor chooses.
func (p *tcpProbe) finish(r Result) {
	now := time.Now()
	if p.fd >= 0 {
		delete(engine.inFlight, p.fd)
		unix.Close(p.fd)
		p.fd = -1
	}
	r.Duration = now.Sub(p.t0)
	p.m.record(r)
	p.due = now.Add(p.m.interval())
	heap.Fix(&engine.due, p.idx)
}

// probeHeap orders probes by due time.
type probeHeap []*tcpProbe

func (h probeHeap) Len() int           { return len(h) }
func (h probeHeap) Less(i, j int) bool { return h[i].due.Before(h[j].due) }
func (h probeHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].idx, h[j].idx = i, j
}
func (h *probeHeap) Push(x any) {
	p := x.(*tcpProbe)
	p.idx = len(*h)
	*h = append(*h, p)
}
func (h *probeHeap) Pop() any {
	old := *h
	p := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	p.idx = -1
	return p
}
