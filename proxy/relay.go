package proxy

import (
	"errors"
	"io"
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"time"
)

// Errors that end a direction of an L4 session.
var (
	errIdle         = errors.New("no data in either direction within the timeout")
	errWriteStalled = errors.New("peer accepted no data within the timeout")
	// errPanicked ends a direction whose copy panicked (recover.go).
	errPanicked = errors.New("halo recovered a panic")
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
// other direction (counted in ended) already finished. Between two TCP
// sockets Linux moves the bytes with splice(2) and they never enter user
// space (see move); a wrapped connection goes through a buffer.
//
// A timeout is an inactivity timeout over both directions, as HAProxy's
// "timeout client"/"server"/"tunnel": the copy wakes every quarter of it
// (through a read deadline, which only ever fires with the splice pipe
// empty, so no byte is lost), adds the bytes moved to counters, and gives
// up once neither direction has moved a byte for the whole timeout. A write
// that stays blocked for longer than the timeout ends the session too.
func copyIdle(dst, src net.Conn, timeout time.Duration, activity *atomic.Int64, ended *atomic.Int32, counters *byteCounters) (int64, error) {
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
		n, err := move(dst, src)
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

// move copies src to dst until EOF or an error. When dst is a TCP socket
// its ReadFrom splices from a TCP src; only a wrapped connection (TLS, a
// PROXY header's reader) on either side makes the bytes pass through a
// buffer. Either way a read deadline only ends a read whose bytes have all
// been written, so none is lost.
func move(dst, src net.Conn) (int64, error) {
	if d, ok := dst.(*net.TCPConn); ok {
		return d.ReadFrom(src)
	}
	return io.Copy(dst, src)
}

// closeWriter is a connection that can send EOF while still reading:
// *net.TCPConn and *tls.Conn are.
type closeWriter interface {
	CloseWrite() error
}

// halfClose propagates EOF to the other side with a FIN, keeping the
// opposite direction open: a client that shuts down its write side still
// receives the whole response.
func halfClose(dst net.Conn, err error) error {
	if err != nil {
		return err
	}
	cw, ok := dst.(closeWriter)
	if !ok {
		// No half-close on this connection: EOF can only travel as a
		// close, which ends the other direction too.
		return dst.Close()
	}
	// ENOTCONN: the other side reset the connection (a server that
	// closed without reading what was sent to it): its abort, as HAProxy
	// sees it (SD), not a clean end.
	if cerr := cw.CloseWrite(); cerr != nil && !errors.Is(cerr, net.ErrClosed) {
		return cerr
	}
	return nil
}

// terminationState maps how the two directions ended to HAProxy's two-letter
// session state: who ended it (C client, S server; lower case for a
// timeout; I for a panic halo recovered) and in which phase (D: data). A copy reads one side and writes
// the other, so a broken pipe is the fault of the side written to, and a
// stalled write the silence of that side.
func terminationState(up, down error) [2]byte {
	blame := func(err error, src, dst byte) (byte, bool) {
		const lower = 'a' - 'A'
		switch {
		case err == nil, errors.Is(err, net.ErrClosed):
			return 0, false
		case errors.Is(err, errPanicked):
			return 'I', true // HAProxy's internal error
		case errors.Is(err, errIdle):
			return src + lower, true
		case errors.Is(err, errWriteStalled):
			return dst + lower, true
		case errors.Is(err, syscall.EPIPE), errors.Is(err, syscall.ENOTCONN):
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
