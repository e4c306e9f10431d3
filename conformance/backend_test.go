package conformance

import (
	"net"
	"sync"
	"testing"
	"time"

	"github.com/halo-lb/halo/internal/testnet"
)

// recorder is the backend: it keeps every byte each connection brings,
// answers each request its strict framer finds with a 200 that says
// "X-Rec: 1" and no body, and closes a connection whose bytes it cannot frame.
type recorder struct {
	ln       net.Listener
	mu       sync.Mutex
	conns    []*recorded
	answered int // requests answered, over all connections
}

type recorded struct {
	data  []byte
	cases []string // the case running when each request was answered
}

func startRecorder(t *testing.T) *recorder {
	t.Helper()
	r := &recorder{}
	r.ln = testnet.Serve(t, "127.0.0.1:0", func(c net.Conn) {
		rec := &recorded{}
		r.mu.Lock()
		r.conns = append(r.conns, rec)
		r.mu.Unlock()
		r.serve(c, rec)
	})
	return r
}

func (r *recorder) addr() string { return r.ln.Addr().String() }

var recResponse = []byte("HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX-Rec: 1\r\n\r\n") // no body, so HEAD needs no care

func (r *recorder) serve(c net.Conn, rec *recorded) {
	buf := make([]byte, 64<<10)
	for {
		_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
		n, err := c.Read(buf)
		r.mu.Lock()
		rec.data = append(rec.data, buf[:n]...)
		f := framers[0].frame(rec.data)
		fresh := len(f.ends) - len(rec.cases)
		for range fresh {
			rec.cases = append(rec.cases, currentCase.Load().(string))
		}
		r.answered += fresh
		r.mu.Unlock()
		for range fresh {
			if _, werr := c.Write(recResponse); werr != nil {
				return
			}
		}
		if err != nil || f.tail != "" && f.tail != "incomplete" {
			return
		}
	}
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.answered
}
