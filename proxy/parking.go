package proxy

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Parking idle kept-alive connections.
//
// A client connection in mode http waiting for its next request costs a
// goroutine blocked in fasthttp's read of the first byte, its stack and
// fasthttp's read buffer, which it keeps between requests because request
// bodies are streamed (StreamRequestBody): about 14 KiB of RSS per
// connection, measured with 9,800 idle clients (134 MiB; HAProxy 26 MiB).
// A connection that stays idle for parkGrace is parked instead: its
// fasthttp serve loop ends (every buffer back to fasthttp's pools), the
// worker goes back to the pool, and the socket waits in an epoll set of
// halo's own, as HAProxy's idle connections wait in its poller. When the
// client sends, or closes, a worker picks the connection up again and
// serves it with the frontend's live generation; at the keep-alive
// timeout it is closed, as fasthttp would have closed it. A parked
// connection keeps its maxconn slots and counts as a current connection.
//
// Busy connections never park: the grace keeps the per-request path
// exactly what it was but for one read deadline.

// parkGrace is how long a kept-alive connection waits for its next
// request in fasthttp before it is parked.
const parkGrace = 100 * time.Millisecond

// errParked ends a connection's fasthttp serve loop when it parks: the
// wait for a first byte failed with nothing read, which fasthttp takes as
// a kept-alive connection closing, silently.
var errParked = errors.New("idle connection parked")

// connSlots is what an accepted connection holds until it ends, wherever
// it ends: the listener's worker, or the parking set after it parked.
type connSlots struct {
	p        *Proxy
	global   *limiter
	frontend *limiter
}

func (s connSlots) release() {
	s.frontend.release()
	s.global.release()
	s.p.conns.Done()
}

// parking is the Proxy's set of parked connections. The epoll instance and
// its goroutine start with the first connection parked and stop at
// Shutdown.
type parking struct {
	p      *Proxy
	mu     sync.Mutex
	epfd   int // -1 until started
	wakefd int // an eventfd in the set: Shutdown wakes the loop with it
	conns  map[int32]*parkedConn
	seq    int32 // numbers each park, in the epoll event beside the fd
	closed bool
	done   chan struct{} // closed when the loop has returned
}

// parkedConn is one parked connection. Whoever takes it out of the set
// first (readiness, its keep-alive timer, Shutdown, its frontend's
// retirement) ends its stay; claimed makes that a single one.
type parkedConn struct {
	gc      *guardConn
	fe      *frontend
	slots   connSlots
	fd, seq int32
	timer   *time.Timer
	claimed atomic.Bool
}

func newParking(p *Proxy) *parking {
	return &parking{p: p, epfd: -1, wakefd: -1, conns: map[int32]*parkedConn{}}
}

// park takes gc, whose fasthttp serve loop has just ended with errParked,
// into the set until it is readable or its keep-alive time, which ends at
// gc.idleUntil, runs out. False: it could not be parked (the set is closed,
// its frontend was removed or left mode http, or epoll refused it); the
// caller ends the connection as usual.
func (pk *parking) park(fe *frontend, gc *guardConn, slots connSlots) bool {
	tc, ok := gc.Conn.(*net.TCPConn)
	if !ok {
		return false
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return false
	}
	fd := int32(-1)
	if rc.Control(func(s uintptr) { fd = int32(s) }) != nil || fd < 0 {
		return false
	}
	pk.mu.Lock()
	// Checked under mu: closeFrontend, which runs after the frontend is
	// marked removed or left mode http, takes mu too, so a connection
	// is either refused here or found there.
	if pk.closed || gc.fs.removed.Load() || gc.fs.http.Load() == nil || pk.start() != nil {
		pk.mu.Unlock()
		return false
	}
	// A connection still listed under this descriptor number was closed
	// under the set ("shutdown session" closing it as it parked): the
	// kernel dropped its registration; end it now, or nothing would.
	stale := pk.conns[fd]
	pk.seq++
	pc := &parkedConn{gc: gc, fe: fe, slots: slots, fd: fd, seq: pk.seq}
	pk.conns[fd] = pc
	// Level-triggered and one-shot: an event that comes while the loop
	// is busy is not lost, and comes once. Its data carries the park's
	// number: an event read before a connection left the set must not
	// resume the next one given its descriptor number.
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT, Fd: fd, Pad: pc.seq}
	if unix.EpollCtl(pk.epfd, unix.EPOLL_CTL_ADD, int(fd), &ev) != nil {
		delete(pk.conns, fd)
		pk.mu.Unlock()
		pk.endStale(stale)
		return false
	}
	pc.timer = time.AfterFunc(time.Until(gc.idleUntil), func() { pk.expire(pc) })
	pk.mu.Unlock()
	pk.endStale(stale)
	return true
}

// endStale ends a parked connection whose descriptor was closed under the
// set and whose number another connection parked with.
func (pk *parking) endStale(pc *parkedConn) {
	if pc != nil && pc.claimed.CompareAndSwap(false, true) {
		pc.timer.Stop()
		pc.fe.endParked(pc.gc, pc.slots)
	}
}

// start creates the epoll set and its loop, once. Under mu.
func (pk *parking) start() error {
	if pk.epfd >= 0 {
		return nil
	}
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return err
	}
	wakefd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		return err
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(wakefd)}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wakefd, &ev); err != nil {
		unix.Close(epfd)
		unix.Close(wakefd)
		return err
	}
	pk.epfd, pk.wakefd = epfd, wakefd
	pk.done = make(chan struct{})
	go pk.loop(epfd, int32(wakefd), pk.done)
	return nil
}

// loop hands each connection that becomes readable (a request, or the
// client's close) back to a worker, until the wake descriptor fires, or
// until the set has stayed empty for parkLoopIdle: the loop and its
// descriptors exist while connections park, and the next park starts
// them again.
func (pk *parking) loop(epfd int, wakefd int32, done chan struct{}) {
	defer close(done)
	events := make([]unix.EpollEvent, 128)
	for {
		n, err := unix.EpollWait(epfd, events, int(parkLoopIdle/time.Millisecond))
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return
		}
		if n == 0 && pk.stopIfEmpty(epfd) {
			return
		}
		for _, ev := range events[:n] {
			if ev.Fd == wakefd {
				return
			}
			pk.mu.Lock()
			pc := pk.conns[ev.Fd]
			pk.mu.Unlock()
			if pc != nil && pc.seq == ev.Pad && pk.claim(pc) {
				pc.timer.Stop()
				pk.p.workers.run(func() { pc.fe.resumeHTTP(pc.gc, pc.slots) })
			}
		}
	}
}

// parkLoopIdle is how long the loop waits with nothing parked before it
// stops.
const parkLoopIdle = time.Second

// stopIfEmpty closes the loop's descriptors if nothing is parked and they
// are still the set's (Shutdown has not taken them): true, the loop ends.
func (pk *parking) stopIfEmpty(epfd int) bool {
	pk.mu.Lock()
	defer pk.mu.Unlock()
	if len(pk.conns) > 0 || pk.epfd != epfd {
		return false
	}
	unix.Close(pk.epfd)
	unix.Close(pk.wakefd)
	pk.epfd, pk.wakefd = -1, -1
	return true
}

// claim takes pc out of the set for whoever asks first.
func (pk *parking) claim(pc *parkedConn) bool {
	if !pc.claimed.CompareAndSwap(false, true) {
		return false
	}
	pk.mu.Lock()
	defer pk.mu.Unlock()
	// The descriptor leaves the set before it can be closed and its
	// number reused. One closed under the set (not through it) has left
	// already, and its number may be another parked connection's now.
	if pk.conns[pc.fd] == pc {
		delete(pk.conns, pc.fd)
		_ = unix.EpollCtl(pk.epfd, unix.EPOLL_CTL_DEL, int(pc.fd), nil)
	}
	return true
}

// expire closes a connection that stayed idle for its whole keep-alive
// timeout.
func (pk *parking) expire(pc *parkedConn) {
	if pk.claim(pc) {
		pc.fe.endParked(pc.gc, pc.slots)
	}
}

// closeFrontend closes the parked connections of a frontend a reload
// removed or switched to mode tcp, as its idle connections close.
func (pk *parking) closeFrontend(fs *frontendState) {
	_ = pk.closeWhere(func(pc *parkedConn) bool { return pc.gc.fs == fs })
}

// closeServedBy closes the parked connections that generation h served
// last, when h is past hard-stop-after: its idle connections close then.
func (pk *parking) closeServedBy(h *httpServer) {
	_ = pk.closeWhere(func(pc *parkedConn) bool { return pc.gc.served == h })
}

// closeWhere closes every parked connection that match selects, and says
// how many it closed (not those the loop or a timer took first).
func (pk *parking) closeWhere(match func(*parkedConn) bool) int {
	pk.mu.Lock()
	var picked []*parkedConn
	for _, pc := range pk.conns {
		if match(pc) {
			picked = append(picked, pc)
		}
	}
	pk.mu.Unlock()
	closed := 0
	for _, pc := range picked {
		if pk.claim(pc) {
			pc.timer.Stop()
			pc.fe.endParked(pc.gc, pc.slots)
			closed++
		}
	}
	return closed
}

// shutdown closes every parked connection, as a soft stop closes idle
// ones, refuses any more and stops the loop.
func (pk *parking) shutdown() {
	pk.mu.Lock()
	pk.closed = true
	pk.mu.Unlock()
	_ = pk.closeWhere(func(*parkedConn) bool { return true })
	pk.mu.Lock()
	epfd, wakefd, done := pk.epfd, pk.wakefd, pk.done
	pk.epfd, pk.wakefd = -1, -1
	pk.mu.Unlock()
	if epfd < 0 {
		return
	}
	one := [8]byte{1}
	_, _ = unix.Write(wakefd, one[:])
	<-done
	unix.Close(epfd)
	unix.Close(wakefd)
}

// snapshot returns the parked connections of fs, for "show sess", which
// lists them with the connections being served.
func (pk *parking) snapshot(fs *frontendState) map[net.Conn]connEntry {
	pk.mu.Lock()
	defer pk.mu.Unlock()
	m := map[net.Conn]connEntry{}
	for _, pc := range pk.conns {
		if pc.gc.fs == fs {
			m[pc.gc.Conn] = connEntry{since: pc.gc.start.UnixNano()}
		}
	}
	return m
}

// closeConn ends c if it is parked ("shutdown session"); false if it
// was not, or was being taken out to be served.
func (pk *parking) closeConn(c net.Conn) bool {
	return pk.closeWhere(func(pc *parkedConn) bool { return pc.gc.Conn == c }) > 0
}

// count is how many connections are parked now.
func (pk *parking) count() int {
	pk.mu.Lock()
	defer pk.mu.Unlock()
	return len(pk.conns)
}
