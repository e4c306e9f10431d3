package fence

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"
)

// tail keeps exactly the last max bytes of any sequence of writes, and
// counts the others.
func TestTailKeepsTheEnd(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := 0; round < 200; round++ {
		const max = 64
		tl := newTail(max)
		var all bytes.Buffer
		for w := rng.IntN(20); w > 0; w-- {
			p := make([]byte, rng.IntN(3*max))
			for i := range p {
				p[i] = byte('a' + rng.IntN(26))
			}
			all.Write(p)
			if n, err := tl.Write(p); n != len(p) || err != nil {
				t.Fatalf("Write = %d, %v", n, err)
			}
		}
		want := all.String()
		if len(want) > max {
			want = fmt.Sprintf("[%d bytes of output dropped]\n%s", len(want)-max, want[len(want)-max:])
		}
		if got := tl.String(); got != want {
			t.Fatalf("round %d: String = %q, want %q", round, got, want)
		}
		if cap(tl.buf) != 2*max {
			t.Fatalf("the buffer grew to %d", cap(tl.buf))
		}
	}
}
