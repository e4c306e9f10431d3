package stats

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// TestServerCommands drives the commands that change a server and reads
// the result back in show stat, as an operator's runbook would.
func TestServerCommands(t *testing.T) {
	r, _, _ := twoServerRig(t)
	waitFor(t, 3*time.Second, "both servers checked UP", func() bool {
		_, rows, _ := csvRows(t, r.cmd("admin.sock", "show stat"))
		return rows["be/s1"]["status"] == "UP" && rows["be/s2"]["status"] == "UP"
	})
	status := func(s string) string {
		_, rows, _ := csvRows(t, r.cmd("admin.sock", "show stat"))
		return rows["be/"+s]["status"]
	}
	steps := []struct {
		cmd, server, want string
	}{
		{"set server be/s1 health down", "s1", "DOWN"},
		{"set server be/s1 health stopping", "s1", "NOLB"},
		{"set server be/s1 health up", "s1", "UP"},
		{"set server be/s1 state drain", "s1", "DRAIN"},
		{"set server be/s1 state maint", "s1", "MAINT"},
		{"set server be/s1 state ready", "s1", "UP"},
		{"set server be/s1 agent down", "s1", "DOWN (agent)"},
		{"set server be/s1 agent up", "s1", "UP"},
		{"disable server be/s2", "s2", "MAINT"},
		{"enable server be/s2", "s2", "UP"},
		{"disable health be/s2", "s2", "no check"},
		{"enable health be/s2", "s2", "UP"},
	}
	for _, st := range steps {
		if out := r.cmd("admin.sock", st.cmd); out != "\n" {
			t.Fatalf("%s: %q", st.cmd, out)
		}
		// "health up" takes effect at once; the next check may follow.
		if got := status(st.server); got != st.want {
			t.Errorf("after %q: %s is %q, want %q", st.cmd, st.server, got, st.want)
		}
	}
	for _, c := range []struct{ cmd, row, col, want string }{
		{"set maxconn server be/s1 5", "be/s1", "slim", "5"},
		{"set maxconn frontend fe 7", "fe/FRONTEND", "slim", "7"},
		{"set weight be/s2 0", "be/s2", "weight", "0"},
		{"set server be/s2 weight 3", "be/s2", "uweight", "3"},
	} {
		if out := r.cmd("admin.sock", c.cmd); out != "\n" {
			t.Fatalf("%s: %q", c.cmd, out)
		}
		_, rows, _ := csvRows(t, r.cmd("admin.sock", "show stat"))
		if rows[c.row][c.col] != c.want {
			t.Errorf("after %q: %s %s = %q, want %q", c.cmd, c.row, c.col, rows[c.row][c.col], c.want)
		}
	}
	for cmd, want := range map[string]string{
		"set server be/nope state ready":      "No such server.",
		"set server nope/s1 state ready":      "No such backend.",
		"set server be/s1 state sleeping":     "expects 'ready', 'drain' and 'maint'",
		"set weight be/s1 300":                "out of range",
		"set weight be/s1 x":                  "is not a number",
		"get weight be":                       "Require 'backend/server'.",
		"set maxconn frontend nope 5":         "No such frontend.",
		"shutdown session 0x1":                "No such session",
		"disable agent be/s1":                 "has no agent-check",
		"set maxconn server be/s1 4294967297": "to 2147483647",
		"show servers state nope":             "Can't find backend.",
	} {
		if out := r.cmd("admin.sock", cmd); !strings.Contains(out, want) {
			t.Errorf("%s: %q, want it to say %q", cmd, out, want)
		}
	}
}

// TestShowSessAndShutdownSession finds a kept-alive client in show sess
// and closes it by its ID.
func TestShowSessAndShutdownSession(t *testing.T) {
	r, _, _ := twoServerRig(t)
	c, err := net.Dial("tcp", r.frontend("fe"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	br := bufio.NewReader(c)
	if line, _ := br.ReadString('\n'); !strings.HasPrefix(line, "HTTP/1.1 200") {
		t.Fatalf("first response: %q", line)
	}
	var id string
	local := c.LocalAddr().String()
	if out := r.cmd("user.sock", "show sess"); !strings.HasPrefix(out, "Permission denied") {
		t.Errorf("show sess at level user: %q, want Permission denied (it shows clients' addresses)", out)
	}
	for _, l := range strings.Split(r.cmd("oper.sock", "show sess"), "\n") {
		if strings.Contains(l, "src="+local+" ") {
			id, _, _ = strings.Cut(l, ":")
			if !strings.Contains(l, "fe=fe") || !strings.Contains(l, "mode=http") || !strings.Contains(l, "age=") {
				t.Errorf("show sess line: %q", l)
			}
		}
	}
	if id == "" {
		t.Fatalf("the client %s is not in show sess:\n%s", local, r.cmd("oper.sock", "show sess"))
	}
	if out := r.cmd("user.sock", "shutdown session "+id); !strings.Contains(out, "Permission denied") {
		t.Fatalf("shutdown session at level user: %q", out)
	}
	if out := r.cmd("admin.sock", "shutdown session "+id); out != "\n" {
		t.Fatalf("shutdown session: %q", out)
	}
	_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
	if _, err := io.ReadAll(br); err != nil {
		t.Fatalf("the connection was not closed: %v", err)
	}
}

// TestShowErrors: a refused request shows with its offending byte.
func TestShowErrors(t *testing.T) {
	r, _, _ := twoServerRig(t)
	if out := r.cmd("user.sock", "show errors"); !strings.HasPrefix(out, "Permission denied") {
		t.Errorf("show errors at level user: %q, want Permission denied (captured requests may hold secrets)", out)
	}
	if out := r.cmd("oper.sock", "show errors"); !strings.Contains(out, "Total events captured on [") || !strings.HasSuffix(out, ": 0\n\n") {
		t.Fatalf("show errors with none: %q", out)
	}
	c, err := net.Dial("tcp", r.frontend("fe"))
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: x\r\nBad Header: 1\r\n\r\n")
	io.ReadAll(c)
	c.Close()
	out := r.cmd("oper.sock", "show errors")
	for _, want := range []string{": 1\n", "frontend fe (#", "invalid request", "src 127.0.0.1:", "status 400",
		"error at position 28", `00000  GET / HTTP/1.1\r\n`, "Bad Header: 1"} {
		if !strings.Contains(out, want) {
			t.Errorf("show errors lacks %q:\n%s", want, out)
		}
	}
	if out := r.cmd("oper.sock", "show errors fe response"); strings.Contains(out, "invalid request") {
		t.Errorf("show errors fe response shows the request:\n%s", out)
	}
}

// TestShutdownSessionsServer closes the established L4 sessions of one
// server, as HAProxy's "shutdown sessions server" does.
func TestShutdownSessionsServer(t *testing.T) {
	echo, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	go func() {
		for {
			c, err := echo.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); io.Copy(c, c) }()
		}
	}()
	r := newRig(t, `
global:
  stats:
    socket:
      - {path: "{{DIR}}/admin.sock", level: admin}
defaults:
  mode: tcp
  timeout: {connect: 1s, client: 10s, server: 10s}
frontends:
  db:
    bind: ["127.0.0.1:0"]
    default_backend: galera
backends:
  galera:
    servers:
      - {name: node1, address: "{{ECHO}}"}
`, map[string]string{"ECHO": echo.Addr().String()})
	c, err := net.Dial("tcp", r.frontend("db"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "ping\n")
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || line != "ping\n" {
		t.Fatalf("echo through halo: %q %v", line, err)
	}
	_, rows, _ := csvRows(t, r.cmd("admin.sock", "show stat"))
	if rows["galera/node1"]["scur"] != "1" {
		t.Fatalf("node1 scur %q, want 1", rows["galera/node1"]["scur"])
	}
	if out := r.cmd("admin.sock", "shutdown sessions server galera/node1"); out != "\n" {
		t.Fatalf("shutdown sessions server: %q", out)
	}
	_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
	if _, err := io.ReadAll(c); err != nil {
		t.Fatalf("the session was not closed: %v", err)
	}
	waitFor(t, 3*time.Second, "node1 scur 0", func() bool {
		_, rows, _ := csvRows(t, r.cmd("admin.sock", "show stat"))
		return rows["galera/node1"]["scur"] == "0"
	})
}
