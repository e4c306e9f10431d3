package stats

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/halo-lb/halo/internal/testnet"
)

const twoServers = `
global:
  stats:
    socket:
      - {path: "{{DIR}}/admin.sock", mode: "0600", level: admin}
      - {path: "{{DIR}}/oper.sock", mode: "0660", level: operator}
      - {path: "{{DIR}}/user.sock", mode: "0666", level: user}
    timeout: 2s
defaults:
  mode: http
  timeout: {connect: 1s, client: 5s, server: 5s}
frontends:
  fe:
    bind: ["127.0.0.1:0"]
    default_backend: be
backends:
  be:
    servers:
      - {name: s1, address: "{{S1}}", check: true, inter: 100ms, fall: 2}
      - {name: s2, address: "{{S2}}", check: true, inter: 100ms, fall: 2}
`

func twoServerRig(t *testing.T) (*rig, *backend, *backend) {
	s1, s2 := startBackend(t, "s1"), startBackend(t, "s2")
	r := newRig(t, twoServers, map[string]string{"S1": s1.addr(), "S2": s2.addr()})
	return r, s1, s2
}

// TestShowStatHeaderIsHAProxys compares the header with the one the real
// HAProxy (Debian's 2.6) prints, and checks that every row has as many
// fields: tools read the CSV by position.
func TestShowStatHeaderIsHAProxys(t *testing.T) {
	ask := startHAProxy(t, fmt.Sprintf("global\n  stats socket {{SOCK}} mode 600 level admin\ndefaults\n  mode http\n  timeout connect 1s\n  timeout client 5s\n  timeout server 5s\n"+
		"frontend fe\n  bind %s\n  default_backend be\nbackend be\n  server s1 127.0.0.1:9 check\n", testnet.FreeAddr(t)))
	want, _, _ := strings.Cut(ask("show stat"), "\n")
	got, _, _ := strings.Cut(string(AppendCSVHeader(nil)), "\n")
	if got != want {
		t.Fatalf("header differs from HAProxy's:\nhalo:    %s\nhaproxy: %s", got, want)
	}
	r, _, _ := twoServerRig(t)
	out := r.cmd("admin.sock", "show stat")
	header, rows, counts := csvRows(t, out)
	if len(rows) != 4 {
		t.Fatalf("want FRONTEND, s1, s2, BACKEND rows, got %d:\n%s", len(rows), out)
	}
	for key, n := range counts {
		if n != len(header) {
			t.Errorf("row %s has %d fields, the header %d", key, n, len(header))
		}
	}
}

// TestShowStatCountsAKnownScenario sends requests through a frontend and
// checks the counters show stat gives for them, then kills a server and
// sees its status follow.
func TestShowStatCountsAKnownScenario(t *testing.T) {
	r, s1, _ := twoServerRig(t)
	waitFor(t, 3*time.Second, "both servers checked UP", func() bool {
		_, rows, _ := csvRows(t, r.cmd("admin.sock", "show stat"))
		return rows["be/s1"]["check_status"] == "L4OK" && rows["be/s2"]["check_status"] == "L4OK"
	})
	const n = 10
	url := "http://" + r.frontend("fe") + "/"
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	var bodyBytes int
	for i := 0; i < n; i++ {
		resp, err := client.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		bodyBytes += len(b)
	}
	_, rows, _ := csvRows(t, r.cmd("admin.sock", "show stat"))
	fe, be := rows["fe/FRONTEND"], rows["be/BACKEND"]
	expect := func(row map[string]string, col string, want int) {
		t.Helper()
		if got, _ := strconv.Atoi(row[col]); got != want || row[col] == "" {
			t.Errorf("%s/%s %s = %q, want %d", row["pxname"], row["svname"], col, row[col], want)
		}
	}
	expect(fe, "stot", n) // one connection per request
	expect(fe, "req_tot", n)
	expect(fe, "hrsp_2xx", n)
	expect(be, "stot", n)
	expect(be, "hrsp_2xx", n)
	// bout counts the response heads too, as HAProxy's does (the
	// differential test below compares the byte counts with HAProxy's).
	if bout, _ := strconv.Atoi(be["bout"]); bout <= bodyBytes || fe["bout"] != be["bout"] {
		t.Errorf("bout: backend %s frontend %s, want the same, above the %d body bytes", be["bout"], fe["bout"], bodyBytes)
	}
	for _, s := range []string{"be/s1", "be/s2"} {
		expect(rows[s], "lbtot", n/2) // round robin
		expect(rows[s], "stot", n/2)
		expect(rows[s], "hrsp_2xx", n/2)
		if rows[s]["status"] != "UP" {
			t.Errorf("%s status %q, want UP", s, rows[s]["status"])
		}
	}
	if fe["status"] != "OPEN" || be["status"] != "UP" {
		t.Errorf("frontend %q backend %q, want OPEN and UP", fe["status"], be["status"])
	}
	s1.srv.Close()
	waitFor(t, 5*time.Second, "s1 to go DOWN", func() bool {
		_, rows, _ := csvRows(t, r.cmd("admin.sock", "show stat"))
		return rows["be/s1"]["status"] == "DOWN" && rows["be/s1"]["check_status"] == "L4CON"
	})
	_, rows, _ = csvRows(t, r.cmd("admin.sock", "show stat"))
	expect(rows["be/s1"], "chkdown", 1)
	expect(rows["be/BACKEND"], "act", 1)
	expect(rows["be/BACKEND"], "chkdown", 0) // the backend itself never went DOWN

	// With no server left, the backend is DOWN: its own transition, its
	// own last change and downtime, as HAProxy counts them.
	if out := r.cmd("admin.sock", "disable server be/s2"); out != "\n" {
		t.Fatalf("disable server be/s2: %q", out)
	}
	time.Sleep(1100 * time.Millisecond)
	_, rows, _ = csvRows(t, r.cmd("admin.sock", "show stat"))
	if rows["be/BACKEND"]["status"] != "DOWN" {
		t.Fatalf("backend with no usable server: %q", rows["be/BACKEND"]["status"])
	}
	expect(rows["be/BACKEND"], "chkdown", 1)
	expect(rows["be/BACKEND"], "lastchg", 1)
	expect(rows["be/BACKEND"], "downtime", 1)
}

// TestLevels checks that each socket's level allows what HAProxy's does:
// user reads, operator also clears counters and sets weights, admin all.
func TestLevels(t *testing.T) {
	r, _, _ := twoServerRig(t)
	cases := []struct {
		cmd     string
		allowed map[string]bool // by socket
	}{
		{"show stat", map[string]bool{"user.sock": true, "oper.sock": true, "admin.sock": true}},
		{"get weight be/s1", map[string]bool{"user.sock": true, "oper.sock": true, "admin.sock": true}},
		{"set weight be/s1 2", map[string]bool{"oper.sock": true, "admin.sock": true}},
		{"set server be/s1 weight 3", map[string]bool{"oper.sock": true, "admin.sock": true}},
		{"clear counters", map[string]bool{"oper.sock": true, "admin.sock": true}},
		{"clear counters all", map[string]bool{"admin.sock": true}},
		{"disable server be/s1", map[string]bool{"admin.sock": true}},
		{"enable server be/s1", map[string]bool{"admin.sock": true}},
		{"set server be/s1 state drain", map[string]bool{"admin.sock": true}},
		{"set maxconn global 5000", map[string]bool{"admin.sock": true}},
		{"shutdown sessions server be/s1", map[string]bool{"admin.sock": true}},
	}
	for _, c := range cases {
		for _, sock := range []string{"user.sock", "oper.sock", "admin.sock"} {
			out := r.cmd(sock, c.cmd)
			denied := strings.Contains(out, "Permission denied")
			if denied == c.allowed[sock] {
				t.Errorf("%s on %s: answered %q, allowed=%v", c.cmd, sock, out, c.allowed[sock])
			}
		}
	}
	if st := r.p.Server("be", "s1"); st.Admin().String() != "DRAIN" || st.Weight(1) != 3 {
		t.Errorf("after the admin's commands s1 is %s with weight %d, want DRAIN and 3", st.Admin(), st.Weight(1))
	}
}

// TestSocketModes checks the socket files' permission bits.
func TestSocketModes(t *testing.T) {
	r, _, _ := twoServerRig(t)
	for sock, want := range map[string]os.FileMode{"admin.sock": 0o600, "oper.sock": 0o660, "user.sock": 0o666} {
		fi, err := os.Stat(r.sock(sock))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want a socket with %v", sock, fi.Mode(), want)
		}
	}
	// A reload that changes a mode changes the file's mode, keeping the
	// socket.
	r.apply(strings.Replace(twoServers, `mode: "0666"`, `mode: "0640"`, 1))
	if fi, _ := os.Stat(r.sock("user.sock")); fi.Mode().Perm() != 0o640 {
		t.Errorf("after the reload user.sock has %v, want 0640", fi.Mode().Perm())
	}
}

// TestLineLimit refuses a line longer than 16 KiB and closes the
// connection; one of exactly 16 KiB is served.
func TestLineLimit(t *testing.T) {
	r, _, _ := twoServerRig(t)
	exact := "show backend" + strings.Repeat(" ", MaxLine-len("show backend"))
	if out := r.cmd("user.sock", exact); !strings.HasPrefix(out, "# name\nbe\n") {
		t.Fatalf("a line of exactly %d bytes: %q", MaxLine, out)
	}
	out := r.cmd("user.sock", exact+" ")
	if !strings.Contains(out, "too long") {
		t.Fatalf("a line of %d bytes: %q", MaxLine+1, out)
	}
	// In interactive mode too, and the session ends.
	c, err := net.Dial("unix", r.sock("user.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "prompt\n"+strings.Repeat("x", MaxLine+100)+"\nshow backend\n")
	all, _ := io.ReadAll(c)
	if !strings.Contains(string(all), "too long") || strings.Contains(string(all), "# name") {
		t.Fatalf("interactive: %q", all)
	}
}

// TestFraming checks HAProxy's framing byte for byte: each answer ends
// with an empty line; prompt mode writes "> " before each command.
func TestFraming(t *testing.T) {
	r, _, _ := twoServerRig(t)
	if out := r.cmd("user.sock", "show backend;get weight be/s1"); out != "# name\nbe\n\n1 (initial 1)\n\n" {
		t.Errorf("two commands: %q", out)
	}
	if out := r.cmd("admin.sock", "disable server be/s1"); out != "\n" {
		t.Errorf("a command without output: %q", out)
	}
	c, err := net.Dial("unix", r.sock("user.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "prompt\nshow backend\nquit\n")
	all, _ := io.ReadAll(c)
	if string(all) != "\n> # name\nbe\n\n> " {
		t.Errorf("prompt mode: %q", all)
	}
	if out := r.cmd("user.sock", "no such thing"); !strings.HasPrefix(out, "Unknown command") || !strings.Contains(out, "show stat") {
		t.Errorf("unknown command: %q", out)
	}
	if out := r.cmd("user.sock", "show stat be 4 -1"); strings.Count(out, "\nbe,s") != 2 || strings.Contains(out, "BACKEND") {
		t.Errorf("filter on servers of be: %q", out)
	}
}

// TestIdleAndStuckClients: an interactive session idle past stats timeout
// is closed, and a client that sends commands but never reads cannot hold
// a write forever.
func TestIdleAndStuckClients(t *testing.T) {
	r, _, _ := twoServerRig(t)
	c, err := net.Dial("unix", r.sock("user.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "prompt\n")
	start := time.Now()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	io.ReadAll(c) // returns when halo closes the idle session (stats timeout 2s)
	if d := time.Since(start); d < 1500*time.Millisecond || d > 6*time.Second {
		t.Errorf("idle session closed after %v, want about 2s", d)
	}

	old := writeTimeout
	writeTimeout = 300 * time.Millisecond
	defer func() { writeTimeout = old }()
	stuck, err := net.Dial("unix", r.sock("user.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer stuck.Close()
	io.WriteString(stuck, "prompt\n")
	_ = stuck.SetWriteDeadline(time.Now().Add(5 * time.Second))
	sent := 0
	for i := 0; i < 2000; i++ { // far more output than the socket buffers hold
		if _, err := io.WriteString(stuck, "show stat\n"); err != nil {
			break // halo gave up on the session and closed it
		}
		sent++
	}
	waitFor(t, 5*time.Second, "halo to close the session of a client that never reads", func() bool {
		_, err := io.WriteString(stuck, "show stat\n")
		return err != nil
	})
	// halo still answers others.
	if out := r.cmd("user.sock", "show backend"); !strings.HasPrefix(out, "# name") {
		t.Fatalf("after a stuck client: %q", out)
	}
}

// TestSocketMaxConn: a socket serves at most maxconn sessions at once; the
// next waits until one ends.
func TestSocketMaxConn(t *testing.T) {
	r := newRig(t, `
global:
  stats:
    socket:
      - {path: "{{DIR}}/s.sock", level: user, maxconn: 2}
defaults: {mode: http, timeout: {connect: 1s, client: 5s, server: 5s}}
frontends:
  fe: {bind: "127.0.0.1:0", default_backend: be}
backends:
  be: {servers: [{name: a, address: "127.0.0.1:9"}]}
`, nil)
	var held []net.Conn
	for range 2 {
		c, err := net.Dial("unix", r.sock("s.sock"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		io.WriteString(c, "prompt\n")
		buf := make([]byte, 3)
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
		if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "\n> " {
			t.Fatalf("interactive session: %q %v", buf, err)
		}
		held = append(held, c)
	}
	third, err := net.Dial("unix", r.sock("s.sock")) // waits in the backlog
	if err != nil {
		t.Fatal(err)
	}
	defer third.Close()
	io.WriteString(third, "show backend\n")
	_ = third.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if n, _ := third.Read(make([]byte, 64)); n != 0 {
		t.Fatal("a third session was served while two held the socket's maxconn of 2")
	}
	held[0].Close()
	_ = third.SetReadDeadline(time.Now().Add(3 * time.Second))
	out, _ := io.ReadAll(third)
	if !strings.HasPrefix(string(out), "# name\nbe\n") {
		t.Fatalf("once a session ended, the waiting one got %q", out)
	}
}
