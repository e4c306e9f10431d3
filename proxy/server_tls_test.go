package proxy

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/halo-lb/halo/health"
)

// testCA is a certificate authority made for one test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	file string // its PEM, for ca-file
}

var serial = big.NewInt(1)

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	serial.Add(serial, big.NewInt(1))
	tmpl := &x509.Certificate{SerialNumber: new(big.Int).Set(serial), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	file := filepath.Join(t.TempDir(), name+".pem")
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: cert, key: key, file: file}
}

// leaf issues a server certificate for names (DNS names or IPs).
func (ca *testCA) leaf(t *testing.T, names ...string) (tls.Certificate, []byte) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	serial.Add(serial, big.NewInt(1))
	tmpl := &x509.Certificate{SerialNumber: new(big.Int).Set(serial), Subject: pkix.Name{CommonName: names[0]},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return c, append(certPEM, keyPEM...)
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
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
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
