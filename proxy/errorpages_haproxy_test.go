package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/halo-lb/halo/internal/testnet"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// pageOnWire is a response as a client reads it: its status line, its
// fields but the framing and Date (which halo and HAProxy frame or add
// differently), and its body.
func pageOnWire(t *testing.T, addr, req string) (status string, fields []string, body string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, req)
	br := bufio.NewReader(c)
	status, _ = br.ReadString('\n')
	n := 0
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if line == "\r\n" {
			break
		}
		name, value, _ := strings.Cut(line, ":")
		switch strings.ToLower(name) {
		case "content-length":
			n, _ = strconv.Atoi(strings.TrimSpace(value))
			continue
		case "connection", "date":
			continue
		}
		// fasthttp spells Content-Type its way, HAProxy lowercases
		// every name: names are compared in lower case.
		fields = append(fields, strings.ToLower(name)+":"+value)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(br, b); err != nil {
		t.Fatal(err)
	}
	return status, fields, string(b)
}

// TestErrorFileAndCapturesLikeHAProxy sends the same requests through
// Debian's haproxy and through halo, configured alike: an errorfile
// answer is compared as a client reads it, and the captures as the
// httplog lines print them.
func TestErrorFileAndCapturesLikeHAProxy(t *testing.T) {
	dir := t.TempDir()
	page := writePage(t, dir, "503.http", "HTTP/1.1 503 Service Unavailable\r\nCache-Control: no-cache\r\nContent-Type: text/html\r\nX-Custom: Yes\r\nContent-Length: 18\r\n\r\n<html>down</html>\n")
	srv := startHTTPBackend(t, "a", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Set-Cookie", "SRV=s1234567890; path=/")
		io.WriteString(w, "a")
	})
	dead := deadAddr(t)
	logs := newHAProxyLog(t)
	hx := testnet.FreeAddr(t)
	startHAProxy(t, fmt.Sprintf(`global
  log %s format raw local0
defaults
  mode http
  log global
  option httplog
  timeout connect 1s
  timeout client 5s
  timeout server 5s
  retries 0
frontend fe
  bind %s
  errorfile 503 %s
  capture request header Host len 5
  capture request header User-Agent len 64
  capture response header Content-Type len 10
  capture response header X-None len 4
  capture cookie SRV len 8
  http-request deny if { path_beg /deny }
  use_backend dead if { path_beg /dead }
  default_backend be
backend be
  server a %s
backend dead
  server a %s
`, logs.conn.LocalAddr(), hx, page, srv.addr, dead), hx)
	core, hlogs := observer.New(zap.InfoLevel)
	prx := New(zap.New(core))
	if err := prx.Apply(parseConfig(t, `
defaults: {mode: http, timeout: {connect: 1s, client: 5s, server: 5s}, retries: 0, option: {httplog: true}}
frontends:
  fe:
    bind: "127.0.0.1:0"
    errorfile: {503: `+filepath.ToSlash(page)+`}
    capture: ["request header Host len 5", "request header User-Agent len 64", "response header Content-Type len 10", "response header X-None len 4", "cookie SRV len 8"]
    acl: {dead: ["path_beg /dead"], deny: ["path_beg /deny"]}
    http-request: ["deny if deny"]
    use_backend: ["dead if dead"]
    default_backend: be
backends:
  be: {servers: [{name: a, address: "{{a}}"}]}
  dead: {servers: [{name: a, address: "`+dead+`"}]}
`, srv)); err != nil {
		t.Fatal(err)
	}
	defer prx.Shutdown(t.Context())
	halo := frontendAddr(t, prx, "fe")

	req := "GET /dead HTTP/1.1\r\nHost: x\r\n\r\n"
	hs, hf, hb := pageOnWire(t, hx, req)
	gs, gf, gb := pageOnWire(t, halo, req)
	slices.Sort(hf)
	slices.Sort(gf)
	if hs != gs || !slices.Equal(hf, gf) || hb != gb {
		t.Errorf("errorfile 503:\nhaproxy %q %q %q\nhalo    %q %q %q", hs, hf, hb, gs, gf, gb)
	}

	req = "GET /x HTTP/1.1\r\nHost: example.com\r\nUser-Agent: a|b{c}\"d#\r\nCookie: a=b; SRV=abcdefghijk\r\nConnection: close\r\n\r\n"
	rawExchange(t, hx, req)
	rawExchange(t, halo, req)
	fields := regexp.MustCompile(` (\S+ \S+) ---- \S+ \S+((?: \{[^}]*\})*) "GET /x`)
	waitFor(t, 3*time.Second, "haproxy's line for GET /x", func() bool { return logs.has(`"GET /x `) })
	waitFor(t, 3*time.Second, "halo's line for GET /x", func() bool {
		return hlogs.FilterMessageSnippet(`"GET /x `).Len() == 1
	})
	var want []string
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, `"GET /x `) {
			want = fields.FindStringSubmatch(l)
		}
	}
	got := fields.FindStringSubmatch(hlogs.FilterMessageSnippet(`"GET /x `).All()[0].Message)
	t.Logf("captures: haproxy %q, halo %q", want, got)
	if want == nil || got == nil || want[1] != got[1] || want[2] != got[2] {
		t.Errorf("captures:\nhaproxy %q\nhalo    %q\nhaproxy's log:\n%s", want, got, logs)
	}

	// A request a rule denied was read: its line has the request's
	// captures and empty response ones. One that could not be read has
	// none at all, not even the braces. (halo writes <BADREQ> for the
	// denied request's line where HAProxy writes the request: only the
	// fields before it are compared.)
	rawExchange(t, hx, "GET /deny HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n")
	rawExchange(t, halo, "GET /deny HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n")
	rawExchange(t, hx, "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")
	rawExchange(t, halo, "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")
	refused := regexp.MustCompile(` (40[03]) \S+ (\S+ \S+) PR-- \S+ \S+((?: \{[^}]*\})*) "`)
	waitFor(t, 3*time.Second, "haproxy's lines for the refused requests", func() bool { return logs.has(" 403 ") && logs.has(" 400 ") })
	waitFor(t, 3*time.Second, "halo's lines for the refused requests", func() bool {
		return hlogs.FilterMessageSnippet(" 403 ").Len() == 1 && hlogs.FilterMessageSnippet(" 400 ").Len() == 1
	})
	byStatus := func(lines []string) map[string]string {
		m := map[string]string{}
		for _, l := range lines {
			if f := refused.FindStringSubmatch(l); f != nil {
				m[f[1]] = f[2] + f[3]
			}
		}
		return m
	}
	var haloLines []string
	for _, e := range hlogs.All() {
		haloLines = append(haloLines, e.Message)
	}
	hw, gw := byStatus(strings.Split(logs.String(), "\n")), byStatus(haloLines)
	t.Logf("refused: haproxy %q, halo %q", hw, gw)
	if hw["403"] == "" || hw["403"] != gw["403"] || hw["400"] == "" || hw["400"] != gw["400"] {
		t.Errorf("refused requests' cookies and captures:\nhaproxy %q\nhalo    %q\nhaproxy's log:\n%s\nhalo's:\n%s", hw, gw, logs, strings.Join(haloLines, "\n"))
	}
}
