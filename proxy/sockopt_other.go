//go:build !linux

package proxy

import (
	"errors"

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
