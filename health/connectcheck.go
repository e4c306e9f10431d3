package health

import (
	"context"
	"errors"
	"net"
	"os"
	"syscall"
	"time"
)

// This file is the TCP connect check: a probe that passes when the
// target accepts a connection, and the dial every check starts with.

// TCPChecker passes when a TCP connection to the target is accepted.
type TCPChecker struct{}

var _ Checker = TCPChecker{}

// checkDialer opens check connections: without keep-alive probes, which
// a connection closed at once never needs (Go's default would cost four
// setsockopt calls per check), and with delayed ACKs (TCP_QUICKACK off) as
// HAProxy does, so that the final ACK of the handshake waits to be
// piggybacked. The check closes with a reset before it is sent: the server
// saw a SYN answered, which proves it listens, yet its application is
// never woken to accept a connection (no "aborted connection" noise in
// MySQL's logs, no accept for the server to pay for).
var checkDialer = net.Dialer{KeepAlive: -1, Control: delayHandshakeAck}

func delayHandshakeAck(_, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_QUICKACK, 0)
	})
	if err != nil {
		return err
	}
	return serr
}

// Check dials addr and closes the connection at once, with a reset as
// HAProxy does: a FIN would leave a TIME_WAIT socket behind for every
// check, and at a few hundred checks a second of one server those use up
// the ephemeral ports.
func (TCPChecker) Check(ctx context.Context, addr string) Result {
	start := time.Now()
	conn, err := checkDialer.DialContext(ctx, "tcp", addr)
	r := Result{Duration: time.Since(start)}
	switch {
	case err == nil:
		if tc, ok := conn.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
		conn.Close()
		r.Status, r.OK = L4OK, true
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded):
		r.Status, r.Err = L4TOUT, err
	default:
		r.Status, r.Err = L4CON, err
	}
	return r
}

// dialCheck opens a connection for a check that talks to the server, with
// the context's deadline set on it, so that every read and write of the
// check ends by then.
func dialCheck(ctx context.Context, addr string) (net.Conn, error) {
	conn, err := (&net.Dialer{KeepAlive: -1}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if d, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(d)
	}
	return conn, nil
}

// connectFailure is the result of a check whose connection failed: L4TOUT
// when the time ran out, otherwise L4CON.
func connectFailure(err error) Result {
	if isTimeout(err) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) {
		return Result{Status: L4TOUT, Err: err}
	}
	return Result{Status: L4CON, Err: err}
}
