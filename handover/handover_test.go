package handover

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/halo-lb/halo/balancer"
	"github.com/halo-lb/halo/proxy"
)

type follower struct {
	mu     sync.Mutex
	events []string
	added  uint64
	logs   []string
}

func (f *follower) AddTotals(t *proxy.Totals) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.added += t.Frontends["fe"].TotalConns
	f.events = append(f.events, fmt.Sprintf("add %d", t.Frontends["fe"].TotalConns))
}
func (f *follower) StatsReady()  { f.event("stats") }
func (f *follower) ClusterFree() { f.event("cluster") }
func (f *follower) Logf(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.logs = append(f.logs, fmt.Sprintf(format, args...))
}
func (f *follower) event(e string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.events = append(f.events, e)
}

func (f *follower) seen() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return strings.Join(f.events, ", ")
}

func totals(stot uint64) *proxy.Totals {
	return &proxy.Totals{Frontends: map[string]balancer.CounterValues{"fe": {TotalConns: stot}}}
}

// The order the new process acts in: the runtime API answers only once
// the old process's counters at its handover are in, the cluster starts
// only once the old node has left, and every counter the old process
// counted is added exactly once.
func TestFollowOrder(t *testing.T) {
	pr, pw := io.Pipe()
	w := NewWriter(pw)
	f := &follower{}
	done := make(chan struct{})
	go func() {
		Follow(NewReader(pr), totals(10), f, time.Minute)
		close(done)
	}()
	send := func(m Message) {
		t.Helper()
		if err := w.Send(m); err != nil {
			t.Fatal(err)
		}
	}
	send(Message{Kind: KindCounters, Totals: totals(15)})
	send(Message{Kind: KindClusterLeft})
	send(Message{Kind: KindFinal, PID: 7, Totals: totals(18)})
	pw.Close()
	<-done
	if got, want := f.seen(), "add 5, stats, cluster, add 3"; got != want {
		t.Errorf("events %q, want %q", got, want)
	}
	if f.added != 8 {
		t.Errorf("added %d, want the 8 counted after the first message", f.added)
	}
}

// If the old process dies before it hands over, the pipe ends: the
// runtime API answers and the cluster starts (its node died with it).
// If it only stalls, the runtime API answers after the wait, and the
// cluster still waits for the node to have left.
func TestFollowWhenTheOldProcessFails(t *testing.T) {
	pr, pw := io.Pipe()
	f := &follower{}
	done := make(chan struct{})
	go func() {
		Follow(NewReader(pr), totals(1), f, 50*time.Millisecond)
		close(done)
	}()
	deadline := time.Now().Add(5 * time.Second)
	for f.seen() != "stats" {
		if time.Now().After(deadline) {
			t.Fatalf("events %q, want the runtime API released after the wait", f.seen())
		}
		time.Sleep(10 * time.Millisecond)
	}
	pw.Close()
	<-done
	if got := f.seen(); got != "stats, cluster" {
		t.Errorf("events %q, want stats then cluster", got)
	}
}

func TestVersionIsChecked(t *testing.T) {
	r := NewReader(strings.NewReader(`{"v":2,"kind":"state"}` + "\n"))
	if _, err := r.Next(); err == nil || !strings.Contains(err.Error(), "unknown message version 2: this halo reads 1") {
		t.Errorf("a version 2 message: %v", err)
	}
	r = NewReader(strings.NewReader(`{"v":1,"kind":"state","pid":3,"ids":{"proxies":{"be":2},"servers":{"be":{"s1":1}}}}` + "\n"))
	m, err := r.Next()
	if err != nil || m.PID != 3 || m.IDs.Proxies["be"] != 2 || m.IDs.Servers["be"]["s1"] != 1 {
		t.Errorf("%+v, %v", m, err)
	}
	if _, err := r.Next(); err != io.EOF {
		t.Errorf("after the last message: %v, want io.EOF", err)
	}
}
