package proxy

import (
	"bytes"
	"crypto/tls"
	"io"
	"net"
	"testing"

	"github.com/halo-lb/halo/internal/testcert"
	"github.com/valyala/fasthttp"
)

// tlsRig is a kept-alive TLS client connection through halo, in mode
// http, to a fasthttp server: the whole request path of an HTTPS
// keep-alive request, client and server sockets included.
type tlsRig struct {
	c    *tls.Conn
	req  []byte
	resp []byte
}

// newTLSRig starts the rig; with clientCert the bind asks for a client
// certificate, the client sends one and option ssl-client-headers passes
// it on.
func newTLSRig(tb *testing.T, clientCert bool) *tlsRig {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	backend := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString("hello") }}
	go backend.Serve(ln)
	tb.Cleanup(func() { backend.Shutdown() })
	site := newTLSSite(tb)
	bind, option := "", ""
	client := &tls.Config{RootCAs: site.ca.Pool(), ServerName: "keystone.example.org"}
	if clientCert {
		bind = ", verify: optional, ca-file: " + site.ca.WriteCA(tb, site.dir, "ca.pem")
		option = ", ssl-client-headers: true"
		leaf := site.ca.Issue(tb, testcert.Options{Client: true}, "nova-compute-1")
		pair, err := tls.X509KeyPair(leaf.CertPEM, leaf.KeyPEM)
		if err != nil {
			tb.Fatal(err)
		}
		client.Certificates = []tls.Certificate{pair}
	}
	p := startProxy(tb, `
frontends:
  fe:
    mode: http
    bind: {address: "127.0.0.1:0", ssl: true, crt: `+site.crts[1]+bind+`}
    option: {x-forwarded-proto: true`+option+`}
    default_backend: be
backends:
  be: {mode: http, servers: [{name: a, address: "`+ln.Addr().String()+`"}]}
`)
	c, err := tls.Dial("tcp", frontendAddr(tb, p, "fe"), client)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	return &tlsRig{c: c, req: []byte("GET /v3 HTTP/1.1\r\nHost: keystone.example.org\r\nUser-Agent: rig\r\n\r\n"), resp: make([]byte, 4096)}
}

// roundTrip sends one request and reads its whole response.
func (r *tlsRig) roundTrip(tb testing.TB) {
	if _, err := r.c.Write(r.req); err != nil {
		tb.Fatal(err)
	}
	n := 0
	for {
		m, err := r.c.Read(r.resp[n:])
		n += m
		if bytes.HasSuffix(r.resp[:n], []byte("\r\n\r\nhello")) {
			return
		}
		if err != nil || n == len(r.resp) {
			if err == nil {
				err = io.ErrShortBuffer
			}
			tb.Fatalf("response %q: %v", r.resp[:n], err)
		}
	}
}

// An HTTPS keep-alive request costs halo no allocation of its own once
// warm. crypto/tls itself allocates one small object per record it reads
// (readFromUntil's atLeastReader escapes to the heap, Go 1.26): one for
// halo reading the request and one for the test's client reading the
// response, which AllocsPerRun counts too. So the bound is two; any
// allocation halo's code adds shows as a third.
func TestTLSKeepAliveAllocatesOnlyInCryptoTLS(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector")
	}
	for _, clientCert := range []bool{false, true} {
		r := newTLSRig(t, clientCert)
		for range 20 {
			r.roundTrip(t)
		}
		if n := testing.AllocsPerRun(500, func() { r.roundTrip(t) }); n > 2 {
			t.Fatalf("an HTTPS keep-alive request (client certificate and ssl-client-headers: %v) allocates %.1f times, want at most crypto/tls's 2", clientCert, n)
		}
	}
}
