package proxy

import (
	"sync"
	"testing"
	"time"
)

func TestWorkersReuseIdleGoroutines(t *testing.T) {
	ws := newWorkers()
	defer ws.close(time.Now().Add(5 * time.Second))
	var wg sync.WaitGroup
	for range 100 {
		wg.Add(1)
		ws.run(wg.Done)
		wg.Wait()
		// Let the worker reach the idle list before the next job.
		waitFor(t, time.Second, "an idle worker", func() bool { return len(ws.idle) == 1 })
	}
	if n := ws.live.Load(); n != 1 {
		t.Fatalf("%d workers ran 100 jobs one after another, want 1", n)
	}
}

func TestWorkersRunConcurrentJobsAtOnce(t *testing.T) {
	ws := newWorkers()
	defer ws.close(time.Now().Add(5 * time.Second))
	// Ten jobs that only finish together: each needs a worker of its own.
	var started, release sync.WaitGroup
	started.Add(10)
	release.Add(1)
	for range 10 {
		ws.run(func() { started.Done(); release.Wait() })
	}
	done := make(chan struct{})
	go func() { started.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("jobs handed to workers did not all start")
	}
	release.Done()
	waitFor(t, time.Second, "ten idle workers", func() bool { return len(ws.idle) == 10 })
}

func TestWorkersSweepRetiresOnlyLongIdleOnes(t *testing.T) {
	ws := newWorkers()
	var release sync.WaitGroup
	release.Add(1)
	for range 3 {
		ws.run(release.Wait)
	}
	release.Done()
	waitFor(t, time.Second, "three idle workers", func() bool { return len(ws.idle) == 3 })
	ws.sweep(time.Now())
	if n := ws.live.Load(); n != 3 {
		t.Fatalf("sweep retired workers idle for less than %s: %d left", workerIdleTimeout, n)
	}
	ws.sweep(time.Now().Add(workerIdleTimeout + time.Second))
	waitFor(t, time.Second, "the idle workers to exit", func() bool { return ws.live.Load() == 0 })
	if len(ws.idle) != 0 {
		t.Fatalf("%d retired workers still listed as idle", len(ws.idle))
	}
}

func TestWorkersCloseWaitsForBusyOnes(t *testing.T) {
	ws := newWorkers()
	finish := make(chan struct{})
	ws.run(func() { <-finish })
	ws.run(func() {})
	time.AfterFunc(50*time.Millisecond, func() { close(finish) })
	ws.close(time.Now().Add(5 * time.Second))
	if n := ws.live.Load(); n != 0 {
		t.Fatalf("%d workers left after close", n)
	}
}

// A worker that finishes its job after close has given up waiting for it
// (the deadline already past, as under hard-stop-after) must not stay
// behind idle: nothing would ever retire it.
func TestWorkersFinishingAfterCloseExit(t *testing.T) {
	ws := newWorkers()
	finish := make(chan struct{})
	for range 8 {
		ws.run(func() { <-finish })
	}
	ws.run(func() {})
	waitFor(t, time.Second, "the short job's worker to go idle", func() bool { return len(ws.idle) == 1 })
	ws.close(time.Now()) // already past: returns with eight still busy
	if n := len(ws.idle); n != 0 {
		t.Fatalf("close with a past deadline left %d idle workers", n)
	}
	close(finish)
	waitFor(t, time.Second, "the busy workers to exit after close", func() bool { return ws.live.Load() == 0 })
	if n := len(ws.idle); n != 0 {
		t.Fatalf("%d workers idle after close", n)
	}
}
