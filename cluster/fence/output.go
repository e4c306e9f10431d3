package fence

import (
	"fmt"
	"sync"
)

// OutputLimit is how much of an agent's output a Result keeps: the end,
// where the agent says why it failed.
const OutputLimit = 4096

// tail is an io.Writer that keeps the last max bytes written to it and
// counts the rest. An agent that floods its output costs a bounded amount of
// memory.
type tail struct {
	mu      sync.Mutex
	max     int
	buf     []byte // at most 2*max: trimmed to max when full
	dropped int64
}

func newTail(max int) *tail { return &tail{max: max, buf: make([]byte, 0, 2*max)} }

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := len(p)
	if len(p) > t.max {
		t.dropped += int64(len(p) - t.max)
		p = p[len(p)-t.max:]
	}
	if len(t.buf)+len(p) > cap(t.buf) {
		// Keep the last max-len(p) bytes, so that with p the buffer holds max.
		keep := t.max - len(p)
		drop := len(t.buf) - keep
		t.dropped += int64(drop)
		t.buf = append(t.buf[:0], t.buf[drop:]...)
	}
	t.buf = append(t.buf, p...)
	return n, nil
}

// String returns the kept bytes, the last max of them, after a note of how
// many were dropped before them.
func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	b := t.buf
	dropped := t.dropped
	if len(b) > t.max {
		dropped += int64(len(b) - t.max)
		b = b[len(b)-t.max:]
	}
	if dropped == 0 {
		return string(b)
	}
	return fmt.Sprintf("[%d bytes of output dropped]\n%s", dropped, b)
}
