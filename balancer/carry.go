package balancer

import (
	"sync/atomic"
	"time"
)

// This file is what a binary upgrade carries from the old process to the
// new one: the cumulative counters, as values that can be read, subtracted
// and added (the JSON names are show stat's columns), and a server's state
// as the old process left it.

// CounterValues are a frontend's or backend's cumulative counters and
// maxima at one moment.
type CounterValues struct {
	TotalConns  uint64    `json:"stot,omitempty"`
	BytesIn     uint64    `json:"bin,omitempty"`
	BytesOut    uint64    `json:"bout,omitempty"`
	Requests    uint64    `json:"req_tot,omitempty"`
	Denied      uint64    `json:"denied,omitempty"`
	DeniedReq   uint64    `json:"dreq,omitempty"`
	DeniedResp  uint64    `json:"dresp,omitempty"`
	DeniedConn  uint64    `json:"dcon,omitempty"`
	DeniedSess  uint64    `json:"dses,omitempty"`
	Errors      uint64    `json:"ereq,omitempty"`
	HTTPStatus  [6]uint64 `json:"hrsp"` // other, 1xx .. 5xx
	TLSSessions uint64    `json:"ssl_sess,omitempty"`
	TLSReused   uint64    `json:"ssl_reused_sess,omitempty"`
	TLSFailed   uint64    `json:"ssl_failed_handshake,omitempty"`
	MaxConns    int64     `json:"smax,omitempty"`
	MaxQueued   int64     `json:"qmax,omitempty"`
}

func (c *Counters) cumulative() []*atomic.Uint64 {
	return []*atomic.Uint64{&c.TotalConns, &c.BytesIn, &c.BytesOut, &c.Requests, &c.Denied, &c.DeniedReq,
		&c.DeniedResp, &c.DeniedConn, &c.DeniedSess, &c.Errors, &c.TLSSessions, &c.TLSReused, &c.TLSFailed}
}

func (v *CounterValues) cumulative() []*uint64 {
	return []*uint64{&v.TotalConns, &v.BytesIn, &v.BytesOut, &v.Requests, &v.Denied, &v.DeniedReq,
		&v.DeniedResp, &v.DeniedConn, &v.DeniedSess, &v.Errors, &v.TLSSessions, &v.TLSReused, &v.TLSFailed}
}

// Values reads the counters. Each is read atomically, not all at one
// instant: the data path may add to some while they are read.
func (c *Counters) Values() CounterValues {
	var v CounterValues
	dst := v.cumulative()
	for i, u := range c.cumulative() {
		*dst[i] = u.Load()
	}
	for i := range c.HTTPStatus {
		v.HTTPStatus[i] = c.HTTPStatus[i].Load()
	}
	v.MaxConns, v.MaxQueued = c.MaxConns.Load(), c.MaxQueued.Load()
	return v
}

// Add adds the cumulative counters of v and takes its maxima where they
// are higher.
func (c *Counters) Add(v CounterValues) {
	src := v.cumulative()
	for i, u := range c.cumulative() {
		if *src[i] != 0 {
			u.Add(*src[i])
		}
	}
	for i := range c.HTTPStatus {
		c.HTTPStatus[i].Add(v.HTTPStatus[i])
	}
	c.MaxConns.Note(v.MaxConns)
	c.MaxQueued.Note(v.MaxQueued)
}

// Since is what the counters gained from prev to v, each at least 0 (a
// "clear counters" in between gives what was counted after it, at most);
// the maxima are v's.
func (v CounterValues) Since(prev CounterValues) CounterValues {
	d := v
	out, old := d.cumulative(), prev.cumulative()
	for i := range out {
		*out[i] = sub(*out[i], *old[i])
	}
	for i := range d.HTTPStatus {
		d.HTTPStatus[i] = sub(v.HTTPStatus[i], prev.HTTPStatus[i])
	}
	return d
}

func sub(a, b uint64) uint64 {
	if a < b {
		return 0
	}
	return a - b
}

// TimingValues are a server's timing histograms at one moment.
type TimingValues struct {
	Count uint64 `json:"count,omitempty"`
	// Kinds are the queue, connect, response and total times.
	Kinds [numTimings]HistogramValues `json:"kinds"`
}

// HistogramValues is one timing histogram: the sum and maximum in
// nanoseconds, and the observations above each bucket's bound.
type HistogramValues struct {
	Sum   int64                      `json:"sum_ns,omitempty"`
	Max   int64                      `json:"max_ns,omitempty"`
	Above [len(TimingBuckets)]uint64 `json:"above"`
}

// ServerValues are a server's cumulative counters, maxima and timings at
// one moment, with the time it spent DOWN before its last change.
type ServerValues struct {
	TotalConns   uint64       `json:"stot,omitempty"`
	BytesIn      uint64       `json:"bin,omitempty"`
	BytesOut     uint64       `json:"bout,omitempty"`
	ConnErrors   uint64       `json:"econ,omitempty"`
	RespErrors   uint64       `json:"eresp,omitempty"`
	DeniedResp   uint64       `json:"dresp,omitempty"`
	Retries      uint64       `json:"wretr,omitempty"`
	Redispatch   uint64       `json:"wredis,omitempty"`
	HTTPStatus   [6]uint64    `json:"hrsp"`
	ChecksDown   uint64       `json:"chkdown,omitempty"`
	ChecksFailed uint64       `json:"chkfail,omitempty"`
	MaxServed    int64        `json:"smax,omitempty"`
	MaxQueued    int64        `json:"qmax,omitempty"`
	Downtime     int64        `json:"downtime_ns,omitempty"`
	Timings      TimingValues `json:"timings"`
}

func (s *Server) cumulative() []*atomic.Uint64 {
	return []*atomic.Uint64{&s.TotalConns, &s.BytesIn, &s.BytesOut, &s.ConnErrors, &s.RespErrors, &s.DeniedResp,
		&s.Retries, &s.Redispatch, &s.ChecksDown, &s.ChecksFailed}
}

func (v *ServerValues) cumulative() []*uint64 {
	return []*uint64{&v.TotalConns, &v.BytesIn, &v.BytesOut, &v.ConnErrors, &v.RespErrors, &v.DeniedResp,
		&v.Retries, &v.Redispatch, &v.ChecksDown, &v.ChecksFailed}
}

// Values reads the server's counters (each atomically, as Counters.Values).
// Downtime is the time DOWN before the last change only: the current DOWN
// period is in the server's state (its last change), carried apart.
func (s *Server) Values() ServerValues {
	var v ServerValues
	dst := v.cumulative()
	for i, u := range s.cumulative() {
		*dst[i] = u.Load()
	}
	for i := range s.HTTPStatus {
		v.HTTPStatus[i] = s.HTTPStatus[i].Load()
	}
	v.MaxServed, v.MaxQueued = s.MaxServed.Load(), s.MaxQueued.Load()
	v.Downtime = s.downtime.Load()
	v.Timings.Count = s.Timings.Count.Load()
	for k := range s.Timings.kinds {
		h, o := &s.Timings.kinds[k], &v.Timings.Kinds[k]
		o.Sum, o.Max = h.sum.Load(), h.max.Load()
		for i := range h.above {
			o.Above[i] = h.above[i].Load()
		}
	}
	return v
}

// AddValues adds v's cumulative counters, timings and downtime to the
// server's and takes its maxima where they are higher.
func (s *Server) AddValues(v ServerValues) {
	src := v.cumulative()
	for i, u := range s.cumulative() {
		if *src[i] != 0 {
			u.Add(*src[i])
		}
	}
	for i := range s.HTTPStatus {
		s.HTTPStatus[i].Add(v.HTTPStatus[i])
	}
	s.MaxServed.Note(v.MaxServed)
	s.MaxQueued.Note(v.MaxQueued)
	s.downtime.Add(v.Downtime)
	s.Timings.Count.Add(v.Timings.Count)
	for k := range s.Timings.kinds {
		h, o := &s.Timings.kinds[k], &v.Timings.Kinds[k]
		h.sum.Add(o.Sum)
		h.max.Note(o.Max)
		for i := range h.above {
			h.above[i].Add(o.Above[i])
		}
	}
}

// Since is ServerValues' CounterValues.Since.
func (v ServerValues) Since(prev ServerValues) ServerValues {
	d := v
	out, old := d.cumulative(), prev.cumulative()
	for i := range out {
		*out[i] = sub(*out[i], *old[i])
	}
	for i := range d.HTTPStatus {
		d.HTTPStatus[i] = sub(v.HTTPStatus[i], prev.HTTPStatus[i])
	}
	d.Downtime = max(0, v.Downtime-prev.Downtime)
	d.Timings.Count = sub(v.Timings.Count, prev.Timings.Count)
	for k := range d.Timings.Kinds {
		o, p := &d.Timings.Kinds[k], &prev.Timings.Kinds[k]
		o.Sum = max(0, o.Sum-p.Sum)
		for i := range o.Above {
			o.Above[i] = sub(o.Above[i], p.Above[i])
		}
	}
	return d
}

// Restored is a server's state as a previous process left it: what the
// server-state file says, and for a binary upgrade the exact time of its
// last change.
type Restored struct {
	Up, NoLB bool
	Admin    Admin
	// ConfigDisabled is whether the previous configuration had the server
	// "disabled"; ConfigWeight its weight there, UserWeight the runtime
	// weight. The configuration applied next keeps the runtime admin
	// state and weight where it did not change them (SetConfigAdmin,
	// SetConfigWeight): HAProxy's rule for a server-state file.
	ConfigDisabled bool
	ConfigWeight   int
	UserWeight     int
	LastChange     time.Time
}

// Restore gives a server created for a configuration not yet applied the
// state a previous process left it in. It has no effect on a server that
// a configuration uses already: only a start restores.
func (s *Server) Restore(r Restored) {
	if s.configWeight.Load() >= 0 {
		return
	}
	s.up.Store(r.Up)
	s.noLB.Store(r.NoLB)
	s.admin.Store(uint32(r.Admin))
	s.configDisabled.Store(0)
	if r.ConfigDisabled {
		s.configDisabled.Store(1)
	}
	s.configWeight.Store(int32(min(max(r.ConfigWeight, 0), MaxWeight)))
	s.userWeight.Store(int32(min(max(r.UserWeight, 0), MaxWeight)))
	if !r.LastChange.IsZero() {
		s.lastChange.Store(r.LastChange.UnixNano())
	}
}

// SetLastChange sets when the server last went UP or DOWN, for a server
// whose state a previous process kept.
func (s *Server) SetLastChange(t time.Time) { s.lastChange.Store(t.UnixNano()) }
