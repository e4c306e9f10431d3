package proxy

import (
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/halo-lb/halo/internal/testnet"
)

// faultOutcome is what one request to a faulty server comes to: what the
// client got, the access line's status and termination state, and the
// faulty server's response errors (eresp).
type faultOutcome struct {
	reply faultReply
	term  string
	eresp uint64
}

func (o faultOutcome) String() string {
	return fmt.Sprintf("%d %q truncated=%v %s eresp=%d", o.reply.status, o.reply.body, o.reply.truncated, o.term, o.eresp)
}

// httpFault is a server that misbehaves one way in mode http, and what
// that comes to. Every expectation was measured against HAProxy 2.6.12
// (TestServerFaultsAsHAProxy holds HAProxy to this table): where halo
// differs on purpose, haproxy says what HAProxy does and why says why.
type httpFault struct {
	name  string
	serve func(f *faultServer, c *net.TCPConn)
	want  faultOutcome
	// haproxy is HAProxy's outcome where it differs from halo's.
	haproxy *faultOutcome
	why     string
	// retried: with retry-on all-retryable-errors, option redispatch
	// and a healthy second server, a GET is served by that one (the
	// faulty one counting a retry and a redispatch, and retriedEresp
	// response errors); else it comes to want all the same.
	retried      bool
	retriedEresp uint64
}

// bufferedBody: halo reads a response body of up to 64 KiB whole before it
// sends the head on, so when such a body breaks off it has sent nothing
// yet and answers 502 (504 for a stall), where HAProxy has already passed
// the 200 on and cuts the body short. Larger bodies stream, as HAProxy's.
const bufferedBody = "halo holds a body of up to 64 KiB until it is whole: nothing has reached the client when it breaks off, so the client gets halo's error rather than a cut 200"

var httpFaults = []httpFault{
	{
		name: "reset mid-body",
		serve: func(f *faultServer, c *net.TCPConn) {
			if answerHead(c, 1000, 100) && f.pause(100*time.Millisecond) {
				reset(c)
			}
		},
		want:    faultOutcome{faultReply{status: 502}, "SD--", 1},
		haproxy: &faultOutcome{faultReply{status: 200, body: "100 bytes", truncated: true}, "SD--", 1},
		why:     bufferedBody,
	},
	{
		name: "reset mid-body, streamed",
		serve: func(f *faultServer, c *net.TCPConn) {
			// 1,000 bytes past a multiple of 4 KiB: the ones a
			// buffered writer still held were lost with the reset.
			if answerHead(c, 1<<20, 100<<10+1000) && f.pause(100*time.Millisecond) {
				reset(c)
			}
		},
		want: faultOutcome{faultReply{status: 200, body: "103400 bytes", truncated: true}, "SD--", 1},
	},
	{
		name: "close after the head",
		serve: func(f *faultServer, c *net.TCPConn) {
			if answerHead(c, 1000, 0) {
				f.pause(100 * time.Millisecond)
			}
		},
		want:    faultOutcome{faultReply{status: 502}, "SD--", 1},
		haproxy: &faultOutcome{faultReply{status: 200, truncated: true}, "SD--", 1},
		why:     bufferedBody,
	},
	{
		name: "close after the head, streamed",
		serve: func(f *faultServer, c *net.TCPConn) {
			if answerHead(c, 1<<20, 0) {
				f.pause(100 * time.Millisecond)
			}
		},
		want: faultOutcome{faultReply{status: 200, truncated: true}, "SD--", 1},
	},
	{
		name: "garbage",
		serve: func(f *faultServer, c *net.TCPConn) {
			if readHead(c) {
				io.WriteString(c, "\x16\x03\x01 this is not HTTP at all\r\n\r\n")
				f.hang()
			}
		},
		want:    faultOutcome{faultReply{status: 502}, "PH--", 1},
		retried: true, retriedEresp: 1,
	},
	{
		name: "invalid status line",
		serve: func(f *faultServer, c *net.TCPConn) {
			if readHead(c) {
				io.WriteString(c, "HTTP/1.1 abc Broken\r\nContent-Length: 0\r\n\r\n")
				f.hang()
			}
		},
		want:    faultOutcome{faultReply{status: 502}, "PH--", 1},
		retried: true, retriedEresp: 1,
	},
	{
		name: "part of the head, then close",
		serve: func(f *faultServer, c *net.TCPConn) {
			if readHead(c) {
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Le")
				f.pause(100 * time.Millisecond)
			}
		},
		want:    faultOutcome{faultReply{status: 502}, "SH--", 1},
		retried: true,
	},
	{
		name: "close without answering",
		serve: func(f *faultServer, c *net.TCPConn) {
			readHead(c)
		},
		want:    faultOutcome{faultReply{status: 502}, "SH--", 1},
		retried: true,
	},
	{
		name: "reset without answering",
		serve: func(f *faultServer, c *net.TCPConn) {
			if readHead(c) {
				reset(c)
			}
		},
		want:    faultOutcome{faultReply{status: 502}, "SH--", 1},
		haproxy: &faultOutcome{faultReply{status: 502}, "SH--", 2},
		why:     "HAProxy counts a reset before the response as two response errors, halo as one",
		retried: true, retriedEresp: 1,
	},
	{
		name: "accept, read and never answer",
		serve: func(f *faultServer, c *net.TCPConn) {
			if readHead(c) {
				f.hang()
			}
		},
		want:    faultOutcome{faultReply{status: 504}, "sH--", 1},
		retried: true,
	},
	{
		name: "stall in the head",
		serve: func(f *faultServer, c *net.TCPConn) {
			if readHead(c) {
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Le")
				f.hang()
			}
		},
		want:    faultOutcome{faultReply{status: 504}, "sH--", 1},
		retried: true,
	},
	{
		// Both bound the wait for the whole head by timeout server:
		// bytes that trickle in do not push it out (measured with
		// HAProxy 2.6.12 at one byte a second and timeout server 2s:
		// 504 at 2.0 s).
		name: "trickle the head, a byte a second",
		serve: func(f *faultServer, c *net.TCPConn) {
			if !readHead(c) {
				return
			}
			for _, b := range []byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok") {
				if _, err := c.Write([]byte{b}); err != nil || !f.pause(time.Second) {
					return
				}
			}
		},
		want:    faultOutcome{faultReply{status: 504}, "sH--", 1},
		retried: true,
	},
	{
		name: "stall mid-body",
		serve: func(f *faultServer, c *net.TCPConn) {
			if answerHead(c, 1000, 100) {
				f.hang()
			}
		},
		want:    faultOutcome{faultReply{status: 504}, "sD--", 0},
		haproxy: &faultOutcome{faultReply{status: 200, body: "100 bytes", truncated: true}, "sD--", 0},
		why:     bufferedBody,
	},
	{
		name: "stall mid-body, streamed",
		serve: func(f *faultServer, c *net.TCPConn) {
			if answerHead(c, 1<<20, 100<<10+1000) {
				f.hang()
			}
		},
		want: faultOutcome{faultReply{status: 200, body: "103400 bytes", truncated: true}, "sD--", 0},
	},
}

// faultDefaults and faultConfig are the cases' configuration: the faulty
// server f alone, or (retried) first before a healthy one, o; balance
// first sends every request to f while it has room.
const faultDefaults = `defaults: {mode: http, retries: 1, timeout: {connect: 1s, client: 3s, server: 1s}, option: {httplog: true}}
frontends:
  fe: {bind: "127.0.0.1:0", default_backend: be}
`

func faultConfig(retried bool) string {
	if !retried {
		return faultDefaults + `backends:
  be: {balance: first, option: {redispatch: false}, servers: [{name: f, address: "{{f}}", maxconn: 100}]}
`
	}
	return faultDefaults + `backends:
  be:
    balance: first
    retry-on: all-retryable-errors
    option: {redispatch: true}
    servers: [{name: f, address: "{{f}}", maxconn: 100}, {name: o, address: "{{o}}", maxconn: 100}]
`
}

// TestServerFaults: a server that resets mid-response, closes after the
// head, sends garbage or an invalid status line, stalls, trickles its head
// or never answers gives the client a 502 or 504 (or a body cut short once
// the head was sent), the access line the termination state HAProxy gives
// and the server one response error where HAProxy counts one; with
// retry-on and a second server an idempotent request is retried there
// where HAProxy retries it, a POST is not (halo on purpose, see
// http_retry.go). Nothing is left behind: each case checks goroutines and
// descriptors.
func TestServerFaults(t *testing.T) {
	for _, fc := range httpFaults {
		t.Run(fc.name, func(t *testing.T) {
			t.Run("alone", func(t *testing.T) {
				testnet.CheckLeaks(t, leakIgnores...)
				f := startFaultServer(t, "f", fc.serve)
				got := haloFault(t, faultConfig(false), "GET", f)
				t.Logf("halo: %s", got)
				if got.faultOutcome != fc.want || got.retries != "0" {
					t.Errorf("halo: %s (retries %s); want %s, no retry", got, got.retries, fc.want)
				}
			})
			t.Run("retry-on", func(t *testing.T) {
				testnet.CheckLeaks(t, leakIgnores...)
				f, o := startFaultServer(t, "f", fc.serve), startHTTPBackend(t, "o", nil)
				got := haloFault(t, faultConfig(true), "GET", f, o)
				t.Logf("halo: %s, retries %s on %s", got, got.retries, got.server)
				checkRetried(t, "halo", fc, got)
				if fc.retried {
					post := haloFault(t, faultConfig(true), "POST", f, o)
					t.Logf("halo, POST: %s", post)
					if post.faultOutcome != fc.want || post.retries != "0" {
						t.Errorf("POST: %s (retries %s); want %s: halo retries no POST", post, post.retries, fc.want)
					}
				}
			})
		})
	}
}

// checkRetried holds a retry case's outcome to the table.
func checkRetried(t *testing.T, who string, fc httpFault, got faultGot) {
	t.Helper()
	if !fc.retried {
		if got.faultOutcome != fc.want || got.retries != "0" {
			t.Errorf("%s: %s (retries %s); want %s, no retry", who, got, got.retries, fc.want)
		}
		return
	}
	want := faultOutcome{faultReply{status: 200, body: "o"}, "----", fc.retriedEresp}
	if got.faultOutcome != want || got.retries != "+1" || got.server != "be/o" || got.fRetries != 1 || got.fRedispatch != 1 {
		t.Errorf("%s: %s, retries %s on %s, f counted %d retries %d redispatches; want %s, +1 on be/o, 1 and 1",
			who, got, got.retries, got.server, got.fRetries, got.fRedispatch, want)
	}
}

// faultGot is an outcome with what the retry cases look at.
type faultGot struct {
	faultOutcome
	server, retries       string
	fRetries, fRedispatch uint64
}

// haloFault runs one request through halo configured with cfg.
func haloFault(t *testing.T, cfg, method string, backends ...*testBackend) faultGot {
	t.Helper()
	p, logs := startLoggedProxy(t, cfg, backends...)
	reply := faultRequest(t, frontendAddr(t, p, "fe"), method)
	waitFor(t, 5*time.Second, "the access line", func() bool { return logs.FilterMessageSnippet(method+" /fault ").Len() == 1 })
	line := parseAccessLine(t, logs.FilterMessageSnippet(method + " /fault ").All()[0].Message, true)
	if line.status != reply.status && reply.status != 0 {
		t.Errorf("logged %d, sent %d", line.status, reply.status)
	}
	st := p.Registry().Lookup("be", "f")
	return faultGot{faultOutcome: faultOutcome{reply, line.term, st.RespErrors.Load()}, server: line.server, retries: line.retries,
		fRetries: st.Retries.Load(), fRedispatch: st.Redispatch.Load()}
}

// tcpFault is a server that misbehaves in mode tcp.
type tcpFault struct {
	name  string
	serve func(f *faultServer, c *net.TCPConn)
	reply tcpReply
	term  string
	eresp uint64
}

var tcpFaults = []tcpFault{
	{
		name: "reset mid-stream",
		serve: func(f *faultServer, c *net.TCPConn) {
			buf := make([]byte, 64)
			if _, err := c.Read(buf); err == nil {
				io.WriteString(c, "partial")
				if f.pause(100 * time.Millisecond) {
					reset(c)
				}
			}
		},
		reply: tcpReply{got: "partial"}, term: "SD", eresp: 1,
	},
	{
		name: "accept and never answer",
		serve: func(f *faultServer, c *net.TCPConn) {
			f.hang()
		},
		reply: tcpReply{}, term: "sD", eresp: 0,
	},
	{
		// Closing a socket with unread data sends a reset.
		name: "close without reading",
		serve: func(f *faultServer, c *net.TCPConn) {
			f.pause(100 * time.Millisecond)
		},
		reply: tcpReply{}, term: "SD", eresp: 1,
	},
}

const tcpFaultConfig = `defaults: {mode: tcp, timeout: {connect: 1s, client: 3s, server: 1s}, option: {tcplog: true}}
frontends:
  fe: {bind: "127.0.0.1:0", default_backend: be}
backends:
  be: {servers: [{name: f, address: "{{f}}"}]}
`

// TestServerFaultsTCP: in mode tcp the client gets what the server sent
// and then the connection's end, the tcplog line the termination state
// HAProxy gives, the server a response error where HAProxy counts one.
func TestServerFaultsTCP(t *testing.T) {
	for _, fc := range tcpFaults {
		t.Run(fc.name, func(t *testing.T) {
			testnet.CheckLeaks(t, leakIgnores...)
			f := startFaultServer(t, "f", fc.serve)
			p, logs := startLoggedProxy(t, tcpFaultConfig, f)
			reply := tcpExchange(t, frontendAddr(t, p, "fe"))
			waitFor(t, 5*time.Second, "the tcplog line", func() bool { return logs.FilterMessageSnippet(" be/f ").Len() == 1 })
			line := parseAccessLine(t, logs.FilterMessageSnippet(" be/f ").All()[0].Message, false)
			eresp := p.Registry().Lookup("be", "f").RespErrors.Load()
			t.Logf("halo: got %q reset=%v, %s, eresp=%d", reply.got, reply.reset, line.term, eresp)
			if reply != fc.reply || line.term != fc.term || eresp != fc.eresp {
				t.Errorf("halo: got %+v, %s, eresp %d; want %+v, %s, eresp %d", reply, line.term, eresp, fc.reply, fc.term, fc.eresp)
			}
		})
	}
}

// TestRetryOnStatus: a status retry-on names is retried, on the other
// server with redispatch; on the last try the server's response is passed
// on as it came (HAProxy's l7 retries on a status do the same).
func TestRetryOnStatus(t *testing.T) {
	testnet.CheckLeaks(t, leakIgnores...)
	f := startFaultServer(t, "f", func(fs *faultServer, c *net.TCPConn) {
		for readHead(c) {
			if _, err := io.WriteString(c, "HTTP/1.1 503 Busy\r\nContent-Length: 4\r\n\r\nbusy"); err != nil {
				return
			}
		}
	})
	o := startHTTPBackend(t, "o", nil)
	cfg := strings.Replace(faultConfig(true), "all-retryable-errors", `"503"`, 1)
	got := haloFault(t, cfg, "GET", f, o)
	t.Logf("f answers 503, o 200: %s, retries %s on %s", got, got.retries, got.server)
	if got.reply.status != 200 || got.reply.body != "o" || got.retries != "+1" || got.fRetries != 1 || got.eresp != 0 {
		t.Errorf("got %s, retries %s on %s; want o's 200 after one retry (+1), no response error", got, got.retries, got.server)
	}
	alone := strings.Replace(cfg, `, {name: o, address: "{{o}}", maxconn: 100}`, "", 1)
	got = haloFault(t, alone, "GET", f)
	t.Logf("f alone: %s, retries %s on %s", got, got.retries, got.server)
	if got.reply.status != 503 || got.term != "----" || got.retries != "1" || got.fRetries != 1 {
		t.Errorf("got %s, retries %s; want f's own 503 on the last try, ----, 1 retry", got, got.retries)
	}
}
