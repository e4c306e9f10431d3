package stats

import (
	"flag"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/halo-lb/halo/config"
	"github.com/halo-lb/halo/proxy"
	"github.com/halo-lb/halo/sticktable"
)

var _ StickTables = (*proxy.Proxy)(nil)

var updateTables = flag.Bool("update-tables", false, "rewrite testdata/tables.golden from the real HAProxy's answers")

// transcript is a session's commands and masked answers, as
// testdata/tables.golden holds them.
func transcript(ask func(string) string) string {
	var b strings.Builder
	for _, c := range tableSession {
		fmt.Fprintf(&b, "> %s\n%s", c, masked(ask(c)))
	}
	return b.String()
}

const tablesYAML = `
global:
  stats:
    socket:
      - {path: "{{DIR}}/admin.sock", mode: "0600", level: admin}
      - {path: "{{DIR}}/oper.sock", mode: "0660", level: operator}
      - {path: "{{DIR}}/user.sock", mode: "0666", level: user}
defaults:
  mode: http
  timeout: {connect: 1s, client: 5s, server: 5s}
frontends:
  fe:
    bind: ["127.0.0.1:0"]
    default_backend: be
backends:
  be:
    stick-table: {{BE}}
    servers: [{name: s1, address: "127.0.0.1:9"}]
  t2:
    stick-table: type string len 8 size 10 store gpc0
    servers: [{name: s1, address: "127.0.0.1:9"}]
  t3:
    stick-table: type integer size 10 expire 5m nopurge
    servers: [{name: s1, address: "127.0.0.1:9"}]
  t4:
    stick-table: type ipv6 size 10 store http_req_rate(5s)
    servers: [{name: s1, address: "127.0.0.1:9"}]
  t5:
    stick-table: type binary len 4 size 10 store gpc1
    servers: [{name: s1, address: "127.0.0.1:9"}]
`

const beTable = "type ip size 1k expire 30s store server_id,gpc0,gpc0_rate(10s),conn_cnt,conn_rate(10s),conn_cur,http_req_cnt,http_req_rate(10s),http_err_cnt,bytes_in_cnt,bytes_out_rate(1m)"

// tableSession is the commands the differential test runs, in order, on
// halo and on HAProxy: creating entries, dumping, filtering, clearing,
// and the errors.
var tableSession = []string{
	"show table",
	"set table be key 127.0.0.1 data.gpc0 3 data.http_req_rate 4 data.conn_cur 2 data.server_id 1",
	"set table be key 10.0.0.2 data.http_req_cnt 9",
	"set table be key 10.0.0.10",
	"show table be",
	"show table be key 127.0.0.1",
	"show table be key 10.9.9.9",
	"show table be data.http_req_cnt gt 2",
	"show table be data.gpc0 eq 3 data.conn_cur ge 2",
	"show table be data.gpc1 gt 2",
	"show table be data.foo gt 1",
	"show table be data.gpc0 xx 1",
	"show table be data.gpc0 gt x",
	"show table be data.gpc0",
	"show table be data.gpc0 ge 0 data.gpc0 ge 0 data.gpc0 ge 0 data.gpc0 ge 0 data.gpc0 ge 0",
	"clear table be data.gpc0 gt 1 data.nope",
	"show table be foo",
	"show table be key",
	"show table nope",
	"set table be key 1.2.3.4 data.gpc0 x",
	"set table be key 1.2.3.4 data.foo 1",
	"set table be data.gpc0 1",
	"set table",
	"clear table",
	"clear table be key",
	"set table t2 key abcdefghij data.gpc0 5",
	"set table t2 key zz",
	"show table t2",
	"set table t3 key 42 data.gpc0 1",
	"set table t3 key -5",
	"set table t3 key abc",
	"show table t3",
	"set table t4 key ::1",
	"set table t4 key 127.0.0.1",
	"show table t4",
	"set table t5 key 41424344",
	"show table t5 key 41424344",
	"clear table t5 key 41424344",
	"show table t5",
	"clear table be key 10.0.0.2",
	"clear table be data.gpc0 eq 3",
	"show table be",
	"clear table be",
	"show table",
}

// masked hides what differs between two runs: entry addresses and the
// milliseconds to expiry (but not whether there is an expiry).
func masked(s string) string {
	s = regexp.MustCompile(`0x[0-9a-f]+:`).ReplaceAllString(s, "0xADDR:")
	return regexp.MustCompile(`exp=[1-9][0-9]*`).ReplaceAllString(s, "exp=N")
}

// TestTableCommands runs the session against the answers HAProxy 2.6 gave
// (recorded by TestTableCommandsMatchHAProxy -update-tables), so that it
// holds where HAProxy is not installed.
func TestTableCommands(t *testing.T) {
	r := newRig(t, tablesYAML, map[string]string{"BE": beTable})
	want, err := os.ReadFile("testdata/tables.golden")
	if err != nil {
		t.Fatal(err)
	}
	if got := transcript(func(c string) string { return r.cmd("admin.sock", c) }); got != string(want) {
		t.Errorf("the session differs from testdata/tables.golden (HAProxy 2.6's answers):\n%s", got)
	}
}

// A user sees the tables' headers only and cannot change entries; an
// operator can, as in HAProxy 2.6.
func TestTableLevels(t *testing.T) {
	r := newRig(t, tablesYAML, map[string]string{"BE": beTable})
	r.cmd("oper.sock", "set table be key 10.0.0.1 data.gpc0 1")
	if out := r.cmd("user.sock", "set table be key 10.0.0.2 data.gpc0 1"); out != "\n" {
		t.Errorf("user set: %q", out)
	}
	r.cmd("user.sock", "clear table be")
	if out := r.cmd("user.sock", "show table be"); out != "# table: be, type: ip, size:1024, used:1\n\n" {
		t.Errorf("user show: %q", out)
	}
	if out := r.cmd("user.sock", "show table be key 10.0.0.1"); out != "\n" {
		t.Errorf("user show key: %q", out)
	}
	if out := r.cmd("oper.sock", "show table be"); !strings.Contains(out, "key=10.0.0.1 ") || strings.Contains(out, "10.0.0.2") {
		t.Errorf("operator show: %q", out)
	}
	// A tracked entry cannot be removed.
	tb := r.p.StickTable("be")
	k, _ := tb.ParseKey("10.0.0.1")
	e := tb.Track(k, sticktable.Now())
	if out := r.cmd("admin.sock", "clear table be key 10.0.0.1"); out != "Entry currently in use, cannot remove\n\n" {
		t.Errorf("clear of a tracked entry: %q", out)
	}
	if out := r.cmd("admin.sock", "show table be key 10.0.0.1"); !strings.Contains(out, "use=1 ") {
		t.Errorf("a tracked entry's use: %q", out)
	}
	e.Release(sticktable.Now())
	// t3 has nopurge: once full, a new key is refused.
	for i := range 10 {
		r.cmd("admin.sock", fmt.Sprintf("set table t3 key %d", i))
	}
	if out := r.cmd("admin.sock", "set table t3 key 99"); out != "Unable to allocate a new entry\n\n" {
		t.Errorf("set in a full nopurge table: %q", out)
	}
}

// An unchanged stick-table line keeps its entries over a reload; a
// changed one starts empty; a removed section's table goes.
func TestTablesSurviveReload(t *testing.T) {
	r := newRig(t, tablesYAML, map[string]string{"BE": beTable})
	r.cmd("admin.sock", "set table be key 10.0.0.1 data.gpc0 7")
	r.cmd("admin.sock", "set table t2 key k data.gpc0 1")
	r.apply(tablesYAML)
	if out := r.cmd("admin.sock", "show table be"); !strings.Contains(out, "gpc0=7") {
		t.Errorf("after an unchanged reload: %q", out)
	}
	r.vars["BE"] = "type ip size 2k"
	r.apply(tablesYAML)
	if out := r.cmd("admin.sock", "show table be"); out != "# table: be, type: ip, size:2048, used:0\n\n" {
		t.Errorf("after a changed line: %q", out)
	}
	if out := r.cmd("admin.sock", "show table t2"); !strings.Contains(out, "key=k ") {
		t.Errorf("t2 lost its entries: %q", out)
	}
	r.apply(strings.Replace(tablesYAML, "    stick-table: type string len 8 size 10 store gpc0\n", "", 1))
	if out := r.cmd("admin.sock", "show table t2"); out != "No such table\n\n" {
		t.Errorf("a removed table: %q", out)
	}
}

// The same session on the real HAProxy 2.6 prints the same, byte for
// byte once addresses and expiry times are masked. The table list is
// sorted by name in halo; HAProxy lists tables last declared first, so
// its configuration declares them in reverse order.
func TestTableCommandsMatchHAProxy(t *testing.T) {
	ask := startHAProxy(t, fmt.Sprintf("global\n  stats socket {{SOCK}} mode 600 level admin\ndefaults\n  mode http\n  timeout connect 1s\n  timeout client 5s\n  timeout server 5s\n"+
		"backend t5\n  stick-table type binary len 4 size 10 store gpc1\n"+
		"backend t4\n  stick-table type ipv6 size 10 store http_req_rate(5s)\n"+
		"backend t3\n  stick-table type integer size 10 expire 5m nopurge\n"+
		"backend t2\n  stick-table type string len 8 size 10 store gpc0\n"+
		"backend be\n  stick-table %s\n", beTable))
	if *updateTables {
		if err := os.WriteFile("testdata/tables.golden", []byte(transcript(ask)), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	r := newRig(t, tablesYAML, map[string]string{"BE": beTable})
	for _, c := range tableSession {
		want, got := masked(ask(c)), masked(r.cmd("admin.sock", c))
		if got != want {
			t.Errorf("%s:\nhalo:    %q\nHAProxy: %q", c, got, want)
		}
	}
}

// FuzzTableCommands runs arbitrary table commands on a proxy with every
// key type: nothing may panic, and every answer is whole lines.
func FuzzTableCommands(f *testing.F) {
	for _, c := range tableSession {
		f.Add(c)
	}
	f.Add("set table t2 key  data.gpc0 -1 data.gpc0")
	f.Add("show table be data.gpc0 gt 1 foo") // HAProxy reads past the word's end here
	f.Add("show table be data.gpc0 gt 1 data.gpc0 gt 1 data.gpc0 gt 1 data.gpc0 gt 1 data.gpc0 gt 1")
	r := newRig(f, tablesYAML, map[string]string{"BE": beTable})
	f.Fuzz(func(t *testing.T, line string) {
		words := strings.Fields(line)
		if len(words) < 2 || words[1] != "table" {
			return
		}
		for _, level := range []config.Level{config.LevelUser, config.LevelAdmin} {
			out := r.s.Exec(words, level, &session{s: r.s, level: level})
			if len(out) > 0 && out[len(out)-1] != '\n' {
				t.Fatalf("%q: the answer does not end a line: %q", words, out)
			}
		}
	})
}
