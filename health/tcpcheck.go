package health

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/halo-lb/halo/config"
)

// tcpCheckBuffer is how much a tcp-check expect reads at most while
// waiting for its pattern, as HAProxy's default buffer size.
const tcpCheckBuffer = 16 << 10

// TCPScriptChecker is HAProxy's "option tcp-check": it runs the tcp-check
// rules in order (connect, send, expect) and passes when every one does.
type TCPScriptChecker struct {
	Script []config.TCPStep
	// Transport is check-ssl and check-send-proxy; nil is plain TCP.
	Transport *Transport
}

var _ Checker = TCPScriptChecker{}

func (c TCPScriptChecker) Check(ctx context.Context, addr string) Result {
	start := time.Now()
	r := c.run(ctx, addr)
	r.Duration = time.Since(start)
	if r.Status == "" {
		r.Status, r.OK = L7OK, true
		r.Desc = fmt.Sprintf("tcp-check passed (%d rules)", len(c.Script))
	}
	return r
}

func (c TCPScriptChecker) run(ctx context.Context, addr string) Result {
	var conn net.Conn
	defer func() {
		if conn != nil {
			conn.Close()
		}
	}()
	var buf []byte // what the server sent since the last expect matched
	for i, step := range c.Script {
		switch step.Action {
		case config.TCPConnect:
			if conn != nil {
				conn.Close()
				buf = buf[:0]
			}
			target := addr
			if step.Port != 0 {
				host, _, _ := net.SplitHostPort(addr)
				target = net.JoinHostPort(host, strconv.Itoa(step.Port))
			}
			var r Result
			var ok bool
			if conn, r, ok = c.Transport.dial(ctx, target); !ok {
				r.Desc = fmt.Sprintf("tcp-check rule %d: connection to %s failed: %v", i+1, target, r.Err)
				return r
			}
		case config.TCPSend:
			if _, err := conn.Write(step.Data); err != nil {
				return Result{Status: L7RSP, Err: err, Desc: fmt.Sprintf("tcp-check rule %d: send failed: %v", i+1, err)}
			}
		case config.TCPExpect:
			var err error
			buf, err = expect(conn, buf, step)
			if err != nil {
				r := Result{Status: L7RSP, Err: err, Desc: fmt.Sprintf("tcp-check rule %d: %v", i+1, err)}
				if isTimeout(err) {
					r.Status = L7TOUT
				}
				return r
			}
		}
	}
	return Result{}
}

// expect reads until step's pattern shows in what the server sent (or,
// with Not, until the server stops sending without it), and returns what
// follows the match for the next expect.
func expect(conn net.Conn, buf []byte, step config.TCPStep) ([]byte, error) {
	chunk := make([]byte, 4096)
	for {
		if end := match(buf, step); end >= 0 && !step.Not {
			return append(buf[:0], buf[end:]...), nil
		}
		if len(buf) >= tcpCheckBuffer {
			return buf, notMatched(step, "in the first 16 KiB")
		}
		n, err := conn.Read(chunk)
		buf = append(buf, chunk[:n]...)
		if err != nil {
			if step.Not && match(buf, step) < 0 && (errors.Is(err, io.EOF) || isTimeout(err)) {
				return buf[:0], nil // the server finished without the forbidden pattern
			}
			if step.Not && match(buf, step) >= 0 {
				return buf, fmt.Errorf("expect not %q: found it", step.Pattern)
			}
			if isTimeout(err) || errors.Is(err, os.ErrDeadlineExceeded) {
				return buf, fmt.Errorf("expect %q: timeout: %w", step.Pattern, err)
			}
			return buf, notMatched(step, "before the connection ended")
		}
		if step.Not && match(buf, step) >= 0 {
			return buf, fmt.Errorf("expect not %q: found it", step.Pattern)
		}
	}
}

// match returns the end of the first match of step's pattern in buf, or -1.
func match(buf []byte, step config.TCPStep) int {
	if step.Regexp != nil {
		if loc := step.Regexp.FindIndex(buf); loc != nil {
			return loc[1]
		}
		return -1
	}
	if i := bytes.Index(buf, step.Data); i >= 0 {
		return i + len(step.Data)
	}
	return -1
}

func notMatched(step config.TCPStep, where string) error {
	return fmt.Errorf("expect %q: not found %s", step.Pattern, where)
}
