// Package testnet holds the loopback servers that tests of several
// packages need: a listener that runs a handler on each connection.
package testnet

import (
	"net"
	"os"
	"testing"
)

// Serve listens on addr (e.g. "127.0.0.1:0") and runs handle on each
// connection in a goroutine of its own, closing the connection
// afterwards. The listener closes when the test ends.
func Serve(t testing.TB, addr string, handle func(net.Conn)) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				handle(c)
			}()
		}
	}()
	return ln
}

// SkipOrFail skips a test that lacks something it needs (a program, root),
// or fails it under HALO_INTEGRATION=1, which CI sets: there everything
// the tests need is installed, and such a test must run.
func SkipOrFail(t testing.TB, why string) {
	t.Helper()
	if os.Getenv("HALO_INTEGRATION") == "1" {
		t.Fatalf("HALO_INTEGRATION=1 and %s", why)
	}
	t.Skip(why)
}

// NeedRoot skips or fails (SkipOrFail) a test that needs root: a
// privileged socket option, a network namespace.
func NeedRoot(t testing.TB, what string) {
	t.Helper()
	if os.Geteuid() != 0 {
		SkipOrFail(t, "not root: "+what+" needs root")
	}
}
