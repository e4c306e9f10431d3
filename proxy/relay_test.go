package proxy

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// opaqueConn hides the *net.TCPConn inside, as a TLS connection or a
// PROXY-header reader would: the relay cannot splice it and must copy
// through a buffer, and it half-closes through CloseWrite.
type opaqueConn struct{ net.Conn }

func (c opaqueConn) CloseWrite() error { return c.Conn.(*net.TCPConn).CloseWrite() }

// tcpPair returns both ends of one loopback TCP connection.
func tcpPair(t *testing.T) (dialed, accepted *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	d, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	a, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close(); a.Close() })
	return d.(*net.TCPConn), a.(*net.TCPConn)
}

// The relay moves bytes both ways and carries each half-close across when
// the client side is a wrapped connection, and counts what it moved.
func TestRelayThroughWrappedConnection(t *testing.T) {
	client, clientSide := tcpPair(t)
	proxySide, server := tcpPair(t)
	wrapped := opaqueConn{clientSide}
	var activity atomic.Int64
	activity.Store(time.Now().UnixNano())
	var ended atomic.Int32
	var up, down atomic.Uint64
	upCounters, downCounters := byteCounters{&up, &up, &up}, byteCounters{&down, &down, &down}
	var wg sync.WaitGroup
	var upErr, downErr error
	wg.Add(2)
	go func() {
		defer wg.Done()
		_, upErr = copyIdle(proxySide, wrapped, time.Second, &activity, &ended, &upCounters)
	}()
	go func() {
		defer wg.Done()
		_, downErr = copyIdle(wrapped, proxySide, time.Second, &activity, &ended, &downCounters)
	}()
	client.SetDeadline(time.Now().Add(5 * time.Second))
	server.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(client, "ping")
	client.CloseWrite()
	if got, err := io.ReadAll(server); err != nil || string(got) != "ping" {
		t.Fatalf("server read %q, %v; want ping then EOF", got, err)
	}
	io.WriteString(server, "pong!")
	server.CloseWrite()
	wg.Wait()
	if upErr != nil || downErr != nil {
		t.Fatalf("relay ended with %v / %v", upErr, downErr)
	}
	// The direction that ends second leaves the FIN to the close that
	// ends the session, as serveTCP does.
	clientSide.Close()
	proxySide.Close()
	if got, err := io.ReadAll(client); err != nil || string(got) != "pong!" {
		t.Fatalf("client read %q, %v; want pong! then EOF", got, err)
	}
	if up.Load() != 3*4 || down.Load() != 3*5 {
		t.Fatalf("counted %d bytes up and %d down (each counter three times), want 12 and 15", up.Load(), down.Load())
	}
}
