package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/halo-lb/halo/proxy"
	"go.uber.org/zap/zapcore"
)

// An access line written as bytes is the line zap's console encoder
// writes for the "access" logger's entry, date aside (the two dates are
// microseconds apart), at every level a rule may choose; and it costs no
// allocation.
func TestAccessLinesAreTheConsoleEncodersLines(t *testing.T) {
	var out bytes.Buffer
	log, closeLog := newLogger("debug", &out)
	lines, ok := log.Core().(proxy.AccessLines)
	if !ok {
		t.Fatal("halo's log core does not take access lines as bytes")
	}
	msg := `127.0.0.1:40000 [06/Dec/2026:19:40:00.123] fe be/s1 0/0/0/1/1 200 5 - - ---- 1/1/0/0/0 0/0 "GET /v3 HTTP/1.1"`
	levels := []zapcore.Level{zapcore.DebugLevel, zapcore.InfoLevel, zapcore.WarnLevel, zapcore.ErrorLevel}
	for _, l := range levels {
		if ce := log.Named("access").Check(l, msg); ce != nil {
			ce.Write()
		}
		lines.WriteAccess(l, []byte(msg))
	}
	closeLog()
	got := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(got) != 2*len(levels) {
		t.Fatalf("%d lines, want %d:\n%s", len(got), 2*len(levels), out.String())
	}
	for i := 0; i < len(got); i += 2 {
		zapDate, zapRest, _ := strings.Cut(got[i], "\t")
		ownDate, ownRest, _ := strings.Cut(got[i+1], "\t")
		if zapRest != ownRest {
			t.Errorf("zap wrote %q, WriteAccess %q", got[i], got[i+1])
		}
		for _, d := range []string{zapDate, ownDate} {
			if _, err := time.Parse(consoleTimeLayout, d); err != nil || len(d) != len(zapDate) {
				t.Errorf("date %q: %v (zap's %q)", d, err, zapDate)
			}
		}
	}

	quiet, closeQuiet := newLogger("warn", &bytes.Buffer{})
	defer closeQuiet()
	ql := quiet.Core().(proxy.AccessLines)
	line := []byte(msg)
	if n := testing.AllocsPerRun(1000, func() {
		ql.WriteAccess(zapcore.WarnLevel, line)
		ql.WriteAccess(zapcore.InfoLevel, line) // below the level: not written
	}); n != 0 {
		t.Errorf("WriteAccess allocates %.1f times per line, want 0", n)
	}
}
