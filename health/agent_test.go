package health

import (
	"bytes"
	"context"
	"net"
	"testing"
	"time"
)

func TestParseAgentReply(t *testing.T) {
	for _, tc := range []struct {
		line string
		want AgentReport
		bad  bool
	}{
		{"75%\n", AgentReport{WeightPercent: 75, MaxConn: -1}, false},
		{"up 100%\r\n", AgentReport{WeightPercent: 100, Health: "up", MaxConn: -1}, false},
		{"drain,maxconn:30", AgentReport{WeightPercent: -1, Admin: "drain", MaxConn: 30}, false},
		{"DOWN # disk full\n", AgentReport{WeightPercent: -1, Health: "down", MaxConn: -1, Desc: "disk full"}, false},
		{"fail", AgentReport{WeightPercent: -1, Health: "down", MaxConn: -1}, false},
		{"stopped\tmaint", AgentReport{WeightPercent: -1, Health: "down", Admin: "maint", MaxConn: -1}, false},
		{"ready up 0%", AgentReport{WeightPercent: 0, Health: "up", Admin: "ready", MaxConn: -1}, false},
		{"", AgentReport{WeightPercent: -1, MaxConn: -1}, false},
		{"150% up", AgentReport{WeightPercent: -1, Health: "up", MaxConn: -1}, true},
		{"maxconn:x drain", AgentReport{WeightPercent: -1, Admin: "drain", MaxConn: -1}, true},
		{"hello", AgentReport{WeightPercent: -1, MaxConn: -1}, true},
	} {
		got, err := ParseAgentReply(tc.line)
		if got != tc.want || (err != nil) != tc.bad {
			t.Errorf("ParseAgentReply(%q) = %+v, %v; want %+v, error %v", tc.line, got, err, tc.want, tc.bad)
		}
	}
}

// FuzzParseAgentReply: any reply parses to values within their ranges.
func FuzzParseAgentReply(f *testing.F) {
	for _, s := range []string{"75%", "up, maxconn:10 # ok", "drain", "maint\r\n", "down#x", "%", "maxconn:", "100%%"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		r, _ := ParseAgentReply(line)
		if r.WeightPercent < -1 || r.WeightPercent > 100 || r.MaxConn < -1 {
			t.Fatalf("%q: %+v", line, r)
		}
		switch r.Health {
		case "", "up", "down":
		default:
			t.Fatalf("%q: health %q", line, r.Health)
		}
		switch r.Admin {
		case "", "ready", "drain", "maint":
		default:
			t.Fatalf("%q: admin %q", line, r.Admin)
		}
	})
}

// An agent that sends an endless line is read only up to agentReplyMax.
func TestAgentReplyBounded(t *testing.T) {
	ln := serveConns(t, func(c net.Conn) { c.Write(bytes.Repeat([]byte("x"), 1<<20)) })
	a := &Agent{spec: AgentSpec{Addr: ln.Addr().String(), Timeout: 2 * time.Second}}
	line, err := a.ask(context.Background())
	if err != nil || len(line) != agentReplyMax {
		t.Fatalf("read %d bytes, %v; want %d", len(line), err, agentReplyMax)
	}
}
