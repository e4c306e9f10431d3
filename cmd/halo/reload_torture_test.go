package main

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/halo-lb/halo/internal/testcert"
	"github.com/halo-lb/halo/internal/testnet"
)

// tortureConfig is the configuration of the reload torture test; each
// reload changes one of its fields.
type tortureConfig struct {
	ports       [4]int // web, secure, stream, extra
	http, tcp   map[string]string
	certs       [2]string
	withApp3    bool   // servers: app3 joins and leaves backend app
	weight      int    // weights of app1 and tcp1
	timeoutStep int    // the HTTP timeouts of every frontend
	withExtra   bool   // a frontend and its backend, added and removed
	certB       bool   // the secure frontend's certificate
	gen         int    // rules: the X-Gen header web sets, and an ACL's pattern
	global      string // more global settings (an upgrade test's runtime API socket)
}

// newTortureConfig starts the servers and makes the certificates and the
// first configuration of the reload and upgrade tests.
func newTortureConfig(t *testing.T, dir string, ca *testcert.CA) *tortureConfig {
	t.Helper()
	c := &tortureConfig{weight: 1}
	for i, name := range []string{"a.pem", "b.pem"} {
		leaf := ca.Issue(t, testcert.Options{}, "halo.test")
		c.certs[i] = leaf.Write(t, dir, name)
		certSerials[leaf.Cert.SerialNumber.String()] = c.certs[i]
	}
	for i := range c.ports {
		c.ports[i] = testnet.FreePort(t)
	}
	srv := startMixedServers(t, []string{"app1", "app2", "app3"}, []string{"tcp1", "tcp2"})
	c.http, c.tcp = srv.http, srv.tcp
	return c
}

// startTortureLoad starts the mixed load on c's frontends: sessions (TCP,
// WebSocket) last sessionLength each, 0 for the whole run.
func startTortureLoad(c *tortureConfig, ca *testcert.CA, sessionLength time.Duration) *mixedLoad {
	web := fmt.Sprintf("127.0.0.1:%d", c.ports[0])
	load := newMixedLoad()
	tlsConf := &tls.Config{RootCAs: ca.Pool(), ServerName: "halo.test"}
	load.keepAlive("http keep-alive", web, nil, 3, 50)
	load.keepAlive("http new connection", web, nil, 2, 1)
	load.keepAlive("tls keep-alive", fmt.Sprintf("127.0.0.1:%d", c.ports[1]), tlsConf, 2, 20)
	load.bulk("upload 1 GiB", web, true, 1<<30)
	load.bulk("download 1 GiB", web, false, 1<<30)
	load.tcpSessions("tcp session lines", fmt.Sprintf("127.0.0.1:%d", c.ports[2]), 4, 20*time.Millisecond, sessionLength)
	load.webSockets("websocket messages", "ws://"+web+"/ws", 2, 20*time.Millisecond, sessionLength)
	return load
}

// mixedKinds are the kinds of operation startTortureLoad's load makes.
var mixedKinds = []string{"http keep-alive", "http new connection", "tls keep-alive", "upload 1 GiB", "download 1 GiB", "tcp session lines", "websocket messages"}

func (c *tortureConfig) yaml() string {
	var b strings.Builder
	fmt.Fprintf(&b, `global:
  hard-stop-after: 20s
%s
defaults:
  mode: http
  timeout: {connect: 1s, client: 30s, server: 30s, tunnel: 60s, http-request: %ds, http-keep-alive: %ds}
frontends:
  web:
    bind: "127.0.0.1:%d"
    acl:
      bulk: path_beg /download /upload /ws
      old_client: hdr(user-agent) -m sub legacy-%d
    http-request:
      - set-header X-Gen %d
      - deny if old_client
    use_backend: ["bulk if bulk"]
    default_backend: app
  secure:
    bind: [{address: "127.0.0.1:%d", ssl: true, crt: %s}]
    default_backend: app
  stream: {mode: tcp, bind: "127.0.0.1:%d", default_backend: echo}
`, c.global, 5+c.timeoutStep%3, 4+c.timeoutStep%4, c.ports[0], c.gen, c.gen, c.ports[1], c.certs[boolIndex(c.certB)], c.ports[2])
	if c.withExtra {
		fmt.Fprintf(&b, "  extra: {bind: \"127.0.0.1:%d\", default_backend: extra}\n", c.ports[3])
	}
	b.WriteString("backends:\n  app:\n    servers:\n")
	fmt.Fprintf(&b, "      - {name: app1, address: %q, weight: %d, check: true, inter: 500ms}\n", c.http["app1"], c.weight)
	fmt.Fprintf(&b, "      - {name: app2, address: %q, check: true, inter: 500ms}\n", c.http["app2"])
	if c.withApp3 {
		fmt.Fprintf(&b, "      - {name: app3, address: %q, check: true, inter: 500ms}\n", c.http["app3"])
	}
	fmt.Fprintf(&b, "  bulk: {servers: [{name: app1, address: %q}, {name: app2, address: %q}]}\n", c.http["app1"], c.http["app2"])
	fmt.Fprintf(&b, "  echo: {mode: tcp, servers: [{name: tcp1, address: %q, weight: %d}, {name: tcp2, address: %q}]}\n", c.tcp["tcp1"], c.weight, c.tcp["tcp2"])
	if c.withExtra {
		fmt.Fprintf(&b, "  extra: {servers: [{name: app2, address: %q}]}\n", c.http["app2"])
	}
	return b.String()
}

func boolIndex(b bool) int {
	if b {
		return 1
	}
	return 0
}

// tortureChanges are what the reloads change, in turn: each function
// changes one thing and returns a probe that is true once halo serves it.
var tortureChanges = []struct {
	what   string
	change func(c *tortureConfig) func() bool
}{
	{"servers", func(c *tortureConfig) func() bool { c.withApp3 = !c.withApp3; return nil }},
	{"weights", func(c *tortureConfig) func() bool { c.weight = 1 + c.weight%5; return nil }},
	{"timeouts", func(c *tortureConfig) func() bool { c.timeoutStep++; return nil }},
	{"rules", func(c *tortureConfig) func() bool {
		c.gen++
		want := strconv.Itoa(c.gen)
		return func() bool { return seenGen(c.ports[0]) == want }
	}},
	{"frontends and backends", func(c *tortureConfig) func() bool {
		c.withExtra = !c.withExtra
		want := c.withExtra
		return func() bool { return extraServes(c.ports[3]) == want }
	}},
	{"certificates", func(c *tortureConfig) func() bool {
		c.certB = !c.certB
		want := c.certs[boolIndex(c.certB)]
		return func() bool { return servedCert(c.ports[1]) == want }
	}},
}

// seenGen is the X-Gen the web frontend's rules set now.
func seenGen(port int) string {
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
	if err != nil {
		return ""
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.Header.Get("X-Seen-Gen")
}

// extraServes is whether the extra frontend answers.
func extraServes(port int) bool {
	c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	resp, err := getOn(c, bufio.NewReader(c), "/", true)
	return err == nil && resp.StatusCode == 200
}

// servedCert names the certificate file the secure frontend serves now,
// by the serial of the certificate it presents.
var certSerials = map[string]string{} // serial → file, filled before the load starts

func servedCert(port int) string {
	c, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		return ""
	}
	defer c.Close()
	return certSerials[c.ConnectionState().PeerCertificates[0].SerialNumber.String()]
}

// TestReloadTorture is the issue's reload test: 100 SIGHUP reloads, one
// every 300–700 ms, each changing servers, weights, HTTP timeouts, rules,
// a frontend and backend (added, removed) or the TLS certificate, under
// mixed load, with no failed request, refused connection or cut stream.
func TestReloadTorture(t *testing.T) {
	reloads := 100
	if testing.Short() {
		reloads = 12
	}
	if v := os.Getenv("HALO_RELOADS"); v != "" {
		reloads, _ = strconv.Atoi(v)
	}
	dir := t.TempDir()
	ca := testcert.NewCA(t, "halo torture CA")
	c := newTortureConfig(t, dir, ca)
	cfgFile := filepath.Join(dir, "halo.yaml")
	writeFile(t, cfgFile, c.yaml())
	h := startHalo(t, "run", "-c", cfgFile)
	waitUntil(t, 10*time.Second, "halo to serve", func() bool { return seenGen(c.ports[0]) == "0" })
	load := startTortureLoad(c, ca, 0)

	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 17))
	changed := map[string]int{}
	start := time.Now()
	for i := range reloads {
		time.Sleep(time.Duration(300+rng.IntN(401)) * time.Millisecond)
		ch := tortureChanges[i%len(tortureChanges)]
		probe := ch.change(c)
		writeFile(t, cfgFile, c.yaml())
		before := strings.Count(h.stderr.String(), "\treloaded\t")
		h.cmd.Process.Signal(syscall.SIGHUP)
		waitUntil(t, 10*time.Second, fmt.Sprintf("reload %d (%s) to be applied", i+1, ch.what), func() bool {
			logs := h.stderr.String()
			if strings.Contains(logs, "reload rejected") || strings.Contains(logs, "reload failed") {
				t.Fatalf("reload %d (%s) was not applied:\n%s", i+1, ch.what, logs)
			}
			return strings.Count(logs, "\treloaded\t") > before
		})
		if probe != nil {
			waitUntil(t, 5*time.Second, fmt.Sprintf("reload %d's change of %s to show", i+1, ch.what), probe)
		}
		changed[ch.what]++
	}
	took := time.Since(start)
	r := load.stop()
	t.Logf("%d reloads in %s (%v): %s", reloads, took.Round(100*time.Millisecond), changed, r)
	r.failOnLosses(t)
	for _, kind := range mixedKinds {
		if r.done[kind] == 0 {
			t.Errorf("no %s completed", kind)
		}
	}
	h.stop(t, syscall.SIGTERM)
}
