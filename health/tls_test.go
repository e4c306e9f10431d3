package health

import (
	"bufio"
	"context"
	"crypto/tls"
	"io"
	"net"
	"testing"
	"time"

	"github.com/halo-lb/halo/config"
	"github.com/halo-lb/halo/internal/testcert"
	"github.com/halo-lb/halo/internal/testnet"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/pires/go-proxyproto"
)

// newTLSPair makes a CA and a server certificate for 127.0.0.1 signed by
// it, and returns the server certificate and the CA's PEM.
func newTLSPair(t *testing.T) (tls.Certificate, []byte) {
	t.Helper()
	ca := testcert.NewCA(t, "ca")
	l := ca.Issue(t, testcert.Options{}, "127.0.0.1")
	c, err := tls.X509KeyPair(l.CertPEM, l.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return c, ca.PEM
}

// fakePg is enough of a PostgreSQL server for pgsql-check: optionally a
// PROXY header first, then SSLRequest answered with S and TLS, then the
// start-up message answered with AuthenticationOk.
func fakePg(t *testing.T, cert tls.Certificate, wantProxy bool, headers chan<- *proxyproto.Header) string {
	t.Helper()
	ln := testnet.Serve(t, "127.0.0.1:0", func(c net.Conn) {
		c.SetDeadline(time.Now().Add(5 * time.Second))
		br := bufio.NewReader(c)
		if wantProxy {
			h, err := proxyproto.Read(br)
			if err != nil {
				return
			}
			headers <- h
		}
		var req [8]byte
		if _, err := io.ReadFull(br, req[:]); err != nil {
			return
		}
		c.Write([]byte{'S'})
		tc := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{cert}})
		be := pgproto3.NewBackend(tc, tc)
		if _, err := be.ReceiveStartupMessage(); err != nil {
			return
		}
		be.Send(&pgproto3.AuthenticationOk{})
		_ = be.Flush()
		_, _ = be.Receive()
	})
	return ln.Addr().String()
}

func transport(t *testing.T, caPEM []byte, proxyVersion int) *Transport {
	t.Helper()
	st := &config.ServerTLS{Verify: true, CAFile: "ca.pem", CA: caPEM}
	c, err := st.ClientConfig()
	if err != nil {
		t.Fatal(err)
	}
	return &Transport{TLS: c, ProxyVersion: proxyVersion}
}

// TestPgSQLCheckTLS: pgsql-check with check-ssl asks for TLS, verifies the
// server against the CA (L7OK), refuses one from another CA (L6RSP), and
// with check-send-proxy starts with a v2 LOCAL header.
func TestPgSQLCheckTLS(t *testing.T) {
	cert, caPEM := newTLSPair(t)
	_, otherCA := newTLSPair(t)
	spec := &config.DBCheck{Kind: config.DBPgSQL, User: "halo"}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()

	addr := fakePg(t, cert, false, nil)
	r := PgSQLChecker{Spec: spec, Transport: transport(t, caPEM, 0)}.Check(ctx, addr)
	t.Logf("right CA: %s %s", r.Status, r.Desc)
	if !r.OK || r.Status != L7OK {
		t.Fatalf("right CA: %+v; want L7OK", r)
	}
	r = PgSQLChecker{Spec: spec, Transport: transport(t, otherCA, 0)}.Check(ctx, addr)
	t.Logf("other CA: %s %s", r.Status, r.Desc)
	if r.OK || r.Status != L6RSP {
		t.Fatalf("other CA: %+v; want L6RSP", r)
	}

	headers := make(chan *proxyproto.Header, 1)
	addr = fakePg(t, cert, true, headers)
	r = PgSQLChecker{Spec: spec, Transport: transport(t, caPEM, 2)}.Check(ctx, addr)
	if !r.OK {
		t.Fatalf("with check-send-proxy: %+v", r)
	}
	h := <-headers
	t.Logf("PROXY header of the check: version %d, command %#x", h.Version, h.Command)
	if h.Version != 2 || h.Command != proxyproto.LOCAL {
		t.Fatalf("header %+v; want v2 LOCAL", h)
	}
}
