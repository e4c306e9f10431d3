// Package panics owns what halo does with a panic it recovers: the
// process-wide count of them (show info's RecoveredPanics, the metric
// halo_process_recovered_panics_total) and the one error-level line that
// reports each, with the panic's value and the stack where it struck.
//
// Where to recover is each goroutine's owner's business (a connection's
// worker, a request's handler, a health check's loop, a runtime API
// session): it releases what it held and calls Recovered with what it
// knows of the work that failed. A recovered panic is a bug in halo or in a
// library it uses; counting and logging it lets operators see it and
// report it while the process goes on serving everyone else.
//
// Concurrency: Recovered and Count may be called from any goroutine.
package panics

import (
	"runtime/debug"
	"sync/atomic"

	"go.uber.org/zap"
)

// recovered counts the panics recovered in this process since it started.
// It is process-wide on purpose: what it tells an operator (halo hit a bug)
// is about the binary, not about a frontend or a configuration.
var recovered atomic.Uint64

// Recovered counts a panic whose value is v and logs it at error level as
// msg, with fields (what the caller knows: frontend, client, backend,
// server...), the value and the stack. Call it from the deferred function
// that recovered, so that the stack still holds the frames where the panic
// struck.
func Recovered(log *zap.Logger, msg string, v any, fields ...zap.Field) {
	recovered.Add(1)
	if log == nil {
		return
	}
	if ce := log.Check(zap.ErrorLevel, msg); ce != nil {
		ce.Write(append(fields, zap.Any("panic", v), zap.ByteString("stack", debug.Stack()))...)
	}
}

// Count is how many panics this process has recovered.
func Count() uint64 { return recovered.Load() }
