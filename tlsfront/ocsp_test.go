package tlsfront

import (
	"bytes"
	"crypto/tls"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/halo-lb/halo/config"
	"github.com/halo-lb/halo/internal/testcert"
	"github.com/halo-lb/halo/internal/testnet"
	"golang.org/x/crypto/ocsp"
)

// TestOCSPStapling staples FILE.ocsp to every handshake with FILE, and
// Debian's openssl s_client -status sees it.
func TestOCSPStapling(t *testing.T) {
	dir := t.TempDir()
	ca := testcert.NewCA(t, "test CA")
	leaf := ca.Issue(t, testcert.Options{}, "api.example.org")
	crt := leaf.Write(t, dir, "api.pem")
	der := ca.WriteOCSP(t, leaf, ocsp.Good, time.Now().Add(24*time.Hour), crt+".ocsp")
	addr := serve(t, ServerConfig(bindTLS(t, "", crt), nil, "fe"))
	_, st, err := handshake(addr, &tls.Config{ServerName: "api.example.org", RootCAs: ca.Pool()})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(st.OCSPResponse, der) {
		t.Fatalf("stapled %d bytes, want the %d of api.pem.ocsp", len(st.OCSPResponse), len(der))
	}
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		testnet.SkipOrFail(t, "openssl is needed (scripts/install-deps installs it)")
	}
	cmd := exec.Command(openssl, "s_client", "-connect", addr, "-servername", "api.example.org", "-status")
	cmd.Stdin = strings.NewReader("")
	out, _ := cmd.CombinedOutput()
	if !strings.Contains(string(out), "OCSP Response Status: successful") || !strings.Contains(string(out), "Cert Status: good") {
		t.Errorf("openssl s_client -status:\n%s", out)
	}
}

// TestOCSPRefused refuses a staple that is revoked, out of date or for
// another certificate, naming the file.
func TestOCSPRefused(t *testing.T) {
	dir := t.TempDir()
	ca := testcert.NewCA(t, "test CA")
	leaf := ca.Issue(t, testcert.Options{}, "api.example.org")
	other := ca.Issue(t, testcert.Options{}, "other.example.org")
	crt := leaf.Write(t, dir, "api.pem")
	for _, tc := range []struct {
		name   string
		write  func()
		reason string
	}{
		{"revoked", func() { ca.WriteOCSP(t, leaf, ocsp.Revoked, time.Now().Add(time.Hour), crt+".ocsp") }, "status is revoked"},
		{"out of date", func() { ca.WriteOCSP(t, leaf, ocsp.Good, time.Now().Add(-time.Second), crt+".ocsp") }, "is out of date"},
		{"another certificate", func() { ca.WriteOCSP(t, other, ocsp.Good, time.Now().Add(time.Hour), crt+".ocsp") }, "OCSP response " + crt + ".ocsp"},
		{"garbage", func() { os.WriteFile(crt+".ocsp", []byte("not DER"), 0o644) }, "OCSP response " + crt + ".ocsp"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.write()
			yaml := "frontends:\n  fe:\n    mode: http\n    bind: {address: 127.0.0.1:0, ssl: true, crt: " + crt + "}\n    default_backend: be\nbackends:\n  be: {mode: http, servers: [{name: s, address: 127.0.0.1:1}]}\n"
			_, err := config.Parse("halo.yaml", []byte(yaml))
			if err == nil || !strings.Contains(err.Error(), tc.reason) {
				t.Errorf("got %v, want an error with %q", err, tc.reason)
			}
		})
	}
}
