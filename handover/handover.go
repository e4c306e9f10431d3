// Package handover owns what an old halo process tells the new one at a
// binary upgrade, and in which order the new one acts on it: versioned
// JSON messages, one a line, on a pipe the new process inherits. The old
// process sends the state the new one starts from (server state in
// HAProxy's server-state format, show stat's ids, its counters) before the
// new one starts; its counters again when it stops answering the runtime
// API; that its cluster node has left, when it has one; and its last
// counters when its connections have drained. It starts no process (the
// command does, with tableflip) and holds no state of its own.
package handover

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/halo-lb/halo/proxy"
	"github.com/halo-lb/halo/stats"
)

// Version is the version of the messages this halo writes; it reads only
// this one, so that an upgrade to a halo that cannot read an old one's
// messages fails before the old one lets go (see Reader.Next).
const Version = 1

// The kinds of message, in the order the old process sends them.
const (
	// KindState is the first: what the new process starts from.
	KindState = "state"
	// KindCounters comes when the old process has stopped answering on
	// the runtime API: its counters then.
	KindCounters = "counters"
	// KindClusterLeft says the old process's cluster node has stopped:
	// its VIPs released, its raft store closed.
	KindClusterLeft = "cluster-left"
	// KindFinal is the last: the counters once its connections drained.
	KindFinal = "final"
)

// Message is one line on the pipe.
type Message struct {
	Version int    `json:"v"`
	Kind    string `json:"kind"`
	// PID and Release are the sender's process id and halo version.
	PID     int    `json:"pid,omitempty"`
	Release string `json:"release,omitempty"`
	// ServersState is the server-state file of every server (state).
	ServersState string `json:"servers_state,omitempty"`
	// IDs are show stat's numbers (state).
	IDs *stats.IDs `json:"ids,omitempty"`
	// Totals are the sender's cumulative counters, absolute (state,
	// counters, final): the receiver adds what they gained since the
	// last ones it had.
	Totals *proxy.Totals `json:"totals,omitempty"`
	// Cluster says the sender runs a cluster node (state): the new
	// process starts its own only after KindClusterLeft.
	Cluster bool `json:"cluster,omitempty"`
}

// Writer sends messages; it is safe for one goroutine.
type Writer struct{ enc *json.Encoder }

// NewWriter writes messages on w.
func NewWriter(w io.Writer) *Writer { return &Writer{enc: json.NewEncoder(w)} }

// Send writes m with the current version.
func (w *Writer) Send(m Message) error {
	m.Version = Version
	if err := w.enc.Encode(m); err != nil {
		return fmt.Errorf("handover: sending %s: %w", m.Kind, err)
	}
	return nil
}

// Reader reads messages.
type Reader struct{ dec *json.Decoder }

// NewReader reads messages from r.
func NewReader(r io.Reader) *Reader {
	return &Reader{dec: json.NewDecoder(bufio.NewReaderSize(r, 64<<10))}
}

// ErrVersion is a message of a version this halo does not read.
var ErrVersion = errors.New("handover: unknown message version")

// Next reads the next message; io.EOF once the sender closed the pipe
// (it exited).
func (r *Reader) Next() (Message, error) {
	var m Message
	if err := r.dec.Decode(&m); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return m, io.EOF
		}
		return m, fmt.Errorf("handover: %w", err)
	}
	if m.Version != Version {
		return m, fmt.Errorf("%w %d: this halo reads %d", ErrVersion, m.Version, Version)
	}
	return m, nil
}

// Follower is what the new process does as the old one lets go.
type Follower interface {
	// AddTotals adds counters the old process counted since the last
	// ones added (the proxy's AddTotals).
	AddTotals(*proxy.Totals)
	// StatsReady lets the runtime API answer (Stats.Release): the old
	// process no longer does, and its counters are in.
	StatsReady()
	// ClusterFree starts the cluster node: the old process's has
	// stopped, or the old process is gone.
	ClusterFree()
	// Logf reports what happened.
	Logf(format string, args ...any)
}

// Follow acts on the messages after the first (state, whose Totals are
// base, already restored), until the old process closes the pipe: it
// adds each counters' gain, lets the runtime API answer once the old
// process's counters are in, and frees the cluster once the old node has
// left. If the old process says nothing for statsWait, the runtime API
// answers anyway (its later counters are still added). When the pipe
// ends, whatever is not done yet is done: the old process is gone.
func Follow(r *Reader, base *proxy.Totals, f Follower, statsWait time.Duration) {
	var once struct{ stats, cluster sync.Once }
	ready := func() { once.stats.Do(f.StatsReady) }
	free := func() { once.cluster.Do(f.ClusterFree) }
	timer := time.AfterFunc(statsWait, func() {
		f.Logf("the previous process sent no counters within %v: the runtime API answers without them for now", statsWait)
		ready()
	})
	defer timer.Stop()
	last := base
	for {
		m, err := r.Next()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				f.Logf("reading from the previous process: %v", err)
			}
			ready()
			free()
			return
		}
		if m.Totals != nil {
			if last != nil {
				f.AddTotals(m.Totals.Since(last))
			} else {
				f.AddTotals(m.Totals)
			}
			last = m.Totals
		}
		switch m.Kind {
		case KindCounters:
			timer.Stop()
			ready()
		case KindClusterLeft:
			free()
		case KindFinal:
			f.Logf("the previous process (pid %d) has drained its connections", m.PID)
		}
	}
}
