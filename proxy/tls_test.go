package proxy

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/halo-lb/halo/internal/testcert"
	"github.com/halo-lb/halo/internal/testnet"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// tlsSite is a CA and certificates for three names, a wildcard and a
// default, written for a bind's crt.
type tlsSite struct {
	dir  string
	ca   *testcert.CA
	crts []string // default, keystone, glance, wildcard
}

func newTLSSite(t *testing.T) *tlsSite {
	t.Helper()
	s := &tlsSite{dir: t.TempDir(), ca: testcert.NewCA(t, "halo test CA")}
	for i, names := range [][]string{{"default.example.org"}, {"keystone.example.org"}, {"glance.example.org"}, {"*.apps.example.org"}} {
		s.crts = append(s.crts, s.ca.Issue(t, testcert.Options{RSA: i == 2}, names...).Write(t, s.dir, fmt.Sprintf("%d.pem", i)))
	}
	return s
}

func (s *tlsSite) crtList() string { return "[" + strings.Join(s.crts, ", ") + "]" }

// tlsGet makes one HTTPS request with a fresh connection (a full
// handshake) naming sni, and returns the certificate's common name and the
// body.
func tlsGet(addr, sni string, cfg *tls.Config) (cn, body string, err error) {
	cfg = cfg.Clone()
	cfg.ServerName = sni
	tr := &http.Transport{TLSClientConfig: cfg, DisableKeepAlives: true,
		DialContext: (&net.Dialer{Timeout: 2 * time.Second}).DialContext}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	resp, err := client.Get("https://" + addr + "/")
	if err != nil {
		return "", "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.TLS.PeerCertificates[0].Subject.CommonName, string(b), err
}

func TestTLSTerminationChoosesCertificateBySNI(t *testing.T) {
	site := newTLSSite(t)
	a := startHTTPBackend(t, "a", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "proto=%s port=%s", r.Header.Get("X-Forwarded-Proto"), r.Header.Get("X-Forwarded-Port"))
	})
	p := startProxy(t, `
frontends:
  fe:
    mode: http
    bind: {address: "127.0.0.1:0", ssl: true, crt: `+site.crtList()+`}
    option: {x-forwarded-proto: true}
    default_backend: be
backends:
  be: {mode: http, servers: [{name: a, address: "{{a}}"}]}
`, a)
	addr := frontendAddr(t, p, "fe")
	_, port, _ := net.SplitHostPort(addr)
	verified := &tls.Config{RootCAs: site.ca.Pool()}
	for _, tc := range []struct{ sni, want string }{
		{"keystone.example.org", "keystone.example.org"},
		{"glance.example.org", "glance.example.org"},
		{"horizon.apps.example.org", "*.apps.example.org"},
		{"default.example.org", "default.example.org"},
	} {
		cn, body, err := tlsGet(addr, tc.sni, verified)
		if err != nil {
			t.Fatalf("SNI %s: %v", tc.sni, err)
		}
		if cn != tc.want || body != "proto=https port="+port {
			t.Errorf("SNI %s: certificate %q, body %q; want %q and proto=https port=%s", tc.sni, cn, body, tc.want, port)
		}
	}
	// An unknown name gets the default certificate (and so fails a
	// client that verifies the name).
	cn, _, err := tlsGet(addr, "nova.example.net", &tls.Config{InsecureSkipVerify: true})
	if err != nil || cn != "default.example.org" {
		t.Errorf("unknown SNI: certificate %q, %v; want the default", cn, err)
	}
	// TLS 1.0 and 1.1 are refused by default.
	for _, v := range []uint16{tls.VersionTLS10, tls.VersionTLS11} {
		if _, _, err := tlsGet(addr, "keystone.example.org", &tls.Config{RootCAs: site.ca.Pool(), MinVersion: v, MaxVersion: v}); err == nil {
			t.Errorf("%s was accepted", tls.VersionName(v))
		}
	}
	// The server counts a refused handshake after the client has seen
	// it fail: wait for the count rather than race it.
	st := p.current.Load().frontendsByName["fe"].state
	waitFor(t, 2*time.Second, "the refused handshakes counted", func() bool { return st.TLSFailed.Load() >= 2 })
	if got := st.TLSFailed.Load(); got != 2 {
		t.Errorf("failed handshakes counted %d (ssl_failed_handshake), want the 2 refused versions", got)
	}
	if got := st.TLSSessions.Load(); got != 5 {
		t.Errorf("handshakes counted %d (ssl_sess), want the 5 connections served", got)
	}
}

// TestTLSWithRealClients runs Debian's curl and openssl s_client against
// a TLS bind: SNI picks the certificate, TLS 1.1 is refused.
func TestTLSWithRealClients(t *testing.T) {
	curl, err1 := exec.LookPath("curl")
	openssl, err2 := exec.LookPath("openssl")
	if err1 != nil || err2 != nil {
		testnet.SkipOrFail(t, "curl and openssl are needed (scripts/install-deps installs them)")
	}
	site := newTLSSite(t)
	caFile := site.ca.WriteCA(t, site.dir, "ca.pem")
	a := startHTTPBackend(t, "a", nil)
	p := startProxy(t, `
frontends:
  fe:
    mode: http
    bind: {address: "127.0.0.1:0", ssl: true, crt: `+site.crtList()+`, alpn: http/1.1}
    default_backend: be
backends:
  be: {mode: http, servers: [{name: a, address: "{{a}}"}]}
`, a)
	addr := frontendAddr(t, p, "fe")
	_, port, _ := net.SplitHostPort(addr)
	for _, name := range []string{"keystone.example.org", "glance.example.org", "horizon.apps.example.org"} {
		out, err := exec.Command(curl, "-sS", "--max-time", "5", "--cacert", caFile, "--resolve", name+":"+port+":127.0.0.1",
			"-w", " %{http_version} %{ssl_verify_result}", "https://"+name+":"+port+"/").CombinedOutput()
		if err != nil || string(out) != "a 1.1 0" {
			t.Errorf("curl https://%s: %q, %v", name, out, err)
		}
	}
	sclient := func(args ...string) string {
		cmd := exec.Command(openssl, append([]string{"s_client", "-connect", addr, "-CAfile", caFile}, args...)...)
		cmd.Stdin = strings.NewReader("")
		out, _ := cmd.CombinedOutput()
		return string(out)
	}
	if out := sclient("-servername", "glance.example.org", "-brief"); !strings.Contains(out, "CN = glance.example.org") && !strings.Contains(out, "CN=glance.example.org") {
		t.Errorf("openssl s_client -servername glance.example.org:\n%s", out)
	}
	if out := sclient("-servername", "unknown.example.net"); !strings.Contains(out, "CN = default.example.org") && !strings.Contains(out, "CN=default.example.org") {
		t.Errorf("openssl s_client for an unknown name did not get the default certificate:\n%s", out)
	}
	// Debian's OpenSSL allows TLS 1.1 only at security level 0.
	if out := sclient("-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"); !strings.Contains(out, "alert protocol version") && !strings.Contains(out, "no protocols available") {
		t.Errorf("openssl s_client -tls1_1 was not refused with a protocol version alert:\n%s", out)
	}
}

// TestTLSReloadSwapsCertificateUnderLoad reloads to a renewed certificate
// while clients make full handshakes: none fails, and once the reload
// returns every new handshake gets the new certificate.
func TestTLSReloadSwapsCertificateUnderLoad(t *testing.T) {
	site := newTLSSite(t)
	renewed := site.ca.Issue(t, testcert.Options{}, "keystone.example.org", "renewed").Write(t, site.dir, "renewed.pem")
	a := startHTTPBackend(t, "a", nil)
	yaml := `
frontends:
  fe:
    mode: http
    bind: {address: "127.0.0.1:%d", ssl: true, crt: %s}
    default_backend: be
backends:
  be: {mode: http, servers: [{name: a, address: "{{a}}"}]}
`
	port := testnet.FreePort(t)
	p := startProxy(t, fmt.Sprintf(yaml, port, site.crts[1]), a)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	client := &tls.Config{RootCAs: site.ca.Pool()}
	var ok, failed atomic.Int64
	var firstErr atomic.Pointer[error]
	var reloaded atomic.Bool
	var staleAfter atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				after := reloaded.Load()
				_, body, err := tlsGet(addr, "keystone.example.org", client)
				if err != nil || body != "a" {
					failed.Add(1)
					if err == nil {
						err = fmt.Errorf("body %q", body)
					}
					firstErr.CompareAndSwap(nil, &err)
					continue
				}
				ok.Add(1)
				if after {
					c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: site.ca.Pool(), ServerName: "keystone.example.org"})
					if err == nil {
						if len(c.ConnectionState().PeerCertificates[0].DNSNames) != 2 {
							staleAfter.Add(1)
						}
						c.Close()
					}
				}
			}
		}()
	}
	time.Sleep(time.Second)
	before := ok.Load()
	if err := p.Apply(parseConfig(t, fmt.Sprintf(yaml, port, renewed), a)); err != nil {
		t.Fatal(err)
	}
	reloaded.Store(true)
	time.Sleep(time.Second)
	close(stop)
	wg.Wait()
	t.Logf("handshakes: %d before the reload, %d in all, %d failed", before, ok.Load(), failed.Load())
	if failed.Load() > 0 {
		t.Errorf("%d requests failed across the reload; first: %v", failed.Load(), *firstErr.Load())
	}
	if ok.Load() == before {
		t.Error("no handshake after the reload")
	}
	if staleAfter.Load() > 0 {
		t.Errorf("%d handshakes after the reload got the old certificate", staleAfter.Load())
	}
}

// TestTLSModeTCPTerminates terminates TLS in mode tcp and relays the
// plaintext, with the tcplog frontend marked as HAProxy marks it.
func TestTLSModeTCPTerminates(t *testing.T) {
	site := newTLSSite(t)
	a := startTCPBackend(t, "a")
	p := startProxy(t, `
frontends:
  fe: {bind: {address: "127.0.0.1:0", ssl: true, crt: `+site.crts[1]+`}, default_backend: be}
backends:
  be: {servers: [{name: a, address: "{{a}}"}]}
`, a)
	c, err := tls.Dial("tcp", frontendAddr(t, p, "fe"), &tls.Config{RootCAs: site.ca.Pool(), ServerName: "keystone.example.org"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(c)
	for i := range 3 {
		fmt.Fprintf(c, "line %d\n", i)
		if line, err := r.ReadString('\n'); err != nil || line != "a\n" {
			t.Fatalf("answer %d: %q, %v", i, line, err)
		}
	}
	// close_notify ends the client's direction; the server's goodbye
	// still arrives.
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if line, err := r.ReadString('\n'); err != nil || line != "bye from a\n" {
		t.Errorf("after close_notify: %q, %v", line, err)
	}
}

// TestClientCertificateHeaders checks option ssl-client-headers and
// x-forwarded-proto: the server sees the client certificate's facts and
// the scheme, and what a client forges under any case is replaced.
func TestClientCertificateHeaders(t *testing.T) {
	site := newTLSSite(t)
	caFile := site.ca.WriteCA(t, site.dir, "ca.pem")
	a := startHTTPBackend(t, "a", func(w http.ResponseWriter, r *http.Request) {
		var b strings.Builder
		for _, k := range []string{"X-Ssl-Client-Used", "X-Ssl-Client-Verify", "X-Ssl-Client-S-Dn", "X-Ssl-Client-Cn", "X-Ssl-Client-Serial", "X-Forwarded-Proto"} {
			fmt.Fprintf(&b, "%s=%s;", k, strings.Join(r.Header.Values(k), ","))
		}
		for k := range r.Header {
			if strings.Contains(k, "_") {
				fmt.Fprintf(&b, "forged %s;", k)
			}
		}
		io.WriteString(w, b.String())
	})
	p := startProxy(t, `
frontends:
  fe:
    mode: http
    bind: {address: "127.0.0.1:0", ssl: true, crt: `+site.crts[1]+`, verify: optional, ca-file: `+caFile+`}
    option: {ssl-client-headers: true, x-forwarded-proto: true}
    default_backend: be
backends:
  be: {mode: http, servers: [{name: a, address: "{{a}}"}]}
`, a)
	leaf := site.ca.Issue(t, testcert.Options{Client: true, Serial: 0x1234}, "nova-compute-1")
	pair, err := tls.X509KeyPair(leaf.CertPEM, leaf.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	get := func(certs []tls.Certificate) string {
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: site.ca.Pool(), ServerName: "keystone.example.org", Certificates: certs}}
		defer tr.CloseIdleConnections()
		req, _ := http.NewRequest("GET", "https://"+frontendAddr(t, p, "fe")+"/", nil)
		req.Header["x-ssl-client-cn"] = []string{"admin"}
		req.Header["X-SSL-CLIENT-USED"] = []string{"1"}
		req.Header["X_SSL_Client_S_DN"] = []string{"/CN=admin"}
		req.Header["x-forwarded-proto"] = []string{"http"}
		req.Header["X_Forwarded_Proto"] = []string{"http"}
		resp, err := (&http.Client{Transport: tr, Timeout: 5 * time.Second}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	want := "X-Ssl-Client-Used=1;X-Ssl-Client-Verify=0;X-Ssl-Client-S-Dn=/CN=nova-compute-1;X-Ssl-Client-Cn=nova-compute-1;X-Ssl-Client-Serial=1234;X-Forwarded-Proto=https;"
	if got := get([]tls.Certificate{pair}); got != want {
		t.Errorf("with a client certificate the server saw\n%s\nwant\n%s", got, want)
	}
	want = "X-Ssl-Client-Used=0;X-Ssl-Client-Verify=;X-Ssl-Client-S-Dn=;X-Ssl-Client-Cn=;X-Ssl-Client-Serial=;X-Forwarded-Proto=https;"
	if got := get(nil); got != want {
		t.Errorf("without a client certificate the server saw\n%s\nwant\n%s", got, want)
	}
}

// TestHTTPSRedirect sends plain requests to https with the same host and
// target, on a connection that stays open, and lets TLS requests through.
func TestHTTPSRedirect(t *testing.T) {
	site := newTLSSite(t)
	a := startHTTPBackend(t, "a", nil)
	p := startProxy(t, `
frontends:
  fe:
    mode: http
    bind:
      - "127.0.0.1:0"
      - {address: "127.0.0.1:0", ssl: true, crt: `+site.crts[1]+`}
    https-redirect: 301
    default_backend: be
backends:
  be: {mode: http, servers: [{name: a, address: "{{a}}"}]}
`, a)
	addrs := p.Addrs("fe")
	plain, secure := addrs[0].String(), addrs[1].String()
	c, err := net.Dial("tcp", plain)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(c)
	for i := range 2 {
		fmt.Fprintf(c, "GET /v3/auth?x=%d HTTP/1.1\r\nHost: keystone.example.org:5000\r\n\r\n", i)
		resp, err := http.ReadResponse(r, nil)
		if err != nil {
			t.Fatalf("request %d on one connection: %v", i, err)
		}
		io.Copy(io.Discard, resp.Body)
		want := fmt.Sprintf("https://keystone.example.org:5000/v3/auth?x=%d", i)
		if resp.StatusCode != 301 || resp.Header.Get("Location") != want {
			t.Errorf("request %d: %d Location %q, want 301 %s", i, resp.StatusCode, resp.Header.Get("Location"), want)
		}
	}
	// An absolute-form target keeps its path and query.
	fmt.Fprintf(c, "GET http://keystone.example.org/v3?a=b HTTP/1.1\r\nHost: keystone.example.org\r\n\r\n")
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	if loc := resp.Header.Get("Location"); loc != "https://keystone.example.org/v3?a=b" {
		t.Errorf("absolute-form target: Location %q", loc)
	}
	if _, body, err := tlsGet(secure, "keystone.example.org", &tls.Config{RootCAs: site.ca.Pool()}); err != nil || body != "a" {
		t.Errorf("over TLS: %q, %v; want the server's answer", body, err)
	}
}

// TestTLSAccessLog checks what the httplog and tcplog lines say of TLS: the
// frontend as "NAME~", and a failed handshake as its own line with why.
func TestTLSAccessLog(t *testing.T) {
	site := newTLSSite(t)
	a, h := startTCPBackend(t, "a"), startHTTPBackend(t, "h", nil)
	core, logs := observer.New(zap.InfoLevel)
	p := New(zap.New(core))
	cfg := parseConfig(t, `
defaults: {timeout: {connect: 1s, client: 5s, server: 5s}}
frontends:
  l4: {bind: {address: "127.0.0.1:0", ssl: true, crt: `+site.crts[1]+`}, default_backend: tcpbe, option: {tcplog: true}}
  l7: {bind: {address: "127.0.0.1:0", ssl: true, crt: `+site.crts[1]+`}, mode: http, default_backend: httpbe, option: {httplog: true}}
backends:
  tcpbe: {servers: [{name: a, address: "{{a}}"}]}
  httpbe: {mode: http, servers: [{name: h, address: "{{h}}"}]}
`, a, h)
	if err := p.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	defer p.Shutdown(t.Context())
	client := &tls.Config{RootCAs: site.ca.Pool()}
	if _, body, err := tlsGet(frontendAddr(t, p, "l7"), "keystone.example.org", client); err != nil || body != "h" {
		t.Fatalf("request: %q, %v", body, err)
	}
	c, err := tls.Dial("tcp", frontendAddr(t, p, "l4"), &tls.Config{RootCAs: site.ca.Pool(), ServerName: "keystone.example.org"})
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(c, "hi\n")
	bufio.NewReader(c).ReadString('\n')
	c.Close()
	if _, _, err := tlsGet(frontendAddr(t, p, "l7"), "keystone.example.org", &tls.Config{RootCAs: site.ca.Pool(), MinVersion: tls.VersionTLS11, MaxVersion: tls.VersionTLS11}); err == nil {
		t.Fatal("TLS 1.1 accepted")
	}
	var lines []string
	waitFor(t, 5*time.Second, "three access lines", func() bool {
		lines = lines[:0]
		for _, e := range logs.FilterLoggerName("access").All() {
			line := e.Message
			for _, f := range e.Context {
				if f.Key == "error" {
					line += " (" + f.Interface.(error).Error() + ")"
				}
			}
			lines = append(lines, line)
		}
		return len(lines) == 3
	})
	text := strings.Join(lines, "\n")
	for _, want := range []string{"] l7~ httpbe/h ", "\"GET / HTTP/1.1\"", "] l4~ tcpbe/a ", " l7/127.0.0.1:", ": TLS handshake failure (tls: client offered only unsupported versions"} {
		if !strings.Contains(text, want) {
			t.Errorf("the access log lacks %q:\n%s", want, text)
		}
	}
}

// TestTLSPassthroughModeTCP passes TLS through a plain mode tcp frontend
// unterminated: the client's handshake is with the server behind, whose
// certificate it sees, and the bytes are spliced.
func TestTLSPassthroughModeTCP(t *testing.T) {
	site := newTLSSite(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cert, err := tls.LoadX509KeyPair(site.crts[2], site.crts[2])
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				tc := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{cert}})
				line, _ := bufio.NewReader(tc).ReadString('\n')
				io.WriteString(tc, "echo "+line)
			}()
		}
	}()
	b := &testBackend{name: "s", ln: ln, addr: ln.Addr().String()}
	p := startProxy(t, `
frontends:
  fe: {bind: "127.0.0.1:0", default_backend: be}
backends:
  be: {servers: [{name: s, address: "{{s}}"}]}
`, b)
	c, err := tls.Dial("tcp", frontendAddr(t, p, "fe"), &tls.Config{RootCAs: site.ca.Pool(), ServerName: "glance.example.org"})
	if err != nil {
		t.Fatalf("handshake through mode tcp: %v", err)
	}
	defer c.Close()
	if cn := c.ConnectionState().PeerCertificates[0].Subject.CommonName; cn != "glance.example.org" {
		t.Errorf("the client saw %q's certificate, want the server's own", cn)
	}
	io.WriteString(c, "hi\n")
	if line, err := bufio.NewReader(c).ReadString('\n'); err != nil || line != "echo hi\n" {
		t.Errorf("answer %q, %v", line, err)
	}
}
