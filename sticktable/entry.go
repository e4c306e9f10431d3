package sticktable

import (
	"sync"
	"sync/atomic"

	"github.com/halo-lb/halo/config"
)

// Data is one kind of stored data, numbered in HAProxy's order
// (config.StickDataKinds), which "show table" prints in.
type Data uint8

// The data kinds.
const (
	ServerID Data = iota
	GPC0
	GPC0Rate
	ConnCnt
	ConnRate
	ConnCur
	SessCnt
	SessRate
	HTTPReqCnt
	HTTPReqRate
	HTTPErrCnt
	HTTPErrRate
	BytesInCnt
	BytesInRate
	BytesOutCnt
	BytesOutRate
	GPC1
	numData
)

// DataOf maps a configuration's kind to its Data; false for an unknown
// one.
func DataOf(k config.StickDataKind) (Data, bool) {
	for i, known := range config.StickDataKinds {
		if known == k {
			return Data(i), true
		}
	}
	return 0, false
}

// Name is HAProxy's name of the kind.
func (d Data) Name() string { return string(config.StickDataKinds[d]) }

// IsRate reports whether the kind is a rate over a period.
func (d Data) IsRate() bool { return config.StickDataKinds[d].IsRate() }

// Entry is one key's data. Its counters are atomic words and its rates
// are guarded by mu, so every method may be called from any goroutine.
// An entry may be evicted or expire, and its memory be reused for another
// key, unless it is referenced (Table.Track, Acquire): hold a reference
// for as long as a session uses the entry.
type Entry struct {
	t    *Table
	refs atomic.Int32
	// last is when the entry was last updated (ms, Now's clock); expiry
	// counts from it. used says it was updated since eviction last looked
	// at it (the second chance, see Table.evict).
	last atomic.Int64
	used atomic.Bool

	// Under the shard's mutex: the key (a slice of keybuf) and the place
	// in the shard's recency list.
	key        []byte
	keybuf     []byte
	prev, next *Entry

	mu   sync.Mutex // guards the rates' words
	data []uint64
}

// A rate takes three words: its period's start (plus one, so that zero
// means "never counted"), the current period's count, the previous one's.
const rateWords = 3

// touch records an update: expiry counts from now, and eviction passes
// the entry over once. The flag is read first so that a busy entry's
// updates do not all write the same cache line.
func (e *Entry) touch(now int64) {
	e.last.Store(now)
	if !e.used.Load() {
		e.used.Store(true)
	}
}

// Acquire adds a reference: the entry is neither evicted nor expired
// until the matching Release.
func (e *Entry) Acquire() { e.refs.Add(1) }

// Release drops a reference taken by Track or Acquire; expiry counts
// from now.
func (e *Entry) Release(now int64) {
	e.touch(now)
	e.refs.Add(-1)
}

// Refs is how many references the entry has ("use" in show table).
func (e *Entry) Refs() int { return int(e.refs.Load()) }

// Stores reports whether the entry's table stores d.
func (e *Entry) Stores(d Data) bool { return e.t.slot[d] >= 0 }

// add adds n to a counter or a rate, if stored.
func (e *Entry) add(d Data, n uint64, now int64) {
	i := e.t.slot[d]
	if i < 0 {
		return
	}
	if !d.IsRate() {
		atomic.AddUint64(&e.data[i], n)
		return
	}
	e.mu.Lock()
	rateAdd(e.data[i:i+rateWords], e.t.period[d], now, n)
	e.mu.Unlock()
}

// ConnStart counts a tracked connection's start: conn_cnt, conn_rate and
// conn_cur. Every update refreshes the entry's expiry.
func (e *Entry) ConnStart(now int64) {
	e.add(ConnCnt, 1, now)
	e.add(ConnRate, 1, now)
	e.add(ConnCur, 1, now)
	e.touch(now)
}

// ConnEnd counts a tracked connection's end: conn_cur goes down, never
// below zero.
func (e *Entry) ConnEnd(now int64) {
	if i := e.t.slot[ConnCur]; i >= 0 {
		for {
			v := atomic.LoadUint64(&e.data[i])
			if v == 0 || atomic.CompareAndSwapUint64(&e.data[i], v, v-1) {
				break
			}
		}
	}
	e.touch(now)
}

// Session counts an accepted session: sess_cnt and sess_rate.
func (e *Entry) Session(now int64) {
	e.add(SessCnt, 1, now)
	e.add(SessRate, 1, now)
	e.touch(now)
}

// HTTPRequest counts an HTTP request: http_req_cnt and http_req_rate.
func (e *Entry) HTTPRequest(now int64) {
	e.add(HTTPReqCnt, 1, now)
	e.add(HTTPReqRate, 1, now)
	e.touch(now)
}

// HTTPError counts an HTTP error: http_err_cnt and http_err_rate. The
// proxy decides what one is, as HAProxy: a denied, tarpitted or invalid
// request, a failed authentication, a server's 4xx.
func (e *Entry) HTTPError(now int64) {
	e.add(HTTPErrCnt, 1, now)
	e.add(HTTPErrRate, 1, now)
	e.touch(now)
}

// BytesIn counts n bytes from the client: bytes_in_cnt and bytes_in_rate.
func (e *Entry) BytesIn(n int64, now int64) {
	if n > 0 {
		e.add(BytesInCnt, uint64(n), now)
		e.add(BytesInRate, uint64(n), now)
	}
	e.touch(now)
}

// BytesOut counts n bytes to the client: bytes_out_cnt and
// bytes_out_rate.
func (e *Entry) BytesOut(n int64, now int64) {
	if n > 0 {
		e.add(BytesOutCnt, uint64(n), now)
		e.add(BytesOutRate, uint64(n), now)
	}
	e.touch(now)
}

// IncGPC0 adds one to gpc0 and gpc0_rate, and returns gpc0's new value
// (0 when it is not stored), as HAProxy's sc_inc_gpc0.
func (e *Entry) IncGPC0(now int64) uint64 {
	e.add(GPC0, 1, now)
	e.add(GPC0Rate, 1, now)
	e.touch(now)
	return e.Value(GPC0, now)
}

// ClearGPC0 sets gpc0 to zero and returns the value it had, as HAProxy's
// sc_clr_gpc0.
func (e *Entry) ClearGPC0(now int64) uint64 {
	e.touch(now)
	if i := e.t.slot[GPC0]; i >= 0 {
		return atomic.SwapUint64(&e.data[i], 0)
	}
	return 0
}

// IncGPC1 adds one to gpc1 and returns its new value.
func (e *Entry) IncGPC1(now int64) uint64 {
	e.add(GPC1, 1, now)
	e.touch(now)
	return e.Value(GPC1, now)
}

// ClearGPC1 sets gpc1 to zero and returns the value it had.
func (e *Entry) ClearGPC1(now int64) uint64 {
	e.touch(now)
	if i := e.t.slot[GPC1]; i >= 0 {
		return atomic.SwapUint64(&e.data[i], 0)
	}
	return 0
}

// SetServerID stores the server a "stick on" sent this key to (its id).
func (e *Entry) SetServerID(id int, now int64) {
	if i := e.t.slot[ServerID]; i >= 0 {
		atomic.StoreUint64(&e.data[i], uint64(int64(id)))
	}
	e.touch(now)
}

// ServerID is the stored server id; false when none is stored (never set,
// or server_id is not in the table).
func (e *Entry) ServerID() (int, bool) {
	i := e.t.slot[ServerID]
	if i < 0 {
		return 0, false
	}
	v := int(int64(atomic.LoadUint64(&e.data[i])))
	return v, v != 0
}

// Value reads d: a counter's value, a rate's events over its period at
// now (HAProxy's read_freq_ctr_period), the server id. A kind the table
// does not store reads as 0: HAProxy's fetch finds no value there, which
// its ACLs treat as not matching, and halo's callers that need to tell
// the two apart ask Stores.
func (e *Entry) Value(d Data, now int64) uint64 {
	i := e.t.slot[d]
	if i < 0 {
		return 0
	}
	if !d.IsRate() {
		return atomic.LoadUint64(&e.data[i])
	}
	e.mu.Lock()
	v := rateRead(e.data[i:i+rateWords], e.t.period[d], now)
	e.mu.Unlock()
	return v
}

// Set stores v in d as "set table" does: a counter takes it, a rate
// reads v for a whole period from now and then fades out (HAProxy sets
// the current period's count). False when d is not stored.
func (e *Entry) Set(d Data, v uint64, now int64) bool {
	i := e.t.slot[d]
	if i < 0 {
		return false
	}
	if d.IsRate() {
		e.mu.Lock()
		e.data[i], e.data[i+1], e.data[i+2] = uint64(now)+1, v, 0
		e.mu.Unlock()
	} else {
		atomic.StoreUint64(&e.data[i], v)
	}
	e.touch(now)
	return true
}

// reset clears every word, for an entry taken for a new key.
func (e *Entry) reset(now int64) {
	e.mu.Lock()
	for i := range e.data {
		atomic.StoreUint64(&e.data[i], 0)
	}
	e.mu.Unlock()
	e.refs.Store(0)
	e.used.Store(false)
	e.last.Store(now)
}

// rateAdd counts n events at now on a rate of the given period (ms),
// as HAProxy's freq_ctr: while now is inside the current period the
// events add to it; past it the current count becomes the previous one
// and a new period starts where the old one ended, or at now when more
// than a whole period passed without events. (HAProxy keeps a lock in
// the start's lowest bit, so its periods start on even milliseconds, up
// to one earlier than here: no rule can tell.)
func rateAdd(w []uint64, period, now int64, n uint64) {
	if w[0] == 0 {
		w[0], w[1], w[2] = uint64(now)+1, n, 0
		return
	}
	start := int64(w[0] - 1)
	if now-start < period {
		w[1] += n
		return
	}
	w[2], w[1] = w[1], n
	start += period
	if now-start >= period {
		w[2], start = 0, now
	}
	w[0] = uint64(start) + 1
}

// rateRead is HAProxy's read_freq_ctr_period: the current period's events
// plus the previous period's weighted by the part of the current one
// still to come, that is a sliding window of one period. As HAProxy does,
// a previous count of at most one with nothing since is reported whole,
// so that rare events do not flap between 0 and 1.
func rateRead(w []uint64, period, now int64) uint64 {
	if w[0] == 0 {
		return 0
	}
	start := int64(w[0] - 1)
	curr, past := w[1], w[2]
	remain := start + period - now
	if remain > period {
		remain = period // a clock behind the period's start
	}
	if remain < 0 {
		remain += period
		if remain >= 0 {
			past = curr
		} else {
			past = 0
		}
		curr = 0
	}
	if curr == 0 && past <= 1 {
		return past
	}
	return (past*uint64(remain) + curr*uint64(period)) / uint64(period)
}
