// Package testnet holds the loopback servers that tests of several
// packages need: a listener that runs a handler on each connection.
package testnet

import (
	"net"
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
