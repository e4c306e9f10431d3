package tlsfront

import (
	"crypto/rand"
	"crypto/tls"
	"sync"
	"time"
	"weak"
)

// Tickets owns the keys that seal TLS session tickets, for every bind of
// the process. One set of keys outlives reloads, so a client that got a
// ticket before a reload resumes after it; the keys rotate (a new one every
// Rotate, the last Keep kept to decrypt), so a stolen key opens only a
// bounded window of sessions, as HAProxy's tls-ticket-keys rotation does.
type Tickets struct {
	mu   sync.Mutex
	keys [][32]byte // newest first: it seals, all of them open
	// configs are the live configs using the keys; a config a retired
	// snapshot dropped is collected, and so leaves the list by itself.
	configs []weak.Pointer[tls.Config]
	stop    chan struct{}
	once    sync.Once
}

// Ticket key rotation: a new key every TicketRotate, and TicketKeep keys
// kept, so a ticket stays valid between TicketRotate×(TicketKeep-1) and
// TicketRotate×TicketKeep after it was issued.
const (
	TicketRotate = time.Hour
	TicketKeep   = 3
)

// NewTickets starts the keys, rotating every rotate (TicketRotate if 0),
// until Stop.
func NewTickets(rotate time.Duration) *Tickets {
	if rotate <= 0 {
		rotate = TicketRotate
	}
	t := &Tickets{stop: make(chan struct{})}
	t.keys = [][32]byte{newKey()}
	go t.rotateEvery(rotate)
	return t
}

func newKey() [32]byte {
	var k [32]byte
	_, _ = rand.Read(k[:]) // crypto/rand never fails on Linux
	return k
}

func (t *Tickets) rotateEvery(d time.Duration) {
	tick := time.NewTicker(d)
	defer tick.Stop()
	for {
		select {
		case <-t.stop:
			return
		case <-tick.C:
			t.Rotate()
		}
	}
}

// Rotate makes a new key the sealing one and drops the oldest beyond
// TicketKeep, in every live config.
func (t *Tickets) Rotate() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.keys = append([][32]byte{newKey()}, t.keys...)
	if len(t.keys) > TicketKeep {
		t.keys = t.keys[:TicketKeep]
	}
	t.pruneLocked(func(cfg *tls.Config) { cfg.SetSessionTicketKeys(t.keys) })
}

// pruneLocked drops the configs that were collected and calls each on the
// live ones.
func (t *Tickets) pruneLocked(each func(*tls.Config)) {
	live := t.configs[:0]
	for _, w := range t.configs {
		if cfg := w.Value(); cfg != nil {
			each(cfg)
			live = append(live, w)
		}
	}
	clear(t.configs[len(live):])
	t.configs = live
}

// attach gives cfg the current keys and keeps it up to date with later
// rotations.
func (t *Tickets) attach(cfg *tls.Config) {
	t.mu.Lock()
	defer t.mu.Unlock()
	cfg.SetSessionTicketKeys(t.keys)
	t.pruneLocked(func(*tls.Config) {})
	t.configs = append(t.configs, weak.Make(cfg))
}

// Stop ends the rotation.
func (t *Tickets) Stop() { t.once.Do(func() { close(t.stop) }) }
