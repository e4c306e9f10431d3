package proxy

import (
	"sync/atomic"
	"time"
)

// workers runs connection handlers on goroutines that outlive one
// connection. A new goroutine starts with a small stack and grows it,
// copying, while a session dials and splices: with a new connection per
// request that growth was 6% of halo's CPU. A worker keeps its grown stack
// for the next connection.
//
// Handing work over never waits: a worker is taken only if one is idle,
// else a new one starts; a worker that finds the idle list full exits.
// Workers idle for longer than workerIdleTimeout are retired by sweep.
type workers struct {
	idle   chan *worker // FIFO: the head has waited longest
	live   atomic.Int64 // worker goroutines running
	closed atomic.Bool
}

type worker struct {
	job       chan func() // a nil job retires the worker
	idleSince time.Time
}

// maxIdleWorkers bounds the goroutines kept waiting for work, and with
// them the memory of their stacks.
const maxIdleWorkers = 1024

// workerIdleTimeout is how long a worker may wait for a job before sweep
// retires it, so that a burst of connections does not leave its
// goroutines behind for long.
const workerIdleTimeout = 10 * time.Second

func newWorkers() *workers {
	return &workers{idle: make(chan *worker, maxIdleWorkers)}
}

// run runs job on an idle worker, or on a new one.
func (ws *workers) run(job func()) {
	select {
	case w := <-ws.idle:
		w.job <- job // never blocks: an idle worker's one-slot buffer is empty
	default:
		w := &worker{job: make(chan func(), 1)}
		ws.live.Add(1)
		go w.loop(ws, job)
	}
}

func (w *worker) loop(ws *workers, job func()) {
	defer ws.live.Add(-1)
	for job != nil {
		job()
		if ws.closed.Load() {
			return
		}
		w.idleSince = time.Now()
		select {
		case ws.idle <- w:
		default:
			return // enough workers wait already
		}
		if ws.closed.Load() {
			// close may have emptied the list before this worker joined
			// it, and will not look again once its deadline has passed:
			// empty it here, this worker included.
			ws.retireIdle()
		}
		job = <-w.job
	}
}

// sweep retires the workers that have been idle for longer than the
// timeout. Being a FIFO, the idle list has the longest waiting at its head.
func (ws *workers) sweep(now time.Time) {
	for range len(ws.idle) {
		var w *worker
		select {
		case w = <-ws.idle:
		default:
			return
		}
		if now.Sub(w.idleSince) < workerIdleTimeout {
			select {
			case ws.idle <- w:
			default:
				w.job <- nil // the list filled meanwhile
			}
			return
		}
		w.job <- nil
	}
}

// close retires every worker once its job is done: the idle ones now,
// busy ones when they finish (even after close has returned). It returns
// once none is left, or when deadline passes; a deadline already past
// still retires the idle ones.
func (ws *workers) close(deadline time.Time) {
	ws.closed.Store(true)
	for {
		ws.retireIdle()
		if ws.live.Load() == 0 || !time.Now().Before(deadline) {
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// retireIdle hands a nil job to every idle worker. Each worker is taken
// from the list once, by run or here, so each gets exactly one message.
func (ws *workers) retireIdle() {
	for {
		select {
		case w := <-ws.idle:
			w.job <- nil
		default:
			return
		}
	}
}
