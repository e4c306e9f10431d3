package proxy

import (
	"time"

	"github.com/halo-lb/halo/proxy/rules"
)

// Persistence by stick tables: a backend's "stick match" and "stick on"
// lines send a key (the VIP a Galera client connected to, a client
// address) to the server the table stored for it, and "stick on",
// "stick store-request" and "stick store-response" store the server a
// session went to. It works in both modes; in mode http per request.

// stickServer is the server a match rule of be finds for t: its member
// index, or -1. A stored server that is not usable now is not used (the
// session is balanced, and the store rules then record where it went).
func (be *backend) stickServer(t *rules.Txn) int {
	for _, st := range be.sticks {
		if !st.Matches() {
			continue
		}
		id := st.Server(t)
		if id <= 0 || id > len(be.servers) {
			continue
		}
		i := id - 1
		if be.pool.Usable(be.servers[i].member) {
			return i
		}
	}
	return -1
}

// stickAcquire takes a slot on the server the stick rules choose, if
// one does; ok reports whether they did (the slot, or the wait's error).
func (be *backend) stickAcquire(t *rules.Txn) (idx int, waited time.Duration, ok bool, err error) {
	if t == nil || len(be.sticks) == 0 {
		return -1, 0, false, nil
	}
	i := be.stickServer(t)
	if i < 0 {
		return -1, 0, false, nil
	}
	waited, err = be.queue.acquireDirect(i)
	if err == errLeftPool {
		return -1, waited, false, nil // balanced normally, as persistence does
	}
	return i, waited, true, err
}

// stickStore records srv for the session's keys: store-request rules
// (and stick on) once the server is known, store-response ones on the
// response (response true).
func (be *backend) stickStore(t *rules.Txn, srv *server, response bool) {
	if t == nil || srv == nil {
		return
	}
	for _, st := range be.sticks {
		if (response && st.Kind == "store-response") || (!response && st.StoresRequest()) {
			st.Store(t, srv.member+1)
		}
	}
}
