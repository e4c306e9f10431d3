package testnet

import (
	"os"
	"strings"
	"testing"
)

// Check finds a goroutine and a descriptor left behind, and passes once
// they are gone; a lasting function's goroutine does not count.
func TestLeaksCheckFindsWhatIsLeft(t *testing.T) {
	l, err := Snapshot("github.com/halo-lb/halo/internal/testnet.lastingForTest")
	if err != nil {
		t.Fatal(err)
	}
	stop, stopLasting := make(chan struct{}), make(chan struct{})
	go func() { <-stop }()
	go lastingForTest(stopLasting)
	defer close(stopLasting)
	f, err := os.Open("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	err = l.Check()
	if err == nil || !strings.Contains(err.Error(), "TestLeaksCheckFindsWhatIsLeft.func1") || !strings.Contains(err.Error(), "/proc/") {
		t.Fatalf("a goroutine and a descriptor left behind: %v", err)
	}
	if strings.Contains(err.Error(), "lastingForTest") {
		t.Errorf("the lasting goroutine was counted: %v", err)
	}
	close(stop)
	f.Close()
	if err := l.Check(); err != nil {
		t.Fatalf("after they ended: %v", err)
	}
}

func lastingForTest(stop chan struct{}) { <-stop }
