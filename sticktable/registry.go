package sticktable

import (
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/halo-lb/halo/config"
)

// Registry holds the stick tables by section name across reloads.
// Table and Retain are for the proxy's Apply (one caller at a time);
// Tables and Lookup may be called from any goroutine and never wait.
type Registry struct {
	mu     sync.Mutex // serializes Table, Retain and Close
	tables map[string]*Table
	// view is an immutable copy of tables, sorted by name, for readers.
	view atomic.Pointer[[]*Table]

	stop chan struct{}
	done chan struct{}
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	r := &Registry{tables: map[string]*Table{}}
	r.publish()
	return r
}

// Table returns the table of section name: the one already held when spec
// is unchanged, so that its entries survive a reload, or a new empty one
// (a changed spec, key type or data, starts afresh, as HAProxy's new
// process would).
func (r *Registry) Table(name string, spec config.StickTable) *Table {
	r.mu.Lock()
	defer r.mu.Unlock()
	if t := r.tables[name]; t != nil && t.spec.Equal(&spec) {
		return t
	}
	spec.Store = slices.Clone(spec.Store)
	t := newTable(name, spec)
	r.tables[name] = t
	r.publish()
	return t
}

// Prepare returns the table a configuration being built gives section
// name: the one held when spec is unchanged, else a new empty one that is
// not held yet. Nothing changes until Install, so that a build that fails
// leaves the registry (and the runtime API's view) as it was.
func (r *Registry) Prepare(name string, spec config.StickTable) *Table {
	r.mu.Lock()
	defer r.mu.Unlock()
	if t := r.tables[name]; t != nil && t.spec.Equal(&spec) {
		return t
	}
	spec.Store = slices.Clone(spec.Store)
	return newTable(name, spec)
}

// Install makes ts, by section name, the registry's tables: those of a
// snapshot that was built and goes live. Tables not in ts are dropped.
func (r *Registry) Install(ts map[string]*Table) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.tables = make(map[string]*Table, len(ts))
	for name, t := range ts {
		r.tables[name] = t
	}
	r.publish()
}

// Retain drops every table whose name keep refuses: the sections a new
// configuration no longer has.
func (r *Registry) Retain(keep func(name string) bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for name := range r.tables {
		if !keep(name) {
			delete(r.tables, name)
		}
	}
	r.publish()
}

func (r *Registry) publish() {
	ts := make([]*Table, 0, len(r.tables))
	for _, t := range r.tables {
		ts = append(ts, t)
	}
	slices.SortFunc(ts, func(a, b *Table) int { return strings.Compare(a.name, b.name) })
	r.view.Store(&ts)
}

// Tables returns every table, sorted by name. The slice is shared: do
// not modify it.
func (r *Registry) Tables() []*Table { return *r.view.Load() }

// Lookup returns the table named name, nil when there is none.
func (r *Registry) Lookup(name string) *Table {
	ts := r.Tables()
	if i, ok := slices.BinarySearchFunc(ts, name, func(t *Table, n string) int { return strings.Compare(t.name, n) }); ok {
		return ts[i]
	}
	return nil
}

// StartSweep removes expired entries from every table every interval,
// reading the time from now (Now in production), until Close. A second
// call while one runs does nothing.
func (r *Registry) StartSweep(every time.Duration, now func() int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stop != nil {
		return
	}
	r.stop, r.done = make(chan struct{}), make(chan struct{})
	go func(stop, done chan struct{}) {
		defer close(done)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				for _, t := range r.Tables() {
					t.Sweep(now())
				}
			}
		}
	}(r.stop, r.done)
}

// Close stops the sweeper and waits for it to end. The tables stay
// usable.
func (r *Registry) Close() {
	r.mu.Lock()
	stop, done := r.stop, r.done
	r.stop, r.done = nil, nil
	r.mu.Unlock()
	if stop != nil {
		close(stop)
		<-done
	}
}
