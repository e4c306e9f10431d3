package cluster

import (
	"bufio"
	"encoding/json"
	"errors"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// This file is the one TCP port a node listens on: raft's transport and the
// pings share it. A ping connection starts with pingMagic; raft's own RPCs
// start with a message type below 8, so the first byte tells them apart.

const pingMagic = 'P'

// mux accepts on the cluster port and hands raft its connections.
type mux struct {
	ln     net.Listener
	raftCh chan net.Conn
	onPing func(net.Conn)
	closed chan struct{}
	once   sync.Once
	mu     sync.Mutex
	pings  map[net.Conn]bool // accepted ping connections, closed with the mux
}

func newMux(ln net.Listener, onPing func(net.Conn)) *mux {
	m := &mux{ln: ln, raftCh: make(chan net.Conn, 16), onPing: onPing, closed: make(chan struct{}), pings: map[net.Conn]bool{}}
	go m.accept()
	return m
}

func (m *mux) accept() {
	for {
		c, err := m.ln.Accept()
		if err != nil {
			select {
			case <-m.closed:
				return
			default:
			}
			time.Sleep(50 * time.Millisecond) // e.g. out of descriptors: no busy loop
			continue
		}
		go m.sort(c)
	}
}

func (m *mux) sort(c net.Conn) {
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var b [1]byte
	if _, err := c.Read(b[:]); err != nil {
		c.Close()
		return
	}
	_ = c.SetReadDeadline(time.Time{})
	if b[0] == pingMagic {
		m.mu.Lock()
		m.pings[c] = true
		m.mu.Unlock()
		m.onPing(c)
		m.mu.Lock()
		delete(m.pings, c)
		m.mu.Unlock()
		return
	}
	select {
	case m.raftCh <- &prefixConn{Conn: c, first: b[0], has: true}:
	case <-m.closed:
		c.Close()
	}
}

// raftLayer is the raft.StreamLayer over the mux.
type raftLayer struct{ m *mux }

func (l raftLayer) Accept() (net.Conn, error) {
	select {
	case c := <-l.m.raftCh:
		return c, nil
	case <-l.m.closed:
		return nil, errors.New("cluster transport closed")
	}
}

func (l raftLayer) Close() error { return l.m.close() }

func (m *mux) close() error {
	m.once.Do(func() { close(m.closed) })
	m.mu.Lock()
	for c := range m.pings {
		c.Close()
	}
	m.mu.Unlock()
	return m.ln.Close()
}

func (l raftLayer) Addr() net.Addr { return l.m.ln.Addr() }

func (l raftLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	return net.DialTimeout("tcp", string(address), timeout)
}

// prefixConn gives back the byte the mux read to sort the connection.
type prefixConn struct {
	net.Conn
	first byte
	has   bool
}

func (c *prefixConn) Read(p []byte) (int, error) {
	if c.has && len(p) > 0 {
		p[0] = c.first
		c.has = false
		return 1, nil
	}
	return c.Conn.Read(p)
}

// wire is one message on a ping connection, one JSON object per line.
type wire struct {
	Kind   string      `json:"kind"` // "ping" or "grant"
	From   string      `json:"from"`
	Seq    uint64      `json:"seq"`
	Index  uint64      `json:"index,omitempty"`
	Status *PeerStatus `json:"status,omitempty"`
}

// maxWire bounds one line: a peer that sends more is cut off.
const maxWire = 64 << 10

// readWires reads messages from a ping connection until it fails.
func readWires(c net.Conn, peers map[string]bool, deliver func(wire)) {
	defer c.Close()
	sc := bufio.NewScanner(c)
	sc.Buffer(make([]byte, 4096), maxWire)
	for sc.Scan() {
		var w wire
		if json.Unmarshal(sc.Bytes(), &w) != nil || !peers[w.From] {
			return // not one of ours
		}
		deliver(w)
	}
}

// link is this node's outgoing ping connection to one peer. Messages are
// dropped, not queued, while it is down: a late ping is worth nothing.
type link struct {
	addr    string
	timeout time.Duration
	ch      chan wire
	mu      sync.Mutex
	conn    net.Conn
	next    time.Time // no redial before
}

func newLink(addr string, timeout time.Duration) *link {
	l := &link{addr: addr, timeout: timeout, ch: make(chan wire, 8)}
	go func() {
		for w := range l.ch {
			l.send(w, l.timeout)
		}
	}()
	return l
}

// post queues w without blocking the caller (the machine's loop); when the
// queue is full, w is dropped.
func (l *link) post(w wire) {
	select {
	case l.ch <- w:
	default:
	}
}

func (l *link) send(w wire, timeout time.Duration) {
	b, _ := json.Marshal(w)
	b = append(b, '\n')
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conn == nil {
		if time.Now().Before(l.next) {
			return
		}
		c, err := net.DialTimeout("tcp", l.addr, timeout)
		if err != nil {
			l.next = time.Now().Add(timeout)
			return
		}
		if _, err := c.Write([]byte{pingMagic}); err != nil {
			c.Close()
			return
		}
		l.conn = c
	}
	_ = l.conn.SetWriteDeadline(time.Now().Add(timeout))
	if _, err := l.conn.Write(b); err != nil {
		l.conn.Close()
		l.conn = nil
	}
}

func (l *link) close() {
	close(l.ch)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conn != nil {
		l.conn.Close()
		l.conn = nil
	}
}
