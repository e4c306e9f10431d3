package proxy

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/halo-lb/halo/config"
	"github.com/pires/go-proxyproto"
	"github.com/pires/go-proxyproto/tlvparse"
)

// TestProxyHeaderSSLTLV: send-proxy-v2-ssl-cn on a client connection that
// is TLS (here behind halo's guard, as mode http serves it) carries the
// client's address, PP2_TYPE_SSL with the version, the certificate flags
// and the client certificate's CN; on a plain client connection it is a
// plain v2 header.
func TestProxyHeaderSSLTLV(t *testing.T) {
	ca := newTestCA(t, "ca")
	serverCert, _ := ca.leaf(t, "halo.test")
	clientCert, _ := ca.leaf(t, "client-cn")
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	b, a := tcpPair(t)
	defer a.Close()
	defer b.Close()
	srvConn := tls.Server(a, &tls.Config{Certificates: []tls.Certificate{serverCert}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool})
	cliConn := tls.Client(b, &tls.Config{ServerName: "halo.test", RootCAs: pool, Certificates: []tls.Certificate{clientCert}})
	done := make(chan error, 1)
	go func() { done <- cliConn.Handshake() }()
	if err := srvConn.Handshake(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	client := &guardConn{Conn: srvConn}

	var buf bytes.Buffer
	if err := writeProxyHeader(&buf, config.ProxyProtocol{Version: 2, SSL: true, SSLCN: true}, client); err != nil {
		t.Fatal(err)
	}
	h, err := proxyproto.Read(bufio.NewReader(&buf))
	if err != nil {
		t.Fatal(err)
	}
	tlvs, _ := h.TLVs()
	if len(tlvs) != 1 || tlvs[0].Type != proxyproto.PP2_TYPE_SSL {
		t.Fatalf("TLVs %+v; want one PP2_TYPE_SSL", tlvs)
	}
	ssl, err := tlvparse.SSL(tlvs[0])
	if err != nil {
		t.Fatal(err)
	}
	ver, _ := ssl.SSLVersion()
	cn, _ := ssl.ClientCN()
	t.Logf("header %s -> %s, ssl client=%#x verify=%d version=%q cn=%q", h.SourceAddr, h.DestinationAddr, ssl.Client, ssl.Verify, ver, cn)
	if !ssl.ClientSSL() || !ssl.ClientCertConn() || !ssl.Verified() || ver != "TLSv1.3" || cn != "client-cn" {
		t.Fatalf("PP2_TYPE_SSL %+v: want TLS, a verified certificate, TLSv1.3, CN client-cn", ssl)
	}
	if h.SourceAddr.String() != a.RemoteAddr().String() {
		t.Fatalf("source %s; want the client %s", h.SourceAddr, a.RemoteAddr())
	}

	// Without TLS on the client side: no TLV; v1 names the addresses.
	plainA, plainB := tcpPair(t)
	defer plainA.Close()
	defer plainB.Close()
	for _, v := range []int{1, 2} {
		buf.Reset()
		if err := writeProxyHeader(&buf, config.ProxyProtocol{Version: v, SSL: true}, plainB); err != nil {
			t.Fatal(err)
		}
		h, err := proxyproto.Read(bufio.NewReader(bytes.NewReader(buf.Bytes())))
		if err != nil {
			t.Fatal(err)
		}
		tlvs, _ := h.TLVs()
		if h.SourceAddr.String() != plainB.RemoteAddr().String() || h.DestinationAddr.String() != plainB.LocalAddr().String() || len(tlvs) != 0 {
			t.Fatalf("v%d: %s -> %s with %d TLVs; want %s -> %s without", v, h.SourceAddr, h.DestinationAddr, len(tlvs), plainB.RemoteAddr(), plainB.LocalAddr())
		}
		if v == 1 {
			t.Logf("v1 header: %q", buf.String())
		}
	}
}

// TestSendProxyHTTPPrivateConnections: in mode http with send-proxy each
// request gets its own server connection carrying its client's header,
// closed after the response, streamed bodies included; two clients never
// share one.
func TestSendProxyHTTPPrivateConnections(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pl := &proxyproto.Listener{Listener: ln}
	var conns atomic.Int64
	big := strings.Repeat("x", 1<<20)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/big" {
			io.WriteString(w, big) // streamed: no Content-Length past the buffer
			return
		}
		io.WriteString(w, r.RemoteAddr)
	}), ConnState: func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}}
	go srv.Serve(pl)
	t.Cleanup(func() { srv.Close() })
	b := &testBackend{name: "pp", addr: ln.Addr().String()}
	p := startProxy(t, `
defaults: {mode: http, timeout: {connect: 1s, client: 5s, server: 5s}}
frontends:
  fe: {bind: "127.0.0.1:0", default_backend: be}
backends:
  be: {servers: [{name: s, address: "{{pp}}", send-proxy: true}]}
`, b)
	url := "http://" + frontendAddr(t, p, "fe")
	// One kept-alive client connection per source address.
	for _, src := range []string{"127.0.0.2", "127.0.0.3"} {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
		client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: d.DialContext}}
		for i := 0; i < 3; i++ {
			body, code, err := httpGet(client, url+"/")
			if err != nil || code != 200 || !strings.HasPrefix(body, src+":") {
				t.Fatalf("from %s: %d %q %v; want the server to see %s", src, code, body, err, src)
			}
		}
		body, code, err := httpGet(client, url+"/big")
		if err != nil || code != 200 || len(body) != len(big) {
			t.Fatalf("from %s, streamed body: %d, %d bytes, %v", src, code, len(body), err)
		}
	}
	t.Logf("8 requests from 2 clients: the server saw %d connections", conns.Load())
	if conns.Load() != 8 {
		t.Fatalf("server connections %d; want one per request (8)", conns.Load())
	}
}
