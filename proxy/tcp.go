package proxy

import (
	"errors"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/halo-lb/halo/balancer"
	"github.com/halo-lb/halo/config"
)

// serve handles one accepted client connection with the frontend's mode.
func (fe *frontend) serve(c *net.TCPConn) {
	fe.state.CurConns.Add(1)
	fe.state.TotalConns.Add(1)
	defer fe.state.CurConns.Add(-1)
	if fe.cfg.Options.CliTCPKA {
		_ = c.SetKeepAlive(true)
	}
	if fe.cfg.Mode == config.ModeHTTP {
		_ = fe.http.ServeConn(c)
		return
	}
	fe.serveTCP(c)
}

// session records one L4 connection for the tcplog line.
type session struct {
	accepted    time.Time
	queued      time.Duration // waiting for a server slot
	connected   time.Time
	srv         *server
	retries     int
	in, out     int64
	termination [2]byte // HAProxy's termination state, e.g. "--", "SC", "cD"
}

// serveTCP proxies one client connection in mode tcp: pick a server, connect
// (retrying and redispatching on failure, since nothing was sent yet), then
// let the kernel move the bytes both ways.
func (fe *frontend) serveTCP(c *net.TCPConn) {
	defer c.Close()
	be := fe.backend
	ss := session{accepted: time.Now(), termination: [2]byte{'-', '-'}}
	defer fe.logTCP(c, &ss)
	sc, srv := be.connect(&ss, c)
	if sc == nil {
		be.counters.Denied.Add(1)
		return
	}
	defer be.queue.release(srv.member)
	defer sc.Close()
	if srv.sessions != nil {
		srv.sessions.add(c, sc)
		defer srv.sessions.remove(c)
	}
	ss.srv = srv
	ss.connected = time.Now()
	srv.state.CurConns.Add(1)
	srv.state.TotalConns.Add(1)
	be.counters.CurConns.Add(1)
	be.counters.TotalConns.Add(1)
	defer srv.state.CurConns.Add(-1)
	defer be.counters.CurConns.Add(-1)

	clientIdle, serverIdle := fe.cfg.Timeouts.Client, be.cfg.Timeouts.Server
	if t := be.cfg.Timeouts.Tunnel; t > 0 {
		clientIdle, serverIdle = t, t
	}
	var activity atomic.Int64
	activity.Store(time.Now().UnixNano())
	var ended atomic.Int32 // directions that reached EOF
	upCounters := byteCounters{&fe.state.BytesIn, &be.counters.BytesIn, &srv.state.BytesIn}
	downCounters := byteCounters{&fe.state.BytesOut, &be.counters.BytesOut, &srv.state.BytesOut}
	var wg sync.WaitGroup
	var upErr error
	wg.Add(1)
	fe.workers.run(func() {
		defer wg.Done()
		ss.in, upErr = copyIdle(sc, c, clientIdle, &activity, &ended, &upCounters)
		if upErr != nil {
			// Abort both ways: the other direction must not wait forever.
			c.Close()
			sc.Close()
		}
	})
	var downErr error
	ss.out, downErr = copyIdle(c, sc, serverIdle, &activity, &ended, &downCounters)
	if downErr != nil {
		c.Close()
		sc.Close()
	}
	wg.Wait()
	ss.termination = terminationState(upErr, downErr)
	if ss.termination[0] != '-' {
		fe.state.Errors.Add(1)
		if ss.termination[0] == 's' || ss.termination[0] == 'S' {
			srv.state.RespErrors.Add(1)
		}
	}
}

// connect takes a slot on a server chosen by the policy (waiting in the
// queue while every eligible server is full) and dials it, retrying on
// failure as retryTarget decides. On success the caller owns the slot on
// the returned server and must release it.
func (be *backend) connect(ss *session, c *net.TCPConn) (*net.TCPConn, *server) {
	var key uint64
	hasKey := false
	if be.bySource {
		if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
			key, hasKey = sourceKey(a.IP)
		}
	}
	idx, waited, err := be.queue.acquire(key, hasKey)
	ss.queued = waited
	if err != nil {
		ss.termination = queueTermination(err)
		return nil, nil
	}
	for attempt := 0; ; attempt++ {
		srv := be.servers[idx]
		conn, err := be.dialer.Dial("tcp", srv.addr)
		if srv.observe != 0 {
			srv.observed(err == nil)
		}
		if err == nil {
			return conn.(*net.TCPConn), srv
		}
		srv.state.ConnErrors.Add(1)
		var again bool
		if idx, again = be.retryTarget(idx, attempt); !again {
			break
		}
		ss.retries++
	}
	be.queue.release(idx)
	ss.termination = [2]byte{'S', 'C'}
	return nil, nil
}

// queueTermination is HAProxy's termination state for a session that got
// no server slot: SC when no server is usable, sQ when its time in the
// queue ran out, SQ when the queue itself was full.
func queueTermination(err error) [2]byte {
	switch {
	case errors.Is(err, errQueueTimeout):
		return [2]byte{'s', 'Q'}
	case errors.Is(err, errQueueFull):
		return [2]byte{'S', 'Q'}
	}
	return [2]byte{'S', 'C'}
}

// retryTarget decides what follows a failed attempt on member idx, whose
// slot the caller holds: the member to try next, with its slot now held
// instead (another one when redispatching and one is usable and free), or
// false once the backend's retries are spent, the slot on idx still held.
func (be *backend) retryTarget(idx, attempt int) (int, bool) {
	if attempt >= be.cfg.Retries {
		return idx, false
	}
	srv := be.servers[idx]
	srv.state.Retries.Add(1)
	if be.cfg.Options.Redispatch {
		if next, r := be.pool.AcquireExcept(idx); r == balancer.Assigned {
			be.queue.release(idx)
			if next != idx {
				srv.state.Redispatch.Add(1)
			}
			return next, true
		}
	}
	return idx, true
}

// Errors that end a direction of an L4 session.
var (
	errIdle         = errors.New("no data in either direction within the timeout")
	errWriteStalled = errors.New("peer accepted no data within the timeout")
)

// byteCounters are the three counters (frontend, backend, server) a
// direction of an L4 session adds its bytes to.
type byteCounters [3]*atomic.Uint64

func (c *byteCounters) add(n int64) {
	for _, ctr := range c {
		ctr.Add(uint64(n))
	}
}

// progressSlice is how often a session without an inactivity timeout still
// publishes its byte counts, so that a long-lived session does not look
// idle to stats until it closes.
const progressSlice = time.Minute

// copyIdle copies src to dst until EOF, then half-closes dst unless the
// other direction (counted in ended) already finished. It calls
// dst.ReadFrom(src) on the raw *net.TCPConn so that Linux moves the bytes
// with splice(2) and they never enter user space.
//
// A timeout is an inactivity timeout over both directions, as HAProxy's
// "timeout client"/"server"/"tunnel": the copy wakes every quarter of it
// (through a read deadline, which only ever fires with the splice pipe
// empty, so no byte is lost), adds the bytes moved to counters, and gives
// up once neither direction has moved a byte for the whole timeout. A write
// that stays blocked for longer than the timeout ends the session too.
func copyIdle(dst, src *net.TCPConn, timeout time.Duration, activity *atomic.Int64, ended *atomic.Int32, counters *byteCounters) (int64, error) {
	slice := progressSlice
	if timeout > 0 {
		slice = max(timeout/4, time.Millisecond)
	}
	var total int64
	for {
		now := time.Now()
		readDeadline := now.Add(slice)
		_ = src.SetReadDeadline(readDeadline)
		var writeDeadline time.Time
		if timeout > 0 {
			writeDeadline = readDeadline.Add(timeout)
			_ = dst.SetWriteDeadline(writeDeadline)
		}
		n, err := dst.ReadFrom(src)
		total += n
		if n > 0 {
			counters.add(n)
			activity.Store(time.Now().UnixNano())
		}
		if err == nil || !errors.Is(err, os.ErrDeadlineExceeded) {
			if err == nil && ended.Add(1) == 2 {
				// The other direction ended first: both connections
				// close now, and close sends the FIN a half-close would.
				return total, nil
			}
			return total, halfClose(dst, err)
		}
		if timeout <= 0 {
			continue
		}
		if !time.Now().Before(writeDeadline) {
			return total, errWriteStalled
		}
		if time.Since(time.Unix(0, activity.Load())) >= timeout {
			return total, errIdle
		}
	}
}

// halfClose propagates EOF to the other side with a FIN, keeping the
// opposite direction open: a client that shuts down its write side still
// receives the whole response.
func halfClose(dst *net.TCPConn, err error) error {
	if err != nil {
		return err
	}
	if cerr := dst.CloseWrite(); cerr != nil && !errors.Is(cerr, net.ErrClosed) && !errors.Is(cerr, syscall.ENOTCONN) {
		return cerr
	}
	return nil
}

// terminationState maps how the two directions ended to HAProxy's two-letter
// session state: who ended it (C client, S server; lower case for a
// timeout) and in which phase (D: data). A copy reads one side and writes
// the other, so a broken pipe is the fault of the side written to, and a
// stalled write the silence of that side.
func terminationState(up, down error) [2]byte {
	blame := func(err error, src, dst byte) (byte, bool) {
		const lower = 'a' - 'A'
		switch {
		case err == nil, errors.Is(err, net.ErrClosed):
			return 0, false
		case errors.Is(err, errIdle):
			return src + lower, true
		case errors.Is(err, errWriteStalled):
			return dst + lower, true
		case errors.Is(err, syscall.EPIPE):
			return dst, true
		default:
			return src, true
		}
	}
	if b, ok := blame(up, 'C', 'S'); ok {
		return [2]byte{b, 'D'}
	}
	if b, ok := blame(down, 'S', 'C'); ok {
		return [2]byte{b, 'D'}
	}
	return [2]byte{'-', '-'}
}
