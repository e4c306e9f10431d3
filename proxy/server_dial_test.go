package proxy

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"testing"

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
