package stats

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/halo-lb/halo/internal/testnet"
)

// TestShowStatMatchesHAProxy sends the same requests through halo and
// through the real HAProxy, in front of the same two servers, and compares
// what show stat counts: sessions, status classes, load-balanced totals
// exactly; bytes both ways (heads included) within a fifth: halo counts the
// bytes as they cross the wire, HAProxy 2.6 those of its internal form of
// each message (HTX), a few bytes per message apart.
func TestShowStatMatchesHAProxy(t *testing.T) {
	s1, s2 := startBackend(t, "s1"), startBackend(t, "s2")
	feAddr := testnet.FreeAddr(t)
	haproxyCmd := startHAProxy(t, fmt.Sprintf(`global
  stats socket {{SOCK}} mode 600 level admin
defaults
  mode http
  timeout connect 1s
  timeout client 5s
  timeout server 5s
frontend fe
  bind %s
  default_backend be
backend be
  balance roundrobin
  server s1 %s
  server s2 %s
`, feAddr, s1.addr(), s2.addr()))
	haproxyStat := func() string { return haproxyCmd("show stat") }
	r := newRig(t, strings.Replace(twoServers, "check: true, inter: 100ms, fall: 2", "", 2), map[string]string{"S1": s1.addr(), "S2": s2.addr()})

	// The same bytes to both: a fixed Host, so that the heads are the
	// same length whatever the ports.
	send := func(addr string) {
		for i := 0; i < 10; i++ {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(c, "GET /item/%d HTTP/1.1\r\nHost: api.example\r\nUser-Agent: python-keystoneclient\r\nAccept: application/json\r\nConnection: close\r\n\r\n", i)
			resp, err := io.ReadAll(bufio.NewReader(c))
			c.Close()
			if err != nil || !strings.HasPrefix(string(resp), "HTTP/1.1 200") {
				t.Fatalf("through %s: %q %v", addr, resp, err)
			}
		}
	}
	send(feAddr)
	send(r.frontend("fe"))
	_, want, _ := csvRows(t, haproxyStat())
	_, got, _ := csvRows(t, r.cmd("admin.sock", "show stat"))
	for _, row := range []string{"fe/FRONTEND", "be/BACKEND", "be/s1", "be/s2"} {
		for _, col := range []string{"stot", "hrsp_2xx", "hrsp_5xx", "req_tot", "lbtot", "status", "act", "bck", "weight", "type", "sid", "mode", "algo"} {
			if got[row][col] != want[row][col] {
				t.Errorf("%s %s: halo %q, HAProxy %q", row, col, got[row][col], want[row][col])
			}
		}
		for _, col := range []string{"bin", "bout"} {
			g, _ := strconv.ParseFloat(got[row][col], 64)
			w, _ := strconv.ParseFloat(want[row][col], 64)
			if w == 0 || g < 0.8*w || g > 1.2*w {
				t.Errorf("%s %s: halo %q, HAProxy %q: more than a fifth apart", row, col, got[row][col], want[row][col])
			}
		}
	}

	// show stat typed: the same tags and types for every field both set,
	// and one empty line, at the end, as the end of the answer.
	typed := func(out string) map[string]string {
		m := map[string]string{}
		for _, l := range strings.Split(out, "\n") {
			key, rest, ok := strings.Cut(l, ":")
			if !ok {
				continue
			}
			f := strings.Split(key, ".") // type.iid.sid.pos.name.process
			tags, typ, _ := strings.Cut(rest, ":")
			typ, _, _ = strings.Cut(typ, ":")
			m[f[0]+"."+f[3]+"."+f[4]] = tags + ":" + typ
		}
		return m
	}
	hOut, gOut := haproxyCmd("show stat typed"), r.cmd("admin.sock", "show stat typed")
	if strings.Count(gOut, "\n\n") != 1 || !strings.HasSuffix(gOut, "\n\n") || strings.Count(hOut, "\n\n") != 1 {
		t.Errorf("show stat typed must end with its only empty line: halo has %d, HAProxy %d", strings.Count(gOut, "\n\n"), strings.Count(hOut, "\n\n"))
	}
	hTyped, gTyped := typed(hOut), typed(gOut)
	same := 0
	for k, v := range gTyped {
		if hv, ok := hTyped[k]; ok {
			same++
			if hv != v {
				t.Errorf("show stat typed %s: halo %s, HAProxy %s", k, v, hv)
			}
		}
	}
	if same < 100 {
		t.Errorf("only %d typed fields in common with HAProxy's", same)
	}
}
