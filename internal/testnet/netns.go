//go:build linux

package testnet

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// NetNS is a named network namespace a test created with NewNetNS.
type NetNS struct {
	Name   string // as ip netns lists it
	Handle netns.NsHandle
}

var netnsSeq atomic.Int64

// NewNetNS creates a network namespace named halo-LABEL-PID-N (unique per
// process and call, so parallel tests and a leftover of a crashed run do not
// collide), skipping the test without root (NeedRoot). The namespace is
// deleted by name when the test ends; everything in it (veths, addresses)
// goes with it.
func NewNetNS(t testing.TB, label string) NetNS {
	t.Helper()
	NeedRoot(t, "a network namespace")
	name := fmt.Sprintf("halo-%s-%d-%d", label, os.Getpid(), netnsSeq.Add(1))
	removeNetNS(name) // a leftover of a run whose PID this one reuses

	// netns.NewNamed moves the calling thread into the new namespace: call
	// it on a throwaway thread (see Do).
	var h netns.NsHandle
	var err error
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		h, err = netns.NewNamed(name)
	}()
	<-done
	if err != nil {
		removeNetNS(name) // NewNamed may fail after creating the file
		t.Fatalf("creating network namespace %s: %v", name, err)
	}
	t.Cleanup(func() {
		h.Close()
		if err := netns.DeleteNamed(name); err != nil {
			t.Errorf("deleting network namespace %s: %v", name, err)
		}
	})
	return NetNS{Name: name, Handle: h}
}

// removeNetNS deletes a named namespace if there is one, and its file in
// /run/netns even if nothing is mounted on it.
func removeNetNS(name string) {
	if netns.DeleteNamed(name) != nil {
		os.Remove(filepath.Join("/run/netns", name))
	}
}

// Do runs f on a goroutine whose OS thread is in the namespace, waits for
// it, and returns its error (or the error of switching). The thread is
// locked and never unlocked, so when the goroutine ends the Go runtime
// destroys the thread instead of handing it, still in the namespace, to
// other goroutines; nothing has to be switched back.
//
// Only f's own goroutine runs in the namespace: goroutines f starts run in
// the process's. Sockets and netlink handles opened by f stay bound to the
// namespace after f returns, so a test may open them in Do and use them
// from anywhere. f must not call t.Fatal (it is not the test's goroutine):
// it returns an error instead.
func (n NetNS) Do(f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := netns.Set(n.Handle); err != nil {
			errc <- fmt.Errorf("entering network namespace %s: %w", n.Name, err)
			return
		}
		errc <- f()
	}()
	return <-errc
}

// Veth creates a veth pair, name in namespace a and peer in b (which may be
// a again), and sets both ends up. Interface names have at most 15 bytes.
func Veth(t testing.TB, a NetNS, name string, b NetNS, peer string) {
	t.Helper()
	ha, err := netlink.NewHandleAt(a.Handle)
	if err != nil {
		t.Fatalf("netlink in %s: %v", a.Name, err)
	}
	defer ha.Close()
	hb, err := netlink.NewHandleAt(b.Handle)
	if err != nil {
		t.Fatalf("netlink in %s: %v", b.Name, err)
	}
	defer hb.Close()
	veth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: name},
		PeerName:      peer,
		PeerNamespace: netlink.NsFd(int(b.Handle)),
	}
	if err := ha.LinkAdd(veth); err != nil {
		t.Fatalf("adding veth %s (%s) / %s (%s): %v", name, a.Name, peer, b.Name, err)
	}
	for _, end := range []struct {
		h    *netlink.Handle
		name string
	}{{ha, name}, {hb, peer}} {
		l, err := end.h.LinkByName(end.name)
		if err != nil {
			t.Fatalf("veth end %s: %v", end.name, err)
		}
		if err := end.h.LinkSetUp(l); err != nil {
			t.Fatalf("setting %s up: %v", end.name, err)
		}
	}
}
