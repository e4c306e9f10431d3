package main

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// logWatch returns each appended line once, and a line only once it has
// ended: a reload is never counted from half a line, nor twice.
func TestLogWatchReturnsEachEndedLineOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "proxy.log")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := &logWatch{path: path}
	step := func(appended string, want ...string) {
		t.Helper()
		if _, err := f.WriteString(appended); err != nil {
			t.Fatal(err)
		}
		got, err := w.lines()
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("after %q: got %q, want %q", appended, got, want)
		}
	}
	step("started\nLoading succ", "started")
	step("ess.\n", "Loading success.")
	step("")
	step("a\nb\nc", "a", "b")
	step("\n", "c")
}
