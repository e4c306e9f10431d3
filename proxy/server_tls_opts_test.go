package proxy

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/halo-lb/halo/health"
	"github.com/halo-lb/halo/internal/testnet"
)

// crl writes a revocation list signed by ca that revokes the given
// certificates.
func (ca *testCA) crl(t *testing.T, revoked ...tls.Certificate) string {
	t.Helper()
	var entries []x509.RevocationListEntry
	for _, c := range revoked {
		leaf, _ := x509.ParseCertificate(c.Certificate[0])
		entries = append(entries, x509.RevocationListEntry{SerialNumber: leaf.SerialNumber, RevocationTime: time.Now()})
	}
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(time.Now().UnixNano()),
		ThisUpdate: time.Now().Add(-time.Minute), NextUpdate: time.Now().Add(time.Hour), RevokedCertificateEntries: entries}, ca.cert, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "crl.pem")
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

// TestServerTLSCRLAndClientCert: a server certificate on the crl-file is
// refused (L6RSP naming the revocation) and one that is not passes; a
// server that requires a client certificate accepts halo's crt and
// refuses a handshake without one (L6RSP). Both are held to TLS 1.2:
// in TLS 1.3 the client's handshake ends before the server judges its
// certificate, so a connect check cannot see the refusal (HAProxy's
// neither).
func TestServerTLSCRLAndClientCert(t *testing.T) {
	ca := newTestCA(t, "ca")
	revoked, _ := ca.leaf(t, "127.0.0.1")
	fine, _ := ca.leaf(t, "127.0.0.1")
	_, clientPEM := ca.leaf(t, "halo-client")
	crt := filepath.Join(t.TempDir(), "client.pem")
	if err := os.WriteFile(crt, clientPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	crl := ca.crl(t, revoked)
	revokedB := startTLSHTTPBackend(t, "revoked", revoked)
	fineB := startTLSHTTPBackend(t, "fine", fine)
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	mtls := &testBackend{name: "mtls", addr: startTLSListener(t, &tls.Config{Certificates: []tls.Certificate{fine}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool}, nil)}
	common := `check: true, inter: 50ms, rise: 1, fall: 1, ssl: true, ca-file: "` + ca.file + `", verifyhost: 127.0.0.1`
	p := startProxy(t, `
defaults: {mode: http, timeout: {connect: 1s, client: 5s, server: 5s, check: 500ms}}
frontends:
  fe: {bind: "127.0.0.1:0", default_backend: revoked}
backends:
  revoked: {servers: [{name: s, address: "{{revoked}}", crl-file: "`+crl+`", `+common+`}]}
  fine: {servers: [{name: s, address: "{{fine}}", crl-file: "`+crl+`", `+common+`}]}
  withcrt: {mode: tcp, servers: [{name: s, address: "{{mtls}}", crt: "`+crt+`", ssl-max-ver: TLSv1.2, `+common+`}]}
  nocrt: {mode: tcp, servers: [{name: s, address: "{{mtls}}", ssl-max-ver: TLSv1.2, `+common+`}]}
`, revokedB, fineB, mtls)
	for _, c := range []struct {
		be     string
		status health.Status
		desc   string
	}{{"revoked", health.L6RSP, "revoked"}, {"fine", health.L6OK, ""}, {"withcrt", health.L6OK, "TLS 1.2"}, {"nocrt", health.L6RSP, "remote error"}} {
		waitFor(t, 3*time.Second, c.be+"'s check", func() bool {
			r, ok := p.LastCheck(c.be, "s")
			return ok && r.Status == c.status && strings.Contains(r.Desc, c.desc)
		})
		r, _ := p.LastCheck(c.be, "s")
		t.Logf("%s: %s %s", c.be, r.Status, r.Desc)
	}
}

// startTLSListener accepts TLS connections with cfg, echoing what they
// send, and counts the handshakes that resumed a session.
func startTLSListener(t *testing.T, cfg *tls.Config, resumed *atomic.Int64) string {
	t.Helper()
	cfg = cfg.Clone()
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		if resumed != nil && cs.DidResume {
			resumed.Add(1)
		}
		return nil
	}
	tlsCfg := cfg
	ln := testnet.Serve(t, "127.0.0.1:0", func(c net.Conn) {
		tc := tls.Server(c, tlsCfg)
		_, _ = io.Copy(tc, tc)
	})
	return ln.Addr().String()
}

// TestServerTLSSessionReuse: by default halo resumes its TLS sessions with
// a server (a session cache per server); with no-ssl-reuse every
// connection makes a full handshake.
func TestServerTLSSessionReuse(t *testing.T) {
	ca := newTestCA(t, "ca")
	cert, _ := ca.leaf(t, "127.0.0.1")
	for _, noReuse := range []bool{false, true} {
		var resumed atomic.Int64
		echo := &testBackend{name: "echo", addr: startTLSListener(t, &tls.Config{Certificates: []tls.Certificate{cert}}, &resumed)}
		opt := ""
		if noReuse {
			opt = ", no-ssl-reuse: true"
		}
		p := startProxy(t, `
defaults: {timeout: {connect: 1s, client: 5s, server: 5s}}
frontends:
  fe: {bind: "127.0.0.1:0", default_backend: be}
backends:
  be: {servers: [{name: s, address: "{{echo}}", ssl: true, ca-file: "`+ca.file+`", verifyhost: 127.0.0.1`+opt+`}]}
`, echo)
		const conns = 5
		for i := 0; i < conns; i++ {
			c, err := net.Dial("tcp", frontendAddr(t, p, "fe"))
			if err != nil {
				t.Fatal(err)
			}
			c.SetDeadline(time.Now().Add(5 * time.Second))
			io.WriteString(c, "ping\n")
			buf := make([]byte, 5)
			if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping\n" {
				t.Fatalf("echo %q, %v", buf, err)
			}
			c.Close()
		}
		t.Logf("no-ssl-reuse=%v: %d of %d connections resumed a session", noReuse, resumed.Load(), conns)
		switch {
		case !noReuse && resumed.Load() < conns-1:
			t.Fatalf("resumed %d of %d; want all but the first", resumed.Load(), conns)
		case noReuse && resumed.Load() != 0:
			t.Fatalf("no-ssl-reuse: resumed %d; want none", resumed.Load())
		}
	}
}
