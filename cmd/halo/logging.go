package main

import (
	"time"

	"go.uber.org/zap/buffer"
	"go.uber.org/zap/zapcore"
)

// consoleTimeLayout is zapcore.ISO8601TimeEncoder's layout: the date of
// every line of halo's log.
const consoleTimeLayout = "2006-01-02T15:04:05.000Z0700"

// consoleCore is halo's log core, the console encoder's over the
// buffered stderr, that also writes access lines itself
// (proxy.AccessLines): the same bytes the console encoder writes for an
// "access" logger's entry without fields (date, level, name and message,
// tab-separated), without the string, the entry and the four allocations
// of the encoder's (the date's string, three values boxed) that a line
// through zap cost per request.
type consoleCore struct {
	zapcore.Core
	out zapcore.WriteSyncer
}

var accessLinePool = buffer.NewPool()

// WriteAccess writes an access line at level.
func (c *consoleCore) WriteAccess(level zapcore.Level, line []byte) {
	if !c.Enabled(level) {
		return
	}
	b := accessLinePool.Get()
	b.AppendTime(time.Now(), consoleTimeLayout)
	b.AppendByte('\t')
	b.AppendString(level.CapitalString())
	b.AppendString("\taccess\t")
	_, _ = b.Write(line)
	b.AppendByte('\n')
	_, _ = c.out.Write(b.Bytes())
	b.Free()
}
