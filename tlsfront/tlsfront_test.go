package tlsfront

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/halo-lb/halo/config"
	"github.com/halo-lb/halo/internal/testcert"
	"github.com/halo-lb/halo/internal/testnet"
)

// bindTLS builds a config.BindTLS through config.Parse, as halo does, for
// certificates written to a temporary directory.
func bindTLS(t *testing.T, extra string, certs ...string) *config.BindTLS {
	t.Helper()
	yaml := "frontends:\n  fe:\n    mode: http\n    bind:\n      - address: 127.0.0.1:0\n        ssl: true\n        crt: [" + strings.Join(certs, ", ") + "]\n" + extra +
		"    default_backend: be\nbackends:\n  be:\n    mode: http\n    servers: [{name: s, address: 127.0.0.1:1}]\n"
	cfg, err := config.Parse("", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	return cfg.Frontends[0].Binds[0].TLS
}

// serve runs one TLS server handshake per accepted connection with cfg.
func serve(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	ln := testnet.Serve(t, "127.0.0.1:0", func(c net.Conn) {
		tc := tls.Server(c, cfg)
		if tc.Handshake() == nil {
			_, _ = io.WriteString(tc, "ok")
		}
	})
	return ln.Addr().String()
}

func handshake(addr string, cfg *tls.Config) (*x509.Certificate, tls.ConnectionState, error) {
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		return nil, tls.ConnectionState{}, err
	}
	defer c.Close()
	// In TLS 1.3 the client's handshake ends before the server has
	// checked the client's certificate: only the server's answer shows
	// that it accepted the connection.
	if data, err := io.ReadAll(c); string(data) != "ok" {
		return nil, tls.ConnectionState{}, fmt.Errorf("server answered %q: %v", data, err)
	}
	st := c.ConnectionState()
	return st.PeerCertificates[0], st, nil
}

func TestCertificateChosenBySNI(t *testing.T) {
	dir := t.TempDir()
	ca := testcert.NewCA(t, "test CA")
	def := ca.Issue(t, testcert.Options{}, "default.example.org").Write(t, dir, "0-default.pem")
	api := ca.Issue(t, testcert.Options{}, "api.example.org").Write(t, dir, "api.pem")
	wild := ca.Issue(t, testcert.Options{}, "*.cloud.example.org").Write(t, dir, "wild.pem")
	cfg := ServerConfig(bindTLS(t, "", def, api, wild), nil, "fe")
	addr := serve(t, cfg)
	for _, tc := range []struct{ sni, want string }{
		{"api.example.org", "api.example.org"},
		{"API.Example.Org", "api.example.org"},
		{"horizon.cloud.example.org", "*.cloud.example.org"},
		{"a.b.cloud.example.org", "default.example.org"}, // a wildcard covers one label
		{"cloud.example.org", "default.example.org"},
		{"unknown.example.net", "default.example.org"},
		{"", "default.example.org"},
	} {
		leaf, _, err := handshake(addr, &tls.Config{ServerName: tc.sni, InsecureSkipVerify: true})
		if err != nil {
			t.Fatalf("SNI %q: %v", tc.sni, err)
		}
		if leaf.Subject.CommonName != tc.want {
			t.Errorf("SNI %q got %q, want %q", tc.sni, leaf.Subject.CommonName, tc.want)
		}
	}
	// A client that verifies gets a chain it accepts for the name.
	if _, _, err := handshake(addr, &tls.Config{ServerName: "horizon.cloud.example.org", RootCAs: ca.Pool()}); err != nil {
		t.Errorf("verified wildcard handshake: %v", err)
	}
}

func TestStrictSNIRefusesUnknownNames(t *testing.T) {
	dir := t.TempDir()
	ca := testcert.NewCA(t, "test CA")
	api := ca.Issue(t, testcert.Options{}, "api.example.org").Write(t, dir, "api.pem")
	addr := serve(t, ServerConfig(bindTLS(t, "        strict-sni: true\n", api), nil, "fe"))
	if _, _, err := handshake(addr, &tls.Config{ServerName: "api.example.org", InsecureSkipVerify: true}); err != nil {
		t.Fatalf("known name: %v", err)
	}
	if _, _, err := handshake(addr, &tls.Config{ServerName: "other.example.org", InsecureSkipVerify: true}); err == nil {
		t.Fatal("strict-sni served an unknown name")
	}
}

func TestECDSAAndRSAForOneName(t *testing.T) {
	dir := t.TempDir()
	ca := testcert.NewCA(t, "test CA")
	ec := ca.Issue(t, testcert.Options{}, "api.example.org").Write(t, dir, "ec.pem")
	rs := ca.Issue(t, testcert.Options{RSA: true}, "api.example.org").Write(t, dir, "rsa.pem")
	addr := serve(t, ServerConfig(bindTLS(t, "", ec, rs), nil, "fe"))
	// A TLS 1.2 client that offers only RSA suites gets the RSA one.
	leaf, _, err := handshake(addr, &tls.Config{ServerName: "api.example.org", InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12,
		CipherSuites: []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256}})
	if err != nil {
		t.Fatal(err)
	}
	if leaf.PublicKeyAlgorithm != x509.RSA {
		t.Errorf("RSA-only client got a %v certificate", leaf.PublicKeyAlgorithm)
	}
	leaf, _, err = handshake(addr, &tls.Config{ServerName: "api.example.org", InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	if leaf.PublicKeyAlgorithm != x509.ECDSA {
		t.Errorf("a modern client got a %v certificate, want the first (ECDSA)", leaf.PublicKeyAlgorithm)
	}
}

func TestOldVersionsRefusedByDefault(t *testing.T) {
	dir := t.TempDir()
	ca := testcert.NewCA(t, "test CA")
	crt := ca.Issue(t, testcert.Options{}, "api.example.org").Write(t, dir, "api.pem")
	addr := serve(t, ServerConfig(bindTLS(t, "", crt), nil, "fe"))
	for _, v := range []uint16{tls.VersionTLS10, tls.VersionTLS11} {
		if _, _, err := handshake(addr, &tls.Config{InsecureSkipVerify: true, MinVersion: v, MaxVersion: v}); err == nil {
			t.Errorf("%s accepted by default", tls.VersionName(v))
		}
	}
	_, st, err := handshake(addr, &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12})
	if err != nil || st.Version != tls.VersionTLS12 {
		t.Errorf("TLS 1.2: %v, version %x", err, st.Version)
	}
	// ssl-min-ver lets an operator allow them back.
	addr = serve(t, ServerConfig(bindTLS(t, "        ssl-min-ver: TLSv1.0\n", crt), nil, "fe"))
	if _, _, err := handshake(addr, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS10}); err != nil {
		t.Errorf("TLSv1.0 with ssl-min-ver TLSv1.0: %v", err)
	}
}

func TestClientCertificates(t *testing.T) {
	dir := t.TempDir()
	ca := testcert.NewCA(t, "test CA")
	crt := ca.Issue(t, testcert.Options{}, "api.example.org").Write(t, dir, "api.pem")
	caFile := ca.WriteCA(t, dir, "ca.pem")
	good := ca.Issue(t, testcert.Options{Client: true}, "good client")
	revoked := ca.Issue(t, testcert.Options{Client: true}, "revoked client")
	crl := ca.WriteCRL(t, dir, "ca.crl", time.Now().Add(time.Hour), revoked.Cert.SerialNumber)
	other := testcert.NewCA(t, "other CA").Issue(t, testcert.Options{Client: true}, "stranger")
	pair := func(l *testcert.Leaf) []tls.Certificate {
		c, err := tls.X509KeyPair(l.CertPEM, l.KeyPEM)
		if err != nil {
			t.Fatal(err)
		}
		return []tls.Certificate{c}
	}
	for _, verify := range []string{"optional", "required"} {
		addr := serve(t, ServerConfig(bindTLS(t, "        verify: "+verify+"\n        ca-file: "+caFile+"\n        crl-file: "+crl+"\n", crt), nil, "fe"))
		try := func(certs []tls.Certificate) error {
			// Sent whatever CAs the server names: Go's client would
			// otherwise keep back a certificate of another CA.
			send := func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
				if len(certs) == 0 {
					return &tls.Certificate{}, nil
				}
				return &certs[0], nil
			}
			_, _, err := handshake(addr, &tls.Config{InsecureSkipVerify: true, GetClientCertificate: send})
			return err
		}
		if err := try(pair(good)); err != nil {
			t.Errorf("verify %s: a good client certificate was refused: %v", verify, err)
		}
		if err := try(pair(revoked)); err == nil {
			t.Errorf("verify %s: a revoked client certificate was accepted", verify)
		}
		if err := try(pair(other)); err == nil {
			t.Errorf("verify %s: a certificate of another CA was accepted", verify)
		}
		err := try(nil)
		if verify == "optional" && err != nil {
			t.Errorf("verify optional: a client without a certificate was refused: %v", err)
		}
		if verify == "required" && err == nil {
			t.Errorf("verify required: a client without a certificate was accepted")
		}
	}
}

func TestPeekReadsSNIAndReplays(t *testing.T) {
	dir := t.TempDir()
	ca := testcert.NewCA(t, "test CA")
	crt := ca.Issue(t, testcert.Options{}, "api.example.org").Write(t, dir, "api.pem")
	backend := ServerConfig(bindTLS(t, "", crt), nil, "fe")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan Hello, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		hello, pc, err := Peek(c, time.Second)
		if err != nil {
			t.Error(err)
			return
		}
		got <- hello
		// The peeked bytes replay into a real TLS server: the handshake
		// completes as if nothing had looked.
		tc := tls.Server(pc, backend)
		if tc.Handshake() == nil {
			_, _ = io.WriteString(tc, "ok")
		}
	}()
	_, _, err = handshake(ln.Addr().String(), &tls.Config{ServerName: "api.example.org", RootCAs: ca.Pool(), NextProtos: []string{"h2", "http/1.1"}})
	if err != nil {
		t.Fatalf("handshake through the peek: %v", err)
	}
	h := <-got
	if h.ServerName != "api.example.org" || strings.Join(h.ALPN, ",") != "h2,http/1.1" || len(h.Versions) == 0 {
		t.Errorf("peeked %+v", h)
	}
}

func TestPeekNotTLS(t *testing.T) {
	a, b := net.Pipe()
	go func() {
		_, _ = io.WriteString(b, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	}()
	_, pc, err := Peek(a, time.Second)
	if !errors.Is(err, ErrNotTLS) {
		t.Fatalf("err %v, want ErrNotTLS", err)
	}
	buf := make([]byte, 3)
	if _, err := io.ReadFull(pc, buf); err != nil || string(buf) != "GET" {
		t.Errorf("replayed %q, %v", buf, err)
	}
	a.Close()
	b.Close()
}

func TestPeekTimesOut(t *testing.T) {
	a, b := net.Pipe()
	defer b.Close()
	start := time.Now()
	_, _, err := Peek(a, 100*time.Millisecond)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("err %v, want a timeout", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("took %v", d)
	}
}

// TestOneLineKeepsEveryAttributeInOrder prints a subject as OpenSSL's
// oneline does: every attribute, DC and emailAddress included, in the
// certificate's order, so that two different subjects never print alike.
func TestOneLineKeepsEveryAttributeInOrder(t *testing.T) {
	name := pkix.Name{ExtraNames: []pkix.AttributeTypeAndValue{
		{Type: asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 25}, Value: "org"},
		{Type: asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 25}, Value: "evil"},
		{Type: asn1.ObjectIdentifier{2, 5, 4, 3}, Value: "admin"},
		{Type: asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 1}, Value: "a@evil.org"},
		{Type: asn1.ObjectIdentifier{1, 2, 3, 4}, Value: "x\ny"},
	}}
	raw, err := asn1.Marshal(name.ToRDNSequence())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := OneLine(raw), `/DC=org/DC=evil/CN=admin/emailAddress=a@evil.org/1.2.3.4=x\x0Ay`; got != want {
		t.Errorf("OneLine = %s, want %s", got, want)
	}
}

// TestCRLFailsClosed refuses, when the file is read, a CRL that no CA of
// ca-file signed or that is out of date, and at a handshake a client whose
// issuer's list has gone out of date since.
func TestCRLFailsClosed(t *testing.T) {
	dir := t.TempDir()
	ca := testcert.NewCA(t, "test CA")
	crt := ca.Issue(t, testcert.Options{}, "api.example.org").Write(t, dir, "api.pem")
	caFile := ca.WriteCA(t, dir, "ca.pem")
	other := testcert.NewCA(t, "other CA")
	parse := func(crl string) error {
		yaml := "frontends:\n  fe:\n    mode: http\n    bind: {address: 127.0.0.1:0, ssl: true, crt: " + crt + ", verify: required, ca-file: " + caFile + ", crl-file: " + crl + "}\n    default_backend: be\nbackends:\n  be: {mode: http, servers: [{name: s, address: 127.0.0.1:1}]}\n"
		_, err := config.Parse("halo.yaml", []byte(yaml))
		return err
	}
	if err := parse(other.WriteCRL(t, dir, "other.crl", time.Now().Add(time.Hour))); err == nil || !strings.Contains(err.Error(), "signed by no CA of ca-file") {
		t.Errorf("another CA's CRL: %v", err)
	}
	if err := parse(ca.WriteCRL(t, dir, "stale.crl", time.Now().Add(-time.Minute))); err == nil || !strings.Contains(err.Error(), "is out of date") {
		t.Errorf("a stale CRL: %v", err)
	}
	// A list that was current when read but is not any more refuses
	// every client of its issuer.
	client := ca.Issue(t, testcert.Options{Client: true}, "client")
	crls, err := x509.ParseRevocationList(mustPEM(t, ca.WriteCRL(t, dir, "soon.crl", time.Now().Add(time.Hour))))
	if err != nil {
		t.Fatal(err)
	}
	chain := []*x509.Certificate{client.Cert, ca.Cert}
	byIssuer := map[string][]*x509.RevocationList{string(crls.RawIssuer): {crls}}
	if err := chainNotRevoked(chain, byIssuer, time.Now()); err != nil {
		t.Errorf("a current list refused a good client: %v", err)
	}
	if err := chainNotRevoked(chain, byIssuer, time.Now().Add(2*time.Hour)); err == nil || !strings.Contains(err.Error(), "no current CRL") {
		t.Errorf("past the list's next update: %v, want a refusal", err)
	}
	if err := chainNotRevoked(chain, map[string][]*x509.RevocationList{}, time.Now()); err == nil {
		t.Error("a chain whose issuer has no list was accepted")
	}
}

func mustPEM(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode(data)
	if b == nil {
		t.Fatalf("%s: no PEM", path)
	}
	return b.Bytes
}
