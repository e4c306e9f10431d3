//go:build !linux

package proxy

import (
	"errors"
	"net"

	"github.com/halo-lb/halo/config"
)

// setSocketOptions: the bind socket options are Linux's.
func setSocketOptions(_ int, o config.SocketOptions, _ bool) error {
	if o != (config.SocketOptions{}) {
		return errors.New("bind socket options (v4v6, v6only, interface, transparent, freebind) need Linux")
	}
	return nil
}

// probeBind: elsewhere a listener is opened without a test bind first.
func probeBind(config.Bind) error { return nil }

// listening: elsewhere a passed socket is taken as it is.
func listening(*net.TCPListener) bool { return true }

// stopListening: elsewhere only the descriptor is closed.
func stopListening(*net.TCPListener) {}
