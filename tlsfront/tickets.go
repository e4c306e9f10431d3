package tlsfront

import (
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"sync"
	"time"
	"weak"
)

// Tickets owns the keys that seal TLS session tickets, for every bind of
// the process. One set of master keys outlives reloads, so a client that
// got a ticket before a reload resumes after it; the keys rotate (a new one
// every Rotate, the last Keep kept to decrypt), so a stolen key opens only
// a bounded window of sessions, as HAProxy's tls-ticket-keys rotation
// does. Each bind seals with keys derived from the master keys and its own
// name (HKDF), so a ticket one bind issued never resumes on another: a
// session of one frontend's certificate cannot be carried to a frontend
// whose client certificates or strict-sni it did not pass.
type Tickets struct {
	mu   sync.Mutex
	keys [][32]byte // master keys, newest first: it seals, all of them open
	// configs are the live configs using the keys, with the bind each
	// serves; a config a retired snapshot dropped is collected, and so
	// leaves the list by itself.
	configs []ticketUser
	stop    chan struct{}
	once    sync.Once
}

type ticketUser struct {
	cfg  weak.Pointer[tls.Config]
	bind string
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
	t.pruneLocked(func(cfg *tls.Config, bind string) { cfg.SetSessionTicketKeys(t.keysFor(bind)) })
}

// keysFor derives a bind's ticket keys from the master keys.
func (t *Tickets) keysFor(bind string) [][32]byte {
	keys := make([][32]byte, len(t.keys))
	for i, k := range t.keys {
		derived, err := hkdf.Key(sha256.New, k[:], nil, "halo tls ticket key: "+bind, 32)
		if err != nil {
			panic(err) // only for a length sha256's HKDF cannot give
		}
		copy(keys[i][:], derived)
	}
	return keys
}

// pruneLocked drops the configs that were collected and calls each on the
// live ones.
func (t *Tickets) pruneLocked(each func(cfg *tls.Config, bind string)) {
	live := t.configs[:0]
	for _, u := range t.configs {
		if cfg := u.cfg.Value(); cfg != nil {
			each(cfg, u.bind)
			live = append(live, u)
		}
	}
	clear(t.configs[len(live):])
	t.configs = live
}

// attach gives cfg the current keys of bind (a name that identifies it
// across reloads) and keeps it up to date with later rotations.
func (t *Tickets) attach(cfg *tls.Config, bind string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	cfg.SetSessionTicketKeys(t.keysFor(bind))
	t.pruneLocked(func(*tls.Config, string) {})
	t.configs = append(t.configs, ticketUser{weak.Make(cfg), bind})
}

// Stop ends the rotation.
func (t *Tickets) Stop() { t.once.Do(func() { close(t.stop) }) }
