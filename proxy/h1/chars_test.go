package h1

import "testing"

// TestValueRun holds the word-at-a-time scan to the table, for every byte
// at every position of a word.
func TestValueRun(t *testing.T) {
	for c := 0; c < 256; c++ {
		for pos := 0; pos < 16; pos++ {
			p := []byte("abcdefghijklmnopqrstuvwx")
			p[pos] = byte(c)
			want := 0
			for want < len(p) && isFieldValue[p[want]] {
				want++
			}
			if got := valueRun(p, 0); got != want {
				t.Fatalf("byte %#x at %d: valueRun %d, table %d", c, pos, got, want)
			}
		}
	}
}
