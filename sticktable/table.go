package sticktable

import (
	"hash/maphash"
	"slices"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/halo-lb/halo/config"
)

var epoch = time.Now()

// Now is the clock tables run on: milliseconds since the process started,
// monotonic, so that a wall clock step neither expires every entry nor
// freezes a rate.
func Now() int64 { return int64(time.Since(epoch) / time.Millisecond) }

// Table is one stick table. Every method may be called from any
// goroutine.
type Table struct {
	name   string
	spec   config.StickTable
	expire int64 // ms; 0: never
	// slot is where each kind's words start in an entry's data, -1 when
	// not stored; period is each rate's period in ms.
	slot   [numData]int
	period [numData]int64
	words  int

	seed   maphash.Seed
	shards []shard
	used   atomic.Int64
}

// shard is a part of the table, with its own lock and its own share of
// the size, so that goroutines on different keys rarely meet.
type shard struct {
	mu sync.Mutex
	// m indexes the entries by key. Its keys are strings over the
	// entries' own key bytes (see insert), so that creating an entry
	// allocates no string.
	m          map[string]*Entry
	head, tail *Entry // most recent first
	free       *Entry // entries ready for a key, linked by next
	n, cap     int    // entries in m; the most it may hold
	grown      int    // entries allocated
	_          [32]byte
}

// Small tables keep one shard, so that eviction is exactly least
// recently used; large ones spread over up to maxShards.
const (
	maxShards      = 16
	minPerShard    = 1024
	firstChunk     = 16
	maxChunk       = 4096
	initialMapHint = 64
)

func newTable(name string, spec config.StickTable) *Table {
	t := &Table{name: name, spec: spec, expire: spec.Expire.Milliseconds(), seed: maphash.MakeSeed()}
	if spec.Expire > 0 && t.expire == 0 {
		t.expire = 1
	}
	for d := range t.slot {
		t.slot[d] = -1
	}
	for _, sd := range spec.Store {
		d, ok := DataOf(sd.Kind)
		if !ok || t.slot[d] >= 0 {
			continue
		}
		t.slot[d] = t.words
		if d.IsRate() {
			t.period[d] = max(sd.Period.Milliseconds(), 1)
			t.words += rateWords
		} else {
			t.words++
		}
	}
	size := max(spec.Size, 1)
	n := 1
	for n < maxShards && size/(n*2) >= minPerShard {
		n *= 2
	}
	t.shards = make([]shard, n)
	for i := range t.shards {
		s := &t.shards[i]
		s.cap = size / n
		if i < size%n {
			s.cap++
		}
		s.m = make(map[string]*Entry, min(s.cap, initialMapHint))
	}
	return t
}

// Name is the table's name, its section's.
func (t *Table) Name() string { return t.name }

// Spec is the table's configuration (a copy: the table's own is never
// changed).
func (t *Table) Spec() config.StickTable {
	s := t.spec
	s.Store = slices.Clone(s.Store)
	return s
}

// Type is the table's key type, without Spec's copy: the data path
// reads it per key.
func (t *Table) Type() config.StickType { return t.spec.Type }

// Used is how many entries the table holds.
func (t *Table) Used() int { return int(t.used.Load()) }

// Slot reports whether the table stores d, and its period for a rate.
func (t *Table) Slot(d Data) (stored bool, period time.Duration) {
	return t.slot[d] >= 0, time.Duration(t.period[d]) * time.Millisecond
}

func (t *Table) shardOf(key []byte) *shard {
	if len(t.shards) == 1 {
		return &t.shards[0]
	}
	return &t.shards[maphash.Bytes(t.seed, key)&uint64(len(t.shards)-1)]
}

func (t *Table) expired(e *Entry, now int64) bool {
	return t.expire > 0 && e.refs.Load() == 0 && now-e.last.Load() >= t.expire
}

// Get returns the entry of k, nil when there is none (or it expired). It
// neither creates nor refreshes: it is for fetches that read a value.
// The entry may be reused for another key once unreferenced; hold it only
// for the current step, or Acquire it.
func (t *Table) Get(k Key, now int64) *Entry {
	return t.lookup(k, now, false, false)
}

// Touch returns the entry of k, created if missing, and refreshes its
// expiry; nil when the key is invalid or the table is full and nothing
// can be evicted (nopurge, or every entry referenced).
func (t *Table) Touch(k Key, now int64) *Entry {
	return t.lookup(k, now, true, false)
}

// Track is Touch plus a reference: the entry is neither evicted nor
// expired until Release. It is what a session tracking a key calls.
func (t *Table) Track(k Key, now int64) *Entry {
	return t.lookup(k, now, true, true)
}

func (t *Table) lookup(k Key, now int64, create, acquire bool) *Entry {
	if !k.ok {
		return nil
	}
	key := k.bytes()
	s := t.shardOf(key)
	s.mu.Lock()
	e := s.m[string(key)]
	if e != nil && t.expired(e, now) {
		t.remove(s, e)
		e = nil
	}
	if e == nil {
		if !create {
			s.mu.Unlock()
			return nil
		}
		if e = t.take(s, now); e == nil {
			s.mu.Unlock()
			return nil
		}
		t.insert(s, e, key, now) // fresh at the front: no second chance yet
	} else if create {
		e.touch(now)
	}
	if acquire {
		e.refs.Add(1)
	}
	s.mu.Unlock()
	return e
}

// take returns an entry ready for a new key: a free one while the shard
// is under its size, else the least recently used unreferenced one,
// evicted; nil with nopurge or when every entry is referenced.
func (t *Table) take(s *shard, now int64) *Entry {
	if s.n >= s.cap {
		if t.spec.NoPurge || !t.evict(s, now) {
			return nil
		}
	}
	if s.free == nil {
		t.grow(s)
	}
	e := s.free
	s.free, e.next = e.next, nil
	e.reset(now)
	return e
}

// grow allocates entries for a shard, in chunks that double up to
// maxChunk, so that a table pays memory for what it holds and creating
// an entry allocates only at each chunk.
func (t *Table) grow(s *shard) {
	k := min(s.cap-s.grown, min(max(firstChunk, s.grown), maxChunk))
	es := make([]Entry, k)
	keys := make([]byte, k*t.spec.KeyLen)
	data := make([]uint64, k*t.words)
	kl, w := t.spec.KeyLen, t.words
	for i := range es {
		e := &es[i]
		e.t = t
		e.keybuf = keys[i*kl : (i+1)*kl : (i+1)*kl]
		e.data = data[i*w : (i+1)*w : (i+1)*w]
		e.next, s.free = s.free, e
	}
	s.grown += k
}

// evict removes one unreferenced entry, the least recently used as far
// as a second-chance walk tells: from the oldest end of the list, an
// entry updated since it was placed there is moved to the front instead
// (updates do not take the shard's lock to reorder the list).
func (t *Table) evict(s *shard, now int64) bool {
	// Two passes: the first may only clear second chances, and the
	// entries it moved are the oldest the second one finds.
	for range 2 {
		for e := s.tail; e != nil; {
			prev := e.prev
			switch {
			case e.refs.Load() > 0:
			case t.expired(e, now) || !e.used.Load():
				t.remove(s, e)
				return true
			default:
				e.used.Store(false)
				s.unlink(e)
				s.pushFront(e)
			}
			e = prev
		}
	}
	return false
}

// insert indexes e under key. The map's key is a string over e's own
// copy of the key bytes, which stay unchanged until remove deletes it
// from the map: no allocation, and no string outliving its bytes.
func (t *Table) insert(s *shard, e *Entry, key []byte, now int64) {
	e.key = e.keybuf[:copy(e.keybuf, key)]
	s.m[unsafe.String(unsafe.SliceData(e.key), len(e.key))] = e
	s.pushFront(e)
	s.n++
	t.used.Add(1)
}

func (t *Table) remove(s *shard, e *Entry) {
	delete(s.m, string(e.key))
	s.unlink(e)
	e.key = nil
	e.next, s.free = s.free, e
	s.n--
	t.used.Add(-1)
}

func (s *shard) pushFront(e *Entry) {
	e.prev, e.next = nil, s.head
	if s.head != nil {
		s.head.prev = e
	} else {
		s.tail = e
	}
	s.head = e
}

func (s *shard) unlink(e *Entry) {
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		s.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		s.tail = e.prev
	}
	e.prev, e.next = nil, nil
}

// Sweep removes the expired entries; the Registry's sweeper calls it.
func (t *Table) Sweep(now int64) int {
	if t.expire == 0 {
		return 0
	}
	return t.Clear(now, nil, true)
}

// Delete removes k's entry unless it is referenced; false when there is
// none or it is in use.
func (t *Table) Delete(k Key, now int64) bool {
	if !k.ok {
		return false
	}
	key := k.bytes()
	s := t.shardOf(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.m[string(key)]
	if e == nil || e.refs.Load() > 0 {
		return false
	}
	t.remove(s, e)
	return true
}

// EntryView is what Each and Clear show of an entry: its key written as
// "show table" writes it and as stored (a copy, for sorting as HAProxy's
// tree does: by bytes, which for integers stored big-endian is by value),
// the milliseconds to its expiry (0 without expire), and the entry itself
// for its values and references.
type EntryView struct {
	*Entry
	Key      string
	KeyBytes []byte
	Exp      int64
}

// Addr is an identifier for the entry, for "show table"'s 0x... column.
func (v *EntryView) Addr() uintptr { return uintptr(unsafe.Pointer(v.Entry)) }

func (t *Table) view(e *Entry, now int64) EntryView {
	v := EntryView{Entry: e, Key: t.formatKey(e.key), KeyBytes: append([]byte(nil), e.key...)}
	if t.expire > 0 {
		v.Exp = max(t.expire-(now-e.last.Load()), 0)
	}
	return v
}

// Each calls f with every live entry, most recent first within a shard,
// until f returns false. It holds a shard's lock while calling f: f must
// not call the table. Control path: it allocates.
func (t *Table) Each(now int64, f func(*EntryView) bool) {
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		for e := s.head; e != nil; e = e.next {
			if t.expired(e, now) {
				continue
			}
			v := t.view(e, now)
			if !f(&v) {
				s.mu.Unlock()
				return
			}
		}
		s.mu.Unlock()
	}
}

func (t *Table) matches(e *Entry, now int64, match func(*EntryView) bool) bool {
	if match == nil {
		return true
	}
	v := t.view(e, now)
	return match(&v)
}

// Clear removes the unreferenced entries match accepts (nil: all; with
// expiredOnly, only the expired ones), and returns how many it removed.
// match runs under a shard's lock and must not call the table.
func (t *Table) Clear(now int64, match func(*EntryView) bool, expiredOnly bool) int {
	n := 0
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		for e := s.head; e != nil; {
			next := e.next
			if e.refs.Load() == 0 && (!expiredOnly || t.expired(e, now)) {
				if t.matches(e, now, match) {
					t.remove(s, e)
					n++
				}
			}
			e = next
		}
		s.mu.Unlock()
	}
	return n
}

// View returns what Each would show of k's entry; false when there is
// none. Control path: it allocates.
func (t *Table) View(k Key, now int64) (EntryView, bool) {
	if !k.ok {
		return EntryView{}, false
	}
	key := k.bytes()
	s := t.shardOf(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.m[string(key)]
	if e == nil || t.expired(e, now) {
		return EntryView{}, false
	}
	return t.view(e, now), true
}
