package proxy

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/halo-lb/halo/balancer"
	"github.com/halo-lb/halo/proxy/rules"
)

// session records one L4 connection for the tcplog line.
type session struct {
	be        *backend // where the connection was routed
	accepted  time.Time
	queued    time.Duration // waiting for a server slot
	connected time.Time
	srv       *server
	retries   int
	// redispatched: a retry went to another server (logged as HAProxy's
	// '+' before the retries).
	redispatched bool
	in, out      int64
	termination  [2]byte // HAProxy's termination state, e.g. "--", "SC", "cD"
}

// serveTCP proxies one client connection in mode tcp: route it, pick a
// server, connect (retrying and redispatching on failure, since nothing was
// sent yet), then let the kernel move the bytes both ways. The tcplog line
// is written before the server slot and the backend's session are given
// back, so that it counts this session in beconn and srv_conn as HAProxy
// does.
//
// t is the connection's rules' Txn (nil without), which it ends.
func (fe *frontend) serveTCP(c net.Conn, t *rules.Txn) {
	ss := session{accepted: time.Now(), termination: [2]byte{'-', '-'}}
	// First, so that it runs last: a panic is recovered once everything
	// deferred below has been released (recover.go).
	defer fe.recoverTCP(c, &ss)
	defer c.Close()
	be := fe.defaultBackend
	if t != nil {
		defer endTCPTxn(t, &ss)
	}
	if fe.tcpRouted {
		var ok bool
		if c, be, ok = fe.routeTCP(c, t); !ok {
			fe.rejectTCP(c, be, ss.accepted)
			c.Close()
			return
		}
	}
	be = fe.routeTo(be)
	defer be.endSession()
	ss.be = be
	sc, srv := be.connect(&ss, c, t)
	if sc == nil {
		be.counters.Denied.Add(1)
		fe.logTCP(c, &ss)
		return
	}
	defer be.queue.release(srv.member)
	defer sc.Close()
	ss.srv = srv
	// The session joins the frontend's set once it has its server, in
	// the one lock it takes there, so that "shutdown sessions server"
	// finds it without a set of each server's.
	if !fe.state.tcp.addSession(c, srv) {
		return // the frontend was removed and is past hard-stop-after
	}
	defer fe.state.tcp.remove(c)
	if srv.sessions != nil {
		srv.sessions.add(c, sc)
		defer srv.sessions.remove(c)
	}
	ss.connected = time.Now()
	if h := panicHook.Load(); h != nil {
		(*h)(hookTCP, c)
	}
	data, sent, err := relayConn(c, sc)
	if err != nil {
		ss.termination = [2]byte{'S', 'D'}
		fe.logTCP(c, &ss)
		return
	}
	if sent > 0 {
		ss.in = sent
		fe.countBytes(srv, sent, 0)
	}
	fe.relay(data, sc, &ss)
	if fe.timed {
		srv.state.Timings.Observe(ss.queued, ss.connected.Sub(ss.accepted)-ss.queued, 0, time.Since(ss.accepted))
	}
	fe.logTCP(c, &ss)
}

// relay moves the bytes of an established L4 session both ways until both
// directions end, then records how the session ended.
func (fe *frontend) relay(c net.Conn, sc net.Conn, ss *session) {
	be, srv := ss.be, ss.srv
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
		defer fe.recoverRelay(c, sc, ss, &upErr)
		if h := panicHook.Load(); h != nil {
			(*h)(hookRelay, c)
		}
		var in int64
		in, upErr = copyIdle(sc, c, clientIdle, &activity, &ended, &upCounters)
		ss.in += in // after what relayConn sent ahead
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
		// The server aborting counts a response error; its timeout
		// (sD) does not, as HAProxy counts them.
		if ss.termination[0] == 'S' {
			srv.state.RespErrors.Add(1)
		}
	}
}

// connect takes a slot on a server chosen by the policy (waiting in the
// queue while every eligible server is full) and dials it, retrying on
// failure as retryTarget decides. On success the caller owns the slot on
// the returned server and must release it.
func (be *backend) connect(ss *session, c net.Conn, t *rules.Txn) (net.Conn, *server) {
	idx, waited, stuck, err := be.stickAcquire(t)
	if !stuck {
		var key uint64
		hasKey := false
		if be.bySource {
			if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
				key, hasKey = sourceKey(a.IP)
			}
		}
		idx, waited, err = be.queue.acquire(key, hasKey)
	}
	ss.queued = waited
	if err != nil {
		ss.termination = queueTermination(err)
		return nil, nil
	}
	for attempt := 0; ; attempt++ {
		srv := be.servers[idx]
		// A server without TLS or PROXY header gets the raw socket,
		// which relay splices; with either, relay copies through a
		// buffer.
		conn, err := srv.dialServer(&be.dialer, c, "")
		if srv.observe != 0 {
			srv.observed(err == nil)
		}
		if err == nil {
			be.stickStore(t, srv, false)
			return conn, srv
		}
		srv.state.ConnErrors.Add(1)
		var again bool
		if idx, again = be.retryTarget(idx, attempt); !again {
			break
		}
		ss.redispatched = ss.redispatched || be.servers[idx] != srv
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
// instead (another one when redispatching and one is usable and free, or
// idx again, its slot kept), or false once the backend's retries are
// spent, the slot on idx still held.
func (be *backend) retryTarget(idx, attempt int) (int, bool) {
	if attempt >= be.cfg.Retries {
		return idx, false
	}
	srv := be.servers[idx]
	srv.state.Retries.Add(1)
	if be.cfg.Options.Redispatch {
		if next, r := be.pool.AcquireExcept(idx); r == balancer.Assigned && next != idx {
			be.queue.release(idx)
			srv.state.Redispatch.Add(1)
			return next, true
		}
	}
	return idx, true
}
