package rules

import (
	"fmt"
	"net/netip"
	"os"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/halo-lb/halo/config/lang"
)

// evalFormat compiles text as a rule's format and evaluates it on tx.
func evalFormat(t testing.TB, c *Compiler, tx *Txn, text string) string {
	t.Helper()
	lf, err := lang.ParseFormatText(text, lang.AtRequest)
	if err != nil {
		t.Fatalf("%q: %v", text, err)
	}
	f, err := c.compileFormat(lf)
	if err != nil {
		t.Fatalf("%q: %v", text, err)
	}
	return string(f.eval(tx))
}

// The values HAProxy 2.6.12 wrote in a redirect's Location for the same
// request (GET /b/p%C3%A9th?q=1, Host: Example.org:8080, from 127.0.0.1).
func TestURLHashesAsHAProxy(t *testing.T) {
	c := NewCompiler(testNames())
	tx := newTxn(t, "GET /b/p%C3%A9th?q=1 HTTP/1.1\r\nHost: Example.org:8080\r\n\r\n", "127.0.0.1:40000")
	got := evalFormat(t, c, tx, "%[base32]_%[base32+src,hex]_%[url32]_%[url32+src,hex]")
	if want := "347543937_14B719817F000001_2818209934_A7FA788E7F000001"; got != want {
		t.Errorf("got %s, want HAProxy's %s", got, want)
	}
	// An absolute-form target hashes its path alone, as the Host is.
	tx = newTxn(t, "GET http://Example.org:8080/b/p%C3%A9th?q=1 HTTP/1.1\r\nHost: Example.org:8080\r\n\r\n", "127.0.0.1:40000")
	if got := evalFormat(t, c, tx, "%[base32]_%[url32]"); got != "347543937_2818209934" {
		t.Errorf("absolute-form: %s", got)
	}
	// A rewritten path is hashed as rewritten; a byte from 0x80 counts
	// as C's signed char.
	if sdbm(0, []byte{0xc3}) != uint32(0xffffffc3) {
		t.Errorf("sdbm of 0xc3: %#x, want a signed char's", sdbm(0, []byte{0xc3}))
	}
	if n := testing.AllocsPerRun(100, func() { evalFormat(t, c, tx, "%[base32]") }); n > 4 {
		t.Logf("compile and eval: %.0f allocations", n)
	}
}

// The flags as HAProxy 2.6.12 applied them in a redirect's Location
// (an HTTP format): Q quotes the address and HTTP variables but not a
// sample or a port, X makes addresses and ports hexadecimal but not a
// sample, E escapes '"', '\' and ']', %o gives its flags to what follows.
func TestFormatFlagsAsHAProxy(t *testing.T) {
	c := NewCompiler(testNames())
	tx := newTxn(t, "GET /o HTTP/1.1\r\nHost: a\r\nX-A: a\"b\\c]d\r\n\r\n", "127.0.0.1:41048")
	tx.Dst = netip.MustParseAddrPort("127.0.0.1:37419")
	for _, tc := range []struct{ format, want string }{
		{"%{+Q}[src]", "127.0.0.1"},
		{"%{+Q}ci", `"127.0.0.1"`},
		{"%{+X}ci:%{+X}cp:%{+X}fp", "7F000001:A058:922B"},
		{"%{+E}[req.hdr(x-a)]", `a\"b\\c\]d`},
		{"%{+Q}HM_%{+Q}[method]_%{+X}[src]_%{+Q}ID", `"GET"_GET_127.0.0.1_""`},
		{"%{+Q}o%ci_%[src]_%cp_%HP", `"127.0.0.1"_127.0.0.1_41048_"/o"`},
		{"%{+Q,+X}o%ci_%{-X}ci_%{-Q,-X}ci", `7F000001_"127.0.0.1"_127.0.0.1`},
		{"%{+X}[req.hdr(x-absent)]%{+Q}[req.hdr(x-absent)]|%{+Q}ci", `|"127.0.0.1"`},
	} {
		if got := evalFormat(t, c, tx, tc.format); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.format, got, tc.want)
		}
	}
	lf, _ := lang.ParseFormatText("%{+X}ci:%{+X}cp %{+Q}ci %{+E}[req.hdr(x-a)]", lang.AtRequest)
	f, _ := c.compileFormat(lf)
	if n := testing.AllocsPerRun(100, func() { tx.buf = tx.buf[:0]; f.eval(tx) }); n != 0 {
		t.Errorf("flagged format: %.1f allocations", n)
	}
}

// TestUniqueID makes OpenStack's unique-id-format, checks it has
// HAProxy's shape (7F000001:A084_7F000001:922B_6B14A93D_0006:68A2 from
// 2.6.12), is made once per request, and that %ID reads it only once
// made.
func TestUniqueID(t *testing.T) {
	c := NewCompiler(testNames())
	w := `%{+X}o\ %ci:%cp_%fi:%fp_%Ts_%rt:%pid` // as haproxy.cfg writes it
	lf, err := lang.ParseLogFormat(mustWord(t, w), lang.AtRequest)
	if err != nil {
		t.Fatal(err)
	}
	uf, err := c.CompileFormat(lf)
	if err != nil {
		t.Fatal(err)
	}
	tx := newTxn(t, "GET /u HTTP/1.1\r\nHost: a\r\n\r\n", "127.0.0.1:41092")
	tx.Dst = netip.MustParseAddrPort("127.0.0.1:37419")
	tx.UniqueIDFormat = uf
	tx.Start = time.Unix(1796516157, 0)
	if got := evalFormat(t, c, tx, "[%ID]"); got != "[]" {
		t.Errorf("%%ID before the ID is made: %q", got)
	}
	id := evalFormat(t, c, tx, "%[unique-id]")
	pidHex := fmt.Sprintf("%04X", os.Getpid())
	re := regexp.MustCompile(`^7F000001:A084_7F000001:922B_6B14A93D_([0-9A-F]{4,8}):` + pidHex + `$`)
	m := re.FindStringSubmatch(id)
	if m == nil {
		t.Fatalf("unique id %q, want HAProxy's shape", id)
	}
	if again := evalFormat(t, c, tx, "%ID|%[unique-id]"); again != id+"|"+id {
		t.Errorf("made twice: %q then %q", id, again)
	}
	first, _ := strconv.ParseUint(m[1], 16, 32)
	tx.Reset(8)
	tx.UniqueIDFormat = uf
	tx.Start = time.Unix(1796516157, 0)
	next := re.FindStringSubmatch(evalFormat(t, c, tx, "%[unique-id]"))
	if n, _ := strconv.ParseUint(next[1], 16, 32); n <= first {
		t.Errorf("request numbers %d then %d", first, n)
	}
	if n := testing.AllocsPerRun(100, func() {
		tx.Reset(8)
		tx.UniqueIDFormat = uf
		tx.UniqueID()
	}); n != 0 {
		t.Errorf("making a unique ID: %.1f allocations", n)
	}
	// A format that reads the ID it makes gets none, not a recursion.
	lf, _ = lang.ParseLogFormat(mustWord(t, "a%[unique-id]b"), lang.AtRequest)
	tx.Reset(8)
	tx.UniqueIDFormat, _ = c.CompileFormat(lf)
	if id, ok := tx.UniqueID(); !ok || string(id) != "ab" {
		t.Errorf("self-reading format: %q %v", id, ok)
	}
}

// capture.req.method and capture.req.uri are the request line as
// received, after rules rewrote it (HAProxy 2.6.12 gave /c_GET_HTTP/1.1
// after set-path /rewritten).
func TestCaptureRequestLine(t *testing.T) {
	c := NewCompiler(testNames())
	p := compileRules(t, c, nil, "set-path /rewritten", "set-method PUT")
	tx := newTxn(t, "GET /c?x=1 HTTP/1.1\r\nHost: a\r\n\r\n", "127.0.0.1:41092")
	const f = "%[capture.req.uri]_%[capture.req.method]_%[capture.req.ver]_%[path]_%[method]"
	if got := evalFormat(t, c, tx, f); got != "/c?x=1_GET_HTTP/1.1_/c_GET" {
		t.Errorf("before the rules: %s", got)
	}
	p.Run(tx)
	if got := evalFormat(t, c, tx, f); got != "/c?x=1_GET_HTTP/1.1_/rewritten_PUT" {
		t.Errorf("after the rules: %s", got)
	}
	tx = newTxn(t, "GET http://a/abs HTTP/1.0\r\nHost: a\r\n\r\n", "127.0.0.1:41092")
	if got := evalFormat(t, c, tx, "%[capture.req.uri] %[capture.req.ver]"); got != "/abs HTTP/1.0" {
		t.Errorf("absolute-form: %s", got)
	}
	tx = newTxn(t, "GET /c HTTP/1.1\r\nHost: a\r\n\r\n", "127.0.0.1:41092")
	if n := testing.AllocsPerRun(100, func() { tx.lineSaved = false; p.Run(tx) }); n != 0 {
		t.Errorf("saving the request line: %.1f allocations", n)
	}
}

func TestDateAndUUID(t *testing.T) {
	c := NewCompiler(testNames())
	tx := newTxn(t, "GET / HTTP/1.1\r\nHost: a\r\n\r\n", "127.0.0.1:41092")
	before := time.Now()
	got := evalFormat(t, c, tx, "%[date] %[date(10)] %[date(-5,ms)] %[date(0,us)]")
	var s, s10, ms, us int64
	if _, err := fmt.Sscanf(got, "%d %d %d %d", &s, &s10, &ms, &us); err != nil {
		t.Fatalf("%q: %v", got, err)
	}
	if s < before.Unix() || s10 != s+10 && s10 != s+11 || ms/1000 < before.Unix()-1 || us/1000000 < before.Unix() {
		t.Errorf("dates %q at %v", got, before.Unix())
	}
	re := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	a, b := evalFormat(t, c, tx, "%[uuid]"), evalFormat(t, c, tx, "%[uuid(4)]")
	if !re.MatchString(a) || !re.MatchString(b) || a == b {
		t.Errorf("uuids %q %q", a, b)
	}
	lf, _ := lang.ParseFormatText("%[uuid] %[date(3600)]", lang.AtRequest)
	f, _ := c.compileFormat(lf)
	if n := testing.AllocsPerRun(100, func() { tx.buf = tx.buf[:0]; f.eval(tx) }); n != 0 {
		t.Errorf("uuid and date: %.1f allocations", n)
	}
}
