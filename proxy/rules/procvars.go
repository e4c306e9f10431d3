package rules

import (
	"sync"
	"sync/atomic"
)

// ProcVars are the process-wide variables (proc.NAME): one value per name
// that every request, connection and frontend reads and writes, as in
// HAProxy. They outlive snapshots (a reload keeps them: halo's reload is
// not a new process); the proxy owns the one set and gives it to every
// Compiler.
type ProcVars struct {
	mu   sync.Mutex
	vars map[string]*procVar
}

// NewProcVars returns an empty set.
func NewProcVars() *ProcVars { return &ProcVars{vars: map[string]*procVar{}} }

// procVar is one process-wide variable. Its value is never changed in
// place: a set stores a new one, so that a reader on another goroutine
// keeps a whole value (its bytes included) for as long as it uses it.
type procVar struct {
	p atomic.Pointer[value]
}

// of returns the variable called name, made on first use.
func (pv *ProcVars) of(name string) *procVar {
	pv.mu.Lock()
	defer pv.mu.Unlock()
	v, ok := pv.vars[name]
	if !ok {
		v = &procVar{}
		pv.vars[name] = v
	}
	return v
}

// set stores a copy of v. It allocates the copy: setting a process-wide
// variable is the one rule that does, since other goroutines may be
// reading the value it replaces.
func (v *procVar) set(val *value) {
	c := *val
	if val.b != nil {
		c.b = append([]byte(nil), val.b...)
	}
	v.p.Store(&c)
}

func (v *procVar) unset() { v.p.Store(nil) }

// get loads the value, false when it is not set.
func (v *procVar) get(out *value) bool {
	c := v.p.Load()
	if c == nil {
		return false
	}
	*out = *c
	return true
}
