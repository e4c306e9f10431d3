package proxy

import (
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/halo-lb/halo/health"
	"github.com/halo-lb/halo/internal/testcert"
	"github.com/halo-lb/halo/internal/testnet"
)

// testCA is a certificate authority made for one test (internal/testcert's,
// with the CA's PEM written for a ca-file).
type testCA struct {
	*testcert.CA
	cert *x509.Certificate
	key  crypto.Signer
	file string // its PEM, for ca-file
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	ca := testcert.NewCA(t, name)
	return &testCA{CA: ca, cert: ca.Cert, key: ca.Key, file: ca.WriteCA(t, t.TempDir(), name+".pem")}
}

// leaf issues a certificate for names (DNS names or IPs) good for a server
// and a client, returned as a pair and as one PEM (chain and key).
func (ca *testCA) leaf(t *testing.T, names ...string) (tls.Certificate, []byte) {
	t.Helper()
	l := ca.Issue(t, testcert.Options{Server: true, Client: true}, names...)
	c, err := tls.X509KeyPair(l.CertPEM, l.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return c, append(append([]byte(nil), l.CertPEM...), l.KeyPEM...)
}

// startTLSHTTPBackend is an HTTPS server answering its name.
func startTLSHTTPBackend(t *testing.T, name string, cert tls.Certificate) *testBackend {
	t.Helper()
	s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, name) }))
	s.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	s.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are the point
	s.StartTLS()
	t.Cleanup(s.Close)
	return &testBackend{name: name, addr: s.Listener.Addr().String()}
}

// TestServerTLSVerify: with verify required, a server whose certificate
// is signed by another CA, or names another host, is refused (503, check
// L6RSP); the right one serves (200, L6OK); one that never answers the
// handshake times the check out (L6TOUT).
func TestServerTLSVerify(t *testing.T) {
	caA, caB := newTestCA(t, "ca-a"), newTestCA(t, "ca-b")
	good, _ := caA.leaf(t, "good.test")
	ok := startTLSHTTPBackend(t, "ok", good)
	// Accepts and reads, never answers the ClientHello.
	stall := serveConns(t, "127.0.0.1:0", func(c net.Conn) { _, _ = io.Copy(io.Discard, c) })
	stallB := &testBackend{name: "stall", addr: stall.ln.Addr().String()}
	srv := func(addr, extra string) string {
		return `{name: s, address: "` + addr + `", check: true, inter: 50ms, rise: 1, fall: 1, ssl: true, ` + extra + `}`
	}
	p := startProxy(t, `
defaults: {mode: http, timeout: {connect: 1s, client: 5s, server: 5s, check: 300ms}}
frontends:
  fgood: {bind: "127.0.0.1:0", default_backend: good}
  fwrongca: {bind: "127.0.0.1:0", default_backend: wrongca}
  fwrongname: {bind: "127.0.0.1:0", default_backend: wrongname}
  fnocheck: {bind: "127.0.0.1:0", default_backend: nocheck}
  fhttpchk: {bind: "127.0.0.1:0", default_backend: httpchk}
backends:
  good: {servers: [`+srv("{{ok}}", `ca-file: "`+caA.file+`", sni: "str(good.test)"`)+`]}
  wrongca: {servers: [`+srv("{{ok}}", `ca-file: "`+caB.file+`", sni: "str(good.test)"`)+`]}
  wrongname: {servers: [`+srv("{{ok}}", `ca-file: "`+caA.file+`", sni: "str(other.test)", check-sni: other.test`)+`]}
  httpchk: {option: {httpchk: true}, servers: [`+srv("{{ok}}", `ca-file: "`+caA.file+`", sni: "str(good.test)", check-sni: good.test`)+`]}
  nocheck: {servers: [{name: s, address: "{{ok}}", ssl: true, ca-file: "`+caA.file+`", sni: "str(other.test)"}]}
  stall: {servers: [`+srv("{{stall}}", `ca-file: "`+caA.file+`"`)+`]}
`, ok, stallB)
	cases := []struct {
		be     string
		status health.Status
		code   int
	}{{"good", health.L6OK, 200}, {"httpchk", health.L7OK, 200}, {"wrongca", health.L6RSP, 503}, {"wrongname", health.L6RSP, 503}, {"stall", health.L6TOUT, 0}, {"nocheck", "", 503}}
	for _, c := range cases {
		if c.status == "" { // no check: the handshake of the request itself fails
			body, code, err := httpGet(httpClient(), "http://"+frontendAddr(t, p, "f"+c.be)+"/")
			t.Logf("%s (no check): GET %d %q", c.be, code, strings.TrimSpace(body))
			if err != nil || code != c.code {
				t.Fatalf("%s: GET %d, %v; want %d", c.be, code, err, c.code)
			}
			continue
		}
		waitFor(t, 3*time.Second, c.be+"'s check result", func() bool {
			r, ok := p.LastCheck(c.be, "s")
			return ok && r.Status == c.status
		})
		r, _ := p.LastCheck(c.be, "s")
		t.Logf("%s: check %s in %v: %s", c.be, r.Status, r.Duration, r.Desc)
		if c.code == 0 {
			continue
		}
		body, code, err := httpGet(httpClient(), "http://"+frontendAddr(t, p, "f"+c.be)+"/")
		t.Logf("%s: GET %d %q", c.be, code, strings.TrimSpace(body))
		if err != nil || code != c.code {
			t.Fatalf("%s: GET %d, %v; want %d", c.be, code, err, c.code)
		}
		if c.code == 200 && body != "ok" {
			t.Fatalf("%s: body %q", c.be, body)
		}
	}
}

// TestServerTLSModeTCP: a mode tcp session to a TLS server relays a few MiB
// both ways intact (the relay's buffered path, not splice).
func TestServerTLSModeTCP(t *testing.T) {
	ca := newTestCA(t, "ca")
	cert, _ := ca.leaf(t, "127.0.0.1")
	tlsCfg := &tls.Config{Certificates: []tls.Certificate{cert}}
	ln := testnet.Serve(t, "127.0.0.1:0", func(c net.Conn) {
		tc := tls.Server(c, tlsCfg)
		_, _ = io.Copy(tc, tc)
	})
	echo := &testBackend{name: "echo", addr: ln.Addr().String()}
	p := startProxy(t, `
defaults: {timeout: {connect: 1s, client: 10s, server: 10s}}
frontends:
  fe: {bind: "127.0.0.1:0", default_backend: be}
backends:
  be: {servers: [{name: s, address: "{{echo}}", ssl: true, ca-file: "`+ca.file+`", verifyhost: 127.0.0.1}]}
`, echo)
	c, err := net.Dial("tcp", frontendAddr(t, p, "fe"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const size = 4 << 20
	data := make([]byte, size)
	rand.Read(data)
	go func() {
		_, _ = c.Write(data)
		_ = c.(*net.TCPConn).CloseWrite()
	}()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	h := sha256.New()
	n, err := io.Copy(h, c)
	want := sha256.Sum256(data)
	t.Logf("relayed %d bytes through TLS, sha256 %x", n, h.Sum(nil)[:8])
	if err != nil || n != size || string(h.Sum(nil)) != string(want[:]) {
		t.Fatalf("got %d bytes (err %v), checksum match %v; want %d", n, err, string(h.Sum(nil)) == string(want[:]), size)
	}
}

// TestServerTLSSNIFromHost: sni req.hdr(host) sends each request's Host
// (without its port) as SNI, and verify required checks the certificate
// against it: good.test passes, other.test is refused with 503.
func TestServerTLSSNIFromHost(t *testing.T) {
	ca := newTestCA(t, "ca")
	cert, _ := ca.leaf(t, "good.test")
	ok := startTLSHTTPBackend(t, "ok", cert)
	p := startProxy(t, `
defaults: {mode: http, timeout: {connect: 1s, client: 5s, server: 5s}}
frontends:
  fe: {bind: "127.0.0.1:0", default_backend: be}
backends:
  be: {retries: 0, servers: [{name: s, address: "{{ok}}", ssl: true, ca-file: "`+ca.file+`", sni: "req.hdr(host)"}]}
`, ok)
	for _, c := range []struct {
		host string
		code int
	}{{"good.test:8080", 200}, {"other.test", 503}, {"good.test", 200}} {
		req, _ := http.NewRequest("GET", "http://"+frontendAddr(t, p, "fe")+"/", nil)
		req.Host = c.host
		resp, err := httpClient().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		t.Logf("Host %s: %d %q", c.host, resp.StatusCode, strings.TrimSpace(string(body)))
		if resp.StatusCode != c.code {
			t.Fatalf("Host %s: %d; want %d", c.host, resp.StatusCode, c.code)
		}
	}
}
