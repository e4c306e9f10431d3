package health

import (
	"bufio"
	"context"
	"net"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/halo-lb/halo/config"
)

// lineServer answers each line a client sends with answer(line), and closes
// the connection after the first answer when closeAfter is set.
func lineServer(t *testing.T, closeAfter bool, answer func(string) string) string {
	t.Helper()
	return serveConns(t, func(c net.Conn) {
		r := bufio.NewReader(c)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			c.Write([]byte(answer(line)))
			if closeAfter {
				return
			}
		}
	}).Addr().String()
}

func redisLike(line string) string {
	if line == "PING\r\n" {
		return "+PONG\r\n"
	}
	if line == "\x01\x02\n" {
		return "\xca\xfe\r\n"
	}
	return "-ERR unknown command\r\n"
}

func TestTCPScriptChecker(t *testing.T) {
	open := lineServer(t, false, redisLike)
	closing := lineServer(t, true, redisLike)
	_, otherPort, _ := net.SplitHostPort(open)
	port, _ := strconv.Atoi(otherPort)
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	refused := ln.Addr().String()
	ln.Close()

	send := func(s string) config.TCPStep { return config.TCPStep{Action: "send", Data: []byte(s)} }
	expectString := func(s string, not bool) config.TCPStep {
		return config.TCPStep{Action: "expect", Data: []byte(s), Pattern: s, Not: not}
	}
	connect := config.TCPStep{Action: "connect"}
	cases := []struct {
		name   string
		addr   string
		script []config.TCPStep
		want   Status
	}{
		{"ping pong", open, []config.TCPStep{connect, send("PING\r\n"), expectString("+PONG", false)}, L7OK},
		{"two exchanges", open, []config.TCPStep{connect, send("PING\r\n"), expectString("+PONG", false), send("PING\r\n"), expectString("+PONG\r\n", false)}, L7OK},
		{"wrong answer, server closes", closing, []config.TCPStep{connect, send("INFO\r\n"), expectString("+PONG", false)}, L7RSP},
		{"wrong answer, server waits", open, []config.TCPStep{connect, send("INFO\r\n"), expectString("+PONG", false)}, L7TOUT},
		{"rstring", open, []config.TCPStep{connect, send("PING\r\n"), {Action: "expect", Regexp: regexp.MustCompile(`^\+P[A-Z]+`), Pattern: `^\+P[A-Z]+`}}, L7OK},
		{"binary", open, []config.TCPStep{connect, {Action: "send", Data: []byte{1, 2, '\n'}}, {Action: "expect", Data: []byte{0xca, 0xfe}, Pattern: "cafe"}}, L7OK},
		{"not -ERR, server closes", closing, []config.TCPStep{connect, send("PING\r\n"), expectString("-ERR", true)}, L7OK},
		{"not -ERR, it came", closing, []config.TCPStep{connect, send("INFO\r\n"), expectString("-ERR", true)}, L7RSP},
		{"connect port", refused, []config.TCPStep{{Action: "connect", Port: port}, send("PING\r\n"), expectString("+PONG", false)}, L7OK},
		{"refused", refused, []config.TCPStep{connect, send("PING\r\n")}, L4CON},
	}
	for _, tc := range cases {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		r := TCPScriptChecker{Script: tc.script}.Check(ctx, tc.addr)
		cancel()
		if r.Status != tc.want || r.OK != (tc.want == L7OK) {
			t.Errorf("%s: %s ok=%v (%s), want %s", tc.name, r.Status, r.OK, r.Desc, tc.want)
		}
		if tc.want != L7OK && !strings.Contains(r.Desc, "rule") {
			t.Errorf("%s: description %q does not name the rule", tc.name, r.Desc)
		}
	}
}
