package proxy

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/halo-lb/halo/health"
	"github.com/halo-lb/halo/internal/testnet"
)

// haproxyLog is a UDP socket HAProxy logs to ("format raw"), its lines
// collected for the test to read.
type haproxyLog struct {
	conn  *net.UDPConn
	mu    sync.Mutex
	lines []string
}

func newHAProxyLog(t *testing.T) *haproxyLog {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	l := &haproxyLog{conn: c}
	t.Cleanup(func() { c.Close() })
	go func() {
		buf := make([]byte, 8192)
		for {
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			l.mu.Lock()
			l.lines = append(l.lines, strings.TrimSpace(string(buf[:n])))
			l.mu.Unlock()
		}
	}()
	return l
}

func (l *haproxyLog) has(sub string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, line := range l.lines {
		if strings.Contains(line, sub) {
			return true
		}
	}
	return false
}

func (l *haproxyLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

// startHAProxy runs Debian's haproxy with cfg (written to a temporary
// directory) until the test ends, once every address in ready listens.
func startHAProxy(t *testing.T, cfg string, ready ...string) {
	t.Helper()
	bin, err := exec.LookPath("haproxy")
	if err != nil {
		testnet.SkipOrFail(t, "haproxy is not installed (bench/setup installs it)")
	}
	file := filepath.Join(t.TempDir(), "haproxy.cfg")
	if err := os.WriteFile(file, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "-c", "-f", file).CombinedOutput(); err != nil {
		t.Fatalf("haproxy -c: %v\n%s\n%s", err, out, cfg)
	}
	cmd := exec.Command(bin, "-db", "-f", file)
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	for _, addr := range ready {
		waitFor(t, 5*time.Second, "haproxy listening on "+addr, func() bool {
			c, err := net.Dial("tcp", addr)
			if err == nil {
				c.Close()
			}
			return err == nil
		})
	}
}

// getFrom makes a GET to url from the local address src.
func getFrom(t *testing.T, src, url string) (string, int) {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 2 * time.Second}
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}}
	body, code, err := httpGet(client, url)
	if err != nil {
		t.Fatalf("GET %s from %s: %v", url, src, err)
	}
	return body, code
}

// TestSendProxyToHAProxy: HAProxy behind halo with accept-proxy logs, and
// answers, the address of halo's client (127.0.0.2), not halo's: through
// a mode http server with send-proxy and a mode tcp one with
// send-proxy-v2. Health checks with the header (check-send-proxy, or
// inherited from send-proxy) pass through accept-proxy, and a check
// without one is refused by it.
func TestSendProxyToHAProxy(t *testing.T) {
	logs := newHAProxyLog(t)
	v1, v2 := testnet.FreeAddr(t), testnet.FreeAddr(t)
	startHAProxy(t, fmt.Sprintf(`global
  log %s format raw local0
defaults
  mode http
  log global
  log-format "fe=%%f client=%%ci:%%cp req=%%r"
  timeout connect 1s
  timeout client 5s
  timeout server 5s
frontend v1
  bind %s accept-proxy
  http-request return status 200 content-type text/plain lf-string "src=%%[src]"
frontend v2
  bind %s accept-proxy
  http-request return status 200 content-type text/plain lf-string "src=%%[src]"
`, logs.conn.LocalAddr(), v1, v2), v1, v2)
	p := startProxy(t, `
defaults: {timeout: {connect: 1s, client: 5s, server: 5s, check: 1s}}
frontends:
  fhttp: {mode: http, bind: "127.0.0.1:0", default_backend: bhttp}
  ftcp: {bind: "127.0.0.1:0", default_backend: btcp}
backends:
  bhttp:
    mode: http
    option: {httpchk: true}
    http-check: {send: {uri: /check-v1}}
    servers: [{name: s, address: "`+v1+`", send-proxy: true, check: true, inter: 100ms, rise: 1}]
  btcp:
    option: {httpchk: true}
    http-check: {send: {uri: /check-v2}}
    servers: [{name: s, address: "`+v2+`", send-proxy-v2: true, check: true, inter: 100ms, rise: 1}]
  explicit:
    option: {httpchk: true}
    http-check: {send: {uri: /check-explicit}}
    servers: [{name: s, address: "127.0.0.1:1", addr: 127.0.0.1, port: `+v1[strings.LastIndex(v1, ":")+1:]+`, check-send-proxy: true, check: true, inter: 100ms, rise: 1}]
  noheader:
    option: {httpchk: true}
    servers: [{name: s, address: "`+v1+`", check: true, inter: 100ms, fall: 1}]
`)
	for _, fe := range []string{"fhttp", "ftcp"} {
		body, code := getFrom(t, "127.0.0.2", "http://"+frontendAddr(t, p, fe)+"/hello-"+fe)
		t.Logf("%s: GET from 127.0.0.2: %d %q", fe, code, body)
		if code != 200 || body != "src=127.0.0.2" {
			t.Fatalf("%s: haproxy answered %d %q; want the client's address 127.0.0.2", fe, code, body)
		}
	}
	waitFor(t, 3*time.Second, "haproxy's log lines for both requests", func() bool {
		return logs.has("fe=v1 client=127.0.0.2:") && logs.has("fe=v2 client=127.0.0.2:")
	})
	for _, be := range []string{"bhttp", "btcp", "explicit"} {
		waitFor(t, 3*time.Second, be+"'s check through accept-proxy", func() bool {
			r, ok := p.LastCheck(be, "s")
			return ok && r.Status == health.L7OK
		})
	}
	// A check has no client: its header is v1 UNKNOWN / v2 LOCAL, and
	// HAProxy then logs the connection's own address.
	waitFor(t, 3*time.Second, "haproxy's log of the checks", func() bool {
		return logs.has("fe=v1 client=127.0.0.1:") && logs.has("req=OPTIONS /check-v1") && logs.has("fe=v2 client=127.0.0.1:") && logs.has("req=OPTIONS /check-v2") && logs.has("req=OPTIONS /check-explicit")
	})
	waitFor(t, 3*time.Second, "a check without the header refused", func() bool {
		r, ok := p.LastCheck("noheader", "s")
		return ok && !r.OK
	})
	r, _ := p.LastCheck("noheader", "s")
	t.Logf("check without PROXY header: %s %s", r.Status, r.Desc)
	t.Logf("haproxy's log:\n%s", logs)
}

// TestServerTLSToHAProxy: Debian's haproxy terminating TLS with a
// certificate made here: halo with verify required and the right CA
// serves through it and its check reports L7OK; with another CA it
// refuses it (L6RSP) and answers 503.
func TestServerTLSToHAProxy(t *testing.T) {
	caA, caB := newTestCA(t, "ca-a"), newTestCA(t, "ca-b")
	_, pemFile := caA.leaf(t, "haproxy.test")
	crt := filepath.Join(t.TempDir(), "haproxy.pem")
	if err := os.WriteFile(crt, pemFile, 0o600); err != nil {
		t.Fatal(err)
	}
	addr := testnet.FreeAddr(t)
	startHAProxy(t, fmt.Sprintf(`defaults
  mode http
  timeout connect 1s
  timeout client 5s
  timeout server 5s
frontend tls
  bind %s ssl crt %s
  http-request return status 200 content-type text/plain lf-string "tls=%%[ssl_fc] sni=%%[ssl_fc_sni]"
`, addr, crt), addr)
	srv := func(ca string) string {
		return `[{name: s, address: "` + addr + `", ssl: true, ca-file: "` + ca + `", sni: "str(haproxy.test)", check-sni: haproxy.test, check: true, inter: 100ms, rise: 1, fall: 1}]`
	}
	p := startProxy(t, `
defaults: {mode: http, timeout: {connect: 1s, client: 5s, server: 5s, check: 1s}}
frontends:
  fgood: {bind: "127.0.0.1:0", default_backend: good}
  fbad: {bind: "127.0.0.1:0", default_backend: bad}
backends:
  good: {option: {httpchk: true}, servers: `+srv(caA.file)+`}
  bad: {option: {httpchk: true}, servers: `+srv(caB.file)+`}
`)
	for _, c := range []struct {
		be     string
		status health.Status
		code   int
	}{{"good", health.L7OK, 200}, {"bad", health.L6RSP, 503}} {
		waitFor(t, 3*time.Second, c.be+"'s check", func() bool {
			r, ok := p.LastCheck(c.be, "s")
			return ok && r.Status == c.status
		})
		r, _ := p.LastCheck(c.be, "s")
		body, code, err := httpGet(httpClient(), "http://"+frontendAddr(t, p, "f"+c.be)+"/")
		t.Logf("%s: check %s (%s); GET %d %q", c.be, r.Status, r.Desc, code, strings.TrimSpace(body))
		if err != nil || code != c.code {
			t.Fatalf("%s: GET %d, %v; want %d", c.be, code, err, c.code)
		}
		if c.code == 200 && body != "tls=1 sni=haproxy.test" {
			t.Fatalf("%s: haproxy saw %q", c.be, body)
		}
	}
}
